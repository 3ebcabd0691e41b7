/*
 * Restarts: a connection written out to a hand-over record (export)
 * and taken back from one in the new process (import).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* ---- restarts: export and import (handover.h) --------------------- */

int
conn_carriable(const struct cfg_listener *lc)
{
	/* evhttp's connections (metrics) are not ours to carry, nor is a
	   TLS session: its keys live in OpenSSL, not in a record. */
	return !lc->proto->http && lc->tls == NULL;
}

/* c as a record; its byte fields point into c, valid until it runs. */
static int
conn_to_record(struct conn *c, struct ho_conn *r, uint32_t now)
{
	const struct protocol *p = c->c_lc->proto;

	memset(r, 0, sizeof(*r));
	if (ho_sock_ends(conn_fd(c), &r->local, &r->peer) == -1)
		return -1;	/* reset meanwhile: nothing to carry */
	snprintf(r->listener, sizeof(r->listener), "%s", c->c_lc->name);
	snprintf(r->proto, sizeof(r->proto), "%s", p->name);
	r->client = c->c_peer;
	r->client_port = c->c_port;
	r->state = c->c_state;
	r->flags = c->c_flags;
	r->in = c->c_in;
	r->out = c->c_out;
	r->acked = c->c_acked;
	r->age_start = mono_since(now, c->c_t_start);
	r->age_progress = mono_since(now, c->c_t_progress);
	r->age_out = mono_since(now, c->c_t_out);
	r->unit_in = (int32_t)(c->c_t_unit - now);
	r->pstate_version = p->state_version;
	r->pstate_len = (uint32_t)p->state_size;
	r->pstate = (const unsigned char *)c->c_pstate;
	r->held_len = (uint32_t)conn_held(c);
	r->held = c->c_held != NULL ? c->c_held->data : NULL;
	r->queued_len = (uint32_t)conn_queued(c);
	if (r->queued_len > 0)
		r->queued = evbuffer_pullup(bufferevent_get_output(c->c_bev),
		    -1);
	return 0;
}

/*
 * A connection that cannot be carried (TLS), ended now as cleanly as
 * now allows: close_notify if every reply went out (with replies still
 * queued the client sees a bare EOF instead, a truncation it can tell
 * from the end), the write side shut, and what the client sent
 * meanwhile read, so that closing over unread input does not reset it.
 */
static void
conn_end_now(struct conn *c, const char *why)
{
	char buf[4096];
	int i;

	if (c->c_ssl != NULL && c->c_bev != NULL &&
	    c->c_state != EO_CONN_HANDSHAKE && conn_queued(c) == 0)
		conn_tls_finish(c);
	shutdown(conn_fd(c), SHUT_WR);
	for (i = 0; i < 64 && recv(conn_fd(c), buf, sizeof(buf),
	    MSG_DONTWAIT) > 0; i++)
		;
	conn_close(c, why);
}

int
conn_export(struct conn_home *h, struct ho_buf *b, int *fds, size_t *nfds,
    unsigned *nclosed)
{
	struct ho_conn r;
	struct conn *c, *next;
	uint32_t now = mono_ms();

	*nfds = 0;
	*nclosed = 0;
	for (c = TAILQ_FIRST(&h->conns); c != NULL; c = next) {
		const struct protocol *p = c->c_lc->proto;

		next = TAILQ_NEXT(c, c_entry);
		if (!conn_carriable(c->c_lc) || (p->carriable != NULL &&
		    !p->carriable(c->c_pstate))) {
			if (conn_going_away(c) == -1)
				continue;
			conn_end_now(c, c->c_lc->tls != NULL ?
			    "restart (TLS state cannot be carried)" :
			    "restart (http state is not carried)");
			(*nclosed)++;
			continue;
		}
		if (conn_to_record(c, &r, now) == -1)
			continue;
		if (r.queued_len > 0 && r.queued == NULL)
			return -1;
		if (ho_put_conn(b, &r) == -1)
			return -1;
		fds[(*nfds)++] = conn_fd(c);
	}
	return 0;
}

const char *
conn_import_refusal(const struct cfg_listener *lc, const struct ho_conn *rec)
{
	const struct protocol *p = lc->proto;

	if (!conn_carriable(lc))
		return "its listener's connections cannot be carried (TLS)";
	if (strcmp(rec->proto, p->name) != 0)
		return "its listener's protocol changed";
	if (rec->pstate_len != p->state_size ||
	    (p->state_size > 0 && rec->pstate_version != p->state_version))
		return "unknown protocol state version";
	if (rec->state > EO_CONN_LINGERING ||
	    (rec->state == EO_CONN_PROXY && !lc->proxy_protocol))
		return "its listener's PROXY setting changed";
	return NULL;
}

