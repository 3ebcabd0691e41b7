/*
 * The server: see include/server.h.
 *
 * Threads: this file runs on the main thread only.  It owns the
 * listening sockets (struct lsock), the run-time listeners and the
 * workers, and is the only code that accepts.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "protocol.h"
#include "server.h"
#include "stats.h"
#include "systemd.h"
#include "worker.h"

#define EO_RESUME_MS	100	/* accept again after running out of fds */
#define EO_SPARE_DRAIN	64	/* accept-and-close at most this many */
#define EO_FD_RESERVE	64	/* fds beyond max_connections we need */

/* One listening socket. */
struct lsock {
	struct server		*srv;
	struct listener		*lis;		/* serving it; NULL: parked */
	struct evconnlistener	*evl;
	struct cfg_addr		 addr;
	int			 fd;
	int			 backlog;
	char			*sd_name;	/* passed by systemd under
						   this name; NULL: ours */
};

/* A run of refusals for one reason: logged when it starts and ends. */
struct burst {
	unsigned long		 seen;		/* counter at the last tick */
	unsigned long		 start;		/* counter when it began */
	time_t			 began;
	int			 active;
};

struct server {
	struct event_base	*base;
	struct cfg		*cfg;		/* the running generation */
	struct stats		 stats;
	int			 debug;		/* -d: log_level stays debug */

	struct worker		**workers;
	unsigned		 nworkers;
	unsigned		 rr;		/* where the next pick starts */

	struct listener		**lis;		/* enabled, by cfg order */
	size_t			 nlis;
	struct lsock		**socks;	/* all, parked included */
	size_t			 nsocks;

	struct event		*ev_hup, *ev_term, *ev_int;
	struct event		*ev_tick;	/* 1 s: bursts, status */
	struct event		*ev_resume;	/* after EMFILE */
	struct event		*ev_grace;	/* shutdown grace is over */
	struct event		*ev_done;	/* on done_fd */
	struct event		*ev_watchdog;
	int			 done_fd;	/* workers: "drained" */
	unsigned		 ndrained;
	int			 spare_fd;	/* given up at EMFILE */
	int			 stopping;
	int			 paused;	/* accepting paused (EMFILE) */

	uint64_t		 watchdog_usec;
	unsigned long		*beats;		/* workers' last heartbeat */
	time_t			*beat_at;	/* when it last moved */

	unsigned		 status_conns;
	struct burst		 bursts[EO_NREFUSALS + 1]; /* + evictions */
	char			 refused_by[EO_NREFUSALS][EO_NAME_MAX + 1];
	unsigned		 refused_limit[EO_NREFUSALS];
};

static void	server_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	server_accept_error(struct evconnlistener *, void *);

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- listening sockets -------------------------------------------- */

static struct lsock *
lsock_new(struct server *srv, int fd, const struct cfg_addr *addr,
    int backlog, const char *sd_name, char *err, size_t errlen)
{
	struct lsock *ls = calloc(1, sizeof(*ls));

	if (ls == NULL || (sd_name != NULL &&
	    (ls->sd_name = strdup(sd_name)) == NULL)) {
		snprintf(err, errlen, "%s: out of memory", addr->text);
		free(ls);
		return NULL;
	}
	ls->srv = srv;
	ls->fd = fd;
	ls->addr = *addr;
	ls->backlog = backlog;
	/* Backlog 0: the socket already listens.  Accepted sockets come
	   non-blocking; CLOSE_ON_EXEC makes them close-on-exec too. */
	ls->evl = evconnlistener_new(srv->base, server_accept, ls,
	    LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ls->evl == NULL) {
		snprintf(err, errlen, "%s: cannot watch the socket",
		    addr->text);
		free(ls->sd_name);
		free(ls);
		return NULL;
	}
	evconnlistener_set_error_cb(ls->evl, server_accept_error);
	evconnlistener_disable(ls->evl);	/* until a listener owns it */
	return ls;
}

static struct lsock *
lsock_open(struct server *srv, const struct cfg_addr *addr, int backlog,
    char *err, size_t errlen)
{
	struct lsock *ls;
	int fd;

	if ((fd = listener_bind(addr, backlog, err, errlen)) == -1)
		return NULL;
	if ((ls = lsock_new(srv, fd, addr, backlog, NULL, err, errlen)) ==
	    NULL)
		close(fd);
	return ls;
}

