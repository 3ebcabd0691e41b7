/*
 * The monotonic clock, in the two grains the daemon needs: wrapping
 * milliseconds for per-connection deadlines, seconds for the rest.
 *
 * CLOCK_MONOTONIC_COARSE is read from the vDSO without a system call and
 * is as fine as a tick (1 to 4 ms): plenty for timeouts counted in
 * seconds, and it never jumps with the wall clock.  Any thread.
 */
#ifndef EO_CLOCK_H
#define EO_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds, wrapping every 49 days: compare with mono_since(). */
static inline uint32_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000);
}

/* Milliseconds from then to now, right across a wrap. */
static inline uint32_t
mono_since(uint32_t now, uint32_t then)
{
	return now - then;
}

/* Whole seconds. */
static inline time_t
mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

#endif
