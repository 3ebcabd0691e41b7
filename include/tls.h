/*
 * TLS for TCP listeners: the tls = { ... } group of a listener, read
 * into an OpenSSL SSL_CTX when the configuration is loaded.  Loading is
 * checking: the files are read, parsed, and the key must match the
 * certificate, so -t, the reload's check and a SIGHUP all see the same
 * errors.  A context belongs to one configuration generation (freed
 * with it): a reload makes new ones, which is how certificates are
 * rotated, while established connections keep theirs.
 *
 * The SSL_CTX is shared by the workers of a generation, read only after
 * it is built: OpenSSL allows SSL_new() on it from any thread.
 *
 * Contexts (parse, free, print, tls_ssl_new, tls_error_string) are
 * src/cfg/cfg_tls.c, on the configuration's side; what a connection
 * asks of its SSL (tls_session_trim, tls_peer_subject) is the transport,
 * src/runtime/tls.c.
 */
#ifndef EO_TLS_H
#define EO_TLS_H

#include <stddef.h>
#include <stdio.h>

#include <libconfig.h>

#include <openssl/ssl.h>

struct cfg_diag;
struct tls_ctx;

#define EO_TLS_HANDSHAKE_TIMEOUT 5	/* s; default tls_handshake_timeout */

/*
 * Reads the tls group of listener lg, if any: 0 if absent (*out
 * NULL), 1 with *out a ready context that answers ALPN with alpn
 * (tls_set_alpn(); NULL: none), -1 after adding "FILE:LINE:" errors
 * to d.
 */
int	tls_parse(struct cfg_diag *d, const config_setting_t *lg,
	    const unsigned char *alpn, struct tls_ctx **out);
/*
 * Answers a client's ALPN (RFC 7301) with wire, the protocol's id in
 * the protocol's wire format ("\x08http/1.1"), when the client offers
 * it; otherwise no protocol is agreed and the handshake goes on.  wire
 * must outlive the context (a protocol's constant).
 */
void	tls_set_alpn(struct tls_ctx *t, const unsigned char *wire);
/* Frees a context; its SSL_CTX lives on while connections hold it. */
void	tls_free(struct tls_ctx *t);
/*
 * Logs, at info, t's certificate (SHA-256 fingerprint and notAfter) if
 * it is not the one was had (NULL: none): what a reload rotated.
 */
void	tls_log_change(const char *listener, const struct tls_ctx *was,
	    const struct tls_ctx *t);
/* The group as -T prints it, "tls = { ... };", without a newline. */
void	tls_print(const struct tls_ctx *t, FILE *f);

/* A server connection's SSL object; NULL if out of memory.  Any thread. */
SSL	*tls_ssl_new(const struct tls_ctx *t);
/*
 * Once the handshake is done: frees what the session holds but the
 * daemon never reads again, the certificates a client sent after its
 * own (verified by now), so that an idle connection's memory does not
 * depend on the chain it came with.  The client's certificate stays.
 */
void	tls_session_trim(SSL *ssl);
/* OpenSSL's error e as text: its reason ("wrong version number"). */
void	tls_error_string(unsigned long e, char *buf, size_t len);
/*
 * The client certificate's subject, one line (RFC 2253), into buf;
 * 0 if the client sent none.
 */
int	tls_peer_subject(SSL *ssl, char *buf, size_t len);

#endif
