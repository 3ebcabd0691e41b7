/*
 * Reading and validating the configuration: see include/config.h.
 *
 * The file is parsed by libconfig; this file walks the result once,
 * checks every setting's type, range and name, and builds a struct cfg.
 * It never stops at the first mistake: all are collected in a cfg_diag.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	"listeners", "include_dir", NULL };
static const char *const listener_keys[] = { "name", "protocol", "port",
	"bind", "enabled", "backlog", "max_connections",
	"max_connections_per_source", "idle_timeout", "write_timeout",
	NULL };

/* ---- diagnostics -------------------------------------------------- */

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
	free(d->msgs);
	free(d->pos);
	free(d->files);
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

/* Adds "FILE:LINE: context text" (no LINE if line is 0). */
static void
diag_add(struct cfg_diag *d, const char *file, long line, const char *text)
{
	char *msg = NULL;

	if (d->n >= DIAG_KEEP_MAX || (d->n == d->cap && diag_grow(d) == -1)) {
		d->dropped++;
		return;
	}
	if ((line > 0 ? asprintf(&msg, "%s:%ld: %s%s", file, line,
	    d->context, text) : asprintf(&msg, "%s: %s%s", file, d->context,
	    text)) == -1) {
		d->dropped++;
		return;
	}
	d->pos[d->n].file = diag_file(d, file);
	d->pos[d->n].line = line;
	d->pos[d->n].seq = d->n;
	d->msgs[d->n++] = msg;
}

static void
diag_addf(struct cfg_diag *d, const char *file, long line, const char *fmt,
    ...) EO_PRINTF(4, 5);

static void
diag_addf(struct cfg_diag *d, const char *file, long line, const char *fmt,
    ...)
{
	char *text;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r == -1) {
		d->dropped++;
		return;
	}
	diag_add(d, file, line, text);
	free(text);
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

static void	setting_path(const struct cfg_diag *, const config_setting_t *,
		    char *, size_t);

void
cfg_error(struct cfg_diag *d, const config_setting_t *where,
    const char *fmt, ...)
{
	char *text = NULL, path[4200];
	va_list ap;
	int line = 0, r;

	snprintf(path, sizeof(path), "%s", d->file != NULL ? d->file :
	    "(config)");
	if (where != NULL) {
		setting_path(d, where, path, sizeof(path));
		line = (int)config_setting_source_line(where);
	}
	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r == -1) {
		d->dropped++;
		return;
	}
	diag_add(d, path, line, text);
	free(text);
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
static void
diag_finish(struct cfg_diag *d)
{
	size_t i, more;

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
	diag_addf(d, d->file != NULL ? d->file : "(config)", 0,
	    "%zu more error%s not shown", more, more == 1 ? "" : "s");
}

/* ---- reading the files ---------------------------------------------- */

/*
 * libconfig 1.5 must never open a file that could hurt the process: it
 * calls exit() when an @include names a directory or a file whose read
 * fails, and blocks for ever in open() on a FIFO.  So every file is
 * opened here first, without blocking, checked to be a regular file,
 * read whole under a size cap, and its @include lines are followed the
 * way libconfig will follow them.  Only then does libconfig see the
 * text.  The texts stay at hand: integers are read from them at full
 * width, and a syntax error quotes its line.
 */
#define INCLUDE_DEPTH_MAX	10	/* libconfig 1.5's MAX_INCLUDE_DEPTH */

struct cfg_src {
	char		*name;		/* as libconfig names it; NULL: main */
	char		*path;		/* as opened, for messages */
	char		*text;		/* NUL-terminated */
	size_t		 len;
	size_t		*lines;		/* each line's offset, built on use */
	size_t		 nlines;
	dev_t		 dev;
	ino_t		 ino;
};

struct cfg_srcs {
	struct cfg_src	*v;
	size_t		 n;
	size_t		 bytes;		/* read so far, all files */
	const char	*incdir;	/* libconfig's include dir, or NULL */
	size_t		 chain[INCLUDE_DEPTH_MAX + 1]; /* being scanned */
	int		 depth;
};

