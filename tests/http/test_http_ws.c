/*
 * The WebSocket echo: the opening handshake and Sec-WebSocket-Accept,
 * then a session fed client frames: echoes, fragments, control frames,
 * the close codes RFC 6455 section 7.4.1 names, backpressure, memory.
 */
#include <check.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "http.h"
#include "ws.h"

static struct http_opts opts;
static struct http_reader rdr;
static struct ws_session *ws;
static unsigned char got[1 << 20];	/* everything the session sent */
static size_t ngot;

static void
setup(void)
{
	ck_assert_int_eq(http_opts_parse(NULL, &opts, NULL), 0);
	http_reader_init(&rdr, &opts);
	ws = ws_session_new(1000, 1 << 16);
	ck_assert_ptr_nonnull(ws);
	ngot = 0;
}

static void
teardown(void)
{
	http_reader_free(&rdr);
	ws_session_free(ws);
}

/* A client frame: masked (with a fixed key) unless told otherwise. */
static size_t
frame(unsigned char *f, int fin, int op, int masked, const void *p,
    size_t n)
{
	static const unsigned char key[4] = { 0x12, 0x34, 0x56, 0x78 };
	size_t h = 2, i;

	f[0] = (unsigned char)((fin ? 0x80 : 0) | op);
	if (n < 126)
		f[1] = (unsigned char)n;
	else {
		f[1] = 126;
		f[2] = (unsigned char)(n >> 8);
		f[3] = (unsigned char)n;
		h = 4;
	}
	if (masked) {
		f[1] |= 0x80;
		memcpy(f + h, key, 4);
		h += 4;
	}
	for (i = 0; i < n; i++)
		f[h + i] = (unsigned char)(((const unsigned char *)p)[i] ^
		    (masked ? key[i % 4] : 0));
	return h + n;
}

/* Everything the session has to send, "sent". */
static void
drain(void)
{
	const void *p;
	size_t n;

	while ((p = ws_output(ws, &n)) != NULL) {
		ck_assert_uint_le(ngot + n, sizeof(got));
		memcpy(got + ngot, p, n);
		ngot += n;
		ws_output_done(ws, n);
	}
}

/* Feeds all of f (cut into pieces of cut bytes; 0: whole), draining. */
static void
feed(const unsigned char *f, size_t n, size_t cut)
{
	size_t off = 0;

	while (off < n) {
		size_t k = cut == 0 || n - off < cut ? n - off : cut;
		size_t t = ws_feed(ws, f + off, k);

		off += t;
		drain();
		ck_assert(t > 0 || ws_finished(ws));
		if (ws_finished(ws))
			break;
	}
}

/* The session sent exactly the server frame op/payload (unmasked). */
static void
expect_frame(size_t *at, int op, const void *p, size_t n)
{
	size_t h = n < 126 ? 2 : 4;

	ck_assert_uint_ge(ngot, *at + h + n);
	ck_assert_uint_eq(got[*at], 0x80u | (unsigned)op);
	if (n < 126)
		ck_assert_uint_eq(got[*at + 1], n);
	else
		ck_assert_uint_eq(got[*at + 1], 126);
	ck_assert_mem_eq(got + *at + h, p, n);
	*at += h + n;
}

/* A close frame with code (the reason, if any, skipped). */
static void
expect_close(size_t at, unsigned code)
{
	ck_assert_uint_ge(ngot, at + 4);
	ck_assert_uint_eq(got[at], 0x88);
	ck_assert_uint_eq((unsigned)got[at + 2] << 8 | got[at + 3], code);
}

