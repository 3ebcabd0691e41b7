/*
 * The PROXY header phase: read before anything of the protocol runs
 * (peeked on a TLS listener), the client it names admitted (allow/deny,
 * limits) in the worker, then the connection steps on to TLS (through
 * c_home->tls) or serving (conn.c).
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

/* ---- the PROXY header --------------------------------------------- */

/*
 * Refused after the accept (bad header, allow/deny, per-source limit):
 * counted, noted for the burst line with who (an address and why), and
 * closed with why.
 */
void
conn_refuse_late(struct conn *c, enum stats_refusal reason, const char *why,
    const char *who, unsigned limit)
{
	conn_count_refusal(c, reason, who, limit);
	conn_close(c, why);
}

/* A header that can never be: the proxy's mistake, named by its address. */
void
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
	c->c_port = peer_port(&r->src.sa);
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
void
conn_proxy_accepted(struct conn *c)
{
	stats_bump(&c->c_home->st->accepted, 1);
	stats_bump(&c->c_st->accepted, 1);
}

/* The accept line, once the client is known: who, and through whom. */
void
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
void
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
		c->c_home->tls->start(c);
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
void
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

/*
 * The PROXY header on a TLS listener: peeked, so that nothing past its
 * last byte leaves the socket, where OpenSSL reads the ClientHello.
 * Bytes of an unfinished header all belong to it: taken and held, as on
 * plaintext.
 */
void
conn_proxy_peek(struct conn *c)
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

/* The phase conn.c reaches through c_home->proxy (conn_home_init). */
const struct conn_phase conn_phase_proxy = {
	.input = conn_proxy_input,
	.peek = conn_proxy_peek,
};