static void
lsock_free(struct lsock *ls)
{
	evconnlistener_free(ls->evl);
	close(ls->fd);
	free(ls->sd_name);
	free(ls);
}

/* An open socket of ours (not systemd's) bound to a, or NULL. */
static struct lsock *
lsock_find(struct server *srv, const struct cfg_addr *a)
{
	size_t i;

	for (i = 0; i < srv->nsocks; i++) {
		struct lsock *ls = srv->socks[i];

		if (ls->sd_name == NULL && ls->addr.len == a->len &&
		    memcmp(&ls->addr.ss, &a->ss, a->len) == 0)
			return ls;
	}
	return NULL;
}

static int
has_sd_socket(struct server *srv, const char *name)
{
	size_t i;

	for (i = 0; i < srv->nsocks; i++)
		if (srv->socks[i]->sd_name != NULL &&
		    strcmp(srv->socks[i]->sd_name, name) == 0)
			return 1;
	return 0;
}

static void
server_set_accepting(struct server *srv, int on)
{
	size_t i;

	for (i = 0; i < srv->nsocks; i++) {
		struct lsock *ls = srv->socks[i];

		if (on && ls->lis != NULL)
			evconnlistener_enable(ls->evl);
		else
			evconnlistener_disable(ls->evl);
	}
}

/* ---- applying a configuration ------------------------------------- */

/* What a configuration needs, found or opened before anything changes. */
struct plan {
	struct listener		**lis;		/* one per enabled listener */
	size_t			  nlis;
	struct lsock		**socks;	/* the sockets they serve */
	struct listener		**owner;	/* ... and whose each is */
	size_t			  nsocks;
	struct lsock		**fresh;	/* opened for this plan */
	size_t			  nfresh;
	struct listener		**made;		/* created for this plan */
	size_t			  nmade;
};

static void
plan_free(struct plan *p)
{
	free(p->lis);
	free(p->socks);
	free(p->owner);
	free(p->fresh);
	free(p->made);
}

/* Undoes a plan that will not be applied. */
static void
plan_abandon(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->nfresh; i++)
		lsock_free(p->fresh[i]);
	for (i = 0; i < p->nmade; i++)
		listener_unref(p->made[i]);
	plan_free(p);
}

static struct listener *
server_find_listener(struct server *srv, const char *name)
{
	size_t i;

	for (i = 0; i < srv->nlis; i++)
		if (strcmp(listener_name(srv->lis[i]), name) == 0)
			return srv->lis[i];
	return NULL;
}

