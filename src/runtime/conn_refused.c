/*
 * A connection refused after the accept (a bad PROXY header, allow or
 * deny, the per-source limit, a failed TLS handshake) is counted in the
 * worker's and the listener's slots and noted for the burst line.  The
 * caller closes it: this file calls nothing of a connection's, so that
 * the PROXY phase and the TLS transport share it without calling each
 * other.  Worker thread only.
 */
#include "conn_int.h"

void
conn_count_refusal(struct conn *c, enum stats_refusal reason,
    const char *who, unsigned limit)
{
	struct conn_home *h = c->c_home;

	stats_bump(&h->st->refused[reason], 1);
	stats_bump(&c->c_st->refused[reason], 1);
	stats_note(h->stats, reason, c->c_lc->name, who, limit);
}
