/*
 * A client's address as counted and logged: see include/peer.h.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

void
peer_key_from(struct peer_key *k, const struct sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;

		k->family = AF_INET;
		memcpy(k->addr, &s->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;

		/* ::ffff:a.b.c.d is a.b.c.d (a PROXY header may write
		   either; allow/deny already match both): one count. */
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			k->family = AF_INET;
			memcpy(k->addr, &s->sin6_addr.s6_addr[12], 4);
			return;
		}
		k->family = AF_INET6;
		memcpy(k->addr, &s->sin6_addr, 16);
	}
}

/*
 * a.b.c.d as inet_ntop writes it, without the sprintf glibc's uses:
 * http describes the client in every response, and that sprintf was
 * the largest part of a WebSocket message's own cost.  -1: too short.
 */
static int
peer_v4_format(const uint8_t *a, char *buf, size_t len)
{
	char t[16], *p = t;
	int i;

	for (i = 0; i < 4; i++) {
		if (a[i] >= 100)
			*p++ = (char)('0' + a[i] / 100);
		if (a[i] >= 10)
			*p++ = (char)('0' + a[i] / 10 % 10);
		*p++ = (char)('0' + a[i] % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
	if ((size_t)(p - t) > len)
		return -1;
	memcpy(buf, t, (size_t)(p - t));
	return 0;
}

void
peer_key_format(const struct peer_key *k, char *buf, size_t len)
{
	if (k->family == AF_INET && peer_v4_format(k->addr, buf, len) == 0)
		return;
	if (k->family != AF_INET6 || inet_ntop(k->family, k->addr, buf,
	    (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

void
peer_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	socklen_t sl = sa->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (getnameinfo(sa, sl, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" :
		    "%s:%s", host, port);
}

uint16_t
peer_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}
