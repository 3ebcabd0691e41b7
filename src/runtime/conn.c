/*
 * Connections: see include/conn.h.  This file is the state machine and
 * the plain path; the PROXY header phase is conn_proxy.c, TLS
 * conn_tls.c, the worker's side (adoption, timers, drain) conn_home.c,
 * restarts conn_carry.c; what they share is conn_int.h.
 *
 * This file is their bottom: the phases call down into it, and it
 * reaches them only through the tables in c_home (conn_phase, conn_xprt,
 * as HAProxy's xprt_ops): a phase uses twenty of its functions, it five
 * of theirs; and only a connection in PROXY or on TLS calls indirectly.
 *
 * The read path does not go through the bufferevent.  In libevent 2.1
 * (Debian 12 ships 2.1.12) a bufferevent read costs an ioctl(FIONREAD)
 * before every readv() and never takes more than 4096 bytes at once,
 * whatever bufferevent_set_max_single_read() says (EVBUFFER_MAX_READ in
 * buffer.c).  So a busy connection has its own EV_READ event, and every
 * read lands in the worker's 64 KiB buffer.  The protocol takes its units
 * from there and answers with iovecs pointing into it (or into its
 * options); one send(2) or sendmsg(2) sends them.  In the common case, a
 * message arriving whole and the socket taking the reply, nothing is
 * copied and nothing allocated.
 *
 * Since the worker's buffer is reused by the next read, what must outlive
 * the call is copied out: replies the socket would not take go to the
 * bufferevent's output, which then does what it is good at (partial
 * writes and the write event); an unfinished unit goes to
 * the connection's small held buffer, and the next input is appended to
 * it so that the protocol always sees one piece.
 *
 * Life of a connection, every change of state in conn_set_state():
 *
 *	PROXY --(a whole PROXY header, client admitted)--> SERVING,
 *	    or HANDSHAKE on a TLS listener
 *	HANDSHAKE --(TLS handshake done)--> SERVING
 *	SERVING --(protocol closes, client EOF, shutdown)--> FLUSHING
 *	FLUSHING --(output sent)--> LINGERING, or closed if the client
 *	    already sent EOF
 *	LINGERING --(client EOF, or EO_LINGER_MS)--> closed
 *	any TLS state but HANDSHAKE --(a timer's rule, output waiting)-->
 *	    CLOSING --(the record in flight sent)--> as FLUSHING, or
 *	    closed after EO_LINGER_MS
 *
 * Whatever ends a connection is recorded once, in the config's words
 * (c_why: "max_questions (10)", "client EOF"...), when it is decided;
 * the close that follows the flush and the linger says that rule.  Every
 * close goes through conn_close(), which logs it once.
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


int
conn_fd(const struct conn *c)
{
	return conn_sock(c);
}

size_t
conn_queued(const struct conn *c)
{
	return c->c_bev != NULL ?
	    evbuffer_get_length(bufferevent_get_output(c->c_bev)) : 0;
}

size_t
conn_held(const struct conn *c)
{
	return c->c_held != NULL ? c->c_held->len : 0;
}

/*
 * Keeps len bytes at data as the held input: what a call left, either of
 * the held input itself (in_held) or of the worker's read buffer.
 * Returns -1 if out of memory.
 */
int
conn_keep(struct conn *c, const unsigned char *data, size_t len,
    int in_held)
{
	struct held *h = c->c_held;

	if (in_held) {
		if (data != h->data)	/* nothing taken: no move */
			memmove(h->data, data, len);
		h->len = len;
		return 0;
	}
	if (len == 0) {
		if (h != NULL)
			h->len = 0;
		return 0;
	}
	if (h == NULL || h->cap < len) {
		size_t cap = h != NULL && h->cap * 2 > len ? h->cap * 2 : len;

		if (cap < 256)
			cap = 256;
		if ((h = realloc(c->c_held, sizeof(*h) + cap)) == NULL)
			return -1;
		h->cap = cap;
		c->c_held = h;
	}
	memcpy(h->data, data, len);
	h->len = len;
	return 0;
}

/* Appends a read to the held input: a copy, but only in the rare case
   of a unit spread over reads. */
