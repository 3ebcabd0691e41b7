/*
 * Counters.  Each thread counts in its own slot: the workers in slot
 * worker id, the acceptor (main thread) in the last.  A slot has one
 * writer, so a bump is a relaxed load and a relaxed store (plain moves
 * on x86-64 and arm64: no lock prefix, no fence), and a reader on
 * another thread sees each counter whole.  Readers sum the slots on
 * demand: the burst lines, STATUS=, SIGUSR1 and the metrics endpoint.
 * Slots are cache-line aligned, so workers never share a line.
 *
 * Two sets of slots: one per process (struct stats: the totals, which
 * outlive the listeners a reload removes, and the workers' loop lag),
 * one per listener (struct stats_lis, held by struct listener).
 *
 * Only conns stays a shared atomic: it is admission state, read by the
 * acceptor against max_connections, not a counter of events; it moves
 * once per connection, never per message.
 */
#ifndef EO_STATS_H
#define EO_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
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
	EO_REFUSED_TLS,		/* TLS handshake failed or timed out */
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
	EO_UDP_DENIED,		/* the source is refused by allow/deny */
	EO_UDP_NDROPS
};

/* Why a served connection was closed: conn.c's reasons, counted. */
enum stats_close {
	EO_CLOSE_CLIENT_EOF,
	EO_CLOSE_CLIENT_RESET,
	EO_CLOSE_IDLE_TIMEOUT,
	EO_CLOSE_WRITE_TIMEOUT,
	EO_CLOSE_UNIT_TIMEOUT,		/* question_timeout */
	EO_CLOSE_MAX_QUESTIONS,
	EO_CLOSE_MAX_QUESTION_LENGTH,
	EO_CLOSE_PROTOCOL_CLOSED,	/* a protocol's own end, unnamed */
	EO_CLOSE_PROTOCOL_ERROR,	/* a protocol broke its contract */
	EO_CLOSE_EVICTED,
	EO_CLOSE_SHUTDOWN,
	EO_CLOSE_ERROR,			/* a socket call failed, no memory */
	EO_CLOSE_PROXY_HEADER,		/* a bad, partial or late PROXY header */
	EO_CLOSE_TLS_HANDSHAKE,		/* the TLS handshake failed */
	EO_CLOSE_TLS_TIMEOUT,		/* tls_handshake_timeout */
	EO_CLOSE_RESTART,		/* a restart could not carry it */
	EO_CLOSE_HEALTH_CHECK,		/* a balancer's check (PROXY LOCAL)
					   ended by the balancer */
	EO_NCLOSES
};

/* HTTP listeners: requests by method (these, then any other) and by
   status class (1xx to 5xx); WebSocket closes by the code sent. */
#define EO_HTTP_METHODS	{ "GET", "HEAD", "POST", "PUT", "DELETE", \
			  "OPTIONS", "PATCH", "other" }
#define EO_NHTTP_METHODS 8
#define EO_NHTTP_CLASSES 5
#define EO_WS_CODES	{ 1000, 1001, 1002, 1007, 1009 }
#define EO_NWS_CODES	6		/* those, then any other */

/* Upper bounds, in microseconds, of the loop lag histogram's buckets. */
#define EO_LAG_BOUNDS	{ 1000, 5000, 10000, 50000, 100000, 500000, \
			  1000000, 5000000 }
#define EO_NLAG		8

typedef _Atomic uint64_t stats_ctr;

struct stats_slot {
	stats_ctr	accepted;	/* handed to a worker */
	stats_ctr	refused[EO_NREFUSALS];
	stats_ctr	closed[EO_NCLOSES];
	stats_ctr	bytes_in;	/* read from clients */
	stats_ctr	bytes_out;	/* sent or queued to clients */
	stats_ctr	units;		/* taken by the protocol: questions */
	stats_ctr	http[EO_NHTTP_METHODS][EO_NHTTP_CLASSES];
	stats_ctr	ws_messages;	/* WebSocket messages echoed */
	stats_ctr	ws_closes[EO_NWS_CODES];
	stats_ctr	lag[EO_NLAG + 1]; /* per bucket, not cumulative;
					   the last is +Inf */
	stats_ctr	lag_us;		/* their sum */
	stats_ctr	beats;		/* the worker's loop turns, once
					   a second: its heartbeat */
} __attribute__((aligned(64)));

