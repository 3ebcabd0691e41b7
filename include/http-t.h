/*
 * The http protocol's types, and nothing else (HAProxy's -t.h): every
 * http file and ws.c includes this one, so that the files that call one
 * another (http.c on top, then ws.c, http_resp.c, http_ctl.c, http_req.c,
 * http_buf.c) share their structs without a header that ties them back up.
 */
#ifndef EO_HTTP_T_H
#define EO_HTTP_T_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

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
	uint32_t	 raw;		/* the request's bytes as sent, taken */
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


/* A growable output buffer: the caller moves .p into its evbuffer. */
struct http_buf {
	char	*p;
	size_t	 len, cap;
	int	 failed;		/* out of memory: discard it */
};


#endif
