/*
 * The signals the daemon handles, in one list: the server makes an
 * event of each, and a restart blocks them all across its exec.  Any
 * thread.
 */
#ifndef EO_SIGNALS_H
#define EO_SIGNALS_H

#include <signal.h>

#define EO_NSIGNALS	5

/* SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2. */
extern const int signals_handled[EO_NSIGNALS];

/* Blocks (SIG_BLOCK) or unblocks them in the calling thread; the mask
   before into *old unless NULL. */
void	signals_mask(int how, sigset_t *old);

#endif