int
conn_hold_more(struct conn *c, const unsigned char *data, size_t len)
{
	struct held *h = c->c_held;

	if (h->cap - h->len < len) {
		size_t cap = h->cap * 2 > h->len + len ? h->cap * 2 :
		    h->len + len;

		if ((h = realloc(h, sizeof(*h) + cap)) == NULL)
			return -1;
		h->cap = cap;
		c->c_held = h;
	}
	memcpy(h->data + h->len, data, len);
	h->len += len;
	return 0;
}

/* Something was achieved: restart the idle clock, move to the tail. */
void
conn_progress(struct conn *c, uint32_t now)
{
	struct conn_home *h = c->c_home;

	c->c_t_progress = now;
	if (TAILQ_NEXT(c, c_entry) != NULL) {
		TAILQ_REMOVE(&h->conns, c, c_entry);
		TAILQ_INSERT_TAIL(&h->conns, c, c_entry);
	}
}

void
conn_set_reading(struct conn *c, int on)
{
	if (conn_is_tls(c)) {
		c->c_home->tls->reading(c, on);
		return;
	}
	if (on && !(c->c_flags & EO_CF_READING)) {
		if (conn_io_add(c) == 0)
			c->c_flags |= EO_CF_READING;
	} else if (!on && (c->c_flags & EO_CF_READING)) {
		conn_io_del(c);
		c->c_flags &= (uint8_t)~EO_CF_READING;
	}
}

/* The bufferevent that holds what must wait; made on first need. */
int
conn_need_bev(struct conn *c)
{
	struct bufferevent *bev;

	if (c->c_bev != NULL)
		return 0;
	/* Not CLOSE_ON_FREE: the socket outlives it (quiet, lingering). */
	bev = bufferevent_socket_new(c->c_home->base, conn_fd(c), 0);
	if (bev == NULL)
		return -1;
	bufferevent_setcb(bev, NULL, conn_writecb, conn_eventcb, c);
	/* The write callback runs when output falls to this: resume. */
	bufferevent_setwatermark(bev, EV_WRITE, EO_OUT_LOW, 0);
	/* libevent writes at most 16 KiB per write event by default: a
	   queue of 128 KiB would take eight rounds through epoll. */
	bufferevent_set_max_single_write(bev, EO_OUT_HIGH + EO_READ_CHUNK);
	c->c_bev = bev;
	return 0;
}

void
conn_drop_bev(struct conn *c)
{
	if (c->c_bev == NULL)
		return;
	/*
	 * Inside its own callback a bufferevent is only unlinked once the
	 * callback returns; disabling it first takes its events out of
	 * epoll now, before the socket is closed or its number reused.
	 */
	bufferevent_disable(c->c_bev, EV_READ | EV_WRITE);
	bufferevent_free(c->c_bev);
	/* TLS: the SSL stays (c_ssl) for the log; I/O is plain again. */
	c->c_bev = NULL;
}

/*
 * The timers' rules, by name: c_why while a TLS session ends (CLOSING),
 * a pointer that must outlive the call; conn_rule_text() gives the
 * close line their value.
 */
const char conn_rule_idle[] = "idle_timeout";
const char conn_rule_write[] = "write_timeout";
static const char conn_rule_unit[] = "unit_timeout";

const char *
conn_unit_rule(const struct cfg_listener *lc)
{
	return lc->proto->unit_timeout_name != NULL ?
	    lc->proto->unit_timeout_name : conn_rule_unit;
}

/* why, or for a timer's rule its words: "idle_timeout (300 s)". */
const char *
conn_rule_text(const struct conn *c, const char *why, char *buf,
    size_t len)
{
	const struct cfg_listener *lc = c->c_lc;
	uint32_t secs;

	if (why == conn_rule_idle)
		secs = lc->idle_timeout;
	else if (why == conn_rule_write)
		secs = lc->write_timeout;
	else if (why == conn_unit_rule(lc))
		secs = lc->unit_timeout;
	else
		return why;
	snprintf(buf, len, "%s (%u s)", why, secs);
	return buf;
}

/* Records what ends the connection: the first rule to decide wins. */
void
conn_end(struct conn *c, const char *why)
{
	if (c->c_why == NULL)
		c->c_why = why;
}

