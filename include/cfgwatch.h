/*
 * Watching the configuration's files (watch_config): inotify on the
 * folders that hold them, so that a file replaced by a rename (an
 * editor's save, a Kubernetes ConfigMap's "..data" symlink swap) is
 * seen as well as one written in place.  Events are debounced: the
 * callback runs once, EO_WATCH_DEBOUNCE_MS after the last of a burst.
 *
 * Threads: the event base's (the main thread).
 */
#ifndef EO_CFGWATCH_H
#define EO_CFGWATCH_H

#define EO_WATCH_DEBOUNCE_MS	500

struct cfg;
struct event_base;
struct cfgwatch;

/*
 * Watches the folders of cfg's files and its include_dir; fire(arg)
 * runs on base after a change.  NULL on failure, with the reason in
 * err.  A folder that cannot be watched is logged and left out.
 */
struct cfgwatch *cfgwatch_new(struct event_base *base,
	    const struct cfg *cfg, void (*fire)(void *), void *arg,
	    char *err, size_t errlen);
void	cfgwatch_free(struct cfgwatch *w);
/*
 * Whether a change is waiting: seen and not yet called back, or not
 * yet read.  For a watcher about to be replaced: its successor is
 * poked (cfgwatch_poke()) so that the change is not lost.
 */
int	cfgwatch_pending(struct cfgwatch *w);
/* As if a change were seen now: the callback runs after the debounce. */
void	cfgwatch_poke(struct cfgwatch *w);

#endif
