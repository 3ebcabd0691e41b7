/*
 * Diagnostics of the configuration loader: each mistake becomes one
 * "FILE:LINE: text" message in a struct cfg_diag; when loading ends,
 * repeats are dropped, the rest sorted by file and line and capped at
 * EO_CFG_MAX_ERRORS.  See include/config.h.
 *
 * Also where a setting was read from (which text, which file): messages
 * need it, and the reader (cfg_source.c) only fills the texts in, so it
 * calls down here and never the other way.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

/* Where a message points: its file (by first appearance) and line. */
struct cfg_diag_pos {
	size_t		file;
	long		line;
	size_t		seq;		/* order found */
};

/*
 * Messages kept in memory at most: past it they are only counted, so
 * that no file, however broken, makes the loader grow without bound.
 */
#define DIAG_KEEP_MAX	100000

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
	for (i = 0; i < d->nfiles; i++)
		free(d->files[i]);
	for (i = 0; i < d->nwarns; i++)
		free(d->warns[i]);
	free(d->msgs);
	free(d->pos);
	free(d->files);
	free(d->warns);
	cfg_diag_init(d);
}

/* The rank of file among the files messages named so far. */
static size_t
diag_file(struct cfg_diag *d, const char *file)
{
	char **f;
	size_t i;

	for (i = 0; i < d->nfiles; i++)
		if (strcmp(d->files[i], file) == 0)
			return i;
	if ((f = realloc(d->files, (d->nfiles + 1) * sizeof(*f))) == NULL)
		return d->nfiles;
	d->files = f;
	if ((f[d->nfiles] = strdup(file)) == NULL)
		return d->nfiles;
	return d->nfiles++;
}

static int
diag_grow(struct cfg_diag *d)
{
	size_t cap = d->cap ? d->cap * 2 : 8;
	struct cfg_diag_pos *p;
	char **m;

	if ((m = realloc(d->msgs, cap * sizeof(*m))) == NULL)
		return -1;
	d->msgs = m;
	if ((p = realloc(d->pos, cap * sizeof(*p))) == NULL)
		return -1;
	d->pos = p;
	d->cap = cap;
	return 0;
}

/*
 * A message quotes the configuration's own strings and names, and -t
 * prints it as it is: a control byte there must not reach a terminal
 * or the journal ("x\n<0>forged" would forge a line of emergency
 * priority).  They are written as -T writes them in strings.
 */
static char *
diag_escape(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	char *out, *o;

	if ((out = malloc(strlen(text) * 4 + 1)) == NULL)
		return NULL;
	for (o = out; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r') {
			*o++ = '\\';
			*o++ = *p == '\n' ? 'n' : 'r';
		} else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			o += sprintf(o, "\\x%02x", *p);
		else
			*o++ = (char)*p;
	}
	*o = '\0';
	return out;
}

/* Adds "FILE:LINE: context text" (no LINE if line is 0). */
static void
diag_add(struct cfg_diag *d, const char *file, long line, const char *text)
{
	char *msg = NULL, *raw = NULL;

	if (d->n >= DIAG_KEEP_MAX || (d->n == d->cap && diag_grow(d) == -1)) {
		d->dropped++;
		return;
	}
	if ((line > 0 ? asprintf(&raw, "%s:%ld: %s%s", file, line,
	    d->context, text) : asprintf(&raw, "%s: %s%s", file, d->context,
	    text)) == -1 || (msg = diag_escape(raw)) == NULL) {
		free(raw);
		d->dropped++;
		return;
	}
	free(raw);
	d->pos[d->n].file = diag_file(d, file);
	d->pos[d->n].line = line;
	d->pos[d->n].seq = d->n;
	d->msgs[d->n++] = msg;
}

/* The message formatted, then added; one that cannot be is counted. */
static void diag_vaddf(struct cfg_diag *, const char *, long, const char *,
		    va_list) __attribute__((format(printf, 4, 0)));

