/*
 * time (RFC 868): at connect, the time as 32 bits in network order,
 * seconds since 1900-01-01 00:00 UTC, then close.
 *
 * 32 bits wrap on 2036-02-07 06:28:16 UTC.  What is sent is the RFC's
 * value modulo 2^32, as rdate(8) and other clients expect: they read a
 * small value as the era that began then (era 1), not as 1900.
 */
#include <time.h>

#include "protocol.h"

/* Seconds from 1900-01-01 to 1970-01-01: 70 years, 17 of them leap. */
#define TIME_EPOCH_1900	2208988800ULL

struct time_state {
	unsigned char	 value[4];
};

/* The four bytes for now, big-endian. */
static void
time_value(unsigned char *p)
{
	struct timespec ts;
	uint32_t v;

	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint32_t)(((uint64_t)ts.tv_sec + TIME_EPOCH_1900) & 0xffffffffu);
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static enum proto_verdict
time_greet(void *vstate, const void *opts, struct proto_out *out)
{
	struct time_state *st = vstate;

	(void)opts;
	time_value(st->value);
	if (proto_room(out, 1))
		proto_put(out, st->value, sizeof(st->value));
	return EO_PROTO_CLOSE;
}

static const char *
time_close_why(const void *state, const void *opts)
{
	(void)state;
	(void)opts;
	return "time sent";
}

static size_t
time_dgram(const void *opts, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, uint64_t *rng)
{
	(void)opts;
	(void)in;
	(void)inlen;
	(void)rng;
	if (outcap < 4)
		return 0;
	time_value(out);
	return 4;
}

const struct protocol proto_time = {
	.name = "time",
	.state_size = sizeof(struct time_state),
	.state_version = 1,
	.opts_parse = proto_no_opts_parse,
	.opts_free = proto_no_opts_free,
	.input = proto_drop_close,
	.eof = proto_drop_close,
	.close_why = time_close_why,
	.greet = time_greet,
	.dgram = time_dgram,
	.amplifies = 1,
};
