/*
 * The counters: per-thread slots, their sums, the names of the reasons,
 * the latest refusal noted, and the watchdog's rule.  Nothing here
 * reports: src/server/status.c pulls the sums (as memcached's
 * server_stats() pulls the threads' counters), so the counters' owners
 * never call up.
 *
 * Threads: main thread, except the slot helpers, which any thread calls
 * on its own slot (include/stats.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>

#include "stats.h"

static unsigned stats_nslots = 1;	/* set once by stats_init() */

static struct stats_lis *
stats_alloc(unsigned nslots)
{
	size_t len = sizeof(struct stats_lis) +
	    nslots * sizeof(struct stats_slot);
	struct stats_lis *sl;

	/* aligned_alloc() wants a multiple of the alignment. */
	len = (len + 63) & ~(size_t)63;
	if ((sl = aligned_alloc(64, len)) == NULL)
		return NULL;
	memset(sl, 0, len);
	sl->nslots = nslots;
	return sl;
}

int
stats_init(struct stats *st, unsigned nworkers)
{
	pthread_mutex_init(&st->note_mtx, NULL);
	stats_nslots = nworkers + 1;
	st->all = stats_alloc(stats_nslots);
	return st->all != NULL ? 0 : -1;
}

void
stats_fini(struct stats *st)
{
	pthread_mutex_destroy(&st->note_mtx);
	free(st->all);
	st->all = NULL;
}

struct stats_lis *
stats_lis_new(void)
{
	return stats_alloc(stats_nslots);
}

void
stats_lis_free(struct stats_lis *sl)
{
	free(sl);
}

struct stats_slot *
stats_slot(struct stats_lis *sl, unsigned i)
{
	return &sl->slot[i < sl->nslots ? i : sl->nslots - 1];
}

unsigned
stats_acceptor(void)
{
	return stats_nslots - 1;
}

static void
sum_ctrs(uint64_t *to, const stats_ctr *from, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		to[i] += stats_get(&from[i]);
}

void
stats_sum(const struct stats_lis *sl, struct stats_sum *sum)
{
	unsigned i;

	for (i = 0; i < sl->nslots; i++) {
		const struct stats_slot *s = &sl->slot[i];

		sum->accepted += stats_get(&s->accepted);
		sum_ctrs(sum->refused, s->refused, EO_NREFUSALS);
		sum_ctrs(sum->closed, s->closed, EO_NCLOSES);
		sum->bytes_in += stats_get(&s->bytes_in);
		sum->bytes_out += stats_get(&s->bytes_out);
		sum->units += stats_get(&s->units);
		sum_ctrs(&sum->http[0][0], &s->http[0][0],
		    EO_NHTTP_METHODS * EO_NHTTP_CLASSES);
		sum->ws_messages += stats_get(&s->ws_messages);
		sum_ctrs(sum->ws_closes, s->ws_closes, EO_NWS_CODES);
		sum_ctrs(sum->lag, s->lag, EO_NLAG + 1);
		sum->lag_us += stats_get(&s->lag_us);
	}
}

/* conn.c's words for its reasons, by prefix; first match wins. */
static const struct {
	const char		*prefix;
	enum stats_close	 r;
} close_words[] = {
	{ "client EOF", EO_CLOSE_CLIENT_EOF },
	{ "client reset", EO_CLOSE_CLIENT_RESET },
	{ "idle_timeout", EO_CLOSE_IDLE_TIMEOUT },
	{ "write_timeout", EO_CLOSE_WRITE_TIMEOUT },
	{ "question_timeout", EO_CLOSE_UNIT_TIMEOUT },
	{ "unit_timeout", EO_CLOSE_UNIT_TIMEOUT },
	{ "max_question_length", EO_CLOSE_MAX_QUESTION_LENGTH },
	{ "max_questions", EO_CLOSE_MAX_QUESTIONS },
	{ "protocol closed", EO_CLOSE_PROTOCOL_CLOSED },
	{ "protocol error", EO_CLOSE_PROTOCOL_ERROR },
	{ "evicted", EO_CLOSE_EVICTED },
	{ "shutdown", EO_CLOSE_SHUTDOWN },
	{ "PROXY header", EO_CLOSE_PROXY_HEADER },
	{ "TLS handshake", EO_CLOSE_TLS_HANDSHAKE },
	{ "tls_handshake_timeout", EO_CLOSE_TLS_TIMEOUT },
	/* Closed by a restart that could not carry it. */
	{ "restart", EO_CLOSE_RESTART },
	/* The built-ins that close after speaking. */
	{ "daytime sent", EO_CLOSE_PROTOCOL_CLOSED },
	{ "time sent", EO_CLOSE_PROTOCOL_CLOSED },
	{ "quote sent", EO_CLOSE_PROTOCOL_CLOSED },
};

