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
 * writes, the write event, the write timeout); an unfinished unit goes to
 * the connection's small held buffer, and the next input is appended to
 * it so that the protocol always sees one piece.
 *
 * Life of a connection:
 *
 *	SERVING --(protocol closes, client EOF, shutdown)--> FLUSHING
 *	FLUSHING --(output sent)--> LINGERING, or closed if the client
 *	    already sent EOF
 *	LINGERING --(client EOF, or EO_LINGER_MS)--> closed
 *
 * Every close goes through conn_close(), which says why once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "protocol.h"
#include "stats.h"

#define EO_READ_CHUNK	(64 * 1024)	/* most one recv(2) takes */
#define EO_OUT_HIGH	(128 * 1024)	/* queued output: stop reading */
#define EO_OUT_LOW	(32 * 1024)	/* ... and start again */
#define EO_LINGER_MS	2000		/* wait for the client's EOF */
#define EO_QUIET_MS	2000		/* then a quiet conn frees buffers */
#define EO_LOOK_MS	1000		/* no progress for this long: ask
					   the kernel what the client took */

enum conn_state {
	EO_CONN_SERVING,	/* reading input and answering it */
	EO_CONN_FLUSHING,	/* reading no more; sending what is owed */
	EO_CONN_LINGERING	/* all sent, write side shut; discarding
				   input until EOF, so that no RST destroys
				   replies the client has not read yet */
};

#define EO_CF_READING	0x01u	/* c_ev is added */
#define EO_CF_PEER_EOF	0x02u	/* the client sent EOF */
#define EO_CF_DONE	0x04u	/* the protocol closed: input discarded */
#define EO_CF_PARTIAL	0x08u	/* an unfinished unit is held */
#define EO_CF_BLOCKED	0x10u	/* whole units wait for output room */
#define EO_CF_SOURCE	0x20u	/* counted in the per-source table */
#define EO_CF_OUTPUT	0x40u	/* output may wait in the kernel */

struct conn {
	struct event		 c_ev;		/* EV_READ|EV_PERSIST */
	TAILQ_ENTRY(conn)	 c_entry;	/* in c_home->conns */
	struct conn_home	*c_home;
	struct listener		*c_lis;		/* counted against; ref */
	const struct cfg_listener *c_lc;	/* settings; cfg ref held */
	struct bufferevent	*c_bev;		/* queued output; NULL: none */
	struct held		*c_held;	/* input kept for the next
						   call; NULL: none */
	uint32_t		 c_t_progress;	/* ms: unit taken, bytes sent */
	uint32_t		 c_t_unit;	/* ms: unfinished unit began */
	uint32_t		 c_t_linger;	/* ms: lingering ends */
	uint32_t		 c_t_out;	/* ms: output began to wait, or
						   the client last took some */
	uint64_t		 c_in;		/* bytes read and served */
	uint64_t		 c_out;		/* bytes sent or queued */
	uint64_t		 c_acked;	/* of c_out, the client had
						   taken at the last look */
	uint8_t			 c_state;	/* enum conn_state */
	unsigned		 c_flags;	/* EO_CF_* */
	struct peer_key		 c_peer;	/* for the per-source count */
	uint64_t		 c_pstate[];	/* the protocol's state */
};

/* Input kept between calls: an unfinished unit, or whole units waiting
   for output room.  Bounded by one read plus the protocol's largest unit. */
struct held {
	size_t			 len;
	size_t			 cap;
	unsigned char		 data[];
};

static void	conn_readcb(evutil_socket_t, short, void *);
static void	conn_writecb(struct bufferevent *, void *);
static void	conn_eventcb(struct bufferevent *, short, void *);
static void	conn_serve(struct conn *, const unsigned char *, size_t);
static void	conn_update(struct conn *);
static void	conn_close(struct conn *, const char *);

/* Milliseconds, monotonic, wrapping; compare with since(). */
static uint32_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000);
}

static uint32_t
since(uint32_t now, uint32_t then)
{
	return now - then;
}

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
	if (on && !(c->c_flags & EO_CF_READING)) {
		if (event_add(&c->c_ev, NULL) == 0)
			c->c_flags |= EO_CF_READING;
	} else if (!on && (c->c_flags & EO_CF_READING)) {
		event_del(&c->c_ev);
		c->c_flags &= ~EO_CF_READING;
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
	c->c_bev = NULL;
}

