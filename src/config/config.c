/*
 * Validating the configuration: see include/config.h.  libconfig's tree
 * is walked once: every setting's type, range and name is checked, the
 * listeners (drop-ins included) together, and a struct cfg is built.
 * It never stops at the first mistake: all are collected in a cfg_diag.
 * A loaded configuration's life (references, the free) is cfg_ref.c;
 * the typed getters, which the protocols use as well, are below in
 * cfg_get.c.
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

static const char *const root_keys[] = { "workers", "max_connections",
	"evict_after", "shutdown_timeout", "log_level", "backlog",
	"max_connections_per_source", "idle_timeout", "write_timeout",
	"listeners", "include_dir", "tls_handshake_timeout", "stop_delay",
	"watch_config", NULL };
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
	if (cfg_addr_is_any(g[0].a))
		wild = 0;
	for (i = 0; i < n; i++) {
		size_t first;

		if (addr_cmp(g[i].a, g[run].a, 1) != 0)
			run = i;
		if (cfg_addr_is_any(g[i].a))
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
		bad |= cfg_parse_listener(d, lg, &b->def, l) < 0;
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
	/* Watched for new drop-ins (watch_config): the folder as read. */
	if (cfg->dropin_dir == NULL)
		cfg->dropin_dir = strdup(path);
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
	bad |= cfg_get_uint(d, root, "stop_delay", 0, 300,
	    &cfg->stop_delay) < 0;
	bad |= cfg_get_bool(d, root, "watch_config", &cfg->watch_config) < 0;
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
	    DEF_WRITE_TIMEOUT, EO_TLS_HANDSHAKE_TIMEOUT, tls_parse }, NULL,
	    NULL, 0,
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

/* Every file read (main, @include, drop-ins): what watch_config watches. */
static int
cfg_note_files(struct cfg *cfg, const struct cfg_srcs *S)
{
	size_t i;

	if (S == NULL || S->n == 0)
		return 0;
	if ((cfg->files = calloc(S->n, sizeof(*cfg->files))) == NULL)
		return -1;
	for (i = 0; i < S->n; i++) {
		if ((cfg->files[i] = strdup(S->v[i].path)) == NULL)
			return -1;
		cfg->nfiles++;
	}
	return 0;
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
	    d->dropped > 0 || cfg_note_files(cfg, d->srcs) == -1) {
		if (d->n == 0 && d->dropped == 0)
			cfg_error(d, NULL, "out of memory");
		cfg_unref(cfg);		/* its only reference: freed */
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
