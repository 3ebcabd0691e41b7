/*
 * The signals the daemon handles: see include/signals.h.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "signals.h"

/* What a daemon is commonly sent; SIGPIPE is ignored in main(). */
const int signals_handled[EO_NSIGNALS] = {
	SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2
};

void
signals_mask(int how, sigset_t *old)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < EO_NSIGNALS; i++)
		sigaddset(&set, signals_handled[i]);
	pthread_sigmask(how, &set, old);
}
