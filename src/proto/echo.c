/*
 * echo (RFC 862): every byte received is sent back, unchanged and in
 * order.  No framing, no options: any bytes are a whole unit, and the
 * reply is the input itself, not a copy.
 */
#include <string.h>

#include "protocol.h"

static enum proto_verdict
echo_input(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	size_t n;

	(void)state;
	(void)opts;
	if (in->len == 0 || !proto_room(out, 1))
		return EO_PROTO_OK;
	n = out->room - out->len;
	if (n > in->len)
		n = in->len;
	proto_put(out, in->data, n);
	proto_take(in, n);
	out->units++;
	if (in->len > 0)
		out->full = 1;		/* the rest waits for room */
	return EO_PROTO_OK;
}

/* The datagram back, whole: the reply is never bigger than the request. */
static size_t
echo_dgram(const void *opts, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, uint64_t *rng)
{
	(void)opts;
	(void)rng;
	if (inlen > outcap)
		return 0;
	if (inlen > 0)
		memcpy(out, in, inlen);
	return inlen;
}

const struct protocol proto_echo = {
	.name = "echo",
	.state_size = 0,
	.opts_parse = proto_no_opts_parse,
	.opts_free = proto_no_opts_free,
	.unit_timeout = NULL,
	.unit_timeout_name = NULL,
	.init = NULL,
	.input = echo_input,
	.eof = proto_eof_close,
	.close_why = NULL,		/* only the client's EOF ends it */
	.dgram = echo_dgram,
	.amplifies = 0,
};
