/*
 * The worker's side of its connections: adoption of a handed-off
 * socket, the per-second sweep of timeouts, drain and close at stop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "clock.h"
#include "config.h"
#include "conn.h"
#include "handover.h"
#include "log.h"
#include "protocol.h"
#include "proxy.h"
#include "stats.h"
#include "tls.h"
#include "conn_int.h"

/* ---- the worker's side -------------------------------------------- */

int
conn_home_init(struct conn_home *h, struct event_base *base,
    struct stats *stats, unsigned id)
{
	memset(h, 0, sizeof(*h));
	h->base = base;
	h->stats = stats;
	h->st = stats_slot(stats->all, id);
	h->id = id;
	TAILQ_INIT(&h->conns);
	atomic_init(&h->load, 0);
	proto_seed(&h->rng);
	h->proxy = &conn_phase_proxy;
	h->tls = &conn_xprt_tls;
	if ((h->rbuf = malloc(EO_READ_CHUNK)) == NULL)
		return -1;
	return conn_park_init(h);
}

void
conn_home_fini(struct conn_home *h)
{
	conn_close_all(h, "shutdown");
	conn_park_fini(h);
	free(h->rbuf);
	h->rbuf = NULL;
}

/* Closes the connection that made no progress for longest, if it is
   quiet enough; returns whether one was closed. */
static int
conn_evict(struct conn_home *h, uint32_t now, uint32_t secs)
{
	struct conn *c = TAILQ_FIRST(&h->conns);

	if (c == NULL || mono_since(now, c->c_t_progress) < secs * 1000u)
		return 0;
	conn_close(c, "evicted");
	return 1;
}

/* The accept line, with the port accept(2) gave (conn_handoff). */
static void
conn_log_accept(struct conn *c)
{
	char peer[EO_ADDR_TEXT_MAX];

	/* Behind a proxy the line waits for the header to name the client
	   (conn_proxy_log); the port kept names the proxy until then. */
	if (c->c_state == EO_CONN_PROXY)
		return;
	conn_peer_text(c, peer, sizeof(peer));
	log_debug("listener %s: conn %u.%u accepted from %s", c->c_lc->name,
	    c->c_home->id, c->c_id, peer);
}

static void conn_drain(struct conn *c);

void
conn_adopt(struct conn_home *h, const struct conn_handoff *ho)
{
	uint32_t now = mono_ms();
	struct conn *c;

	/* Draining, a client still comes if a worker accepted it before
	   the stop and handed it here after: it is drained as if it had
	   come first (a bare close with its input unread would reset it). */
	if (!h->draining && ho->evict && !conn_evict(h, now, ho->evict_after)) {
		conn_refuse(h, ho, EO_REFUSED_FULL,
		    "max_connections reached, none quiet");
		return;
	}
	if ((c = conn_new(h, ho, now)) == NULL) {
		conn_refuse(h, ho, EO_REFUSED_OTHER,
		    "out of memory or cannot watch the socket");
		return;
	}
	TAILQ_INSERT_TAIL(&h->conns, c, c_entry);
	h->nconns++;
	if (log_enabled(EO_LOG_DEBUG))
		conn_log_accept(c);
	if (h->draining) {
		conn_drain(c);
		return;
	}
	if (c->c_lc->tls != NULL && c->c_state == EO_CONN_SERVING) {
		conn_tls_start(c);	/* the protocol starts once done */
		return;
	}
	if (c->c_lc->proto->greet != NULL || c->c_lc->proto->produce != NULL)
		conn_start(c);
}

/*
 * Output waits, here or in the kernel: has the client taken any since
 * the last look?  Bytes it acknowledged are progress, for the idle and
 * the write clock alike, however slowly they come.  The bufferevent's
 * signs of progress come too rarely for a slow reader: Linux reports a
 * socket writable only once a third of its send buffer (megabytes,
 * autotuned) is free.  One ioctl(SIOCOUTQ), asked only of connections
 * that made no other progress for EO_LOOK_MS.  Returns whether output
 * still waits.
 */
static int
conn_output_moved(struct conn *c, uint32_t now)
{
	size_t queued = conn_queued(c);
	uint32_t acked;
	int unacked;

	if (ioctl(conn_fd(c), SIOCOUTQ, &unacked) == -1 || unacked < 0)
		return 1;	/* no news: the clocks run on */
	acked = (uint32_t)(c->c_out - queued - (uint64_t)unacked);
	if (queued == 0 && unacked == 0) {
		/* All taken, at some time since the last look: no credit,
		   or a client idle after its last reply would gain up to
		   a look's worth of idle_timeout. */
		c->c_acked = acked;
		c->c_flags &= (uint8_t)~EO_CF_OUTPUT;
		return 0;
	}
	if (acked != c->c_acked) {
		c->c_acked = acked;
		c->c_t_out = now;
		conn_progress(c, now);
	}
	return 1;
}

/*
 * Which timeout has run out, if any: its rule (conn_rule_text() words
 * it).  While output waits, the client owes reading, not input:
 * write_timeout rules then, idle_timeout otherwise.  An unfinished unit
 * has its own clock.
 */