START_TEST(test_accept_key_rfc6455_example)
{
	char a[WS_ACCEPT_LEN + 1];

	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, a);
	ck_assert_str_eq(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

static const struct {
	const char *req;
	int status;
} hs[] = {
	{ "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 0 },
	{ "GET /chat HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 8\r\n\r\n", 426 },
	{ "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
	    400 },
	{ "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET /chat HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "POST /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET /chat HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
};

START_TEST(test_handshake)
{
	struct http_buf out = { 0 };
	enum http_rd v;
	size_t used;

	/* The reader switches for WebSocket only (h2c is a plain request);
	   the handshake check stands on its own either way. */
	v = http_reader_feed(&rdr, hs[_i].req, strlen(hs[_i].req), &used);
	ck_assert(v == (strstr(hs[_i].req, "h2c") != NULL ? HTTP_RD_REQUEST :
	    HTTP_RD_UPGRADE));
	ck_assert_int_eq(ws_handshake(&rdr, &out), hs[_i].status);
	http_buf_add(&out, "", 1);
	if (hs[_i].status == 0)
		ck_assert_str_eq(out.p, "HTTP/1.1 101 Switching Protocols\r\n"
		    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
	else if (hs[_i].status == 426)
		ck_assert_ptr_nonnull(strstr(out.p, "Sec-WebSocket-Version: 13"));
	http_buf_free(&out);
}
END_TEST

/* Text and binary come back as they came, whatever the cut. */
START_TEST(test_text_and_binary_echoed)
{
	static const size_t cuts[] = { 0, 1, 3 };
	unsigned char in[512], big[300];
	size_t n, at = 0;

	memset(big, 0xab, sizeof(big));
	n = frame(in, 1, 1, 1, "hello", 5);
	n += frame(in + n, 1, 2, 1, "\x00\xff\x01", 3);
	n += frame(in + n, 1, 2, 1, big, sizeof(big));
	feed(in, n, cuts[_i]);
	expect_frame(&at, 1, "hello", 5);
	expect_frame(&at, 2, "\x00\xff\x01", 3);
	expect_frame(&at, 2, big, sizeof(big));
	ck_assert_uint_eq(at, ngot);
	ck_assert(!ws_finished(ws));
}
END_TEST

/* Fragments are echoed as one message; a ping between them is
   answered first (a control frame may come mid-message). */
START_TEST(test_fragments_reassembled)
{
	unsigned char in[256];
	size_t n, at = 0;

	n = frame(in, 0, 1, 1, "frag", 4);
	n += frame(in + n, 1, 9, 1, "p", 1);
	n += frame(in + n, 0, 0, 1, "men", 3);
	n += frame(in + n, 1, 0, 1, "ted", 3);
	feed(in, n, 0);
	expect_frame(&at, 10, "p", 1);
	expect_frame(&at, 1, "fragmented", 10);
	ck_assert_uint_eq(at, ngot);
}
END_TEST

START_TEST(test_ping_gets_pong)
{
	unsigned char in[64];
	size_t at = 0;

	feed(in, frame(in, 1, 9, 1, "are you there", 13), 0);
	expect_frame(&at, 10, "are you there", 13);
}
END_TEST

START_TEST(test_close_answered)
{
	unsigned char in[64];

	feed(in, frame(in, 1, 8, 1, "\x03\xe8" "bye", 5), 0);
	expect_close(0, 1000);
	ck_assert(ws_finished(ws));
	/* What follows a close is not read: taken and dropped. */
	ck_assert_uint_eq(ws_feed(ws, "junk", 4), 4);
}
END_TEST

/*
 * A message, a ping and the close read at once: the echo and the pong
 * go out before the close answer (wslay would send its control frames
 * first and the close ends the session, so the echo was lost).
 */
START_TEST(test_message_then_close_in_one_read)
{
	unsigned char in[128];
	size_t n, at = 0;

	n = frame(in, 1, 1, 1, "last words", 10);
	n += frame(in + n, 1, 9, 1, "p", 1);
	n += frame(in + n, 1, 8, 1, "\x03\xe8", 2);
	feed(in, n, 0);
	expect_frame(&at, 1, "last words", 10);
	expect_frame(&at, 10, "p", 1);
	expect_close(at, 1000);
	ck_assert_uint_eq(at + 4, ngot);
	ck_assert_uint_eq(ws_messages(ws), 1);
	ck_assert(ws_finished(ws));
}
END_TEST

/* So with wslay's own close: a good message, then bad UTF-8 (1007). */
START_TEST(test_message_then_1007_in_one_read)
{
	unsigned char in[64];
	size_t n, at = 0;

	n = frame(in, 1, 2, 1, "ok", 2);
	n += frame(in + n, 1, 1, 1, "\xc3\x28", 2);
	feed(in, n, 0);
	expect_frame(&at, 2, "ok", 2);
	expect_close(at, 1007);
	ck_assert(ws_finished(ws));
}
END_TEST

/* Idle (carriable across a restart) only between whole messages. */
START_TEST(test_idle_only_between_messages)
{
	unsigned char in[400], big[300];
	size_t n;

	ck_assert(ws_idle(ws));
	n = frame(in, 1, 1, 1, "hello", 5);
	feed(in, n - 2, 0);		/* all but the last 2 bytes */
	ck_assert(!ws_idle(ws));
	feed(in + n - 2, 2, 0);
	ck_assert(ws_idle(ws));
	feed(in, 1, 0);			/* one byte of a header */
	ck_assert(!ws_idle(ws));
	feed(in + 1, n - 1, 0);
	ck_assert(ws_idle(ws));
	memset(big, 'b', sizeof(big));	/* a 16-bit length: 8-byte head */
	feed(in, frame(in, 1, 2, 1, big, sizeof(big)), 0);
	ck_assert(ws_idle(ws));
	n = frame(in, 0, 1, 1, "frag", 4);	/* a message begun */
	feed(in, n, 0);
	ck_assert(!ws_idle(ws));
	n = frame(in, 1, 0, 1, "ment", 4);
	feed(in, n, 0);
	ck_assert(ws_idle(ws));
	ck_assert_uint_eq(ws_messages(ws), 4);
	feed(in, frame(in, 1, 8, 1, "\x03\xe8", 2), 0);
	ck_assert(!ws_idle(ws));
}
END_TEST

/* Past max_message_size (1000 here), reassembled or not: 1009. */
START_TEST(test_too_big_closes_1009)
{
	unsigned char in[2200], part[600];
	size_t n;

	memset(part, 'a', sizeof(part));
	n = frame(in, 0, 1, 1, part, sizeof(part));
	n += frame(in + n, 1, 0, 1, part, sizeof(part));
	feed(in, n, 0);
	expect_close(0, 1009);
	ck_assert(ws_finished(ws));
}
END_TEST

START_TEST(test_not_utf8_closes_1007)
{
	unsigned char in[64];

	feed(in, frame(in, 1, 1, 1, "bad \xff", 5), 0);
	expect_close(0, 1007);
	ck_assert(ws_finished(ws));
}
END_TEST

START_TEST(test_unmasked_closes_1002)
{
	unsigned char in[64];

	feed(in, frame(in, 1, 1, 0, "plain", 5), 0);
	expect_close(0, 1002);
	ck_assert(ws_finished(ws));
}
END_TEST

/* Other protocol errors RFC 6455 names: each closes with 1002. */
START_TEST(test_protocol_errors_close_1002)
{
	unsigned char in[256], big[200];
	size_t n = 0;

	memset(big, 'x', sizeof(big));
	switch (_i) {
	case 0:		/* a continuation with nothing to continue */
		n = frame(in, 1, 0, 1, "x", 1);
		break;
	case 1:		/* a new message inside a fragmented one */
		n = frame(in, 0, 1, 1, "a", 1);
		n += frame(in + n, 1, 1, 1, "b", 1);
		break;
	case 2:		/* a fragmented control frame */
		n = frame(in, 0, 9, 1, "p", 1);
		break;
	case 3:		/* a control frame longer than 125 bytes */
		n = frame(in, 1, 9, 1, big, 126);
		break;
	case 4:		/* a reserved opcode */
		n = frame(in, 1, 3, 1, "x", 1);
		break;
	case 5:		/* RSV1 without an extension */
		n = frame(in, 1, 1, 1, "x", 1);
		in[0] |= 0x40;
		break;
	}
	feed(in, n, 0);
	expect_close(0, 1002);
	ck_assert(ws_finished(ws));
}
END_TEST

/* Output above the mark stops input; draining it lets input in again,
   and nothing is lost. */
START_TEST(test_backpressure_mark)
{
	static unsigned char in[26 * 400];
	size_t n = 0, off = 0, at = 0, taken;
	int i, stopped = 0;

	/* More than one slice of input: the mark is looked at between. */
	ws_session_free(ws);
	ws = ws_session_new(1000, 32);
	for (i = 0; i < 400; i++)
		n += frame(in + n, 1, 2, 1, "0123456789abcdef0123", 20);
	while (off < n) {
		taken = ws_feed(ws, in + off, n - off);
		off += taken;
		if (off < n) {
			ck_assert(!ws_wants_input(ws));
			stopped++;
		}
		drain();
		ck_assert(ws_wants_input(ws));
	}
	ck_assert_int_gt(stopped, 0);
	for (i = 0; i < 400; i++)
		expect_frame(&at, 2, "0123456789abcdef0123", 20);
	ck_assert_uint_eq(at, ngot);
}
END_TEST

/* An idle session's heap, before and after a message went through:
   the output buffer is given back once drained. */
START_TEST(test_idle_session_memory)
{
	struct mallinfo2 before, idle, after;
	unsigned char in[1200], msg[990];
	struct ws_session *s;
	size_t n;

	memset(msg, 'm', sizeof(msg));
	before = mallinfo2();
	s = ws_session_new(1000, 1 << 16);
	idle = mallinfo2();
	ws_session_free(ws);
	ws = s;
	n = frame(in, 1, 2, 1, msg, sizeof(msg));
	feed(in, n, 0);
	after = mallinfo2();
	fprintf(stderr, "ws: idle session %zu bytes of heap\n",
	    idle.uordblks - before.uordblks);
	ck_assert_uint_le(idle.uordblks - before.uordblks, 20000);
	ck_assert_uint_le(after.uordblks, idle.uordblks + 64);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http_ws");
	TCase *tc = tcase_create("ws");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_accept_key_rfc6455_example);
	tcase_add_loop_test(tc, test_handshake, 0,
	    (int)(sizeof(hs) / sizeof(hs[0])));
	tcase_add_loop_test(tc, test_text_and_binary_echoed, 0, 3);
	tcase_add_test(tc, test_fragments_reassembled);
	tcase_add_test(tc, test_ping_gets_pong);
	tcase_add_test(tc, test_close_answered);
	tcase_add_test(tc, test_message_then_close_in_one_read);
	tcase_add_test(tc, test_message_then_1007_in_one_read);
	tcase_add_test(tc, test_idle_only_between_messages);
	tcase_add_test(tc, test_too_big_closes_1009);
	tcase_add_test(tc, test_not_utf8_closes_1007);
	tcase_add_test(tc, test_unmasked_closes_1002);
	tcase_add_loop_test(tc, test_protocol_errors_close_1002, 0, 6);
	tcase_add_test(tc, test_backpressure_mark);
	tcase_add_test(tc, test_idle_session_memory);
	suite_add_tcase(s, tc);
	return check_run(s);
}
