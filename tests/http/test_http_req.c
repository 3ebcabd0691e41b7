/*
 * The HTTP request reader: whole requests out of bytes however they are
 * cut, its limits and statuses, keep-alive, pipelining, 100-continue.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "http.h"

static struct http_opts opts;
static struct http_reader rdr;

static void
setup(void)
{
	ck_assert_int_eq(http_opts_parse(NULL, &opts, NULL), 0);
	http_reader_init(&rdr, &opts);
}

static void
teardown(void)
{
	http_reader_free(&rdr);
}

/* Feeds s from *off, n bytes at a time (0: all at once). */
static enum http_rd
feed_cut(const char *s, size_t *off, size_t n)
{
	size_t len = strlen(s), used;
	enum http_rd v = HTTP_RD_MORE;

	while (*off < len) {
		size_t k = n == 0 || len - *off < n ? len - *off : n;

		v = http_reader_feed(&rdr, s + *off, k, &used);
		*off += used;
		if (v != HTTP_RD_MORE)
			return v;
	}
	return v;
}

static enum http_rd
feed(const char *s, size_t *off)
{
	return feed_cut(s, off, 0);
}

static int
span_is(struct http_span s, const char *v)
{
	return s.len == strlen(v) && memcmp(http_at(&rdr, s), v, s.len) == 0;
}

static const char get_req[] =
    "GET /a/b?x=1&y=hello+world&z=%41%2f&flag HTTP/1.1\r\n"
    "Host: example\r\nX-Rep: one\r\nAccept: */*\r\nX-Rep: two\r\n\r\n";

/* Whatever the cut, the same request comes out. */
START_TEST(test_get_parsed_whatever_the_cut)
{
	static const size_t cuts[] = { 0, 1, 2, 7, 64 };
	size_t off = 0;

	ck_assert_int_eq(feed_cut(get_req, &off, cuts[_i]), HTTP_RD_REQUEST);
	ck_assert_uint_eq(off, strlen(get_req));
	ck_assert_int_eq(rdr.req.method, HTTP_GET);
	ck_assert(span_is(rdr.req.path, "/a/b"));
	ck_assert(span_is(rdr.req.query, "x=1&y=hello+world&z=%41%2f&flag"));
	ck_assert_uint_eq(rdr.req.major, 1);
	ck_assert_uint_eq(rdr.req.minor, 1);
	ck_assert_uint_eq(rdr.req.nparams, 4);
	ck_assert(span_is(rdr.req.params[1].key, "y"));
	ck_assert(span_is(rdr.req.params[1].value, "hello world"));
	ck_assert(span_is(rdr.req.params[2].value, "A/"));
	ck_assert(span_is(rdr.req.params[3].key, "flag"));
	ck_assert_uint_eq(rdr.req.params[3].value.len, 0);
	ck_assert_uint_eq(rdr.req.nheaders, 4);
	ck_assert(span_is(rdr.req.headers[1].name, "X-Rep"));
	ck_assert(span_is(rdr.req.headers[1].value, "one"));
	ck_assert(span_is(rdr.req.headers[3].name, "X-Rep"));
	ck_assert(span_is(rdr.req.headers[3].value, "two"));
	ck_assert(rdr.req.keep_alive);
	ck_assert(!rdr.req.upgrade);
}
END_TEST

START_TEST(test_percent_decoding_keeps_bad_escapes)
{
	size_t off = 0;

	ck_assert_int_eq(feed("GET /?a=%zz%4&b=%00c HTTP/1.1\r\n\r\n", &off),
	    HTTP_RD_REQUEST);
	ck_assert(span_is(rdr.req.params[0].value, "%zz%4"));
	ck_assert_uint_eq(rdr.req.params[1].value.len, 2);
	ck_assert(memcmp(http_at(&rdr, rdr.req.params[1].value), "\0c", 2) == 0);
}
END_TEST

START_TEST(test_chunked_body_dechunked)
{
	static const char r[] = "POST /p HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
	    "6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
	size_t cut;

	for (cut = 0; cut < 4; cut++) {
		size_t off = 0;

		http_reader_free(&rdr);
		http_reader_init(&rdr, &opts);
		ck_assert_int_eq(feed_cut(r, &off, cut), HTTP_RD_REQUEST);
		ck_assert(span_is(rdr.req.body, "hello world"));
		ck_assert_uint_eq(off, strlen(r));
	}
}
END_TEST

