/*
 * What the files of a connection share (conn.c, conn_proxy.c, conn_tls.c,
 * conn_home.c, conn_new.c, conn_carry.c), and nothing else includes: struct conn, its
 * states and flags, and the functions one phase calls in another.  The
 * life of a connection is told in conn.c.  Worker thread only.
 */
#ifndef EO_CONN_INT_H
#define EO_CONN_INT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
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
#include "peer.h"
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

#define EO_CF_READING	0x01u	/* c_io's event is added, or the
				   park set has the socket */
#define EO_CF_PEER_EOF	0x02u	/* the client sent EOF */
#define EO_CF_DONE	0x04u	/* the protocol closed: input discarded */
#define EO_CF_PARTIAL	0x08u	/* an unfinished unit is held */
#define EO_CF_BLOCKED	0x10u	/* whole units wait for output room */
#define EO_CF_SOURCE	0x20u	/* counted in the per-source table */
#define EO_CF_OUTPUT	0x40u	/* output may wait in the kernel */
#define EO_CF_TLS_EOF	0x80u	/* TLS: the client's EOF came; the input
				   read before it is served first */

/*
 * Fields ordered by size, so that no padding is left: a quiet (parked)
 * connection is this struct, one 176-byte malloc chunk, and, if it was
 * ever busy, libevent's 40 bytes for its descriptor (tests/bench/
 * README.md, "An idle connection's bytes").  Its read event, 128 bytes,
 * exists only while it is busy (conn_park.c).
 */
struct conn {
	TAILQ_ENTRY(conn)	 c_entry;	/* in c_home->conns */
	uintptr_t		 c_io;		/* busy: its struct event *
						   (EV_READ|EV_PERSIST, from
						   conn_evpool.c); parked:
						   fd << 1 | 1, the worker's
						   park set watches it */
	struct conn_home	*c_home;
	struct listener		*c_lis;		/* counted against; ref */
	struct stats_slot	*c_st;		/* c_lis's, this worker's */
	const struct cfg_listener *c_lc;	/* settings; cfg ref held */
	struct bufferevent	*c_bev;		/* queued output; NULL: none */
	struct held		*c_held;	/* input kept for the next
						   call; NULL: none */
	const char		*c_why;		/* the rule that ends it; static
						   or in c_lc, NULL: serving */
	SSL			*c_ssl;		/* TLS: from the handshake to
						   the close; NULL: plaintext */
	struct event		*c_pause;	/* the protocol's pause_ms runs
						   (a delayed answer); NULL:
						   none, the usual case */
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
	uint64_t		 c_pstate[];	/* the protocol's state */
};

/* Input kept between calls: an unfinished unit, or whole units waiting
   for output room.  Bounded by one read plus the protocol's largest unit. */
struct held {
	size_t			 len;
	size_t			 cap;
	unsigned char		 data[];
};

/* c_bev is the TLS bufferevent: all I/O goes through it, c_io's event
   is not added.  From the handshake until close_notify is sent. */
static inline int
conn_is_tls(const struct conn *c)
{
	return c->c_ssl != NULL && c->c_bev != NULL;
}

/* Parked: no event of its own; the worker's park set watches it. */
static inline int
conn_parked(const struct conn *c)
{
	return (c->c_io & 1) != 0;
}

/* The socket, whether parked or not. */
static inline int
conn_sock(const struct conn *c)
{
	return conn_parked(c) ? (int)(c->c_io >> 1) :
	    (int)event_get_fd((struct event *)c->c_io);
}

/* What the park set watches a socket for: input, and the client's end
   of it told apart (conn_park.c). */
#define EO_PARK_EVENTS	(EPOLLIN | EPOLLRDHUP)

/* Watches c's socket for input: by its event, or, parked, by the park
   set.  0, or -1 if it cannot be watched. */
static inline int
conn_io_add(struct conn *c)
{
	struct epoll_event ev = { .events = EO_PARK_EVENTS, .data.ptr = c };

	if (!conn_parked(c))
		return event_add((struct event *)c->c_io, NULL);
	return epoll_ctl(c->c_home->park_fd, EPOLL_CTL_ADD, conn_sock(c), &ev);
}

/* Watches it no more. */
static inline void
conn_io_del(struct conn *c)
{
	if (!conn_parked(c))
		event_del((struct event *)c->c_io);
	else
		epoll_ctl(c->c_home->park_fd, EPOLL_CTL_DEL, conn_sock(c),
		    NULL);
}

/* conn.c: the state machine and the plain path. */
int	conn_fd(const struct conn *c);
size_t	conn_queued(const struct conn *c);
size_t	conn_held(const struct conn *c);
int	conn_keep(struct conn *c, const unsigned char *data, size_t len,
	    int in_held);
