/*
 * libFuzzer: the oracle's framing.  Whatever the byte stream, the
 * replies (and the verdict) must be the same whether it arrives in one
 * blob, cut at arbitrary points, or byte by byte, and whatever output
 * budget the connection gives (so whole questions wait correctly).
 *
 * Input: byte 0 picks the options, byte 1 seeds the cut points and the
 * budget, the rest is the stream.  A trailing eof() is always called.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "protocol.h"

#define NOPTS 8

static void *opts[NOPTS];

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const bodies[NOPTS] = {
		"",
		"max_questions = 0;",
		"max_questions = 1; max_question_length = 1;",
		"max_questions = 3; max_question_length = 4; reply_end = \"\";",
		"max_questions = 0; max_question_length = 16; "
		    "answers = [\"A.\", \"B.\", \"C.\"];",
		"max_questions = 0; reply_end = \"\\n\"; "
		    "max_question_length = 2;",
		"max_questions = 2; answers = [\"x\"];",
		"max_questions = 0; max_question_length = 1048576;",
	};
	int i;

	(void)argc;
	(void)argv;
	for (i = 0; i < NOPTS; i++) {
		char text[512];
		struct cfg_diag d;
		config_t lc;

		snprintf(text, sizeof(text), "oracle = { %s };", bodies[i]);
		config_init(&lc);
		if (config_read_string(&lc, text) != CONFIG_TRUE)
			abort();
		cfg_diag_init(&d);
		if (proto_oracle.opts_parse(config_lookup(&lc, "oracle"),
		    &opts[i], &d) != 0)
			abort();
		cfg_diag_free(&d);
		config_destroy(&lc);
	}
	return 0;
}

struct run {
	struct evbuffer	*in, *out, *sent;
	uint64_t	 state[4];
	uint64_t	 rng;
	size_t		 room;
	enum proto_verdict v;
};

/*
 * One call, as conn.c makes them: input(), then, while whole units wait
 * for room, "send" the output and call again; at EOF, eof() once input
 * waits for nothing but more bytes.
 */
static void
serve(struct run *r, const void *o, int eof)
{
	for (;;) {
		struct proto_io io = { r->in, r->out, r->room, 0, &r->rng };
		size_t before = evbuffer_get_length(r->in);
		int blocked;

		if (r->v == EO_PROTO_CLOSE)
			return;
		r->v = proto_oracle.input(r->state, o, &io);
		blocked = r->v == EO_PROTO_OK && evbuffer_get_length(r->in) > 0 &&
		    evbuffer_get_length(r->out) >= r->room;
		evbuffer_add_buffer(r->sent, r->out);
		if (r->v == EO_PROTO_CLOSE)
			return;
		if (blocked) {
			if (evbuffer_get_length(r->in) == before && io.units == 0)
				abort();	/* no progress with room: a hang */
			continue;
		}
		if (eof) {
			struct proto_io e = { r->in, r->sent, r->room, 0,
			    &r->rng };

			r->v = proto_oracle.eof(r->state, o, &e);
			if (r->v != EO_PROTO_CLOSE)
				abort();
		}
		return;
	}
}

/* Feeds data cut by the PRNG seeded with seed (0: one blob, 1: bytes). */
static struct evbuffer *
feed(const void *o, const uint8_t *data, size_t len, unsigned seed,
    size_t room, enum proto_verdict *v)
{
	struct run r;
	size_t off = 0;

	memset(&r, 0, sizeof(r));
	r.in = evbuffer_new();
	r.out = evbuffer_new();
	r.sent = evbuffer_new();
	r.rng = 1;
	r.room = room;
	while (off < len && r.v == EO_PROTO_OK) {
		size_t n = len - off;

		if (seed == 1)
			n = 1;
		else if (seed > 1)
			n = 1 + ((size_t)rand_r(&seed) % (n < 64 ? n : 64));
		evbuffer_add(r.in, data + off, n);
		off += n;
		serve(&r, o, 0);
	}
	serve(&r, o, 1);
	*v = r.v;
	evbuffer_free(r.in);
	evbuffer_free(r.out);
	return r.sent;
}

static int
same(struct evbuffer *a, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(a);
	unsigned char *pa, *pb;

	if (n != evbuffer_get_length(b))
		return 0;
	pa = evbuffer_pullup(a, -1);
	pb = evbuffer_pullup(b, -1);
	return n == 0 || memcmp(pa, pb, n) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum proto_verdict v0, v;
	struct evbuffer *blob, *other;
	const void *o;
	unsigned seed;

	if (size < 2)
		return 0;
	o = opts[data[0] % NOPTS];
	seed = 2u + data[1];
	data += 2;
	size -= 2;
	blob = feed(o, data, size, 0, (size_t)-1, &v0);
	other = feed(o, data, size, 1, (size_t)-1, &v);
	if (!same(blob, other) || v != v0)
		abort();
	evbuffer_free(other);
	other = feed(o, data, size, seed, (size_t)-1, &v);
	if (!same(blob, other) || v != v0)
		abort();
	evbuffer_free(other);
	/* A tight budget: output waits, order and content do not change. */
	other = feed(o, data, size, seed, 1 + (seed % 40), &v);
	if (!same(blob, other) || v != v0)
		abort();
	evbuffer_free(other);
	evbuffer_free(blob);
	return 0;
}
