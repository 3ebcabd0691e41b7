/*
 * The configuration watcher (watch_config): see include/cfgwatch.h.
 *
 * The folders are watched, not the files: a ConfigMap volume updates by
 * renaming a new "..data" symlink over the old one, and an editor often
 * saves by renaming a new file over the old; a watch on the old file
 * would see neither.  In a folder, only the names that matter count:
 * a file we read, "..data", or, in include_dir, any drop-in.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfgwatch.h"
#include "config.h"
#include "log.h"

#define EO_WATCH_EVENTS	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | \
			 IN_CREATE | IN_DELETE | IN_ATTRIB)

/* One name that matters in a watched folder; name NULL: any. */
struct wname {
	int		 wd;
	char		*name;
};

struct cfgwatch {
	int		 fd;
	struct event	*ev_read;
	struct event	*ev_fire;	/* the debounce timer */
	void		(*fire)(void *);
	void		*arg;
	struct wname	*v;
	size_t		 n;
};

/* Watches path's folder; path's last part (or any, for a folder). */
static int
cfgwatch_add(struct cfgwatch *w, const char *path, int folder)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/'), *name;
	struct wname *v;
	int wd;

	if (folder) {
		snprintf(dir, sizeof(dir), "%s", path);
		name = NULL;
	} else {
		snprintf(dir, sizeof(dir), "%.*s", slash == NULL ? 1 :
		    slash == path ? 1 : (int)(slash - path),
		    slash == NULL ? "." : path);
		name = slash == NULL ? path : slash + 1;
	}
	if ((wd = inotify_add_watch(w->fd, dir, EO_WATCH_EVENTS)) == -1) {
		log_warn("watch_config: cannot watch %s", dir);
		return 0;
	}
	if ((v = reallocarray(w->v, w->n + 1, sizeof(*v))) == NULL)
		return -1;
	w->v = v;
	v[w->n].wd = wd;
	v[w->n].name = NULL;
	if (name != NULL && (v[w->n].name = strdup(name)) == NULL)
		return -1;
	w->n++;
	return 0;
}

/* Whether an event on wd about name is one of ours. */
static int
cfgwatch_matters(const struct cfgwatch *w, int wd, const char *name)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (w->v[i].wd != wd)
			continue;
		if (w->v[i].name == NULL || strcmp(name, "..data") == 0 ||
		    strcmp(name, w->v[i].name) == 0)
			return 1;
	}
	return 0;
}

/* Reads every event waiting; 1 if one of them matters. */
static int
cfgwatch_read(struct cfgwatch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct
	    inotify_event))));
	const struct inotify_event *e;
	ssize_t n;
	int hit = 0;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (e = (const void *)buf; (const char *)e < buf + n;
		    e = (const void *)((const char *)(e + 1) + e->len))
			hit |= e->len > 0 && cfgwatch_matters(w, e->wd,
			    e->name);
	}
	return hit;
}

void
cfgwatch_poke(struct cfgwatch *w)
{
	struct timeval later = { 0, EO_WATCH_DEBOUNCE_MS * 1000 };

	/* Each event pushes the timer back: one reload per burst. */
	evtimer_add(w->ev_fire, &later);
}

int
cfgwatch_pending(struct cfgwatch *w)
{
	return cfgwatch_read(w) || evtimer_pending(w->ev_fire, NULL);
}

static void
cfgwatch_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct cfgwatch *w = arg;

	(void)fd;
	(void)what;
	if (cfgwatch_read(w))
		cfgwatch_poke(w);
}

static void
cfgwatch_firecb(evutil_socket_t fd, short what, void *arg)
{
	struct cfgwatch *w = arg;

	(void)fd;
	(void)what;
	w->fire(w->arg);
}

struct cfgwatch *
cfgwatch_new(struct event_base *base, const struct cfg *cfg,
    void (*fire)(void *), void *arg, char *err, size_t errlen)
{
	struct cfgwatch *w = calloc(1, sizeof(*w));
	size_t i;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->fire = fire;
	w->arg = arg;
	if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		snprintf(err, errlen, "inotify: %s", strerror(errno));
		free(w);
		return NULL;
	}
	w->ev_read = event_new(base, w->fd, EV_READ | EV_PERSIST,
	    cfgwatch_readcb, w);
	w->ev_fire = evtimer_new(base, cfgwatch_firecb, w);
	if (w->ev_read == NULL || w->ev_fire == NULL ||
	    event_add(w->ev_read, NULL) == -1)
		goto fail;
	for (i = 0; i < cfg->nfiles; i++)
		if (cfgwatch_add(w, cfg->files[i], 0) == -1)
			goto fail;
	if (cfg->dropin_dir != NULL &&
	    cfgwatch_add(w, cfg->dropin_dir, 1) == -1)
		goto fail;
	return w;
fail:
	snprintf(err, errlen, "out of memory");
	cfgwatch_free(w);
	return NULL;
}

void
cfgwatch_free(struct cfgwatch *w)
{
	size_t i;

	if (w == NULL)
		return;
	if (w->ev_read != NULL)
		event_free(w->ev_read);
	if (w->ev_fire != NULL)
		event_free(w->ev_fire);
	for (i = 0; i < w->n; i++)
		free(w->v[i].name);
	free(w->v);
	close(w->fd);
	free(w);
}
