/*
 * Reading and validating the configuration: see include/config.h.
 *
 * The file is parsed by libconfig; this file walks the result once,
 * checks every setting's type, range and name, and builds a struct cfg.
 * It never stops at the first mistake: all are collected in a cfg_diag.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "config.h"
#include "log.h"
#include "protocol.h"

/* Settings a listener inherits from the top level unless it sets them. */
struct cfg_defaults {
	int		backlog;
	uint32_t	max_per_source;
	uint32_t	idle_timeout;
	uint32_t	write_timeout;
};

/* Defaults, documented in conf/echo-oracled.conf and README.md. */
#define DEF_MAX_CONNS		10000
#define DEF_EVICT_AFTER		1
#define DEF_SHUTDOWN_TIMEOUT	10
#define DEF_IDLE_TIMEOUT	300
#define DEF_WRITE_TIMEOUT	60
#define DEF_BACKLOG		4096

#define MAX_TIMEOUT		86400	/* a day: bigger is surely a typo */
#define MAX_WORKERS		256
#define MAX_CONNS		1000000

static const char *const root_keys[] = { "workers", "max_connections",
	"evict_after", "shutdown_timeout", "log_level", "backlog",
	"max_connections_per_source", "idle_timeout", "write_timeout",
	"listeners", NULL };

/* ---- diagnostics -------------------------------------------------- */

void
cfg_diag_init(struct cfg_diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
cfg_diag_free(struct cfg_diag *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	cfg_diag_init(d);
}

static void
diag_push(struct cfg_diag *d, char *msg)
{
	if (msg == NULL)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		char **m = realloc(d->msgs, cap * sizeof(*m));

		if (m == NULL) {
			free(msg);
			return;
		}
		d->msgs = m;
		d->cap = cap;
	}
	d->msgs[d->n++] = msg;
}

/*
 * libconfig names an @include'd file as written, relative to the main
 * file's folder: the folder to print before it, so that FILE:LINE
 * names a file one can open.
 */
static const char *
diag_dir(const struct cfg_diag *d, const char *file)
{
	static __thread char dir[4096];
	const char *slash;

	if (file[0] == '/' || d->file == NULL || strcmp(file, d->file) == 0 ||
	    (slash = strrchr(d->file, '/')) == NULL)
		return "";
	snprintf(dir, sizeof(dir), "%.*s/", (int)(slash - d->file), d->file);
	return dir;
}

void
cfg_error(struct cfg_diag *d, const config_setting_t *where,
    const char *fmt, ...)
{
	const char *file = NULL;
	char *msg = NULL, *text = NULL;
	va_list ap;
	int line = 0;

	if (where != NULL) {
		file = config_setting_source_file(where);
		line = (int)config_setting_source_line(where);
	}
	/* libconfig knows the file of settings read from files only. */
	if (file == NULL)
		file = d->file != NULL ? d->file : "(config)";
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) == -1)
		text = NULL;
	va_end(ap);
	if (text == NULL)
		return;
	if (line > 0) {
		if (asprintf(&msg, "%s%s:%d: %s%s", diag_dir(d, file), file,
		    line, d->context, text) == -1)
			msg = NULL;
	} else if (asprintf(&msg, "%s%s: %s%s", diag_dir(d, file), file,
	    d->context, text) == -1)
		msg = NULL;
	free(text);
	diag_push(d, msg);
}

/* ---- typed getters ------------------------------------------------ */

int
cfg_check_keys(struct cfg_diag *d, const config_setting_t *group,
    const char *const *known)
{
	int i, n = config_setting_length(group), bad = 0;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group,
		    (unsigned)i);
		const char *name = config_setting_name(s);
		const char *const *k;

		for (k = known; *k != NULL; k++)
			if (name != NULL && strcmp(name, *k) == 0)
				break;
		if (*k == NULL) {
			cfg_error(d, s, "unknown setting \"%s\"",
			    name ? name : "?");
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

int
cfg_get_uint(struct cfg_diag *d, const config_setting_t *group,
    const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	long long v;
	int type;

	if (s == NULL)
		return 0;
	type = config_setting_type(s);
	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		cfg_error(d, s, "%s must be an integer", key);
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max) {
		cfg_error(d, s, "%s must be %u to %u, not %lld", key, min, max,
		    v);
		return -1;
	}
	*out = (uint32_t)v;
	return 1;
}

