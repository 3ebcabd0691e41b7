/*
 * The request reader: http_parser fed whatever bytes have come, one
 * request at a time.  The parser is paused at the end of each request
 * (and before the body of one that expects "100 Continue"), so the
 * caller answers before the next pipelined request is even looked at,
 * and the bytes after an upgrade stay in the caller's buffer.
 *
 * Everything a request holds is copied into one arena that grows up to
 * max_header_size (request line and headers), twice that for the
 * decoded query, and max_body_size; past a limit the request is refused
 * with its status, as nginx does (431, 413), and the connection closes.
 * The bytes of a request as sent are bounded too (rd_raw_limit()): the
 * caller holds them until the request is answered.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_req.h"

/* A request's tables, allocated as it begins: an idle connection's
   reader holds none. */
struct http_tables {
	struct http_header	headers[HTTP_MAX_HEADERS];
	struct http_param	params[HTTP_MAX_PARAMS];
};

const char http_continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static struct http_reader *
rd(http_parser *p)
{
	return p->data;
}

/* A refusal from a callback: the status the caller answers with. */
static int
rd_fail(struct http_reader *r, int status)
{
	if (r->status == 0)
		r->status = status;
	return -1;
}

/* Room for n more arena bytes; -1 when out of memory (a 500). */
static int
rd_reserve(struct http_reader *r, size_t n)
{
	size_t cap = r->cap != 0 ? r->cap : 512;
	char *p;

	if ((size_t)r->len + n <= r->cap)
		return 0;
	if ((size_t)r->len + n > UINT32_MAX / 2)
		return -1;
	while (cap < (size_t)r->len + n)
		cap *= 2;
	if ((p = realloc(r->arena, cap)) == NULL)
		return -1;
	r->arena = p;
	r->cap = (uint32_t)cap;
	return 0;
}

static int
rd_append(struct http_reader *r, const char *at, size_t n)
{
	if (rd_reserve(r, n) == -1)
		return rd_fail(r, 500);
	memcpy(r->arena + r->len, at, n);
	r->len += (uint32_t)n;
	return 0;
}

/* The request line and headers are held to max_header_size together. */
static int
rd_head(struct http_reader *r, const char *at, size_t n)
{
	if (n > r->opts->max_header_size - r->head_bytes)
		return rd_fail(r, 431);
	r->head_bytes += (uint32_t)n;
	return rd_append(r, at, n);
}

static int
rd_on_begin(http_parser *p)
{
	struct http_reader *r = rd(p);

	memset(&r->req, 0, sizeof(r->req));
	if (r->tables == NULL &&
	    (r->tables = malloc(sizeof(*r->tables))) == NULL)
		return rd_fail(r, 500);
	r->req.headers = r->tables->headers;
	r->req.params = r->tables->params;
	r->len = 0;
	r->head_bytes = 0;
	r->in_value = 0;
	r->want_continue = 0;
	r->continued = 0;
	return 0;
}

static int
rd_on_url(http_parser *p, const char *at, size_t n)
{
	struct http_reader *r = rd(p);

	if (r->req.url.len == 0)
		r->req.url.off = r->len;
	r->req.url.len += (uint32_t)n;
	return rd_head(r, at, n);
}

static int
rd_on_field(http_parser *p, const char *at, size_t n)
{
	struct http_reader *r = rd(p);
	struct http_header *h;

	if (r->in_value || r->req.nheaders == 0) {
		if (r->req.nheaders == HTTP_MAX_HEADERS)
			return rd_fail(r, 431);
		h = &r->req.headers[r->req.nheaders++];
		h->name = (struct http_span){ r->len, 0 };
		h->value = (struct http_span){ r->len, 0 };
		r->in_value = 0;
	}
	r->req.headers[r->req.nheaders - 1].name.len += (uint32_t)n;
	return rd_head(r, at, n);
}

static int
rd_on_value(http_parser *p, const char *at, size_t n)
{
	struct http_reader *r = rd(p);
	struct http_header *h = &r->req.headers[r->req.nheaders - 1];

	if (!r->in_value) {
		h->value.off = r->len;
		r->in_value = 1;
	}
	h->value.len += (uint32_t)n;
	return rd_head(r, at, n);
}