/*
 * A socket call failed with err.  A client that reset the connection is
 * no error of ours; the rest is logged with its reason.  strerror_r: this
 * is a worker thread.
 */
void
conn_close_err(struct conn *c, const char *what, int err)
{
	char why[128], buf[64];

	if (err == ECONNRESET || err == EPIPE) {
		conn_close(c, "client reset");
		return;
	}
	snprintf(why, sizeof(why), "error: %s: %s", what,
	    strerror_r(err, buf, sizeof(buf)));
	conn_close(c, why);
}

/* ---- the connection's life ---------------------------------------- */

/*
 * Every change of state, with what entering the state entails.  Closing
 * is not a state: conn_close() ends the connection.
 */
void
conn_set_state(struct conn *c, enum conn_state state)
{
	c->c_state = (uint8_t)state;
	switch (state) {
	case EO_CONN_PROXY:
	case EO_CONN_HANDSHAKE:
		c->c_t_unit = mono_ms();
		break;
	case EO_CONN_SERVING:
		break;		/* conn_update() decides about reading */
	case EO_CONN_FLUSHING:
		conn_set_reading(c, 0);
		break;
	case EO_CONN_CLOSING:
		conn_set_reading(c, 0);
		c->c_t_unit = mono_ms() + EO_LINGER_MS;
		break;
	case EO_CONN_LINGERING:
		conn_drop_bev(c);
		c->c_t_unit = mono_ms() + EO_LINGER_MS;
		conn_set_reading(c, 1);
		break;
	}
}

/*
 * The one teardown.  why NULL: the rule recorded when the end was
 * decided (the flush and the linger that followed went as planned).
 */
void
conn_close(struct conn *c, const char *why)
{
	struct conn_home *h = c->c_home;
	int fd = conn_fd(c);
	enum stats_close r;
	char text[64];

	if (why == NULL)
		why = c->c_why != NULL ? c->c_why : "client EOF";
	why = conn_rule_text(c, why, text, sizeof(text));
	r = stats_close_reason(why);
	/* A balancer's check ends by the balancer's close, once a second:
	   not a client's EOF or reset. */
	if (c->c_check && (r == EO_CLOSE_CLIENT_EOF ||
	    r == EO_CLOSE_CLIENT_RESET))
		r = EO_CLOSE_HEALTH_CHECK;
	/* Closed before its PROXY header admitted it: never accepted
	   (conn_proxy_accepted), so no close of a served connection. */
	if (c->c_state != EO_CONN_PROXY) {
		stats_bump(&c->c_st->closed[r], 1);
		stats_bump(&h->st->closed[r], 1);
	}
	if (log_enabled(EO_LOG_DEBUG)) {
		char peer[EO_ADDR_TEXT_MAX];
		uint32_t ms = mono_since(mono_ms(), c->c_t_start);

		char subj[256] = "";

		conn_peer_text(c, peer, sizeof(peer));
		if (c->c_ssl != NULL)
			h->tls->subject(c, subj, sizeof(subj));
		log_debug("listener %s: conn %u.%u closed: %s (read %llu, sent "
		    "%llu bytes in %u.%03u s, peer %s%s)", c->c_lc->name, h->id,
		    c->c_id, why, (unsigned long long)c->c_in,
		    (unsigned long long)(c->c_out - conn_queued(c)),
		    ms / 1000, ms % 1000, peer, subj);
	}
	if (conn_is_tls(c))
		h->tls->notify(c);
	conn_set_reading(c, 0);
	if (!conn_parked(c))
		conn_ev_free(h, (struct event *)c->c_io);
	conn_drop_bev(c);
	if (c->c_pause != NULL)
		event_free(c->c_pause);
	if (c->c_lc->proto->fini != NULL)
		c->c_lc->proto->fini(c->c_pstate);
	SSL_free(c->c_ssl);
	free(c->c_held);
	TAILQ_REMOVE(&h->conns, c, c_entry);
	h->nconns--;
	/* Counts first, then the close: a client that sees its EOF and
	   connects again at once must find its slot free. */
	atomic_fetch_sub_explicit(&h->load, 1, memory_order_relaxed);
	stats_sub(&h->stats->conns, 1);
	listener_release(c->c_lis, &c->c_peer, c->c_flags & EO_CF_SOURCE);
	close(fd);
	cfg_unref(c->c_lc->cfg);
	free(c);
	if (h->draining && h->nconns == 0 && h->drained_cb != NULL)
		h->drained_cb(h->drained_arg);
}

