/*
 * Connections: see include/conn.h.
 *
 * The read path does not go through the bufferevent.  In libevent 2.1
 * (Debian 12 ships 2.1.12) a bufferevent read costs an ioctl(FIONREAD)
 * before every readv() and never takes more than 4096 bytes at once,
 * whatever bufferevent_set_max_single_read() says (EVBUFFER_MAX_READ in
 * buffer.c).  So each connection has its own EV_READ event, and every
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

#define EO_READ_CHUNK	(64 * 1024)	/* most one recv(2) takes */
#define EO_OUT_HIGH	(128 * 1024)	/* queued output: stop reading */
#define EO_OUT_LOW	(32 * 1024)	/* ... and start again */
#define EO_LINGER_MS	2000		/* wait for the client's EOF */
#define EO_QUIET_MS	2000		/* then a quiet conn frees buffers */
#define EO_LOOK_MS	1000		/* no progress for this long: ask
					   the kernel what the client took */
#define EO_PRODUCE_ROUNDS 8		/* produce() calls in one callback */

/* A connection's states; closed is not one: conn_close() frees it. */
enum conn_state {
	EO_CONN_PROXY,		/* reading the PROXY header into the held
				   input; nothing of the protocol runs */
	EO_CONN_SERVING,	/* reading input and answering it, as
				   backpressure allows */
	EO_CONN_FLUSHING,	/* the end is decided (c_why): reading no
				   more, sending what is owed, including
				   replies to whole units already read */
	EO_CONN_LINGERING,	/* all sent, write side shut; discarding
				   input until EOF, so that no RST destroys
				   replies the client has not read yet */
	EO_CONN_HANDSHAKE,	/* TLS: the handshake runs, within
				   tls_handshake_timeout (c_t_unit) */
	EO_CONN_CLOSING		/* TLS: a timer ended it (c_why) while
				   output waited; the record in flight, then
				   close_notify, go out within EO_LINGER_MS
				   (c_t_unit); the rest is dropped */
};

#define EO_CF_READING	0x01u	/* c_ev is added */
#define EO_CF_PEER_EOF	0x02u	/* the client sent EOF */
#define EO_CF_DONE	0x04u	/* the protocol closed: input discarded */
#define EO_CF_PARTIAL	0x08u	/* an unfinished unit is held */
#define EO_CF_BLOCKED	0x10u	/* whole units wait for output room */
#define EO_CF_SOURCE	0x20u	/* counted in the per-source table */
#define EO_CF_OUTPUT	0x40u	/* output may wait in the kernel */
#define EO_CF_TLS_EOF	0x80u	/* TLS: the client's EOF came; the input
				   read before it is served first */

struct conn {
	struct event		 c_ev;		/* EV_READ|EV_PERSIST */
	TAILQ_ENTRY(conn)	 c_entry;	/* in c_home->conns */
	struct conn_home	*c_home;
	struct listener		*c_lis;		/* counted against; ref */
	struct stats_slot	*c_st;		/* c_lis's, this worker's */
	const struct cfg_listener *c_lc;	/* settings; cfg ref held */
	struct bufferevent	*c_bev;		/* queued output; NULL: none */
	struct held		*c_held;	/* input kept for the next
						   call; NULL: none */
	const char		*c_why;		/* the rule that ends it; static
						   or in c_lc, NULL: serving */
	uint64_t		 c_in;		/* bytes read and served */
	uint64_t		 c_out;		/* bytes sent or queued */
	uint32_t		 c_id;		/* "worker.c_id" in the log */
	uint32_t		 c_t_start;	/* ms: adopted */
	uint32_t		 c_t_progress;	/* ms: unit taken, bytes taken
						   by the client */
	uint32_t		 c_t_unit;	/* ms: unfinished unit (or the
						   PROXY header) began;
						   lingering: when it ends */
	uint32_t		 c_t_out;	/* ms: output began to wait, or
						   the client last took some */
	uint32_t		 c_acked;	/* of c_out, what the client had
						   taken at the last look (low
						   32 bits: only compared) */
	uint16_t		 c_port;	/* peer's, from the accept */
	uint8_t			 c_state;	/* enum conn_state */
	uint8_t			 c_flags;	/* EO_CF_* */
	uint8_t			 c_check;	/* a balancer's health check
						   (PROXY LOCAL) */
	struct peer_key		 c_peer;	/* for the per-source count */
	SSL			*c_ssl;		/* TLS: from the handshake to
						   the close; NULL: plaintext */
	uint64_t		 c_pstate[];	/* the protocol's state */
};

