/*
 * The reflection guards of the UDP listeners, as a pure module: which
 * source a datagram may be answered at all.
 *
 * A UDP reply goes to whatever source address the datagram claims, so
 * a forged source turns the daemon into a reflector (CERT CA-1996-01:
 * echo and chargen answering each other for ever).  The rules are the
 * union of the BSD inetds' (OpenBSD dg_badinput(), NetBSD
 * port_good_dg(), FreeBSD check_loop()): no reply to a privileged or
 * NFS source port, to a port that is one of our own UDP services, or to
 * an address no single host can hold.
 *
 * A struct guard is built on the main thread at start and on reload,
 * then only read, by any worker; reference-counted like the config.
 */
#ifndef EO_GUARD_H
#define EO_GUARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Why a datagram gets no reply; EO_GUARD_OK: it may get one.  In the
   order of enum stats_udp_drop, one off. */
enum guard_verdict {
	EO_GUARD_OK,
	EO_GUARD_RESERVED_PORT,	/* below 1024, or 2049 (NFS) */
	EO_GUARD_OWN_PORT,	/* one of our UDP services: a loop */
	EO_GUARD_MULTICAST,
	EO_GUARD_BROADCAST,	/* 255.255.255.255, an interface's */
	EO_GUARD_BOGUS_ADDR,	/* unspecified, 0/8, 255/8, v4 in v6 */
	EO_GUARD_NVERDICTS
};

struct guard {
	atomic_uint	 refs;
	uint16_t	*ports;		/* our UDP ports, sorted */
	size_t		 nports;
	uint32_t	*bcast;		/* broadcast addresses, network
					   order, sorted */
	size_t		 nbcast;
};

/*
 * A guard for our UDP ports (any order, duplicates allowed) and the
 * given broadcast addresses (network order).  NULL: out of memory.
 */
struct guard *guard_new(const uint16_t *ports, size_t nports,
	    const uint32_t *bcast, size_t nbcast);
/* The local interfaces' IPv4 broadcast addresses, from getifaddrs():
   their number, with *out malloc'd; -1 on error. */
int	guard_local_broadcasts(uint32_t **out);
void	guard_ref(struct guard *g);
/* NULL is allowed. */
void	guard_unref(struct guard *g);

enum guard_verdict guard_check(const struct guard *g,
	    const struct sockaddr *src);
/* "from a reserved source port (below 1024, or 2049)": for the logs. */
const char *guard_why(enum guard_verdict v);

#endif
