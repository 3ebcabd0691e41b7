/*
 * libFuzzer: the oracle's framing.  Whatever the byte stream, the
 * replies (and the verdict) must be the same whether it arrives in one
 * blob, cut at arbitrary points, or byte by byte, and whatever output
 * budget the connection gives (so whole questions wait correctly).
 *
 * Input: byte 0 picks the options, byte 1 seeds the cut points and the
 * budgets, the rest is the stream.  A trailing eof() is always called.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A connection in miniature, as conn.c runs one: held input, a budget
   of output room and of pieces, everything "sent" collected. */
struct run {
	unsigned char	*in;
	size_t		 inlen;
	unsigned char	*sent;
	size_t		 sentlen;
	uint64_t	 state[4];
	uint64_t	 rng;
	size_t		 room;
	unsigned	 maxiov;
	enum proto_verdict v;
};

static void
collect(struct run *r, const struct proto_out *out)
{
	unsigned i;

	for (i = 0; i < out->niov; i++) {
		r->sent = realloc(r->sent, r->sentlen + out->iov[i].iov_len + 1);
		memcpy(r->sent + r->sentlen, out->iov[i].iov_base,
		    out->iov[i].iov_len);
		r->sentlen += out->iov[i].iov_len;
	}
}

/*
 * One read's worth, as conn.c serves it: input(), then, while whole units
 * wait for room, "send" and call again; at EOF, eof() once input waits
 * for nothing but more bytes.
 */
static void
serve(struct run *r, const void *o, int eof)
{
	struct iovec iov[64];

	for (;;) {
		struct proto_in in = { r->in, r->inlen };
		struct proto_out out = { iov, 0, r->maxiov, 0, r->room, 0, 0,
		    &r->rng, NULL, NULL, 0, 0 };

		if (r->v == EO_PROTO_CLOSE)
			return;
		r->v = proto_oracle.input(r->state, o, &in, &out);
		if (r->v == EO_PROTO_OK && eof && !out.full) {
			r->v = proto_oracle.eof(r->state, o, &in, &out);
			if (r->v != EO_PROTO_CLOSE)
				abort();
		}
		if (in.len > r->inlen || in.data + in.len != r->in + r->inlen)
			abort();	/* took from the back, or grew */
		collect(r, &out);
		if (r->v == EO_PROTO_CLOSE)
			return;
		if (out.full && out.units == 0 && in.len == r->inlen)
			abort();	/* full without progress: a hang */
		memmove(r->in, in.data, in.len);
		r->inlen = in.len;
		if (!out.full)
			return;
	}
}

/* Feeds data cut by the PRNG seeded with seed (0: one blob, 1: bytes). */
static struct run *
feed(const void *o, const uint8_t *data, size_t len, unsigned seed,
    size_t room, unsigned maxiov)
{
	struct run *r = calloc(1, sizeof(*r));
	size_t off = 0;

	r->rng = 1;
	r->room = room;
	r->maxiov = maxiov;
	r->in = malloc(len + 1);
	r->sent = malloc(1);
	while (off < len && r->v == EO_PROTO_OK) {
		size_t n = len - off;

		if (seed == 1)
			n = 1;
		else if (seed > 1)
			n = 1 + ((size_t)rand_r(&seed) % (n < 64 ? n : 64));
		memcpy(r->in + r->inlen, data + off, n);
		r->inlen += n;
		off += n;
		serve(r, o, 0);
	}
	serve(r, o, 1);
	return r;
}

static int
same(const struct run *a, const struct run *b)
{
	return a->v == b->v && a->sentlen == b->sentlen &&
	    (a->sentlen == 0 || memcmp(a->sent, b->sent, a->sentlen) == 0);
}

static void
run_free(struct run *r)
{
	free(r->in);
	free(r->sent);
	free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run *blob, *other;
	const void *o;
	unsigned seed;

	if (size < 2)
		return 0;
	o = opts[data[0] % NOPTS];
	seed = 2u + data[1];
	data += 2;
	size -= 2;
	blob = feed(o, data, size, 0, (size_t)-1, 64);
	other = feed(o, data, size, 1, (size_t)-1, 64);
	if (!same(blob, other))
		abort();
	run_free(other);
	other = feed(o, data, size, seed, (size_t)-1, 64);
	if (!same(blob, other))
		abort();
	run_free(other);
	/* Tight budgets of bytes and of pieces: replies wait, unchanged. */
	other = feed(o, data, size, seed, 1 + (seed % 40), 2 + seed % 5);
	if (!same(blob, other))
		abort();
	run_free(other);
	run_free(blob);
	return 0;
}
