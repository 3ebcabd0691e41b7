/*
 * oracle framing: the same questions give the same replies whether they
 * come in one blob, byte by byte, or cut anywhere; CR LF, NULs, too-long
 * questions, max_questions, end of input mid-question, reply_end, the
 * output budget.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "protocol.h"
#include "check_main.h"

#define EO_TEST_IOV	1024

/* Options from the body of an oracle = { ... } group. */
static void *
opts_from(const char *body)
{
	char text[1024];
	struct cfg_diag d;
	config_t lc;
	void *opts = NULL;

	snprintf(text, sizeof(text), "oracle = { %s };", body);
	config_init(&lc);
	ck_assert_int_eq(config_read_string(&lc, text), CONFIG_TRUE);
	cfg_diag_init(&d);
	ck_assert_int_eq(proto_oracle.opts_parse(config_lookup(&lc, "oracle"),
	    &opts, &d), 0);
	cfg_diag_free(&d);
	config_destroy(&lc);
	return opts;
}

/* A connection in miniature: state, the input kept between calls, the
   output sent so far, as conn.c keeps them. */
struct sim {
	void		*opts;
	uint64_t	 state[4];
	uint64_t	 rng;
	unsigned char	*in;		/* held input */
	size_t		 inlen;
	char		*out;		/* everything "sent" */
	size_t		 outlen;
	struct iovec	 iov[EO_TEST_IOV];
	enum proto_verdict v;
	size_t		 room;
	unsigned	 units;
	int		 full;
};

static void
sim_init(struct sim *s, void *opts)
{
	memset(s, 0, sizeof(*s));
	s->opts = opts;
	s->rng = 42;		/* the same answers however input is cut */
	s->room = (size_t)-1;
	ck_assert_uint_le(proto_oracle.state_size, sizeof(s->state));
}

/* One call, then "send" the pieces and keep what is left. */
static void
sim_call(struct sim *s, int eof)
{
	struct proto_in in = { s->in, s->inlen };
	struct proto_out out = { s->iov, 0, EO_TEST_IOV, 0, s->room, 0, 0,
	    &s->rng, NULL, NULL, 0, 0 };
	unsigned i;

	s->v = eof ? proto_oracle.eof(s->state, s->opts, &in, &out) :
	    proto_oracle.input(s->state, s->opts, &in, &out);
	s->units += out.units;
	s->full = out.full;
	for (i = 0; i < out.niov; i++) {
		s->out = realloc(s->out, s->outlen + out.iov[i].iov_len + 1);
		memcpy(s->out + s->outlen, out.iov[i].iov_base,
		    out.iov[i].iov_len);
		s->outlen += out.iov[i].iov_len;
		s->out[s->outlen] = '\0';
	}
	ck_assert_uint_eq((size_t)(in.data - s->in) + in.len, s->inlen);
	if (in.len > 0)
		memmove(s->in, in.data, in.len);
	s->inlen = in.len;
}

static void
sim_feed(struct sim *s, const void *data, size_t len)
{
	ck_assert_int_eq(s->v, EO_PROTO_OK);
	s->in = realloc(s->in, s->inlen + len + 1);
	memcpy(s->in + s->inlen, data, len);
	s->inlen += len;
	sim_call(s, 0);
}

/* The output so far, NUL-terminated (it may hold NULs too). */
static char *
sim_out(struct sim *s, size_t *len)
{
	char *p = malloc(s->outlen + 1);

	if (s->outlen > 0)
		memcpy(p, s->out, s->outlen);
	p[s->outlen] = '\0';
	if (len != NULL)
		*len = s->outlen;
	return p;
}

static void
sim_clear_out(struct sim *s)
{
	s->outlen = 0;
}

static void
sim_free(struct sim *s)
{
	free(s->in);
	free(s->out);
	proto_oracle.opts_free(s->opts);
}

/* Feeds text in pieces of at most cut bytes (0: one blob). */
static char *
run(const char *body, const char *text, size_t len, size_t cut, int eof,
    size_t *outlen, enum proto_verdict *v)
{
	struct sim s;
	size_t off;
	char *out;

	if (len == (size_t)-1)
		len = strlen(text);
	sim_init(&s, opts_from(body));
	for (off = 0; off < len && s.v == EO_PROTO_OK;) {
		size_t n = cut == 0 || len - off < cut ? len - off : cut;

		sim_feed(&s, text + off, n);
		off += n;
	}
	if (eof && s.v == EO_PROTO_OK)
		sim_call(&s, 1);
	out = sim_out(&s, outlen);
	if (v != NULL)
		*v = s.v;
	sim_free(&s);
	return out;
}