/* Input kept between calls: an unfinished unit, or whole units waiting
   for output room.  Bounded by one read plus the protocol's largest unit. */
struct held {
	size_t			 len;
	size_t			 cap;
	unsigned char		 data[];
};

/* c_bev is the TLS bufferevent: all I/O goes through it, c_ev is not
   added.  From the handshake until close_notify is sent. */
static inline int
conn_is_tls(const struct conn *c)
{
	return c->c_ssl != NULL && c->c_bev != NULL;
}

static void	conn_readcb(evutil_socket_t, short, void *);
static void	conn_writecb(struct bufferevent *, void *);
static void	conn_eventcb(struct bufferevent *, short, void *);
static void	conn_serve(struct conn *, const unsigned char *, size_t);
static void	conn_update(struct conn *);
static void	conn_tls_reading(struct conn *, int);
static void	conn_tls_start(struct conn *);
static void	conn_tls_proxy(struct conn *);
static void	conn_tls_finish(struct conn *);
static void	conn_tls_subject(const struct conn *, char *, size_t);
static void	conn_tls_bad(struct conn *, const char *, const char *);
static void	conn_tls_notify(struct conn *);
static void	conn_tls_closing(struct conn *, const char *);
static void	conn_close(struct conn *, const char *);
static void	conn_produce(struct conn *);
static void	conn_proxy_bad(struct conn *, const char *);

static int
conn_fd(const struct conn *c)
{
	return (int)event_get_fd(&c->c_ev);
}

static size_t
conn_queued(const struct conn *c)
{
	return c->c_bev != NULL ?
	    evbuffer_get_length(bufferevent_get_output(c->c_bev)) : 0;
}

static size_t
conn_held(const struct conn *c)
{
	return c->c_held != NULL ? c->c_held->len : 0;
}

/*
 * Keeps len bytes at data as the held input: what a call left, either of
 * the held input itself (in_held) or of the worker's read buffer.
 * Returns -1 if out of memory.
 */
static int
conn_keep(struct conn *c, const unsigned char *data, size_t len,
    int in_held)
{
	struct held *h = c->c_held;

	if (in_held) {
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
static int
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
static void
conn_progress(struct conn *c, uint32_t now)
{
	struct conn_home *h = c->c_home;

	c->c_t_progress = now;
	if (TAILQ_NEXT(c, c_entry) != NULL) {
		TAILQ_REMOVE(&h->conns, c, c_entry);
		TAILQ_INSERT_TAIL(&h->conns, c, c_entry);
	}
}

static void
conn_set_reading(struct conn *c, int on)
{
	if (conn_is_tls(c)) {
		conn_tls_reading(c, on);
		return;
	}
	if (on && !(c->c_flags & EO_CF_READING)) {
		if (event_add(&c->c_ev, NULL) == 0)
			c->c_flags |= EO_CF_READING;
	} else if (!on && (c->c_flags & EO_CF_READING)) {
		event_del(&c->c_ev);
		c->c_flags &= (uint8_t)~EO_CF_READING;
	}
}

/* The bufferevent that holds what must wait; made on first need. */
static int
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

static void
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

/* The client's address and port, from the key and the port kept at
   adopt (the socket may be gone by the time it is logged). */
static void
conn_peer_text(const struct conn *c, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (c->c_peer.family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->c_port);
		memcpy(&sin->sin_addr, c->c_peer.addr, 4);
	} else if (c->c_peer.family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->c_port);
		memcpy(&sin6->sin6_addr, c->c_peer.addr, 16);
	} else {
		snprintf(buf, len, "?");
		return;
	}
	peer_format((struct sockaddr *)&ss, buf, len);
}

/*
 * The timers' rules, by name: c_why while a TLS session ends (CLOSING),
 * a pointer that must outlive the call; conn_rule_text() gives the
 * close line their value.
 */
static const char conn_rule_idle[] = "idle_timeout";
static const char conn_rule_write[] = "write_timeout";
static const char conn_rule_unit[] = "unit_timeout";

