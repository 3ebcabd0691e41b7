/*
 * libFuzzer: WebSocket framing.  Whatever a client sends after the
 * upgrade, the session must send only well-formed server frames
 * (unmasked, FIN set, a close last), text that is UTF-8, never more
 * and, when no close came up, the same messages and the same pongs,
 * each in order, however the input was cut and however little room the
 * output had.  (A pong may overtake echoes still queued: wslay sends
 * control frames first, as RFC 6455 5.4 allows, so only the two
 * sequences are compared, not how they interleave.)
 *
 * Input: byte 0 picks the message limit and the output mark, byte 1
 * seeds the cut points, the rest is the client's byte stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "ws.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct out {
	unsigned char	*p;
	size_t		 len;
	int		 closed;
	unsigned char	*seq[2];	/* data frames, pongs: op, len, bytes */
	size_t		 seqlen[2];
};

static void
note(struct out *o, int which, unsigned char op, const unsigned char *p,
    uint64_t n)
{
	size_t at = o->seqlen[which];

	o->seq[which] = realloc(o->seq[which], at + 9 + (size_t)n);
	o->seq[which][at] = op;
	memcpy(o->seq[which] + at + 1, &n, 8);
	memcpy(o->seq[which] + at + 9, p, (size_t)n);
	o->seqlen[which] += 9 + (size_t)n;
}

static int
same_seq(const struct out *a, const struct out *b, int which)
{
	return a->seqlen[which] == b->seqlen[which] && (a->seqlen[which] == 0 ||
	    memcmp(a->seq[which], b->seq[which], a->seqlen[which]) == 0);
}

static void
out_free(struct out *o)
{
	free(o->p);
	free(o->seq[0]);
	free(o->seq[1]);
}

/* Checks o holds whole, well-formed server frames; notes a close. */
static void
check_frames(struct out *o)
{
	size_t at = 0;

	while (at < o->len) {
		unsigned char op, b1;
		uint64_t n;
		size_t h = 2;

		if (o->len - at < 2 || o->closed)
			abort();	/* a cut frame, or one after a close */
		op = o->p[at] & 0x0f;
		b1 = o->p[at + 1];
		if ((o->p[at] & 0xf0) != 0x80 || (b1 & 0x80))
			abort();	/* not FIN, RSV set, or masked */
		n = b1 & 0x7f;
		if (n == 126) {
			n = (uint64_t)o->p[at + 2] << 8 | o->p[at + 3];
			h = 4;
		} else if (n == 127) {
			n = 0;
			for (h = 2; h < 10; h++)
				n = n << 8 | o->p[at + h];
		}
		if (n > o->len - at - h)
			abort();
		if (op == 1 && !http_utf8_valid(o->p + at + h, (size_t)n))
			abort();
		if (op == 8)
			o->closed = 1;
		else if (op == 1 || op == 2)
			note(o, 0, op, o->p + at + h, n);
		else if (op == 10)
			note(o, 1, op, o->p + at + h, n);
		else
			abort();
		at += h + (size_t)n;
	}
}

static void
run(const uint8_t *data, size_t len, uint32_t maxmsg, size_t mark,
    unsigned seed, size_t room, struct out *o)
{
	struct ws_session *s = ws_session_new(maxmsg, mark);
	size_t off = 0, idle = 0;

	if (s == NULL)
		abort();
	while (!ws_finished(s) && idle < 3) {
		size_t n = len - off, t, k;
		const void *p;

		if (seed == 1 && n > 0)
			n = 1;
		else if (seed > 1 && n > 0)
			n = 1 + (size_t)rand_r(&seed) % (n < 300 ? n : 300);
		t = ws_feed(s, data + off, n);
		off += t;
		/* Output room as a slow reader gives it. */
		if ((p = ws_output(s, &k)) != NULL) {
			k = k < room ? k : room;
			o->p = realloc(o->p, o->len + k);
			memcpy(o->p + o->len, p, k);
			o->len += k;
			ws_output_done(s, k);
		}
		idle = t == 0 && p == NULL ? idle + 1 : 0;
		if (t == 0 && n > 0 && ws_wants_input(s) && p == NULL)
			abort();	/* stuck: no input taken, no output */
	}
	/* Finished or out of input: what is left is sent. */
	for (;;) {
		size_t k;
		const void *p = ws_output(s, &k);

		if (p == NULL)
			break;
		o->p = realloc(o->p, o->len + k);
		memcpy(o->p + o->len, p, k);
		o->len += k;
		ws_output_done(s, k);
	}
	ws_session_free(s);
	check_frames(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out blob = { 0 }, other = { 0 };
	uint32_t maxmsg;
	size_t mark;

	if (size < 2)
		return 0;
	maxmsg = 1u + (data[0] & 0x0f) * 64u;
	mark = 1u + (size_t)(data[0] >> 4) * 100u;
	run(data + 2, size - 2, maxmsg, mark, 0, (size_t)-1, &blob);
	run(data + 2, size - 2, maxmsg, mark, 2u + data[1],
	    1u + data[1] % 17u, &other);
	if (!blob.closed && !other.closed && (!same_seq(&blob, &other, 0) ||
	    !same_seq(&blob, &other, 1)))
		abort();
	out_free(&blob);
	out_free(&other);
	return 0;
}
