/*
 * The per-worker PRNG the protocols draw from (oracle's answers,
 * qotd's quotes, chargen's datagram sizes), also seeding the runtime's
 * own (the UDP rate table's hash seed).  A file of its own: it calls
 * nothing, so that a connection's or a listener's file that seeds one
 * does not reach the protocols' option kit.  See include/protocol.h.
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