static const char *
conn_unit_rule(const struct cfg_listener *lc)
{
	return lc->proto->unit_timeout_name != NULL ?
	    lc->proto->unit_timeout_name : conn_rule_unit;
}

/* why, or for a timer's rule its words: "idle_timeout (300 s)". */
static const char *
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
static void
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
static void
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
static void
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
static void
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
			conn_tls_subject(c, subj, sizeof(subj));
		log_debug("listener %s: conn %u.%u closed: %s (read %llu, sent "
		    "%llu bytes in %u.%03u s, peer %s%s)", c->c_lc->name, h->id,
		    c->c_id, why, (unsigned long long)c->c_in,
		    (unsigned long long)(c->c_out - conn_queued(c)),
		    ms / 1000, ms % 1000, peer, subj);
	}
	conn_tls_notify(c);
	conn_set_reading(c, 0);
	conn_drop_bev(c);
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
static void
conn_finish(struct conn *c)
{
	if (conn_is_tls(c))
		conn_tls_finish(c);
	if ((c->c_flags & EO_CF_PEER_EOF) ||
	    shutdown(conn_fd(c), SHUT_WR) == -1) {
		conn_close(c, NULL);
		return;
	}
	conn_set_state(c, EO_CONN_LINGERING);
}

/* Decides whether to read, and finishes what has nothing left to do. */
static void
conn_update(struct conn *c)
{
	size_t queued = conn_queued(c);

	if (c->c_state == EO_CONN_SERVING &&
	    (c->c_flags & (EO_CF_DONE | EO_CF_PEER_EOF)))
		conn_set_state(c, EO_CONN_FLUSHING);
	if (c->c_state == EO_CONN_FLUSHING || c->c_state == EO_CONN_CLOSING) {
		if (queued == 0 && !(c->c_flags & EO_CF_BLOCKED))
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
	    !(c->c_flags & EO_CF_BLOCKED));
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
static int
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
static void
conn_out_init(struct conn *c, struct proto_out *out)
{
	struct conn_home *h = c->c_home;
	size_t queued = conn_queued(c);

	memset(out, 0, sizeof(*out));
	out->iov = h->iov;
	out->maxiov = EO_IOV;
	out->room = queued < EO_OUT_HIGH ? EO_OUT_HIGH - queued : 0;
	out->rng = &h->rng;
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
 * "full" has taken input.  One that took nothing would be called again
 * at once with the same input, for ever (the serve loop waits for room
 * that is already there).  Checked per call: a compare, no system call.
 */
static int
conn_contract(struct conn *c, const struct proto_out *out, size_t len,
    size_t left)
{
	if (!out->full || left == 0 || left < len || out->room == 0)
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
	else if (in.len > 0)
		c->c_flags |= out.full ? EO_CF_BLOCKED : EO_CF_PARTIAL;

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
static void
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
	conn_update(c);
}

/* ---- the PROXY header --------------------------------------------- */

static uint16_t
conn_sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/*
 * Refused after the accept (bad header, allow/deny, per-source limit):
 * counted, noted for the burst line with who (an address and why), and
 * closed with why.
 */
static void
conn_refuse_late(struct conn *c, enum stats_refusal reason, const char *why,
    const char *who, unsigned limit)
{
	struct conn_home *h = c->c_home;

	stats_bump(&h->st->refused[reason], 1);
	stats_bump(&c->c_st->refused[reason], 1);
	stats_note(h->stats, reason, c->c_lc->name, who, limit);
	conn_close(c, why);
}

/* A header that can never be: the proxy's mistake, named by its address. */
static void
conn_proxy_bad(struct conn *c, const char *reason)
{
	char why[160], who[EO_ADDR_TEXT_MAX + 160], peer[EO_ADDR_TEXT_MAX];

	snprintf(why, sizeof(why), "PROXY header: %s", reason);
	conn_peer_text(c, peer, sizeof(peer));
	snprintf(who, sizeof(who), "from %s: %s", peer, reason);
	conn_refuse_late(c, EO_REFUSED_PROXY, why, who, 0);
}

/*
 * The header named the client: from now on the connection is the
 * client's, for allow/deny, the per-source limit and the log.  LOCAL
 * (the proxy's health check) and UNKNOWN keep the proxy's address and
 * are not screened: the proxy is trusted (proxy_from) and its checks
 * must not fail because its own address is not a client's.  Returns -1
 * if the connection was refused (closed).
 */
static int
conn_proxy_admit(struct conn *c, const struct proxy_result *r)
{
	const struct cfg_listener *lc = c->c_lc;
	char why[64], client[EO_ADDR_TEXT_MAX];

	if (r->family != AF_INET && r->family != AF_INET6)
		return 0;
	peer_key_from(&c->c_peer, &r->src.sa);
	c->c_port = conn_sa_port(&r->src.sa);
	peer_key_format(&c->c_peer, client, sizeof(client));
	if (!cfg_listener_admits(lc, &r->src.sa)) {
		conn_refuse_late(c, EO_REFUSED_DENIED, "denied by allow/deny",
		    client, 0);
		return -1;
	}
	if (lc->max_per_source == 0)
		return 0;
	if (listener_admit_source(c->c_lis, &c->c_peer,
	    lc->max_per_source) == -1) {
		snprintf(why, sizeof(why), "max_connections_per_source (%u)",
		    lc->max_per_source);
		conn_refuse_late(c, EO_REFUSED_SOURCE, why, client,
		    lc->max_per_source);
		return -1;
	}
	c->c_flags |= EO_CF_SOURCE;
	return 0;
}

/* Behind a proxy a connection counts as accepted once admitted. */
static void
conn_proxy_accepted(struct conn *c)
{
	stats_bump(&c->c_home->st->accepted, 1);
	stats_bump(&c->c_st->accepted, 1);
}

/* The accept line, once the client is known: who, and through whom. */
static void
conn_proxy_log(struct conn *c, const struct proxy_result *r,
    const char *proxy)
{
	char peer[EO_ADDR_TEXT_MAX];

	conn_peer_text(c, peer, sizeof(peer));
	log_debug("listener %s: conn %u.%u accepted from %s (PROXY v%d%s "
	    "from %s)", c->c_lc->name, c->c_home->id, c->c_id, peer,
	    r->version, r->command == EO_PROXY_CMD_LOCAL ? " LOCAL" : "",
	    proxy);
}

/*
 * The header is whole at data[0..len) (the read buffer or the held
 * input): admit the client, then serve what follows it.
 */
static void
conn_proxy_done(struct conn *c, const unsigned char *data, size_t len,
    const struct proxy_result *r)
{
	char proxy[EO_ADDR_TEXT_MAX] = "";
	const unsigned char *rest = data + r->header_len;
	size_t n = len - r->header_len;

	if (r->transport == SOCK_DGRAM) {
		conn_proxy_bad(c, "a UDP client on a TCP listener");
		return;
	}
	if (log_enabled(EO_LOG_DEBUG))
		conn_peer_text(c, proxy, sizeof(proxy));
	if (conn_proxy_admit(c, r) == -1)
		return;
	c->c_check = r->command == EO_PROXY_CMD_LOCAL;
	conn_proxy_accepted(c);
	conn_set_state(c, EO_CONN_SERVING);
	conn_progress(c, mono_ms());
	if (log_enabled(EO_LOG_DEBUG))
		conn_proxy_log(c, r, proxy);
	if (c->c_lc->tls != NULL) {
		/* Read to its last byte and no further: the ClientHello
		   waits in the socket. */
		conn_tls_start(c);
		return;
	}
	if (c->c_held != NULL && data == c->c_held->data) {
		/* The protocol's input starts at the held input's start. */
		conn_keep(c, rest, n, 1);
		rest = c->c_held->data;
	}
	if (n > 0 || (c->c_flags & EO_CF_PEER_EOF))
		conn_serve(c, rest, n);
	else
		conn_update(c);
}

/*
 * Input before the header is whole: held until proxy_parse() decides.
 * The parser looks at everything from the first byte each time; a
 * header is small (EO_PROXY_HEADER_MAX) and almost always arrives in
 * one read, so that is no cost.
 */
static void
conn_proxy_input(struct conn *c, const unsigned char *data, size_t n)
{
	struct proxy_result r;

	if (conn_held(c) > 0) {
		if (conn_hold_more(c, data, n) == -1) {
			conn_close(c, "error: out of memory");
			return;
		}
		data = c->c_held->data;
		n = c->c_held->len;
	}
	switch (proxy_parse(data, n, &r)) {
	case EO_PROXY_DONE:
		conn_proxy_done(c, data, n, &r);
		break;
	case EO_PROXY_INVALID:
		conn_proxy_bad(c, r.reason);
		break;
	case EO_PROXY_NEED_MORE:
		if (c->c_flags & EO_CF_PEER_EOF)
			conn_proxy_bad(c, "client EOF before its end");
		else if (conn_held(c) == 0 && conn_keep(c, data, n, 0) == -1)
			conn_close(c, "error: out of memory");
		break;
	}
}

/* n bytes read into the worker's buffer (0: the client's EOF). */
static void
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
		conn_proxy_input(c, h->rbuf, n);
	else if (conn_held(c) == 0)
		conn_serve(c, h->rbuf, n);	/* the usual case */
	else if (conn_hold_more(c, h->rbuf, n) == -1)
		conn_close(c, "error: out of memory");
	else
		conn_serve(c, c->c_held->data, c->c_held->len);
}

static void
conn_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_home *h = c->c_home;
	ssize_t n;

	(void)what;
	if (c->c_state == EO_CONN_PROXY && c->c_lc->tls != NULL) {
		conn_tls_proxy(c);	/* the ClientHello must stay */
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
static void
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
	}
	conn_update(c);
}

