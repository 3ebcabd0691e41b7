/*
 * Response controls: echo_code, echo_delay (echo_time), echo_size and
 * echo_header from the query or X-Echo-* headers, their bounds, and
 * header injection refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "http.h"

static struct http_opts opts;
static struct http_reader rdr;
static struct http_controls ctl;
static char why[256];

static void
setup(void)
{
	ck_assert_int_eq(http_opts_parse(NULL, &opts, NULL), 0);
	http_reader_init(&rdr, &opts);
	why[0] = '\0';
}

static void
teardown(void)
{
	http_reader_free(&rdr);
}

/* The controls of "GET TARGET HTTP/1.1" with headers hdrs. */
static int
controls(const char *target, const char *hdrs)
{
	char req[2048];
	size_t used;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n%s\r\n", target, hdrs);
	ck_assert_int_eq(http_reader_feed(&rdr, req, strlen(req), &used),
	    HTTP_RD_REQUEST);
	return http_controls_get(&rdr, &ctl, why, sizeof(why));
}

static int
span_is(struct http_span s, const char *v)
{
	return s.len == strlen(v) && memcmp(http_at(&rdr, s), v, s.len) == 0;
}

START_TEST(test_none_is_200)
{
	ck_assert_int_eq(controls("/", ""), 0);
	ck_assert_int_eq(ctl.status, 200);
	ck_assert_uint_eq(ctl.delay_ms, 0);
	ck_assert_int_eq(ctl.sized, 0);
	ck_assert_uint_eq(ctl.nextra, 0);
}
END_TEST

START_TEST(test_code_from_query_or_header)
{
	ck_assert_int_eq(controls("/?echo_code=404", ""), 0);
	ck_assert_int_eq(ctl.status, 404);
	http_reader_next(&rdr);
	ck_assert_int_eq(controls("/", "X-Echo-Code: 503\r\n"), 0);
	ck_assert_int_eq(ctl.status, 503);
	http_reader_next(&rdr);
	/* The query wins over the header. */
	ck_assert_int_eq(controls("/?echo_code=201", "x-echo-code: 503\r\n"), 0);
	ck_assert_int_eq(ctl.status, 201);
}
END_TEST

static const struct {
	const char *target;
	const char *hdrs;
} bad[] = {
	{ "/?echo_code=199", "" },
	{ "/?echo_code=600", "" },
	{ "/?echo_code=4o4", "" },
	{ "/?echo_code=", "" },
	{ "/?echo_code=-200", "" },
	{ "/", "X-Echo-Code: 200 \r\n" },
	{ "/?echo_delay=10001", "" },
	{ "/?echo_time=99999999999999999999", "" },
	{ "/", "X-Echo-Delay: 1e3\r\n" },
	{ "/?echo_size=10485761", "" },
	{ "/?echo_size=0x10", "" },
	{ "/?echo_header=X-A%0d%0aSet-Cookie:%20a=b", "" },
	{ "/?echo_header=X-A:%20a%0d%0aSet-Cookie:%20b", "" },
	{ "/?echo_header=X-A:%20a%0ab", "" },
	{ "/?echo_header=X-A:%20a%00b", "" },
	{ "/?echo_header=X-A:%20a%7fb", "" },
	{ "/?echo_header=X%20A:b", "" },
	{ "/?echo_header=:b", "" },
	{ "/?echo_header=novalue", "" },
	{ "/?echo_header=Content-Length:0", "" },
	{ "/?echo_header=transfer-encoding:chunked", "" },
	{ "/?echo_header=Connection:close", "" },
	{ "/", "X-Echo-Header: Bad Name: v\r\n" },
	{ "/?echo_header=a:1&echo_header=b:2&echo_header=c:3&echo_header=d:4"
	    "&echo_header=e:5&echo_header=f:6&echo_header=g:7&echo_header=h:8"
	    "&echo_header=i:9", "" },
};