static const char *
conn_expired(struct conn *c, uint32_t now)
{
	const struct cfg_listener *lc = c->c_lc;
	int waiting;

	/* First the most specific rule: when a question ran out of time,
	   saying the connection was idle would mislead. */
	if ((c->c_flags & EO_CF_PARTIAL) && lc->unit_timeout != 0 &&
	    mono_since(now, c->c_t_unit) >= lc->unit_timeout * 1000u)
		return conn_unit_rule(lc);
	/* Progress within the last look: no other clock can have run out. */
	waiting = mono_since(now, c->c_t_progress) >= EO_LOOK_MS &&
	    ((c->c_flags & EO_CF_OUTPUT) || conn_queued(c) > 0) &&
	    conn_output_moved(c, now);
	if (waiting && lc->write_timeout != 0) {
		if (mono_since(now, c->c_t_out) >= lc->write_timeout * 1000u)
			return conn_rule_write;
	} else if (c->c_state == EO_CONN_SERVING && lc->idle_timeout != 0 &&
	    mono_since(now, c->c_t_progress) >= lc->idle_timeout * 1000u)
		return conn_rule_idle;
	return NULL;
}

/*
 * A timer's rule ends c: at once, or, for a TLS session whose output
 * waits, once the record in flight and close_notify are out.
 */
static void
conn_timed_out(struct conn *c, const char *rule)
{
	if (rule == conn_unit_rule(c->c_lc) &&
	    c->c_lc->proto->expired != NULL &&
	    c->c_state == EO_CONN_SERVING)
		conn_expire_unit(c, rule);
	else if (conn_is_tls(c) && c->c_state != EO_CONN_HANDSHAKE &&
	    conn_queued(c) > 0)
		conn_tls_closing(c, rule);
	else
		conn_close(c, rule);
}

static void
conn_tick(struct conn *c, uint32_t now)
{
	const char *rule;
	char why[64];

	if (c->c_state == EO_CONN_PROXY && mono_since(now, c->c_t_unit) >=
	    c->c_lc->proxy_timeout * 1000u) {
		snprintf(why, sizeof(why), "not whole within proxy_timeout "
		    "(%u s)", c->c_lc->proxy_timeout);
		conn_proxy_bad(c, why);
		return;
	}
	if (c->c_state == EO_CONN_LINGERING ||
	    c->c_state == EO_CONN_CLOSING) {
		if ((int32_t)(now - c->c_t_unit) >= 0)
			conn_close(c, NULL);
		return;
	}
	if (c->c_state == EO_CONN_HANDSHAKE) {
		if (mono_since(now, c->c_t_unit) >= c->c_lc->tls_timeout *
		    1000u) {
			snprintf(why, sizeof(why), "tls_handshake_timeout "
			    "(%u s)", c->c_lc->tls_timeout);
			conn_tls_bad(c, why, "no handshake in time");
		}
		return;
	}
	if ((rule = conn_expired(c, now)) != NULL) {
		conn_timed_out(c, rule);
		return;
	}
	/* A quiet connection gives its buffers back: ~1 KiB each; then
	   its read event (conn_park.c). */
	if (mono_since(now, c->c_t_progress) >= EO_QUIET_MS) {
		/* Not TLS's: it holds the session, not just output. */
		if (c->c_bev != NULL && conn_queued(c) == 0 &&
		    !conn_is_tls(c))
			conn_drop_bev(c);
		if (c->c_held != NULL && c->c_held->len == 0) {
			free(c->c_held);
			c->c_held = NULL;
		}
		conn_park(c);
	}
}

void
conn_sweep(struct conn_home *h)
{
	struct conn *c, *next;
	uint32_t now = mono_ms();

	for (c = TAILQ_FIRST(&h->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_entry);
		conn_tick(c, now);
	}
}

/*
 * Shutdown.  An idle connection closes at once (with nothing unread, a
 * plain close sends FIN, not RST); the others stop reading, send what is
 * owed, including replies to whole units already read, then linger.
 */
static void
conn_drain(struct conn *c)
{
	int unread = 0;

	if (c->c_state == EO_CONN_LINGERING || c->c_state == EO_CONN_CLOSING)
		return;
	if (c->c_state == EO_CONN_HANDSHAKE) {
		conn_close(c, "shutdown");	/* nothing owed yet */
		return;
	}
	if (conn_going_away(c) == -1)
		return;
	if (conn_queued(c) == 0 && !(c->c_flags & EO_CF_BLOCKED) &&
	    ioctl(conn_fd(c), FIONREAD, &unread) == 0 && unread == 0) {
		conn_close(c, "shutdown");
		return;
	}
	conn_end(c, "shutdown");
	conn_set_state(c, EO_CONN_FLUSHING);
	conn_update(c);
}

void
conn_drain_all(struct conn_home *h)
{
	struct conn *c, *next;

	h->draining = 1;
	for (c = TAILQ_FIRST(&h->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_entry);
		conn_drain(c);
	}
	if (h->nconns == 0 && h->drained_cb != NULL)
		h->drained_cb(h->drained_arg);
}

void
conn_close_all(struct conn_home *h, const char *why)
{
	while (!TAILQ_EMPTY(&h->conns))
		conn_close(TAILQ_FIRST(&h->conns), why);
}