#define ONE "answers = [\"Yes.\"];"

START_TEST(test_one_question)
{
	char *out = run(ONE, "Will I be happy tomorrow?", 25, 0, 0, NULL, NULL);

	ck_assert_str_eq(out, "Will I be happy tomorrow? Yes.\r\n");
	free(out);
}
END_TEST

START_TEST(test_several_in_one_read)
{
	char *out = run(ONE, "A?B? C?\r\nD?", 11, 0, 0, NULL, NULL);

	ck_assert_str_eq(out, "A? Yes.\r\nB? Yes.\r\nC? Yes.\r\nD? Yes.\r\n");
	free(out);
}
END_TEST

/* Whitespace before a question, such as telnet's CR LF, is skipped;
   whitespace inside one is kept. */
START_TEST(test_whitespace)
{
	char *out = run(ONE, " \t\r\n\v\fWhy  not ?\r\n\r\n  Why?\r\n",
	    (size_t)-1, 0, 1, NULL, NULL);

	ck_assert_str_eq(out, "Why  not ? Yes.\r\nWhy? Yes.\r\n");
	free(out);
}
END_TEST

START_TEST(test_nul_bytes)
{
	static const char q[] = "a\0b\0?\r\n";
	size_t len;
	char *out = run(ONE, q, sizeof(q) - 1, 0, 0, &len, NULL);

	ck_assert_uint_eq(len, 5 + 7);
	ck_assert_int_eq(memcmp(out, "a\0b\0? Yes.\r\n", 12), 0);
	free(out);
}
END_TEST

/* Every cut of the input gives exactly the blob's replies. */
START_TEST(test_any_cut)
{
	static const char text[] = "  Is it?\r\nAre\0we there yet?"
	    "\n\nWhy?Who? What?\r\n  And this? unfinished";
	size_t blen, len, cut;
	enum proto_verdict bv, v;
	char *blob = run("", text, sizeof(text) - 1, 0, 1, &blen, &bv);

	ck_assert_int_eq(bv, EO_PROTO_CLOSE);
	for (cut = 1; cut < sizeof(text); cut++) {
		char *out = run("", text, sizeof(text) - 1, cut, 1, &len, &v);

		ck_assert_uint_eq(len, blen);
		ck_assert_int_eq(memcmp(out, blob, len), 0);
		ck_assert_int_eq(v, bv);
		free(out);
	}
	free(blob);
}
END_TEST

/* Byte by byte, a long question is answered once, whole. */
START_TEST(test_byte_by_byte)
{
	struct sim s;
	int i;

	sim_init(&s, opts_from(ONE "max_question_length = 100000;"));
	for (i = 0; i < 99999; i++)
		sim_feed(&s, "x", 1);
	ck_assert_uint_eq(s.outlen, 0);
	ck_assert_uint_eq(s.inlen, 99999);
	sim_feed(&s, "?", 1);
	ck_assert_uint_eq(s.outlen, 100000 + 7);
	ck_assert_uint_eq(s.inlen, 0);
	ck_assert_uint_eq(s.units, 1);
	sim_free(&s);
}
END_TEST

#define SCAN_PAGES	16

/*
 * Byte by byte, a long question costs one scan, not one per byte.  The
 * input lives in its own pages; as each byte arrives, the whole pages
 * already searched (all but the first: a look at the head is fair) are
 * made unreadable, so searching them again is a SIGSEGV and the test
 * fails, whatever the oracle searches with.
 */
START_TEST(test_byte_by_byte_scans_once)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = SCAN_PAGES * page, i, shut = page;
	char body[64];
	struct iovec iov[4];
	uint64_t state[4] = { 0 }, rng = 1;
	unsigned char *buf;
	void *opts;

	snprintf(body, sizeof(body), ONE "max_question_length = %zu;", n);
	opts = opts_from(body);
	buf = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(buf, MAP_FAILED);
	memset(buf, 'x', n - 1);
	buf[n - 1] = '?';
	for (i = 1; i <= n; i++) {
		struct proto_in in = { buf, i };
		struct proto_out out = { iov, 0, 4, 0, (size_t)-1, 0, 0,
		    &rng, NULL, NULL, 0, 0 };

		ck_assert_int_eq(proto_oracle.input(state, opts, &in, &out),
		    EO_PROTO_OK);
		if (i < n) {
			ck_assert_uint_eq(out.niov, 0);
			ck_assert_ptr_eq(in.data, buf);
			ck_assert_uint_eq(in.len, i);
		} else {
			ck_assert_uint_eq(out.units, 1);
			ck_assert_ptr_eq(iov[0].iov_base, buf);
			ck_assert_uint_eq(iov[0].iov_len, n);
			ck_assert_uint_eq(in.len, 0);
		}
		for (; shut + page <= i; shut += page)
			ck_assert_int_eq(mprotect(buf + shut, page, PROT_NONE),
			    0);
	}
	munmap(buf, n);
	proto_oracle.opts_free(opts);
}
END_TEST