static void
srcs_free(struct cfg_srcs *S)
{
	size_t i;

	for (i = 0; i < S->n; i++) {
		free(S->v[i].name);
		free(S->v[i].path);
		free(S->v[i].text);
		free(S->v[i].lines);
	}
	free(S->v);
	memset(S, 0, sizeof(*S));
}

static const char *
file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a plain file";
}

/* Reads fd whole, at most room bytes; NULL with why set. */
static char *
fd_slurp(int fd, size_t room, size_t *len, char *why, size_t whylen)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *b;
	ssize_t r;

	for (;;) {
		if (n + 1 >= cap || buf == NULL) {
			cap = buf == NULL ? cap : cap * 2;
			if ((b = realloc(buf, cap)) == NULL) {
				snprintf(why, whylen, "out of memory");
				break;
			}
			buf = b;
		}
		if ((r = read(fd, buf + n, cap - n - 1)) == -1 &&
		    errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(why, whylen, "cannot read: %s",
			    strerror(errno));
			break;
		}
		if (r == 0) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		if ((n += (size_t)r) > room) {
			snprintf(why, whylen, "too big: all files of a "
			    "configuration together may hold %d MiB",
			    EO_CFG_MAX_BYTES >> 20);
			break;
		}
	}
	free(buf);
	return NULL;
}

/*
 * Opens path (never blocking: a FIFO opens at once and is refused),
 * and reads it if it is a regular file.  NULL with why set otherwise.
 */
static char *
file_slurp(struct cfg_srcs *S, const char *path, size_t *len,
    struct stat *st, char *why, size_t whylen)
{
	char *text = NULL;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) == -1)
		snprintf(why, whylen, "cannot stat: %s", strerror(errno));
	else if (!S_ISREG(st->st_mode))
		snprintf(why, whylen, "not a regular file (%s)",
		    file_kind(st->st_mode));
	else if ((size_t)st->st_size > EO_CFG_MAX_BYTES - S->bytes)
		snprintf(why, whylen, "too big: all files of a configuration "
		    "together may hold %d MiB", EO_CFG_MAX_BYTES >> 20);
	else if ((text = fd_slurp(fd, EO_CFG_MAX_BYTES - S->bytes, len, why,
	    whylen)) != NULL)
		S->bytes += *len;
	close(fd);
	return text;
}

/* Keeps a text read (taking text); its index, or -1. */
static ssize_t
srcs_add(struct cfg_srcs *S, const char *name, const char *path,
    char *text, size_t len, const struct stat *st)
{
	struct cfg_src *v, *s;

	if ((v = realloc(S->v, (S->n + 1) * sizeof(*v))) == NULL) {
		free(text);
		return -1;
	}
	S->v = v;
	s = &v[S->n];
	memset(s, 0, sizeof(*s));
	s->text = text;
	s->len = len;
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	if ((name != NULL && (s->name = strdup(name)) == NULL) ||
	    (s->path = strdup(path)) == NULL) {
		free(s->name);
		free(text);
		return -1;
	}
	return (ssize_t)S->n++;
}

/* The offset where line (from 1) of s starts; len if there is none. */
static size_t
src_line(struct cfg_src *s, long line)
{
	size_t i, n = 1;

	if (s->lines == NULL) {
		for (i = 0; i < s->len; i++)
			n += s->text[i] == '\n';
		if ((s->lines = malloc(n * sizeof(*s->lines))) == NULL)
			return s->len;
		s->lines[0] = 0;
		for (i = 0, n = 1; i < s->len; i++)
			if (s->text[i] == '\n')
				s->lines[n++] = i + 1;
		s->nlines = n;
	}
	if (line < 1 || (size_t)line > s->nlines)
		return s->len;
	return s->lines[line - 1];
}

