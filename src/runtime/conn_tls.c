/*
 * The TLS phase: the handshake within tls_handshake_timeout, then all
 * I/O through the TLS bufferevent until close_notify.  Contexts are the
 * configuration's (src/config/cfg_tls.c).
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
void
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
void
conn_tls_bad(struct conn *c, const char *why, const char *reason)
{
	char who[EO_ADDR_TEXT_MAX + 200], peer[EO_ADDR_TEXT_MAX];

	conn_peer_text(c, peer, sizeof(peer));
	snprintf(who, sizeof(who), "from %s: %s", peer, reason);
	conn_count_refusal(c, EO_REFUSED_TLS, who, 0);
	conn_close(c, why);
}

static void
conn_tls_trigger(struct bufferevent *bev)
{
	/* Deferred: it runs after this callback, not inside it. */
	bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
	    BEV_TRIG_DEFER_CALLBACKS);
}

void
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
void
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
	   OpenSSL 3 it is SSL_OP_IGNORE_UNEXPECTED_EOF (cfg_tls.c) that
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
void
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
void
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
void
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

/* The transport conn.c reaches through c_home->tls (conn_home_init). */
const struct conn_xprt conn_xprt_tls = {
	.start = conn_tls_start,
	.reading = conn_tls_reading,
	.finish = conn_tls_finish,
	.notify = conn_tls_notify,
	.subject = conn_tls_subject,
};
