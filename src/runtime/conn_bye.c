/*
 * The daemon stops or restarts: a protocol that has words for that (a
 * WebSocket's close 1001, "going away") says them before the connection
 * is flushed and closed.  Called by the drain (conn_home.c) and by a
 * restart's export of what it cannot carry (conn_carry.c).
 */
#include "conn_int.h"

/* 0, or -1 if the connection was closed (a failed send). */
int
conn_going_away(struct conn *c)
{
	const struct protocol *p = c->c_lc->proto;
	struct proto_out out;

	if (p->going_away == NULL || c->c_state != EO_CONN_SERVING ||
	    (c->c_flags & EO_CF_DONE))
		return 0;
	conn_out_init(c, &out);
	(void)p->going_away(c->c_pstate, c->c_lc->popts, &out);
	if (conn_send(c, &out) == -1)
		return -1;
	if (p->released != NULL)
		p->released(c->c_pstate);
	return 0;
}
