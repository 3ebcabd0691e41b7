/*
 * The response builder: the JSON writer, the UTF-8 check, base64, the
 * description in JSON and text, the head's framing, sized bodies.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "http.h"

static struct http_opts opts;
static struct http_reader rdr;
static struct http_buf out;

static const struct http_conn_info plain = {
	.client_addr = "127.0.0.1", .client_port = 40000,
	.server_host = "box", .listener = "web",
};

static void
setup(void)
{
	ck_assert_int_eq(http_opts_parse(NULL, &opts, NULL), 0);
	http_reader_init(&rdr, &opts);
	memset(&out, 0, sizeof(out));
}

static void
teardown(void)
{
	http_reader_free(&rdr);
	http_buf_free(&out);
}

/* Reads one whole request of len bytes into rdr. */
static void
request(const char *s, size_t len)
{
	size_t used;

	ck_assert_int_eq(http_reader_feed(&rdr, s, len, &used),
	    HTTP_RD_REQUEST);
}

/* The response for the request s under no controls, NUL-terminated. */
static const char *
respond(const char *s, const struct http_conn_info *ci)
{
	struct http_controls c;
	char why[128];

	request(s, strlen(s));
	ck_assert_int_eq(http_controls_get(&rdr, &c, why, sizeof(why)), 0);
	ck_assert_int_eq(http_respond(&rdr, ci, &c, &out), 0);
	http_buf_add(&out, "", 1);
	return out.p;
}

static const char *
json(const char *s, size_t n)
{
	http_buf_free(&out);
	http_json_string(&out, s, n);
	http_buf_add(&out, "", 1);
	return out.p;
}