START_TEST(test_content_length_body)
{
	size_t off = 0;

	ck_assert_int_eq(feed("PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
	    "a\0b", &off), HTTP_RD_MORE);
	/* strlen stops at the NUL: feed the rest by hand. */
	off = 0;
	http_reader_free(&rdr);
	http_reader_init(&rdr, &opts);
	{
		static const char r[] = "PUT /x HTTP/1.1\r\nContent-Length: 3"
		    "\r\n\r\na\0b";
		size_t used;

		ck_assert_int_eq(http_reader_feed(&rdr, r, sizeof(r) - 1,
		    &used), HTTP_RD_REQUEST);
		ck_assert_uint_eq(used, sizeof(r) - 1);
		ck_assert_uint_eq(rdr.req.body.len, 3);
		ck_assert(memcmp(http_at(&rdr, rdr.req.body), "a\0b", 3) == 0);
	}
}
END_TEST

/* Two requests in one read: the second waits until the first is done,
   then comes out of the rest of the same bytes. */
START_TEST(test_pipelined_requests_in_order)
{
	static const char r[] = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"
	    "GET /3 HTTP/1.1\r\nConnection: close\r\n\r\nGET /4 HTTP/1.1\r\n\r\n";
	size_t off = 0, used;

	ck_assert_int_eq(feed(r, &off), HTTP_RD_REQUEST);
	ck_assert(span_is(rdr.req.path, "/1"));
	/* Fed again before next(): nothing taken. */
	ck_assert_int_eq(http_reader_feed(&rdr, r + off, strlen(r + off),
	    &used), HTTP_RD_REQUEST);
	ck_assert_uint_eq(used, 0);
	http_reader_next(&rdr);
	ck_assert_int_eq(feed(r, &off), HTTP_RD_REQUEST);
	ck_assert(span_is(rdr.req.path, "/2"));
	http_reader_next(&rdr);
	ck_assert_int_eq(feed(r, &off), HTTP_RD_REQUEST);
	ck_assert(span_is(rdr.req.path, "/3"));
	ck_assert(!rdr.req.keep_alive);
	http_reader_next(&rdr);
	/* After the one that closes, /4 is not served. */
	ck_assert_int_eq(feed(r, &off), HTTP_RD_CLOSED);
	ck_assert_ptr_null(rdr.arena);
}
END_TEST

