/*
 * A TLS context at run time: what the connections and a configuration's
 * end ask of one that cfg_tls.c built.  It reads no options and logs
 * nothing, so that the runtime and a configuration's release reach it
 * without the reading kit or the log (the reload's certificate line is
 * cfg_tls.c's, beside the fingerprint it reports).  See include/tls.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls.h"
#include "tls_int.h"

void
tls_error_string(unsigned long e, char *buf, size_t len)
{
	const char *r = ERR_reason_error_string(e);

	if (r != NULL)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
}

void
tls_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t->cert);
	free(t->key);
	free(t->ca);
	free(t);
}

SSL *
tls_ssl_new(const struct tls_ctx *t)
{
	return SSL_new(t->ctx);
}