static int
plan_listener(struct server *srv, struct plan *p,
    const struct cfg_listener *lc, char *err, size_t errlen)
{
	struct listener *l = server_find_listener(srv, lc->name);
	size_t i;

	if (l == NULL) {
		if ((l = listener_new(lc)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->made[p->nmade++] = l;
	}
	p->lis[p->nlis++] = l;
	if (has_sd_socket(srv, lc->name)) {
		for (i = 0; i < srv->nsocks; i++)
			if (srv->socks[i]->sd_name != NULL &&
			    strcmp(srv->socks[i]->sd_name, lc->name) == 0) {
				p->owner[p->nsocks] = l;
				p->socks[p->nsocks++] = srv->socks[i];
			}
		return 0;
	}
	for (i = 0; i < lc->naddrs; i++) {
		struct lsock *ls = lsock_find(srv, &lc->addrs[i]);

		if (ls == NULL) {
			ls = lsock_open(srv, &lc->addrs[i], lc->backlog, err,
			    errlen);
			if (ls == NULL)
				return -1;
			p->fresh[p->nfresh++] = ls;
		} else if (ls->backlog != lc->backlog &&
		    listen(ls->fd, lc->backlog) == 0)
			ls->backlog = lc->backlog;	/* listen() again */
		p->owner[p->nsocks] = l;
		p->socks[p->nsocks++] = ls;
	}
	return 0;
}

static int
plan_member(struct lsock *const *v, size_t n, const struct lsock *ls)
{
	while (n-- > 0)
		if (v[n] == ls)
			return 1;
	return 0;
}

/* Swaps the plan in: nothing here can fail. */
static void
plan_commit(struct server *srv, struct plan *p, struct cfg *cfg)
{
	struct lsock **kept = p->socks;
	size_t i, j, nkept = p->nsocks;

	/* Sockets the new configuration does not serve. */
	for (i = 0; i < srv->nsocks; i++) {
		struct lsock *ls = srv->socks[i];

		if (plan_member(p->socks, p->nsocks, ls))
			continue;
		if (ls->sd_name != NULL) {
			/* systemd keeps its copy anyway: park ours, so a
			   later reload can serve it again. */
			if (ls->lis != NULL)
				log_warnx("socket %s from systemd (\"%s\") "
				    "has no listener any more: not serving it",
				    ls->addr.text, ls->sd_name);
			evconnlistener_disable(ls->evl);
			ls->lis = NULL;
			kept[nkept++] = ls;
		} else {
			log_info("listener %s: closed %s", ls->lis != NULL ?
			    listener_name(ls->lis) : "?", ls->addr.text);
			lsock_free(ls);
		}
	}
	for (i = 0; i < p->nlis; i++) {
		for (j = 0; j < cfg->nlisteners; j++)
			if (strcmp(cfg->listeners[j].name,
			    listener_name(p->lis[i])) == 0)
				listener_set_config(p->lis[i],
				    &cfg->listeners[j]);
	}
	for (i = 0; i < p->nsocks; i++) {
		struct lsock *ls = p->socks[i];
		const struct cfg_listener *lc = listener_config(p->owner[i]);

		if (ls->lis != p->owner[i] || plan_member(p->fresh,
		    p->nfresh, ls))
			log_info("listener %s (%s): listening on %s%s",
			    lc->name, lc->proto->name, ls->addr.text,
			    ls->sd_name ? " (socket from systemd)" : "");
		ls->lis = p->owner[i];
		if (!srv->paused && !srv->stopping)
			evconnlistener_enable(ls->evl);
	}
	/* The server's references to listeners that are gone. */
	for (i = 0; i < srv->nlis; i++) {
		for (j = 0; j < p->nlis; j++)
			if (p->lis[j] == srv->lis[i])
				break;
		if (j == p->nlis)
			listener_unref(srv->lis[i]);
	}
	free(srv->lis);
	free(srv->socks);
	srv->lis = p->lis;
	srv->nlis = p->nlis;
	srv->socks = kept;
	srv->nsocks = nkept;
	p->lis = NULL;
	p->socks = NULL;
	plan_free(p);
	if (srv->cfg != NULL)
		cfg_unref(srv->cfg);
	srv->cfg = cfg;
}

/*
 * Makes cfg the running configuration: every listener's sockets found
 * (kept open: no gap) or opened first, and only if all succeed, the
 * swap.  Takes over the reference to cfg on success.
 */
static int
server_apply(struct server *srv, struct cfg *cfg, char *err, size_t errlen)
{
	struct plan p;
	size_t i, naddrs = 0, n = cfg->nlisteners;

	memset(&p, 0, sizeof(p));
	for (i = 0; i < n; i++)
		naddrs += cfg->listeners[i].naddrs;
	naddrs += srv->nsocks;
	p.lis = calloc(n, sizeof(*p.lis));
	p.made = calloc(n, sizeof(*p.made));
	p.socks = calloc(naddrs, sizeof(*p.socks));
	p.owner = calloc(naddrs, sizeof(*p.owner));
	p.fresh = calloc(naddrs, sizeof(*p.fresh));
	if (p.lis == NULL || p.made == NULL || p.socks == NULL ||
	    p.owner == NULL || p.fresh == NULL) {
		snprintf(err, errlen, "out of memory");
		plan_abandon(&p);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (cfg->listeners[i].enabled && plan_listener(srv, &p,
		    &cfg->listeners[i], err, errlen) == -1) {
			plan_abandon(&p);
			return -1;
		}
	plan_commit(srv, &p, cfg);
	return 0;
}

/* ---- accepting ---------------------------------------------------- */

static struct worker *
server_pick(struct server *srv)
{
	unsigned i, best = srv->rr % srv->nworkers, load;
	unsigned best_load = worker_load(srv->workers[best]);

	/* Least loaded: connections live long and unevenly, so round robin
	   alone would let the workers drift apart. */
	for (i = 1; i < srv->nworkers; i++) {
		unsigned k = (srv->rr + i) % srv->nworkers;

		if ((load = worker_load(srv->workers[k])) < best_load) {
			best = k;
			best_load = load;
		}
	}
	srv->rr = best + 1;
	return srv->workers[best];
}

static void
server_refuse(struct server *srv, struct lsock *ls, int fd,
    enum stats_refusal why, unsigned limit)
{
	close(fd);
	stats_sub(&srv->stats.conns, 1);
	stats_add(&srv->stats.refused[why], 1);
	snprintf(srv->refused_by[why], sizeof(srv->refused_by[why]), "%s",
	    ls->lis != NULL ? listener_name(ls->lis) : "?");
	srv->refused_limit[why] = limit;
}

static void
server_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int slen, void *arg)
{
	struct lsock *ls = arg;
	struct server *srv = ls->srv;
	const struct cfg_listener *lc;
	struct conn_handoff ho;
	int per_source;

	(void)evl;
	(void)slen;
	stats_add(&srv->stats.conns, 1);
	if (ls->lis == NULL || srv->stopping) {
		server_refuse(srv, ls, fd, EO_REFUSED_OTHER, 0);
		return;
	}
	lc = listener_config(ls->lis);
	memset(&ho, 0, sizeof(ho));
	ho.fd = fd;
	ho.lc = lc;
	peer_key_from(&ho.peer, sa);
	if (stats_get(&srv->stats.conns) > srv->cfg->max_conns) {
		if (srv->cfg->evict_after == 0) {
			server_refuse(srv, ls, fd, EO_REFUSED_FULL,
			    srv->cfg->max_conns);
			return;
		}
		ho.evict = 1;	/* the worker evicts a quiet one or refuses */
		ho.evict_after = srv->cfg->evict_after;
	}
	switch (listener_admit(ls->lis, &ho.peer, &per_source)) {
	case EO_ADMIT_LISTENER_FULL:
		server_refuse(srv, ls, fd, EO_REFUSED_LISTENER, lc->max_conns);
		return;
	case EO_ADMIT_SOURCE_FULL:
		server_refuse(srv, ls, fd, EO_REFUSED_SOURCE,
		    lc->max_per_source);
		return;
	case EO_ADMIT_OK:
		break;
	}
	ho.lis = ls->lis;
	ho.per_source = (uint8_t)per_source;
	cfg_ref(lc->cfg);
	if (log_enabled(EO_LOG_DEBUG)) {
		char peer[EO_ADDR_TEXT_MAX];

		peer_format(sa, peer, sizeof(peer));
		log_debug("listener %s: fd %d accepted from %s", lc->name,
		    (int)fd, peer);
	}
	if (worker_dispatch(server_pick(srv), &ho) == -1) {
		conn_handoff_release(&srv->stats, &ho);
		stats_add(&srv->stats.refused[EO_REFUSED_OTHER], 1);
		return;
	}
	stats_add(&srv->stats.accepted, 1);
}

/*
 * Out of descriptors.  libevent's listener would call accept() again at
 * once, forever, at 100% CPU.  Instead: give up the spare descriptor to
 * accept and close what waits (those clients hear "no" now instead of
 * hanging), and stop accepting for a moment.
 */
static void
server_fd_starved(struct server *srv, struct lsock *ls)
{
	int i, fd;

	for (i = 0; i < EO_SPARE_DRAIN; i++) {
		if (srv->spare_fd != -1) {
			close(srv->spare_fd);
			srv->spare_fd = -1;
		}
		if ((fd = accept4(ls->fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			break;
		close(fd);
		stats_add(&srv->stats.refused[EO_REFUSED_FDS], 1);
		snprintf(srv->refused_by[EO_REFUSED_FDS],
		    sizeof(srv->refused_by[EO_REFUSED_FDS]), "%s",
		    ls->lis != NULL ? listener_name(ls->lis) : "?");
		if ((srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) ==
		    -1)
			break;
	}
	if (srv->spare_fd == -1)
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!srv->paused) {
		struct timeval tv = { 0, EO_RESUME_MS * 1000 };

		srv->paused = 1;
		server_set_accepting(srv, 0);
		evtimer_add(srv->ev_resume, &tv);
	}
}

static void
server_accept_error(struct evconnlistener *evl, void *arg)
{
	struct lsock *ls = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)evl;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		server_fd_starved(ls->srv, ls);
		return;
	}
	/* Anything else (EPERM from a firewall, say) concerns one client. */
	errno = err;
	log_warn("listener %s: accept on %s", ls->lis != NULL ?
	    listener_name(ls->lis) : "?", ls->addr.text);
}

static void
server_resumecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	srv->paused = 0;
	if (!srv->stopping)
		server_set_accepting(srv, 1);
}

/* ---- once a second ------------------------------------------------ */

static void
burst_describe(struct server *srv, int r, char *buf, size_t len)
{
	switch (r) {
	case EO_REFUSED_FULL:
		snprintf(buf, len, "max_connections (%u) reached and no "
		    "connection quiet for %u s to evict", srv->cfg->max_conns,
		    srv->cfg->evict_after);
		break;
	case EO_REFUSED_LISTENER:
		snprintf(buf, len, "listener %s reached its max_connections "
		    "(%u)", srv->refused_by[r], srv->refused_limit[r]);
		break;
	case EO_REFUSED_SOURCE:
		snprintf(buf, len, "a client of listener %s reached "
		    "max_connections_per_source (%u)", srv->refused_by[r],
		    srv->refused_limit[r]);
		break;
	case EO_REFUSED_FDS:
		snprintf(buf, len, "out of file descriptors (listener %s); "
		    "raise LimitNOFILE= or ulimit -n", srv->refused_by[r]);
		break;
	case EO_REFUSED_OTHER:
		snprintf(buf, len, "shutting down or out of memory");
		break;
	default:
		snprintf(buf, len, "max_connections (%u) reached: evicting "
		    "the connections quiet for longest", srv->cfg->max_conns);
		break;
	}
}

static void
server_bursts(struct server *srv)
{
	char what[256];
	int r;

	for (r = 0; r <= EO_NREFUSALS; r++) {
		struct burst *b = &srv->bursts[r];
		unsigned long now = r < EO_NREFUSALS ?
		    stats_get(&srv->stats.refused[r]) :
		    stats_get(&srv->stats.evicted);

		if (now != b->seen && !b->active) {
			b->active = 1;
			b->start = b->seen;
			b->began = mono_now();
			burst_describe(srv, r, what, sizeof(what));
			log_warnx("%s connections: %s", r < EO_NREFUSALS ?
			    "refusing" : "evicting", what);
		} else if (now == b->seen && b->active) {
			b->active = 0;
			burst_describe(srv, r, what, sizeof(what));
			log_notice("%s %lu connections in %lld s: %s",
			    r < EO_NREFUSALS ? "refused" : "evicted",
			    now - b->start, (long long)(mono_now() - b->began),
			    what);
		}
		b->seen = now;
	}
}

static void
server_status(struct server *srv, int force)
{
	unsigned n = stats_get(&srv->stats.conns);
	char names[256];
	size_t i, len = 0;

	if (!force && n == srv->status_conns)
		return;
	srv->status_conns = n;
	names[0] = '\0';
	for (i = 0; i < srv->nlis && len < sizeof(names); i++) {
		int k = snprintf(names + len, sizeof(names) - len, "%s%s",
		    i ? ", " : "", listener_name(srv->lis[i]));
		if (k > 0)
			len += (size_t)k;
	}
	systemd_status("Serving %zu listener%s (%s); %u connection%s",
	    srv->nlis, srv->nlis == 1 ? "" : "s", names, n,
	    n == 1 ? "" : "s");
}

static void
server_tickcb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	server_bursts(srv);
	if (!srv->stopping)
		server_status(srv, 0);
}

