/*
 * libFuzzer: protocol = "http" as the connection drives it (proto_http:
 * input() on what is read, cut at random points, with the room a queue
 * leaves; produce() for a sized body or WebSocket output; released()
 * after each call; a pause answered by calling again; fini() at the
 * end).  The contract the connection relies on must hold whatever the
 * bytes: input is taken only from the front, a call that reports "full"
 * with room took input or gave output, pieces are inside the output's
 * limits, and nothing leaks or is touched after it is freed (ASan).
 *
 * Input: byte 0 seeds the cut points and the room, the rest is the
 * stream a client sends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct proto_conn_info info = {
	.listener = "web", .client_addr = "127.0.0.1", .client_port = 1,
};

/* The facts, given on demand as the connection gives them. */
static const struct proto_conn_info *
info_get(const struct proto_info_src *src)
{
	(void)src;
	return &info;
}

static const struct proto_info_src info_src = { info_get };

/* One call's output, checked and "sent" (read through). */
static void
sent(const struct proto_out *out)
{
	size_t i, len = 0;
	volatile unsigned char sink = 0;

	if (out->niov > out->maxiov)
		abort();
	for (i = 0; i < out->niov; i++) {
		const unsigned char *p = out->iov[i].iov_base;

		len += out->iov[i].iov_len;
		if (out->iov[i].iov_len > 0)
			sink ^= p[0] ^ p[out->iov[i].iov_len - 1];
	}
	if (len != out->len)
		abort();
	(void)sink;
}

static void
out_init(struct proto_out *out, struct iovec *iov, size_t room,
    uint64_t *rng)
{
	memset(out, 0, sizeof(*out));
	out->iov = iov;
	out->maxiov = 64;
	out->room = room;
	out->rng = rng;
	out->info = &info_src;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *opts;
	const struct protocol *p = &proto_http;
	struct iovec iov[64];
	struct proto_out out;
	struct proto_in in;
	uint64_t rng = 1;
	unsigned seed;
	void *state;
	size_t at = 1, rounds = 0, left = 0;

	if (size < 1)
		return 0;
	if (opts == NULL) {
		struct cfg_diag d;

		cfg_diag_init(&d);
		if (p->opts_parse(NULL, &opts, &d) == -1)
			abort();
		cfg_diag_free(&d);
	}
	seed = data[0];
	if ((state = calloc(1, p->state_size)) == NULL)
		return 0;
	p->init(state, opts);
	while (at < size && rounds++ < 10000) {
		size_t cut = 1 + (size_t)((seed = seed * 1103515245u + 12345u)
		    >> 16) % 64, room = (seed & 0x100) ? 1024 : 131072;
		size_t len = cut < size - at ? cut : size - at;

		/* What the last call left comes back whole, as the
		   connection's held input does, with or without more. */
		if (len < left)
			len = left;

		in.data = data + at;
		in.len = len;
		out_init(&out, iov, room, &rng);
		if (p->input(state, opts, &in, &out) == EO_PROTO_CLOSE) {
			sent(&out);
			break;
		}
		if (in.data < data + at || in.data + in.len != data + at + len)
			abort();	/* taken from the front only */
		if (out.full && in.len == len && out.len == 0 && room > 0)
			abort();	/* the serve loop would spin */
		sent(&out);
		p->released(state);
		at += len - in.len;
		left = in.len;
		out_init(&out, iov, room, &rng);
		if (p->produce(state, opts, &out) == EO_PROTO_CLOSE) {
			sent(&out);
			break;
		}
		sent(&out);
		p->released(state);
	}
	p->fini(state);
	free(state);
	return 0;
}
