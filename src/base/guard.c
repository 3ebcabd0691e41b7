/*
 * The UDP reflection guards: see include/guard.h.
 */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"

#define EO_NFS_PORT	2049	/* answered by NFS servers: never echo to */

static int
cmp_u16(const void *a, const void *b)
{
	uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct guard *
guard_new(const uint16_t *ports, size_t nports, const uint32_t *bcast,
    size_t nbcast)
{
	struct guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	atomic_init(&g->refs, 1);
	g->ports = calloc(nports + 1, sizeof(*g->ports));
	g->bcast = calloc(nbcast + 1, sizeof(*g->bcast));
	if (g->ports == NULL || g->bcast == NULL) {
		guard_unref(g);
		return NULL;
	}
	if (nports > 0)
		memcpy(g->ports, ports, nports * sizeof(*ports));
	if (nbcast > 0)
		memcpy(g->bcast, bcast, nbcast * sizeof(*bcast));
	g->nports = nports;
	g->nbcast = nbcast;
	qsort(g->ports, nports, sizeof(*g->ports), cmp_u16);
	qsort(g->bcast, nbcast, sizeof(*g->bcast), cmp_u32);
	return g;
}

int
guard_local_broadcasts(uint32_t **out)
{
	struct ifaddrs *ifa, *i;
	uint32_t *v;
	int n = 0, k = 0;

	*out = NULL;
	if (getifaddrs(&ifa) == -1)
		return -1;
	for (i = ifa; i != NULL; i = i->ifa_next)
		n++;
	if ((v = calloc((size_t)n + 1, sizeof(*v))) == NULL) {
		freeifaddrs(ifa);
		return -1;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if ((i->ifa_flags & IFF_BROADCAST) == 0 ||
		    i->ifa_broadaddr == NULL ||
		    i->ifa_broadaddr->sa_family != AF_INET)
			continue;
		v[k++] = ((const struct sockaddr_in *)(const void *)
		    i->ifa_broadaddr)->sin_addr.s_addr;
	}
	freeifaddrs(ifa);
	*out = v;
	return k;
}

void
guard_ref(struct guard *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void
guard_unref(struct guard *g)
{
	if (g == NULL || atomic_fetch_sub_explicit(&g->refs, 1,
	    memory_order_acq_rel) != 1)
		return;
	free(g->ports);
	free(g->bcast);
	free(g);
}

static enum guard_verdict
guard_port(const struct guard *g, uint16_t port)
{
	if (port < 1024 || port == EO_NFS_PORT)
		return EO_GUARD_RESERVED_PORT;
	if (g != NULL && g->nports > 0 && bsearch(&port, g->ports, g->nports,
	    sizeof(port), cmp_u16) != NULL)
		return EO_GUARD_OWN_PORT;
	return EO_GUARD_OK;
}

/* a in network order. */
static enum guard_verdict
guard_v4(const struct guard *g, uint32_t a)
{
	uint32_t h = ntohl(a);

	if (IN_MULTICAST(h))
		return EO_GUARD_MULTICAST;
	if (h == INADDR_BROADCAST || (g != NULL && g->nbcast > 0 &&
	    bsearch(&a, g->bcast, g->nbcast, sizeof(a), cmp_u32) != NULL))
		return EO_GUARD_BROADCAST;
	/* 0/8 is "this network", 255/8 reserved: no host sends from them. */
	if ((h >> 24) == 0 || (h >> 24) == 255)
		return EO_GUARD_BOGUS_ADDR;
	return EO_GUARD_OK;
}

static enum guard_verdict
guard_v6(const struct in6_addr *a)
{
	if (IN6_IS_ADDR_MULTICAST(a))
		return EO_GUARD_MULTICAST;
	/* Our IPv6 sockets are IPV6_V6ONLY: an IPv4 address in an IPv6
	   one was forged, or is a tunnel's trick to reach IPv4 hosts. */
	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_V4MAPPED(a) ||
	    IN6_IS_ADDR_V4COMPAT(a))
		return EO_GUARD_BOGUS_ADDR;
	return EO_GUARD_OK;
}

enum guard_verdict
guard_check(const struct guard *g, const struct sockaddr *src)
{
	enum guard_verdict v;

	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)src;

		if ((v = guard_v4(g, s4->sin_addr.s_addr)) != EO_GUARD_OK)
			return v;
		return guard_port(g, ntohs(s4->sin_port));
	}
	if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)src;

		if ((v = guard_v6(&s6->sin6_addr)) != EO_GUARD_OK)
			return v;
		return guard_port(g, ntohs(s6->sin6_port));
	}
	return EO_GUARD_BOGUS_ADDR;
}

const char *
guard_why(enum guard_verdict v)
{
	switch (v) {
	case EO_GUARD_OK:
		return "allowed";
	case EO_GUARD_RESERVED_PORT:
		return "from a reserved source port (below 1024, or 2049)";
	case EO_GUARD_OWN_PORT:
		return "from the port of one of our own UDP services (a loop)";
	case EO_GUARD_MULTICAST:
		return "from a multicast address";
	case EO_GUARD_BROADCAST:
		return "from a broadcast address";
	case EO_GUARD_BOGUS_ADDR:
		return "from an address no host can hold (unspecified, 0/8, "
		    "255/8, IPv4 in IPv6)";
	default:
		return "?";
	}
}
