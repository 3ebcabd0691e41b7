/*
 * What the protocols share: the option parser of a protocol without
 * options, and the end-of-input handlers that close (their PRNG is
 * proto_rng.c).  See include/protocol.h.
 */
#include <stdint.h>

#include "config.h"
#include "protocol.h"

int
proto_no_opts_parse(const config_setting_t *group, void **opts,
    struct cfg_diag *d)
{
	static const char *const known[] = { NULL };

	*opts = NULL;
	return group != NULL ? cfg_check_keys(d, group, known) : 0;
}

void
proto_no_opts_free(void *opts)
{
	(void)opts;
}

enum proto_verdict
proto_eof_close(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	(void)state;
	(void)opts;
	(void)in;
	(void)out;
	return EO_PROTO_CLOSE;
}

enum proto_verdict
proto_drop_close(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	(void)state;
	(void)opts;
	(void)out;
	proto_take(in, in->len);
	return EO_PROTO_CLOSE;
}
