/*
 * Networks in CIDR notation, and lists of them: which proxies may send a
 * PROXY header, and the allow and deny lists of a listener.
 *
 * "10.0.0.0/8", "2001:db8::/32"; a bare address is one host ("::1" is
 * "::1/128").  A network with host bits set ("10.0.0.1/8") is refused,
 * with the network the operator probably meant, rather than silently
 * widened or narrowed.
 *
 * An IPv4 address is the same whether a socket shows it as 10.1.2.3 or
 * as the IPv4-mapped ::ffff:10.1.2.3 (a dual-stack socket): both match
 * 10.0.0.0/8, and a network written in the mapped form
 * ("::ffff:10.0.0.0/104") is the IPv4 one.  Other IPv6 networks never
 * match IPv4 clients: "::/0" is every IPv6 client, not every client.
 *
 * Parsing (cidr_parse, cidr_list_add) is for config loading.  A list
 * is not changed once built, so any thread may match against it.
 */
#ifndef EO_CIDR_H
#define EO_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" and a NUL. */
#define EO_CIDR_TEXT_MAX	50

struct cidr {
	uint8_t		family;		/* AF_INET or AF_INET6 */
	uint8_t		prefix;		/* leading bits that count */
	uint8_t		addr[16];	/* 4 used for AF_INET; host bits 0 */
};

struct cidr_list {
	struct cidr	*nets;
	size_t		 n;
};

/*
 * Parses text into *net.  Returns 0, or -1 with a message for the
 * operator in err (e.g. "prefix /33 too long for IPv4").
 */
int	cidr_parse(const char *text, struct cidr *net, char *err,
	    size_t errlen);

/* Writes net as "10.0.0.0/8" into buf (EO_CIDR_TEXT_MAX is enough). */
void	cidr_format(const struct cidr *net, char *buf, size_t len);

/* Whether the address sa (AF_INET or AF_INET6) is in net. */
int	cidr_match(const struct cidr *net, const struct sockaddr *sa);

/*
 * Parses text and appends it to l (zeroed to start).  Returns 0, or -1
 * with the reason in err (a parse error, or out of memory).
 */
int	cidr_list_add(struct cidr_list *l, const char *text, char *err,
	    size_t errlen);

/* Whether sa is in any network of l; an empty list matches nothing. */
int	cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* Frees l's networks and empties it. */
void	cidr_list_free(struct cidr_list *l);

#endif
