/*
 * HTTP/1.1 echo: the parts that do no I/O.  A connection feeds bytes in
 * and gets back whole requests, response bytes and numbers (a delay to
 * arm a timer for, a body size to produce); it never hands these modules
 * a socket, a timer or a thread.
 *
 * How a connection drives them (phase B plumbing):
 *
 *   at accept     http_reader_init(&r, opts)
 *   per input     n = http_reader_feed(&r, data, len); take n bytes off
 *                 the input buffer, then by the return value:
 *                   HTTP_RD_MORE      wait for more input
 *                   HTTP_RD_CONTINUE  send http_continue_line, feed again
 *                   HTTP_RD_REQUEST   http_controls_get(), then (after
 *                                     ctl.delay_ms on a timer, if any)
 *                                     http_respond(); http_reader_next();
 *                                     feed the rest of the input again
 *                   HTTP_RD_UPGRADE   ws_handshake_check(); send its 101
 *                                     and hand the rest to a ws_session
 *                   HTTP_RD_ERROR     http_respond_error(r.status), close
 *                                     once it is flushed
 *                   HTTP_RD_CLOSED    ignore input; close when flushed
 *                 Serve one request at a time: stop feeding while a
 *                 response (or its delay) is pending, so pipelined
 *                 requests wait in the input buffer (bounded by the
 *                 connection's read limit), answered in order.
 *   per room      http_body_fill() while a sized body (echo_size) has
 *                 bytes left: the connection's produce() step.
 *   per timer     request_timeout: a request not complete in time gets
 *                 408 and a close; the delay timer calls http_respond().
 *   at close      http_reader_free(&r)
 *
 * Memory: between requests a reader holds nothing but itself (under 200
 * bytes): its arena and its header and parameter tables are allocated
 * when a request begins and freed by http_reader_next().  During one it
 * holds at most max_header_size (twice, with the decoded query) +
 * max_body_size bytes, and 2.6 KB of tables.
 */
#ifndef EO_HTTP_H
#define EO_HTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfg_get.h"

#define HTTP_MAX_HEADERS	100	/* more: 431, as nginx's large headers */
#define HTTP_MAX_PARAMS		64	/* query parameters kept; the rest dropped */
#define HTTP_MAX_EXTRA		8	/* echo_header response headers */

enum http_format { HTTP_FMT_JSON, HTTP_FMT_TEXT };

/* A listener's http = { ... } options (http_opts.c). */
struct http_opts {
	enum http_format format;
	int		 controls;	/* echo_* honoured */
	uint32_t	 max_delay;	/* ms */
	uint64_t	 max_response_size; /* bytes of an echo_size body */
	uint32_t	 max_header_size; /* request line and headers */
	uint32_t	 max_body_size;
	uint32_t	 request_timeout; /* s for one whole request; 0: none */
	uint32_t	 max_requests;	/* per connection; 0: no limit */
	uint32_t	 max_message_size; /* WebSocket, reassembled */
};

/* Defaults into o; then the group's settings (group may be NULL).
   0, or -1 with every mistake added to d as FILE:LINE: message. */
int	http_opts_parse(const config_setting_t *group, struct http_opts *o,
	    struct cfg_diag *d);
/* The options in libconfig syntax, every one resolved (for -T). */
void	http_opts_print(const struct http_opts *o, FILE *f);

/* A piece of the arena: offset and length (the arena may move). */
struct http_span {
	uint32_t	off;
	uint32_t	len;
};

struct http_header {
	struct http_span name;
	struct http_span value;
};

struct http_param {
	struct http_span key;		/* percent-decoded, '+' a space */
	struct http_span value;
};

/* One complete request; spans point into http_reader.arena. */
struct http_request {
	enum http_method method;
	unsigned short	 major, minor;
	struct http_span url;		/* as received */
	struct http_span path;
	struct http_span query;		/* raw, without '?' */
	struct http_header *headers;	/* room for HTTP_MAX_HEADERS */
	uint32_t	 nheaders;	/* in order, repeats kept */
	struct http_param *params;	/* room for HTTP_MAX_PARAMS */
	uint32_t	 nparams;
	struct http_span body;		/* de-chunked */
	int		 keep_alive;	/* after the response */
	int		 upgrade;	/* a switch to WebSocket was asked */
};

enum http_rd {
	HTTP_RD_MORE,		/* all taken; a request is not complete */
	HTTP_RD_CONTINUE,	/* send "100 Continue", then feed on */
	HTTP_RD_REQUEST,	/* req is complete */
	HTTP_RD_UPGRADE,	/* req asks to switch protocols */
	HTTP_RD_ERROR,		/* status says which; answer it, close */
	HTTP_RD_CLOSED		/* the connection is done: take nothing */
};

struct http_tables;

struct http_reader {
	http_parser	 parser;
	const struct http_opts *opts;
	char		*arena;		/* url, header text, params, body */
	uint32_t	 len, cap;
	uint32_t	 head_bytes;	/* url and headers, for max_header_size */
	struct http_request req;
	struct http_tables *tables;	/* req's headers and params; NULL idle */
	int		 in_value;	/* the last piece was a header value */
	int		 want_continue;	/* Expect: 100-continue seen */
	int		 continued;	/* told once for this request */
	int		 status;	/* HTTP_RD_ERROR's status */
	int		 done;		/* HTTP_RD_CLOSED from now on */
	int		 ready;		/* req waits for http_reader_next() */
	uint32_t	 served;	/* requests answered */
};

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

/* Facts about the connection that the response describes. */
struct http_conn_info {
	const char	*client_addr;	/* from the PROXY header if any */
	uint16_t	 client_port;
	const char	*proxy_addr;	/* NULL: no PROXY header */
	uint16_t	 proxy_port;
	const char	*server_host;	/* gethostname() */
	const char	*listener;
	int		 tls;		/* the rest only when set */
	const char	*tls_version;
	const char	*tls_cipher;
	const char	*tls_sni;	/* NULL: none sent */
	const char	*tls_alpn;
	const char	*cert_subject;	/* NULL: no client certificate */
	const char	*cert_issuer;
	const char	*cert_serial;
	const char	*cert_not_after;
};

/* The response controls of one request (http_ctl.c). */
struct http_controls {
	int		 status;	/* 200 unless echo_code */
	uint32_t	 delay_ms;	/* arm a timer for it, then respond */
	int		 sized;		/* echo_size given */
	uint64_t	 size;		/* that many body bytes */
	struct http_header extra[HTTP_MAX_EXTRA]; /* spans as the request's */
	uint32_t	 nextra;
};

/* Reads the echo_* parameters and X-Echo-* headers of r's request.
   0, or the status of the mistake (400) with why filled. */
int	http_controls_get(const struct http_reader *r,
	    struct http_controls *c, char *why, size_t whylen);

/* A growable output buffer: the caller moves .p into its evbuffer. */
struct http_buf {
	char	*p;
	size_t	 len, cap;
	int	 failed;		/* out of memory: discard it */
};

void	http_buf_free(struct http_buf *b);
void	http_buf_add(struct http_buf *b, const void *p, size_t n);
void	http_buf_str(struct http_buf *b, const char *s);
void	http_buf_printf(struct http_buf *b, const char *fmt, ...)
	    EO_PRINTF(2, 3);

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

/* Writers the response uses, tested on their own. */
void	http_json_string(struct http_buf *b, const char *s, size_t n);
int	http_utf8_valid(const unsigned char *s, size_t n);
void	http_base64(struct http_buf *b, const unsigned char *s, size_t n);

#endif