/* The text libconfig calls file (NULL: the main one), or NULL. */
static struct cfg_src *
srcs_find(struct cfg_srcs *S, const char *file)
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
		return srcs_find(d->srcs, file);
	while (config_setting_parent(r) != NULL)
		r = config_setting_parent(r);
	i = (uintptr_t)config_setting_get_hook(r);
	return i > 0 && i <= d->srcs->n ? &d->srcs->v[i - 1] :
	    srcs_find(d->srcs, NULL);
}

/* The file s is in, as messages name it. */
static void
setting_path(const struct cfg_diag *d, const config_setting_t *s,
    char *buf, size_t len)
{
	const char *file = config_setting_source_file(s);
	const struct cfg_src *src;

	if (file != NULL)
		snprintf(buf, len, "%s%s", diag_dir(d, file), file);
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
static void
place_from(const struct cfg_diag *d, const config_setting_t *a,
    const config_setting_t *b, char *buf, size_t len)
{
	char fa[4200], fb[4200];

	setting_path(d, a, fa, sizeof(fa));
	setting_path(d, b, fb, sizeof(fb));
	if (strcmp(fa, fb) == 0)
		snprintf(buf, len, "line %u", config_setting_source_line(b));
	else
		snprintf(buf, len, "%s:%u", fb, config_setting_source_line(b));
}

/* ---- scanning the text before libconfig ------------------------------ */

/* A scan of one text, as libconfig's lexer will read it. */
struct scan {
	struct cfg_diag	*d;
	struct cfg_srcs	*S;
	size_t		 src;
	const char	*t;
	size_t		 len;
	size_t		 p;
	long		 line;
};

static int	scan_src(struct cfg_diag *, struct cfg_srcs *, size_t);

static void
scan_step(struct scan *sc)
{
	if (sc->t[sc->p++] == '\n')
		sc->line++;
}

/*
 * A string: libconfig turns "\x00" into a NUL and then cuts the string
 * there without a word, so "a\x00b" would be "a".  Refuse it instead.
 */
static void
scan_string(struct scan *sc)
{
	const char *t = sc->t;
	long line = sc->line;
	int nul = 0;

	while (sc->p < sc->len && t[sc->p] != '"') {
		if (t[sc->p] == '\\' && sc->p + 3 < sc->len &&
		    (t[sc->p + 1] == 'x' || t[sc->p + 1] == 'X') &&
		    t[sc->p + 2] == '0' && t[sc->p + 3] == '0')
			nul = 1;
		if (t[sc->p] == '\\' && sc->p + 1 < sc->len)
			scan_step(sc);
		scan_step(sc);
	}
	if (sc->p < sc->len)
		sc->p++;
	if (nul)
		diag_addf(sc->d, sc->S->v[sc->src].path, line, "a string "
		    "holds \\x00, a NUL byte, which libconfig would cut the "
		    "string at: a string cannot hold one");
}

/* Refuses what libconfig could not safely open, with why. */
static int
include_check(struct scan *sc, const char *name, const char *path,
    long line)
{
	struct cfg_srcs *S = sc->S;
	const char *from = S->v[sc->src].path;
	char why[256];
	struct stat st;
	size_t len;
	ssize_t i;
	char *text;
	int k;

	if (S->depth >= INCLUDE_DEPTH_MAX) {
		diag_addf(sc->d, from, line, "@include \"%s\": nested more "
		    "than %d deep", name, INCLUDE_DEPTH_MAX);
		return -1;
	}
	if ((text = file_slurp(S, path, &len, &st, why, sizeof(why))) ==
	    NULL) {
		diag_addf(sc->d, from, line, "@include \"%s\": %s: %s", name,
		    path, why);
		return -1;
	}
	for (k = 0; k <= S->depth; k++)
		if (S->v[S->chain[k]].dev == st.st_dev &&
		    S->v[S->chain[k]].ino == st.st_ino) {
			diag_addf(sc->d, from, line, "@include \"%s\": %s "
			    "is already being read: an @include loop", name,
			    path);
			free(text);
			return -1;
		}
	if ((i = srcs_add(S, name, path, text, len, &st)) == -1) {
		diag_addf(sc->d, from, line, "out of memory");
		return -1;
	}
	S->chain[++S->depth] = (size_t)i;
	k = scan_src(sc->d, S, (size_t)i);
	S->depth--;
	return k;
}

/*
 * "@include" and a quoted name at the start of a line, as libconfig's
 * lexer matches it; the name is relative to the include folder.
 */
static void
scan_include(struct scan *sc)
{
	const char *t = sc->t;
	char *name = NULL, *path = NULL;
	size_t n = 0, q;
	long line = sc->line;

	q = sc->p + 8;
	if (strncmp(t + sc->p, "@include", 8) != 0 || q >= sc->len ||
	    (t[q] != ' ' && t[q] != '\t')) {
		sc->p++;
		return;
	}
	while (q < sc->len && (t[q] == ' ' || t[q] == '\t'))
		q++;
	if (q >= sc->len || t[q] != '"' || (name = malloc(sc->len - q)) ==
	    NULL) {
		sc->p = q;
		return;
	}
	for (q++; q < sc->len && t[q] != '"' && t[q] != '\n'; q++) {
		if (t[q] == '\\' && q + 1 < sc->len && (t[q + 1] == '\\' ||
		    t[q + 1] == '"'))
			q++;
		name[n++] = t[q];
	}
	name[n] = '\0';
	sc->p = q < sc->len && t[q] == '"' ? q + 1 : q;
	if (sc->S->incdir != NULL ? asprintf(&path, "%s/%s", sc->S->incdir,
	    name) == -1 : (path = strdup(name)) == NULL)
		path = NULL;
	if (path != NULL)
		(void)include_check(sc, name, path, line);
	free(path);
	free(name);
}

/*
 * Walks one text as libconfig's lexer would: comments, strings and
 * @include lines; follows the includes.  0, or -1 with errors added.
 */
static int
scan_src(struct cfg_diag *d, struct cfg_srcs *S, size_t src)
{
	struct scan sc = { d, S, src, S->v[src].text, S->v[src].len, 0, 1 };
	size_t before = d->n + d->dropped;
	int bol = 1;		/* only blanks since the line began */

	while (sc.p < sc.len) {
		const char *c = sc.t + sc.p;

		if (*c == ' ' || *c == '\t' || *c == '\n') {
			bol = bol || *c == '\n';
			scan_step(&sc);
		} else if (*c == '\0') {
			diag_addf(d, S->v[src].path, sc.line, "a NUL byte: "
			    "a configuration is text");
			return -1;
		} else if (bol && *c == '@') {
			bol = 0;
			scan_include(&sc);
		} else if (*c == '#' || (c[0] == '/' && c[1] == '/')) {
			while (sc.p < sc.len && sc.t[sc.p] != '\n')
				sc.p++;
		} else if (c[0] == '/' && c[1] == '*') {
			sc.p += 2;
			while (sc.p < sc.len && !(sc.t[sc.p] == '*' &&
			    sc.t[sc.p + 1] == '/'))
				scan_step(&sc);
			sc.p = sc.p < sc.len ? sc.p + 2 : sc.p;
		} else {
			bol = 0;
			sc.p++;
			if (*c == '"')
				scan_string(&sc);
		}
	}
	return d->n + d->dropped > before ? -1 : 0;
}

/* ---- typed getters ------------------------------------------------ */

static int
name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/*
 * Parses an integer token as libconfig writes them, at full width into
 * *v, and into *lc as libconfig 1.5 reads it (strtoll or strtoull,
 * saturating), so that the token can be matched to the setting.
 */
static int
int_parse(const char *tok, long long *v, long long *lc, int *range)
{
	unsigned long long u;
	char *e;

	errno = 0;
	if (tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
		u = strtoull(tok + 2, &e, 16);
		*range = errno == ERANGE || u > LLONG_MAX;
		*v = *range ? LLONG_MAX : (long long)u;
		*lc = (long long)u;
	} else {
		*v = *lc = strtoll(tok, &e, 10);
		*range = errno == ERANGE;
	}
	return e != tok && (*e == '\0' || *e == 'L');
}

/*
 * Whether the token at t (after "key =") is the one libconfig read as
 * the setting s: a plain integer keeps only its low 32 bits there.
 */
static int
int_match(const char *t, const config_setting_t *s, long long *v,
    int *range, char *tok, size_t toklen)
{
	size_t n = strspn(t, "+-0123456789abcdefABCDEFxXL");
	long long lc;

	if (n == 0 || n >= toklen)
		return 0;
	memcpy(tok, t, n);
	tok[n] = '\0';
	if (!int_parse(tok, v, &lc, range))
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_INT64)
		return lc == config_setting_get_int64(s);
	return (int32_t)(uint32_t)(unsigned long long)lc ==
	    config_setting_get_int(s);
}

