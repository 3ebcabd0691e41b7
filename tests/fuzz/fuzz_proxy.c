/*
 * libFuzzer: the PROXY protocol parser.  A connection calls it on the
 * bytes received so far, however the network cut them; so, whatever the
 * input, its prefixes must give NEED_MORE until one gives DONE or
 * INVALID, and every longer prefix (the whole input too) that same
 * answer: verdict, header length, version, command, family, transport,
 * addresses and reason.  Every prefix length is tried, which covers every
 * way of cutting the input into reads.
 *
 * Each prefix is parsed with the bytes after it poisoned, so that a read
 * past len is an AddressSanitizer report, not luck.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/asan_interface.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static size_t
addr_size(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
}

static int
same(enum proxy_verdict va, const struct proxy_result *a,
    enum proxy_verdict vb, const struct proxy_result *b)
{
	if (va != vb)
		return 0;
	if (va == EO_PROXY_INVALID)
		return strcmp(a->reason, b->reason) == 0;
	if (va == EO_PROXY_NEED_MORE)
		return 1;
	if (a->header_len != b->header_len || a->version != b->version ||
	    a->command != b->command || a->family != b->family ||
	    a->transport != b->transport)
		return 0;
	if (a->family == AF_UNSPEC)
		return 1;
	return memcmp(&a->src, &b->src, addr_size(a->family)) == 0 &&
	    memcmp(&a->dst, &b->dst, addr_size(a->family)) == 0;
}

/* What any answer must satisfy, whatever the bytes. */
static void
sane(enum proxy_verdict v, const struct proxy_result *r, size_t len)
{
	if (v == EO_PROXY_INVALID && (r->reason == NULL || *r->reason == '\0'))
		abort();
	if (v != EO_PROXY_DONE)
		return;
	if (r->header_len == 0 || r->header_len > len ||
	    r->header_len > EO_PROXY_HEADER_MAX || r->reason != NULL)
		abort();
	if (r->version == 1 ? r->header_len > EO_PROXY_V1_MAX :
	    r->version != 2)
		abort();
	if (r->family != AF_UNSPEC && (r->src.sa.sa_family != r->family ||
	    r->dst.sa.sa_family != r->family ||
	    r->command != EO_PROXY_CMD_PROXY))
		abort();
	if (r->family != AF_UNSPEC && r->family != AF_INET &&
	    r->family != AF_INET6)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_result whole, r;
	enum proxy_verdict vw, v;
	unsigned char *buf = malloc(size + 1);
	size_t k;
	int decided = 0;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	vw = proxy_parse(buf, size, &whole);
	sane(vw, &whole, size);
	for (k = 0; k <= size; k++) {
		ASAN_POISON_MEMORY_REGION(buf + k, size + 1 - k);
		v = proxy_parse(buf, k, &r);
		ASAN_UNPOISON_MEMORY_REGION(buf + k, size + 1 - k);
		sane(v, &r, k);
		if (v == EO_PROXY_NEED_MORE) {
			if (decided)
				abort();	/* took back its answer */
			continue;
		}
		if (!same(v, &r, vw, &whole))
			abort();
		decided = 1;
	}
	free(buf);
	return 0;
}