static void
conn_close_errno(struct conn *c, const char *what)
{
	char why[128];

	snprintf(why, sizeof(why), "%s: %s", what, strerror(errno));
	conn_close(c, why);
}

/* ---- the connection's life ---------------------------------------- */

static void
conn_close(struct conn *c, const char *why)
{
	struct conn_home *h = c->c_home;
	int fd = conn_fd(c);

	log_debug("listener %s: fd %d closed: %s (read %llu, sent %llu "
	    "bytes)", c->c_lc->name, fd, why, (unsigned long long)c->c_in,
	    (unsigned long long)(c->c_out - conn_queued(c)));
	conn_set_reading(c, 0);
	conn_drop_bev(c);
	free(c->c_held);
	close(fd);
	TAILQ_REMOVE(&h->conns, c, c_entry);
	h->nconns--;
	atomic_fetch_sub_explicit(&h->load, 1, memory_order_relaxed);
	stats_sub(&h->stats->conns, 1);
	listener_release(c->c_lis, &c->c_peer, c->c_flags & EO_CF_SOURCE);
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
	if ((c->c_flags & EO_CF_PEER_EOF) ||
	    shutdown(conn_fd(c), SHUT_WR) == -1) {
		conn_close(c, "done");
		return;
	}
	conn_drop_bev(c);
	c->c_state = EO_CONN_LINGERING;
	c->c_t_linger = now_ms() + EO_LINGER_MS;
	conn_set_reading(c, 1);
}

