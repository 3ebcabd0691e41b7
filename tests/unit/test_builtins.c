/*
 * inetd's built-in services (issue 11): discard, chargen, daytime, time
 * and qotd, byte for byte, and every option error with its line.
 *
 * daytime.c is compiled into this test, not linked from eocore, so that
 * its zone lookup can be asked about any instant, not only now: glibc,
 * reading the same zone files, is the reference it is checked against.
 * qotd.c likewise, so that its file splitter is fed exact buffers.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/mman.h>

#include "../../src/proto/daytime.c"
#include "../../src/proto/qotd.c"

#include "config.h"
#include "protocol.h"
#include "check_main.h"

#define ROOM_ALL	((size_t)-1)
#define EO_IOV_TEST	1024

static struct iovec iov[EO_IOV_TEST];
static uint64_t rng = 42;

/* An empty output with room bytes of room. */
static void
out_init(struct proto_out *out, size_t room)
{
	memset(out, 0, sizeof(*out));
	out->iov = iov;
	out->maxiov = EO_IOV_TEST;
	out->room = room;
	out->rng = &rng;
}

/* The pieces of out, joined into buf; their length. */
static size_t
out_join(const struct proto_out *out, unsigned char *buf, size_t cap)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < out->niov; i++) {
		ck_assert_uint_le(n + out->iov[i].iov_len, cap);
		memcpy(buf + n, out->iov[i].iov_base, out->iov[i].iov_len);
		n += out->iov[i].iov_len;
	}
	ck_assert_uint_eq(n, out->len);
	return n;
}

/*
 * Loads text as a config whose one listener speaks proto; returns the
 * options, or NULL with the first error in err.
 */
static struct cfg *
load(const char *text, char *err, size_t errlen)
{
	struct cfg_diag d;
	struct cfg *cfg;

	cfg_diag_init(&d);
	cfg = cfg_load_string(text, "test.conf", &d);
	if (err != NULL)
		snprintf(err, errlen, "%s", d.n > 0 ? d.msgs[0] : "");
	cfg_diag_free(&d);
	return cfg;
}

/* A listener of protocol proto with its group body (may be ""). */
static struct cfg *
load_proto(const char *proto, const char *group, char *err, size_t errlen)
{
	char text[4096];

	snprintf(text, sizeof(text), "listeners = (\n { name = \"b\";\n"
	    "   protocol = \"%s\"; port = 7; bind = \"127.0.0.1\";\n"
	    "   %s } );\n", proto, group);
	return load(text, err, errlen);
}

/* ---- discard -------------------------------------------------------- */

START_TEST(test_discard)
{
	static const unsigned char data[] = "anything\0at all\r\n";
	struct proto_in in = { data, sizeof(data) };
	struct proto_out out;
	unsigned char reply[16];

	out_init(&out, ROOM_ALL);
	ck_assert_int_eq(proto_discard.input(NULL, NULL, &in, &out),
	    EO_PROTO_OK);
	ck_assert_uint_eq(in.len, 0);
	ck_assert_uint_eq(out.niov, 0);
	ck_assert_uint_eq(out.units, 1);
	ck_assert_int_eq(proto_discard.eof(NULL, NULL, &in, &out),
	    EO_PROTO_CLOSE);
	ck_assert_uint_eq(proto_discard.dgram(NULL, data, sizeof(data), reply,
	    sizeof(reply), &rng), 0);
}
END_TEST

/* ---- chargen -------------------------------------------------------- */

/* The byte at offset k of the RFC 864 stream. */
static unsigned char
chargen_at(uint64_t k)
{
	uint64_t line = k / 74, col = k % 74;

	if (col == 72)
		return '\r';
	if (col == 73)
		return '\n';
	return (unsigned char)(' ' + (line + col) % 95);
}

static void *
chargen_opts(void)
{
	struct cfg_diag d;
	void *opts = NULL;

	cfg_diag_init(&d);
	ck_assert_int_eq(proto_chargen.opts_parse(NULL, &opts, &d), 0);
	cfg_diag_free(&d);
	return opts;
}

