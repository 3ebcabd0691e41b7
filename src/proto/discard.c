/*
 * discard (RFC 863): everything received is thrown away, at full speed;
 * nothing is ever sent.  Bytes read are progress, so idle_timeout
 * closes only a client that stops sending.
 */
#include "protocol.h"

static enum proto_verdict
discard_input(void *state, const void *opts, struct proto_in *in,
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

/* No reply, ever: nothing to reflect or amplify. */
static size_t
discard_dgram(const void *opts, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, uint64_t *rng)
{
	(void)opts;
	(void)in;
	(void)inlen;
	(void)out;
	(void)outcap;
	(void)rng;
	return 0;
}

const struct protocol proto_discard = {
	.name = "discard",
	.state_size = 0,
	.opts_parse = proto_no_opts_parse,
	.opts_free = proto_no_opts_free,
	.input = discard_input,
	.eof = proto_eof_close,
	.close_why = NULL,		/* only the client's EOF ends it */
	.dgram = discard_dgram,
	.amplifies = 0,
};