/*
 * The integer written for key, the setting s, read from the text:
 * libconfig 1.5 keeps only 32 bits of some (4294984703 reads as
 * 17407).  1 with *v, *range and tok (as written) set; 0 if not found.
 */
static int
raw_int(struct cfg_diag *d, const config_setting_t *s, const char *key,
    long long *v, int *range, char *tok, size_t toklen)
{
	struct cfg_src *src = setting_src(d, s);
	long line = (long)config_setting_source_line(s);
	size_t klen = strlen(key), p, q, end;
	const char *t;

	if (src == NULL)
		return 0;
	t = src->text;
	p = src_line(src, line);
	end = src_line(src, line + 1);
	for (; p + klen <= end && p < src->len; p++) {
		if (strncmp(t + p, key, klen) != 0 || (p > 0 &&
		    name_char(t[p - 1])) || name_char(t[p + klen]))
			continue;
		for (q = p + klen; t[q] == ' ' || t[q] == '\t'; q++)
			;
		if (t[q] != '=' && t[q] != ':')
			continue;
		for (q++; isspace((unsigned char)t[q]); q++)
			;
		if (int_match(t + q, s, v, range, tok, toklen))
			return 1;
	}
	return 0;
}

/*
 * Errors for each member of group whose name is not in known.  In a
 * listener (protos set) a group named after a protocol is left to
 * parse_proto_opts, which knows whether it is the right one.
 */
