/*
 * A growable output buffer and the writers that fill it: JSON strings,
 * UTF-8 checks, base64.
 */
#ifndef EO_HTTP_BUF_H
#define EO_HTTP_BUF_H

#include <stddef.h>

#include "http-t.h"
#include "log.h"

void	http_buf_free(struct http_buf *b);
void	http_buf_add(struct http_buf *b, const void *p, size_t n);
void	http_buf_str(struct http_buf *b, const char *s);
void	http_buf_printf(struct http_buf *b, const char *fmt, ...)
	    EO_PRINTF(2, 3);

/* Writers the response uses, tested on their own. */
void	http_json_string(struct http_buf *b, const char *s, size_t n);
int	http_utf8_valid(const unsigned char *s, size_t n);
void	http_base64(struct http_buf *b, const unsigned char *s, size_t n);

#endif
