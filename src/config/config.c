/*
 * Validating the configuration: see include/config.h.  libconfig's tree
 * is walked once: every setting's type, range and name is checked, the
 * listeners (drop-ins included) together, and a struct cfg is built.
 * It never stops at the first mistake: all are collected in a cfg_diag.
 * The reference counting lives here too; the typed getters, which the
 * protocols use as well, are below in cfg_get.c.
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

/* Settings a listener inherits from the top level unless it sets them. */
struct cfg_defaults {
	int		backlog;
	uint32_t	max_per_source;
	uint32_t	idle_timeout;
	uint32_t	write_timeout;
	uint32_t	tls_timeout;
};

/* Defaults, documented in conf/echo-oracled.conf and README.md. */
#define DEF_MAX_CONNS		10000
#define DEF_EVICT_AFTER		1
#define DEF_SHUTDOWN_TIMEOUT	10
#define DEF_IDLE_TIMEOUT	300
#define DEF_WRITE_TIMEOUT	60
#define DEF_BACKLOG		4096
#define DEF_PROXY_TIMEOUT	3	/* the PROXY spec's minimum */
#define DEF_UDP_RATE		100	/* replies/s to one source */
#define DEF_UDP_RATE_TABLE	4096	/* sources the limit remembers */

#define MAX_TIMEOUT		86400	/* a day: bigger is surely a typo */
#define MAX_WORKERS		256
#define MAX_CONNS		1000000

static const char *const root_keys[] = { "workers", "max_connections",
	"evict_after", "shutdown_timeout", "log_level", "backlog",
	"max_connections_per_source", "idle_timeout", "write_timeout",
	"listeners", "include_dir", "tls_handshake_timeout", NULL };
static const char *const listener_keys[] = { "name", "protocol", "port",
	"bind", "enabled", "backlog", "max_connections",
	"max_connections_per_source", "idle_timeout", "write_timeout",
	"proxy_protocol", "proxy_from", "proxy_timeout", "allow", "deny",
	"transport", "allow_amplification", "udp_rate_limit",
	"udp_rate_table", "tls", "tls_handshake_timeout", NULL };

/* In a listener, a group named after a protocol is left to
   parse_proto_opts, which knows whether it is the right one. */
static int
is_protocol(const char *name)
{
	return protocol_find(name) != NULL;
}

/* ---- reference counting ------------------------------------------- */

static void
cfg_free(struct cfg *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		if (l->proto != NULL && l->popts != NULL)
			l->proto->opts_free(l->popts);
		free(l->name);
		free(l->addrs);
		cidr_list_free(&l->proxy_from);
		cidr_list_free(&l->allow);
		cidr_list_free(&l->deny);
		tls_free(l->tls);
	}
	free(cfg->listeners);
	free(cfg->path);
	free(cfg);
}

void
cfg_ref(struct cfg *cfg)
{
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void
cfg_unref(struct cfg *cfg)
{
	if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1,
	    memory_order_acq_rel) == 1)
		cfg_free(cfg);
}

int
cfg_listener_admits(const struct cfg_listener *l, const struct sockaddr *sa)
{
	if (cidr_list_match(&l->deny, sa))
		return 0;
	return l->allow.n == 0 || cidr_list_match(&l->allow, sa);
}