static void
diag_vaddf(struct cfg_diag *d, const char *file, long line, const char *fmt,
    va_list ap)
{
	char *text;

	if (vasprintf(&text, fmt, ap) == -1) {
		d->dropped++;
		return;
	}
	diag_add(d, file, line, text);
	free(text);
}

void
cfg_diag_addf(struct cfg_diag *d, const char *file, long line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vaddf(d, file, line, fmt, ap);
	va_end(ap);
}

/*
 * libconfig names an @include'd file as written, relative to the main
 * file's folder: the folder to print before it, so that FILE:LINE
 * names a file one can open.
 */
const char *
cfg_diag_dir(const struct cfg_diag *d, const char *file)
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
	char path[4200];
	va_list ap;
	int line = 0;

	snprintf(path, sizeof(path), "%s", d->file != NULL ? d->file :
	    "(config)");
	if (where != NULL) {
		cfg_setting_path(d, where, path, sizeof(path));
		line = (int)config_setting_source_line(where);
	}
	va_start(ap, fmt);
	diag_vaddf(d, path, line, fmt, ap);
	va_end(ap);
}

/*
 * Warnings come setting by setting, listener by listener: in file
 * order already.  Past EO_CFG_MAX_ERRORS they are only counted.
 */
void
cfg_warn(struct cfg_diag *d, const config_setting_t *where,
    const char *fmt, ...)
{
	char *text = NULL, *raw = NULL, *msg = NULL, path[4200], **w;
	va_list ap;
	int r;

	d->warns_total++;
	if (d->nwarns >= EO_CFG_MAX_ERRORS)
		return;
	cfg_setting_path(d, where, path, sizeof(path));
	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r != -1 && asprintf(&raw, "%s:%u: warning: %s%s", path,
	    config_setting_source_line(where), d->context, text) != -1)
		msg = diag_escape(raw);
	if (msg != NULL && (w = realloc(d->warns, (d->nwarns + 1) *
	    sizeof(*w))) != NULL) {
		d->warns = w;
		d->warns[d->nwarns++] = msg;
		msg = NULL;
	}
	free(msg);
	free(raw);
	if (r != -1)
		free(text);
}

/* The last warning line counts those not shown. */
static void
warns_finish(struct cfg_diag *d)
{
	size_t more = d->warns_total - d->nwarns;
	char **w, *msg;

	if (more == 0 || asprintf(&msg, "%s: %zu more warning%s not shown",
	    d->file != NULL ? d->file : "(config)", more, more == 1 ? "" :
	    "s") == -1)
		return;
	if ((w = realloc(d->warns, (d->nwarns + 1) * sizeof(*w))) == NULL) {
		free(msg);
		return;
	}
	d->warns = w;
	d->warns[d->nwarns++] = msg;
}

/* One message and its position, to sort them together. */
struct diag_item {
	struct cfg_diag_pos	 pos;
	char			*msg;
};

static int
item_by_text(const void *a, const void *b)
{
	const struct diag_item *x = a, *y = b;
	int c = strcmp(x->msg, y->msg);

	if (c != 0)
		return c;
	return x->pos.seq < y->pos.seq ? -1 : x->pos.seq > y->pos.seq;
}

/*
 * Mistakes are found setting by setting, not line by line: sort them
 * so that they read from the top of each file down, like a compiler's,
 * files in the order they were first named.
 */
static int
item_by_place(const void *a, const void *b)
{
	const struct diag_item *x = a, *y = b;

	if (x->pos.file != y->pos.file)
		return x->pos.file < y->pos.file ? -1 : 1;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	return x->pos.seq < y->pos.seq ? -1 : x->pos.seq > y->pos.seq;
}