static int
rd_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends s[0..n) percent-decoded ('+' a space); room is reserved. */
static struct http_span
rd_decode(struct http_reader *r, uint32_t soff, uint32_t n)
{
	struct http_span out = { r->len, 0 };
	uint32_t i;

	for (i = 0; i < n; i++) {
		char c = r->arena[soff + i];
		int hi, lo;

		if (c == '+')
			c = ' ';
		else if (c == '%' && i + 2 < n &&
		    (hi = rd_hex(r->arena[soff + i + 1])) >= 0 &&
		    (lo = rd_hex(r->arena[soff + i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		r->arena[r->len++] = c;
		out.len++;
	}
	return out;
}

/* Splits the query into key/value pairs, each decoded into the arena. */
static int
rd_params(struct http_reader *r)
{
	struct http_span q = r->req.query;
	uint32_t start = 0, i;

	if (q.len == 0)
		return 0;
	if (rd_reserve(r, q.len) == -1)
		return rd_fail(r, 500);
	for (i = 0; i <= q.len; i++) {
		struct http_param *pm;
		const char *eq;
		uint32_t n, klen;

		if (i < q.len && r->arena[q.off + i] != '&')
			continue;
		n = i - start;
		if (n > 0 && r->req.nparams < HTTP_MAX_PARAMS) {
			pm = &r->req.params[r->req.nparams++];
			eq = memchr(r->arena + q.off + start, '=', n);
			klen = eq != NULL ? (uint32_t)(eq - (r->arena + q.off +
			    start)) : n;
			pm->key = rd_decode(r, q.off + start, klen);
			pm->value = eq != NULL ? rd_decode(r, q.off + start +
			    klen + 1, n - klen - 1) : (struct http_span){ r->len, 0 };
		}
		start = i + 1;
	}
	return 0;
}

/* Path and query from the URL (origin or absolute form). */
static int
rd_url(struct http_reader *r)
{
	struct http_parser_url u;
	struct http_span url = r->req.url;

	http_parser_url_init(&u);
	r->req.path = url;
	if (http_parser_parse_url(r->arena + url.off, url.len,
	    r->req.method == HTTP_CONNECT, &u) != 0)
		return r->req.method == HTTP_CONNECT || url.len == 1 ? 0 :
		    rd_fail(r, 400);
	if (u.field_set & (1 << UF_PATH))
		r->req.path = (struct http_span){ url.off +
		    u.field_data[UF_PATH].off, u.field_data[UF_PATH].len };
	else
		r->req.path = (struct http_span){ url.off, 0 };
	if (u.field_set & (1 << UF_QUERY))
		r->req.query = (struct http_span){ url.off +
		    u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len };
	return rd_params(r);
}

static int
rd_span_is(const struct http_reader *r, struct http_span s, const char *v)
{
	return s.len == strlen(v) && strncasecmp(r->arena + s.off, v,
	    s.len) == 0;
}

/* RFC 9110 token characters. */
static int
rd_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Header names are tokens.  Debian's http_parser is built lenient and
 * lets "Bad Name" or "Host :" through; RFC 9112 5.1 says a server must
 * refuse whitespace before the colon (a proxy may read such a header
 * differently: request smuggling), so a name that is not a token is 400.
 */
static int
rd_check_names(struct http_reader *r)
{
	uint32_t i, k;

	for (i = 0; i < r->req.nheaders; i++) {
		struct http_span n = r->req.headers[i].name;

		if (n.len == 0)
			return rd_fail(r, 400);
		for (k = 0; k < n.len; k++)
			if (!rd_tchar((unsigned char)r->arena[n.off + k]))
				return rd_fail(r, 400);
	}
	return 0;
}

static int
rd_on_headers(http_parser *p)
{
	struct http_reader *r = rd(p);
	const struct http_header *e;
	int has_body;

	r->req.method = (enum http_method)p->method;
	r->req.major = p->http_major;
	r->req.minor = p->http_minor;
	if (p->http_major != 1)
		return rd_fail(r, 505);
	if (rd_check_names(r) == -1 || rd_url(r) == -1)
		return -1;
	has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 &&
	    p->content_length != ULLONG_MAX);
	/* Refused before the body is sent, as an expectation fails. */
	if (p->content_length != ULLONG_MAX &&
	    p->content_length > r->opts->max_body_size)
		return rd_fail(r, 413);
	e = http_find_header(r, "Expect");
	if (e != NULL && p->http_minor >= 1 && has_body) {
		if (!rd_span_is(r, e->value, "100-continue"))
			return rd_fail(r, 417);
		r->want_continue = 1;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int
rd_on_body(http_parser *p, const char *at, size_t n)
{
	struct http_reader *r = rd(p);

	if (n > r->opts->max_body_size - r->req.body.len)
		return rd_fail(r, 413);
	if (r->req.body.len == 0)
		r->req.body.off = r->len;
	r->req.body.len += (uint32_t)n;
	return rd_append(r, at, n);
}

static int
rd_on_complete(http_parser *p)
{
	struct http_reader *r = rd(p);

	r->req.keep_alive = http_should_keep_alive(p);
	r->req.upgrade = p->upgrade;
	/* http_parser stops at the head of any upgrade (h2c, CONNECT) and
	   reads nothing after it; only WebSocket is switched to.  The rest
	   is served as a plain request (RFC 9110 7.8) and the connection
	   closes, since what follows was never parsed as HTTP. */
	if (p->upgrade && (p->method == HTTP_CONNECT ||
	    !http_header_has_token(r, "Upgrade", "websocket"))) {
		r->req.upgrade = 0;
		r->req.keep_alive = 0;
	}
	r->served++;
	if (r->opts->max_requests != 0 && r->served >= r->opts->max_requests)
		r->req.keep_alive = 0;
	r->ready = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings rd_settings = {
	.on_message_begin = rd_on_begin,
	.on_url = rd_on_url,
	.on_header_field = rd_on_field,
	.on_header_value = rd_on_value,
	.on_headers_complete = rd_on_headers,
	.on_body = rd_on_body,
	.on_message_complete = rd_on_complete,
};

void
http_reader_init(struct http_reader *r, const struct http_opts *o)
{
	memset(r, 0, sizeof(*r));
	r->opts = o;
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
}

void
http_reader_free(struct http_reader *r)
{
	free(r->arena);
	free(r->tables);
	r->arena = NULL;
	r->tables = NULL;
	r->len = r->cap = 0;
}

/*
 * The bytes of one request as sent (line, headers, chunk framing and
 * extensions, body, trailers) that the caller may hold.  The head's
 * separators are not in head_bytes and a chunk's framing is not in the
 * body: twice each limit, and 512 for a head of many short headers,
 * leave a request with chunks of 8 bytes or more its whole body, while
 * 1-byte chunks (six bytes each) or an endless chunk extension stop.
 */
static size_t
rd_raw_limit(const struct http_reader *r)
{
	return 2 * ((size_t)r->opts->max_header_size +
	    r->opts->max_body_size) + 512;
}

/* The status of a parser error that no callback chose. */
static int
rd_parser_status(enum http_errno e)
{
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	default:
		return 400;
	}
}

enum http_rd
http_reader_feed(struct http_reader *r, const char *data, size_t len,
    size_t *used)
{
	enum http_errno e;

	*used = 0;
	if (r->done)
		return r->status != 0 ? HTTP_RD_ERROR : HTTP_RD_CLOSED;
	if (r->ready)
		return r->req.upgrade ? HTTP_RD_UPGRADE : HTTP_RD_REQUEST;
	if (len == 0)
		return HTTP_RD_MORE;
	/* One byte past the limit at most is taken, to see it crossed. */
	if (len > rd_raw_limit(r) - r->raw)
		len = rd_raw_limit(r) - r->raw + 1;
	*used = http_parser_execute(&r->parser, &rd_settings, data, len);
	r->raw += (uint32_t)*used;
	e = HTTP_PARSER_ERRNO(&r->parser);
	if ((e == HPE_OK || e == HPE_PAUSED) && r->raw > rd_raw_limit(r)) {
		/* The version is set once the headers are whole. */
		r->status = r->req.major != 0 ? 413 : 431;
		r->done = 1;
		return HTTP_RD_ERROR;
	}
	if (e == HPE_PAUSED) {
		http_parser_pause(&r->parser, 0);
		if (r->ready)
			return r->req.upgrade ? HTTP_RD_UPGRADE :
			    HTTP_RD_REQUEST;
		r->continued = 1;
		return HTTP_RD_CONTINUE;
	}
	if (e != HPE_OK) {
		if (r->status == 0)
			r->status = rd_parser_status(e);
		r->done = 1;
		return HTTP_RD_ERROR;
	}
	if (r->tables == NULL)		/* blank lines, which the caller drops */
		r->raw = 0;
	return HTTP_RD_MORE;
}

void
http_reader_next(struct http_reader *r)
{
	if (!r->ready)
		return;
	r->ready = 0;
	r->raw = 0;
	if (!r->req.keep_alive || r->req.upgrade)
		r->done = 1;
	http_reader_free(r);
	memset(&r->req, 0, sizeof(r->req));
}

const struct http_header *
http_find_header(const struct http_reader *r, const char *name)
{
	uint32_t i;

	for (i = 0; i < r->req.nheaders; i++)
		if (rd_span_is(r, r->req.headers[i].name, name))
			return &r->req.headers[i];
	return NULL;
}

const struct http_param *
http_find_param(const struct http_reader *r, const char *key)
{
	uint32_t i;

	for (i = 0; i < r->req.nparams; i++) {
		struct http_span k = r->req.params[i].key;

		if (k.len == strlen(key) && memcmp(r->arena + k.off, key,
		    k.len) == 0)
			return &r->req.params[i];
	}
	return NULL;
}

int
http_header_has_token(const struct http_reader *r, const char *name,
    const char *token)
{
	size_t tl = strlen(token);
	uint32_t i;

	for (i = 0; i < r->req.nheaders; i++) {
		const struct http_header *h = &r->req.headers[i];
		const char *v = http_at(r, h->value), *end = v + h->value.len;

		if (h->name.len != strlen(name) ||
		    strncasecmp(http_at(r, h->name), name, h->name.len) != 0)
			continue;
		while (v < end) {
			const char *c = memchr(v, ',', (size_t)(end - v));
			const char *e = c != NULL ? c : end;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - v) == tl && strncasecmp(v, token, tl) == 0)
				return 1;
			v = c != NULL ? c + 1 : end;
		}
	}
	return 0;
}