const struct cfg_listener *
cfg_find_listener(const struct cfg *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return &cfg->listeners[i];
	return NULL;
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

static int
addr_is_any(const struct cfg_addr *a)
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
	return addr_is_any(a) || addr_is_any(b) ||
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
	return tls_parse(d, lg, &l->tls) < 0 || bad ? -1 : 0;
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
	{ "backlog", NE_TCP }, { "max_connections", NE_TCP },
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

static int
parse_listener(struct cfg_diag *d, const config_setting_t *lg,
    const struct cfg_defaults *def, struct cfg_listener *l)
{
	const char *proto = NULL;
	uint32_t port = 0, backlog = (uint32_t)def->backlog;
	int bad = 0, r;

	l->enabled = 1;
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

/*
 * Listeners together: names unique, enabled listeners' addresses
 * bindable side by side.  Found by sorting, not by comparing every
 * pair: ten thousand listeners are checked at once, and each mistake
 * is reported once, against the first listener it clashes with.
 */
struct addr_ref {
	size_t			 li;	/* the listener's index */
	const struct cfg_addr	*a;
};

/* Orders by family and port, then address (wildcards first). */
static int
addr_cmp(const struct cfg_addr *a, const struct cfg_addr *b, int whole)
{
	const struct sockaddr_in *x4 = (const void *)&a->ss,
	    *y4 = (const void *)&b->ss;
	const struct sockaddr_in6 *x6 = (const void *)&a->ss,
	    *y6 = (const void *)&b->ss;
	int c;

	if (a->ss.ss_family != b->ss.ss_family)
		return a->ss.ss_family < b->ss.ss_family ? -1 : 1;
	if (a->ss.ss_family == AF_INET) {
		if (x4->sin_port != y4->sin_port)
			return ntohs(x4->sin_port) < ntohs(y4->sin_port) ? -1 : 1;
		return whole ? memcmp(&x4->sin_addr, &y4->sin_addr,
		    sizeof(x4->sin_addr)) : 0;
	}
	if (x6->sin6_port != y6->sin6_port)
		return ntohs(x6->sin6_port) < ntohs(y6->sin6_port) ? -1 : 1;
	if (!whole)
		return 0;
	if ((c = memcmp(&x6->sin6_addr, &y6->sin6_addr,
	    sizeof(x6->sin6_addr))) != 0)
		return c;
	return x6->sin6_scope_id < y6->sin6_scope_id ? -1 :
	    x6->sin6_scope_id > y6->sin6_scope_id;
}

static int
ref_cmp(const void *pa, const void *pb)
{
	const struct addr_ref *a = pa, *b = pb;
	int c = addr_cmp(a->a, b->a, 1);

	if (c != 0)
		return c;
	return a->li < b->li ? -1 : a->li > b->li;
}

static void
clash_error(struct cfg_diag *d, const config_setting_t *const *where,
    const struct cfg *cfg, const struct addr_ref *x, const struct addr_ref *y)
{
	const struct cfg_listener *l = &cfg->listeners[x->li],
	    *m = &cfg->listeners[y->li];
	char place[4300];

	cfg_place_from(d, where[x->li], where[y->li], place, sizeof(place));
	cfg_error(d, where[x->li], "listener \"%s\": %s clashes with %s of "
	    "listener \"%s\" (%s)", l->name, x->a->text, y->a->text, m->name,
	    place);
}

/*
 * In one family and port: an address clashes with an earlier listener's
 * same address or wildcard; a wildcard with any earlier one.  Sorted,
 * the wildcards come first and equal addresses are neighbours.
 */
static int
check_port_group(struct cfg_diag *d, const config_setting_t *const *where,
    const struct cfg *cfg, const struct addr_ref *g, size_t n)
{
	size_t i, run = 0, all = 0, wild = n;
	int bad = 0;

	for (i = 0; i < n; i++)
		if (g[i].li < g[all].li)
			all = i;
	if (addr_is_any(g[0].a))
		wild = 0;
	for (i = 0; i < n; i++) {
		size_t first;

		if (addr_cmp(g[i].a, g[run].a, 1) != 0)
			run = i;
		if (addr_is_any(g[i].a))
			first = all;
		else
			first = wild < n && g[wild].li < g[run].li ? wild : run;
		if (g[first].li < g[i].li) {
			clash_error(d, where, cfg, &g[i], &g[first]);
			bad = 1;
		}
	}
	return bad;
}

/* TCP and UDP ports are apart: udp says which are checked. */
static int
check_addrs(struct cfg_diag *d, const config_setting_t *const *where,
    const struct cfg *cfg, int udp)
{
	struct addr_ref *r;
	size_t i, j, n = 0, g;
	int bad = 0;

	for (i = 0; i < cfg->nlisteners; i++)
		n += cfg->listeners[i].naddrs;
	if (n == 0)
		return 0;
	if ((r = calloc(n, sizeof(*r))) == NULL) {
		cfg_error(d, NULL, "out of memory");
		return -1;
	}
	for (i = 0, n = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		/* A port in error left its addresses at port 0. */
		if (!l->enabled || l->port == 0 || l->udp != udp)
			continue;
		for (j = 0; j < l->naddrs; j++) {
			r[n].li = i;
			r[n++].a = &l->addrs[j];
		}
	}
	qsort(r, n, sizeof(*r), ref_cmp);
	for (g = 0; g < n; g = i) {
		for (i = g + 1; i < n && addr_cmp(r[i].a, r[g].a, 0) == 0; i++)
			;
		bad |= check_port_group(d, where, cfg, r + g, i - g);
	}
	free(r);
	return bad ? -1 : 0;
}

/* A listener's name and index, to find duplicates by sorting. */
struct name_ref {
	const char	*name;
	size_t		 li;
};

static int
name_cmp(const void *pa, const void *pb)
{
	const struct name_ref *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return a->li < b->li ? -1 : a->li > b->li;
}

static int
check_names(struct cfg_diag *d, const config_setting_t *const *where,
    const struct cfg *cfg)
{
	struct name_ref *r;
	size_t i, n = 0, first = 0;
	char place[4300];
	int bad = 0;

	if ((r = calloc(cfg->nlisteners + 1, sizeof(*r))) == NULL) {
		cfg_error(d, NULL, "out of memory");
		return -1;
	}
	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].name != NULL) {
			r[n].name = cfg->listeners[i].name;
			r[n++].li = i;
		}
	qsort(r, n, sizeof(*r), name_cmp);
	for (i = 0; i < n; i++) {
		if (i == 0 || strcmp(r[i].name, r[first].name) != 0) {
			first = i;
			continue;
		}
		cfg_place_from(d, where[r[i].li], where[r[first].li], place,
		    sizeof(place));
		cfg_error(d, where[r[i].li], "listener \"%s\" defined twice "
		    "(first at %s)", r[i].name, place);
		bad = 1;
	}
	free(r);
	return bad ? -1 : 0;
}