const char *
conn_import_admit(struct listener *l, const struct ho_conn *rec,
    int *per_source)
{
	const struct cfg_listener *lc = listener_config(l);
	struct peer_key none = { 0, { 0 } };
	int counted = (rec->flags & EO_CF_SOURCE) != 0;

	/* Counted per source if it was: under its PROXY-named client
	   behind a proxy (admitted by then), else under the peer. */
	if (listener_admit(l, counted && !lc->proxy_protocol ?
	    &rec->client : &none, per_source) != EO_ADMIT_OK)
		return "over the listener's limits";
	if (counted && lc->proxy_protocol && lc->max_per_source != 0) {
		if (listener_admit_source(l, &rec->client,
		    lc->max_per_source) == -1) {
			listener_release(l, &none, 0);
			return "over the listener's limits";
		}
		*per_source = 1;
	}
	return NULL;
}

/* Puts rec's state into c, fresh from conn_new(); -1: out of memory. */
static int
conn_restore(struct conn *c, const struct ho_conn *rec, uint32_t now)
{
	c->c_state = rec->state;
	/* Reading and the per-source count are this process's own. */
	c->c_flags = (uint8_t)((rec->flags & ~(EO_CF_READING |
	    EO_CF_SOURCE)) | (c->c_flags & (EO_CF_READING | EO_CF_SOURCE)));
	c->c_peer = rec->client;
	c->c_port = rec->client_port;
	c->c_in = rec->in;
	c->c_out = rec->out;
	c->c_acked = rec->acked;
	c->c_t_start = now - rec->age_start;
	c->c_t_progress = now - rec->age_progress;
	c->c_t_out = now - rec->age_out;
	c->c_t_unit = now + (uint32_t)rec->unit_in;
	if (rec->pstate_len > 0)
		memcpy(c->c_pstate, rec->pstate, rec->pstate_len);
	/* Before anything may free it: the old pointers are rebuilt. */
	if (c->c_lc->proto->carried != NULL)
		c->c_lc->proto->carried(c->c_pstate, c->c_lc->popts);
	if (rec->held_len > 0 && conn_keep(c, rec->held, rec->held_len,
	    0) == -1)
		return -1;
	if (rec->queued_len > 0 && (conn_need_bev(c) == -1 ||
	    evbuffer_add(bufferevent_get_output(c->c_bev), rec->queued,
	    rec->queued_len) == -1))
		return -1;
	/* The rule that ended it was named in the old process; the close
	   line says only that it was carried. */
	if (c->c_state != EO_CONN_PROXY && c->c_state != EO_CONN_SERVING)
		c->c_why = "restart (ending when it was carried)";
	return 0;
}

/*
 * Whether the held input is served at once: units that waited for room
 * (as the old process would have, once the queue went down), and any
 * that a protocol left there to read again, such as an http request
 * under way, whose answer may be due with no more input to come.
 */
static int
conn_carried_input(const struct conn *c)
{
	if (c->c_state != EO_CONN_SERVING || c->c_held == NULL ||
	    c->c_held->len == 0)
		return 0;
	return !(c->c_flags & EO_CF_BLOCKED) || conn_queued(c) <= EO_OUT_LOW;
}

/* Carries on from where the old process stopped. */
static void
conn_carry_on(struct conn *c)
{
	uint32_t linger_end = c->c_t_unit;

	switch (c->c_state) {
	case EO_CONN_LINGERING:
		conn_set_state(c, EO_CONN_LINGERING);
		c->c_t_unit = linger_end;
		break;
	case EO_CONN_FLUSHING:
		conn_set_reading(c, 0);
		conn_update(c);
		break;
	default:
		if (conn_carried_input(c))
			conn_serve(c, c->c_held->data, c->c_held->len);
		else if (c->c_state == EO_CONN_SERVING &&
		    c->c_lc->proto->produce != NULL)
			conn_produce(c);
		else
			conn_update(c);
		break;
	}
}

void
conn_resume(struct conn_home *h, const struct conn_handoff *ho,
    struct ho_conn *rec)
{
	uint32_t now = mono_ms();
	struct conn *c;

	if ((c = conn_new(h, ho, now)) == NULL) {
		conn_refuse(h, ho, EO_REFUSED_OTHER,
		    "out of memory or cannot watch the socket");
		free(rec);
		return;
	}
	TAILQ_INSERT_TAIL(&h->conns, c, c_entry);
	h->nconns++;
	if (conn_restore(c, rec, now) == -1) {
		free(rec);
		conn_close(c, "error: out of memory");
		return;
	}
	free(rec);
	if (log_enabled(EO_LOG_DEBUG)) {
		char peer[EO_ADDR_TEXT_MAX];

		conn_peer_text(c, peer, sizeof(peer));
		log_debug("listener %s: conn %u.%u from %s carried across the "
		    "restart", c->c_lc->name, h->id, c->c_id, peer);
	}
	conn_carry_on(c);
}