START_TEST(test_too_long)
{
	enum proto_verdict v;
	char *out;

	/* Eight bytes with the '?': fine. */
	out = run(ONE "max_question_length = 8;", "1234567?", 8, 0, 0, NULL,
	    &v);
	ck_assert_str_eq(out, "1234567? Yes.\r\n");
	ck_assert_int_eq(v, EO_PROTO_OK);
	free(out);
	/* Nine: an error line, then close. */
	out = run(ONE "max_question_length = 8;", "12345678?", 9, 0, 0, NULL,
	    &v);
	ck_assert_str_eq(out, "error: question longer than 8 bytes\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
	/* Eight without a '?' yet cannot become a question of eight:
	   no need to wait for more. */
	out = run(ONE "max_question_length = 8;", "12345678", 8, 1, 0, NULL,
	    &v);
	ck_assert_str_eq(out, "error: question longer than 8 bytes\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
	/* Leading whitespace does not count. */
	out = run(ONE "max_question_length = 3;", "\r\n\r\n  ab?", 9, 0, 0,
	    NULL, &v);
	ck_assert_str_eq(out, "ab? Yes.\r\n");
	free(out);
	/* A good question first is still answered. */
	out = run(ONE "max_question_length = 3;", "ab?abcd", 7, 0, 0, NULL, &v);
	ck_assert_str_eq(out, "ab? Yes.\r\nerror: question longer than 3 "
	    "bytes\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
}
END_TEST

START_TEST(test_max_questions)
{
	enum proto_verdict v;
	char *out;

	out = run(ONE "max_questions = 2;", "A?B?C?", 6, 0, 0, NULL, &v);
	ck_assert_str_eq(out, "A? Yes.\r\nB? Yes.\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
	out = run(ONE "max_questions = 2;", "A?B?C?", 6, 1, 0, NULL, &v);
	ck_assert_str_eq(out, "A? Yes.\r\nB? Yes.\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
	out = run(ONE "max_questions = 0;", "A?B?C?", 6, 0, 0, NULL, &v);
	ck_assert_str_eq(out, "A? Yes.\r\nB? Yes.\r\nC? Yes.\r\n");
	ck_assert_int_eq(v, EO_PROTO_OK);
	free(out);
}
END_TEST

START_TEST(test_eof)
{
	enum proto_verdict v;
	char *out;

	out = run(ONE, "A?  B", 5, 0, 1, NULL, &v);
	ck_assert_str_eq(out, "A? Yes.\r\nerror: unfinished question: "
	    "questions end with '?'\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
	/* Trailing whitespace is no unfinished question. */
	out = run(ONE, "A?\r\n \r\n", 7, 1, 1, NULL, &v);
	ck_assert_str_eq(out, "A? Yes.\r\n");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
	out = run(ONE, "", 0, 0, 1, NULL, &v);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(v, EO_PROTO_CLOSE);
	free(out);
}
END_TEST

/* reply_end = "" serves clients that read until the answer's '.'. */
START_TEST(test_reply_end)
{
	char *out;

	out = run(ONE "reply_end = \"\";", "A? B?", 5, 0, 0, NULL, NULL);
	ck_assert_str_eq(out, "A? Yes.B? Yes.");
	free(out);
	out = run(ONE "reply_end = \"\\n\";", "A?", 2, 0, 0, NULL, NULL);
	ck_assert_str_eq(out, "A? Yes.\n");
	free(out);
}
END_TEST

static const char *const default_answers[] = { "Yes.", "Very likely.",
	"Maybe.", "Not likely.", "No." };

/* Asks up to n questions; counts which default answer each got. */
static void
ask_many(struct sim *s, int n, int seen[5])
{
	int i, k;

	for (i = 0; i < n && s->v == EO_PROTO_OK; i++) {
		char *out, want[32];

		sim_clear_out(s);
		sim_feed(s, "Q?", 2);
		out = sim_out(s, NULL);
		for (k = 0; k < 5; k++) {
			snprintf(want, sizeof(want), "Q? %s\r\n",
			    default_answers[k]);
			if (strcmp(out, want) == 0)
				seen[k]++;
		}
		free(out);
	}
}

/* The defaults: five answers, drawn at random, each one turning up;
   ten answers per connection. */
START_TEST(test_default_answers)
{
	int seen[5] = { 0 }, k;
	struct sim s;

	sim_init(&s, opts_from(""));
	ask_many(&s, 10, seen);
	ck_assert_int_eq(s.v, EO_PROTO_CLOSE);
	ck_assert_int_eq(seen[0] + seen[1] + seen[2] + seen[3] + seen[4], 10);
	sim_free(&s);
	memset(seen, 0, sizeof(seen));
	sim_init(&s, opts_from("max_questions = 0;"));
	ask_many(&s, 500, seen);
	ck_assert_int_eq(s.v, EO_PROTO_OK);
	for (k = 0; k < 5; k++)
		ck_assert_int_gt(seen[k], 50);
	ck_assert_int_eq(seen[0] + seen[1] + seen[2] + seen[3] + seen[4], 500);
	sim_free(&s);
}
END_TEST

/* With the output budget spent it stops; the rest waits, whole. */
START_TEST(test_out_room)
{
	struct sim s;
	char *out;

	sim_init(&s, opts_from(ONE "max_questions = 0;"));
	s.room = 10;
	sim_feed(&s, "A?B?C?", 6);
	out = sim_out(&s, NULL);
	ck_assert_str_eq(out, "A? Yes.\r\nB? Yes.\r\n");
	free(out);
	ck_assert_int_eq(s.full, 1);
	ck_assert_uint_eq(s.inlen, 2);
	sim_clear_out(&s);
	sim_call(&s, 0);
	out = sim_out(&s, NULL);
	ck_assert_str_eq(out, "C? Yes.\r\n");
	free(out);
	ck_assert_int_eq(s.full, 0);
	ck_assert_uint_eq(s.units, 3);
	sim_free(&s);
	/* Out of pieces is out of room too: a reply is two pieces. */
	sim_init(&s, opts_from(ONE "max_questions = 0;"));
	{
		struct proto_in in = { (const unsigned char *)"A?B?C?", 6 };
		struct proto_out o = { s.iov, 0, 5, 0, (size_t)-1, 0, 0,
		    &s.rng, NULL, NULL, 0, 0 };

		ck_assert_int_eq(proto_oracle.input(s.state, s.opts, &in, &o),
		    EO_PROTO_OK);
		ck_assert_uint_eq(o.niov, 4);
		ck_assert_int_eq(o.full, 1);
		ck_assert_uint_eq(in.len, 2);
	}
	sim_free(&s);
}
END_TEST

/* EOF after the budget ran out: conn.c waits for room, calls input()
   again, then eof(), which still has its say. */
START_TEST(test_eof_after_full)
{
	struct sim s;
	char *out;

	sim_init(&s, opts_from(ONE "max_questions = 0;"));
	s.room = 5;
	sim_feed(&s, "Long question? half", 19);
	ck_assert_int_eq(s.full, 1);
	out = sim_out(&s, NULL);
	ck_assert_str_eq(out, "Long question? Yes.\r\n");
	free(out);
	sim_clear_out(&s);
	sim_call(&s, 0);
	ck_assert_int_eq(s.full, 0);
	ck_assert_uint_eq(s.outlen, 0);
	sim_call(&s, 1);
	out = sim_out(&s, NULL);
	ck_assert_str_eq(out, "error: unfinished question: questions end "
	    "with '?'\r\n");
	free(out);
	ck_assert_int_eq(s.v, EO_PROTO_CLOSE);
	sim_free(&s);
}
END_TEST

START_TEST(test_timeout_option)
{
	void *o = opts_from("");

	ck_assert_uint_eq(proto_oracle.unit_timeout(o), 30);
	proto_oracle.opts_free(o);
	o = opts_from("question_timeout = 0;");
	ck_assert_uint_eq(proto_oracle.unit_timeout(o), 0);
	proto_oracle.opts_free(o);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("oracle");
	TCase *tc = tcase_create("framing");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_one_question);
	tcase_add_test(tc, test_several_in_one_read);
	tcase_add_test(tc, test_whitespace);
	tcase_add_test(tc, test_nul_bytes);
	tcase_add_test(tc, test_any_cut);
	tcase_add_test(tc, test_byte_by_byte);
	tcase_add_test(tc, test_byte_by_byte_scans_once);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_max_questions);
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_reply_end);
	tcase_add_test(tc, test_default_answers);
	tcase_add_test(tc, test_out_room);
	tcase_add_test(tc, test_eof_after_full);
	tcase_add_test(tc, test_timeout_option);
	suite_add_tcase(s, tc);
	return check_run(s);
}
