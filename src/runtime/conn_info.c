/*
 * The connection's facts for a protocol that describes them (http's
 * response, protocol.h's struct proto_conn_info): who the client is,
 * through which proxy, on which listener.  Filled per call, only for a
 * protocol that asks (wants_info): most never pay for it.
 */
#include "conn_int.h"

/* The strings of one call: a worker serves one call at a time. */
static __thread char conn_info_client[EO_ADDR_TEXT_MAX];
static __thread char conn_info_proxy[EO_ADDR_TEXT_MAX];

/* The address alone and the port of sa (the proxy's own side). */
static uint16_t
conn_info_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, buf, (socklen_t)len);
		return ntohs(in4->sin_port);
	}
	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
		return ntohs(in6->sin6_port);
	}
	snprintf(buf, len, "?");
	return 0;
}

void
conn_info_fill(const struct conn *c, struct proto_conn_info *ci)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(ci, 0, sizeof(*ci));
	ci->listener = c->c_lc->name;
	peer_key_format(&c->c_peer, conn_info_client,
	    sizeof(conn_info_client));
	ci->client_addr = conn_info_client;
	ci->client_port = c->c_port;
	/* Behind a proxy, c_peer is the client the header named; the
	   socket's peer is the proxy itself. */
	if (c->c_lc->proxy_protocol && !c->c_check &&
	    getpeername(event_get_fd(&c->c_ev), (struct sockaddr *)&ss, &sl) == 0) {
		ci->proxy_port = conn_info_addr(&ss, conn_info_proxy,
		    sizeof(conn_info_proxy));
		ci->proxy_addr = conn_info_proxy;
	}
}
