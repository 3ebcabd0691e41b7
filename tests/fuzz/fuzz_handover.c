/*
 * libFuzzer: the restart state a new process reads from the memfd the
 * old one left (handover.h).  Whatever the bytes, ho_parse() refuses
 * them or gives records within the input; a record it gives, written
 * out again and read back, is the same record, and its copy owns bytes
 * that are the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handover.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
same(const struct ho_conn *a, const struct ho_conn *b)
{
	return strcmp(a->listener, b->listener) == 0 &&
	    strcmp(a->proto, b->proto) == 0 &&
	    ho_addr_equal(&a->local, &b->local) &&
	    ho_addr_equal(&a->peer, &b->peer) &&
	    a->state == b->state && a->flags == b->flags &&
	    a->in == b->in && a->out == b->out &&
	    a->unit_in == b->unit_in &&
	    a->pstate_len == b->pstate_len &&
	    a->held_len == b->held_len && a->queued_len == b->queued_len &&
	    (a->pstate_len == 0 ||
	    memcmp(a->pstate, b->pstate, a->pstate_len) == 0) &&
	    (a->held_len == 0 || memcmp(a->held, b->held, a->held_len) == 0) &&
	    (a->queued_len == 0 ||
	    memcmp(a->queued, b->queued, a->queued_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct ho_conn *recs, *again, *dup;
	struct ho_buf b;
	char err[256];
	long i, n = ho_parse(data, len, &recs, err, sizeof(err));

	if (n <= 0)
		return 0;
	memset(&b, 0, sizeof(b));
	ho_put_header(&b, (uint32_t)n);
	for (i = 0; i < n; i++) {
		if (recs[i].pstate + recs[i].pstate_len > data + len)
			abort();
		ho_put_conn(&b, &recs[i]);
	}
	if (b.failed || ho_parse(b.data, b.len, &again, err,
	    sizeof(err)) != n)
		abort();
	for (i = 0; i < n; i++) {
		if (!same(&recs[i], &again[i]))
			abort();
		if ((dup = ho_conn_dup(&recs[i])) == NULL)
			abort();
		if (!same(dup, &recs[i]))
			abort();
		free(dup);
	}
	free(again);
	free(recs);
	ho_buf_free(&b);
	return 0;
}
