/*
 * One listener's settings, checked and built into a struct cfg_listener:
 * its name, protocol and options, addresses, access lists, transport
 * and TLS.  Listeners together (names, addresses side by side) are
 * checked by config.c, which calls this for each.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "protocol.h"
#include "tls.h"

#include "config_load.h"

static const char *const listener_keys[] = { "name", "protocol", "port",
	"bind", "enabled", "backlog", "max_connections",
	"max_connections_per_source", "idle_timeout", "write_timeout",
	"proxy_protocol", "proxy_from", "proxy_timeout", "allow", "deny",
	"transport", "allow_amplification", "udp_rate_limit",
	"udp_rate_table", "tls", "tls_handshake_timeout",
	"socket_per_worker", NULL };

/* In a listener, a group named after a protocol is left to
   parse_proto_opts, which knows whether it is the right one. */
static int
is_protocol(const char *name)
{
	return protocol_find(name) != NULL;
}

/* ---- addresses ---------------------------------------------------- */

/* Why text, which getaddrinfo() refused, is not an address to bind. */
static void
addr_why_not(const char *text, char *why, size_t whylen)
{
	struct in6_addr in6;
	const char *pct = strchr(text, '%');
	char host[INET6_ADDRSTRLEN];

	snprintf(why, whylen, "is not a numeric IPv4 or IPv6 address");
	if (pct == NULL || (size_t)(pct - text) >= sizeof(host))
		return;
	snprintf(host, sizeof(host), "%.*s", (int)(pct - text), text);
	if (inet_pton(AF_INET6, host, &in6) != 1)
		return;
	if (!IN6_IS_ADDR_LINKLOCAL(&in6))
		snprintf(why, whylen, "has a scope (%s), which only a "
		    "link-local address (fe80::/10) may have: write \"%s\"",
		    pct, host);
	else if (if_nametoindex(pct + 1) == 0)
		snprintf(why, whylen, "names no interface of this host (%s)",
		    pct + 1);
}

/*
 * Addresses that parse but can never be bound: v6 sockets are
 * IPV6_V6ONLY, so a v4-mapped one would never see a client; a
 * link-local one needs its interface.  NULL if a is fine.
 */
static const char *
addr_unbindable(const struct cfg_addr *a)
{
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;
	const struct sockaddr_in *s4 = (const void *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return IN_MULTICAST(ntohl(s4->sin_addr.s_addr)) ? "is a "
		    "multicast address: TCP cannot listen on one" : NULL;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return "is an IPv4-mapped IPv6 address, which an IPv6-only "
		    "socket never receives: write the IPv4 address";
	if (IN6_IS_ADDR_V4COMPAT(&s6->sin6_addr))
		return "is an IPv4-compatible IPv6 address (deprecated, "
		    "never routed): write the IPv4 address";
	if (IN6_IS_ADDR_MULTICAST(&s6->sin6_addr))
		return "is a multicast address: TCP cannot listen on one";
	if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) && s6->sin6_scope_id == 0)
		return "is link-local: name its interface, as in "
		    "\"fe80::1%eth0\"";
	return NULL;
}

/*
 * Fills a with the numeric address text and port; NULL, or why not.
 * A link-local IPv6 address keeps its scope ("fe80::1%eth0").
 */
static const char *
addr_parse(struct cfg_addr *a, const char *text, uint16_t port,
    char *why, size_t whylen)
{
	struct addrinfo hints, *res;
	char host[NI_MAXHOST];
	const char *bad;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	if (getaddrinfo(text, NULL, &hints, &res) != 0) {
		addr_why_not(text, why, whylen);
		return why;
	}
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
	else
		return "is not an IPv4 or IPv6 address";
	if ((bad = addr_unbindable(a)) != NULL)
		return bad;
	if (getnameinfo((struct sockaddr *)&a->ss, a->len, host, sizeof(host),
	    NULL, 0, NI_NUMERICHOST) != 0)
		return "cannot be written back as text";
	snprintf(a->text, sizeof(a->text),
	    a->ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
	return NULL;
}

int
cfg_addr_is_any(const struct cfg_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/*
 * Two binds that cannot both succeed: the same address and port, or a
 * wildcard and any address of its family on the same port (v6 sockets
 * are IPV6_V6ONLY, so [::] and 0.0.0.0 do not collide).
 */
static int
addr_clash(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss;
		const struct sockaddr_in *y = (const void *)&b->ss;

		if (x->sin_port != y->sin_port)
			return 0;
	} else {
		const struct sockaddr_in6 *x = (const void *)&a->ss;
		const struct sockaddr_in6 *y = (const void *)&b->ss;

		if (x->sin6_port != y->sin6_port)
			return 0;
	}
	return cfg_addr_is_any(a) || cfg_addr_is_any(b) ||
	    (a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0);
}

/* ---- listeners ---------------------------------------------------- */

static int
name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > EO_NAME_MAX)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static int
parse_bind(struct cfg_diag *d, const config_setting_t *lg,
    struct cfg_listener *l)
{
	const config_setting_t *b = config_setting_get_member(lg, "bind");
	int i, n, bad = 0;

