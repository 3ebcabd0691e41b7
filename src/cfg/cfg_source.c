/*
 * The configuration's files and their text, before and around libconfig:
 * reading them safely, scanning them as libconfig's lexer will, reading
 * integers at full width, explaining syntax errors; and cfg_read_file()
 * and cfg_read_string(), which hand the result to the builder they are
 * given (config.c's cfg_load_file() gives cfg_build(): the reader sits
 * below the loader and never calls it by name).
 *
 * libconfig 1.5 must never open a file that could hurt the process: it
 * calls exit() when an @include names a directory or a file whose read
 * fails, and blocks for ever in open() on a FIFO.  So every file is
 * opened here first, without blocking, checked to be a regular file,
 * read whole under a size cap, and its @include lines are followed the
 * way libconfig will follow them.  Only then does libconfig see the
 * text.  The texts stay at hand: integers are read from them at full
 * width, and a syntax error quotes its line.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"

/* ---- reading the files ---------------------------------------------- */

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
char *
cfg_file_slurp(struct cfg_srcs *S, const char *path, size_t *len,
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
ssize_t
cfg_srcs_add(struct cfg_srcs *S, const char *name, const char *path,
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
	char		 name[64];	/* the last "name =" seen */
};

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
		cfg_diag_addf(sc->d, sc->S->v[sc->src].path, line, "a string "
		    "holds \\x00, a NUL byte, which libconfig would cut the "
		    "string at: a string cannot hold one");
}

static int
name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/*
 * A word: a setting's name if "=" or ":" follows, even on a later
 * line, kept to name the integers after it; else true, false, or a
 * mistake libconfig will report.  Digits in a word are no integer.
 */
static void
scan_word(struct scan *sc)
{
	const char *t = sc->t;
	size_t q, n = 0;

	while (sc->p + n < sc->len && name_char(t[sc->p + n]))
		n++;
	for (q = sc->p + n; q < sc->len && isspace((unsigned char)t[q]); q++)
		;
	if (q < sc->len && (t[q] == '=' || t[q] == ':'))
		snprintf(sc->name, sizeof(sc->name), "%.*s", (int)n,
		    t + sc->p);
	sc->p += n;
}

/*
 * Whether libconfig 1.5 reads the integer tok, n long, at its true
 * value: without an L it keeps only 32 bits (4294984703 becomes
 * 17407, 0xffffffff -1), with one it saturates at 64.  *wide is set
 * if the value would fit in 64 bits, so that an L would do.
 */
static int
int_exact(const char *tok, size_t n, int *wide)
{
	size_t skip = tok[0] == '-' || tok[0] == '+';
	unsigned long long neg = tok[0] == '-';
	int hex, l;
	unsigned long long u;
	char buf[128], *e;

	hex = tok[skip] == '0' && (tok[skip + 1] == 'x' ||
	    tok[skip + 1] == 'X');
	skip += hex ? 2 : 0;
	l = tok[n - 1] == 'L';
	if (n - skip >= sizeof(buf))
		return *wide = 0;
	snprintf(buf, sizeof(buf), "%.*s", (int)(n - skip), tok + skip);
	errno = 0;
	u = strtoull(buf, &e, hex ? 16 : 10);
	if (e == buf || (*e != '\0' && strcmp(e, "L") != 0 &&
	    strcmp(e, "LL") != 0))
		return 1;	/* no integer: libconfig says so itself */
	*wide = errno != ERANGE && u <= (unsigned long long)LLONG_MAX + neg;
	if (l)
		return *wide;
	return errno != ERANGE && u <= (unsigned long long)INT_MAX + neg;
}

/*
 * Whether the n bytes at t hold a '.', 'e' or 'E': a float.  Only those
 * n: a search to the next such byte in the whole text (strcspn) made a
 * file of integers take time in its size squared.
 */
static int
span_has_float_mark(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i] == '.' || t[i] == 'e' || t[i] == 'E')
			return 1;
	return 0;
}