/*
 * All output is sent.  If the client has sent EOF nothing more can come:
 * close.  Otherwise shut the write side (the client sees EOF after the
 * last reply) and linger, reading and dropping input, until the client
 * closes too: close() with unread input would send a RST, and a RST can
 * destroy replies still unread in the client's socket.
 */
void
conn_finish(struct conn *c)
{
	if (conn_is_tls(c))
		c->c_home->tls->finish(c);
	if ((c->c_flags & EO_CF_PEER_EOF) ||
	    shutdown(conn_fd(c), SHUT_WR) == -1) {
		conn_close(c, NULL);
		return;
	}
	conn_set_state(c, EO_CONN_LINGERING);
}

/* Decides whether to read, and finishes what has nothing left to do. */
void
conn_update(struct conn *c)
{
	size_t queued = conn_queued(c);
	int idle = queued == 0 && !(c->c_flags & EO_CF_BLOCKED);

	if (c->c_state == EO_CONN_SERVING &&
	    (c->c_flags & (EO_CF_DONE | EO_CF_PEER_EOF))) {
		/* Nothing to flush: finished now, its reading as it is
		   (stopped for a flush and started again for the linger:
		   two epoll calls, half of a daytime connection's). */
		if (idle && !conn_is_tls(c)) {
			conn_finish(c);
			return;
		}
		conn_set_state(c, EO_CONN_FLUSHING);
	}
	if (c->c_state == EO_CONN_FLUSHING || c->c_state == EO_CONN_CLOSING) {
		if (idle)
			conn_finish(c);
		return;
	}
	if (c->c_state == EO_CONN_LINGERING)
		return;
	/*
	 * Backpressure: a client that does not read stops being read.  A
	 * protocol that produces keeps its queue full by design; what it
	 * reads must still be seen (a client's EOF ends chargen), and
	 * replies that find no room hold their input (BLOCKED) all the
	 * same.
	 */
	conn_set_reading(c, (queued < EO_OUT_HIGH ||
	    c->c_lc->proto->produce != NULL) &&
	    !(c->c_flags & EO_CF_BLOCKED) && c->c_pause == NULL);
}

/*
 * One system call for all the pieces.  send(2) and sendmsg(2) rather
 * than write(2) and writev(2): they skip the VFS layer, and MSG_NOSIGNAL
 * makes a vanished client an EPIPE here, not a SIGPIPE.
 */
static ssize_t
conn_write(struct conn *c, const struct proto_out *out)
{
	struct msghdr msg;

	if (out->niov == 1)
		return send(conn_fd(c), out->iov[0].iov_base,
		    out->iov[0].iov_len, MSG_NOSIGNAL);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = out->iov;
	msg.msg_iovlen = out->niov;
	return sendmsg(conn_fd(c), &msg, MSG_NOSIGNAL);
}

/*
 * Queues out's pieces from piece i, skipping its first skip bytes (the
 * socket took them).  Returns -1 if the connection was closed.
 */
static int
conn_enqueue(struct conn *c, const struct proto_out *out, unsigned i,
    size_t skip)
{
	struct evbuffer *q;

	if (conn_need_bev(c) == -1) {
		conn_close(c, "error: out of memory");
		return -1;
	}
	q = bufferevent_get_output(c->c_bev);
	for (; i < out->niov; i++, skip = 0)
		if (evbuffer_add(q, (const char *)out->iov[i].iov_base + skip,
		    out->iov[i].iov_len - skip) == -1) {
			conn_close(c, "error: out of memory");
			return -1;
		}
	return 0;
}

/*
 * Sends one call's replies: at once with one system call if nothing is
 * queued (saving the bufferevent's round through epoll), never around
 * queued bytes (order is everything).  What the socket does not take is
 * copied to the output queue: the pieces may point into buffers that the
 * next read reuses.  Returns -1 if the connection was closed.
 */
