/*
 * The response controls of a request: echo_* query parameters and
 * X-Echo-* headers, bounded by the listener's options.
 */
#ifndef EO_HTTP_CTL_H
#define EO_HTTP_CTL_H

#include <stddef.h>

#include "http-t.h"

/* Reads the echo_* parameters and X-Echo-* headers of r's request.
   0, or the status of the mistake (400) with why filled. */
int	http_controls_get(const struct http_reader *r,
	    struct http_controls *c, char *why, size_t whylen);

#endif