/*
 * The protocol speaks first (daytime, time, qotd) or produces output
 * from the start (chargen); speaking may be all it does.
 */
static void
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
static void
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
static void
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

/* ---- TLS ---------------------------------------------------------- */

/*
 * A TLS connection's I/O goes through libevent's OpenSSL bufferevent,
 * made when the handshake starts and kept for the connection's life
 * (it holds the session, so it is not freed when quiet): it reads and
 * decrypts into its input, encrypts and writes its output.  The read
 * callback moves the input into the worker's buffer, so protocols and
 * the serve path are the plaintext ones: one copy, small next to
 * decrypting.  Replies are always queued (conn_send) and the same
 * watermarks give backpressure.  At the end close_notify goes out, the
 * bufferevent is dropped, and the lingering close is the plain one.
 *
 * libevent makes the SSL calls and moves OpenSSL's per-thread error
 * queue into the bufferevent when one fails; ours clear it first.
 */

/* ", client SUBJECT" for the log, or nothing without a certificate. */
static void
conn_tls_subject(const struct conn *c, char *buf, size_t len)
{
	char subj[200];

	if (tls_peer_subject(c->c_ssl, subj, sizeof(subj)))
		snprintf(buf, len, ", client %s", subj);
}

/*
 * A handshake that failed or never came: counted as a refusal (for the
 * burst line, with who and why) and closed with why, in the config's
 * words.
 */
