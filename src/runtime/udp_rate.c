/*
 * The per-source reply rate limit of a UDP listener: see
 * include/udp_rate.h.  Made on the main thread, checked from any
 * worker's.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "udp_rate.h"

/*
 * The per-source reply rate limit of one listener, shared by its
 * sockets and so by the workers that serve them: a count-min sketch of
 * GCRA theoretical arrival times.  A source's TAT is kept in one cell
 * of each of EO_RATE_ROWS rows, each row hashed apart; its estimate is
 * the least of its cells, and an allowed reply raises each of its cells
 * to its new TAT, never lowers one (the conservative update).  So every
 * cell is at least the TAT of each source that maps to it, the estimate
 * is never below the source's own, and no crowd of other sources can
 * give a source a fresh burst: crowding over-counts (a source whose
 * cells are all busy with others may be refused early), it never
 * under-counts.  A table of one slot per source (what this replaced)
 * under-counts: a forged source that lands in the victim's slot resets
 * the victim, whose next datagram starts a new burst.  An LRU set per
 * bucket under-counts the same way once enough sources pass through a
 * bucket; a limit against reflection must err the other way.
 *
 * Cells are atomics, read and raised with compare-and-swap, without a
 * lock: two workers that judge one source at the same instant may both
 * answer it on the same estimate, one reply more for each such race.
 */
#define EO_RATE_ROWS	4

struct udp_rate {
	atomic_uint		 refs;
	size_t			 width;		/* cells per row */
	uint64_t		 seed;
	_Atomic uint64_t	*cells;		/* EO_RATE_ROWS rows */
};

int
udp_rate_allow(uint64_t *tat, uint64_t now_us, uint32_t rate)
{
	uint64_t interval, tau, t;

	if (rate == 0)
		return 1;
	interval = 1000000 / rate;
	if (interval == 0)
		interval = 1;
	tau = interval * (rate - 1);
	t = *tat > now_us ? *tat : now_us;
	if (t - now_us > tau)
		return 0;
	*tat = t + interval;
	return 1;
}

struct udp_rate *
udp_rate_new(size_t width, uint64_t seed)
{
	struct udp_rate *t = calloc(1, sizeof(*t));
	size_t i;

	if (t == NULL || width == 0 ||
	    (t->cells = calloc(width * EO_RATE_ROWS, sizeof(*t->cells))) ==
	    NULL) {
		free(t);
		return NULL;
	}
	for (i = 0; i < width * EO_RATE_ROWS; i++)
		atomic_init(&t->cells[i], 0);
	atomic_init(&t->refs, 1);
	t->width = width;
	t->seed = seed;
	return t;
}

size_t
udp_rate_width(const struct udp_rate *t)
{
	return t->width;
}

void
udp_rate_ref(struct udp_rate *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void
udp_rate_unref(struct udp_rate *t)
{
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1,
	    memory_order_acq_rel) != 1)
		return;
	free(t->cells);
	free(t);
}

/* A 64-bit mix (splitmix64's finaliser): every input bit moves all. */
static uint64_t
udp_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The key's cell in each row: two hashes, combined (Kirsch and
   Mitzenmacher), seeded per table so that sources cannot be chosen to
   share a victim's cells. */
static void
udp_rate_cells(const struct udp_rate *t, const void *key, size_t len,
    size_t *cell)
{
	const unsigned char *k = key;
	uint64_t h = t->seed ^ 0xcbf29ce484222325ULL, h1, h2;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ k[i]) * 0x100000001b3ULL;
	h1 = udp_mix(h);
	h2 = udp_mix(h1 ^ t->seed) | 1;
	for (i = 0; i < EO_RATE_ROWS; i++)
		cell[i] = i * t->width + (size_t)((h1 + i * h2) % t->width);
}

int
udp_rate_check(struct udp_rate *t, const void *key, size_t len,
    uint64_t now_us, uint32_t rate)
{
	size_t cell[EO_RATE_ROWS], i;
	uint64_t tat = UINT64_MAX, c;

	if (rate == 0)
		return 1;
	udp_rate_cells(t, key, len, cell);
	for (i = 0; i < EO_RATE_ROWS; i++) {
		c = atomic_load_explicit(&t->cells[cell[i]],
		    memory_order_relaxed);
		if (c < tat)
			tat = c;
	}
	if (!udp_rate_allow(&tat, now_us, rate))
		return 0;
	for (i = 0; i < EO_RATE_ROWS; i++) {
		c = atomic_load_explicit(&t->cells[cell[i]],
		    memory_order_relaxed);
		while (c < tat && !atomic_compare_exchange_weak_explicit(
		    &t->cells[cell[i]], &c, tat, memory_order_relaxed,
		    memory_order_relaxed))
			;
	}
	return 1;
}
