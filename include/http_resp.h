/*
 * Responses: the description of a request (JSON or text), the short
 * errors, and a sized body's bytes.
 */
#ifndef EO_HTTP_RESP_H
#define EO_HTTP_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "http-t.h"

/*
 * The whole response to r's request under c: status line, headers and
 * the description (JSON, or text when the listener or Accept says so),
 * or only the head when c->sized (then http_body_fill() makes the body).
 * 0, or -1 out of memory.
 */
int	http_respond(const struct http_reader *r,
	    const struct http_conn_info *ci, const struct http_controls *c,
	    struct http_buf *out);
/* A short error response that closes: 400, 408, 413, 431, 505... */
int	http_respond_error(int status, const char *why, struct http_buf *out);
const char *http_reason(int status);

/* A sized body in pieces: fills up to room bytes, returns how many;
   *left counts down to 0. */
size_t	http_body_fill(uint64_t *left, char *dst, size_t room);

#endif