static void
conn_tls_bad(struct conn *c, const char *why, const char *reason)
{
	char who[EO_ADDR_TEXT_MAX + 200], peer[EO_ADDR_TEXT_MAX];

	conn_peer_text(c, peer, sizeof(peer));
	snprintf(who, sizeof(who), "from %s: %s", peer, reason);
	conn_refuse_late(c, EO_REFUSED_TLS, why, who, 0);
}

static void
conn_tls_trigger(struct bufferevent *bev)
{
	/* Deferred: it runs after this callback, not inside it. */
	bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
	    BEV_TRIG_DEFER_CALLBACKS);
}

static void
conn_tls_reading(struct conn *c, int on)
{
	if (on && !(c->c_flags & EO_CF_READING)) {
		bufferevent_enable(c->c_bev, EV_READ);
		c->c_flags |= EO_CF_READING;
		/* What was decrypted before the pause is not announced
		   again by libevent: ask for the read callback. */
		if (evbuffer_get_length(bufferevent_get_input(c->c_bev)) > 0 ||
		    (c->c_flags & EO_CF_TLS_EOF))
			conn_tls_trigger(c->c_bev);
	} else if (!on && (c->c_flags & EO_CF_READING)) {
		bufferevent_disable(c->c_bev, EV_READ);
		c->c_flags &= (uint8_t)~EO_CF_READING;
	}
}

