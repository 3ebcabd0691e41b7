/*
 * What cfg_tls.c (reading the options, building the context) and
 * tls_ctx.c (the context at run time) share, and nothing else includes:
 * the context's layout.  The rest of the daemon sees include/tls.h.
 */
#ifndef EO_TLS_INT_H
#define EO_TLS_INT_H

#include <openssl/ssl.h>

enum tls_verify {
	EO_TLS_VERIFY_NONE,
	EO_TLS_VERIFY_OPTIONAL,		/* asked for, checked if sent */
	EO_TLS_VERIFY_REQUIRED		/* no valid certificate: refused */
};

struct tls_ctx {
	SSL_CTX		*ctx;
	char		*cert;		/* the settings, as written */
	char		*key;
	char		*ca;		/* NULL: no client_ca */
	int		 verify;	/* enum tls_verify */
	int		 min13;		/* min_version = "1.3" */
	unsigned char	 sha256[32];	/* the server certificate's */
	char		 until[24];	/* its notAfter, ISO 8601 UTC */
};

#endif