	if (b == NULL) {
		cfg_error(d, lg, "bind is missing (e.g. bind = "
		    "[\"127.0.0.1\", \"::1\"];)");
		return -1;
	}
	if (config_setting_type(b) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_array(b) || config_setting_is_list(b))
		n = config_setting_length(b);
	else {
		cfg_error(d, b, "bind must be an address or a list of "
		    "addresses");
		return -1;
	}
	if (n == 0) {
		cfg_error(d, b, "bind must list at least one address");
		return -1;
	}
	if ((l->addrs = calloc((size_t)n, sizeof(*l->addrs))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_type(b) ==
		    CONFIG_TYPE_STRING ? b : config_setting_get_elem(b,
		    (unsigned)i);
		const char *text = config_setting_get_string(e), *why;
		struct cfg_addr *a = &l->addrs[l->naddrs];
		char whybuf[160];
		size_t j;

		if (text == NULL) {
			cfg_error(d, e, "bind: each address must be a string");
			bad = 1;
			continue;
		}
		if ((why = addr_parse(a, text, l->port, whybuf,
		    sizeof(whybuf))) != NULL) {
			cfg_error(d, e, "bind: \"%s\" %s", text, why);
			bad = 1;
			continue;
		}
		for (j = 0; j < l->naddrs; j++)
			if (addr_clash(&l->addrs[j], a))
				break;
		if (j < l->naddrs) {
			cfg_error(d, e, "bind: %s clashes with %s listed "
			    "before", a->text, l->addrs[j].text);
			bad = 1;
			continue;
		}
		l->naddrs++;
	}
	return bad ? -1 : 0;
}

/* The protocol's own group; another protocol's group is a mistake. */
static int
parse_proto_opts(struct cfg_diag *d, const config_setting_t *lg,
    struct cfg_listener *l)
{
	int i, n = config_setting_length(lg), bad = 0;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(lg,
		    (unsigned)i);
		const char *key = config_setting_name(s);

		if (key != NULL && protocol_find(key) != NULL &&
		    protocol_find(key) != l->proto) {
			cfg_error(d, s, "%s options given, but the protocol "
			    "is %s", key, l->proto->name);
			bad = 1;
		}
	}
	{
		const config_setting_t *g = config_setting_get_member(lg,
		    l->proto->name);

		if (g != NULL && !config_setting_is_group(g)) {
			cfg_error(d, g, "%s must be a group: %s = { ... };",
			    l->proto->name, l->proto->name);
			return -1;
		}
		if (l->proto->opts_parse(g, &l->popts, d) == -1)
			bad = 1;
	}
	if (!bad && l->proto->unit_timeout != NULL)
		l->unit_timeout = l->proto->unit_timeout(l->popts);
	return bad ? -1 : 0;
}

/*
 * The listener's name, which later messages about it start with.
 * 0, -1 after an error, -2 out of memory.
 */
static int
parse_name(struct cfg_diag *d, const config_setting_t *lg,
    struct cfg_listener *l)
{
	const char *name = NULL;
	int r, bad = 0;