/* Fed only while every worker's loop still turns. */
static void
server_watchdogcb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	time_t now = mono_now();
	time_t stuck = (time_t)(srv->watchdog_usec / 1000000);
	unsigned i;

	(void)fd;
	(void)what;
	if (stuck < 3)
		stuck = 3;
	for (i = 0; i < srv->nworkers; i++) {
		unsigned long beat = worker_heartbeat(srv->workers[i]);

		if (beat != srv->beats[i]) {
			srv->beats[i] = beat;
			srv->beat_at[i] = now;
		} else if (now - srv->beat_at[i] > stuck) {
			log_err("worker %u is stuck (no loop turn for %lld s): "
			    "not feeding the watchdog", i,
			    (long long)(now - srv->beat_at[i]));
			return;
		}
	}
	systemd_watchdog_ping();
}

/* ---- reload and stop ---------------------------------------------- */

static void
server_reload(struct server *srv)
{
	struct cfg_diag d;
	struct cfg *cfg;
	char err[512];
	size_t i;

	if (srv->stopping)
		return;
	systemd_reloading();
	log_info("reloading %s", srv->cfg->path);
	cfg_diag_init(&d);
	if ((cfg = cfg_load_file(srv->cfg->path, &d)) == NULL) {
		for (i = 0; i < d.n; i++)
			log_err("%s", d.msgs[i]);
		log_warnx("reload failed (%zu error%s): still running the "
		    "previous configuration", d.n, d.n == 1 ? "" : "s");
		cfg_diag_free(&d);
		systemd_ready("Reload failed: configuration errors, see the "
		    "log; running the previous configuration");
		return;
	}
	cfg_diag_free(&d);
	if (cfg->workers != srv->cfg->workers)
		log_notice("workers changed: takes effect at the next start; "
		    "still %u", srv->nworkers);
	if (server_apply(srv, cfg, err, sizeof(err)) == -1) {
		log_err("%s", err);
		log_warnx("reload failed: still running the previous "
		    "configuration");
		cfg_unref(cfg);
		systemd_ready("Reload failed: cannot open a listener, see the "
		    "log; running the previous configuration");
		return;
	}
	log_set_level(srv->debug ? EO_LOG_DEBUG : cfg->log_level);
	log_info("reloaded %s: %zu listener%s", cfg->path, srv->nlis,
	    srv->nlis == 1 ? "" : "s");
	systemd_ready("Reloaded");
	server_status(srv, 1);
}

