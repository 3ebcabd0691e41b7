/*
 * The response: a description of the request as it was received, in
 * JSON (the default; one object, headers and query as ordered lists of
 * [name, value] pairs so repeats and order survive) or plain text (the
 * request's head as it came, then one line per fact).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_buf.h"
#include "http_req.h"
#include "http_resp.h"

const char *
http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

static void
js_span(struct http_buf *b, const struct http_reader *r, struct http_span s)
{
	http_json_string(b, http_at(r, s), s.len);
}

static void
js_str(struct http_buf *b, const char *s)
{
	http_json_string(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* "key":"value", for a fact that may be missing (then null). */
static void
js_field(struct http_buf *b, const char *key, const char *v, int comma)
{
	/* Plain appends: printf was a tenth of a request's cost. */
	if (comma)
		http_buf_lit(b, ",");
	http_buf_lit(b, "\"");
	http_buf_str(b, key);
	http_buf_lit(b, "\":");
	if (v == NULL)
		http_buf_lit(b, "null");
	else
		js_str(b, v);
}

static void
js_pairs(struct http_buf *b, const struct http_reader *r,
    const struct http_span *spans, size_t stride, uint32_t n)
{
	uint32_t i;

	http_buf_lit(b, "[");
	for (i = 0; i < n; i++) {
		const struct http_span *s = (const struct http_span *)(const
		    void *)((const char *)spans + i * stride);
		if (i > 0)
			http_buf_lit(b, ",");
		http_buf_lit(b, "[");
		js_span(b, r, s[0]);
		http_buf_lit(b, ",");
		js_span(b, r, s[1]);
		http_buf_lit(b, "]");
	}
	http_buf_lit(b, "]");
}

static void
js_conn(struct http_buf *b, const struct http_conn_info *ci)
{
	http_buf_lit(b, ",\"client\":{");
	js_field(b, "address", ci->client_addr, 0);
	http_buf_lit(b, ",\"port\":");
	http_buf_uint(b, ci->client_port);
	http_buf_lit(b, "}");
	if (ci->proxy_addr != NULL) {
		http_buf_lit(b, ",\"proxy\":{");
		js_field(b, "address", ci->proxy_addr, 0);
		http_buf_lit(b, ",\"port\":");
		http_buf_uint(b, ci->proxy_port);
		http_buf_lit(b, "}");
	}
	if (ci->tls) {
		http_buf_str(b, ",\"tls\":{");
		js_field(b, "version", ci->tls_version, 0);
		js_field(b, "cipher", ci->tls_cipher, 1);
		js_field(b, "sni", ci->tls_sni, 1);
		js_field(b, "alpn", ci->tls_alpn, 1);
		if (ci->cert_subject != NULL) {
			http_buf_str(b, ",\"client_cert\":{");
			js_field(b, "subject", ci->cert_subject, 0);
			js_field(b, "issuer", ci->cert_issuer, 1);
			js_field(b, "serial", ci->cert_serial, 1);
			js_field(b, "not_after", ci->cert_not_after, 1);
			http_buf_str(b, "}");
		}
		http_buf_str(b, "}");
	}
	http_buf_lit(b, ",\"server\":{");
	js_field(b, "host", ci->server_host, 0);
	js_field(b, "listener", ci->listener, 1);
	http_buf_lit(b, "}");
}

