/*
 * Response controls, by the names echo servers use (Ealenn/Echo-Server's
 * echo_code, echo_time, echo_header): a query parameter, or the X-Echo-*
 * header when the query has none.  Each is checked against the
 * listener's bounds; a value out of them is the client's mistake (400,
 * saying which), never clamped silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_ctl.h"
#include "http_req.h"

/* The control's value: query parameter qname, else header hname. */
static int
ctl_value(const struct http_reader *r, const char *qname, const char *hname,
    struct http_span *v)
{
	const struct http_param *p = http_find_param(r, qname);
	const struct http_header *h;

	if (p != NULL) {
		*v = p->value;
		return 1;
	}
	if ((h = http_find_header(r, hname)) != NULL) {
		*v = h->value;
		return 1;
	}
	return 0;
}

/* A decimal number of at most 19 digits, nothing else. */
static int
ctl_number(const struct http_reader *r, struct http_span s, uint64_t *out)
{
	const char *p = http_at(r, s);
	uint64_t n = 0;
	uint32_t i;

	if (s.len == 0 || s.len > 19)
		return -1;
	for (i = 0; i < s.len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(p[i] - '0');
	}
	*out = n;
	return 0;
}

/* RFC 9110 token characters: what a header name may hold. */
static int
ctl_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Headers that frame or end the response: never the client's to set. */
static int
ctl_reserved(const char *name, size_t n)
{
	static const char *const names[] = { "content-length",
	    "transfer-encoding", "connection", "upgrade", "keep-alive",
	    "trailer", NULL };
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
			return 1;
	return 0;
}

/* One "Name: Value" into c->extra; -1 if it could inject or reframe. */
static int
ctl_header(const struct http_reader *r, struct http_span s,
    struct http_controls *c)
{
	const unsigned char *p = (const unsigned char *)http_at(r, s);
	struct http_header *h;
	uint32_t colon, i, v;

	for (colon = 0; colon < s.len && p[colon] != ':'; colon++)
		if (!ctl_tchar(p[colon]))
			return -1;
	if (colon == 0 || colon == s.len || c->nextra == HTTP_MAX_EXTRA ||
	    ctl_reserved((const char *)p, colon))
		return -1;
	for (v = colon + 1; v < s.len && (p[v] == ' ' || p[v] == '\t'); v++)
		;
	/* CR, LF, NUL or any other control but HTAB would end the header
	   line or smuggle one: refused, not stripped. */
	for (i = v; i < s.len; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return -1;
	h = &c->extra[c->nextra++];
	h->name = (struct http_span){ s.off, colon };
	h->value = (struct http_span){ s.off + v, s.len - v };
	return 0;
}

/* Every echo_header parameter, then every X-Echo-Header header. */
static int
ctl_headers(const struct http_reader *r, struct http_controls *c)
{
	uint32_t i, found = 0;

	for (i = 0; i < r->req.nparams; i++) {
		struct http_span k = r->req.params[i].key;

		if (k.len == 11 && memcmp(http_at(r, k), "echo_header", 11) == 0) {
			found = 1;
			if (ctl_header(r, r->req.params[i].value, c) == -1)
				return -1;
		}
	}
	for (i = 0; !found && i < r->req.nheaders; i++) {
		struct http_span n = r->req.headers[i].name;

		if (n.len == 13 && strncasecmp(http_at(r, n), "X-Echo-Header",
		    13) == 0 && ctl_header(r, r->req.headers[i].value, c) == -1)
			return -1;
	}
	return 0;
}

/* 1 and *n when the control is given within [min, max], 0 when it is
   absent, -1 when it is not a number in range. */
static int
ctl_num(const struct http_reader *r, const char *qname, const char *hname,
    uint64_t min, uint64_t max, uint64_t *n)
{
	struct http_span v;

	if (!ctl_value(r, qname, hname, &v))
		return 0;
	if (ctl_number(r, v, n) == -1 || *n < min || *n > max)
		return -1;
	return 1;
}

/* Whether r may name a control: a query parameter or an X-Echo-*
   header.  Most requests have neither, and skip the lookups (each a
   walk of the headers). */
static int
ctl_any(const struct http_reader *r)
{
	uint32_t i;

	if (r->req.nparams > 0)
		return 1;
	for (i = 0; i < r->req.nheaders; i++) {
		struct http_span n = r->req.headers[i].name;

		if (n.len > 7 && strncasecmp(http_at(r, n), "X-Echo-", 7) == 0)
			return 1;
	}
	return 0;
}

int
http_controls_get(const struct http_reader *r, struct http_controls *c,
    char *why, size_t whylen)
{
	const struct http_opts *o = r->opts;
	uint64_t n;
	int got;

	memset(c, 0, sizeof(*c));
	c->status = 200;
	if (!o->controls || !ctl_any(r))
		return 0;
	if ((got = ctl_num(r, "echo_code", "X-Echo-Code", 200, 599, &n)) < 0) {
		snprintf(why, whylen, "echo_code must be 200 to 599");
		return 400;
	} else if (got)
		c->status = (int)n;
	/* echo_time is Ealenn/Echo-Server's name for the same. */
	if ((got = ctl_num(r, "echo_delay", "X-Echo-Delay", 0, o->max_delay,
	    &n)) == 0)
		got = ctl_num(r, "echo_time", "X-Echo-Time", 0, o->max_delay,
		    &n);
	if (got < 0) {
		snprintf(why, whylen, "echo_delay must be 0 to %u (ms)",
		    o->max_delay);
		return 400;
	} else if (got)
		c->delay_ms = (uint32_t)n;
	if ((got = ctl_num(r, "echo_size", "X-Echo-Size", 0,
	    o->max_response_size, &n)) < 0) {
		snprintf(why, whylen, "echo_size must be 0 to %llu (bytes)",
		    (unsigned long long)o->max_response_size);
		return 400;
	} else if (got) {
		c->sized = 1;
		c->size = n;
	}
	if (ctl_headers(r, c) == -1) {
		snprintf(why, whylen, "echo_header must be one Name:Value, "
		    "at most %d, without control characters, and not a "
		    "framing header", HTTP_MAX_EXTRA);
		return 400;
	}
	return 0;
}