	if ((r = cfg_get_string(d, lg, "name", EO_NAME_MAX, &name)) == 0)
		cfg_error(d, lg, "listener without a name (name = \"...\";)");
	if (r <= 0)
		bad = 1;
	else if (!name_valid(name)) {
		cfg_error(d, config_setting_get_member(lg, "name"),
		    "listener name \"%s\" must be 1 to %d letters, digits, "
		    "'_', '.' or '-'", name, EO_NAME_MAX);
		bad = 1;
	}
	if (name != NULL && (l->name = strdup(name)) == NULL)
		return -2;
	snprintf(d->context, sizeof(d->context), "listener \"%s\": ",
	    l->name ? l->name : "?");
	return bad ? -1 : 0;
}

/*
 * A list of networks, key = ["10.0.0.0/8", "::1"]; a lone string is a
 * list of one.  Returns 1 if present and valid, 0 if absent, -1 after
 * errors (each bad entry named).
 */
static int
parse_cidrs(struct cfg_diag *d, const config_setting_t *lg, const char *key,
    struct cidr_list *out)
{
	const config_setting_t *s = config_setting_get_member(lg, key);
	int i, n, bad = 0;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_array(s) || config_setting_is_list(s))
		n = config_setting_length(s);
	else {
		cfg_error(d, s, "%s must be a list of networks (e.g. %s = "
		    "[\"10.0.0.0/8\", \"::1\"];)", key, key);
		return -1;
	}
	if (n == 0) {
		cfg_error(d, s, "%s must list at least one network", key);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_type(s) ==
		    CONFIG_TYPE_STRING ? s : config_setting_get_elem(s,
		    (unsigned)i);
		const char *text = config_setting_get_string(e);
		char why[160];

		if (text == NULL) {
			cfg_error(d, e, "%s: each network must be a string",
			    key);
			bad = 1;
		} else if (cidr_list_add(out, text, why, sizeof(why)) == -1) {
			cfg_error(d, e, "%s: \"%s\": %s", key, text, why);
			bad = 1;
		}
	}
	return bad ? -1 : 1;
}

/*
 * PROXY protocol and address lists.  The PROXY spec (section 5) says a
 * receiver must not accept the header from anyone: proxy_protocol
 * without proxy_from is refused rather than defaulting to everyone.
 */
static int
parse_access(struct cfg_diag *d, const config_setting_t *lg,
    struct cfg_listener *l)
{
	const config_setting_t *s;
	int bad = 0, from;

	l->proxy_timeout = DEF_PROXY_TIMEOUT;
	bad |= cfg_get_bool(d, lg, "proxy_protocol", &l->proxy_protocol) < 0;
	bad |= cfg_get_uint(d, lg, "proxy_timeout", 1, MAX_TIMEOUT,
	    &l->proxy_timeout) < 0;
	bad |= (from = parse_cidrs(d, lg, "proxy_from", &l->proxy_from)) < 0;
	bad |= parse_cidrs(d, lg, "allow", &l->allow) < 0;
	bad |= parse_cidrs(d, lg, "deny", &l->deny) < 0;
	s = config_setting_get_member(lg, "proxy_protocol");
	if (l->proxy_protocol && from == 0) {
		cfg_error(d, s, "proxy_protocol is on but proxy_from is "
		    "missing: list the networks of the trusted proxies "
		    "(e.g. proxy_from = [\"10.0.0.5\"];)");
		bad = 1;
	} else if (!l->proxy_protocol && from > 0) {
		cfg_error(d, config_setting_get_member(lg, "proxy_from"),
		    "proxy_from is set but proxy_protocol is off");
		bad = 1;
	}
	return bad ? -1 : 0;
}

/*
 * transport, and over UDP the guards' settings.  A protocol without a
 * dgram hook serves TCP only; one whose reply can outgrow the request
 * turns the daemon into an amplifier for forged sources, so it needs
 * the operator's explicit allow_amplification.
 */
static int
parse_transport(struct cfg_diag *d, const config_setting_t *lg,
    struct cfg_listener *l)
{
	const config_setting_t *t = config_setting_get_member(lg,
	    "transport");
	const char *tr = NULL;
	int bad = 0, r;

