/*
 * qotd (RFC 865): at connect, one quote drawn at random, then close.
 *
 * The quotes come from the config (quotes = ["...", ...]) or from a
 * file (quotes_file), read once at load: a regular file of at most
 * 1 MiB, one quote per paragraph (paragraphs are separated by blank
 * lines), so that a quote may span lines.  Either way each line of a
 * quote is sent CR LF ended, and a quote so sent must fit in 512
 * characters, as the RFC asks; a longer one is refused at load, with
 * where it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"

#define QOTD_MAX	512		/* bytes of a quote as sent */
#define QOTD_MAX_QUOTES	65536
#define QOTD_FILE_MAX	(1024 * 1024)

struct qotd_opts {
	char		**quotes;	/* each CR LF ended, as sent */
	size_t		 *lens;
	uint32_t	  n;
	uint32_t	  cap;
	char		 *file;		/* quotes_file, absolute; NULL:
					   the quotes are the config's */
};

static const char *const qotd_default[] = {
	"A quote a day keeps the silence away.",
	"Set quotes or quotes_file in the qotd group for your own.",
};

static void
qotd_opts_free(void *vopts)
{
	struct qotd_opts *o = vopts;
	uint32_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->n; i++)
		free(o->quotes[i]);
	free(o->quotes);
	free(o->lens);
	free(o->file);
	free(o);
}

/*
 * Adds text (len bytes), each line CR LF ended whatever it had, and no
 * trailing blank lines.  0, or -1: empty, -2: over QOTD_MAX, -3: too
 * many quotes, -4: out of memory.
 */
static int
qotd_add(struct qotd_opts *o, const char *text, size_t len)
{
	char *q;
	size_t i, n = 0;

	while (len > 0 && strchr(" \t\r\n", text[len - 1]) != NULL)
		len--;
	if (len == 0)
		return -1;
	if (o->n == QOTD_MAX_QUOTES)
		return -3;
	if ((q = malloc(2 * len + 2)) == NULL)
		return -4;
	for (i = 0; i < len; i++) {
		if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		if (text[i] == '\n')
			q[n++] = '\r';
		q[n++] = text[i];
	}
	q[n++] = '\r';
	q[n++] = '\n';
	if (n > QOTD_MAX) {
		free(q);
		return -2;
	}
	if (o->n == o->cap) {
		uint32_t cap = o->cap > 0 ? o->cap * 2 : 16;
		char **qs = realloc(o->quotes, cap * sizeof(*qs));
		size_t *ls = qs != NULL ? realloc(o->lens, cap * sizeof(*ls)) :
		    NULL;

		if (qs != NULL)
			o->quotes = qs;
		if (ls == NULL) {
			free(q);
			return -4;
		}
		o->lens = ls;
		o->cap = cap;
	}
	o->quotes[o->n] = q;
	o->lens[o->n++] = n;
	return 0;
}

static const char *
qotd_add_error(int r)
{
	switch (r) {
	case -1:
		return "is empty";
	case -2:
		return "is longer than 512 characters (CR LF line ends "
		    "counted), the most RFC 865 allows";
	case -3:
		return "is one too many (at most 65536 quotes)";
	default:
		return "cannot be kept: out of memory";
	}
}

static int
qotd_from_list(struct qotd_opts *o, const config_setting_t *list,
    struct cfg_diag *d)
{
	int i, n, r, bad = 0;

	if (!config_setting_is_aggregate(list) ||
	    config_setting_is_group(list) ||
	    (n = config_setting_length(list)) < 1) {
		cfg_error(d, list, "quotes must be a list of one or more "
		    "strings, e.g. [\"Carpe diem.\"]");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list,
		    (unsigned)i);
		const char *s = config_setting_get_string(e);

