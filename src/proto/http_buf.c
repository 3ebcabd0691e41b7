/*
 * The small writers the responses are made of: a growable buffer, JSON
 * strings, a strict UTF-8 check and base64.  An allocation failure
 * marks the buffer failed and drops later writes, so a caller checks
 * once, at the end, instead of after every piece.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "http_buf.h"

void
http_buf_free(struct http_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int
buf_reserve(struct http_buf *b, size_t n)
{
	/* A whole keep-alive response (head and description) fits the
	   first allocation. */
	size_t cap = b->cap != 0 ? b->cap : 1024;
	char *p;

	if (b->failed)
		return -1;
	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* http_buf_add() when the buffer must grow (or has failed). */
void
http_buf_add_slow(struct http_buf *b, const void *p, size_t n)
{
	if (n == 0 || buf_reserve(b, n) == -1)
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void *
http_buf_grow(struct http_buf *b, size_t n)
{
	char *p;

	if (buf_reserve(b, n) == -1)
		return NULL;
	p = b->p + b->len;
	b->len += n;
	return p;
}

void
http_buf_str(struct http_buf *b, const char *s)
{
	http_buf_add(b, s, strlen(s));
}

void
http_buf_uint(struct http_buf *b, uint64_t v)
{
	char d[20];
	size_t n = sizeof(d);

	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	http_buf_add(b, d + n, sizeof(d) - n);
}

void
http_buf_printf(struct http_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n + 1) == -1)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0.
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int
http_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if ((k = utf8_seq(s + i, n - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

/*
 * s as a JSON string, quotes included (RFC 8259): '"', '\\' and control
 * characters escaped; a byte that is not UTF-8 (a header's obs-text)
 * becomes U+FFFD, so the document stays valid JSON.
 */
void
http_json_string(struct http_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	http_buf_add(b, "\"", 1);
	while (i < n) {
		unsigned char c = u[i];

		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			http_buf_add(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			http_buf_printf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			/* A run of plain ASCII goes in one append. */
			for (k = i + 1; k < n && u[k] >= 0x20 && u[k] < 0x7f &&
			    u[k] != '"' && u[k] != '\\'; k++)
				;
			http_buf_add(b, u + i, k - i);
			i = k;
		} else if ((k = utf8_seq(u + i, n - i)) == 0) {
			http_buf_str(b, "\\ufffd");
			i++;
		} else {
			http_buf_add(b, u + i, k);
			i += k;
		}
	}
	http_buf_add(b, "\"", 1);
}

void
http_base64(struct http_buf *b, const unsigned char *s, size_t n)
{
	size_t out = 4 * ((n + 2) / 3);

	while (n > 0) {
		/* EVP_EncodeBlock takes an int: whole groups of 3 at a time. */
		size_t chunk = n > 3 * (1u << 20) ? 3 * (1u << 20) : n;

		out = 4 * ((chunk + 2) / 3);
		if (buf_reserve(b, out + 1) == -1)
			return;
		EVP_EncodeBlock((unsigned char *)b->p + b->len, s, (int)chunk);
		b->len += out;
		s += chunk;
		n -= chunk;
	}
}
