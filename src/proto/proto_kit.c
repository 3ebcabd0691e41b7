/*
 * What the protocols share: the per-worker PRNG they draw from, the
 * option parser of a protocol without options, and the end-of-input
 * handlers that close.  See include/protocol.h.
 */
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "config.h"
#include "protocol.h"

/*
 * splitmix64: one add and three multiply-xorshifts per number, state in
 * one word owned by one worker, so no locking and no shared cache line.
 * rand(3) would be both slower and a lock.
 */
static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint32_t
proto_random_rng(uint64_t *rng, uint32_t bound)
{
	/* Lemire's multiply-shift: unbiased enough for bound << 2^32. */
	uint64_t r = splitmix64(rng) >> 32;

	return (uint32_t)((r * bound) >> 32);
}

uint32_t
proto_random(struct proto_out *out, uint32_t bound)
{
	return proto_random_rng(out->rng, bound);
}

void
proto_seed(uint64_t *rng)
{
	struct timespec ts;

	if (getrandom(rng, sizeof(*rng), GRND_NONBLOCK) == sizeof(*rng))
		return;
	/* No entropy yet (early boot): still distinct per worker. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	*rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
	    (uint64_t)(uintptr_t)rng;
}

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
