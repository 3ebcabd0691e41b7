/*
 * PROXY protocol receiver, in the manner of Postfix's haproxy_srvr_test.c:
 * a table of valid headers with what they must give, and from each one
 * the invalid headers derived by breaking it (a byte inserted, the
 * terminator stripped or halved, the version, command, signature or
 * length spoiled); then headers invalid in their own way, each with its
 * reason.  Every valid header is also fed cut at every position and
 * followed by the client's first bytes.
 */
#include <check.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "check_main.h"

/* The v2 signature, as a string literal (it holds a NUL). */
#define SIG	"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
#define H(s)	(const unsigned char *)(s), sizeof(s) - 1
#define MAXH	(EO_PROXY_HEADER_MAX + 64)

struct valid {
	const char		*name;
	const unsigned char	*bytes;
	size_t			 len;
	int			 version;
	enum proxy_command	 cmd;
	int			 family;
	int			 transport;
	const char		*src;
	unsigned		 sport;
	const char		*dst;
	unsigned		 dport;
};

static const struct valid valid[] = {
	{ "v1 TCP4", H("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_INET, SOCK_STREAM,
	  "192.168.0.1", 56324, "192.168.0.11", 443 },
	{ "v1 TCP4 extremes",
	  H("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_INET, SOCK_STREAM,
	  "0.0.0.0", 0, "255.255.255.255", 65535 },
	{ "v1 TCP6", H("PROXY TCP6 2001:db8::1 ::1 65535 7\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_INET6, SOCK_STREAM,
	  "2001:db8::1", 65535, "::1", 7 },
	{ "v1 TCP6 longest", H("PROXY TCP6 "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFE 65535 65535\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_INET6, SOCK_STREAM,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535 },
	{ "v1 UNKNOWN", H("PROXY UNKNOWN\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v1 UNKNOWN with addresses",
	  H("PROXY UNKNOWN 10.0.0.1 10.0.0.2 1 2\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v1 UNKNOWN 107 bytes", H("PROXY UNKNOWN "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	  1, EO_PROXY_CMD_PROXY, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v2 TCP4", H(SIG "\x21\x11\x00\x0c" "\xc0\xa8\x00\x01"
	  "\x0a\x00\x00\x02" "\xdc\x04\x01\xbb"),
	  2, EO_PROXY_CMD_PROXY, AF_INET, SOCK_STREAM,
	  "192.168.0.1", 56324, "10.0.0.2", 443 },
	{ "v2 TCP4 with TLVs", H(SIG "\x21\x11\x00\x1a" "\xc0\xa8\x00\x01"
	  "\x0a\x00\x00\x02" "\xdc\x04\x01\xbb"
	  "\x04\x00\x03" "abc" "\x02\x00\x05" "a.org"),
	  2, EO_PROXY_CMD_PROXY, AF_INET, SOCK_STREAM,
	  "192.168.0.1", 56324, "10.0.0.2", 443 },
	{ "v2 UDP4", H(SIG "\x21\x12\x00\x0c" "\x7f\x00\x00\x01"
	  "\x7f\x00\x00\x02" "\x00\x35\x00\x07"),
	  2, EO_PROXY_CMD_PROXY, AF_INET, SOCK_DGRAM,
	  "127.0.0.1", 53, "127.0.0.2", 7 },
	{ "v2 TCP6", H(SIG "\x21\x21\x00\x24"
	  "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	  "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	  "\xff\xff\x00\x00"),
	  2, EO_PROXY_CMD_PROXY, AF_INET6, SOCK_STREAM,
	  "2001:db8::1", 65535, "::1", 0 },
	{ "v2 TCP6 with TLVs", H(SIG "\x21\x21\x00\x2b"
	  "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
	  "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03"
	  "\x30\x39\x00\x07" "\xe0\x00\x04" "\x00\r\n\x01"),
	  2, EO_PROXY_CMD_PROXY, AF_INET6, SOCK_STREAM,
	  "2001:db8::2", 12345, "2001:db8::3", 7 },
	{ "v2 LOCAL", H(SIG "\x20\x00\x00\x00"),
	  2, EO_PROXY_CMD_LOCAL, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v2 LOCAL with a length", H(SIG "\x20\x11\x00\x0c"
	  "\x7f\x00\x00\x01" "\x7f\x00\x00\x02" "\x00\x35\x00\x07"),
	  2, EO_PROXY_CMD_LOCAL, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v2 LOCAL with TLVs only", H(SIG "\x20\x00\x00\x05"
	  "\x04\x00\x02" "\x00\x00"),
	  2, EO_PROXY_CMD_LOCAL, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v2 PROXY UNSPEC", H(SIG "\x21\x00\x00\x00"),
	  2, EO_PROXY_CMD_PROXY, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
	{ "v2 PROXY UNSPEC with a length", H(SIG "\x21\x00\x00\x03" "xyz"),
	  2, EO_PROXY_CMD_PROXY, AF_UNSPEC, 0, NULL, 0, NULL, 0 },
};
#define NVALID	(sizeof(valid) / sizeof(valid[0]))

/* Parses exactly len bytes from a copy of their own, so that a read past
   len is one past the allocation, for AddressSanitizer to see. */
static enum proxy_verdict
parse(const unsigned char *b, size_t len, struct proxy_result *r)
{
	unsigned char *copy = malloc(len ? len : 1);
	enum proxy_verdict v;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, b, len);
	memset(r, 0xa5, sizeof(*r));	/* nothing may be left unset */
	v = proxy_parse(copy, len, r);
	free(copy);
	return v;
}

static void
check_addr(const char *name, const union proxy_addr *a, int family,
    const char *text, unsigned port)
{
	unsigned char want[16];

	ck_assert_int_eq(inet_pton(family, text, want), 1);
	ck_assert_msg(a->sa.sa_family == family, "%s: family", name);
	if (family == AF_INET) {
		ck_assert_msg(memcmp(&a->sin.sin_addr, want, 4) == 0,
		    "%s: address %s", name, text);
		ck_assert_uint_eq(ntohs(a->sin.sin_port), port);
	} else {
		ck_assert_msg(memcmp(&a->sin6.sin6_addr, want, 16) == 0,
		    "%s: address %s", name, text);
		ck_assert_uint_eq(ntohs(a->sin6.sin6_port), port);
	}
}

/* b[0..len) holds v's header and then, maybe, the client's bytes. */
static void
check_done(const struct valid *v, const unsigned char *b, size_t len)
{
	struct proxy_result r;
	enum proxy_verdict got = parse(b, len, &r);

	ck_assert_msg(got == EO_PROXY_DONE, "%s: verdict %d (%s)", v->name,
	    got, got == EO_PROXY_INVALID ? r.reason : "");
	ck_assert_msg(r.header_len == v->len, "%s: header_len %zu", v->name,
	    r.header_len);
	ck_assert_ptr_null(r.reason);
	ck_assert_int_eq(r.version, v->version);
	ck_assert_int_eq(r.command, v->cmd);
	ck_assert_int_eq(r.family, v->family);
	ck_assert_int_eq(r.transport, v->transport);
	if (v->family == AF_UNSPEC)
		return;
	check_addr(v->name, &r.src, v->family, v->src, v->sport);
	check_addr(v->name, &r.dst, v->family, v->dst, v->dport);
}

static void
check_invalid(const char *name, const unsigned char *b, size_t len,
    const char *reason)
{
	struct proxy_result r;
	enum proxy_verdict got = parse(b, len, &r);

	ck_assert_msg(got == EO_PROXY_INVALID, "%s: verdict %d, not INVALID",
	    name, got);
	ck_assert_ptr_nonnull(r.reason);
	if (reason != NULL)
		ck_assert_msg(strstr(r.reason, reason) != NULL,
		    "%s: reason \"%s\", not \"%s\"", name, r.reason, reason);
}

static void
check_need_more(const char *name, const unsigned char *b, size_t len)
{
	struct proxy_result r;
	enum proxy_verdict got = parse(b, len, &r);

	ck_assert_msg(got == EO_PROXY_NEED_MORE,
	    "%s: %zu bytes: verdict %d (%s), not NEED_MORE", name, len, got,
	    got == EO_PROXY_INVALID ? r.reason : "");
}

START_TEST(test_valid_whole)
{
	check_done(&valid[_i], valid[_i].bytes, valid[_i].len);
}
END_TEST

/* Cut anywhere, a header needs more; whole, it is the same header. */
START_TEST(test_valid_piecewise)
{
	const struct valid *v = &valid[_i];
	size_t k;

	for (k = 0; k < v->len; k++)
		check_need_more(v->name, v->bytes, k);
	check_done(v, v->bytes, v->len);
}
END_TEST

/* The client's bytes after the header are never taken with it, even
   ones that look like a header or a terminator. */
START_TEST(test_valid_then_payload)
{
	static const char *const payloads[] = {
		"GET / HTTP/1.0\r\n\r\n", "\r\n", "\n", "?", "\0",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", SIG "\x20\x00\x00\x00",
	};
	const struct valid *v = &valid[_i];
	unsigned char b[256];
	size_t i, plen;

	for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		plen = i == 4 ? 1 : i == 6 ? 16 : strlen(payloads[i]);
		memcpy(b, v->bytes, v->len);
		memcpy(b + v->len, payloads[i], plen);
		check_done(v, b, v->len + plen);
	}
}
END_TEST

/* v1 with TCP4/TCP6: a space or a letter inserted anywhere in the line
   breaks it; for UNKNOWN, anywhere in "PROXY UNKNOWN". */
START_TEST(test_v1_byte_inserted)
{
	const struct valid *v = &valid[_i];
	static const char ins[] = { ' ', 'x', '\t', '\0', '\n', '\r' };
	unsigned char b[256];
	size_t at, last, k;

	if (v->version != 1)
		return;
	last = v->family == AF_UNSPEC ? strlen("PROXY UNKNOWN") : v->len - 2;
	for (at = 0; at < last; at++) {
		for (k = 0; k < sizeof(ins); k++) {
			memcpy(b, v->bytes, at);
			b[at] = (unsigned char)ins[k];
			memcpy(b + at + 1, v->bytes + at, v->len - at);
			check_invalid(v->name, b, v->len + 1, NULL);
		}
	}
}
END_TEST

/* v1: the terminator stripped, halved, or a bare LF or CR instead. */
START_TEST(test_v1_terminator)
{
	const struct valid *v = &valid[_i];
	unsigned char b[256];
	size_t n;

	if (v->version != 1)
		return;
	n = v->len - 2;
	memcpy(b, v->bytes, n);
	check_need_more(v->name, b, n);		/* stripped: not yet */
	memset(b + n, 'x', sizeof(b) - n);	/* and never coming */
	check_invalid(v->name, b, sizeof(b), "no CR LF in the first 107");
	check_invalid(v->name, b, EO_PROXY_V1_MAX, "no CR LF");
	b[n] = '\n';
	check_invalid(v->name, b, n + 1, "LF without CR");
	b[n] = '\r';
	check_need_more(v->name, b, n + 1);	/* CR: LF may follow */
	check_invalid(v->name, b, n + 2, "CR without LF");
	b[n + 1] = '\r';
	check_invalid(v->name, b, n + 2, "CR without LF");
	if (v->family != AF_UNSPEC || v->len == 15) {
		/* Without a terminator, the client's bytes join the line. */
		memcpy(b + n, "GET / HTTP/1.0\r\n", 16);
		check_invalid(v->name, b, n + 16, NULL);
	}
}
END_TEST

/* v2: a spoiled signature, version or command; a short length. */
START_TEST(test_v2_spoiled)
{
	const struct valid *v = &valid[_i];
	unsigned char b[256];
	unsigned x, i, block;

	if (v->version != 2)
		return;
	for (i = 0; i < 12; i++) {
		memcpy(b, v->bytes, v->len);
		b[i] ^= 0x80;
		check_invalid(v->name, b, i + 1, "not a PROXY");
		check_invalid(v->name, b, v->len, "not a PROXY");
	}
	for (x = 0; x < 16; x++) {
		memcpy(b, v->bytes, v->len);
		b[12] = (unsigned char)(x << 4 | (b[12] & 0x0f));
		if (x != 2) {
			check_invalid(v->name, b, 13, "version is not 2");
			check_invalid(v->name, b, v->len, "version is not 2");
		}
		b[12] = (unsigned char)(0x20 | x);
		if (x > 1) {
			check_invalid(v->name, b, 13, "unknown command");
			check_invalid(v->name, b, v->len, "unknown command");
		}
	}
	block = v->family == AF_INET ? 12 : v->family == AF_INET6 ? 36 : 0;
	if (block == 0)
		return;
	memcpy(b, v->bytes, v->len);
	b[14] = 0;
	b[15] = (unsigned char)(block - 1);
	check_invalid(v->name, b, 16, "length shorter than the addresses");
	check_invalid(v->name, b, 16 + block - 1, "length shorter");
}
END_TEST

struct invalid {
	const char		*name;
	const unsigned char	*bytes;
	size_t			 len;
	const char		*reason;
};

static const struct invalid invalid[] = {
	{ "not PROXY", H("GET / HTTP/1.1\r\n"), "not a PROXY protocol" },
	{ "lower case", H("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "not a PROXY" },
	{ "no space", H("PROXY\r\n"), "not a PROXY" },
	{ "one byte", H("x"), "not a PROXY" },
	{ "v1 TCP5", H("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), "protocol is not" },
	{ "v1 tcp4", H("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), "protocol is not" },
	{ "v1 UNKNOWNX", H("PROXY UNKNOWNX\r\n"), "protocol is not" },
	{ "v1 nothing", H("PROXY \r\n"), "protocol is not" },
	{ "v1 TCP4 alone", H("PROXY TCP4\r\n"), "protocol is not" },
	{ "v1 TCP4 space", H("PROXY TCP4 \r\n"), "2 addresses and 2 ports" },
	{ "v1 3 fields", H("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "2 ports" },
	{ "v1 5 fields", H("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), "2 ports" },
	{ "v1 trailing space", H("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
	  "single spaces" },
	{ "v1 double space", H("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
	  "single spaces" },
	{ "v1 tab", H("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"), "2 ports" },
	{ "v1 leading zero in port", H("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
	  "leading zero in port" },
	{ "v1 leading zeros in port",
	  H("PROXY TCP4 1.2.3.4 5.6.7.8 1 00080\r\n"), "leading zero in port" },
	{ "v1 port 00", H("PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n"), "leading zero" },
	{ "v1 port 65536", H("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
	  "port above 65535" },
	{ "v1 port 99999", H("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"),
	  "port above 65535" },
	{ "v1 port 6 digits", H("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n"),
	  "port above 65535" },
	{ "v1 port 20 digits",
	  H("PROXY TCP4 1.2.3.4 5.6.7.8 1 18446744073709551617\r\n"),
	  "port above 65535" },
	{ "v1 port sign", H("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
	  "port is not a number" },
	{ "v1 port hex", H("PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n"),
	  "port is not a number" },
	{ "v1 leading zero in address",
	  H("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), "source is not an IPv4" },
	{ "v1 octet 256", H("PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n"),
	  "destination is not an IPv4" },
	{ "v1 3 octets", H("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
	  "source is not an IPv4" },
	{ "v1 TCP4 with IPv6", H("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
	  "source is not an IPv4" },
	{ "v1 TCP4 with IPv6 destination", H("PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
	  "destination is not an IPv4" },
	{ "v1 TCP6 with IPv4", H("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
	  "source is not an IPv6" },
	{ "v1 TCP6 with IPv4 destination", H("PROXY TCP6 ::1 1.2.3.4 1 2\r\n"),
	  "destination is not an IPv6" },
	{ "v1 IPv6 zone", H("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"),
	  "source is not an IPv6" },
	{ "v1 host name", H("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"),
	  "source is not an IPv4" },
	{ "v1 NUL in address", H("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"),
	  "source is not an IPv4" },
	{ "v1 LF alone", H("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "LF without CR" },
	{ "v1 LF CR", H("PROXY UNKNOWN\n\r"), "LF without CR" },
	{ "v1 CR alone", H("PROXY UNKNOWN\rX"), "CR without LF" },
	{ "v1 CR CR LF", H("PROXY UNKNOWN\r\r\n"), "CR without LF" },
	{ "v1 108 bytes", H("PROXY UNKNOWN "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655350\r\n"),
	  "no CR LF in the first 107" },
	{ "v2 family 0x13", H(SIG "\x21\x13\x00\x0c"), "unknown address family" },
	{ "v2 family 0x41", H(SIG "\x21\x41\x00\x0c"), "unknown address family" },
	{ "v2 family 0x01", H(SIG "\x21\x01\x00\x00"), "unknown address family" },
	{ "v2 family 0x10", H(SIG "\x21\x10\x00\x0c"), "unknown address family" },
	{ "v2 family 0x30", H(SIG "\x21\x30\x00\xd8"), "unknown address family" },
	{ "v2 family early", H(SIG "\x21\xff"), "unknown address family" },
	{ "v2 UNIX short", H(SIG "\x21\x31\x00\xd7"), "length shorter" },
	{ "v2 TCP4 no addresses", H(SIG "\x21\x11\x00\x00"), "length shorter" },
	{ "v2 TCP6 IPv4 length", H(SIG "\x21\x21\x00\x0c"), "length shorter" },
	{ "v2 too long", H(SIG "\x20\x00\xff\xff"), "header longer than 4096" },
	{ "v2 version 1", H(SIG "\x11"), "version is not 2" },
	{ "v2 command 0xf", H(SIG "\x2f"), "unknown command" },
	{ "v1 then v2", H("PROXY " SIG "\x20\x00\x00\x00"), "protocol is not" },
};
#define NINVALID (sizeof(invalid) / sizeof(invalid[0]))

START_TEST(test_invalid)
{
	check_invalid(invalid[_i].name, invalid[_i].bytes, invalid[_i].len,
	    invalid[_i].reason);
}
END_TEST

/* UNIX addresses (216 bytes): accepted, and the socket's own used. */
START_TEST(test_v2_unix)
{
	static const struct valid v = { "v2 UNIX", NULL, 16 + 216 + 4, 2,
	    EO_PROXY_CMD_PROXY, AF_UNSPEC, SOCK_DGRAM, NULL, 0, NULL, 0 };
	unsigned char b[16 + 216 + 4 + 8];
	size_t k;

	memcpy(b, SIG "\x21\x32\x00\xdc", 16);
	memset(b + 16, '/', sizeof(b) - 16);
	for (k = 0; k < v.len; k++)
		check_need_more(v.name, b, k);
	check_done(&v, b, v.len);
	check_done(&v, b, sizeof(b));
}
END_TEST

/* A v2 header of EO_PROXY_HEADER_MAX bytes is taken, one byte more is
   refused as soon as its length is known. */
START_TEST(test_v2_longest)
{
	static const struct valid v = { "v2 longest", NULL,
	    EO_PROXY_HEADER_MAX, 2, EO_PROXY_CMD_PROXY, AF_INET, SOCK_STREAM,
	    "10.1.2.3", 258, "10.4.5.6", 1 };
	static unsigned char b[MAXH];
	size_t tlv = EO_PROXY_HEADER_MAX - 16;

	memcpy(b, SIG "\x21\x11", 14);
	b[14] = (unsigned char)(tlv >> 8);
	b[15] = (unsigned char)(tlv & 0xff);
	memcpy(b + 16, "\x0a\x01\x02\x03\x0a\x04\x05\x06\x01\x02\x00\x01", 12);
	memset(b + 28, 0, sizeof(b) - 28);
	check_need_more(v.name, b, EO_PROXY_HEADER_MAX - 1);
	check_done(&v, b, EO_PROXY_HEADER_MAX);
	check_done(&v, b, sizeof(b));
	tlv++;
	b[14] = (unsigned char)(tlv >> 8);
	b[15] = (unsigned char)(tlv & 0xff);
	check_invalid(v.name, b, 16, "header longer than");
	check_invalid(v.name, b, sizeof(b), "header longer than");
}
END_TEST

/* LOCAL ignores the family byte, whatever it holds. */
START_TEST(test_v2_local_any_family)
{
	static const struct valid v = { "v2 LOCAL, family 0xff", NULL, 16, 2,
	    EO_PROXY_CMD_LOCAL, AF_UNSPEC, 0, NULL, 0, NULL, 0 };
	unsigned char b[16];

	memcpy(b, SIG "\x20\xff\x00\x00", 16);
	check_done(&v, b, sizeof(b));
}
END_TEST

/* Once DONE or INVALID, more bytes never change the answer. */
START_TEST(test_empty)
{
	struct proxy_result r;

	ck_assert_int_eq(proxy_parse(NULL, 0, &r), EO_PROXY_NEED_MORE);
	check_need_more("P", H("P"));
	check_need_more("PROXY ", H("PROXY "));
	check_need_more("CR LF", H("\r\n"));
	check_need_more("signature", H(SIG));
	check_need_more("v2 fixed part", H(SIG "\x21\x11\x00\x0c"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");

	tcase_add_loop_test(tc, test_valid_whole, 0, NVALID);
	tcase_add_loop_test(tc, test_valid_piecewise, 0, NVALID);
	tcase_add_loop_test(tc, test_valid_then_payload, 0, NVALID);
	tcase_add_loop_test(tc, test_v1_byte_inserted, 0, NVALID);
	tcase_add_loop_test(tc, test_v1_terminator, 0, NVALID);
	tcase_add_loop_test(tc, test_v2_spoiled, 0, NVALID);
	tcase_add_loop_test(tc, test_invalid, 0, NINVALID);
	tcase_add_test(tc, test_v2_unix);
	tcase_add_test(tc, test_v2_longest);
	tcase_add_test(tc, test_v2_local_any_family);
	tcase_add_test(tc, test_empty);
	suite_add_tcase(s, tc);
	return check_run(s);
}