static int
check_keys(struct cfg_diag *d, const config_setting_t *group,
    const char *const *known, int protos)
{
	int i, n = config_setting_length(group), bad = 0;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group,
		    (unsigned)i);
		const char *name = config_setting_name(s);
		const char *const *k;

		if (name != NULL && protos && protocol_find(name) != NULL)
			continue;
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
cfg_check_keys(struct cfg_diag *d, const config_setting_t *group,
    const char *const *known)
{
	return check_keys(d, group, known, 0);
}

int
cfg_get_uint(struct cfg_diag *d, const config_setting_t *group,
    const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	char tok[32];
	long long v;
	int type, range = 0;

	if (s == NULL)
		return 0;
	type = config_setting_type(s);
	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		cfg_error(d, s, "%s must be an integer", key);
		return -1;
	}
	if (!raw_int(d, s, key, &v, &range, tok, sizeof(tok))) {
		v = config_setting_get_int64(s);
		snprintf(tok, sizeof(tok), "%lld", v);
	}
	if (range || v < (long long)min || v > (long long)max) {
		cfg_error(d, s, "%s must be %u to %u, not %s", key, min, max,
		    tok);
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
		free(l->popts_text);
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

/* ---- the configuration in effect (-T) ------------------------------ */

static void
print_string(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* A libconfig value as libconfig syntax, members in their order. */
static void
print_value(FILE *f, const config_setting_t *s)
{
	const char *open = "", *close = "";
	int i, n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		fprintf(f, "%lld", config_setting_get_int64(s));
		return;
	case CONFIG_TYPE_FLOAT:
		fprintf(f, "%.17g", config_setting_get_float(s));
		return;
	case CONFIG_TYPE_BOOL:
		fputs(config_setting_get_bool(s) ? "true" : "false", f);
		return;
	case CONFIG_TYPE_STRING:
		print_string(f, config_setting_get_string(s));
		return;
	case CONFIG_TYPE_GROUP:
		open = "{ ", close = "}";
		break;
	case CONFIG_TYPE_ARRAY:
		open = "[", close = "]";
		break;
	case CONFIG_TYPE_LIST:
		open = "(", close = ")";
		break;
	}
	fputs(open, f);
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);

		if (config_setting_name(e) != NULL)
			fprintf(f, "%s = ", config_setting_name(e));
		print_value(f, e);
		fputs(config_setting_is_group(s) ? "; " : i + 1 < n ? ", " : "",
		    f);
	}
	fputs(close, f);
}