static void
describe_json(struct http_buf *b, const struct http_reader *r,
    const struct http_conn_info *ci)
{
	const struct http_request *q = &r->req;
	const unsigned char *body = (const unsigned char *)http_at(r, q->body);
	int text = http_utf8_valid(body, q->body.len);

	http_buf_lit(b, "{");
	js_field(b, "method", http_method_str(q->method), 0);
	http_buf_lit(b, ",\"url\":");
	js_span(b, r, q->url);
	http_buf_lit(b, ",\"path\":");
	js_span(b, r, q->path);
	http_buf_lit(b, ",\"query\":");
	js_pairs(b, r, &q->params[0].key, sizeof(q->params[0]), q->nparams);
	http_buf_lit(b, ",\"version\":\"HTTP/");
	http_buf_uint(b, q->major);
	http_buf_lit(b, ".");
	http_buf_uint(b, q->minor);
	http_buf_lit(b, "\",\"headers\":");
	js_pairs(b, r, &q->headers[0].name, sizeof(q->headers[0]),
	    q->nheaders);
	http_buf_lit(b, ",\"body_length\":");
	http_buf_uint(b, q->body.len);
	if (text) {
		http_buf_lit(b, ",\"body_encoding\":\"text\",\"body\":");
		js_span(b, r, q->body);
	} else {
		http_buf_lit(b, ",\"body_encoding\":\"base64\",\"body\":\"");
		http_base64(b, body, q->body.len);
		http_buf_lit(b, "\"");
	}
	js_conn(b, ci);
	http_buf_lit(b, "}\n");
}

static const char *
tx(const char *s)
{
	return s != NULL ? s : "-";
}

static void
describe_text(struct http_buf *b, const struct http_reader *r,
    const struct http_conn_info *ci)
{
	const struct http_request *q = &r->req;
	const unsigned char *body = (const unsigned char *)http_at(r, q->body);
	int text = http_utf8_valid(body, q->body.len);
	uint32_t i;

	http_buf_printf(b, "%s ", http_method_str(q->method));
	http_buf_add(b, http_at(r, q->url), q->url.len);
	http_buf_printf(b, " HTTP/%u.%u\n", q->major, q->minor);
	for (i = 0; i < q->nheaders; i++) {
		http_buf_add(b, http_at(r, q->headers[i].name),
		    q->headers[i].name.len);
		http_buf_str(b, ": ");
		http_buf_add(b, http_at(r, q->headers[i].value),
		    q->headers[i].value.len);
		http_buf_str(b, "\n");
	}
	http_buf_printf(b, "\nclient: %s port %u\n", tx(ci->client_addr),
	    ci->client_port);
	if (ci->proxy_addr != NULL)
		http_buf_printf(b, "proxy: %s port %u\n", ci->proxy_addr,
		    ci->proxy_port);
	if (ci->tls)
		http_buf_printf(b, "tls: %s %s sni %s alpn %s\n",
		    tx(ci->tls_version), tx(ci->tls_cipher), tx(ci->tls_sni),
		    tx(ci->tls_alpn));
	if (ci->tls && ci->cert_subject != NULL)
		http_buf_printf(b, "client certificate: subject %s issuer %s "
		    "serial %s not after %s\n", ci->cert_subject,
		    tx(ci->cert_issuer), tx(ci->cert_serial),
		    tx(ci->cert_not_after));
	http_buf_printf(b, "server: %s listener %s\nbody: %u bytes%s\n",
	    tx(ci->server_host), tx(ci->listener), q->body.len,
	    text ? "" : ", base64");
	if (text)
		http_buf_add(b, body, q->body.len);
	else
		http_base64(b, body, q->body.len);
}

/* Text when the listener says so or the client asks for it first. */
static int
wants_text(const struct http_reader *r)
{
	const struct http_header *h = http_find_header(r, "Accept");
	const char *t, *j;
	char v[256];

	if (h == NULL || h->value.len == 0)
		return r->opts->format == HTTP_FMT_TEXT;
	snprintf(v, sizeof(v), "%.*s", (int)h->value.len, http_at(r, h->value));
	t = strcasestr(v, "text/plain");
	j = strcasestr(v, "application/json");
	if (t != NULL && (j == NULL || t < j))
		return 1;
	if (j != NULL)
		return 0;
	return r->opts->format == HTTP_FMT_TEXT;
}

/* The longest head() can write for r under c: status line, type,
   length, connection, the extra headers, the blank line. */