START_TEST(test_json_string_escapes)
{
	ck_assert_str_eq(json("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	ck_assert_str_eq(json("\n\t\x01\x7f", 4),
	    "\"\\u000a\\u0009\\u0001\\u007f\"");
	ck_assert_str_eq(json("\0x", 2), "\"\\u0000x\"");
	ck_assert_str_eq(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* Not UTF-8: each bad byte is U+FFFD, the document stays valid. */
	ck_assert_str_eq(json("a\xff" "b\xc3", 4), "\"a\\ufffdb\\ufffd\"");
	ck_assert_str_eq(json("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");
	ck_assert_str_eq(json("/<script>", 9), "\"/<script>\"");
}
END_TEST

static const struct {
	const char *s;
	size_t n;
	int valid;
} utf8[] = {
	{ "", 0, 1 },
	{ "plain", 5, 1 },
	{ "\xc3\xa9", 2, 1 },
	{ "\xef\xbf\xbf", 3, 1 },
	{ "\xf4\x8f\xbf\xbf", 4, 1 },
	{ "\xc0\x80", 2, 0 },		/* overlong NUL */
	{ "\xe0\x80\xaf", 3, 0 },	/* overlong '/' */
	{ "\xed\xa0\x80", 3, 0 },	/* a surrogate */
	{ "\xf4\x90\x80\x80", 4, 0 },	/* past U+10FFFF */
	{ "\xc3", 1, 0 },		/* cut short */
	{ "\x80", 1, 0 },		/* a lone continuation */
	{ "\xf8\x88\x80\x80\x80", 5, 0 },
};

START_TEST(test_utf8_valid)
{
	ck_assert_int_eq(http_utf8_valid((const unsigned char *)utf8[_i].s,
	    utf8[_i].n), utf8[_i].valid);
}
END_TEST

START_TEST(test_base64_rfc4648_vectors)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob",
	    "fooba", "foobar" };
	static const char *const want[] = { "", "Zg==", "Zm8=", "Zm9v",
	    "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };

	http_base64(&out, (const unsigned char *)in[_i], strlen(in[_i]));
	http_buf_add(&out, "", 1);
	ck_assert_str_eq(out.p, want[_i]);
}
END_TEST

/* The whole JSON response, byte for byte. */
START_TEST(test_json_description_exact)
{
	static const char want[] =
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 323\r\n\r\n"
	    "{\"method\":\"POST\",\"url\":\"/p?a=1&a=2\",\"path\":\"/p\","
	    "\"query\":[[\"a\",\"1\"],[\"a\",\"2\"]],\"version\":\"HTTP/1.1\","
	    "\"headers\":[[\"Host\",\"h\"],[\"X-A\",\"1\"],[\"X-A\",\"\\\"2\\\"\"],"
	    "[\"Content-Length\",\"5\"]],\"body_length\":5,"
	    "\"body_encoding\":\"text\",\"body\":\"hi\\u000a\\\"!\","
	    "\"client\":{\"address\":\"127.0.0.1\",\"port\":40000},"
	    "\"server\":{\"host\":\"box\",\"listener\":\"web\"}}\n";

	ck_assert_str_eq(respond("POST /p?a=1&a=2 HTTP/1.1\r\nHost: h\r\n"
	    "X-A: 1\r\nX-A: \"2\"\r\nContent-Length: 5\r\n\r\nhi\n\"!", &plain),
	    want);
}
END_TEST

START_TEST(test_binary_body_is_base64)
{
	static const char r[] = "POST / HTTP/1.1\r\nContent-Length: 3\r\n"
	    "\r\n\xff\x00\xfe";

	request(r, sizeof(r) - 1);
	{
		struct http_controls c = { .status = 200 };

		ck_assert_int_eq(http_respond(&rdr, &plain, &c, &out), 0);
	}
	http_buf_add(&out, "", 1);
	ck_assert_ptr_nonnull(strstr(out.p, "\"body_length\":3,"
	    "\"body_encoding\":\"base64\",\"body\":\"/wD+\""));
}
END_TEST

START_TEST(test_proxy_and_tls_facts)
{
	static const struct http_conn_info ci = {
		.client_addr = "192.0.2.1", .client_port = 1234,
		.proxy_addr = "127.0.0.1", .proxy_port = 5555,
		.server_host = "box", .listener = "web", .tls = 1,
		.tls_version = "TLSv1.3", .tls_cipher = "TLS_AES_128_GCM_SHA256",
		.tls_sni = "example.org", .tls_alpn = NULL,
		.cert_subject = "CN=client", .cert_issuer = "CN=ca",
		.cert_serial = "01", .cert_not_after = "2030-01-01T00:00:00Z",
	};
	const char *r = respond("GET / HTTP/1.1\r\n\r\n", &ci);

	ck_assert_ptr_nonnull(strstr(r, "\"client\":{\"address\":\"192.0.2.1\","
	    "\"port\":1234},\"proxy\":{\"address\":\"127.0.0.1\",\"port\":5555},"
	    "\"tls\":{\"version\":\"TLSv1.3\",\"cipher\":"
	    "\"TLS_AES_128_GCM_SHA256\",\"sni\":\"example.org\",\"alpn\":null,"
	    "\"client_cert\":{\"subject\":\"CN=client\",\"issuer\":\"CN=ca\","
	    "\"serial\":\"01\",\"not_after\":\"2030-01-01T00:00:00Z\"}}"));
}
END_TEST

START_TEST(test_no_tls_no_proxy_no_keys)
{
	const char *r = respond("GET / HTTP/1.1\r\n\r\n", &plain);

	ck_assert_ptr_null(strstr(r, "\"tls\""));
	ck_assert_ptr_null(strstr(r, "\"proxy\""));
}
END_TEST

/* Text when asked (Accept, or the listener); JSON when JSON is asked. */
START_TEST(test_format_choice)
{
	static const struct {
		const char *accept;
		enum http_format listener;
		int text;
	} t[] = {
		{ "", HTTP_FMT_JSON, 0 },
		{ "Accept: text/plain\r\n", HTTP_FMT_JSON, 1 },
		{ "Accept: text/plain, application/json\r\n", HTTP_FMT_JSON, 1 },
		{ "Accept: application/json, text/plain\r\n", HTTP_FMT_JSON, 0 },
		{ "Accept: */*\r\n", HTTP_FMT_JSON, 0 },
		{ "", HTTP_FMT_TEXT, 1 },
		{ "Accept: */*\r\n", HTTP_FMT_TEXT, 1 },
		{ "Accept: application/json\r\n", HTTP_FMT_TEXT, 0 },
	};
	char req[256];
	const char *r;

	opts.format = t[_i].listener;
	snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\n%s\r\n", t[_i].accept);
	r = respond(req, &plain);
	ck_assert_ptr_nonnull(strstr(r, t[_i].text ?
	    "Content-Type: text/plain; charset=utf-8\r\n" :
	    "Content-Type: application/json\r\n"));
}
END_TEST

START_TEST(test_text_description)
{
	const char *r;

	opts.format = HTTP_FMT_TEXT;
	r = respond("PUT /t?q=1 HTTP/1.1\r\nHost: h\r\nX-R: 1\r\nX-R: 2\r\n"
	    "Content-Length: 2\r\n\r\nok", &plain);
	ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nPUT /t?q=1 HTTP/1.1\nHost: h\n"
	    "X-R: 1\nX-R: 2\nContent-Length: 2\n\nclient: 127.0.0.1 port 40000\n"
	    "server: box listener web\nbody: 2 bytes\nok"));
}
END_TEST

