/*
 * Reporting the counters: burst lines when refusals start and end, the
 * STATUS= line, and the watchdog, fed only while every worker turns.
 *
 * Threads: main thread, except the slot helpers, which any thread calls
 * on its own slot (include/stats.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>

#include "clock.h"
#include "config.h"
#include "guard.h"
#include "listener.h"
#include "log.h"
#include "server_internal.h"
#include "stats.h"
#include "systemd.h"
#include "worker.h"

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

/* The refusals that name who was refused: noted by any thread. */
static int
burst_noted(struct server *srv, int r, char *buf, size_t len)
{
	struct stats_note n;

	if (r != EO_REFUSED_SOURCE && r != EO_REFUSED_UNTRUSTED &&
	    r != EO_REFUSED_DENIED && r != EO_REFUSED_PROXY &&
	    r != EO_REFUSED_TLS)
		return 0;
	stats_note_get(&srv->stats, (enum stats_refusal)r, &n);
	if (r == EO_REFUSED_SOURCE)
		snprintf(buf, len, "a client of listener %s reached "
		    "max_connections_per_source (%u): %s, the latest", n.by,
		    n.limit, n.who);
	else if (r == EO_REFUSED_UNTRUSTED)
		snprintf(buf, len, "listener %s takes PROXY headers only "
		    "from proxy_from: %s is not in it, the latest", n.by,
		    n.who);
	else if (r == EO_REFUSED_DENIED)
		snprintf(buf, len, "listener %s: client denied by allow/"
		    "deny: %s, the latest", n.by, n.who);
	else if (r == EO_REFUSED_TLS)
		snprintf(buf, len, "listener %s: TLS handshake failed or timed "
		    "out: %s, the latest", n.by, n.who);
	else
		snprintf(buf, len, "listener %s: bad PROXY header: %s, the "
		    "latest", n.by, n.who);
	return 1;
}

static void
burst_describe(struct server *srv, int r, char *buf, size_t len)
{
	if (burst_noted(srv, r, buf, len))
		return;
	switch (r) {
	case EO_REFUSED_FULL:
		snprintf(buf, len, "max_connections (%u) reached and no "
		    "connection quiet for %u s to evict", srv->cfg->max_conns,
		    srv->cfg->evict_after);
		break;
	case EO_REFUSED_LISTENER:
		snprintf(buf, len, "listener %s reached its max_connections "
		    "(%u)", srv->refused_by[r], srv->refused_limit[r]);
		break;
	case EO_REFUSED_FDS:
		snprintf(buf, len, "out of file descriptors (listener %s); "
		    "raise LimitNOFILE= or ulimit -n", srv->refused_by[r]);
		break;
	case EO_REFUSED_OTHER:
		snprintf(buf, len, "shutting down or out of memory");
		break;
	default:
		snprintf(buf, len, "max_connections (%u) reached: evicting "
		    "the connections quiet for longest", srv->cfg->max_conns);
		break;
	}
}

/* A burst's edges: 1 when it starts, -1 when a tick saw no more. */
static int
burst_edge(struct burst *b, unsigned long now)
{
	int edge = 0;

	if (now != b->seen && !b->active) {
		b->active = 1;
		b->start = b->seen;
		b->began = mono_sec();
		edge = 1;
	} else if (now == b->seen && b->active) {
		b->active = 0;
		edge = -1;
	}
	b->seen = now;
	return edge;
}

/* Dropped datagrams, by reason: one line as a run starts, one at its
   end, however many there were (a flood must not flood the log). */
static void
stats_udp_bursts(struct server *srv)
{
	static const char *const why[EO_UDP_NDROPS] = {
		NULL, NULL, NULL, NULL, NULL,
		"over udp_rate_limit for their source",
		"truncated: bigger than a datagram can be",
		"ICMP errors reported on a UDP socket",
		"the socket's send buffer was full",
		"sendmmsg() refused them",
		"their source is refused by allow/deny" };
	struct burst *b;
	const char *w;
	int r, edge;

	for (r = 0; r < EO_UDP_NDROPS; r++) {
		b = &srv->udp_bursts[r];
		edge = burst_edge(b, stats_get(&srv->stats.udp_dropped[r]));
		w = why[r] != NULL ? why[r] :
		    guard_why((enum guard_verdict)(r + 1));
		if (edge > 0)
			log_warnx("dropping UDP datagrams without reply: %s",
			    w);
		else if (edge < 0)
			log_notice("dropped %lu UDP datagram%s in %lld s: %s",
			    b->seen - b->start, b->seen - b->start == 1 ?
			    "" : "s", (long long)(mono_sec() - b->began), w);
	}
}