static size_t
head_max(const struct http_controls *c, const char *type)
{
	size_t n = sizeof("HTTP/1.1 999 \r\nContent-Type: \r\n"
	    "Content-Length: 18446744073709551615\r\n"
	    "Connection: keep-alive\r\n\r\n") +
	    strlen(http_reason(c->status)) + strlen(type);
	uint32_t i;

	for (i = 0; i < c->nextra; i++)
		n += c->extra[i].name.len + c->extra[i].value.len + 4;
	return n;
}

static void
head(struct http_buf *out, const struct http_reader *r,
    const struct http_controls *c, const char *type, uint64_t len)
{
	uint32_t i;

	http_buf_lit(out, "HTTP/1.1 ");
	http_buf_uint(out, (unsigned)c->status);
	http_buf_lit(out, " ");
	http_buf_str(out, http_reason(c->status));
	http_buf_lit(out, "\r\n");
	if (c->status != 204 && c->status != 304) {
		http_buf_lit(out, "Content-Type: ");
		http_buf_str(out, type);
		http_buf_lit(out, "\r\nContent-Length: ");
		http_buf_uint(out, len);
		http_buf_lit(out, "\r\n");
	}
	if (!r->req.keep_alive)
		http_buf_lit(out, "Connection: close\r\n");
	else if (r->req.minor == 0)
		http_buf_lit(out, "Connection: keep-alive\r\n");
	for (i = 0; i < c->nextra; i++) {
		http_buf_add(out, http_at(r, c->extra[i].name),
		    c->extra[i].name.len);
		http_buf_lit(out, ": ");
		http_buf_add(out, http_at(r, c->extra[i].value),
		    c->extra[i].value.len);
		http_buf_lit(out, "\r\n");
	}
	http_buf_lit(out, "\r\n");
}

/*
 * The description goes straight into out, after a gap as long as the
 * longest head; the head is then written into the gap and the body
 * moved up to meet it (a few bytes): no second buffer, no second copy.
 */
int
http_respond(const struct http_reader *r, const struct http_conn_info *ci,
    const struct http_controls *c, struct http_buf *out)
{
	int nobody = c->status == 204 || c->status == 304;
	int text = wants_text(r);
	const char *type = text ? "text/plain; charset=utf-8" :
	    "application/json";
	size_t start = out->len, gap = head_max(c, type), blen, hlen;

	if (c->sized) {
		head(out, r, c, "application/octet-stream", c->size);
		return out->failed ? -1 : 0;
	}
	if (http_buf_grow(out, gap) == NULL)
		return -1;
	if (!nobody) {
		if (text)
			describe_text(out, r, ci);
		else
			describe_json(out, r, ci);
	}
	if (out->failed)
		return -1;
	blen = out->len - start - gap;
	out->len = start;
	head(out, r, c, type, blen);	/* within the gap: no reallocation */
	hlen = out->len - start;
	/* HEAD: the length GET would have, and no body. */
	if (r->req.method != HTTP_HEAD) {
		memmove(out->p + start + hlen, out->p + start + gap, blen);
		out->len += blen;
	}
	return 0;
}

int
http_respond_error(int status, const char *why, struct http_buf *out)
{
	size_t n = strlen(why);

	http_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"
	    "%s\n", status, http_reason(status), n + 1, why);
	return out->failed ? -1 : 0;
}

/* A body of a repeating printable pattern, so a throughput test can
   check it; never allocated whole. */
size_t
http_body_fill(uint64_t *left, char *dst, size_t room)
{
	static const char pat[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_\n";
	size_t n = room < *left ? room : (size_t)*left, i;

	/* Indexed by the bytes still owed, so the pattern runs on across
	   pieces whatever their sizes. */
	for (i = 0; i < n; i++)
		dst[i] = pat[(*left - i) % (sizeof(pat) - 1)];
	*left -= n;
	return n;
}
