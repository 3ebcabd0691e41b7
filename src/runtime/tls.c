/*
 * TLS as a transport below the connection (conn.c's TLS phase): what a
 * connection asks of its SSL once the handshake is done.  Contexts and
 * their options are the configuration's (src/cfg/cfg_tls.c, as
 * HAProxy's cfgparse-ssl.c): nothing here parses.  See include/tls.h.
 */
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"

void
tls_session_trim(SSL *ssl)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509 *x;

	/* The session's own stack, emptied in place: on a server it holds
	   what came after the client's certificate, which stays. */
	if (chain != NULL)
		while ((x = sk_X509_pop(chain)) != NULL)
			X509_free(x);
}

int
tls_peer_subject(SSL *ssl, char *buf, size_t len)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	BIO *b;
	int n;

	if (x == NULL || len == 0)
		return 0;
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return 0;
	/* One line, RFC 2253 order, non-ASCII escaped: fit for a log. */
	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	n = BIO_read(b, buf, (int)(len - 1));
	BIO_free(b);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0;
}
