/*
 * Workers: one thread each, with its own event_base, owning the
 * connections handed to it for their whole life.  Workers share nothing
 * mutable but atomic counters; the main thread talks to a worker only
 * through its mailbox (a locked queue and an eventfd to wake it), so no
 * libevent object is ever touched by two threads.
 */
#ifndef EO_WORKER_H
#define EO_WORKER_H

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

#include "handover.h"

struct cfg_listener;
struct conn_handoff;
struct conn_home;
struct guard;
struct stats;
struct udp_rate;
struct udp_sock;
struct worker;

/*
 * Starts worker number id.  done_fd is an eventfd the worker adds 1 to
 * once, when it has no connection left after worker_drain() or
 * worker_abort().  NULL with the reason in err on failure.
 */
struct worker *worker_start(unsigned id, struct stats *stats, int done_fd,
	    char *err, size_t errlen);

/* Hands a connection over (main thread); -1 if it could not be queued,
   and the caller still owns ho. */
int	worker_dispatch(struct worker *w, const struct conn_handoff *ho);
/*
 * Accepting on the workers.  worker_watch() (main thread) puts the
 * listening socket fd in w's accept set: from then on, when clients are
 * queued on it, fn(w, sock) runs on w's thread with w's accept lock
 * held, to accept them.  worker_unwatch() takes it out: once it
 * returns, fn is not running for it and will not run again, so the
 * socket may be closed.  The main thread holds the lock
 * (worker_accept_lock(), recursive) while it changes anything fn reads.
 * worker_accept_pause() (w's thread, from fn) stops w accepting from
 * any socket for ms milliseconds: out of descriptors.
 */
typedef void (*worker_accept_fn)(struct worker *w, void *sock);
int	worker_watch(struct worker *w, int fd, void *sock,
	    worker_accept_fn fn);
void	worker_unwatch(struct worker *w, int fd);
void	worker_accept_lock(struct worker *w);
void	worker_accept_unlock(struct worker *w);
void	worker_accept_pause(struct worker *w, unsigned ms);
/* 1 if a client wakes one idle worker, 0 if every idle one (worker.c). */
int	worker_accepts_one_at_a_time(const struct worker *w);
/* w's number, as given to worker_start(): its counters' slot. */
unsigned worker_id(const struct worker *w);
/*
 * worker_reserve() counts a connection in w's load before it is handed
 * over, so that the next pick sees it (any thread).  worker_hand()
 * posts ho to w as worker_dispatch() does, the load already counted; -1
 * if it could not be posted: the reservation is given back and the
 * caller still owns ho.  worker_home(): w's connections, for w's own
 * thread only (a connection it accepted for itself is adopted there at
 * once, with no mail: conn_adopt()).
 */
void	worker_reserve(struct worker *w);
int	worker_hand(struct worker *w, const struct conn_handoff *ho);
struct conn_home *worker_home(struct worker *w);
/* Shutdown: close the idle, flush the rest, then report on done_fd. */
void	worker_drain(struct worker *w);
/* Grace is over: close everything now, then report on done_fd. */
void	worker_abort(struct worker *w);
/* Ends the thread's loop, joins it and frees the worker. */
void	worker_stop(struct worker *w);

/*
 * UDP sockets (main thread): w serves us from now on under lc and its
 * listener's rate table (taking references to lc->cfg, g and rate, which
 * may be NULL), stops watching it, or closes and frees it.  After
 * worker_udp_close() the caller must not touch us.
 */
void	worker_udp_serve(struct worker *w, struct udp_sock *us,
	    const struct cfg_listener *lc, struct guard *g,
	    struct udp_rate *rate);
void	worker_udp_park(struct worker *w, struct udp_sock *us);
void	worker_udp_close(struct worker *w, struct udp_sock *us);

/*
 * A restart (main thread): worker_freeze() asks w to write out its
 * connections into fz->buf and their sockets into fz->fds (malloc'd),
 * close those it cannot (fz->nclosed), post fz->done, and wait,
 * frozen, for fz->thaw; thawed, it posts fz->done once more and serves
 * on.  fz->failed: out of memory.
 */
struct worker_freeze {
	struct ho_buf		 buf;
	int			*fds;
	size_t			 nfds;
	unsigned		 nclosed;	/* not carriable: closed */
	int			 failed;
	sem_t			 done;
	sem_t			 thaw;
};
void	worker_freeze(struct worker *w, struct worker_freeze *fz);
/* A carried connection for w (counted as worker_dispatch() does); -1
   if it could not be queued, and the caller still owns ho and rec. */
int	worker_resume(struct worker *w, const struct conn_handoff *ho,
	    struct ho_conn *rec);

/* Connections dispatched to w and not yet closed (any thread). */
unsigned worker_load(const struct worker *w);

#endif