START_TEST(test_head_has_length_no_body)
{
	const char *r = respond("HEAD / HTTP/1.1\r\n\r\n", &plain);
	const char *end = strstr(r, "\r\n\r\n");

	ck_assert_ptr_nonnull(strstr(r, "Content-Length: "));
	ck_assert_ptr_nonnull(end);
	ck_assert_str_eq(end, "\r\n\r\n");
	ck_assert_uint_gt(strtoul(strstr(r, "Content-Length: ") + 16, NULL,
	    10), 100);
}
END_TEST

START_TEST(test_connection_header)
{
	ck_assert_ptr_nonnull(strstr(respond("GET / HTTP/1.1\r\n"
	    "Connection: close\r\n\r\n", &plain), "Connection: close\r\n"));
	http_buf_free(&out);
	http_reader_next(&rdr);
	http_reader_init(&rdr, &opts);
	ck_assert_ptr_nonnull(strstr(respond("GET / HTTP/1.0\r\n"
	    "Connection: keep-alive\r\n\r\n", &plain),
	    "Connection: keep-alive\r\n"));
	http_buf_free(&out);
	http_reader_next(&rdr);
	ck_assert_ptr_null(strstr(respond("GET / HTTP/1.0\r\n"
	    "Connection: keep-alive\r\n\r\n", &plain), "Connection: close"));
}
END_TEST

START_TEST(test_204_has_no_body)
{
	struct http_controls c = { .status = 204 };

	request("GET / HTTP/1.1\r\n\r\n", 18);
	ck_assert_int_eq(http_respond(&rdr, &plain, &c, &out), 0);
	http_buf_add(&out, "", 1);
	ck_assert_str_eq(out.p, "HTTP/1.1 204 No Content\r\n\r\n");
}
END_TEST

/* echo_size: the head says N; the pieces add up to N and the pattern
   runs on whatever their sizes. */
START_TEST(test_sized_body_in_pieces)
{
	struct http_controls c = { .status = 200, .sized = 1, .size = 100000 };
	static const size_t rooms[] = { 1, 7, 4096, 100000 };
	char whole[100000], piece[4096], *cut;
	uint64_t left = c.size;
	size_t got = 0, k = 0;

	request("GET / HTTP/1.1\r\n\r\n", 18);
	ck_assert_int_eq(http_respond(&rdr, &plain, &c, &out), 0);
	http_buf_add(&out, "", 1);
	ck_assert_str_eq(out.p, "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/octet-stream\r\nContent-Length: 100000\r\n\r\n");
	cut = malloc(100000);
	while (left > 0) {
		size_t room = rooms[k++ % 4];
		size_t n = http_body_fill(&left, piece, room < sizeof(piece) ?
		    room : sizeof(piece));

		ck_assert_uint_gt(n, 0);
		memcpy(cut + got, piece, n);
		got += n;
	}
	ck_assert_uint_eq(got, 100000);
	left = 100000;
	for (got = 0; left > 0; )
		got += http_body_fill(&left, whole + got, 100000);
	ck_assert_mem_eq(cut, whole, 100000);
	ck_assert_uint_eq(http_body_fill(&left, piece, 10), 0);
	free(cut);
}
END_TEST

START_TEST(test_error_response)
{
	ck_assert_int_eq(http_respond_error(431, "headers too large", &out), 0);
	http_buf_add(&out, "", 1);
	ck_assert_str_eq(out.p, "HTTP/1.1 431 Request Header Fields Too Large"
	    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18"
	    "\r\nConnection: close\r\n\r\nheaders too large\n");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http_resp");
	TCase *tc = tcase_create("resp");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_string_escapes);
	tcase_add_loop_test(tc, test_utf8_valid, 0,
	    (int)(sizeof(utf8) / sizeof(utf8[0])));
	tcase_add_loop_test(tc, test_base64_rfc4648_vectors, 0, 7);
	tcase_add_test(tc, test_json_description_exact);
	tcase_add_test(tc, test_binary_body_is_base64);
	tcase_add_test(tc, test_proxy_and_tls_facts);
	tcase_add_test(tc, test_no_tls_no_proxy_no_keys);
	tcase_add_loop_test(tc, test_format_choice, 0, 8);
	tcase_add_test(tc, test_text_description);
	tcase_add_test(tc, test_head_has_length_no_body);
	tcase_add_test(tc, test_connection_header);
	tcase_add_test(tc, test_204_has_no_body);
	tcase_add_test(tc, test_sized_body_in_pieces);
	tcase_add_test(tc, test_error_response);
	suite_add_tcase(s, tc);
	return check_run(s);
}
