/*
 * libFuzzer: the HTTP request path, reader to response.  Whatever the
 * bytes, the requests, statuses and responses must be the same whether
 * they arrive in one blob, byte by byte or cut at random points; every
 * response must be framed (a head that ends, a Content-Length that
 * matches) and its JSON valid UTF-8.
 *
 * A request that breaks two rules may be refused for either, depending
 * on where the reads end (http_parser reports a bad byte before or after
 * the header bytes that pass max_header_size): the runs must agree that
 * it is refused, not on the status.
 *
 * Input: byte 0 picks the options, byte 1 seeds the cut points, the
 * rest is the stream a client sends.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "ws.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct http_conn_info info = {
	.client_addr = "127.0.0.1", .client_port = 1, .server_host = "fuzz",
	.listener = "web", .tls = 1, .tls_version = "TLSv1.3",
};

/* The head ends, and the body is as long as Content-Length says. */
static void
check_framing(const struct http_buf *b, size_t from, int head_only)
{
	const char *p = b->p + from, *end, *cl;
	size_t len = b->len - from;

	end = memmem(p, len, "\r\n\r\n", 4);
	if (end == NULL)
		abort();
	cl = memmem(p, (size_t)(end - p), "Content-Length: ", 16);
	if (!head_only && cl != NULL &&
	    strtoull(cl + 16, NULL, 10) != (size_t)(p + len - (end + 4)))
		abort();
	if (memchr(p, '\0', (size_t)(end - p)) != NULL)
		abort();	/* nothing smuggled into the head */
}

/* One request answered as the connection will: controls, respond. */
static void
answer(struct http_reader *r, enum http_rd v, struct http_buf *out)
{
	struct http_controls c;
	char why[256];
	size_t from = out->len;
	int st;

	if (v == HTTP_RD_UPGRADE) {
		ws_handshake(r, out);
		check_framing(out, from, 1);
		return;
	}
	if ((st = http_controls_get(r, &c, why, sizeof(why))) != 0) {
		http_respond_error(st, why, out);
		check_framing(out, from, 0);
		return;
	}
	if (http_respond(r, &info, &c, out) != 0)
		return;
	if (r->req.method != HTTP_HEAD && !c.sized)
		check_framing(out, from, 0);
	/* A JSON body is valid UTF-8 whatever the request held (a head may
	   carry an echo_header's obs-text; a text body is the raw bytes). */
	if (!c.sized && r->opts->format == HTTP_FMT_JSON &&
	    http_find_header(r, "Accept") == NULL) {
		const char *b = memmem(out->p + from, out->len - from,
		    "\r\n\r\n", 4) + 4;

		if (!http_utf8_valid((const unsigned char *)b,
		    (size_t)(out->p + out->len - b)))
			abort();
	}
}

/* Feeds data cut by seed (0: one blob, 1: bytes); all output in out. */
static void
run(const struct http_opts *o, const uint8_t *data, size_t len,
    unsigned seed, struct http_buf *out)
{
	struct http_reader r;
	char *held = malloc(len + 1);
	size_t heldlen = 0, off = 0, used;
	enum http_rd v = HTTP_RD_MORE;

	http_reader_init(&r, o);
	while (off < len || heldlen > 0) {
		size_t n = len - off;

		if (seed == 1 && n > 0)
			n = 1;
		else if (seed > 1 && n > 0)
			n = 1 + (size_t)rand_r(&seed) % (n < 64 ? n : 64);
		memcpy(held + heldlen, data + off, n);
		heldlen += n;
		off += n;
		v = http_reader_feed(&r, held, heldlen, &used);
		if (used > heldlen)
			abort();
		memmove(held, held + used, heldlen - used);
		heldlen -= used;
		if (v == HTTP_RD_REQUEST || v == HTTP_RD_UPGRADE) {
			answer(&r, v, out);
			http_reader_next(&r);
		} else if (v == HTTP_RD_CONTINUE)
			http_buf_str(out, http_continue_line);
		else if (v == HTTP_RD_ERROR) {
			struct http_buf e = { 0 };

			if (http_respond_error(r.status, "bad", &e) != 0)
				abort();
			check_framing(&e, 0, 0);
			http_buf_free(&e);
			http_buf_str(out, "(refused)");
			break;
		} else if (v == HTTP_RD_CLOSED)
			break;
		else if (used == 0 && n == 0)
			break;	/* MORE with nothing new: wait for input */
		if (r.arena != NULL && r.cap > 2u * o->max_header_size +
		    o->max_body_size + 4096)
			abort();	/* the bound the header promises */
	}
	http_reader_free(&r);
	free(held);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_buf blob = { 0 }, other = { 0 };
	struct http_opts o;

	if (size < 2)
		return 0;
	http_opts_parse(NULL, &o, NULL);
	if (data[0] & 1) {
		o.max_header_size = 256;
		o.max_body_size = 64;
	}
	o.format = data[0] & 2 ? HTTP_FMT_TEXT : HTTP_FMT_JSON;
	o.max_requests = (data[0] >> 2) & 3;
	o.max_response_size = 100;
	run(&o, data + 2, size - 2, 0, &blob);
	run(&o, data + 2, size - 2, 1, &other);
	if (blob.len != other.len || (blob.len > 0 &&
	    memcmp(blob.p, other.p, blob.len) != 0))
		abort();
	http_buf_free(&other);
	run(&o, data + 2, size - 2, 2u + data[1], &other);
	if (blob.len != other.len || (blob.len > 0 &&
	    memcmp(blob.p, other.p, blob.len) != 0))
		abort();
	http_buf_free(&other);
	http_buf_free(&blob);
	return 0;
}