/*
 * Run whatever else failed (every mistake in one run); "nothing is
 * enabled" only when the listeners themselves are sound.
 */
static int
check_listeners(struct cfg_diag *d, const config_setting_t *const *where,
    struct cfg *cfg, int bad)
{
	size_t i, enabled = 0;

	for (i = 0; i < cfg->nlisteners; i++)
		enabled += cfg->listeners[i].enabled != 0;
	bad |= check_names(d, where, cfg) < 0;
	bad |= check_addrs(d, where, cfg, 0) < 0;
	bad |= check_addrs(d, where, cfg, 1) < 0;
	if (!bad && cfg->nlisteners > 0 && enabled == 0) {
		cfg_error(d, config_setting_parent(where[0]), "no listener is "
		    "enabled: nothing to serve");
		bad = 1;
	}
	return bad ? -1 : 0;
}

/*
 * A configuration being built: where each listener is (for messages),
 * and the libconfig instances of drop-in files, kept until the
 * listeners have been checked together.
 */
struct build {
	struct cfg_defaults	  def;
	const config_setting_t	**where;
	config_t		**lcs;
	size_t			  nlcs;
	const config_setting_t	 *main_list;	/* the main file's list */
};

/* Adds the listeners of one list: the main file's or a drop-in's. */
static int
parse_list(struct cfg_diag *d, const config_setting_t *list,
    struct cfg *cfg, struct build *b)
{
	size_t i, n, base = cfg->nlisteners;
	struct cfg_listener *ls;
	const config_setting_t **w;
	int bad = 0;

	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		cfg_error(d, list, "listeners must be a list of groups: "
		    "listeners = ( { ... }, { ... } );");
		return -1;
	}
	if ((n = (size_t)config_setting_length(list)) == 0)
		return 0;
	if ((ls = realloc(cfg->listeners, (base + n) * sizeof(*ls))) == NULL)
		return -1;
	cfg->listeners = ls;
	memset(ls + base, 0, n * sizeof(*ls));
	if ((w = realloc(b->where, (base + n) * sizeof(*w))) == NULL)
		return -1;
	b->where = w;
	for (i = 0; i < n; i++) {
		const config_setting_t *lg = config_setting_get_elem(list,
		    (unsigned)i);
		struct cfg_listener *l = &cfg->listeners[cfg->nlisteners++];

		w[base + i] = lg;
		l->cfg = cfg;
		if (!config_setting_is_group(lg)) {
			cfg_error(d, lg, "listeners[%zu] must be a group "
			    "{ name = ...; protocol = ...; ... }", i);
			bad = 1;
			continue;
		}
		bad |= parse_listener(d, lg, &b->def, l) < 0;
	}
	return bad ? -1 : 0;
}

/* At least one listener, wherever they come from. */
static int
check_some_listeners(struct cfg_diag *d, const struct cfg *cfg,
    const struct build *b, const char *dropins)
{
	if (cfg->nlisteners > 0)
		return 0;
	if (dropins != NULL)
		cfg_error(d, NULL, "no listeners, here or in include_dir "
		    "\"%s\": nothing to serve", dropins);
	else if (b->main_list != NULL)
		cfg_error(d, b->main_list, "listeners is empty: nothing to "
		    "serve");
	else
		cfg_error(d, NULL, "no listeners = ( ... ); list: nothing to "
		    "serve");
	return -1;
}

