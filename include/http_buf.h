/*
 * A growable output buffer and the writers that fill it: JSON strings,
 * UTF-8 checks, base64.
 */
#ifndef EO_HTTP_BUF_H
#define EO_HTTP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http-t.h"
#include "log.h"

void	http_buf_free(struct http_buf *b);
void	http_buf_add_slow(struct http_buf *b, const void *p, size_t n);
/* Appends n bytes.  Inline: a response is made of a hundred small
   appends, most of them literals whose copy the compiler unrolls. */
static inline void
http_buf_add(struct http_buf *b, const void *p, size_t n)
{
	if (b->len + n <= b->cap && n > 0) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
	} else
		http_buf_add_slow(b, p, n);
}
/* n more bytes at the end, not written yet: where they are, or NULL
   (out of memory: failed). */
void	*http_buf_grow(struct http_buf *b, size_t n);
void	http_buf_str(struct http_buf *b, const char *s);
/* A string literal, its length known without strlen(). */
#define http_buf_lit(b, lit)	http_buf_add((b), "" lit, sizeof(lit) - 1)
/* v in decimal, without printf (a response's hottest writer). */
void	http_buf_uint(struct http_buf *b, uint64_t v);
void	http_buf_printf(struct http_buf *b, const char *fmt, ...)
	    EO_PRINTF(2, 3);

/* Writers the response uses, tested on their own. */
void	http_json_string(struct http_buf *b, const char *s, size_t n);
int	http_utf8_valid(const unsigned char *s, size_t n);
void	http_base64(struct http_buf *b, const unsigned char *s, size_t n);

#endif