static const char *const close_names[EO_NCLOSES] = {
	[EO_CLOSE_CLIENT_EOF] = "client_eof",
	[EO_CLOSE_CLIENT_RESET] = "client_reset",
	[EO_CLOSE_IDLE_TIMEOUT] = "idle_timeout",
	[EO_CLOSE_WRITE_TIMEOUT] = "write_timeout",
	[EO_CLOSE_UNIT_TIMEOUT] = "question_timeout",
	[EO_CLOSE_MAX_QUESTIONS] = "max_questions",
	[EO_CLOSE_MAX_QUESTION_LENGTH] = "max_question_length",
	[EO_CLOSE_PROTOCOL_CLOSED] = "protocol_closed",
	[EO_CLOSE_PROTOCOL_ERROR] = "protocol_error",
	[EO_CLOSE_EVICTED] = "evicted",
	[EO_CLOSE_SHUTDOWN] = "shutdown",
	[EO_CLOSE_ERROR] = "error",
	[EO_CLOSE_PROXY_HEADER] = "proxy_header",
	[EO_CLOSE_TLS_HANDSHAKE] = "tls_handshake_failed",
	[EO_CLOSE_TLS_TIMEOUT] = "tls_handshake_timeout",
	[EO_CLOSE_RESTART] = "restart",
	[EO_CLOSE_HEALTH_CHECK] = "health_check",
};

static const char *const refusal_names[EO_NREFUSALS] = {
	[EO_REFUSED_FULL] = "max_connections",
	[EO_REFUSED_LISTENER] = "listener_max_connections",
	[EO_REFUSED_SOURCE] = "max_connections_per_source",
	[EO_REFUSED_FDS] = "out_of_fds",
	[EO_REFUSED_OTHER] = "other",
	[EO_REFUSED_UNTRUSTED] = "not_in_proxy_from",
	[EO_REFUSED_DENIED] = "denied",
	[EO_REFUSED_PROXY] = "bad_proxy_header",
	[EO_REFUSED_TLS] = "tls_handshake",
};

/* Once per closed connection, never per message: a few strncmp(). */
enum stats_close
stats_close_reason(const char *why)
{
	size_t i;

	for (i = 0; i < sizeof(close_words) / sizeof(close_words[0]); i++)
		if (strncmp(why, close_words[i].prefix,
		    strlen(close_words[i].prefix)) == 0)
			return close_words[i].r;
	return EO_CLOSE_ERROR;	/* "error: read: ...", out of memory */
}

const char *
stats_close_name(enum stats_close r)
{
	return (unsigned)r < EO_NCLOSES ? close_names[r] : "error";
}

const char *
stats_refusal_name(enum stats_refusal r)
{
	return (unsigned)r < EO_NREFUSALS ? refusal_names[r] : "other";
}

const char *
stats_udp_drop_name(enum stats_udp_drop r)
{
	static const char *const names[EO_UDP_NDROPS] = {
		"reserved_port", "own_port", "multicast", "broadcast",
		"bogus_address", "rate_limit", "truncated", "icmp_error",
		"send_buffer_full", "send_error", "denied" };

	return (unsigned)r < EO_UDP_NDROPS ? names[r] : "other";
}

void
stats_lag(struct stats_slot *s, uint64_t us)
{
	static const uint64_t bounds[EO_NLAG] = EO_LAG_BOUNDS;
	unsigned b = 0;

	while (b < EO_NLAG && us > bounds[b])
		b++;
	stats_bump(&s->lag[b], 1);
	stats_bump(&s->lag_us, us);
}

void
stats_note(struct stats *st, enum stats_refusal r, const char *by,
    const char *who, unsigned limit)
{
	struct stats_note *n = &st->note[r];

	pthread_mutex_lock(&st->note_mtx);
	snprintf(n->by, sizeof(n->by), "%s", by);
	snprintf(n->who, sizeof(n->who), "%s", who);
	n->limit = limit;
	pthread_mutex_unlock(&st->note_mtx);
}

void
stats_note_get(struct stats *st, enum stats_refusal r,
    struct stats_note *out)
{
	pthread_mutex_lock(&st->note_mtx);
	*out = st->note[r];
	pthread_mutex_unlock(&st->note_mtx);
}

int
stats_beat_stuck(unsigned long beat, unsigned long *seen, time_t *seen_at,
    time_t now, time_t limit)
{
	if (beat != *seen) {
		*seen = beat;
		*seen_at = now;
		return 0;
	}
	return now - *seen_at > limit;
}

time_t
stats_stuck_after(uint64_t watchdog_usec)
{
	time_t limit = (time_t)(watchdog_usec / 1000000);

	/* A worker beats once a second: less than 3 s would be noise. */
	return limit < 3 ? 3 : limit;
}

unsigned
stats_http_method(const char *method)
{
	static const char *const names[] = EO_HTTP_METHODS;
	unsigned i;

	for (i = 0; i < EO_NHTTP_METHODS - 1; i++)
		if (strcmp(names[i], method) == 0)
			break;
	return i;
}

unsigned
stats_ws_code(int code)
{
	static const int codes[] = EO_WS_CODES;
	unsigned i;

	for (i = 0; i < EO_NWS_CODES - 1; i++)
		if (codes[i] == code)
			break;
	return i;
}