	l->udp_rate = DEF_UDP_RATE;
	l->udp_rate_table = DEF_UDP_RATE_TABLE;
	if ((r = cfg_get_string(d, lg, "transport", 8, &tr)) > 0) {
		if (strcmp(tr, "udp") == 0)
			l->udp = 1;
		else if (strcmp(tr, "tcp") != 0) {
			cfg_error(d, t, "transport must be \"tcp\" or "
			    "\"udp\", not \"%s\"", tr);
			bad = 1;
		}
	} else if (r < 0)
		bad = 1;
	bad |= cfg_get_bool(d, lg, "allow_amplification", &l->allow_amp) < 0;
	bad |= cfg_get_uint(d, lg, "udp_rate_limit", 0, 1000000,
	    &l->udp_rate) < 0;
	bad |= cfg_get_uint(d, lg, "udp_rate_table", 1, 1 << 24,
	    &l->udp_rate_table) < 0;
	if (l->udp && l->proxy_protocol) {
		/* A PROXY header precedes a stream: a datagram has none. */
		cfg_error(d, config_setting_get_member(lg, "proxy_protocol"),
		    "PROXY protocol is TCP only: proxy_protocol = true is "
		    "not possible with transport = \"udp\"");
		bad = 1;
	}
	if (!l->udp || l->proto == NULL)
		return bad ? -1 : 0;
	if (l->proto->dgram == NULL) {
		cfg_error(d, t, "protocol %s serves TCP only: transport = "
		    "\"udp\" is not possible", l->proto->name);
		bad = 1;
	} else if (l->proto->amplifies && !l->allow_amp) {
		cfg_error(d, t, "protocol %s over UDP answers with more than "
		    "it is sent, so forged sources make it an amplifier: "
		    "refused unless the listener says "
		    "allow_amplification = true;", l->proto->name);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/*
 * TLS: any TCP protocol may run over it, except the metrics endpoint,
 * whose HTTP server (evhttp) reads the socket itself.  Certificate and
 * key are read now, so a bad one fails -t and the reload's check.
 */
static int
parse_tls(struct cfg_diag *d, const config_setting_t *lg,
    const struct cfg_defaults *def, struct cfg_listener *l)
{
	const config_setting_t *g = config_setting_get_member(lg, "tls");
	int bad = 0;

	l->tls_timeout = def->tls_timeout;
	bad |= cfg_get_uint(d, lg, "tls_handshake_timeout", 1, MAX_TIMEOUT,
	    &l->tls_timeout) < 0;
	if (g == NULL)
		return bad ? -1 : 0;
	if (l->udp) {
		cfg_error(d, g, "tls is TCP only: a tls group is not possible "
		    "with transport = \"udp\" (DTLS is not served)");
		return -1;
	}
	if (l->proto != NULL && l->proto->http) {
		cfg_error(d, g, "protocol %s does not serve TLS: drop the tls "
		    "group, or put a TLS proxy in front of it",
		    l->proto->name);
		return -1;
	}
	if (def->tls_parse(d, lg, l->proto != NULL ? l->proto->alpn : NULL,
	    &l->tls) < 0 || bad)
		return -1;
	return 0;
}

/*
 * Settings a listener accepts that do nothing in it.  conn.c runs the
 * proxy_timeout clock only while a PROXY header is awaited, and the
 * tls_handshake_timeout clock only while a TLS handshake runs; UDP
 * (udp.c) has no connections, so no queue, cap or timeout of theirs.
 */
enum no_effect { NE_TCP, NE_UDP, NE_PROXY, NE_TLS };

static const struct {
	const char	*key;
	enum no_effect	 only;		/* where it has one */
} effect_keys[] = {
	{ "backlog", NE_TCP }, { "socket_per_worker", NE_TCP },
	{ "max_connections", NE_TCP },
	{ "max_connections_per_source", NE_TCP }, { "idle_timeout", NE_TCP },
	{ "write_timeout", NE_TCP }, { "allow_amplification", NE_UDP },
	{ "udp_rate_limit", NE_UDP }, { "udp_rate_table", NE_UDP },
	{ "proxy_timeout", NE_PROXY }, { "tls_handshake_timeout", NE_TLS },
};

/* Why the setting effect_keys[k] does nothing in l; NULL if it does. */
static const char *
no_effect_why(size_t k, const config_setting_t *lg,
    const struct cfg_listener *l)
{
	switch (effect_keys[k].only) {
	case NE_TCP:
		return l->udp ? "it is for TCP connections, and this listener "
		    "is UDP, which has none" : NULL;
	case NE_UDP:
		return !l->udp ? "it is for UDP, and this listener is TCP "
		    "(transport = \"udp\" would make it UDP)" : NULL;
	case NE_PROXY:
		return !l->proxy_protocol ? "it bounds the wait for a PROXY "
		    "header, and proxy_protocol is off" : NULL;
	case NE_TLS:
		return config_setting_get_member(lg, "tls") == NULL ? "this "
		    "listener has no tls group" : NULL;
	}
	return NULL;
}

/*
 * A warning for each setting of the listener that does nothing there,
 * in the order written: the file stays valid, as the same setting at
 * the top level is a default for the listeners it applies to.
 */
static void
warn_no_effect(struct cfg_diag *d, const config_setting_t *lg,
    const struct cfg_listener *l)
{
	int i, n = config_setting_length(lg);
	const char *name, *why;
	size_t k;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(lg,
		    (unsigned)i);

		if ((name = config_setting_name(s)) == NULL)
			continue;
		for (k = 0; k < sizeof(effect_keys) / sizeof(effect_keys[0]);
		    k++)
			if (strcmp(name, effect_keys[k].key) == 0 &&
			    (why = no_effect_why(k, lg, l)) != NULL)
				cfg_warn(d, s, "%s has no effect: %s", name,
				    why);
	}
}

int
cfg_parse_listener(struct cfg_diag *d, const config_setting_t *lg,
    const struct cfg_defaults *def, struct cfg_listener *l)
{
	const char *proto = NULL;
	uint32_t port = 0, backlog = (uint32_t)def->backlog;
	int bad = 0, r;

	l->enabled = 1;
	l->socket_per_worker = 1;
	l->line = (int)config_setting_source_line(lg);
	l->max_per_source = def->max_per_source;
	l->idle_timeout = def->idle_timeout;
	l->write_timeout = def->write_timeout;

	if ((r = parse_name(d, lg, l)) == -2)
		return -1;
	bad |= r < 0;

	bad |= cfg_check_keys_skip(d, lg, listener_keys, is_protocol) < 0;
	if ((r = cfg_get_string(d, lg, "protocol", 64, &proto)) == 0)
		cfg_error(d, lg, "protocol is missing (one of: %s)",
		    protocol_names());
	if (r <= 0)
		bad = 1;
	else if ((l->proto = protocol_find(proto)) == NULL) {
		cfg_error(d, config_setting_get_member(lg, "protocol"),
		    "unknown protocol \"%s\" (known: %s)", proto,
		    protocol_names());
		bad = 1;
	}
	if ((r = cfg_get_uint(d, lg, "port", 1, 65535, &port)) == 0)
		cfg_error(d, lg, "port is missing (1 to 65535)");
	if (r <= 0)
		bad = 1;
	l->port = (uint16_t)port;
	bad |= cfg_get_bool(d, lg, "enabled", &l->enabled) < 0;
	bad |= cfg_get_uint(d, lg, "backlog", 1, 65535, &backlog) < 0;
	l->backlog = (int)backlog;
	bad |= cfg_get_bool(d, lg, "socket_per_worker",
	    &l->socket_per_worker) < 0;
	bad |= cfg_get_uint(d, lg, "max_connections", 0, MAX_CONNS,
	    &l->max_conns) < 0;
	bad |= cfg_get_uint(d, lg, "max_connections_per_source", 0,
	    MAX_CONNS, &l->max_per_source) < 0;
	bad |= cfg_get_uint(d, lg, "idle_timeout", 0, MAX_TIMEOUT,
	    &l->idle_timeout) < 0;
	bad |= cfg_get_uint(d, lg, "write_timeout", 0, MAX_TIMEOUT,
	    &l->write_timeout) < 0;
	bad |= parse_bind(d, lg, l) < 0;
	bad |= parse_access(d, lg, l) < 0;
	if (l->proto != NULL)
		bad |= parse_proto_opts(d, lg, l) < 0;
	bad |= parse_transport(d, lg, l) < 0;
	bad |= parse_tls(d, lg, def, l) < 0;
	warn_no_effect(d, lg, l);
	d->context[0] = '\0';
	return bad ? -1 : 0;
}
