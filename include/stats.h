/*
 * Counters shared by the acceptor and the workers.  Atomic, relaxed:
 * they are read for limits, status lines and logs, never to order
 * memory.  Per-message work touches none of them.
 */
#ifndef EO_STATS_H
#define EO_STATS_H

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
	EO_NREFUSALS
};

/* Why a UDP datagram got no reply (include/guard.h for the first five). */
enum stats_udp_drop {
	EO_UDP_RESERVED_PORT,	/* source port below 1024, or 2049 */
	EO_UDP_OWN_PORT,	/* from one of our own UDP services */
	EO_UDP_MULTICAST,
	EO_UDP_BROADCAST,
	EO_UDP_BOGUS_ADDR,	/* unspecified, 0/8, 255/8, v4 in v6 */
	EO_UDP_RATE,		/* over udp_rate_limit for its source */
	EO_UDP_TRUNCATED,	/* bigger than a datagram can be */
	EO_UDP_ICMP,		/* an ICMP error reported on the socket */
	EO_UDP_SEND_FULL,	/* the socket's send buffer was full */
	EO_UDP_SEND_ERROR,	/* sendmmsg() refused it */
	EO_UDP_NDROPS
};

struct stats {
	atomic_uint	conns;		/* open now, all listeners */
	atomic_ulong	accepted;	/* handed to a worker */
	atomic_ulong	refused[EO_NREFUSALS];
	atomic_ulong	evicted;	/* closed to make room at the limit */
	atomic_ulong	timeouts;	/* closed by idle/write/unit timeouts */
	atomic_ulong	udp_in;		/* datagrams received */
	atomic_ulong	udp_out;	/* ... answered */
	atomic_ulong	udp_dropped[EO_UDP_NDROPS];
};

#define stats_add(field, n)						\
	atomic_fetch_add_explicit((field), (n), memory_order_relaxed)
#define stats_sub(field, n)						\
	atomic_fetch_sub_explicit((field), (n), memory_order_relaxed)
#define stats_get(field)						\
	atomic_load_explicit((field), memory_order_relaxed)

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