int
conn_send(struct conn *c, const struct proto_out *out)
{
	unsigned i = 0;
	size_t skip = 0;

	if (out->niov == 0)
		return 0;
	c->c_out += out->len;
	stats_bump(&c->c_st->bytes_out, out->len);
	/* TLS output is the bufferevent's to encrypt, always queued. */
	if (conn_queued(c) == 0 && c->c_ssl == NULL) {
		ssize_t n = conn_write(c, out);

		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			conn_close_err(c, "write", errno);
			return -1;
		}
		if (n == (ssize_t)out->len)
			return 0;
		for (skip = n > 0 ? (size_t)n : 0; i < out->niov &&
		    skip >= out->iov[i].iov_len; i++)
			skip -= out->iov[i].iov_len;
	}
	return conn_enqueue(c, out, i, skip);
}

static int conn_pause(struct conn *c, uint32_t ms);

/* The protocol closed: its rule, in the config's words, ends it. */
static void
conn_proto_closed(struct conn *c)
{
	const struct protocol *p = c->c_lc->proto;
	const char *why = NULL;

	if (p->close_why != NULL)
		why = p->close_why(c->c_pstate, c->c_lc->popts);
	conn_end(c, why != NULL ? why : "protocol closed");
	c->c_flags |= EO_CF_DONE;
}

/* An empty call's output, with the room the queue leaves. */
void
conn_out_init(struct conn *c, struct proto_out *out)
{
	struct conn_home *h = c->c_home;
	size_t queued = conn_queued(c);

	memset(out, 0, sizeof(*out));
	out->iov = h->iov;
	out->maxiov = EO_IOV;
	out->room = queued < EO_OUT_HIGH ? EO_OUT_HIGH - queued : 0;
	out->rng = &h->rng;
	out->st = c->c_st;
	if (c->c_lc->proto->wants_info)
		conn_info_lend(c, out);
}

/* Output is on its way: the write clock starts when it may wait. */
static void
conn_output_began(struct conn *c, uint32_t now)
{
	if (!(c->c_flags & EO_CF_OUTPUT)) {
		c->c_flags |= EO_CF_OUTPUT;
		c->c_t_out = now;
	}
}

/*
 * Calls the protocol on in: input(), then eof() if the client has sent
 * EOF and input() took every whole unit.  Records why if it closes.
 */
static enum proto_verdict
conn_call(struct conn *c, struct proto_in *in, struct proto_out *out)
{
	const struct cfg_listener *lc = c->c_lc;
	const struct protocol *p = lc->proto;
	enum proto_verdict v;

	if (c->c_flags & EO_CF_DONE)
		return EO_PROTO_CLOSE;	/* input after the end: dropped */
	v = p->input(c->c_pstate, lc->popts, in, out);
	if (v == EO_PROTO_CLOSE)
		conn_proto_closed(c);
	else if (!out->full && (c->c_flags & EO_CF_PEER_EOF)) {
		v = p->eof(c->c_pstate, lc->popts, in, out);
		conn_end(c, "client EOF");
	}
	return v;
}

/*
 * The protocol's contract: with room for output, a call that reports
 * "full" has taken input or given output.  One that took nothing would be called again
 * at once with the same input, for ever (the serve loop waits for room
 * that is already there).  Checked per call: a compare, no system call.
 */
static int
conn_contract(struct conn *c, const struct proto_out *out, size_t len,
    size_t left)
{
	if (!out->full || left == 0 || left < len || out->room == 0 ||
	    out->len > 0)
		return 0;
	log_err("listener %s: conn %u.%u: protocol %s reported no room for "
	    "output without taking any input: closing the connection",
	    c->c_lc->name, c->c_home->id, c->c_id, c->c_lc->proto->name);
	conn_close(c, "protocol error");
	return -1;
}

/*
 * One round: runs the protocol on data (the worker's read buffer, or the
 * held input), sends the replies, keeps what waits.  Returns -1 if the
 * connection was closed.
 */