/* One slot per worker, then the acceptor's. */
struct stats_lis {
	unsigned		 nslots;
	struct stats_slot	 slot[];
};

struct stats {
	atomic_uint		 conns;	/* open now, all listeners */
	struct stats_lis	*all;	/* the process's totals */
	/* The latest refusal of each kind, for the burst line: written by
	   whichever thread refuses, rarely, so a lock is no cost. */
	pthread_mutex_t		 note_mtx;
	struct stats_note {
		char		by[64];		/* the listener */
		char		who[160];	/* address, and why */
		unsigned	limit;
	}			 note[EO_NREFUSALS];
	/* UDP, process totals: shared atomics, bumped once per batch of
	   datagrams on the worker that owns the socket. */
	atomic_ulong		 udp_in;	/* datagrams received */
	atomic_ulong		 udp_out;	/* ... answered */
	atomic_ulong		 udp_dropped[EO_UDP_NDROPS];
};

/* The sum of some slots, read on the main thread. */
struct stats_sum {
	uint64_t	accepted;
	uint64_t	refused[EO_NREFUSALS];
	uint64_t	closed[EO_NCLOSES];
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	units;
	uint64_t	http[EO_NHTTP_METHODS][EO_NHTTP_CLASSES];
	uint64_t	ws_messages;
	uint64_t	ws_closes[EO_NWS_CODES];
	uint64_t	lag[EO_NLAG + 1];
	uint64_t	lag_us;
};

#define stats_add(field, n)						\
	atomic_fetch_add_explicit((field), (n), memory_order_relaxed)
#define stats_sub(field, n)						\
	atomic_fetch_sub_explicit((field), (n), memory_order_relaxed)
#define stats_get(field)						\
	atomic_load_explicit((field), memory_order_relaxed)

/* A counter of the caller's own slot goes up by n: no atomic RMW. */
static inline void
stats_bump(stats_ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c,
	    memory_order_relaxed) + n, memory_order_relaxed);
}

/*
 * Sets the number of workers, before any listener is created (main
 * thread, once): every set of slots has nworkers + 1.  Allocates
 * st->all; -1 if out of memory.
 */
int	stats_init(struct stats *st, unsigned nworkers);
void	stats_fini(struct stats *st);
/* A set of slots, zeroed, for a listener; NULL if out of memory. */
struct stats_lis *stats_lis_new(void);
void	stats_lis_free(struct stats_lis *sl);
/* Slot i: a worker's id, or stats_acceptor(); clamped to the last. */
struct stats_slot *stats_slot(struct stats_lis *sl, unsigned i);
/* The acceptor's slot number. */
unsigned stats_acceptor(void);
/* Adds every slot of sl into *sum. */
void	stats_sum(const struct stats_lis *sl, struct stats_sum *sum);

/* The reason counted for a close reason as conn.c words it. */
enum stats_close stats_close_reason(const char *why);
/* Label values: "client_eof", "max_connections"... */
const char *stats_close_name(enum stats_close r);
/* The index of method (EO_HTTP_METHODS; the last: any other). */
unsigned stats_http_method(const char *method);
/* The index of a WebSocket close code (EO_WS_CODES; the last: other). */
unsigned stats_ws_code(int code);
const char *stats_refusal_name(enum stats_refusal r);
/* "rate_limit", "denied"...: why UDP datagrams got no reply. */
const char *stats_udp_drop_name(enum stats_udp_drop r);
/* Counts one loop lag of us microseconds in a worker's slot. */
void	stats_lag(struct stats_slot *s, uint64_t us);

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
 * when its heartbeat (its slot's beats) has not moved for more than
 * limit seconds.  *seen and *seen_at are the beat last seen and when it
 * last moved; updated when beat moved.  Returns 1 if stuck.
 */
int	stats_beat_stuck(unsigned long beat, unsigned long *seen,
	    time_t *seen_at, time_t now, time_t limit);
/* Seconds without a beat that count as stuck, for a watchdog period. */
time_t	stats_stuck_after(uint64_t watchdog_usec);

#endif