/* Decides whether to read, and finishes what has nothing left to do. */
static void
conn_update(struct conn *c)
{
	size_t queued = conn_queued(c);

	if (c->c_state == EO_CONN_SERVING &&
	    (c->c_flags & (EO_CF_DONE | EO_CF_PEER_EOF)))
		c->c_state = EO_CONN_FLUSHING;
	if (c->c_state == EO_CONN_FLUSHING) {
		if (queued == 0 && !(c->c_flags & EO_CF_BLOCKED)) {
			conn_finish(c);
			return;
		}
		conn_set_reading(c, 0);
		return;
	}
	/* Backpressure: a client that does not read stops being read. */
	conn_set_reading(c, queued < EO_OUT_HIGH &&
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
 * Sends one call's replies: at once with one system call if nothing is
 * queued (saving the bufferevent's round through epoll), never around
 * queued bytes (order is everything).  What the socket does not take is
 * copied to the output queue: the pieces may point into buffers that the
 * next read reuses.  Returns -1 if the connection was closed.
 */
static int
conn_send(struct conn *c, const struct proto_out *out)
{
	struct evbuffer *q;
	unsigned i = 0;
	size_t skip = 0;

	if (out->niov == 0)
		return 0;
	c->c_out += out->len;
	if (conn_queued(c) == 0) {
		ssize_t n = conn_write(c, out);

		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			conn_close_errno(c, "write");
			return -1;
		}
		if (n == (ssize_t)out->len)
			return 0;
		for (skip = n > 0 ? (size_t)n : 0; i < out->niov &&
		    skip >= out->iov[i].iov_len; i++)
			skip -= out->iov[i].iov_len;
	}
	if (conn_need_bev(c) == -1) {
		conn_close(c, "out of memory");
		return -1;
	}
	q = bufferevent_get_output(c->c_bev);
	for (; i < out->niov; i++, skip = 0)
		if (evbuffer_add(q, (const char *)out->iov[i].iov_base + skip,
		    out->iov[i].iov_len - skip) == -1) {
			conn_close(c, "out of memory");
			return -1;
		}
	return 0;
}

/*
 * One round: runs the protocol on data (the worker's read buffer, or the
 * held input), sends the replies, keeps what waits.  Returns -1 if the
 * connection was closed.
 */
static int
conn_serve_once(struct conn *c, const unsigned char *data, size_t len)
{
	struct conn_home *h = c->c_home;
	const struct cfg_listener *lc = c->c_lc;
	const struct protocol *p = lc->proto;
	struct proto_in in = { data, len };
	struct proto_out out;
	enum proto_verdict v = EO_PROTO_OK;
	size_t queued = conn_queued(c);
	int was_partial = c->c_flags & EO_CF_PARTIAL;
	int in_held = c->c_held != NULL && data == c->c_held->data;
	uint32_t now;

	out.iov = h->iov;
	out.niov = 0;
	out.maxiov = EO_IOV;
	out.len = 0;
	out.room = queued < EO_OUT_HIGH ? EO_OUT_HIGH - queued : 0;
	out.full = 0;
	out.units = 0;
	out.rng = &h->rng;
	if (!(c->c_flags & EO_CF_DONE)) {
		v = p->input(c->c_pstate, lc->popts, &in, &out);
		if (v == EO_PROTO_OK && !out.full &&
		    (c->c_flags & EO_CF_PEER_EOF))
			v = p->eof(c->c_pstate, lc->popts, &in, &out);
	}
	c->c_flags &= ~(EO_CF_BLOCKED | EO_CF_PARTIAL);
	if (v == EO_PROTO_CLOSE || (c->c_flags & EO_CF_DONE)) {
		c->c_flags |= EO_CF_DONE;
		in.len = 0;
	} else if (in.len > 0)
		c->c_flags |= out.full ? EO_CF_BLOCKED : EO_CF_PARTIAL;

	now = now_ms();
	if (out.units > 0)
		conn_progress(c, now);
	if ((c->c_flags & EO_CF_PARTIAL) && (!was_partial || out.units > 0))
		c->c_t_unit = now;

	/* Send before keeping: the replies may point into the held input. */
	if (conn_send(c, &out) == -1)
		return -1;
	/* The write clock starts when output may begin to wait. */
	if (out.niov > 0 && !(c->c_flags & EO_CF_OUTPUT)) {
		c->c_flags |= EO_CF_OUTPUT;
		c->c_t_out = now;
	}
	if (conn_keep(c, in.data, in.len, in_held) == -1) {
		conn_close(c, "out of memory");
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

static void
conn_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_home *h = c->c_home;
	ssize_t n;

	(void)what;
	n = recv(fd, h->rbuf, EO_READ_CHUNK, 0);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close_errno(c, "read");
		return;
	}
	if (c->c_state == EO_CONN_LINGERING) {
		if (n == 0)
			conn_close(c, "closed after the client's EOF");
		return;		/* late input: dropped */
	}
	c->c_in += (size_t)n;
	if (n == 0)
		c->c_flags |= EO_CF_PEER_EOF;
	if (conn_held(c) == 0)
		conn_serve(c, h->rbuf, (size_t)n);	/* the usual case */
	else if (conn_hold_more(c, h->rbuf, (size_t)n) == -1)
		conn_close(c, "out of memory");
	else
		conn_serve(c, c->c_held->data, c->c_held->len);
}

/* Output fell to the low watermark: the client reads again. */
static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	c->c_t_out = now_ms();
	conn_progress(c, c->c_t_out);
	if (c->c_flags & EO_CF_BLOCKED)
		conn_serve(c, c->c_held->data, c->c_held->len);
	else
		conn_update(c);
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	(void)what;
	errno = EVUTIL_SOCKET_ERROR();
	conn_close_errno(c, "write");
}

/* ---- the worker's side -------------------------------------------- */

int
conn_home_init(struct conn_home *h, struct event_base *base,
    struct stats *stats)
{
	memset(h, 0, sizeof(*h));
	h->base = base;
	h->stats = stats;
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
	conn_close_all(h, "worker stopped");
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

	if (c == NULL || since(now, c->c_t_progress) < secs * 1000u)
		return 0;
	stats_add(&h->stats->evicted, 1);
	conn_close(c, "evicted: max_connections reached and it was the "
	    "quietest");
	return 1;
}

static void
conn_refuse(struct conn_home *h, const struct conn_handoff *ho,
    enum stats_refusal reason, const char *why)
{
	log_debug("listener %s: fd %d refused: %s", ho->lc->name, ho->fd, why);
	stats_add(&h->stats->refused[reason], 1);
	atomic_fetch_sub_explicit(&h->load, 1, memory_order_relaxed);
	conn_handoff_release(h->stats, ho);
}

void
conn_adopt(struct conn_home *h, const struct conn_handoff *ho)
{
	const struct protocol *p = ho->lc->proto;
	uint32_t now = now_ms();
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
	c = calloc(1, sizeof(*c) + ((p->state_size + 7) & ~(size_t)7));
	if (c == NULL) {
		conn_refuse(h, ho, EO_REFUSED_OTHER, "out of memory");
		return;
	}
	/* Replies are small and wanted now: no Nagle delay. */
	setsockopt(ho->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	event_assign(&c->c_ev, h->base, ho->fd, EV_READ | EV_PERSIST,
	    conn_readcb, c);
	c->c_home = h;
	c->c_lis = ho->lis;
	c->c_lc = ho->lc;
	c->c_peer = ho->peer;
	c->c_flags = ho->per_source ? EO_CF_SOURCE : 0;
	c->c_t_progress = now;
	c->c_state = EO_CONN_SERVING;
	if (event_add(&c->c_ev, NULL) == -1) {
		free(c);
		conn_refuse(h, ho, EO_REFUSED_OTHER,
		    "cannot watch the socket");
		return;
	}
	c->c_flags |= EO_CF_READING;
	TAILQ_INSERT_TAIL(&h->conns, c, c_entry);
	h->nconns++;
	if (p->init != NULL)
		p->init(c->c_pstate, ho->lc->popts);
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
	uint64_t acked;
	int unacked;

	if (ioctl(conn_fd(c), SIOCOUTQ, &unacked) == -1 || unacked < 0)
		return 1;	/* no news: the clocks run on */
	acked = c->c_out - queued - (uint64_t)unacked;
	if (acked != c->c_acked) {
		c->c_acked = acked;
		c->c_t_out = now;
		conn_progress(c, now);
	}
	if (queued == 0 && unacked == 0) {
		c->c_flags &= ~EO_CF_OUTPUT;
		return 0;
	}
	return 1;
}

static void
conn_tick(struct conn *c, uint32_t now)
{
	const struct cfg_listener *lc = c->c_lc;
	int waiting;

	if (c->c_state == EO_CONN_LINGERING) {
		if ((int32_t)(now - c->c_t_linger) >= 0)
			conn_close(c, "lingered long enough");
		return;
	}
	/* Progress within the last look: no clock can have run out. */
	waiting = since(now, c->c_t_progress) >= EO_LOOK_MS &&
	    ((c->c_flags & EO_CF_OUTPUT) || conn_queued(c) > 0) &&
	    conn_output_moved(c, now);
	/* While output waits, the client owes reading, not input. */
	if (waiting && lc->write_timeout != 0) {
		if (since(now, c->c_t_out) >= lc->write_timeout * 1000u) {
			stats_add(&c->c_home->stats->timeouts, 1);
			conn_close(c, "write timeout: the client reads nothing");
			return;
		}
	} else if (c->c_state == EO_CONN_SERVING && lc->idle_timeout != 0 &&
	    since(now, c->c_t_progress) >= lc->idle_timeout * 1000u) {
		stats_add(&c->c_home->stats->timeouts, 1);
		conn_close(c, "idle timeout");
		return;
	}
	if ((c->c_flags & EO_CF_PARTIAL) && lc->unit_timeout != 0 &&
	    since(now, c->c_t_unit) >= lc->unit_timeout * 1000u) {
		stats_add(&c->c_home->stats->timeouts, 1);
		conn_close(c, "unfinished unit timed out");
		return;
	}
	/* A quiet connection gives its buffers back: ~1 KiB each. */
	if (since(now, c->c_t_progress) >= EO_QUIET_MS) {
		if (c->c_bev != NULL && conn_queued(c) == 0)
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
	uint32_t now = now_ms();

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

	if (c->c_state == EO_CONN_LINGERING)
		return;
	if (conn_queued(c) == 0 && !(c->c_flags & EO_CF_BLOCKED) &&
	    ioctl(conn_fd(c), FIONREAD, &unread) == 0 && unread == 0) {
		conn_close(c, "shutting down");
		return;
	}
	c->c_state = EO_CONN_FLUSHING;
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