/* ---- drop-in files (include_dir) ------------------------------------ */

/*
 * libconfig 1.5 cannot @include a folder (it exits): include_dir names
 * one, and each of its *.conf files, in byte order of their names, adds
 * listeners.  A drop-in may set nothing else, so that which file sorts
 * last never decides a global setting.
 */
static int
dropin_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 5 &&
	    strcmp(e->d_name + n - 5, ".conf") == 0;
}

/* A drop-in's root: listeners, nothing else. */
static int
dropin_root(struct cfg_diag *d, const config_setting_t *root,
    struct cfg *cfg, struct build *b)
{
	const config_setting_t *list = NULL;
	int k, n = config_setting_length(root), bad = 0;

	for (k = 0; k < n; k++) {
		const config_setting_t *s = config_setting_get_elem(root,
		    (unsigned)k);

		if (strcmp(config_setting_name(s), "listeners") == 0)
			list = s;
		else {
			cfg_error(d, s, "%s cannot be set in a file of "
			    "include_dir: only listeners = ( ... );",
			    config_setting_name(s));
			bad = 1;
		}
	}
	if (list != NULL)
		bad |= parse_list(d, list, cfg, b) < 0;
	return bad ? -1 : 0;
}

/* Reads, scans and parses one drop-in; its listeners join cfg. */
static int
dropin_load(struct cfg_diag *d, const char *path, struct cfg *cfg,
    struct build *b)
{
	struct cfg_srcs *S = d->srcs;
	config_t *lc, **lcs;
	char why[256], *text;
	struct stat st;
	size_t len;
	ssize_t i;

	if ((text = cfg_file_slurp(S, path, &len, &st, why, sizeof(why))) ==
	    NULL) {
		cfg_diag_addf(d, path, 0, "%s", why);
		return -1;
	}
	if ((i = cfg_srcs_add(S, NULL, path, text, len, &st)) == -1 ||
	    (lcs = realloc(b->lcs, (b->nlcs + 1) * sizeof(*lcs))) == NULL) {
		cfg_diag_addf(d, path, 0, "out of memory");
		return -1;
	}
	b->lcs = lcs;
	S->chain[0] = (size_t)i;
	S->depth = 0;
	if (cfg_scan_src(d, S, (size_t)i) == -1)
		return -1;
	if ((lc = malloc(sizeof(*lc))) == NULL) {
		cfg_diag_addf(d, path, 0, "out of memory");
		return -1;
	}
	config_init(lc);
	b->lcs[b->nlcs++] = lc;
	if (S->incdir != NULL)
		config_set_include_dir(lc, S->incdir);
	if (config_read_string(lc, S->v[i].text) == CONFIG_FALSE) {
		cfg_syntax_error(d, lc, (size_t)i);
		return -1;
	}
	config_setting_set_hook(config_root_setting(lc),
	    (void *)(uintptr_t)(i + 1));
	return dropin_root(d, config_root_setting(lc), cfg, b);
}