/* Decrypted input: a read's worth at a time, as from the socket. */
static void
conn_tls_readcb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int n;

	if (!(c->c_flags & EO_CF_READING))
		return;
	if (evbuffer_get_length(in) == 0) {
		if (c->c_flags & EO_CF_TLS_EOF) {
			c->c_flags &= (uint8_t)~EO_CF_TLS_EOF;
			conn_input(c, 0);	/* all served: now the EOF */
		}
		return;
	}
	if ((n = evbuffer_remove(in, c->c_home->rbuf, EO_READ_CHUNK)) <= 0)
		return;
	/* More than a read's worth: the rest on the next round, after the
	   neighbours (the trigger dies with the bufferevent if c does). */
	if (evbuffer_get_length(in) > 0)
		conn_tls_trigger(bev);
	conn_input(c, (size_t)n);
}

/* The handshake is done: the protocol starts as on plaintext. */
static void
conn_tls_ready(struct conn *c)
{
	tls_session_trim(c->c_ssl);
	conn_set_state(c, EO_CONN_SERVING);
	conn_progress(c, mono_ms());
	if (log_enabled(EO_LOG_DEBUG)) {
		char subj[256] = "";

		conn_tls_subject(c, subj, sizeof(subj));
		log_debug("listener %s: conn %u.%u: %s %s%s", c->c_lc->name,
		    c->c_home->id, c->c_id, SSL_get_version(c->c_ssl),
		    SSL_get_cipher_name(c->c_ssl), subj);
	}
	if (c->c_lc->proto->greet != NULL || c->c_lc->proto->produce != NULL)
		conn_start(c);
	else
		conn_update(c);
}

/*
 * Handshake done or failed, the client's close_notify or EOF, errors.
 * libevent keeps a failure's SSL_get_error() code (no library: lib 0),
 * then OpenSSL's queue; its stack pops the last first, and the first
 * error queued is the cause.
 */
static void
conn_tls_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char reason[160], why[200];
	unsigned long e, first = 0;

	if (what & BEV_EVENT_CONNECTED) {
		conn_tls_ready(c);
		return;
	}
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(e) != 0)
			first = e;
	if (first != 0)
		tls_error_string(first, reason, sizeof(reason));
	if (c->c_state == EO_CONN_HANDSHAKE) {
		if (first == 0)
			snprintf(reason, sizeof(reason), "%s", (what &
			    BEV_EVENT_EOF) ? "client closed during it" :
			    "connection error");
		snprintf(why, sizeof(why), "TLS handshake failed: %s", reason);
		conn_tls_bad(c, why, reason);
	} else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_WRITING)) {
		/*
		 * Told from inside libevent's read loop, maybe before the
		 * bytes read with it reach the input: the read callback
		 * serves them first, then the EOF.  libevent stopped
		 * writing at the news: what is owed still goes out.
		 */
		c->c_flags |= EO_CF_TLS_EOF;
		bufferevent_enable(bev, EV_WRITE);
		conn_tls_trigger(bev);
	} else if (first != 0) {
		snprintf(why, sizeof(why), "error: TLS: %s", reason);
		conn_close(c, why);
	} else
		conn_eventcb(bev, what, arg);
}

/* From the plain socket to the TLS bufferevent; the handshake begins. */
static void
conn_tls_start(struct conn *c)
{
	struct bufferevent *bev;
	SSL *ssl;

	conn_set_reading(c, 0);		/* c_ev reads no more */
	conn_drop_bev(c);
	ERR_clear_error();
	if ((ssl = tls_ssl_new(c->c_lc->tls)) == NULL) {
		conn_close(c, "error: out of memory");
		return;
	}
	/* Not CLOSE_ON_FREE: the socket and the SSL outlive it. */
	bev = bufferevent_openssl_socket_new(c->c_home->base, conn_fd(c), ssl,
	    BUFFEREVENT_SSL_ACCEPTING, 0);
	if (bev == NULL) {
		SSL_free(ssl);
		conn_close(c, "error: out of memory");
		return;
	}
	c->c_ssl = ssl;
	c->c_bev = bev;
	c->c_flags |= EO_CF_READING;
	/* A client's FIN without close_notify ends its input as on
	   plaintext: truncation means nothing to echo or oracle.  With
	   OpenSSL 3 it is SSL_OP_IGNORE_UNEXPECTED_EOF (tls.c) that
	   makes it an EOF; this flag serves older ones. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, conn_tls_readcb, conn_writecb, conn_tls_eventcb,
	    c);
	bufferevent_setwatermark(bev, EV_WRITE, EO_OUT_LOW, 0);
	/* libevent decrypts 4 KiB a call unless told a high mark. */
	bufferevent_setwatermark(bev, EV_READ, 0, EO_READ_CHUNK);
	/* A new bufferevent only writes; reading starts with the
	   session, once the handshake is done. */
	bufferevent_enable(bev, EV_READ);
	conn_set_state(c, EO_CONN_HANDSHAKE);
}