/*
 * A number, as libconfig's lexer cuts it.  An integer libconfig would
 * read wrongly is refused as written: it gives no sign of it, and what
 * it reads may look valid (port = 4294967303 reads as 7).
 */
static void
scan_number(struct scan *sc)
{
	const char *t = sc->t + sc->p;
	size_t n = t[0] == '-' || t[0] == '+';
	int hex = t[n] == '0' && (t[n + 1] == 'x' || t[n + 1] == 'X');
	int wide = 0;

	n += hex ? 2 : 0;
	while (sc->p + n < sc->len && (isalnum((unsigned char)t[n]) ||
	    t[n] == '.'))
		n++;
	if (!hex && span_has_float_mark(t, n)) {
		/* A float: its exponent may have a sign. */
		if ((t[n - 1] == 'e' || t[n - 1] == 'E') &&
		    (t[n] == '-' || t[n] == '+'))
			for (n++; isdigit((unsigned char)t[n]); n++)
				;
	} else if (!int_exact(t, n, &wide))
		cfg_diag_addf(sc->d, sc->S->v[sc->src].path, sc->line,
		    "%s%s%.*s%s is out of range: %s", sc->name,
		    sc->name[0] != '\0' ? " = " : "", (int)(n > 40 ? 40 : n),
		    t, n > 40 ? "..." : "", wide ? "libconfig keeps only 32 "
		    "bits of an integer beyond -2147483648 to 2147483647 "
		    "(0x7fffffff) unless it ends in L" : "an integer must fit "
		    "in 64 bits");
	sc->p += n;
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
		cfg_diag_addf(sc->d, from, line, "@include \"%s\": nested more "
		    "than %d deep", name, INCLUDE_DEPTH_MAX);
		return -1;
	}
	if ((text = cfg_file_slurp(S, path, &len, &st, why, sizeof(why))) ==
	    NULL) {
		cfg_diag_addf(sc->d, from, line, "@include \"%s\": %s: %s",
		    name, path, why);
		return -1;
	}
	for (k = 0; k <= S->depth; k++)
		if (S->v[S->chain[k]].dev == st.st_dev &&
		    S->v[S->chain[k]].ino == st.st_ino) {
			cfg_diag_addf(sc->d, from, line, "@include \"%s\": %s "
			    "is already being read: an @include loop", name,
			    path);
			free(text);
			return -1;
		}
	if ((i = cfg_srcs_add(S, name, path, text, len, &st)) == -1) {
		cfg_diag_addf(sc->d, from, line, "out of memory");
		return -1;
	}
	S->chain[++S->depth] = (size_t)i;
	k = cfg_scan_src(sc->d, S, (size_t)i);
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
int
cfg_scan_src(struct cfg_diag *d, struct cfg_srcs *S, size_t src)
{
	struct scan sc = { d, S, src, S->v[src].text, S->v[src].len, 0, 1,
	    "" };
	size_t before = d->n + d->dropped;
	int bol = 1;		/* only blanks since the line began */

	while (sc.p < sc.len) {
		const char *c = sc.t + sc.p;

		if (*c == ' ' || *c == '\t' || *c == '\n') {
			bol = bol || *c == '\n';
			scan_step(&sc);
		} else if (*c == '\0') {
			cfg_diag_addf(d, S->v[src].path, sc.line, "a NUL byte: "
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
		} else if (isalpha((unsigned char)*c) || *c == '*') {
			bol = 0;
			scan_word(&sc);
		} else if (isdigit((unsigned char)*c) || ((*c == '-' ||
		    *c == '+' || *c == '.') && (isdigit((unsigned char)c[1]) ||
		    (c[1] == '.' && isdigit((unsigned char)c[2]))))) {
			bol = 0;
			scan_number(&sc);
		} else {
			bol = 0;
			sc.p++;
			if (*c == '"')
				scan_string(&sc);
		}
	}
	return d->n + d->dropped > before ? -1 : 0;
}

/* ---- syntax errors and repeated settings -------------------------- */

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

	cfg_setting_path(d, s, file, sizeof(file));
	snprintf(buf, len, "%s:%u", file, config_setting_source_line(s));
}

