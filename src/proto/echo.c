/*
 * echo (RFC 862): every byte received is sent back, unchanged and in
 * order.  No framing, no options: any bytes are a whole unit.
 */
#include <event2/buffer.h>

#include "protocol.h"

static int
echo_opts_parse(const config_setting_t *group, void **opts,
    struct cfg_diag *d)
{
	static const char *const known[] = { NULL };

	*opts = NULL;
	return group != NULL ? cfg_check_keys(d, group, known) : 0;
}

static void
echo_opts_free(void *opts)
{
	(void)opts;
}

static enum proto_verdict
echo_input(void *state, const void *opts, struct proto_io *io)
{
	size_t len = evbuffer_get_length(io->in);
	size_t queued = evbuffer_get_length(io->out);
	size_t room = io->out_room > queued ? io->out_room - queued : 0;

	(void)state;
	(void)opts;
	if (len == 0 || room == 0)
		return EO_PROTO_OK;
	/* Moving whole chains copies nothing; only a cut chain is copied. */
	if (len <= room)
		evbuffer_add_buffer(io->out, io->in);
	else
		evbuffer_remove_buffer(io->in, io->out, room);
	io->units++;
	return EO_PROTO_OK;
}

static enum proto_verdict
echo_eof(void *state, const void *opts, struct proto_io *io)
{
	(void)state;
	(void)opts;
	(void)io;
	return EO_PROTO_CLOSE;
}

const struct protocol proto_echo = {
	.name = "echo",
	.state_size = 0,
	.opts_parse = echo_opts_parse,
	.opts_free = echo_opts_free,
	.unit_timeout = NULL,
	.init = NULL,
	.input = echo_input,
	.eof = echo_eof,
};