		if (s == NULL) {
			cfg_error(d, e, "quotes[%d] must be a string", i);
			bad = 1;
		} else if ((r = qotd_add(o, s, strlen(s))) != 0) {
			cfg_error(d, e, "quotes[%d] %s", i, qotd_add_error(r));
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* Adds the paragraph text[start, end), which began at line; 0 or -1. */
static int
qotd_para(struct qotd_opts *o, const char *text, size_t start, size_t end,
    size_t line, const char *path, const config_setting_t *where,
    struct cfg_diag *d)
{
	int r = qotd_add(o, text + start, end - start);

	if (r == 0)
		return 0;
	cfg_error(d, where, "quotes_file \"%s\": the quote at line %zu %s",
	    path, line, qotd_add_error(r));
	return -1;
}

/* Whether text[from, to) holds only blanks: bounded, for the text is
   not a C string (it has no NUL after it). */
static int
qotd_blank(const char *text, size_t from, size_t to)
{
	for (; from < to; from++)
		if (strchr(" \t\r", text[from]) == NULL || text[from] == '\0')
			return 0;
	return 1;
}

/*
 * Splits the file's text into paragraphs: a line of blanks, or none,
 * ends one.  Errors name the file and the line where the quote begins.
 */
static int
qotd_split(struct qotd_opts *o, const char *text, size_t len,
    const char *path, const config_setting_t *where, struct cfg_diag *d)
{
	size_t i, bol = 0, line = 1, pstart = 0, pline = 0;
	int bad = 0;

	for (i = 0; i <= len; i++) {
		if (i < len && text[i] != '\n')
			continue;
		if (qotd_blank(text, bol, i)) {
			if (pline != 0)
				bad |= qotd_para(o, text, pstart, bol, pline,
				    path, where, d);
			pline = 0;
		} else if (pline == 0) {
			pstart = bol;
			pline = line;
		}
		bol = i + 1;
		line++;
	}
	if (pline != 0)
		bad |= qotd_para(o, text, pstart, len, pline, path, where, d);
	if (!bad && o->n == 0) {
		cfg_error(d, where, "quotes_file \"%s\" holds no quote", path);
		bad = -1;
	}
	return bad ? -1 : 0;
}

/*
 * Where the file is: a relative path is taken from the folder of the
 * config file that names it, as an operator reading that file expects.
 */
static void
qotd_path(const config_setting_t *where, const char *name, char *buf,
    size_t cap)
{
	const char *conf = config_setting_source_file(where);
	char dir[4096];

	if (name[0] == '/' || conf == NULL) {
		snprintf(buf, cap, "%s", name);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", conf);
	snprintf(buf, cap, "%s/%s", dirname(dir), name);
}

/*
 * The file as opened, made absolute, for -T.  -T prints the file, not
 * its quotes: the file is the setting (a reload reads it again), and
 * its quotes printed as quotes = [...] would load back as a
 * configuration that no longer follows it, up to 1 MiB long.  Absolute
 * because a relative name is taken from the folder of the config file
 * naming it, and the printed configuration may be saved anywhere.
 * getcwd(3) fails only when the folder is gone: the name as opened is
 * then the best there is.
 */
static char *
qotd_abs_path(const char *path)
{
	char cwd[4096], *abs;
	size_t len;

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return strdup(path);
	if (strncmp(path, "./", 2) == 0)	/* a config file in "." */
		path += 2;
	len = strlen(cwd) + 1 + strlen(path) + 1;
	if ((abs = malloc(len)) != NULL)
		snprintf(abs, len, "%s/%s", cwd, path);
	return abs;
}

/*
 * Reads the quotes file: a regular file of at most QOTD_FILE_MAX bytes
 * and no NUL, opened without blocking (a FIFO would hang the load).
 */
static int
qotd_from_file(struct qotd_opts *o, const config_setting_t *where,
    const char *name, struct cfg_diag *d)
{
	char path[4096], *buf = NULL;
	const char *err = NULL;
	struct stat st;
	ssize_t n = 0;
	int fd, r = -1;

	qotd_path(where, name, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		err = strerror(errno);
	else if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		err = "not a regular file";
	else if (st.st_size > QOTD_FILE_MAX)
		err = "larger than 1 MiB";
	else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		err = "out of memory";
	else if ((n = read(fd, buf, (size_t)st.st_size + 1)) != st.st_size)
		err = "cannot be read whole";
	else if (memchr(buf, '\0', (size_t)n) != NULL)
		err = "holds a NUL byte: not text";
	else if ((o->file = qotd_abs_path(path)) == NULL)
		err = "out of memory";
	if (err != NULL)
		cfg_error(d, where, "quotes_file \"%s\": %s", path, err);
	else
		r = qotd_split(o, buf, (size_t)n, path, where, d);
	free(buf);
	if (fd != -1)
		close(fd);
	return r;
}

static int
qotd_opts_parse(const config_setting_t *group, void **optsp,
    struct cfg_diag *d)
{
	static const char *const known[] = { "quotes", "quotes_file", NULL };
	const config_setting_t *list = NULL;
	struct qotd_opts *o;
	const char *file = NULL;
	size_t i;
	int r = 0;

	*optsp = NULL;
	if (group != NULL) {
		if (cfg_check_keys(d, group, known) < 0 ||
		    cfg_get_string(d, group, "quotes_file", 4000, &file) < 0)
			return -1;
		list = config_setting_get_member(group, "quotes");
		if (list != NULL && file != NULL) {
			cfg_error(d, list, "quotes and quotes_file: set one, "
			    "not both");
			return -1;
		}
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		cfg_error(d, group, "out of memory");
		return -1;
	}
	if (list != NULL)
		r = qotd_from_list(o, list, d);
	else if (file != NULL)
		r = qotd_from_file(o, config_setting_get_member(group,
		    "quotes_file"), file, d);
	else
		for (i = 0; i < sizeof(qotd_default) / sizeof(*qotd_default);
		    i++)
			if (qotd_add(o, qotd_default[i],
			    strlen(qotd_default[i])) != 0)
				r = -1;
	if (r != 0) {
		qotd_opts_free(o);
		return -1;
	}
	*optsp = o;
	return 0;
}

/*
 * The quotes written in the config are printed as sent, less the last
 * CR LF: loading makes CR LF of both "\r\n" and "\n", so that form
 * loads back to the same quotes.
 */
static void
qotd_opts_print(const void *vopts, FILE *f)
{
	const struct qotd_opts *o = vopts;
	char quote[QOTD_MAX + 1];
	uint32_t i;

	if (o->file != NULL) {
		fputs("quotes_file = ", f);
		cfg_print_string(f, o->file);
		fputs("; ", f);
		return;
	}
	fputs("quotes = [", f);
	for (i = 0; i < o->n; i++) {
		memcpy(quote, o->quotes[i], o->lens[i] - 2);
		quote[o->lens[i] - 2] = '\0';
		fputs(i > 0 ? ",\n      " : "", f);
		cfg_print_string(f, quote);
	}
	fputs("]; ", f);
}

static enum proto_verdict
qotd_greet(void *state, const void *vopts, struct proto_out *out)
{
	const struct qotd_opts *o = vopts;
	uint32_t i = proto_random(out, o->n);

	(void)state;
	if (proto_room(out, 1))
		proto_put(out, o->quotes[i], o->lens[i]);
	return EO_PROTO_CLOSE;
}

static const char *
qotd_close_why(const void *state, const void *opts)
{
	(void)state;
	(void)opts;
	return "quote sent";
}

static size_t
qotd_dgram(const void *vopts, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, uint64_t *rng)
{
	const struct qotd_opts *o = vopts;
	uint32_t i = proto_random_rng(rng, o->n);

	(void)in;
	(void)inlen;
	if (o->lens[i] > outcap)
		return 0;
	memcpy(out, o->quotes[i], o->lens[i]);
	return o->lens[i];
}

const struct protocol proto_qotd = {
	.name = "qotd",
	.state_size = 0,
	.opts_parse = qotd_opts_parse,
	.opts_free = qotd_opts_free,
	.input = proto_drop_close,
	.eof = proto_drop_close,
	.close_why = qotd_close_why,
	.greet = qotd_greet,
	.dgram = qotd_dgram,
	.amplifies = 1,
	.opts_print = qotd_opts_print,
};
