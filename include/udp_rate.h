/*
 * The per-source reply rate limit of a UDP listener, shared by its
 * sockets and the workers that serve them.  The listener owns one
 * (listener.h), udp.c checks it for each reply; it knows nothing of
 * sockets.
 */
#ifndef EO_UDP_RATE_H
#define EO_UDP_RATE_H

#include <stddef.h>
#include <stdint.h>

struct udp_rate;

/*
 * The per-source reply rate limit, pure: a GCRA on *tat (the
 * theoretical arrival time, microseconds): rate replies a second, in
 * bursts of up to rate.  1: reply (and *tat moves), 0: drop.
 */
int	udp_rate_allow(uint64_t *tat, uint64_t now_us, uint32_t rate);

/*
 * The rate limit of one listener, over all its sockets and workers: a
 * table of width cells in each of 4 rows (see src/runtime/udp_rate.c
 * for why a count-min sketch).  Made on the main thread (NULL: out of memory or
 * width 0), reference-counted, checked from any thread.  seed keys its
 * row hashes: the caller draws it (proto_seed()), so that the table is a
 * leaf that calls nothing of the daemon's.
 */
struct udp_rate *udp_rate_new(size_t width, uint64_t seed);
size_t	udp_rate_width(const struct udp_rate *t);
void	udp_rate_ref(struct udp_rate *t);
/* NULL is allowed. */
void	udp_rate_unref(struct udp_rate *t);
/*
 * Whether the source key (len bytes) may have a reply at now_us, rate
 * replies a second in bursts of rate (0: any); 1 counts it.  A source
 * is never allowed more than udp_rate_allow() on its own TAT would
 * allow, however many other sources share the table.
 */
int	udp_rate_check(struct udp_rate *t, const void *key, size_t len,
	    uint64_t now_us, uint32_t rate);

#endif
