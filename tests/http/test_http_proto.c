/*
 * protocol = "http" as the connection drives it, without sockets: the
 * same stream fed in one blob and byte by byte must give the same bytes
 * out (responses, 100 Continue, a sized body, a delayed answer, the
 * WebSocket switch and an echo), with little room and with plenty.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"
#include "check_main.h"

/* A WebSocket upgrade, then a text "hello" and a binary 00 00 00, both
   masked with the key 01 02 03 04. */
#define WS_HELLO_AND_ZEROS						\
	"GET /ws HTTP/1.1\r\nHost: h\r\n"					\
	"Upgrade: websocket\r\nConnection: Upgrade\r\n"			\
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"			\
	"Sec-WebSocket-Version: 13\r\n\r\n"					\
	"\x81\x85\x01\x02\x03\x04" "igohn"					\
	"\x82\x83\x01\x02\x03\x04" "\x01\x02\x03"

static const struct proto_conn_info info = {
	.listener = "web", .client_addr = "127.0.0.1", .client_port = 4242,
};

/* The facts, given on demand: each time counted. */
static int info_asked;

static const struct proto_conn_info *
info_get(const struct proto_info_src *src)
{
	(void)src;
	info_asked++;
	return &info;
}

static const struct proto_info_src info_src = { info_get };

struct sink {
	char	*p;
	size_t	 len, cap;
	int	 pauses;
	int	 closed;
};

static void
take(struct sink *k, const struct proto_out *out)
{
	unsigned i;

	for (i = 0; i < out->niov; i++) {
		size_t n = out->iov[i].iov_len;

		if (k->len + n > k->cap) {
			k->cap = (k->len + n) * 2;
			ck_assert_ptr_nonnull(k->p = realloc(k->p, k->cap));
		}
		memcpy(k->p + k->len, out->iov[i].iov_base, n);
		k->len += n;
	}
}

/* One call with room bytes of room; its verdict, output into k. */
static enum proto_verdict
call(void *st, void *opts, struct proto_in *in, size_t room, int produce,
    struct sink *k)
{
	struct iovec iov[64];
	struct proto_out out;
	enum proto_verdict v;

	memset(&out, 0, sizeof(out));
	out.iov = iov;
	out.maxiov = 64;
	out.room = room;
	out.info = &info_src;
	v = produce ? proto_http.produce(st, opts, &out) :
	    proto_http.input(st, opts, in, &out);
	take(k, &out);
	k->pauses += out.pause_ms > 0;
	proto_http.released(st);
	return v;
}

/* Feeds s in pieces of step bytes; all output into k. */
static void
feed(const char *s, size_t len, size_t step, size_t room, struct sink *k)
{
	struct cfg_diag d;
	unsigned char held[8192];
	size_t nheld = 0, at = 0;
	void *opts, *st;
	int guard;

	cfg_diag_init(&d);
	ck_assert_int_eq(proto_http.opts_parse(NULL, &opts, &d), 0);
	ck_assert_ptr_nonnull(st = calloc(1, proto_http.state_size));
	proto_http.init(st, opts);
	memset(k, 0, sizeof(*k));
	while (!k->closed && (at < len || nheld > 0)) {
		struct proto_in in;
		size_t n = at < len ? (step < len - at ? step : len - at) : 0;

		memcpy(held + nheld, s + at, n);
		nheld += n;
		at += n;
		for (guard = 0; guard < 1000 && !k->closed; guard++) {
			size_t before = k->len, had;

			in.data = held;
			in.len = had = nheld;
			k->closed = call(st, opts, &in, room, 0, k) ==
			    EO_PROTO_CLOSE;
			memmove(held, in.data, in.len);
			nheld = in.len;
			while (!k->closed && call(st, opts, NULL, room, 1, k) ==
			    EO_PROTO_OK && k->len > before)
				before = k->len;
			if (nheld == had && k->len == before)
				break;		/* waits for more input */
		}
		if (at == len && nheld > 0 && guard == 0)
			break;
	}
	proto_http.fini(st);
	free(st);
	proto_http.opts_free(opts);
	cfg_diag_free(&d);
}

static void
same_either_way(const char *s, size_t room)
{
	struct sink blob, bytes;

	feed(s, strlen(s), strlen(s), room, &blob);
	feed(s, strlen(s), 1, room, &bytes);
	ck_assert_uint_gt(blob.len, 0);
	ck_assert_uint_eq(blob.len, bytes.len);
	ck_assert_msg(memcmp(blob.p, bytes.p, blob.len) == 0, "%.*s\n----\n"
	    "%.*s", (int)blob.len, blob.p, (int)bytes.len, bytes.p);
	free(blob.p);
	free(bytes.p);
}

static const char pipeline[] =
    "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    "GET /?echo_size=300000 HTTP/1.1\r\nHost: h\r\n\r\n"
    "GET /?echo_delay=10&echo_code=404 HTTP/1.1\r\nHost: h\r\n\r\n"
    "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

