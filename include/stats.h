/*
 * Counters shared by the acceptor and the workers.  Atomic, relaxed:
 * they are read for limits, status lines and logs, never to order
 * memory.  Per-message work touches none of them.
 */
#ifndef EO_STATS_H
#define EO_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Why a connection was closed as soon as it was accepted. */
enum stats_refusal {
	EO_REFUSED_FULL,	/* max_connections, none quiet to evict */
	EO_REFUSED_LISTENER,	/* the listener's own max_connections */
	EO_REFUSED_SOURCE,	/* max_connections_per_source */
	EO_REFUSED_FDS,		/* out of file descriptors */
	EO_REFUSED_OTHER,	/* out of memory, shutting down */
	EO_REFUSED_UNTRUSTED,	/* PROXY listener, peer not in proxy_from */
	EO_REFUSED_DENIED,	/* the client is refused by allow/deny */
	EO_REFUSED_PROXY,	/* bad, partial or late PROXY header */
	EO_NREFUSALS
};

struct stats {
	atomic_uint	conns;		/* open now, all listeners */
	atomic_ulong	accepted;	/* handed to a worker */
	atomic_ulong	refused[EO_NREFUSALS];
	atomic_ulong	evicted;	/* closed to make room at the limit */
	atomic_ulong	timeouts;	/* closed by idle/write/unit timeouts */
	/* The latest refusal of each kind, for the burst line: written by
	   whichever thread refuses, rarely, so a lock is no cost. */
	pthread_mutex_t	note_mtx;
	struct stats_note {
		char		by[64];		/* the listener */
		char		who[160];	/* address, and why */
		unsigned	limit;
	}		note[EO_NREFUSALS];
};

#define stats_add(field, n)						\
	atomic_fetch_add_explicit((field), (n), memory_order_relaxed)
#define stats_sub(field, n)						\
	atomic_fetch_sub_explicit((field), (n), memory_order_relaxed)
#define stats_get(field)						\
	atomic_load_explicit((field), memory_order_relaxed)

void	stats_init(struct stats *st);
void	stats_fini(struct stats *st);
/*
 * Notes the latest refusal for reason r: the listener, who (an address,
 * maybe with why) and the limit, if any, for the burst line that names
 * it.  Does not count it.  Any thread.
 */
void	stats_note(struct stats *st, enum stats_refusal r, const char *by,
	    const char *who, unsigned limit);
/* A copy of the latest note for r. */
void	stats_note_get(struct stats *st, enum stats_refusal r,
	    struct stats_note *out);

/*
 * The watchdog's rule, pure so that it can be tested: a worker is stuck
 * when its heartbeat (worker_heartbeat()) has not moved for more than
 * limit seconds.  *seen and *seen_at are the beat last seen and when it
 * last moved; updated when beat moved.  Returns 1 if stuck.
 */
int	stats_beat_stuck(unsigned long beat, unsigned long *seen,
	    time_t *seen_at, time_t now, time_t limit);
/* Seconds without a beat that count as stuck, for a watchdog period. */
time_t	stats_stuck_after(uint64_t watchdog_usec);

#endif
