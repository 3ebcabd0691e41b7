/*
 * Connections: one TCP connection each, owned by one worker thread for
 * its whole life.  The generic rules live here once for every protocol:
 * reading, writing at once or queueing, backpressure, idle, write and
 * unit timeouts, half-close, flushing before closing, lingering close,
 * eviction at the limit, and freeing the buffers of quiet connections.
 * On a listener with proxy_protocol, the PROXY header comes first
 * (proxy.h): until it is whole nothing of the protocol runs; then the
 * client it names is screened (allow, deny), counted per source and
 * logged in place of the balancer.
 *
 * A connection holds buffers only while there is something to hold: a
 * bufferevent for output the socket would not take, a small buffer for an
 * unfinished unit of input.  An idle connection costs its struct.
 *
 * Every function here runs on the owning worker's thread.
 */
#ifndef EO_CONN_H
#define EO_CONN_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "listener.h"
#include "protocol.h"

struct event_base;
struct stats;
struct stats_slot;
struct conn;
struct conn_phase;
struct conn_xprt;

TAILQ_HEAD(conn_list, conn);

#define EO_IOV		1024	/* pieces in one sendmsg(2): Linux's IOV_MAX */

/* What a worker lends its connections. */
struct conn_home {
	struct event_base	*base;
	struct stats		*stats;
	struct stats_slot	*st;		/* stats->all: this worker's */
	unsigned		 id;		/* the worker's number */
	uint32_t		 last_id;	/* the last connection's id */
	unsigned char		*rbuf;		/* every read lands here */
	struct iovec		 iov[EO_IOV];	/* one call's replies */
	uint64_t		 rng;		/* protocols' PRNG */
	struct proto_conn_info	 info;		/* one call's facts (wants_info) */
	struct proto_info_src	 info_src;	/* lent to that call */
	const struct conn	*info_conn;	/* whose facts info_src gets */
	struct conn_list	 conns;		/* least recent progress first */
	int			 park_fd;	/* epoll set of parked (quiet)
						   connections (conn_park.c) */
	struct event		*park_ev;	/* park_fd readable, in base */
	struct conn_evpage	*ev_pages;	/* with free read events */
	struct conn_evpage	*ev_spare;	/* an empty one, kept */
	unsigned		 nconns;
	atomic_uint		 load;		/* dispatched here, not closed:
						   the acceptor balances on it */
	int			 draining;	/* shutting down */
	void			(*drained_cb)(void *); /* draining and the
						   last connection closed */
	void			*drained_arg;
	const struct conn_phase	*proxy;		/* the PROXY header's phase */
	const struct conn_xprt	*tls;		/* TLS's transport: conn.c
						   reaches both only here */
};

/* A connection accepted by the main thread, on its way to a worker. */
struct conn_handoff {
	int			 fd;
	struct listener		*lis;	/* a reference, passed on */
	const struct cfg_listener *lc;	/* lc->cfg referenced, passed on */
	struct peer_key		 peer;
	uint16_t		 port;	/* the peer's, from accept(): the
					   socket may be reset before the
					   worker could ask */
	uint8_t			 per_source; /* counted per source */
	uint8_t			 evict;	/* over max_connections: evict a
					   quiet one or refuse this one */
	uint32_t		 evict_after; /* s of no progress to evict */
};

/*
 * Sets up what worker number id lends its connections; they are named
 * "id.N" in the log, N counting from 1.  -1 if out of memory.
 */
int	conn_home_init(struct conn_home *h, struct event_base *base,
	    struct stats *stats, unsigned id);
/* Closes what is left and frees the buffers. */
void	conn_home_fini(struct conn_home *h);

/*
 * Takes over ho's socket and references (counted in h->load by the
 * dispatcher).  At the limit it evicts a quiet connection or refuses.
 */
void	conn_adopt(struct conn_home *h, const struct conn_handoff *ho);
/* Gives back everything a handoff holds (closing the socket); any thread. */
void	conn_handoff_release(struct stats *stats,
	    const struct conn_handoff *ho);

/* Once a second or so: timeouts and freeing quiet connections' buffers. */
void	conn_sweep(struct conn_home *h);
/*
 * Shutdown: close the idle now, the others once they have flushed;
 * h->drained_cb runs when none is left (maybe before this returns).
 */
void	conn_drain_all(struct conn_home *h);
/* Grace is over: close everything now. */
void	conn_close_all(struct conn_home *h, const char *why);

/* ---- restarts (handover.h) ---- */
struct ho_buf;
struct ho_conn;

/*
 * Whether connections of lc can be carried across a restart: their
 * whole state must be plain bytes (a TLS session is not).
 */
int	conn_carriable(const struct cfg_listener *lc);
/*
 * Writes a record for each connection of h to b and its socket to
 * fds (room for h->nconns); *nfds says how many.  Those that cannot
 * be carried (!conn_carriable()) are closed, *nclosed says how many.
 * Nothing else changes: the worker must not run its loop until it
 * execs or goes on.  -1 if out of memory.
 */
int	conn_export(struct conn_home *h, struct ho_buf *b, int *fds,
	    size_t *nfds, unsigned *nclosed);
/* Why rec cannot be served under lc (a static string), or NULL. */
const char *conn_import_refusal(const struct cfg_listener *lc,
	    const struct ho_conn *rec);
/*
 * Counts rec against l as it was counted before the restart (per
 * source or not); NULL, or why not.  Given back by
 * listener_release(l, &rec->client, *per_source).
 */
const char *conn_import_admit(struct listener *l, const struct ho_conn *rec,
	    int *per_source);
/*
 * Takes over ho (already counted, as for conn_adopt()) and resumes it
 * where rec left it; frees rec.
 */
void	conn_resume(struct conn_home *h, const struct conn_handoff *ho,
	    struct ho_conn *rec);

#endif