/* The protocol's group as written, kept for cfg_print(); NULL: none. */
static char *
group_text(const config_setting_t *g)
{
	char *text = NULL;
	size_t len;
	FILE *f;

	if (g == NULL || (f = open_memstream(&text, &len)) == NULL)
		return NULL;
	print_value(f, g);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* An address as bind = [...] takes it: no port, no brackets. */
static void
print_addr(FILE *f, const struct cfg_addr *a)
{
	char host[NI_MAXHOST];

	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	print_string(f, host);
}

static void
print_listener(FILE *f, const struct cfg_listener *l)
{
	size_t i;

	fputs("  { name = ", f);
	print_string(f, l->name);
	fprintf(f, "; protocol = \"%s\"; enabled = %s; port = %u;\n"
	    "    bind = [", l->proto->name, l->enabled ? "true" : "false",
	    l->port);
	for (i = 0; i < l->naddrs; i++) {
		fputs(i ? ", " : "", f);
		print_addr(f, &l->addrs[i]);
	}
	fprintf(f, "];\n    backlog = %d; max_connections = %u;"
	    " max_connections_per_source = %u;\n"
	    "    idle_timeout = %u; write_timeout = %u;", l->backlog,
	    l->max_conns, l->max_per_source, l->idle_timeout,
	    l->write_timeout);
	if (l->popts_text != NULL)
		fprintf(f, "\n    %s = %s;", l->proto->name, l->popts_text);
	fputs(" }", f);
}

void
cfg_print(const struct cfg *cfg, FILE *f)
{
	size_t i;

	fprintf(f, "# The configuration in effect, from %s: defaults and\n"
	    "# overrides resolved into each listener.  Protocol options are\n"
	    "# as written; those not written have their defaults.\n",
	    cfg->path);
	fprintf(f, "workers = %u;\nmax_connections = %u;\nevict_after = %u;\n"
	    "shutdown_timeout = %u;\nlog_level = \"%s\";\nlisteners = (\n",
	    cfg->workers, cfg->max_conns, cfg->evict_after,
	    cfg->shutdown_timeout, log_level_name(cfg->log_level));
	for (i = 0; i < cfg->nlisteners; i++) {
		print_listener(f, &cfg->listeners[i]);
		fputs(i + 1 < cfg->nlisteners ? ",\n" : "\n", f);
	}
	fputs(");\n", f);
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
		else if (g != NULL && (l->popts_text = group_text(g)) == NULL) {
			cfg_error(d, g, "out of memory");
			bad = 1;
		}
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

	bad |= check_keys(d, lg, listener_keys, 1) < 0;
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

	place_from(d, where[x->li], where[y->li], place, sizeof(place));
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

static int
check_addrs(struct cfg_diag *d, const config_setting_t *const *where,
    const struct cfg *cfg)
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
		if (!l->enabled || l->port == 0)
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
		place_from(d, where[r[i].li], where[r[first].li], place,
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
	bad |= check_addrs(d, where, cfg) < 0;
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

static void	syntax_error(struct cfg_diag *, config_t *, size_t);

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

	if ((text = file_slurp(S, path, &len, &st, why, sizeof(why))) ==
	    NULL) {
		diag_addf(d, path, 0, "%s", why);
		return -1;
	}
	if ((i = srcs_add(S, NULL, path, text, len, &st)) == -1 ||
	    (lcs = realloc(b->lcs, (b->nlcs + 1) * sizeof(*lcs))) == NULL) {
		diag_addf(d, path, 0, "out of memory");
		return -1;
	}
	b->lcs = lcs;
	S->chain[0] = (size_t)i;
	S->depth = 0;
	if (scan_src(d, S, (size_t)i) == -1)
		return -1;
	if ((lc = malloc(sizeof(*lc))) == NULL) {
		diag_addf(d, path, 0, "out of memory");
		return -1;
	}
	config_init(lc);
	b->lcs[b->nlcs++] = lc;
	if (S->incdir != NULL)
		config_set_include_dir(lc, S->incdir);
	if (config_read_string(lc, S->v[i].text) == CONFIG_FALSE) {
		syntax_error(d, lc, (size_t)i);
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
	    DEF_WRITE_TIMEOUT }, NULL, NULL, 0, NULL };
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

/* The name set at line[p] ("name =" or "name :"), its length or 0. */
static int
line_name(const char *line, int n, int p)
{
	int q, i;

	if (p > 0 && name_char(line[p - 1]))
		return 0;
	for (q = p; q < n && name_char(line[q]); q++)
		;
	for (i = q; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	return q > p && i < n && (line[i] == '=' || line[i] == ':') ? q - p :
	    0;
}

/* Whether the name at line[p], k long, is also set before it. */
static int
line_repeats(const char *line, int p, int k)
{
	int i;

	for (i = 0; i + k <= p; i++)
		if (line_name(line, p, i) == k && strncmp(line + i, line + p,
		    (size_t)k) == 0)
			return 1;
	return 0;
}

/*
 * libconfig stops at a setting repeated in one group ("duplicate
 * setting name", at the second) without naming it.  Its partial tree
 * still holds the first: the groups open when it stopped are the last
 * path from the root; look there, deepest first, for a name that the
 * failing line sets.  Names the line set before the repeated one are
 * in the tree too, from this very line: those are skipped, unless the
 * line sets them twice.
 */
static const config_setting_t *
dup_first(const config_t *lc, const char *line, int n, int lineno)
{
	const config_setting_t *path[32], *g = config_root_setting(lc), *s;
	const char *file = config_error_file(lc), *sf;
	int depth = 0, p, k, len;
	char name[128];

	while (g != NULL && depth < 32 && config_setting_is_aggregate(g)) {
		path[depth++] = g;
		if ((len = config_setting_length(g)) == 0)
			break;
		g = config_setting_get_elem(g, (unsigned)len - 1);
	}
	while (depth-- > 0) {
		if (!config_setting_is_group(path[depth]))
			continue;
		for (p = 0; p < n; p++) {
			if ((k = line_name(line, n, p)) == 0 ||
			    k >= (int)sizeof(name))
				continue;
			snprintf(name, sizeof(name), "%.*s", k, line + p);
			if ((s = config_setting_get_member(path[depth],
			    name)) == NULL)
				continue;
			sf = config_setting_source_file(s);
			if ((int)config_setting_source_line(s) != lineno ||
			    (sf == NULL) != (file == NULL) || (sf != NULL &&
			    strcmp(sf, file) != 0) || line_repeats(line, p, k))
				return s;
		}
	}
	return NULL;
}

/* Where s is: "FILE:LINE" as messages write it. */
static void
setting_place(const struct cfg_diag *d, const config_setting_t *s,
    char *buf, size_t len)
{
	char file[4096];

	setting_path(d, s, file, sizeof(file));
	snprintf(buf, len, "%s:%u", file, config_setting_source_line(s));
}

/*
 * Turns a libconfig parse failure into "FILE:LINE: text", quoting the
 * line: libconfig 1.5 says no more than "syntax error".  It stops
 * there, so this is the only mistake reported: say so.
 */
static void
syntax_error(struct cfg_diag *d, config_t *lc, size_t self)
{
	const char *file = config_error_file(lc), *t = "";
	const config_setting_t *first = NULL;
	struct cfg_src *src = file != NULL ? srcs_find(d->srcs, file) :
	    &d->srcs->v[self];
	int line = config_error_line(lc), n = 0;
	char *path = NULL, where[4200];

	/* The partial tree's settings name the text read from memory. */
	config_setting_set_hook(config_root_setting(lc),
	    (void *)(uintptr_t)(self + 1));

	if (src != NULL && line > 0) {
		t = src->text + src_line(src, line);
		while (*t == ' ' || *t == '\t')
			t++;
		n = (int)strcspn(t, "\r\n");
		if (strstr(config_error_text(lc), "duplicate") != NULL)
			first = dup_first(lc, t, n, line);
		n = n > 72 ? 72 : n;
	}
	if (file == NULL ? (path = strdup(d->srcs->v[self].path)) == NULL :
	    asprintf(&path, "%s%s", diag_dir(d, file), file) == -1)
		return;
	if (first != NULL) {
		setting_place(d, first, where, sizeof(where));
		/* In the same file, the line says enough. */
		if (strncmp(where, path, strlen(path)) == 0 &&
		    where[strlen(path)] == ':')
			memmove(where, where + strlen(path) + 1,
			    strlen(where + strlen(path)));
		diag_addf(d, path, line, "%s is set twice: first at %s%s "
		    "(libconfig stops there: fix it to see any other mistake)",
		    config_setting_name(first), strchr(where, ':') == NULL ?
		    "line " : "", where);
	} else
		diag_addf(d, path, line, "%s%s%.*s%s (libconfig stops at the "
		    "first syntax error: fix it to see any other mistake)",
		    config_error_text(lc), n > 0 ? " in \"" : "", n, t,
		    n > 0 ? "\"" : "");
	free(path);
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

/* Scans S's texts, then hands the main one to libconfig. */
static struct cfg *
cfg_parse(struct cfg_diag *d, struct cfg_srcs *S)
{
	struct cfg *cfg = NULL;
	config_t lc;

	S->chain[0] = 0;
	S->depth = 0;
	if (scan_src(d, S, 0) == -1)
		return NULL;
	d->srcs = S;
	config_init(&lc);
	if (S->incdir != NULL)
		config_set_include_dir(&lc, S->incdir);
	if (config_read_string(&lc, S->v[0].text) == CONFIG_FALSE)
		syntax_error(d, &lc, 0);
	else
		cfg = cfg_build(&lc, d->file, d);
	config_destroy(&lc);
	d->srcs = NULL;
	return cfg;
}

struct cfg *
cfg_load_file(const char *path, struct cfg_diag *d)
{
	struct cfg *cfg = NULL;
	struct cfg_srcs S;
	struct stat st;
	char why[256], *dir, *slash, *text;
	size_t len;

	memset(&S, 0, sizeof(S));
	d->file = path;
	/* @include "x.conf" is relative to the main file's folder. */
	if ((dir = strdup(path)) != NULL &&
	    (slash = strrchr(dir, '/')) != NULL) {
		slash[slash == dir] = '\0';
		S.incdir = dir;
	}
	if ((text = file_slurp(&S, path, &len, &st, why, sizeof(why))) ==
	    NULL)
		diag_addf(d, path, 0, "%s", why);
	else if (srcs_add(&S, NULL, path, text, len, &st) == -1)
		diag_addf(d, path, 0, "out of memory");
	else
		cfg = cfg_parse(d, &S);
	srcs_free(&S);
	free(dir);
	diag_finish(d);
	d->file = NULL;
	return cfg;
}

struct cfg *
cfg_load_string(const char *text, const char *name, struct cfg_diag *d)
{
	struct cfg *cfg = NULL;
	struct cfg_srcs S;
	struct stat st;
	char *copy;

	memset(&S, 0, sizeof(S));
	memset(&st, 0, sizeof(st));
	d->file = name;
	if ((copy = strdup(text)) == NULL ||
	    srcs_add(&S, NULL, name, copy, strlen(copy), &st) == -1)
		diag_addf(d, name, 0, "out of memory");
	else
		cfg = cfg_parse(d, &S);
	srcs_free(&S);
	diag_finish(d);
	d->file = NULL;
	return cfg;
}