int	conn_hold_more(struct conn *c, const unsigned char *data, size_t len);
void	conn_progress(struct conn *c, uint32_t now);
void	conn_set_reading(struct conn *c, int on);
int	conn_need_bev(struct conn *c);
void	conn_drop_bev(struct conn *c);
void	conn_peer_text(const struct conn *c, char *buf, size_t len);
const char *conn_unit_rule(const struct cfg_listener *lc);
const char *conn_rule_text(const struct conn *c, const char *why,
	    char *buf, size_t len);
void	conn_end(struct conn *c, const char *why);
void	conn_close_err(struct conn *c, const char *what, int err);
void	conn_set_state(struct conn *c, enum conn_state state);
void	conn_close(struct conn *c, const char *why);
void	conn_finish(struct conn *c);
void	conn_update(struct conn *c);
int	conn_send(struct conn *c, const struct proto_out *out);
void	conn_serve(struct conn *c, const unsigned char *data, size_t len);
void	conn_input(struct conn *c, size_t n);
void	conn_readcb(evutil_socket_t fd, short what, void *arg);
void	conn_produce(struct conn *c);
void	conn_start(struct conn *c);
void	conn_writecb(struct bufferevent *bev, void *arg);
void	conn_eventcb(struct bufferevent *bev, short what, void *arg);
void	conn_expire_unit(struct conn *c, const char *rule);
void	conn_out_init(struct conn *c, struct proto_out *out);

/* conn_bye.c: the protocol's words when the daemon goes away. */
int	conn_going_away(struct conn *c);
extern const char conn_rule_idle[];
extern const char conn_rule_write[];

/* conn_refused.c: a refusal after the accept, counted; the caller
   closes. */
void	conn_count_refusal(struct conn *c, enum stats_refusal reason,
	    const char *who, unsigned limit);

/* conn_info.c: lends out the source of c's facts (proto_out's info),
   filled into its home's slot only when the protocol asks. */
void	conn_info_lend(struct conn *c, struct proto_out *out);

/*
 * What conn.c reaches without naming the file (conn_home_init() sets
 * c_home->proxy and c_home->tls): the PROXY phase and the TLS transport
 * call down into conn.c, never the other way, as HAProxy's xprt_ops.
 */
struct conn_phase {
	/* Input while the header is unfinished (plaintext listener). */
	void	(*input)(struct conn *c, const unsigned char *data, size_t n);
	/* The socket is readable on a TLS listener: peek, not read. */
	void	(*peek)(struct conn *c);
};
struct conn_xprt {
	void	(*start)(struct conn *c);	/* the handshake begins */
	void	(*reading)(struct conn *c, int on);
	void	(*finish)(struct conn *c);	/* close_notify, then plain */
	void	(*notify)(struct conn *c);	/* at a close: if it can go */
	void	(*subject)(const struct conn *c, char *buf, size_t len);
};

/* conn_proxy.c: the PROXY header. */
extern const struct conn_phase conn_phase_proxy;
void	conn_refuse_late(struct conn *c, enum stats_refusal reason,
	    const char *why, const char *who, unsigned limit);
void	conn_proxy_bad(struct conn *c, const char *reason);
void	conn_proxy_accepted(struct conn *c);
void	conn_proxy_log(struct conn *c, const struct proxy_result *r,
	    const char *proxy);
void	conn_proxy_done(struct conn *c, const unsigned char *data,
	    size_t len, const struct proxy_result *r);
void	conn_proxy_input(struct conn *c, const unsigned char *data, size_t n);
void	conn_proxy_peek(struct conn *c);

/* conn_tls.c: the TLS phase and transport. */
extern const struct conn_xprt conn_xprt_tls;
void	conn_tls_subject(const struct conn *c, char *buf, size_t len);
void	conn_tls_bad(struct conn *c, const char *why, const char *reason);
void	conn_tls_reading(struct conn *c, int on);
void	conn_tls_start(struct conn *c);
void	conn_tls_finish(struct conn *c);
void	conn_tls_notify(struct conn *c);
void	conn_tls_closing(struct conn *c, const char *rule);

/* conn_evpool.c: read events of busy connections, in pages given back
   to the system once empty. */
struct event *conn_ev_alloc(struct conn_home *h);
void	conn_ev_free(struct conn_home *h, struct event *ev);
void	conn_evpool_fini(struct conn_home *h);

/* conn_park.c: quiet connections watched without an event of their own. */
int	conn_park_init(struct conn_home *h);
void	conn_park_fini(struct conn_home *h);
void	conn_park(struct conn *c);

/* conn_new.c: a connection made from a hand-off, or the hand-off refused. */
void	conn_refuse(struct conn_home *h, const struct conn_handoff *ho,
	    enum stats_refusal reason, const char *why);
struct conn *conn_new(struct conn_home *h,
	    const struct conn_handoff *ho, uint32_t now);

#endif