int
cfg_get_bool(struct cfg_diag *d, const config_setting_t *group,
    const char *key, int *out)
{
	const config_setting_t *s = config_setting_get_member(group, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		cfg_error(d, s, "%s must be true or false", key);
		return -1;
	}
	*out = config_setting_get_bool(s);
	return 1;
}

int
cfg_get_string(struct cfg_diag *d, const config_setting_t *group,
    const char *key, size_t maxlen, const char **out)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	const char *v;

	if (s == NULL)
		return 0;
	if ((v = config_setting_get_string(s)) == NULL) {
		cfg_error(d, s, "%s must be a string", key);
		return -1;
	}
	if (strlen(v) > maxlen) {
		cfg_error(d, s, "%s must be at most %zu bytes", key, maxlen);
		return -1;
	}
	*out = v;
	return 1;
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

/* Fills a with the numeric address text and port; -1 if not numeric. */
static int
addr_parse(struct cfg_addr *a, const char *text, uint16_t port)
{
	struct addrinfo hints, *res;
	char host[NI_MAXHOST];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	if (getaddrinfo(text, NULL, &hints, &res) != 0)
		return -1;
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
	else
		return -1;
	if (getnameinfo((struct sockaddr *)&a->ss, a->len, host, sizeof(host),
	    NULL, 0, NI_NUMERICHOST) != 0)
		return -1;
	snprintf(a->text, sizeof(a->text),
	    a->ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
	return 0;
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
		const char *text = config_setting_get_string(e);
		struct cfg_addr *a = &l->addrs[l->naddrs];
		size_t j;

		if (text == NULL) {
			cfg_error(d, e, "bind: each address must be a string");
			bad = 1;
			continue;
		}
		if (addr_parse(a, text, l->port) == -1) {
			cfg_error(d, e, "bind: \"%s\" is not a numeric IPv4 or "
			    "IPv6 address", text);
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

static int
check_listener_keys(struct cfg_diag *d, const config_setting_t *lg)
{
	static const char *const known[] = { "name", "protocol", "port",
	    "bind", "enabled", "backlog", "max_connections",
	    "max_connections_per_source", "idle_timeout", "write_timeout",
	    NULL };
	int i, n = config_setting_length(lg), bad = 0;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(lg,
		    (unsigned)i);
		const char *key = config_setting_name(s);
		const char *const *k;

		if (key == NULL || protocol_find(key) != NULL)
			continue;	/* protocol groups: parse_proto_opts */
		for (k = known; *k != NULL; k++)
			if (strcmp(key, *k) == 0)
				break;
		if (*k == NULL) {
			cfg_error(d, s, "unknown setting \"%s\"", key);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

static int
parse_listener(struct cfg_diag *d, const config_setting_t *lg,
    const struct cfg_defaults *def, struct cfg_listener *l)
{
	const char *name = NULL, *proto = NULL;
	uint32_t port = 0, backlog = (uint32_t)def->backlog;
	int bad = 0, r;

	l->enabled = 1;
	l->line = (int)config_setting_source_line(lg);
	l->max_per_source = def->max_per_source;
	l->idle_timeout = def->idle_timeout;
	l->write_timeout = def->write_timeout;

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
		return -1;
	snprintf(d->context, sizeof(d->context), "listener \"%s\": ",
	    l->name ? l->name : "?");

	bad |= check_listener_keys(d, lg) < 0;
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
	if (l->proto != NULL)
		bad |= parse_proto_opts(d, lg, l) < 0;
	d->context[0] = '\0';
	return bad ? -1 : 0;
}

/* Names unique; enabled listeners' addresses pairwise bindable. */
static int
check_listeners(struct cfg_diag *d, const config_setting_t *list,
    struct cfg *cfg)
{
	size_t i, j, a, b, enabled = 0;
	int bad = 0;

	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *x = &cfg->listeners[i];
		const config_setting_t *xs = config_setting_get_elem(list,
		    (unsigned)i);

		enabled += x->enabled != 0;
		for (j = 0; j < i; j++) {
			struct cfg_listener *y = &cfg->listeners[j];

			if (x->name && y->name && strcmp(x->name, y->name) ==
			    0) {
				cfg_error(d, xs, "listener \"%s\" defined "
				    "twice (first at line %d)", x->name,
				    y->line);
				bad = 1;
			}
			if (!x->enabled || !y->enabled)
				continue;
			for (a = 0; a < x->naddrs; a++)
				for (b = 0; b < y->naddrs; b++)
					if (addr_clash(&x->addrs[a],
					    &y->addrs[b])) {
						cfg_error(d, xs, "listener "
						    "\"%s\": %s clashes with "
						    "%s of listener \"%s\" "
						    "(line %d)", x->name,
						    x->addrs[a].text,
						    y->addrs[b].text, y->name,
						    y->line);
						bad = 1;
					}
		}
	}
	if (!bad && enabled == 0) {
		cfg_error(d, list, "no listener is enabled: nothing to serve");
		bad = 1;
	}
	return bad ? -1 : 0;
}

static int
parse_listeners(struct cfg_diag *d, const config_setting_t *root,
    const struct cfg_defaults *def, struct cfg *cfg)
{
	const config_setting_t *list = config_setting_get_member(root,
	    "listeners");
	int i, n, bad = 0;

	if (list == NULL) {
		cfg_error(d, NULL, "no listeners = ( ... ); list: nothing to "
		    "serve");
		return -1;
	}
	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		cfg_error(d, list, "listeners must be a list of groups: "
		    "listeners = ( { ... }, { ... } );");
		return -1;
	}
	n = config_setting_length(list);
	if (n == 0) {
		cfg_error(d, list, "listeners is empty: nothing to serve");
		return -1;
	}
	cfg->listeners = calloc((size_t)n, sizeof(*cfg->listeners));
	if (cfg->listeners == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		const config_setting_t *lg = config_setting_get_elem(list,
		    (unsigned)i);
		struct cfg_listener *l = &cfg->listeners[cfg->nlisteners++];

		l->cfg = cfg;
		if (!config_setting_is_group(lg)) {
			cfg_error(d, lg, "listeners[%d] must be a group "
			    "{ name = ...; protocol = ...; ... }", i);
			bad = 1;
			continue;
		}
		bad |= parse_listener(d, lg, def, l) < 0;
	}
	if (!bad)
		bad |= check_listeners(d, list, cfg) < 0;
	return bad ? -1 : 0;
}

/* ---- the top level ------------------------------------------------ */

static int
parse_root(struct cfg_diag *d, const config_setting_t *root,
    struct cfg *cfg)
{
	struct cfg_defaults def = { DEF_BACKLOG, 0, DEF_IDLE_TIMEOUT,
	    DEF_WRITE_TIMEOUT };
	const char *level = NULL;
	uint32_t backlog = DEF_BACKLOG;
	int bad = 0, r;

	cfg->max_conns = DEF_MAX_CONNS;
	cfg->evict_after = DEF_EVICT_AFTER;
	cfg->shutdown_timeout = DEF_SHUTDOWN_TIMEOUT;
	cfg->log_level = EO_LOG_INFO;

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
	def.backlog = (int)backlog;
	bad |= cfg_get_uint(d, root, "max_connections_per_source", 0,
	    MAX_CONNS, &def.max_per_source) < 0;
	bad |= cfg_get_uint(d, root, "idle_timeout", 0, MAX_TIMEOUT,
	    &def.idle_timeout) < 0;
	bad |= cfg_get_uint(d, root, "write_timeout", 0, MAX_TIMEOUT,
	    &def.write_timeout) < 0;
	if ((r = cfg_get_string(d, root, "log_level", 16, &level)) > 0) {
		if ((cfg->log_level = log_level_from_name(level)) == -1) {
			cfg_error(d, config_setting_get_member(root,
			    "log_level"), "log_level must be one of error, "
			    "warning, notice, info, debug; not \"%s\"", level);
			bad = 1;
		}
	} else if (r < 0)
		bad = 1;
	bad |= parse_listeners(d, root, &def, cfg) < 0;
	return bad ? -1 : 0;
}

/* Turns a libconfig parse failure into "FILE:LINE: text". */
static void
syntax_error(struct cfg_diag *d, const config_t *lc)
{
	const char *file = config_error_file(lc);
	char *msg = NULL;

	if (file == NULL)
		file = d->file;
	if (asprintf(&msg, "%s%s:%d: %s", diag_dir(d, file), file,
	    config_error_line(lc), config_error_text(lc)) == -1)
		msg = NULL;
	diag_push(d, msg);
}

/* "FILE:LINE: ..." to its line, 0 if it names none. */
static long
diag_line(const char *msg)
{
	const char *p = strstr(msg, ": ");

	while (p != NULL && p > msg) {
		const char *q = p;

		while (q > msg && q[-1] >= '0' && q[-1] <= '9')
			q--;
		if (q < p && q > msg && q[-1] == ':')
			return strtol(q, NULL, 10);
		p = strstr(p + 2, ": ");
	}
	return 0;
}

/*
 * Mistakes are found setting by setting, not line by line: sort them
 * (stably) so that they read from the top of the file down, like a
 * compiler's.  Messages of an included file keep their place.
 */
static void
diag_sort(struct cfg_diag *d)
{
	size_t i, j;

	for (i = 1; i < d->n; i++) {
		char *m = d->msgs[i];
		long line = diag_line(m);
		size_t flen = strcspn(m, ":");

		for (j = i; j > 0; j--) {
			const char *o = d->msgs[j - 1];

			if (strcspn(o, ":") != flen || strncmp(o, m, flen) != 0 ||
			    diag_line(o) <= line)
				break;
			d->msgs[j] = d->msgs[j - 1];
		}
		d->msgs[j] = m;
	}
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
	if (parse_root(d, config_root_setting(lc), cfg) == -1 || d->n > 0) {
		if (d->n == 0)
			cfg_error(d, NULL, "out of memory");
		diag_sort(d);
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

struct cfg *
cfg_load_file(const char *path, struct cfg_diag *d)
{
	struct cfg *cfg = NULL;
	config_t lc;
	char *dir, *slash;
	FILE *f;

	d->file = path;
	/* libconfig says only "file I/O error": find the real reason. */
	if ((f = fopen(path, "r")) == NULL) {
		cfg_error(d, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	fclose(f);
	config_init(&lc);
	/* @include "x.conf" is relative to the including file's folder. */
	if ((dir = strdup(path)) != NULL) {
		if ((slash = strrchr(dir, '/')) != NULL) {
			*slash = '\0';
			config_set_include_dir(&lc, dir[0] ? dir : "/");
		}
		free(dir);
	}
	if (config_read_file(&lc, path) == CONFIG_FALSE)
		syntax_error(d, &lc);
	else
		cfg = cfg_build(&lc, path, d);
	config_destroy(&lc);
	d->file = NULL;
	return cfg;
}

struct cfg *
cfg_load_string(const char *text, const char *name, struct cfg_diag *d)
{
	struct cfg *cfg = NULL;
	config_t lc;

	d->file = name;
	config_init(&lc);
	if (config_read_string(&lc, text) == CONFIG_FALSE)
		syntax_error(d, &lc);
	else
		cfg = cfg_build(&lc, name, d);
	config_destroy(&lc);
	d->file = NULL;
	return cfg;
}