/*
 * All output is out: close_notify, so the client knows it has every
 * reply.  Written straight to the socket; if the client stopped
 * reading and the socket is full, it goes without and the FIN alone
 * ends the stream.  The client's own close_notify is not awaited: the
 * lingering close reads and drops whatever comes.
 */
static void
conn_tls_finish(struct conn *c)
{
	ERR_clear_error();
	(void)SSL_shutdown(c->c_ssl);
	ERR_clear_error();
	conn_drop_bev(c);
}

/*
 * Any close once the session is up sends close_notify first, unless it
 * went or output waits: a record may then be half written, and OpenSSL
 * sends nothing else before it is whole (conn_tls_closing() waits for
 * it when a timer ends the session).
 */
static void
conn_tls_notify(struct conn *c)
{
	if (conn_is_tls(c) && c->c_state != EO_CONN_HANDSHAKE &&
	    conn_queued(c) == 0 &&
	    !(SSL_get_shutdown(c->c_ssl) & SSL_SENT_SHUTDOWN))
		conn_tls_finish(c);
}

/*
 * Drops the queued output but the first chain: libevent may have
 * begun a record with it, and must retry the same bytes (its
 * last_write) for OpenSSL to finish that record.  The chain moves out
 * and back by pointer, so they stay where they were.
 */
static void
conn_tls_cut(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->c_bev), *keep;
	struct evbuffer_iovec first;
	size_t dropped;

	if (evbuffer_peek(out, -1, NULL, &first, 1) < 1 ||
	    (keep = evbuffer_new()) == NULL)
		return;		/* it all goes, within EO_LINGER_MS */
	if (evbuffer_remove_buffer(out, keep, first.iov_len) ==
	    (int)first.iov_len) {
		dropped = evbuffer_get_length(out);
		evbuffer_drain(out, dropped);
		c->c_out -= dropped;
	}
	evbuffer_prepend_buffer(out, keep);
	evbuffer_free(keep);
}

/*
 * A timer ended a TLS session while output waits: the client stopped
 * reading.  Dropped: the input and the output not yet begun.  The
 * record in flight goes out if the client reads again, then
 * close_notify (conn_finish), as at any end; EO_LINGER_MS at most.
 */
static void
conn_tls_closing(struct conn *c, const char *rule)
{
	char text[64];

	c->c_why = rule;	/* the timer's, not an earlier plan's */
	if (log_enabled(EO_LOG_DEBUG))
		log_debug("listener %s: conn %u.%u ending: %s; the record in "
		    "flight and close_notify go out if the client reads",
		    c->c_lc->name, c->c_home->id, c->c_id,
		    conn_rule_text(c, rule, text, sizeof(text)));
	c->c_flags = (uint8_t)((c->c_flags | EO_CF_DONE) &
	    ~(EO_CF_BLOCKED | EO_CF_PARTIAL));
	conn_tls_cut(c);
	conn_set_state(c, EO_CONN_CLOSING);
	conn_update(c);
}

/*
 * The PROXY header on a TLS listener: peeked, so that nothing past its
 * last byte leaves the socket, where OpenSSL reads the ClientHello.
 * Bytes of an unfinished header all belong to it: taken and held, as on
 * plaintext.
 */