static void
server_stop(struct server *srv, const char *why)
{
	struct timeval grace = { (time_t)srv->cfg->shutdown_timeout, 0 };
	size_t i;

	if (srv->stopping) {
		log_notice("%s again: closing every connection now", why);
		for (i = 0; i < srv->nworkers; i++)
			worker_abort(srv->workers[i]);
		return;
	}
	srv->stopping = 1;
	systemd_stopping();
	log_info("stopping (%s): %u connections, up to %u s to finish",
	    why, stats_get(&srv->stats.conns), srv->cfg->shutdown_timeout);
	/* No more accepting: the sockets close now. */
	for (i = 0; i < srv->nsocks; i++)
		lsock_free(srv->socks[i]);
	srv->nsocks = 0;
	for (i = 0; i < srv->nworkers; i++)
		worker_drain(srv->workers[i]);
	evtimer_add(srv->ev_grace, &grace);
}

static void
server_signalcb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGHUP)
		server_reload(srv);
	else
		server_stop(srv, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void
server_gracecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	unsigned i;

	(void)fd;
	(void)what;
	log_notice("shutdown_timeout (%u s) is over: closing %u connections",
	    srv->cfg->shutdown_timeout, stats_get(&srv->stats.conns));
	for (i = 0; i < srv->nworkers; i++)
		worker_abort(srv->workers[i]);
}