START_TEST(test_keep_alive_rules)
{
	static const struct {
		const char *req;
		int keep;
	} t[] = {
		{ "GET / HTTP/1.1\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1 },
	};
	size_t off = 0;

	ck_assert_int_eq(feed(t[_i].req, &off), HTTP_RD_REQUEST);
	ck_assert_int_eq(rdr.req.keep_alive, t[_i].keep);
}
END_TEST

START_TEST(test_max_requests_closes_after_the_last)
{
	static const char r[] = "GET / HTTP/1.1\r\n\r\n";
	int i;

	opts.max_requests = 3;
	for (i = 0; i < 3; i++) {
		size_t off = 0;

		ck_assert_int_eq(feed(r, &off), HTTP_RD_REQUEST);
		ck_assert_int_eq(rdr.req.keep_alive, i < 2);
		http_reader_next(&rdr);
	}
	{
		size_t off = 0;

		ck_assert_int_eq(feed(r, &off), HTTP_RD_CLOSED);
	}
}
END_TEST

START_TEST(test_expect_100_continue)
{
	static const char head[] = "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 4\r\n\r\n";
	char all[sizeof(head) + 4];
	size_t off = 0;

	/* The body comes only after the 100; whatever the reader left of
	   the head is fed again with it. */
	ck_assert_int_eq(feed(head, &off), HTTP_RD_CONTINUE);
	snprintf(all, sizeof(all), "%sbody", head);
	ck_assert_int_eq(feed(all, &off), HTTP_RD_REQUEST);
	ck_assert_uint_eq(off, strlen(all));
	ck_assert(span_is(rdr.req.body, "body"));
	ck_assert_str_eq(http_continue_line, "HTTP/1.1 100 Continue\r\n\r\n");
}
END_TEST

/* With a body already too large, the expectation fails: the client
   never sends it. */
START_TEST(test_expect_100_continue_too_large_is_413)
{
	size_t off = 0;

	opts.max_body_size = 3;
	ck_assert_int_eq(feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 4\r\n\r\n", &off), HTTP_RD_ERROR);
	ck_assert_int_eq(rdr.status, 413);
}
END_TEST

START_TEST(test_expect_unknown_is_417)
{
	size_t off = 0;

	ck_assert_int_eq(feed("POST / HTTP/1.1\r\nExpect: x-magic\r\n"
	    "Content-Length: 4\r\n\r\n", &off), HTTP_RD_ERROR);
	ck_assert_int_eq(rdr.status, 417);
}
END_TEST

START_TEST(test_upgrade_leaves_the_rest)
{
	static const char r[] = "GET /ws HTTP/1.1\r\nHost: h\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85";
	size_t off = 0;

	ck_assert_int_eq(feed(r, &off), HTTP_RD_UPGRADE);
	ck_assert_uint_eq(off, strlen(r) - 2);
	ck_assert(rdr.req.upgrade);
	http_reader_next(&rdr);
	ck_assert_int_eq(feed(r, &off), HTTP_RD_CLOSED);
}
END_TEST

/*
 * An upgrade to anything but WebSocket (h2c, or CONNECT) is served as a
 * plain request, as RFC 9110 7.8 lets a server ignore Upgrade; http_parser
 * stopped at its head, so whatever follows is not read and the
 * connection closes after the response.
 */
START_TEST(test_upgrade_not_websocket_served_then_closes)
{
	static const char *const r[] = {
		"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, "
		    "HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
		    "GET /smuggled HTTP/1.1\r\n\r\n",
		"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"
		    "\r\nGET /smuggled HTTP/1.1\r\n\r\n",
	};
	size_t off = 0;

	ck_assert_int_eq(feed(r[_i], &off), HTTP_RD_REQUEST);
	ck_assert(!rdr.req.upgrade);
	ck_assert(!rdr.req.keep_alive);
	http_reader_next(&rdr);
	ck_assert_int_eq(feed(r[_i], &off), HTTP_RD_CLOSED);
}
END_TEST

/* Limits and malformed requests: each gets its status, then the reader
   takes nothing more. */
static const struct {
	const char *name;
	const char *req;
	int status;
} bad[] = {
	{ "header_too_large", "GET / HTTP/1.1\r\nX-Big: {300}\r\n\r\n", 431 },
	{ "url_too_long", "GET /{300} HTTP/1.1\r\n\r\n", 431 },
	{ "too_many_headers", NULL, 431 },
	{ "body_too_large", "POST / HTTP/1.1\r\nContent-Length: 200\r\n\r\n",
	    413 },
	{ "chunked_too_large", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n80\r\n{128}\r\n0\r\n\r\n", 413 },
	{ "bad_method", "G@T / HTTP/1.1\r\n\r\n", 400 },
	{ "http09_request", "GET /\r\n\r\n", 505 },
	{ "bad_version", "GET / HTTP/x.1\r\n\r\n", 400 },
	{ "http2_version", "GET / HTTP/2.0\r\n\r\n", 505 },
	{ "space_in_header_name", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400 },
	{ "space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
	{ "no_colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400 },
	{ "bad_chunk_size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked"
	    "\r\n\r\nzz\r\n", 400 },
	{ "bad_content_length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
	    400 },
	{ "two_content_lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\nab", 400 },
	{ "chunked_and_length", "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "control_in_url", "GET /a\x01 HTTP/1.1\r\n\r\n", 400 },
	{ "bare_cr_in_line", "GET / HTTP/1.1\rX\r\n\r\n", 400 },
	{ "bad_url", "GET http://[::1 HTTP/1.1\r\n\r\n", 400 },
};

/* t with each "{N}" made N bytes of 'a'. */
static void
expand(char *out, size_t cap, const char *t)
{
	size_t n = 0;

	while (*t != '\0' && n + 1 < cap) {
		char *end;
		unsigned long k;

		if (*t == '{' && (k = strtoul(t + 1, &end, 10)) > 0 &&
		    *end == '}') {
			for (; k > 0 && n + 1 < cap; k--)
				out[n++] = 'a';
			t = end + 1;
		} else
			out[n++] = *t++;
	}
	out[n] = '\0';
}

START_TEST(test_bad_request_gets_its_status)
{
	char req[8192];
	size_t off = 0, used;

	opts.max_header_size = 256;
	opts.max_body_size = 100;
	http_reader_free(&rdr);
	http_reader_init(&rdr, &opts);
	if (bad[_i].req == NULL) {
		int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n"), i;

		opts.max_header_size = 8000;
		for (i = 0; i <= HTTP_MAX_HEADERS; i++)
			n += snprintf(req + n, sizeof(req) - (size_t)n,
			    "a:\r\n");
		snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	} else
		expand(req, sizeof(req), bad[_i].req);
	ck_assert_msg(feed(req, &off) == HTTP_RD_ERROR, "%s", bad[_i].name);
	ck_assert_msg(rdr.status == bad[_i].status, "%s: %d", bad[_i].name,
	    rdr.status);
	ck_assert_int_eq(http_reader_feed(&rdr, "GET / HTTP/1.1\r\n\r\n", 18,
	    &used), HTTP_RD_ERROR);
	ck_assert_uint_eq(used, 0);
}
END_TEST

/* The arena stays within the limits whatever is sent, and is freed
   between requests. */
START_TEST(test_memory_bounded_and_freed_between_requests)
{
	char req[4096];
	size_t off = 0;

	opts.max_header_size = 1024;
	opts.max_body_size = 1024;
	expand(req, sizeof(req), "POST /?{500} HTTP/1.1\r\n"
	    "Content-Length: 1000\r\n\r\n{1000}");
	ck_assert_int_eq(feed(req, &off), HTTP_RD_REQUEST);
	ck_assert_uint_le(rdr.cap, 4 * 1024);
	http_reader_next(&rdr);
	ck_assert_ptr_null(rdr.arena);
	ck_assert_ptr_null(rdr.tables);
	ck_assert_ptr_null(rdr.req.headers);
	ck_assert_uint_eq(rdr.cap, 0);
	/* An idle keep-alive connection's reader is the struct alone. */
	ck_assert_uint_le(sizeof(rdr), 200);
}
END_TEST

/*
 * The bytes of a request as sent, not only its body once de-chunked,
 * are bounded: 1-byte chunks ("1\r\nX\r\n") cost six bytes held for
 * one of body, and a chunk extension is no body at all.  The reader
 * refuses once 2 x (max_header_size + max_body_size) + 512 are taken,
 * having taken at most one byte more.
 */
START_TEST(test_chunk_framing_is_bounded_not_only_the_body)
{
	static char req[16384];
	size_t n, off = 0, lim;
	int i;

	opts.max_header_size = 256;
	opts.max_body_size = 1000;
	http_reader_free(&rdr);
	http_reader_init(&rdr, &opts);
	lim = 2 * (256 + 1000) + 512;
	n = (size_t)snprintf(req, sizeof(req), "POST / HTTP/1.1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	if (_i == 0)		/* a body within max_body_size, 6 x framed */
		for (i = 0; i < 1000; i++)
			n += (size_t)snprintf(req + n, sizeof(req) - n,
			    "1\r\nX\r\n");
	else {			/* one chunk's extension, never ending */
		n += (size_t)snprintf(req + n, sizeof(req) - n, "1;e=");
		memset(req + n, 'a', 8000);
		n += 8000;
		req[n] = '\0';
	}
	snprintf(req + n, sizeof(req) - n, "0\r\n\r\n");
	ck_assert_int_eq(feed_cut(req, &off, _i == 0 ? 0 : 7), HTTP_RD_ERROR);
	ck_assert_int_eq(rdr.status, 413);
	ck_assert_uint_le(off, lim + 1);
}
END_TEST

START_TEST(test_find_header_any_case)
{
	size_t off = 0;

	ck_assert_int_eq(feed(get_req, &off), HTTP_RD_REQUEST);
	ck_assert_ptr_nonnull(http_find_header(&rdr, "HOST"));
	ck_assert_ptr_null(http_find_header(&rdr, "Hos"));
	ck_assert_ptr_nonnull(http_find_param(&rdr, "x"));
	ck_assert_ptr_null(http_find_param(&rdr, "X"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http_req");
	TCase *tc = tcase_create("reader");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_get_parsed_whatever_the_cut, 0, 5);
	tcase_add_test(tc, test_percent_decoding_keeps_bad_escapes);
	tcase_add_test(tc, test_chunked_body_dechunked);
	tcase_add_test(tc, test_content_length_body);
	tcase_add_test(tc, test_pipelined_requests_in_order);
	tcase_add_loop_test(tc, test_keep_alive_rules, 0, 5);
	tcase_add_test(tc, test_max_requests_closes_after_the_last);
	tcase_add_test(tc, test_expect_100_continue);
	tcase_add_test(tc, test_expect_100_continue_too_large_is_413);
	tcase_add_test(tc, test_expect_unknown_is_417);
	tcase_add_test(tc, test_upgrade_leaves_the_rest);
	tcase_add_loop_test(tc, test_upgrade_not_websocket_served_then_closes,
	    0, 2);
	tcase_add_loop_test(tc, test_bad_request_gets_its_status, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_memory_bounded_and_freed_between_requests);
	tcase_add_loop_test(tc, test_chunk_framing_is_bounded_not_only_the_body,
	    0, 2);
	tcase_add_test(tc, test_find_header_any_case);
	suite_add_tcase(s, tc);
	return check_run(s);
}
