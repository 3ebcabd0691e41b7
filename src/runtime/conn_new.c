/*
 * A connection made from a hand-off, or the hand-off refused and given
 * back: what the worker's adoption (conn_home.c) and a restart's import
 * (conn_carry.c) both need, apart from either, so that the import makes
 * its connections without reaching the sweep, the drain and the phases
 * that conn_home.c calls.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "stats.h"
#include "conn_int.h"

void
conn_handoff_release(struct stats *stats, const struct conn_handoff *ho)
{
	close(ho->fd);
	stats_sub(&stats->conns, 1);
	listener_release(ho->lis, &ho->peer, ho->per_source);
	cfg_unref(ho->lc->cfg);
}

void
conn_refuse(struct conn_home *h, const struct conn_handoff *ho,
    enum stats_refusal reason, const char *why)
{
	if (log_enabled(EO_LOG_DEBUG)) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[EO_ADDR_TEXT_MAX] = "?";

		/* No id yet: the client's address and port name it. */
		if (getpeername(ho->fd, (struct sockaddr *)&ss, &sl) == 0)
			peer_format((struct sockaddr *)&ss, peer, sizeof(peer));
		log_debug("listener %s: connection from %s refused: %s",
		    ho->lc->name, peer, why);
	}
	stats_bump(&h->st->refused[reason], 1);
	stats_bump(&stats_slot(listener_stats(ho->lis), h->id)->
	    refused[reason], 1);
	atomic_fetch_sub_explicit(&h->load, 1, memory_order_relaxed);
	conn_handoff_release(h->stats, ho);
}

/* A connection for ho, serving; NULL if it cannot be watched. */
struct conn *
conn_new(struct conn_home *h, const struct conn_handoff *ho, uint32_t now)
{
	const struct protocol *p = ho->lc->proto;
	size_t ps = (p->state_size + 7) & ~(size_t)7;
	struct conn *c;

	/*
	 * malloc(), then zeroed in two pieces, not calloc(): glibc's
	 * calloc() (2.36) bypasses the thread's cache of freed chunks, and
	 * took 460 instructions a connection with free() where these take
	 * 170 (tests/bench/README.md, "The connection's allocation").  One
	 * memset() of the whole is folded back into calloc() by GCC.
	 */
	if ((c = malloc(sizeof(*c) + ps)) == NULL)
		return NULL;
	memset(c, 0, sizeof(*c));
	memset(c->c_pstate, 0, ps);
	/* Parked from the start: an event only once it proves busy. */
	c->c_io = (uintptr_t)ho->fd << 1 | 1;
	c->c_home = h;
	if (conn_io_add(c) == -1) {
		free(c);
		return NULL;
	}
	c->c_lis = ho->lis;
	c->c_st = stats_slot(listener_stats(ho->lis), h->id);
	c->c_lc = ho->lc;
	c->c_peer = ho->peer;
	c->c_port = ho->port;
	c->c_flags = EO_CF_READING | (ho->per_source ? EO_CF_SOURCE : 0);
	c->c_id = ++h->last_id;
	c->c_t_start = now;
	c->c_t_progress = now;
	conn_set_state(c, ho->lc->proxy_protocol ? EO_CONN_PROXY :
	    EO_CONN_SERVING);
	if (p->init != NULL)
		p->init(c->c_pstate, ho->lc->popts);
	return c;
}