static int
conn_serve_once(struct conn *c, const unsigned char *data, size_t len)
{
	struct proto_in in = { data, len };
	struct proto_out out;
	int was_partial = c->c_flags & EO_CF_PARTIAL;
	int in_held = c->c_held != NULL && data == c->c_held->data;
	uint32_t now;

	conn_out_init(c, &out);
	c->c_flags &= (uint8_t)~(EO_CF_BLOCKED | EO_CF_PARTIAL);
	if (conn_call(c, &in, &out) == EO_PROTO_CLOSE) {
		c->c_flags |= EO_CF_DONE;	/* also when eof() closed */
		in.len = 0;
	} else if (conn_contract(c, &out, len, in.len) == -1)
		return -1;
	else if (out.pause_ms > 0) {
		if (conn_pause(c, out.pause_ms) == -1)
			return -1;
	} else if (in.len > 0)
		c->c_flags |= out.full ? EO_CF_BLOCKED : EO_CF_PARTIAL;
	else if (out.partial)
		c->c_flags |= EO_CF_PARTIAL;	/* held by the protocol */

	now = mono_ms();
	if (out.units > 0) {
		conn_progress(c, now);
		stats_bump(&c->c_st->units, out.units);
	}
	if ((c->c_flags & EO_CF_PARTIAL) && (!was_partial || out.units > 0))
		c->c_t_unit = now;

	/* Send before keeping: the replies may point into the held input. */
	if (conn_send(c, &out) == -1)
		return -1;
	if (c->c_lc->proto->released != NULL)
		c->c_lc->proto->released(c->c_pstate);
	if (out.niov > 0)
		conn_output_began(c, now);
	if (conn_keep(c, in.data, in.len, in_held) == -1) {
		conn_close(c, "error: out of memory");
		return -1;
	}
	return 0;
}

/*
 * Serves data, then whole units still waiting for output room for as
 * long as the socket takes the replies at once (no write callback would
 * come to resume them), then decides what next.
 */
void
conn_serve(struct conn *c, const unsigned char *data, size_t len)
{
	for (;;) {
		if (conn_serve_once(c, data, len) == -1)
			return;
		if (!(c->c_flags & EO_CF_BLOCKED) ||
		    conn_queued(c) > EO_OUT_LOW)
			break;
		data = c->c_held->data;
		len = c->c_held->len;
	}
	/* A protocol that produces (a sized HTTP body) goes on while the
	   socket has room: no write callback may come to resume it. */
	if (c->c_lc->proto->produce != NULL && !(c->c_flags & EO_CF_BLOCKED))
		conn_produce(c);
	else
		conn_update(c);
}

/* The pause is over: the protocol is called again on what waits. */
static void
conn_pausecb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	event_free(c->c_pause);
	c->c_pause = NULL;
	if (c->c_state != EO_CONN_SERVING)
		conn_update(c);
	else if (c->c_held != NULL)
		conn_serve(c, c->c_held->data, c->c_held->len);
	else
		conn_serve(c, (const unsigned char *)"", 0);
}

/* The protocol asked to be called again in ms: a timer, reading off;
   from now, not the pass's start, and a coarse tick more: never early. */
static int
conn_pause(struct conn *c, uint32_t ms)
{
	struct timeval tv = { (time_t)((ms + 4) / 1000),
	    (suseconds_t)((ms + 4) % 1000) * 1000 };

	event_base_update_cache_time(c->c_home->base);
	c->c_pause = evtimer_new(c->c_home->base, conn_pausecb, c);
	if (c->c_pause == NULL || evtimer_add(c->c_pause, &tv) == -1) {
		conn_close(c, "error: out of memory");
		return -1;
	}
	return 0;
}

/* n bytes read into the worker's buffer (0: the client's EOF). */
void
conn_input(struct conn *c, size_t n)
{
	struct conn_home *h = c->c_home;

	if (c->c_state == EO_CONN_LINGERING) {
		if (n == 0)
			conn_close(c, NULL);
		return;		/* late input: dropped */
	}
	c->c_in += n;
	stats_bump(&c->c_st->bytes_in, (uint64_t)n);
	if (n == 0)
		c->c_flags |= EO_CF_PEER_EOF;
	if (c->c_state == EO_CONN_PROXY)
		h->proxy->input(c, h->rbuf, n);
	else if (conn_held(c) == 0)
		conn_serve(c, h->rbuf, n);	/* the usual case */
	else if (conn_hold_more(c, h->rbuf, n) == -1)
		conn_close(c, "error: out of memory");
	else
		conn_serve(c, c->c_held->data, c->c_held->len);
}