static void
stats_bursts(struct server *srv)
{
	struct stats_sum sum;
	char what[512];
	int r, edge;

	memset(&sum, 0, sizeof(sum));
	stats_sum(srv->stats.all, &sum);
	for (r = 0; r <= EO_NREFUSALS; r++) {
		struct burst *b = &srv->bursts[r];
		unsigned long now = r < EO_NREFUSALS ? sum.refused[r] :
		    sum.closed[EO_CLOSE_EVICTED];

		if ((edge = burst_edge(b, now)) > 0) {
			burst_describe(srv, r, what, sizeof(what));
			log_warnx("%s connections: %s", r < EO_NREFUSALS ?
			    "refusing" : "evicting", what);
		} else if (edge < 0) {
			burst_describe(srv, r, what, sizeof(what));
			log_notice("%s %lu connection%s in %lld s: %s",
			    r < EO_NREFUSALS ? "refused" : "evicted",
			    now - b->start, now - b->start == 1 ? "" : "s",
			    (long long)(mono_sec() - b->began), what);
		}
	}
	stats_udp_bursts(srv);
}

/* "echo, oracle" into buf, cut short where it does not fit. */
static void
stats_names(const struct server *srv, char *buf, size_t len)
{
	size_t i, used = 0;
	int k;

	buf[0] = '\0';
	for (i = 0; i < srv->nlis && used < len; i++) {
		k = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
		    listener_name(srv->lis[i]));
		if (k > 0)
			used += (size_t)k;
	}
}

void
stats_status_text(struct server *srv, char *buf, size_t len)
{
	unsigned n = stats_get(&srv->stats.conns);
	char names[256];

	char failed[256] = "";

	srv->status_conns = n;
	stats_names(srv, names, sizeof(names));
	if (srv->reload_failure[0] != '\0')
		snprintf(failed, sizeof(failed), "Reload failed: %s; running "
		    "the previous configuration. ", srv->reload_failure);
	snprintf(buf, len, "%secho-oracled %s: serving %zu listener%s (%s); "
	    "%u connection%s", failed, EO_VERSION, srv->nlis,
	    srv->nlis == 1 ? "" : "s", names, n, n == 1 ? "" : "s");
}

void
stats_status(struct server *srv, int force)
{
	char buf[512];

	if (!force && stats_get(&srv->stats.conns) == srv->status_conns)
		return;
	stats_status_text(srv, buf, sizeof(buf));
	systemd_status("%s", buf);
}

/* "echo 2, oracle 0": each listener's connections now. */
static void
stats_per_listener(const struct server *srv, char *buf, size_t len)
{
	size_t i, used = 0;
	int k;

	buf[0] = '\0';
	for (i = 0; i < srv->nlis && used < len; i++) {
		k = snprintf(buf + used, len - used, "%s%s %u", i ? ", " : "",
		    listener_name(srv->lis[i]), listener_nconns(srv->lis[i]));
		if (k > 0)
			used += (size_t)k;
	}
}

