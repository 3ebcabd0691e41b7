/*
 * chargen (RFC 864): lines of 72 printable ASCII characters, CR LF
 * ended, each starting one character further along the 95 from ' ' to
 * '~', for as long as the client reads; input is dropped.
 *
 * The 95 lines of one cycle are made once per listener (7030 bytes), so
 * the stream is slices of them: one iovec per cycle, no formatting and
 * no copy on the way to the socket.  The connection asks for output
 * only while its queue has room, so a client that stops reading costs
 * no more than a client of echo that stops reading.
 */
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define CHARGEN_CHARS	95	/* ' ' to '~' */
#define CHARGEN_WIDTH	72	/* characters in a line */
#define CHARGEN_LINE	(CHARGEN_WIDTH + 2)
#define CHARGEN_CYCLE	(CHARGEN_CHARS * CHARGEN_LINE)
#define CHARGEN_DGRAM	512	/* most a datagram reply carries */

struct chargen_opts {
	unsigned char	 cycle[CHARGEN_CYCLE];
};

struct chargen_state {
	uint32_t	 pos;		/* next byte, in the cycle */
};

static int
chargen_opts_parse(const config_setting_t *group, void **optsp,
    struct cfg_diag *d)
{
	static const char *const known[] = { NULL };
	struct chargen_opts *o;
	unsigned i, j;

	*optsp = NULL;
	if (group != NULL && cfg_check_keys(d, group, known) < 0)
		return -1;
	if ((o = malloc(sizeof(*o))) == NULL) {
		cfg_error(d, group, "out of memory");
		return -1;
	}
	for (i = 0; i < CHARGEN_CHARS; i++) {
		unsigned char *line = o->cycle + i * CHARGEN_LINE;

		for (j = 0; j < CHARGEN_WIDTH; j++)
			line[j] = (unsigned char)(' ' + (i + j) % CHARGEN_CHARS);
		line[CHARGEN_WIDTH] = '\r';
		line[CHARGEN_WIDTH + 1] = '\n';
	}
	*optsp = o;
	return 0;
}

static void
chargen_opts_free(void *opts)
{
	free(opts);
}

/* Fills the room: slices of the cycle, from where the last call ended. */
static enum proto_verdict
chargen_produce(void *vstate, const void *vopts, struct proto_out *out)
{
	struct chargen_state *st = vstate;
	const struct chargen_opts *o = vopts;

	/* Carried across a restart, the position is only as good as the
	   saved state: never a slice from past the cycle. */
	if (st->pos >= CHARGEN_CYCLE)
		st->pos = 0;
	while (proto_room(out, 1)) {
		size_t n = CHARGEN_CYCLE - st->pos;

		if (n > out->room - out->len)
			n = out->room - out->len;
		proto_put(out, o->cycle + st->pos, n);
		st->pos = (uint32_t)((st->pos + n) % CHARGEN_CYCLE);
	}
	return EO_PROTO_OK;
}

/* Input is dropped; it is progress all the same. */
static enum proto_verdict
chargen_input(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	(void)state;
	(void)opts;
	if (in->len > 0) {
		proto_take(in, in->len);
		out->units++;
	}
	return EO_PROTO_OK;
}

/* RFC 864 over UDP: a random number, 0 to 512, of the characters. */
static size_t
chargen_dgram(const void *vopts, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, uint64_t *rng)
{
	const struct chargen_opts *o = vopts;
	size_t n = proto_random_rng(rng, CHARGEN_DGRAM + 1);

	(void)in;
	(void)inlen;
	if (n > outcap)
		n = outcap;
	memcpy(out, o->cycle, n);
	return n;
}

const struct protocol proto_chargen = {
	.name = "chargen",
	.state_size = sizeof(struct chargen_state),
	.state_version = 1,
	.opts_parse = chargen_opts_parse,
	.opts_free = chargen_opts_free,
	.input = chargen_input,
	.eof = proto_eof_close,
	.close_why = NULL,		/* the client ends it */
	.produce = chargen_produce,
	.dgram = chargen_dgram,
	.amplifies = 1,
};