START_TEST(test_bad_control_is_400)
{
	ck_assert_msg(controls(bad[_i].target, bad[_i].hdrs) == 400, "%s %s",
	    bad[_i].target, bad[_i].hdrs);
	ck_assert_msg(why[0] != '\0', "no reason");
}
END_TEST

START_TEST(test_delay_and_its_alias)
{
	ck_assert_int_eq(controls("/?echo_delay=250", ""), 0);
	ck_assert_uint_eq(ctl.delay_ms, 250);
	http_reader_next(&rdr);
	ck_assert_int_eq(controls("/", "X-Echo-Time: 10000\r\n"), 0);
	ck_assert_uint_eq(ctl.delay_ms, 10000);
	http_reader_next(&rdr);
	opts.max_delay = 0;
	ck_assert_int_eq(controls("/?echo_delay=1", ""), 400);
	ck_assert_ptr_nonnull(strstr(why, "0 to 0"));
}
END_TEST

START_TEST(test_size)
{
	ck_assert_int_eq(controls("/?echo_size=10485760", ""), 0);
	ck_assert_int_eq(ctl.sized, 1);
	ck_assert_uint_eq(ctl.size, 10485760);
	http_reader_next(&rdr);
	ck_assert_int_eq(controls("/", "X-Echo-Size: 0\r\n"), 0);
	ck_assert_int_eq(ctl.sized, 1);
	ck_assert_uint_eq(ctl.size, 0);
}
END_TEST

START_TEST(test_extra_headers_in_the_response)
{
	static const struct http_conn_info ci = { .client_addr = "::1" };
	struct http_buf out = { 0 };

	ck_assert_int_eq(controls("/?echo_header=X-One:%201&echo_header="
	    "Cache-Control:no-store", "X-Echo-Header: X-Ignored: 1\r\n"), 0);
	ck_assert_uint_eq(ctl.nextra, 2);
	ck_assert(span_is(ctl.extra[0].name, "X-One"));
	ck_assert(span_is(ctl.extra[0].value, "1"));
	ck_assert(span_is(ctl.extra[1].value, "no-store"));
	ck_assert_int_eq(http_respond(&rdr, &ci, &ctl, &out), 0);
	http_buf_add(&out, "", 1);
	ck_assert_ptr_nonnull(strstr(out.p, "\r\nX-One: 1\r\n"
	    "Cache-Control: no-store\r\n\r\n"));
	/* The header X-Echo-Header is described in the body, not obeyed. */
	*strstr(out.p, "\r\n\r\n") = '\0';
	ck_assert_ptr_null(strstr(out.p, "X-Ignored"));
	http_buf_free(&out);
	http_reader_next(&rdr);
	ck_assert_int_eq(controls("/", "X-Echo-Header: Lang: en-US\r\n"
	    "X-Echo-Header: X-Two:\t2\r\n"), 0);
	ck_assert_uint_eq(ctl.nextra, 2);
	ck_assert(span_is(ctl.extra[0].value, "en-US"));
	ck_assert(span_is(ctl.extra[1].value, "2"));
}
END_TEST

/* controls = false: every echo_* is an ordinary parameter. */
START_TEST(test_controls_off)
{
	opts.controls = 0;
	ck_assert_int_eq(controls("/?echo_code=999&echo_delay=x&echo_header="
	    "a%0d%0ab", "X-Echo-Size: 99999999999\r\n"), 0);
	ck_assert_int_eq(ctl.status, 200);
	ck_assert_uint_eq(ctl.delay_ms, 0);
	ck_assert_int_eq(ctl.sized, 0);
	ck_assert_uint_eq(ctl.nextra, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http_ctl");
	TCase *tc = tcase_create("ctl");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_none_is_200);
	tcase_add_test(tc, test_code_from_query_or_header);
	tcase_add_loop_test(tc, test_bad_control_is_400, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_delay_and_its_alias);
	tcase_add_test(tc, test_size);
	tcase_add_test(tc, test_extra_headers_in_the_response);
	tcase_add_test(tc, test_controls_off);
	suite_add_tcase(s, tc);
	return check_run(s);
}