static void
stats_dump_udp(const struct stats *st)
{
	unsigned long dropped = 0;
	int r;

	for (r = 0; r < EO_UDP_NDROPS; r++)
		dropped += stats_get(&st->udp_dropped[r]);
	log_notice("UDP counters: %lu datagrams received, %lu answered, %lu "
	    "dropped (reserved source port %lu, own service port %lu, "
	    "multicast %lu, broadcast %lu, bogus source %lu, "
	    "udp_rate_limit %lu, truncated %lu, ICMP errors %lu, send buffer "
	    "full %lu, send errors %lu, denied by allow/deny %lu)",
	    stats_get(&st->udp_in),
	    stats_get(&st->udp_out), dropped,
	    stats_get(&st->udp_dropped[EO_UDP_RESERVED_PORT]),
	    stats_get(&st->udp_dropped[EO_UDP_OWN_PORT]),
	    stats_get(&st->udp_dropped[EO_UDP_MULTICAST]),
	    stats_get(&st->udp_dropped[EO_UDP_BROADCAST]),
	    stats_get(&st->udp_dropped[EO_UDP_BOGUS_ADDR]),
	    stats_get(&st->udp_dropped[EO_UDP_RATE]),
	    stats_get(&st->udp_dropped[EO_UDP_TRUNCATED]),
	    stats_get(&st->udp_dropped[EO_UDP_ICMP]),
	    stats_get(&st->udp_dropped[EO_UDP_SEND_FULL]),
	    stats_get(&st->udp_dropped[EO_UDP_SEND_ERROR]),
	    stats_get(&st->udp_dropped[EO_UDP_DENIED]));
}

void
stats_dump(struct server *srv)
{
	struct stats_sum s;
	unsigned long long refused = 0, listed = 0, open;
	char per[1024];
	size_t i;
	int r;

	memset(&s, 0, sizeof(s));
	stats_sum(srv->stats.all, &s);
	for (r = 0; r < EO_NREFUSALS; r++)
		refused += s.refused[r];
	open = stats_get(&srv->stats.conns);
	/* Connections of listeners a reload removed count in "open" but
	   under no listener: say how many, so that the line adds up. */
	for (i = 0; i < srv->nlis; i++)
		listed += listener_nconns(srv->lis[i]);
	stats_per_listener(srv, per, sizeof(per));
	log_notice("counters: %llu open, %llu accepted, %llu refused "
	    "(max_connections %llu, listener max_connections %llu, "
	    "max_connections_per_source %llu, out of file descriptors %llu, "
	    "shutting down or out of memory %llu, not in proxy_from %llu, "
	    "denied by allow/deny %llu, bad PROXY header %llu, TLS handshake "
	    "failed or timed out %llu), %llu evicted, "
	    "%llu timed out; open per listener: %s (removed listeners %llu)",
	    open, (unsigned long long)s.accepted, refused,
	    (unsigned long long)s.refused[EO_REFUSED_FULL],
	    (unsigned long long)s.refused[EO_REFUSED_LISTENER],
	    (unsigned long long)s.refused[EO_REFUSED_SOURCE],
	    (unsigned long long)s.refused[EO_REFUSED_FDS],
	    (unsigned long long)s.refused[EO_REFUSED_OTHER],
	    (unsigned long long)s.refused[EO_REFUSED_UNTRUSTED],
	    (unsigned long long)s.refused[EO_REFUSED_DENIED],
	    (unsigned long long)s.refused[EO_REFUSED_PROXY],
	    (unsigned long long)s.refused[EO_REFUSED_TLS],
	    (unsigned long long)s.closed[EO_CLOSE_EVICTED],
	    (unsigned long long)(s.closed[EO_CLOSE_IDLE_TIMEOUT] +
	    s.closed[EO_CLOSE_WRITE_TIMEOUT] + s.closed[EO_CLOSE_UNIT_TIMEOUT]),
	    per[0] != '\0' ? per : "none", open > listed ? open - listed : 0);
	stats_dump_udp(&srv->stats);
}

void
stats_tickcb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	stats_bursts(srv);
	if (!srv->stopping)
		stats_status(srv, 0);
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

/* Fed only while every worker's loop still turns. */
void
stats_watchdogcb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	time_t now = mono_sec();
	time_t limit = stats_stuck_after(srv->watchdog_usec);
	unsigned i;

	(void)fd;
	(void)what;
	for (i = 0; i < srv->nworkers; i++) {
		if (stats_beat_stuck(worker_heartbeat(srv->workers[i]),
		    &srv->beats[i], &srv->beat_at[i], now, limit)) {
			log_err("worker %u is stuck (no loop turn for %lld s): "
			    "not feeding the watchdog", i,
			    (long long)(now - srv->beat_at[i]));
			return;
		}
	}
	systemd_watchdog_ping();
}