static void
server_donecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	srv->ndrained += (unsigned)n;
	if (srv->ndrained >= srv->nworkers)
		event_base_loopexit(srv->base, NULL);
}

/* ---- start and end ------------------------------------------------ */

static void
server_free(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i] != NULL)
			worker_stop(srv->workers[i]);
	free(srv->workers);
	for (i = 0; i < srv->nsocks; i++)
		lsock_free(srv->socks[i]);
	free(srv->socks);
	for (i = 0; i < srv->nlis; i++)
		listener_unref(srv->lis[i]);
	free(srv->lis);
	if (srv->cfg != NULL)
		cfg_unref(srv->cfg);
	if (srv->ev_hup) event_free(srv->ev_hup);
	if (srv->ev_term) event_free(srv->ev_term);
	if (srv->ev_int) event_free(srv->ev_int);
	if (srv->ev_tick) event_free(srv->ev_tick);
	if (srv->ev_resume) event_free(srv->ev_resume);
	if (srv->ev_grace) event_free(srv->ev_grace);
	if (srv->ev_done) event_free(srv->ev_done);
	if (srv->ev_watchdog) event_free(srv->ev_watchdog);
	if (srv->done_fd != -1)
		close(srv->done_fd);
	if (srv->spare_fd != -1)
		close(srv->spare_fd);
	free(srv->beats);
	free(srv->beat_at);
	if (srv->base != NULL)
		event_base_free(srv->base);
	free(srv);
}