START_TEST(test_chargen_first_lines)
{
	static const char first[] = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCD"
	    "EFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n!\"#$%&'()*+,-./0123456789"
	    ":;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n";
	uint64_t st = 0;
	void *opts = chargen_opts();
	struct proto_out out;
	unsigned char buf[256];

	ck_assert_uint_eq(sizeof(first) - 1, 148);
	out_init(&out, 148);
	ck_assert_int_eq(proto_chargen.produce(&st, opts, &out), EO_PROTO_OK);
	ck_assert_uint_eq(out_join(&out, buf, sizeof(buf)), 148);
	ck_assert_int_eq(memcmp(buf, first, 148), 0);
	proto_chargen.opts_free(opts);
}
END_TEST

/*
 * Rooms of every size, odd ones included: the stream goes on where the
 * last call stopped, through many cycles of 95 lines, byte for byte.
 */
START_TEST(test_chargen_rotation)
{
	uint64_t st = 0, off = 0;
	void *opts = chargen_opts();
	static unsigned char buf[200000];
	size_t room = 1, n, i;

	while (off < 3 * 1024 * 1024) {
		struct proto_out out;

		out_init(&out, room);
		proto_chargen.produce(&st, opts, &out);
		n = out_join(&out, buf, sizeof(buf));
		ck_assert_uint_eq(n, room);
		for (i = 0; i < n; i++)
			if (buf[i] != chargen_at(off + i))
				ck_abort_msg("byte %zu: 0x%02x, not 0x%02x",
				    (size_t)(off + i), buf[i],
				    chargen_at(off + i));
		off += n;
		room = room * 7 % 131071 + 1;
	}
	/* Line 95 is line 0 again. */
	ck_assert_int_eq(chargen_at(95 * 74), chargen_at(0));
	proto_chargen.opts_free(opts);
}
END_TEST

/* A full room takes few pieces: no per-line work. */
START_TEST(test_chargen_pieces)
{
	uint64_t st = 0;
	void *opts = chargen_opts();
	struct proto_out out;

	out_init(&out, 128 * 1024);
	proto_chargen.produce(&st, opts, &out);
	ck_assert_uint_eq(out.len, 128 * 1024);
	ck_assert_uint_le(out.niov, 128 * 1024 / (95 * 74) + 2);
	/* No room: nothing, and no loop. */
	out_init(&out, 0);
	proto_chargen.produce(&st, opts, &out);
	ck_assert_uint_eq(out.niov, 0);
	proto_chargen.opts_free(opts);
}
END_TEST

/* RFC 864 over UDP: 0 to 512 characters of the pattern, at random. */
START_TEST(test_chargen_dgram)
{
	void *opts = chargen_opts();
	unsigned char buf[2048];
	size_t n, i, most = 0, least = 9999;
	int k;

	for (k = 0; k < 4000; k++) {
		n = proto_chargen.dgram(opts, NULL, 0, buf, sizeof(buf), &rng);
		ck_assert_uint_le(n, 512);
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(buf[i], chargen_at(i));
		most = n > most ? n : most;
		least = n < least ? n : least;
	}
	ck_assert_uint_ge(most, 500);
	ck_assert_uint_le(least, 12);
	/* Never past the room it is given. */
	ck_assert_uint_le(proto_chargen.dgram(opts, NULL, 0, buf, 3, &rng), 3);
	proto_chargen.opts_free(opts);
}
END_TEST

/* ---- time ----------------------------------------------------------- */

static uint32_t
be32_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Now as RFC 868 counts it, modulo 2^32. */
static uint32_t
rfc868_now(void)
{
	return (uint32_t)(((uint64_t)time(NULL) + 2208988800ULL) &
	    0xffffffffu);
}

START_TEST(test_time_value)
{
	unsigned char st[4], buf[16];
	struct proto_out out;
	uint32_t before, after, v;
	size_t n;

	before = rfc868_now();
	out_init(&out, ROOM_ALL);
	ck_assert_int_eq(proto_time.greet(st, NULL, &out), EO_PROTO_CLOSE);
	ck_assert_uint_eq(out_join(&out, buf, sizeof(buf)), 4);
	v = be32_at(buf);
	n = proto_time.dgram(NULL, NULL, 0, buf, sizeof(buf), &rng);
	after = rfc868_now();
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_ge(v, before);
	ck_assert_uint_le(v, after);
	ck_assert_uint_ge(be32_at(buf), v);
	ck_assert_uint_le(be32_at(buf), after);
	/* 2026 is well past 1900 + 2^31 s: the top bit is set. */
	ck_assert_uint_ge(v, 0x80000000u);
	ck_assert_uint_eq(proto_time.dgram(NULL, NULL, 0, buf, 3, &rng), 0);
	ck_assert_str_eq(proto_time.close_why(NULL, NULL), "time sent");
}
END_TEST

