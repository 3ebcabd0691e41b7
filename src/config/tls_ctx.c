/*
 * A TLS context at run time: what the connections, the reload's log and
 * a configuration's end ask of one that cfg_tls.c built.  It reads no
 * options, so that the runtime and a configuration's release reach it
 * without the reading kit.  See include/tls.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"
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

void
tls_log_change(const char *listener, const struct tls_ctx *was,
    const struct tls_ctx *t)
{
	char hex[3 * 32];
	int i;

	if (was != NULL && memcmp(was->sha256, t->sha256, 32) == 0)
		return;
	for (i = 0; i < 32; i++)
		snprintf(hex + 3 * i, sizeof(hex) - 3 * (size_t)i, "%02X%s",
		    t->sha256[i], i < 31 ? ":" : "");
	log_info("listener %s: new certificate: SHA-256 %s, valid until %s",
	    listener, hex, t->until);
}

SSL *
tls_ssl_new(const struct tls_ctx *t)
{
	return SSL_new(t->ctx);
}