/*
 * Enough descriptors for max_connections: raise the soft limit toward
 * the hard one.  Short of it, accept() will meet EMFILE first, which is
 * survived (server_fd_starved) but worth a warning now.
 */
static void
server_fd_limit(const struct cfg *cfg)
{
	rlim_t want = (rlim_t)cfg->max_conns + EO_FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
	    want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		log_warnx("max_connections is %u but only %llu file "
		    "descriptors are allowed (RLIMIT_NOFILE): new clients will "
		    "be refused before max_connections; raise LimitNOFILE= or "
		    "ulimit -n", cfg->max_conns,
		    (unsigned long long)rl.rlim_cur);
}

static unsigned
cpu_count(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    (n = CPU_COUNT(&set)) > 0)
		return (unsigned)n;
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/*
 * Sockets from socket activation become parked lsocks named after their
 * FileDescriptorName=.  Every name must be an enabled listener, and,
 * when activated at all, every enabled listener must have a socket.
 */
static int
server_adopt_systemd(struct server *srv, const struct cfg *cfg, char *err,
    size_t errlen)
{
	struct systemd_socket *sd;
	int i, n = systemd_sockets(&sd, err, errlen);
	size_t j;

	if (n <= 0)
		return n;
	for (i = 0; i < n; i++) {
		const struct cfg_listener *lc = cfg_find_listener(cfg,
		    sd[i].name);

		if (lc == NULL || !lc->enabled) {
			snprintf(err, errlen, "socket activation: systemd "
			    "passed a socket named \"%s\" but %s has no %s "
			    "listener of that name (FileDescriptorName= must "
			    "be a listener's name)", sd[i].name, cfg->path,
			    lc == NULL ? "" : "enabled");
			goto fail;
		}
	}
	for (j = 0; j < cfg->nlisteners; j++) {
		const struct cfg_listener *lc = &cfg->listeners[j];

		for (i = 0; i < n; i++)
			if (strcmp(sd[i].name, lc->name) == 0)
				break;
		if (lc->enabled && i == n) {
			snprintf(err, errlen, "socket activation: listener "
			    "\"%s\" has no socket from systemd: add a "
			    "ListenStream= with FileDescriptorName=%s, or "
			    "disable the listener", lc->name, lc->name);
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		struct cfg_addr a;
		struct lsock *ls, **v;
		int fl = fcntl(sd[i].fd, F_GETFL);

		memset(&a, 0, sizeof(a));
		a.len = sizeof(a.ss);
		if (getsockname(sd[i].fd, (struct sockaddr *)&a.ss, &a.len) ==
		    -1)
			a.len = 0;
		peer_format((struct sockaddr *)&a.ss, a.text, sizeof(a.text));
		/* libevent's accept loop needs a non-blocking socket. */
		fcntl(sd[i].fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(sd[i].fd, F_SETFD, FD_CLOEXEC);
		if ((v = realloc(srv->socks, (srv->nsocks + 1) *
		    sizeof(*v))) == NULL ||
		    (ls = lsock_new(srv, sd[i].fd, &a, 0, sd[i].name, err,
		    errlen)) == NULL) {
			if (v != NULL)
				srv->socks = v;
			goto fail;
		}
		srv->socks = v;
		srv->socks[srv->nsocks++] = ls;
		sd[i].fd = -1;
	}
	free(sd);
	return n;
fail:
	for (i = 0; i < n; i++)
		if (sd[i].fd != -1)
			close(sd[i].fd);
	free(sd);
	return -1;
}

static int
server_events(struct server *srv)
{
	struct timeval second = { 1, 0 };

	srv->ev_hup = evsignal_new(srv->base, SIGHUP, server_signalcb, srv);
	srv->ev_term = evsignal_new(srv->base, SIGTERM, server_signalcb, srv);
	srv->ev_int = evsignal_new(srv->base, SIGINT, server_signalcb, srv);
	srv->ev_tick = event_new(srv->base, -1, EV_PERSIST, server_tickcb,
	    srv);
	srv->ev_resume = evtimer_new(srv->base, server_resumecb, srv);
	srv->ev_grace = evtimer_new(srv->base, server_gracecb, srv);
	srv->ev_done = event_new(srv->base, srv->done_fd, EV_READ | EV_PERSIST,
	    server_donecb, srv);
	if (srv->ev_hup == NULL || srv->ev_term == NULL ||
	    srv->ev_int == NULL || srv->ev_tick == NULL ||
	    srv->ev_resume == NULL || srv->ev_grace == NULL ||
	    srv->ev_done == NULL || event_add(srv->ev_hup, NULL) == -1 ||
	    event_add(srv->ev_term, NULL) == -1 ||
	    event_add(srv->ev_int, NULL) == -1 ||
	    event_add(srv->ev_tick, &second) == -1 ||
	    event_add(srv->ev_done, NULL) == -1)
		return -1;
	if ((srv->watchdog_usec = systemd_watchdog_usec()) > 0) {
		struct timeval half = {
			(time_t)(srv->watchdog_usec / 2000000),
			(suseconds_t)(srv->watchdog_usec / 2 % 1000000) };

		srv->ev_watchdog = event_new(srv->base, -1, EV_PERSIST,
		    server_watchdogcb, srv);
		if (srv->ev_watchdog == NULL ||
		    event_add(srv->ev_watchdog, &half) == -1)
			return -1;
	}
	return 0;
}

static int
server_workers(struct server *srv, char *err, size_t errlen)
{
	unsigned i, n = srv->cfg->workers ? srv->cfg->workers : cpu_count();

	srv->workers = calloc(n, sizeof(*srv->workers));
	srv->beats = calloc(n, sizeof(*srv->beats));
	srv->beat_at = calloc(n, sizeof(*srv->beat_at));
	if (srv->workers == NULL || srv->beats == NULL ||
	    srv->beat_at == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		srv->workers[i] = worker_start(i, &srv->stats, srv->done_fd,
		    err, errlen);
		if (srv->workers[i] == NULL)
			return -1;
		srv->nworkers++;
		srv->beat_at[i] = mono_now();
	}
	return 0;
}

struct server *
server_start(struct cfg *cfg, int debug, char *err, size_t errlen,
    int *exit_code)
{
	struct server *srv = calloc(1, sizeof(*srv));
	int n;

	*exit_code = 1;
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		cfg_unref(cfg);
		return NULL;
	}
	srv->done_fd = srv->spare_fd = -1;
	srv->debug = debug;
	server_fd_limit(cfg);
	if ((srv->base = event_base_new()) == NULL ||
	    (srv->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot set up the event loop: %s",
		    strerror(errno));
		goto fail;
	}
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((n = server_adopt_systemd(srv, cfg, err, errlen)) == -1) {
		*exit_code = 78;
		goto fail;
	}
	if (server_apply(srv, cfg, err, errlen) == -1)
		goto fail;
	cfg = NULL;			/* srv->cfg holds it now */
	if (server_workers(srv, err, errlen) == -1 ||
	    server_events(srv) == -1) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot set up the event loop");
		goto fail;
	}
	return srv;
fail:
	if (cfg != NULL)
		cfg_unref(cfg);
	server_free(srv);
	return NULL;
}

void
server_run(struct server *srv)
{
	char status[128];

	log_info("echo-oracled %s started: %zu listener%s, %u worker%s, "
	    "max_connections %u", EO_VERSION, srv->nlis,
	    srv->nlis == 1 ? "" : "s", srv->nworkers,
	    srv->nworkers == 1 ? "" : "s", srv->cfg->max_conns);
	snprintf(status, sizeof(status), "Serving %zu listener%s",
	    srv->nlis, srv->nlis == 1 ? "" : "s");
	systemd_ready(status);
	event_base_dispatch(srv->base);
	{
		unsigned long n = stats_get(&srv->stats.accepted);

		log_info("stopped: %lu connection%s served", n,
		    n == 1 ? "" : "s");
	}
	server_free(srv);
}
