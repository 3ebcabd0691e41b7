/*
 * UDP listeners: one datagram in, at most one out, on the workers.
 *
 * Each UDP socket is served by one worker, chosen when the socket is
 * opened, for the socket's whole life: the worker alone reads, answers
 * and closes it, so nothing about it is shared between threads.  One
 * socket per worker rather than an SO_REUSEPORT socket per worker:
 * systemd passes one socket per ListenDatagram=, a reload keeps a
 * socket by its address, and an echo reply costs far less than the
 * wakeup that would spread a port's load.  Several UDP listeners are
 * spread over the workers.
 *
 * The worker reads up to EO_UDP_BATCH datagrams with one recvmmsg(2),
 * puts each through the guards (include/guard.h) and the per-source
 * reply rate limit, asks the protocol's dgram hook for the reply, and
 * sends the replies with one sendmmsg(2).  Whatever goes wrong with a
 * datagram is counted (struct stats, udp_dropped) and concerns that
 * datagram only.
 */
#ifndef EO_UDP_H
#define EO_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "udp_rate.h"

struct event_base;
struct guard;
struct stats;
struct udp_rate;
struct udp_sock;

#define EO_UDP_BATCH	32	/* datagrams per recvmmsg() */
#define EO_UDP_ROUNDS	8	/* batches per wakeup: then the others */
#define EO_UDP_MAX	65536	/* room per datagram: the largest fits */
#define EO_UDP_REPLY_MAX 65507	/* the largest IPv4 UDP payload */
#define EO_UDP6_REPLY_MAX 65527	/* IPv6's: no IP header in its 65,535 */

/* A worker's UDP side: its sockets and the batch buffers they share. */
struct udp_home {
	struct event_base	*base;
	struct stats		*stats;
	uint64_t		 rng;
	struct udp_sock		*socks;		/* list, served or parked */
	struct udp_batch	*batch;		/* NULL until first served */
};

/*
 * A bound UDP socket on a (non-blocking, close-on-exec, IPV6_V6ONLY):
 * the fd, or -1 with the failing call and its reason in err.
 */
int	udp_bind(const struct cfg_addr *a, char *err, size_t errlen);
/* The record of a UDP socket (main thread); NULL: out of memory. */
struct udp_sock *udp_sock_new(int fd);

/* The worker's side; its thread only, but init and fini. */
void	udp_home_init(struct udp_home *h, struct event_base *base,
	    struct stats *stats);
/* Closes every socket it still has. */
void	udp_home_fini(struct udp_home *h);
/*
 * Serves us under lc, g and its listener's rate table (NULL if lc has
 * no rate limit), taking over one reference to lc->cfg, one to g and
 * one to rate; starts watching it if it was parked or new.  On failure
 * (out of memory) the socket stays parked and the error is logged.
 */
void	udp_serve(struct udp_home *h, struct udp_sock *us,
	    const struct cfg_listener *lc, struct guard *g,
	    struct udp_rate *rate);
/* Stops watching us; it stays open (systemd's, for a later reload). */
void	udp_park(struct udp_sock *us);
/* Stops watching us, closes its socket and frees it. */
void	udp_close(struct udp_home *h, struct udp_sock *us);

#endif