/* ---- daytime -------------------------------------------------------- */

static struct daytime_opts *
daytime_load(const char *zone, const char *format)
{
	char group[512], err[512];
	struct cfg *cfg;
	struct daytime_opts *o;

	snprintf(group, sizeof(group), "daytime = { timezone = \"%s\"; "
	    "format = \"%s\"; };", zone, format);
	cfg = load_proto("daytime", group, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s: %s", zone, err);
	/* The options outlive the config: taken over here. */
	o = cfg->listeners[0].popts;
	cfg->listeners[0].popts = NULL;
	cfg_unref(cfg);
	return o;
}

#define ZONE_FMT	"%Y-%m-%d %H:%M:%S %z %Z"

/* What glibc says for t in zone, in ZONE_FMT. */
static void
glibc_line(const char *zone, time_t t, char *buf, size_t cap)
{
	struct tm tm;

	setenv("TZ", zone, 1);
	tzset();
	ck_assert_ptr_nonnull(localtime_r(&t, &tm));
	ck_assert_uint_gt(strftime(buf, cap - 2, ZONE_FMT, &tm), 0);
	strcat(buf, "\r\n");
	unsetenv("TZ");
	tzset();
}

/*
 * Every zone's offset and abbreviation agree with glibc's at instants
 * from 1960 to 2100, around transitions and far past the last one
 * (where the zone file's footer rule decides).
 */
START_TEST(test_daytime_zones)
{
	static const char *const zones[] = { "Europe/Paris",
	    "America/New_York", "Australia/Sydney", "Asia/Kolkata",
	    "America/Sao_Paulo", "Pacific/Chatham", "America/Nuuk",
	    "Africa/Casablanca", "Europe/Dublin", "Etc/GMT+5", "UTC" };
	char ours[256], theirs[256];
	size_t z;
	int64_t t;

	for (z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		struct daytime_opts *o = daytime_load(zones[z], ZONE_FMT);

		for (t = -315619200; t < 4102444800LL; t += 86400 * 7 + 3607) {
			ck_assert_uint_gt(daytime_line(o, (time_t)t, ours,
			    sizeof(ours)), 2);
			glibc_line(zones[z], (time_t)t, theirs,
			    sizeof(theirs));
			ck_assert_msg(strcmp(ours, theirs) == 0,
			    "%s at %lld: \"%s\", glibc \"%s\"", zones[z],
			    (long long)t, ours, theirs);
		}
		daytime_opts_free(o);
	}
}
END_TEST

/* The default: UTC, in the RFC's example shape, CR LF ended. */
START_TEST(test_daytime_default)
{
	struct daytime_opts *o;
	struct cfg *cfg;
	char line[256], st[sizeof(struct daytime_state)];
	unsigned char buf[256];
	struct proto_out out;
	size_t n;

	cfg = load_proto("daytime", "", NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	o = cfg->listeners[0].popts;
	ck_assert_uint_eq(daytime_line(o, (time_t)1726999199, line,
	    sizeof(line)), 41);
	ck_assert_str_eq(line, "Sunday, September 22, 2024 09:59:59-UTC\r\n");
	out_init(&out, ROOM_ALL);
	ck_assert_int_eq(proto_daytime.greet(st, o, &out), EO_PROTO_CLOSE);
	n = out_join(&out, buf, sizeof(buf));
	ck_assert_uint_gt(n, 30);
	ck_assert_int_eq(memcmp(buf + n - 6, "-UTC\r\n", 6), 0);
	ck_assert_str_eq(proto_daytime.close_why(st, o), "daytime sent");
	n = proto_daytime.dgram(o, NULL, 0, buf, sizeof(buf), &rng);
	ck_assert_int_eq(memcmp(buf + n - 6, "-UTC\r\n", 6), 0);
	/* No room for the line: no line, no overflow. */
	ck_assert_uint_eq(proto_daytime.dgram(o, NULL, 0, buf, 10, &rng), 0);
	cfg_unref(cfg);
}
END_TEST

/* A fixed zone, a fixed answer whatever the time. */
START_TEST(test_daytime_fixed_zone)
{
	struct daytime_opts *o = daytime_load("Asia/Kolkata", "%z %Z");
	char st[sizeof(struct daytime_state)];
	unsigned char buf[64];
	struct proto_out out;

	out_init(&out, ROOM_ALL);
	proto_daytime.greet(st, o, &out);
	ck_assert_uint_eq(out_join(&out, buf, sizeof(buf)), 11);
	ck_assert_int_eq(memcmp(buf, "+0530 IST\r\n", 11), 0);
	daytime_opts_free(o);
}
END_TEST

struct bad_opt {
	const char	*proto;
	const char	*group;
	const char	*words;		/* in "test.conf:4: ..." */
};

static const struct bad_opt bad_opts[] = {
	{ "daytime", "daytime = { timezone = \"Mars/Olympus\"; };",
	  "timezone \"Mars/Olympus\": no such zone in /usr/share/zoneinfo/" },
	{ "daytime", "daytime = { timezone = \"../../etc/passwd\"; };",
	  "not a zone name" },
	{ "daytime", "daytime = { timezone = \"/etc/localtime\"; };",
	  "not a zone name" },
	{ "daytime", "daytime = { timezone = \"Europe\"; };",
	  "not a zone file" },
	{ "daytime", "daytime = { timezone = \"right/UTC\"; };",
	  "leap seconds" },
	{ "daytime", "daytime = { timezone = \"zone.tab\"; };",
	  "not a zone name" },
	{ "daytime", "daytime = { timezone = \"leapseconds\"; };",
	  "not a TZif file" },
	{ "daytime", "daytime = { format = \"%H\\n%M\"; };",
	  "format must be one line" },
	{ "daytime", "daytime = { format = \"\"; };",
	  "format must give a non-empty line" },
	{ "daytime", "daytime = { format = \"%c %c %c %c %c %c %c %c %c %c"
	  " %c\"; };", "format must give a non-empty line of at most 254" },
	{ "daytime", "daytime = { zone = \"UTC\"; };",
	  "unknown setting \"zone\"" },
	{ "qotd", "qotd = { quotes = []; };", "quotes must be a list of one" },
	{ "qotd", "qotd = { quotes = [\"\"]; };", "quotes[0] is empty" },
	{ "qotd", "qotd = { quotes = (\"a\", 5); };",
	  "quotes[1] must be a string" },
	{ "qotd", "qotd = { quotes = [\"a\"]; quotes_file = \"/x\"; };",
	  "quotes and quotes_file: set one, not both" },
	{ "qotd", "qotd = { quotes_file = \"/nonexistent/q\"; };",
	  "quotes_file \"/nonexistent/q\": No such file or directory" },
	{ "qotd", "qotd = { quotes_file = \"/tmp\"; };",
	  "quotes_file \"/tmp\": not a regular file" },
	{ "qotd", "qotd = { quotes_file = \"/dev/null\"; };",
	  "not a regular file" },
	{ "chargen", "chargen = { width = 80; };", "unknown setting" },
	{ "time", "time = { era = 1; };", "unknown setting" },
	{ "discard", "discard = { x = 1; };", "unknown setting" },
};

/* Each bad option is refused, with the line of the setting. */
START_TEST(test_bad_options)
{
	const struct bad_opt *b = &bad_opts[_i];
	char err[1024];
	struct cfg *cfg;

	cfg = load_proto(b->proto, b->group, err, sizeof(err));
	ck_assert_msg(cfg == NULL, "%s accepted", b->group);
	ck_assert_msg(strncmp(err, "test.conf:4: ", 13) == 0 &&
	    strstr(err, b->words) != NULL, "%s: got \"%s\"", b->group, err);
}
END_TEST

/* ---- qotd ----------------------------------------------------------- */

/* A quote of n bytes of 'q'. */
static char *
quote_of(size_t n)
{
	char *q = malloc(n + 1);

	ck_assert_ptr_nonnull(q);
	memset(q, 'q', n);
	q[n] = '\0';
	return q;
}

/*
 * RFC 865's 512 characters are counted as sent, CR LF included: 510
 * and its CR LF fit, 511 does not, and the error names the line.
 */
START_TEST(test_qotd_length_limit)
{
	char group[1200], err[1024];
	char *q510 = quote_of(510), *q511 = quote_of(511);
	struct cfg *cfg;

	snprintf(group, sizeof(group), "qotd = { quotes = [\n\"%s\" ]; };",
	    q510);
	cfg = load_proto("qotd", group, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	cfg_unref(cfg);
	snprintf(group, sizeof(group), "qotd = { quotes = [\"ok\",\n\"%s\" "
	    "]; };", q511);
	ck_assert_ptr_null(load_proto("qotd", group, err, sizeof(err)));
	ck_assert_msg(strstr(err, "test.conf:5: listener \"b\": quotes[1] is "
	    "longer than 512 characters") != NULL, "%s", err);
	/* Two lines of 254: 254 + 2 + 254 + 2 = 512, fits. */
	snprintf(group, sizeof(group), "qotd = { quotes = [\"%.254s\\n%.254s"
	    "\"]; };", q510, q510);
	cfg = load_proto("qotd", group, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	cfg_unref(cfg);
	free(q510);
	free(q511);
}
END_TEST

/* Writes text to a file of its own; its path in path. */
static void
write_file(char *path, size_t cap, const char *text)
{
	FILE *f;

	snprintf(path, cap, "/tmp/eo-qotd-XXXXXX");
	ck_assert_int_ne(mkstemp(path), -1);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* The quotes of a file: paragraphs, lines CR LF ended, all drawn. */
START_TEST(test_qotd_file)
{
	static const char text[] = "\n\nFirst quote,\r\nits second line.\n"
	    "\n \t\nSecond.\n\n\nThird\n  indented.";
	static const char *const want[] = {
	    "First quote,\r\nits second line.\r\n", "Second.\r\n",
	    "Third\r\n  indented.\r\n" };
	char path[64], group[128];
	struct cfg *cfg;
	unsigned char buf[600];
	int seen[3] = { 0, 0, 0 }, k, i;

	write_file(path, sizeof(path), text);
	snprintf(group, sizeof(group), "qotd = { quotes_file = \"%s\"; };",
	    path);
	ck_assert_ptr_nonnull(cfg = load_proto("qotd", group, NULL, 0));
	for (k = 0; k < 300; k++) {
		struct proto_out out;
		size_t n;

		out_init(&out, ROOM_ALL);
		ck_assert_int_eq(proto_qotd.greet(NULL, cfg->listeners[0].popts,
		    &out), EO_PROTO_CLOSE);
		n = out_join(&out, buf, sizeof(buf));
		for (i = 0; i < 3; i++)
			if (n == strlen(want[i]) && memcmp(buf, want[i], n) == 0)
				seen[i]++;
	}
	ck_assert_int_eq(seen[0] + seen[1] + seen[2], 300);
	ck_assert_int_gt(seen[0], 50);
	ck_assert_int_gt(seen[1], 50);
	ck_assert_int_gt(seen[2], 50);
	cfg_unref(cfg);
	unlink(path);
}
END_TEST

/* UDP: a quote per datagram, whatever came in; none if it won't fit. */
START_TEST(test_qotd_dgram)
{
	struct cfg *cfg;
	unsigned char buf[64];
	size_t n;
	int k, alpha = 0, beta = 0;

	cfg = load_proto("qotd", "qotd = { quotes = [\"Alpha.\", "
	    "\"Beta.\"]; };", NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	for (k = 0; k < 200; k++) {
		n = proto_qotd.dgram(cfg->listeners[0].popts,
		    (const unsigned char *)"x", 1, buf, sizeof(buf), &rng);
		if (n == 8 && memcmp(buf, "Alpha.\r\n", 8) == 0)
			alpha++;
		else if (n == 7 && memcmp(buf, "Beta.\r\n", 7) == 0)
			beta++;
	}
	ck_assert_int_eq(alpha + beta, 200);
	ck_assert_int_gt(alpha, 40);
	ck_assert_int_gt(beta, 40);
	/* Neither fits in 6 bytes: no reply rather than a cut quote. */
	ck_assert_uint_eq(proto_qotd.dgram(cfg->listeners[0].popts, NULL, 0,
	    buf, 6, &rng), 0);
	cfg_unref(cfg);
}
END_TEST

/* A long quote in the file: the error names the file and its line. */
START_TEST(test_qotd_file_errors)
{
	char path[64], group[128], err[1024], *text, *q = quote_of(600);
	size_t len = strlen(q) + 64;

	ck_assert_ptr_nonnull(text = malloc(len));
	snprintf(text, len, "one\n\ntwo\nlines\n\n%s\n", q);
	write_file(path, sizeof(path), text);
	snprintf(group, sizeof(group), "qotd = { quotes_file = \"%s\"; };",
	    path);
	ck_assert_ptr_null(load_proto("qotd", group, err, sizeof(err)));
	ck_assert_msg(strstr(err, "test.conf:4: listener \"b\": "
	    "quotes_file \"") != NULL &&
	    strstr(err, "the quote at line 6 is longer than 512") != NULL,
	    "%s", err);
	unlink(path);
	write_file(path, sizeof(path), "\n \n\n");
	snprintf(group, sizeof(group), "qotd = { quotes_file = \"%s\"; };",
	    path);
	ck_assert_ptr_null(load_proto("qotd", group, err, sizeof(err)));
	ck_assert_msg(strstr(err, "holds no quote") != NULL, "%s", err);
	unlink(path);
	free(text);
	free(q);
}
END_TEST

/*
 * The quotes file's text is not a C string.  qotd_split() looked for
 * blanks with strspn(3), which reads on to a NUL: past the end of a
 * file ending in a newline (found by fuzz_builtins).  Here the text ends
 * right before a page that cannot be read: any read past it is a crash.
 */
START_TEST(test_qotd_split_reads_past_text)
{
	static const char text[] = "one line\r\n\ntwo\n \t";
	long page = sysconf(_SC_PAGESIZE);
	struct qotd_opts o;
	struct cfg_diag d;
	char *map, *at;

	map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	at = map + page - (sizeof(text) - 1);
	memcpy(at, text, sizeof(text) - 1);
	memset(&o, 0, sizeof(o));
	cfg_diag_init(&d);
	ck_assert_int_eq(qotd_split(&o, at, sizeof(text) - 1, "q", NULL, &d),
	    0);
	ck_assert_uint_eq(o.n, 2);
	ck_assert_uint_eq(o.lens[0], 10);
	ck_assert_int_eq(memcmp(o.quotes[0], "one line\r\n", 10), 0);
	ck_assert_uint_eq(o.lens[1], 5);
	ck_assert_int_eq(memcmp(o.quotes[1], "two\r\n", 5), 0);
	/* Ending in a newline: the empty line after it is read too. */
	at = map + page - 9;
	memcpy(at, "one line\n", 9);
	ck_assert_int_eq(qotd_split(&o, at, 9, "q", NULL, &d), 0);
	ck_assert_uint_eq(o.n, 3);
	cfg_diag_free(&d);
	free(o.quotes[0]);
	free(o.quotes[1]);
	free(o.quotes[2]);
	free(o.quotes);
	free(o.lens);
	munmap(map, (size_t)page * 2);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("builtins");
	TCase *tc = tcase_create("builtins");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_discard);
	tcase_add_test(tc, test_chargen_first_lines);
	tcase_add_test(tc, test_chargen_rotation);
	tcase_add_test(tc, test_chargen_pieces);
	tcase_add_test(tc, test_chargen_dgram);
	tcase_add_test(tc, test_time_value);
	tcase_add_test(tc, test_daytime_zones);
	tcase_add_test(tc, test_daytime_default);
	tcase_add_test(tc, test_daytime_fixed_zone);
	tcase_add_loop_test(tc, test_bad_options, 0,
	    sizeof(bad_opts) / sizeof(bad_opts[0]));
	tcase_add_test(tc, test_qotd_length_limit);
	tcase_add_test(tc, test_qotd_file);
	tcase_add_test(tc, test_qotd_file_errors);
	tcase_add_test(tc, test_qotd_dgram);
	tcase_add_test(tc, test_qotd_split_reads_past_text);
	suite_add_tcase(s, tc);
	return check_run(s);
}