/*
 * Turns a libconfig parse failure into "FILE:LINE: text", quoting the
 * line: libconfig 1.5 says no more than "syntax error".  It stops
 * there, so this is the only mistake reported: say so.
 */
void
cfg_syntax_error(struct cfg_diag *d, config_t *lc, size_t self)
{
	const char *file = config_error_file(lc), *t = "";
	const config_setting_t *first = NULL;
	struct cfg_src *src = file != NULL ? cfg_srcs_find(d->srcs, file) :
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
	    asprintf(&path, "%s%s", cfg_diag_dir(d, file), file) == -1)
		return;
	if (first != NULL) {
		setting_place(d, first, where, sizeof(where));
		/* In the same file, the line says enough. */
		if (strncmp(where, path, strlen(path)) == 0 &&
		    where[strlen(path)] == ':')
			memmove(where, where + strlen(path) + 1,
			    strlen(where + strlen(path)));
		cfg_diag_addf(d, path, line, "%s is set twice: first at %s%s "
		    "(libconfig stops there: fix it to see any other mistake)",
		    config_setting_name(first), strchr(where, ':') == NULL ?
		    "line " : "", where);
	} else
		cfg_diag_addf(d, path, line, "%s%s%.*s%s (libconfig stops at "
		    "the first syntax error: fix it to see any other mistake)",
		    config_error_text(lc), n > 0 ? " in \"" : "", n, t,
		    n > 0 ? "\"" : "");
	free(path);
}

/* ---- loading ------------------------------------------------------ */

/* Scans S's texts, then hands the main one to libconfig. */
static struct cfg *
cfg_parse(struct cfg_diag *d, struct cfg_srcs *S, cfg_builder build)
{
	struct cfg *cfg = NULL;
	config_t lc;

	S->chain[0] = 0;
	S->depth = 0;
	if (cfg_scan_src(d, S, 0) == -1)
		return NULL;
	d->srcs = S;
	config_init(&lc);
	if (S->incdir != NULL)
		config_set_include_dir(&lc, S->incdir);
	if (config_read_string(&lc, S->v[0].text) == CONFIG_FALSE)
		cfg_syntax_error(d, &lc, 0);
	else
		cfg = build(&lc, d->file, d);
	config_destroy(&lc);
	d->srcs = NULL;
	return cfg;
}

struct cfg *
cfg_read_file(const char *path, struct cfg_diag *d, cfg_builder build)
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
	if ((text = cfg_file_slurp(&S, path, &len, &st, why, sizeof(why))) ==
	    NULL)
		cfg_diag_addf(d, path, 0, "%s", why);
	else if (cfg_srcs_add(&S, NULL, path, text, len, &st) == -1)
		cfg_diag_addf(d, path, 0, "out of memory");
	else
		cfg = cfg_parse(d, &S, build);
	srcs_free(&S);
	free(dir);
	cfg_diag_finish(d);
	d->file = NULL;
	return cfg;
}

struct cfg *
cfg_read_string(const char *text, const char *name, struct cfg_diag *d,
    cfg_builder build)
{
	struct cfg *cfg = NULL;
	struct cfg_srcs S;
	struct stat st;
	char *copy;

	memset(&S, 0, sizeof(S));
	memset(&st, 0, sizeof(st));
	d->file = name;
	if ((copy = strdup(text)) == NULL ||
	    cfg_srcs_add(&S, NULL, name, copy, strlen(copy), &st) == -1)
		cfg_diag_addf(d, name, 0, "out of memory");
	else
		cfg = cfg_parse(d, &S, build);
	srcs_free(&S);
	cfg_diag_finish(d);
	d->file = NULL;
	return cfg;
}