START_TEST(test_http_proto_pipeline_blob_or_bytes)
{
	struct sink k;
	const char *body;

	same_either_way(pipeline, 131072);
	same_either_way(pipeline, 1000);
	feed(pipeline, strlen(pipeline), strlen(pipeline), 131072, &k);
	ck_assert(k.closed);
	ck_assert_int_eq(k.pauses, 1);
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "HTTP/1.1 100 Continue", 21));
	ck_assert_ptr_nonnull(body = memmem(k.p, k.len,
	    "Content-Length: 300000\r\n", 24));
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "HTTP/1.1 404 ", 13));
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "\"path\":\"/last\"", 14));
	free(k.p);
}
END_TEST

START_TEST(test_http_proto_websocket_blob_or_bytes)
{
	static const char ws[] = WS_HELLO_AND_ZEROS;
	struct sink k;

	/* Data only: the order of echoes, pongs and the close is
	   unit.http_ws's to check (a close read with a message included). */
	same_either_way(ws, 131072);
	feed(ws, sizeof(ws) - 1, sizeof(ws) - 1, 131072, &k);
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "HTTP/1.1 101 ", 13));
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "\x81\x05hello", 7));
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "\x82\x03\0\0\0", 5));
	free(k.p);
}
END_TEST

/*
 * The connection's facts cost a few hundred instructions to fill: only
 * a response that describes the request asks for them, not one with a
 * sized body or none (204), nor the 101 or any WebSocket message.
 */
START_TEST(test_http_proto_facts_asked_only_to_describe)
{
	static const char s[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	    "GET /?echo_size=10 HTTP/1.1\r\nHost: h\r\n\r\n"
	    "GET /?echo_code=204 HTTP/1.1\r\nHost: h\r\n\r\n"
	    WS_HELLO_AND_ZEROS;
	struct sink k;

	info_asked = 0;
	feed(s, sizeof(s) - 1, sizeof(s) - 1, 131072, &k);
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "\"path\":\"/a\"", 11));
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "HTTP/1.1 204 ", 13));
	ck_assert_ptr_nonnull(memmem(k.p, k.len, "\x82\x03\0\0\0", 5));
	ck_assert_int_eq(info_asked, 1);
	free(k.p);
}
END_TEST

/* One input() call on in; its pause (0: none), output dropped. */
static uint32_t
pause_of(void *st, void *opts, struct proto_in *in)
{
	struct iovec iov[64];
	struct proto_out out;

	memset(&out, 0, sizeof(out));
	out.iov = iov;
	out.maxiov = 64;
	out.room = 131072;
	out.info = &info_src;
	ck_assert_int_eq(proto_http.input(st, opts, in, &out), EO_PROTO_OK);
	proto_http.released(st);
	return out.pause_ms;
}

/*
 * A request waiting for its delay is carried (a restart) with the
 * delay's end: the new process, reading the request again from the
 * input it was left in, waits only for what is left of the delay.
 */
START_TEST(test_http_proto_carried_delay_keeps_deadline)
{
	static const char req[] = "GET /?echo_delay=1000 HTTP/1.1\r\n"
	    "Host: h\r\n\r\n";
	struct proto_in in = { (const unsigned char *)req, sizeof(req) - 1 };
	struct cfg_diag d;
	void *opts, *st, *st2;
	uint32_t ms;

	cfg_diag_init(&d);
	ck_assert_int_eq(proto_http.opts_parse(NULL, &opts, &d), 0);
	ck_assert_ptr_nonnull(st = calloc(1, proto_http.state_size));
	ck_assert_ptr_nonnull(st2 = malloc(proto_http.state_size));
	proto_http.init(st, opts);
	ck_assert_uint_eq(pause_of(st, opts, &in), 1000);
	ck_assert_uint_eq(in.len, sizeof(req) - 1);	/* kept as input */
	ck_assert(proto_http.carriable(st));
	usleep(300000);
	/* The hand-over copies the state's bytes; the old one is freed. */
	memcpy(st2, st, proto_http.state_size);
	proto_http.carried(st2, opts);
	proto_http.fini(st);
	ms = pause_of(st2, opts, &in);
	/* CLOCK_MONOTONIC_COARSE: a tick (at most 4 ms) either way. */
	ck_assert_msg(ms > 0 && ms <= 1000 - 300 + 4, "waits %u ms", ms);
	proto_http.fini(st2);
	free(st);
	free(st2);
	proto_http.opts_free(opts);
	cfg_diag_free(&d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http_proto");
	TCase *tc = tcase_create("http_proto");

	tcase_add_test(tc, test_http_proto_pipeline_blob_or_bytes);
	tcase_add_test(tc, test_http_proto_websocket_blob_or_bytes);
	tcase_add_test(tc, test_http_proto_carried_delay_keeps_deadline);
	tcase_add_test(tc, test_http_proto_facts_asked_only_to_describe);
	suite_add_tcase(s, tc);
	return check_run(s);
}
