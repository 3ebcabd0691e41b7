/*
 * The request reader on http_parser: bytes in, whole requests out, with
 * their headers and query parameters in the reader's arena.
 */
#ifndef EO_HTTP_REQ_H
#define EO_HTTP_REQ_H

#include <stddef.h>

#include "http-t.h"

void	http_reader_init(struct http_reader *r, const struct http_opts *o);
void	http_reader_free(struct http_reader *r);
/*
 * Takes bytes from data (*used says how many) up to the end of one
 * request at most, and says what the caller must do.  After
 * HTTP_RD_REQUEST the caller answers, then calls http_reader_next()
 * before feeding again (feeding sooner takes nothing).
 */
enum http_rd http_reader_feed(struct http_reader *r, const char *data,
	    size_t len, size_t *used);
/* Done with the current request: frees its memory; keep-alive or not. */
void	http_reader_next(struct http_reader *r);
/* A span's bytes (not NUL-terminated). */
static inline const char *
http_at(const struct http_reader *r, struct http_span s)
{
	return r->arena + s.off;
}
/* The first header called name (any case), or NULL. */
const struct http_header *http_find_header(const struct http_reader *r,
	    const char *name);
/* Whether a header called name lists token (comma-separated, any case). */
int	http_header_has_token(const struct http_reader *r, const char *name,
	    const char *token);
/* The value of query parameter key, or NULL. */
const struct http_param *http_find_param(const struct http_reader *r,
	    const char *key);

extern const char http_continue_line[];	/* "HTTP/1.1 100 Continue\r\n\r\n" */

#endif