/* Every drop-in of the folder dir (include_dir = "dir";), in order. */
static int
dropins_load(struct cfg_diag *d, const config_setting_t *set,
    const char *dir, struct cfg *cfg, struct build *b)
{
	struct dirent **names;
	char *path, *file;
	int i, n, bad = 0;

	/* Relative to the main file's folder, as @include is. */
	if (dir[0] == '/' || d->srcs->incdir == NULL ? (path =
	    strdup(dir)) == NULL : asprintf(&path, "%s/%s", d->srcs->incdir,
	    dir) == -1) {
		cfg_error(d, set, "out of memory");
		return -1;
	}
	if ((n = scandir(path, &names, dropin_name, alphasort)) == -1) {
		cfg_error(d, set, "include_dir \"%s\": %s: %s", dir, path,
		    strerror(errno));
		free(path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (asprintf(&file, "%s/%s", path, names[i]->d_name) == -1)
			bad = 1;
		else {
			bad |= dropin_load(d, file, cfg, b) < 0;
			free(file);
		}
		free(names[i]);
	}
	free(names);
	free(path);
	return bad ? -1 : 0;
}

/* ---- the top level ------------------------------------------------ */

/* The top level's own settings, and the defaults for listeners. */
static int
parse_globals(struct cfg_diag *d, const config_setting_t *root,
    struct cfg *cfg, struct cfg_defaults *def)
{
	const char *level = NULL;
	uint32_t backlog = DEF_BACKLOG;
	int bad = 0, r;

	bad |= cfg_check_keys(d, root, root_keys) < 0;
	bad |= cfg_get_uint(d, root, "workers", 0, MAX_WORKERS,
	    &cfg->workers) < 0;
	bad |= cfg_get_uint(d, root, "max_connections", 1, MAX_CONNS,
	    &cfg->max_conns) < 0;
	bad |= cfg_get_uint(d, root, "evict_after", 0, MAX_TIMEOUT,
	    &cfg->evict_after) < 0;
	bad |= cfg_get_uint(d, root, "shutdown_timeout", 0, 3600,
	    &cfg->shutdown_timeout) < 0;
	bad |= cfg_get_uint(d, root, "backlog", 1, 65535, &backlog) < 0;
	def->backlog = (int)backlog;
	bad |= cfg_get_uint(d, root, "max_connections_per_source", 0,
	    MAX_CONNS, &def->max_per_source) < 0;
	bad |= cfg_get_uint(d, root, "idle_timeout", 0, MAX_TIMEOUT,
	    &def->idle_timeout) < 0;
	bad |= cfg_get_uint(d, root, "write_timeout", 0, MAX_TIMEOUT,
	    &def->write_timeout) < 0;
	bad |= cfg_get_uint(d, root, "tls_handshake_timeout", 1, MAX_TIMEOUT,
	    &def->tls_timeout) < 0;
	if ((r = cfg_get_string(d, root, "log_level", 16, &level)) > 0) {
		if ((cfg->log_level = log_level_from_name(level)) == -1) {
			cfg_error(d, config_setting_get_member(root,
			    "log_level"), "log_level must be one of error, "
			    "warning, notice, info, debug; not \"%s\"", level);
			bad = 1;
		}
	} else if (r < 0)
		bad = 1;
	return bad ? -1 : 0;
}

static int
parse_root(struct cfg_diag *d, const config_setting_t *root,
    struct cfg *cfg)
{
	struct build b = { { DEF_BACKLOG, 0, DEF_IDLE_TIMEOUT,
	    DEF_WRITE_TIMEOUT, EO_TLS_HANDSHAKE_TIMEOUT }, NULL, NULL, 0,
	    NULL };
	const char *dropins = NULL;
	size_t i;
	int bad = 0, dropbad = 0;

	cfg->max_conns = DEF_MAX_CONNS;
	cfg->evict_after = DEF_EVICT_AFTER;
	cfg->shutdown_timeout = DEF_SHUTDOWN_TIMEOUT;
	cfg->log_level = EO_LOG_INFO;
	bad |= parse_globals(d, root, cfg, &b.def) < 0;
	bad |= cfg_get_string(d, root, "include_dir", 1024, &dropins) < 0;
	if ((b.main_list = config_setting_get_member(root, "listeners")) !=
	    NULL)
		bad |= parse_list(d, b.main_list, cfg, &b) < 0;
	if (dropins != NULL)
		dropbad = dropins_load(d, config_setting_get_member(root,
		    "include_dir"), dropins, cfg, &b) < 0;
	/* A folder that cannot be read says so; "no listeners" is noise. */
	if (!dropbad)
		bad |= check_some_listeners(d, cfg, &b, dropins) < 0;
	bad |= dropbad;
	bad = check_listeners(d, b.where, cfg, bad) < 0;
	for (i = 0; i < b.nlcs; i++) {
		config_destroy(b.lcs[i]);
		free(b.lcs[i]);
	}
	free(b.lcs);
	free(b.where);
	return bad ? -1 : 0;
}

static struct cfg *
cfg_build(config_t *lc, const char *name, struct cfg_diag *d)
{
	struct cfg *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL || (cfg->path = strdup(name)) == NULL) {
		free(cfg);
		cfg_error(d, NULL, "out of memory");
		return NULL;
	}
	atomic_init(&cfg->refs, 1);
	if (parse_root(d, config_root_setting(lc), cfg) == -1 || d->n > 0 ||
	    d->dropped > 0) {
		if (d->n == 0 && d->dropped == 0)
			cfg_error(d, NULL, "out of memory");
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

struct cfg *
cfg_load_file(const char *path, struct cfg_diag *d)
{
	return cfg_read_file(path, d, cfg_build);
}

struct cfg *
cfg_load_string(const char *text, const char *name, struct cfg_diag *d)
{
	return cfg_read_string(text, name, d, cfg_build);
}