/* Drops repeated messages (keeping the first), sorts the rest. */
static void
diag_tidy(struct cfg_diag *d)
{
	struct diag_item *it;
	size_t i, n = 0;

	if ((it = calloc(d->n, sizeof(*it))) == NULL)
		return;
	for (i = 0; i < d->n; i++) {
		it[i].pos = d->pos[i];
		it[i].msg = d->msgs[i];
	}
	qsort(it, d->n, sizeof(*it), item_by_text);
	for (i = 0; i < d->n; i++) {
		if (n > 0 && strcmp(it[n - 1].msg, it[i].msg) == 0)
			free(it[i].msg);
		else
			it[n++] = it[i];
	}
	qsort(it, n, sizeof(*it), item_by_place);
	for (i = 0; i < n; i++) {
		d->pos[i] = it[i].pos;
		d->msgs[i] = it[i].msg;
	}
	d->n = n;
	free(it);
}

/* The messages as shown: tidy, capped, the rest counted in one line. */
void
cfg_diag_finish(struct cfg_diag *d)
{
	size_t i, more;

	warns_finish(d);
	if (d->n == 0 && d->dropped == 0)
		return;
	diag_tidy(d);
	d->total = d->n + d->dropped;
	if (d->total <= EO_CFG_MAX_ERRORS)
		return;
	for (i = EO_CFG_MAX_ERRORS; i < d->n; i++)
		free(d->msgs[i]);
	if (d->n > EO_CFG_MAX_ERRORS)
		d->n = EO_CFG_MAX_ERRORS;
	more = d->total - d->n;
	d->context[0] = '\0';
	cfg_diag_addf(d, d->file != NULL ? d->file : "(config)", 0,
	    "%zu more error%s not shown", more, more == 1 ? "" : "s");
}

/* ---- where a setting was read from ------------------------------ */

/* The text libconfig calls file (NULL: the main one), or NULL. */
struct cfg_src *
cfg_srcs_find(struct cfg_srcs *S, const char *file)
{
	size_t i;

	if (S == NULL)
		return NULL;
	for (i = 0; i < S->n; i++)
		if ((file == NULL && S->v[i].name == NULL) ||
		    (file != NULL && S->v[i].name != NULL &&
		    strcmp(file, S->v[i].name) == 0))
			return &S->v[i];
	return NULL;
}

/*
 * The text the setting s was read from.  libconfig names included
 * files; a text it read from memory (the main file, a drop-in) has no
 * name, so a drop-in's root carries its index in S as a hook.
 */
static struct cfg_src *
setting_src(const struct cfg_diag *d, const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);
	const config_setting_t *r = s;
	uintptr_t i;

	if (d->srcs == NULL)
		return NULL;
	if (file != NULL)
		return cfg_srcs_find(d->srcs, file);
	while (config_setting_parent(r) != NULL)
		r = config_setting_parent(r);
	i = (uintptr_t)config_setting_get_hook(r);
	return i > 0 && i <= d->srcs->n ? &d->srcs->v[i - 1] :
	    cfg_srcs_find(d->srcs, NULL);
}

/* The file s is in, as messages name it. */
void
cfg_setting_path(const struct cfg_diag *d, const config_setting_t *s,
    char *buf, size_t len)
{
	const char *file = config_setting_source_file(s);
	const struct cfg_src *src;

	if (file != NULL)
		snprintf(buf, len, "%s%s", cfg_diag_dir(d, file), file);
	else if ((src = setting_src(d, s)) != NULL)
		snprintf(buf, len, "%s", src->path);
	else
		snprintf(buf, len, "%s", d->file != NULL ? d->file :
		    "(config)");
}

/*
 * Where b is, for a message about a: "line N" in the same file,
 * "FILE:N" in another.
 */
void
cfg_place_from(const struct cfg_diag *d, const config_setting_t *a,
    const config_setting_t *b, char *buf, size_t len)
{
	char fa[4200], fb[4200];

	cfg_setting_path(d, a, fa, sizeof(fa));
	cfg_setting_path(d, b, fb, sizeof(fb));
	if (strcmp(fa, fb) == 0)
		snprintf(buf, len, "line %u", config_setting_source_line(b));
	else
		snprintf(buf, len, "%s:%u", fb, config_setting_source_line(b));
}