static void
conn_tls_proxy(struct conn *c)
{
	unsigned char *buf = c->c_home->rbuf;
	struct proxy_result r;
	size_t had = conn_held(c), take;
	ssize_t n;
	int done = 0;

	n = recv(conn_fd(c), buf, EO_PROXY_HEADER_MAX, MSG_PEEK);
	if (n <= 0) {
		if (n == 0)
			conn_input(c, 0);
		else if (errno != EAGAIN && errno != EINTR)
			conn_close_err(c, "read", errno);
		return;
	}
	if ((had > 0 ? conn_hold_more(c, buf, (size_t)n) :
	    conn_keep(c, buf, (size_t)n, 0)) == -1) {
		conn_close(c, "error: out of memory");
		return;
	}
	switch (proxy_parse(c->c_held->data, c->c_held->len, &r)) {
	case EO_PROXY_INVALID:
		conn_proxy_bad(c, r.reason);
		return;
	case EO_PROXY_NEED_MORE:
		take = (size_t)n;
		break;
	default:
		take = r.header_len - had;
		done = 1;
		break;
	}
	/* Peeked, so there: recv(2) cannot return less. */
	if (recv(conn_fd(c), buf, take, 0) != (ssize_t)take) {
		conn_close_err(c, "read", errno);
		return;
	}
	c->c_in += take;
	stats_bump(&c->c_st->bytes_in, take);
	c->c_held->len = had + take;
	if (done) {
		c->c_held->len = 0;
		conn_proxy_done(c, c->c_held->data, r.header_len, &r);
	}
}

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
	if ((h->rbuf = malloc(EO_READ_CHUNK)) == NULL)
		return -1;
	return 0;
}

void
conn_home_fini(struct conn_home *h)
{
	conn_close_all(h, "shutdown");
	free(h->rbuf);
	h->rbuf = NULL;
}

void
conn_handoff_release(struct stats *stats, const struct conn_handoff *ho)
{
	close(ho->fd);
	stats_sub(&stats->conns, 1);
	listener_release(ho->lis, &ho->peer, ho->per_source);
	cfg_unref(ho->lc->cfg);
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

static void
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

/* A connection for ho, serving; NULL if it cannot be watched. */
static struct conn *
conn_new(struct conn_home *h, const struct conn_handoff *ho, uint32_t now)
{
	const struct protocol *p = ho->lc->proto;
	struct conn *c;

	c = calloc(1, sizeof(*c) + ((p->state_size + 7) & ~(size_t)7));
	if (c == NULL)
		return NULL;
	event_assign(&c->c_ev, h->base, ho->fd, EV_READ | EV_PERSIST,
	    conn_readcb, c);
	if (event_add(&c->c_ev, NULL) == -1) {
		free(c);
		return NULL;
	}
	c->c_home = h;
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

void
conn_adopt(struct conn_home *h, const struct conn_handoff *ho)
{
	uint32_t now = mono_ms();
	struct conn *c;
	int one = 1;

	if (h->draining) {
		conn_refuse(h, ho, EO_REFUSED_OTHER, "shutting down");
		return;
	}
	if (ho->evict && !conn_evict(h, now, ho->evict_after)) {
		conn_refuse(h, ho, EO_REFUSED_FULL,
		    "max_connections reached, none quiet");
		return;
	}
	if ((c = conn_new(h, ho, now)) == NULL) {
		conn_refuse(h, ho, EO_REFUSED_OTHER,
		    "out of memory or cannot watch the socket");
		return;
	}
	/* Replies are small and wanted now: no Nagle delay. */
	setsockopt(ho->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	TAILQ_INSERT_TAIL(&h->conns, c, c_entry);
	h->nconns++;
	if (log_enabled(EO_LOG_DEBUG))
		conn_log_accept(c);
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
	if (conn_is_tls(c) && c->c_state != EO_CONN_HANDSHAKE &&
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
	/* A quiet connection gives its buffers back: ~1 KiB each. */
	if (mono_since(now, c->c_t_progress) >= EO_QUIET_MS) {
		/* Not TLS's: it holds the session, not just output. */
		if (c->c_bev != NULL && conn_queued(c) == 0 &&
		    !conn_is_tls(c))
			conn_drop_bev(c);
		if (c->c_held != NULL && c->c_held->len == 0) {
			free(c->c_held);
			c->c_held = NULL;
		}
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
		next = TAILQ_NEXT(c, c_entry);
		if (!conn_carriable(c->c_lc)) {
			conn_end_now(c, "restart (TLS state cannot be carried)");
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
		if ((c->c_flags & EO_CF_BLOCKED) && c->c_held != NULL &&
		    conn_queued(c) <= EO_OUT_LOW)
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
