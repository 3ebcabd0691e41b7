/*
 * The connection's facts for a protocol that describes them (http's
 * response, protocol.h's struct proto_conn_info): who the client is,
 * through which proxy, on which listener.  Filled when a protocol that
 * sets wants_info asks, for a description: no other protocol, and no
 * WebSocket message or response that describes nothing, pays for it.
 * Over TLS, the session's facts too.
 */
#include <stddef.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "conn_int.h"

/* The strings of one call: a worker serves one call at a time. */
static __thread char conn_info_client[EO_ADDR_TEXT_MAX];
static __thread char conn_info_proxy[EO_ADDR_TEXT_MAX];
static __thread char conn_info_alpn[256];
static __thread char conn_info_subject[256];
static __thread char conn_info_issuer[256];
static __thread char conn_info_serial[80];
static __thread char conn_info_until[24];

/* The client's address and port, from the key and the port kept at
   adopt (the socket may be gone by the time it is logged). */
void
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

/* name in RFC 2253 order, one line, non-ASCII escaped. */
static void
conn_info_name(X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	if (b != NULL) {
		X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
		n = BIO_read(b, buf, (int)(len - 1));
		BIO_free(b);
	}
	buf[n > 0 ? n : 0] = '\0';
}

/* The client certificate's subject, issuer, serial and notAfter. */
static void
conn_info_cert(X509 *x, struct proto_conn_info *ci)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	struct tm tm;

	conn_info_name(X509_get_subject_name(x), conn_info_subject,
	    sizeof(conn_info_subject));
	conn_info_name(X509_get_issuer_name(x), conn_info_issuer,
	    sizeof(conn_info_issuer));
	snprintf(conn_info_serial, sizeof(conn_info_serial), "%s",
	    hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		strftime(conn_info_until, sizeof(conn_info_until),
		    "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(conn_info_until, sizeof(conn_info_until), "?");
	ci->cert_subject = conn_info_subject;
	ci->cert_issuer = conn_info_issuer;
	ci->cert_serial = conn_info_serial;
	ci->cert_not_after = conn_info_until;
}

/* The session's facts: version, cipher, SNI, ALPN, client certificate. */
static void
conn_info_tls(SSL *ssl, struct proto_conn_info *ci)
{
	const unsigned char *alpn;
	unsigned alen;
	X509 *x;

	ci->tls = 1;
	ci->tls_version = SSL_get_version(ssl);
	ci->tls_cipher = SSL_get_cipher_name(ssl);
	ci->tls_sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_get0_alpn_selected(ssl, &alpn, &alen);
	if (alen > 0) {
		snprintf(conn_info_alpn, sizeof(conn_info_alpn), "%.*s",
		    (int)alen, (const char *)alpn);
		ci->tls_alpn = conn_info_alpn;
	}
	if ((x = SSL_get0_peer_certificate(ssl)) != NULL)
		conn_info_cert(x, ci);
}

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

static void
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
	    getpeername(conn_sock(c), (struct sockaddr *)&ss, &sl) == 0) {
		ci->proxy_port = conn_info_addr(&ss, conn_info_proxy,
		    sizeof(conn_info_proxy));
		ci->proxy_addr = conn_info_proxy;
	}
	if (c->c_ssl != NULL)
		conn_info_tls(c->c_ssl, ci);
}

/* The facts of the connection the home lent src for (one call at a time
   per worker). */
static const struct proto_conn_info *
conn_info_get(const struct proto_info_src *src)
{
	const struct conn_home *ch = (const struct conn_home *)(const void *)
	    ((const char *)src - offsetof(struct conn_home, info_src));
	const struct conn *c = ch->info_conn;

	conn_info_fill(c, &c->c_home->info);
	return &c->c_home->info;
}

void
conn_info_lend(struct conn *c, struct proto_out *out)
{
	c->c_home->info_src.get = conn_info_get;
	c->c_home->info_conn = c;
	out->info = &c->c_home->info_src;
}
