/*
 * The protocol table and the per-worker PRNG protocols draw from.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "protocol.h"

static const struct protocol *const protocols[] = {
	&proto_echo,
	&proto_oracle,
	&proto_discard,
	&proto_chargen,
	&proto_daytime,
	&proto_time,
	&proto_qotd,
	&proto_metrics,
};

#define NPROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

const struct protocol *
protocol_find(const char *name)
{
	size_t i;

	for (i = 0; i < NPROTOCOLS; i++)
		if (strcmp(protocols[i]->name, name) == 0)
			return protocols[i];
	return NULL;
}

const char *
protocol_names(void)
{
	static char names[128];
	size_t i, len = 0;

	if (names[0] != '\0')
		return names;
	for (i = 0; i < NPROTOCOLS && len < sizeof(names); i++) {
		int n = snprintf(names + len, sizeof(names) - len, "%s%s",
		    i > 0 ? ", " : "", protocols[i]->name);
		if (n > 0)
			len += (size_t)n;
	}
	return names;
}

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