void
conn_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_home *h = c->c_home;
	ssize_t n;

	(void)what;
	if (c->c_state == EO_CONN_PROXY && c->c_lc->tls != NULL) {
		h->proxy->peek(c);	/* the ClientHello must stay */
		return;
	}
	n = recv(fd, h->rbuf, EO_READ_CHUNK, 0);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close_err(c, "read", errno);
		return;
	}
	conn_input(c, (size_t)n);
}

/*
 * Output the protocol makes while the socket has room (chargen): rounds
 * of up to the queue's room, each sent at once, until the socket refuses
 * some; the write callback resumes at the low watermark.  A client that
 * takes everything gets EO_PRODUCE_ROUNDS rounds per callback, then one
 * round is queued: its neighbours get their turn, and the write event
 * brings it back.  Memory stays within EO_OUT_HIGH, as for replies.
 */
void
conn_produce(struct conn *c)
{
	const struct protocol *p = c->c_lc->proto;
	struct proto_out out;
	uint32_t now;
	int round;

	for (round = 0; round <= EO_PRODUCE_ROUNDS; round++) {
		if (c->c_state != EO_CONN_SERVING ||
		    (c->c_flags & EO_CF_DONE) || conn_queued(c) > EO_OUT_LOW)
			break;
		conn_out_init(c, &out);
		if (p->produce(c->c_pstate, c->c_lc->popts, &out) ==
		    EO_PROTO_CLOSE)
			conn_proto_closed(c);
		if (out.niov == 0)
			break;
		now = mono_ms();
		conn_output_began(c, now);
		if (round < EO_PRODUCE_ROUNDS) {
			if (conn_send(c, &out) == -1)
				return;
			/* The socket took bytes: there was room for them. */
			conn_progress(c, now);
		} else {
			c->c_out += out.len;
			if (conn_enqueue(c, &out, 0, 0) == -1)
				return;
		}
		if (p->released != NULL)
			p->released(c->c_pstate);
	}
	conn_update(c);
}

/*
 * The protocol speaks first (daytime, time, qotd) or produces output
 * from the start (chargen); speaking may be all it does.
 */
void
conn_start(struct conn *c)
{
	const struct protocol *p = c->c_lc->proto;
	struct proto_out out;

	if (p->greet != NULL) {
		conn_out_init(c, &out);
		if (p->greet(c->c_pstate, c->c_lc->popts, &out) ==
		    EO_PROTO_CLOSE)
			conn_proto_closed(c);
		if (out.niov > 0)
			conn_output_began(c, c->c_t_start);
		if (conn_send(c, &out) == -1)
			return;
	}
	if (p->produce != NULL)
		conn_produce(c);
	else
		conn_update(c);
}

/* Output fell to the low watermark: the client reads again. */
void
conn_writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	c->c_t_out = mono_ms();
	conn_progress(c, c->c_t_out);
	if (c->c_flags & EO_CF_BLOCKED)
		conn_serve(c, c->c_held->data, c->c_held->len);
	else if (c->c_lc->proto->produce != NULL)
		conn_produce(c);
	else
		conn_update(c);
}

/*
 * A write failed.  libevent reports a write that returned 0 as EOF
 * without setting errno: whatever errno holds then is stale.
 */
void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if ((what & BEV_EVENT_ERROR) && err != 0)
		conn_close_err(c, "write", err);
	else
		conn_close(c, "client reset");
}

/*
 * The unit timeout ran out: the protocol's last words (http's 408), sent
 * before the close as any reply, with rule as the reason.
 */
void
conn_expire_unit(struct conn *c, const char *rule)
{
	const struct protocol *p = c->c_lc->proto;
	struct proto_out out;

	conn_out_init(c, &out);
	(void)p->expired(c->c_pstate, c->c_lc->popts, &out);
	conn_end(c, rule);
	c->c_flags |= EO_CF_DONE;
	if (conn_send(c, &out) == -1)
		return;
	if (p->released != NULL)
		p->released(c->c_pstate);
	conn_update(c);
}
