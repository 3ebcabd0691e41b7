/*
 * CIDR networks: see include/cidr.h.
 *
 * An IPv4 address has one form here, its 4 bytes: a network written as
 * IPv4-mapped IPv6 is stored as IPv4 when parsed, and a mapped client
 * address is looked at as IPv4 when matched.  Then comparing is a byte
 * compare and at most one masked byte, with no allocation.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

#define MAPPED_BITS	96	/* ::ffff:0:0/96 */

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* The byte with the first bits (0 to 7) set. */
static uint8_t
high_bits(unsigned bits)
{
	return (uint8_t)(0xff00u >> bits);
}

/* Whether the first prefix bits of a and b are the same. */
static int
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	return rest == 0 ||
	    ((a[whole] ^ b[whole]) & high_bits(rest)) == 0;
}

/* Whether any bit after the first prefix is set in addr[0..bytes). */
static int
host_bits(const uint8_t *addr, unsigned bytes, unsigned prefix)
{
	unsigned i;

	for (i = prefix / 8; i < bytes; i++) {
		uint8_t keep = i == prefix / 8 ? high_bits(prefix % 8) : 0;

		if ((addr[i] & (uint8_t)~keep) != 0)
			return 1;
	}
	return 0;
}

/* A prefix length: decimal, no sign, no leading zero.  -1 if not. */
static int
parse_prefix(const char *s, unsigned *prefix)
{
	size_t i, n = strlen(s);
	unsigned v = 0;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*prefix = v;
	return 0;
}

/* The address before the slash into c, or -1 if it is not one. */
static int
parse_addr(const char *s, struct cidr *c)
{
	if (inet_pton(AF_INET, s, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, s, c->addr) == 1)
		c->family = AF_INET6;
	else
		return -1;
	return 0;
}

int
cidr_parse(const char *text, struct cidr *net, char *err, size_t errlen)
{
	char buf[EO_CIDR_TEXT_MAX], good[EO_CIDR_TEXT_MAX], *slash;
	struct cidr c;
	unsigned prefix, max;

	memset(&c, 0, sizeof(c));
	if (strlen(text) >= sizeof(buf))
		goto not_network;
	memcpy(buf, text, strlen(text) + 1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	if (parse_addr(buf, &c) == -1)
		goto not_network;
	max = c.family == AF_INET ? 32 : 128;
	prefix = max;
	if (slash != NULL && parse_prefix(slash + 1, &prefix) == -1) {
		snprintf(err, errlen, "bad prefix length in \"%s\"", text);
		return -1;
	}
	if (prefix > max) {
		snprintf(err, errlen, "prefix /%u too long for %s", prefix,
		    c.family == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	c.prefix = (uint8_t)prefix;
	if (host_bits(c.addr, max / 8, prefix)) {
		struct cidr m = c;
		unsigned i;

		for (i = prefix / 8; i < max / 8; i++)
			m.addr[i] &= i == prefix / 8 ?
			    high_bits(prefix % 8) : (uint8_t)0;
		cidr_format(&m, good, sizeof(good));
		snprintf(err, errlen, "%s has host bits set; did you mean %s?",
		    text, good);
		return -1;
	}
	if (c.family == AF_INET6 && prefix >= MAPPED_BITS &&
	    memcmp(c.addr, v4mapped, sizeof(v4mapped)) == 0) {
		c.family = AF_INET;
		c.prefix = (uint8_t)(prefix - MAPPED_BITS);
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
	}
	*net = c;
	return 0;

not_network:
	snprintf(err, errlen, "not a network: \"%s\"", text);
	return -1;
}

void
cidr_format(const struct cidr *net, char *buf, size_t len)
{
	char text[INET6_ADDRSTRLEN];

	if (inet_ntop(net->family, net->addr, text, sizeof(text)) == NULL)
		snprintf(text, sizeof(text), "?");
	snprintf(buf, len, "%s/%u", text, net->prefix);
}

/*
 * The bytes of a client address to compare, and their family: an
 * IPv4-mapped IPv6 address gives its IPv4 bytes.  NULL for others.
 */
static const uint8_t *
client_addr(const struct sockaddr *sa, int *family)
{
	const uint8_t *a;

	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		return (const uint8_t *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	}
	if (sa->sa_family != AF_INET6)
		return NULL;
	a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
		*family = AF_INET;
		return a + sizeof(v4mapped);
	}
	*family = AF_INET6;
	return a;
}

int
cidr_match(const struct cidr *net, const struct sockaddr *sa)
{
	const uint8_t *a;
	int family;

	if ((a = client_addr(sa, &family)) == NULL)
		return 0;
	return family == net->family && prefix_eq(a, net->addr, net->prefix);
}

int
cidr_list_add(struct cidr_list *l, const char *text, char *err,
    size_t errlen)
{
	struct cidr c, *nets;

	if (cidr_parse(text, &c, err, errlen) == -1)
		return -1;
	nets = realloc(l->nets, (l->n + 1) * sizeof(*nets));
	if (nets == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	nets[l->n++] = c;
	l->nets = nets;
	return 0;
}

int
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	const uint8_t *a;
	int family;
	size_t i;

	if ((a = client_addr(sa, &family)) == NULL)
		return 0;
	for (i = 0; i < l->n; i++)
		if (l->nets[i].family == family &&
		    prefix_eq(a, l->nets[i].addr, l->nets[i].prefix))
			return 1;
	return 0;
}

void
cidr_list_free(struct cidr_list *l)
{
	free(l->nets);
	l->nets = NULL;
	l->n = 0;
}
