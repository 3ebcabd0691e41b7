/*
 * Reporting the counters: burst lines when refusals start and end, the
 * STATUS= line, the dump on SIGUSR1 and the watchdog, fed only while
 * every worker turns.  It pulls: sums from the counters (stats.c), the
 * listeners' names and counts, the workers' heartbeats (a counter of
 * each one's slot), then pushes to systemd; none of those calls back
 * here.
 *
 * Threads: main thread (timers of the main event base).
 */
#include <pthread.h>
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
	char by[EO_NAME_MAX + 1] = "";
	unsigned limit = 0;

	if (burst_noted(srv, r, buf, len))
		return;
	/* Workers write these as they accept: a copy, under their lock.
	   r is EO_NREFUSALS for evictions, which have none. */
	pthread_mutex_lock(&srv->stats.note_mtx);
	if (r < EO_NREFUSALS) {
		snprintf(by, sizeof(by), "%s", srv->refused_by[r]);
		limit = srv->refused_limit[r];
	}
	pthread_mutex_unlock(&srv->stats.note_mtx);
	switch (r) {
	case EO_REFUSED_FULL:
		snprintf(buf, len, "max_connections (%u) reached and no "
		    "connection quiet for %u s to evict", srv->cfg->max_conns,
		    srv->cfg->evict_after);
		break;
	case EO_REFUSED_LISTENER:
		snprintf(buf, len, "listener %s reached its max_connections "
		    "(%u)", by, limit);
		break;
	case EO_REFUSED_FDS:
		snprintf(buf, len, "out of file descriptors (listener %s); "
		    "raise LimitNOFILE= or ulimit -n", by);
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
	long long idle;

	(void)fd;
	(void)what;
	stats_bursts(srv);
	if (!srv->stopping)
		stats_status(srv, 0);
	/* Seen each second, so that /healthz knows a worker stuck since
	   before its first probe, without the systemd watchdog. */
	(void)stats_stuck_worker(srv, &idle);
}

int
stats_stuck_worker(struct server *srv, long long *idle)
{
	time_t now = mono_sec();
	time_t limit = stats_stuck_after(srv->watchdog_usec);
	unsigned i;

	for (i = 0; i < srv->nworkers; i++) {
		uint64_t beat = stats_get(&stats_slot(srv->stats.all,
		    i)->beats);

		if (stats_beat_stuck((unsigned long)beat, &srv->beats[i],
		    &srv->beat_at[i], now, limit)) {
			*idle = (long long)(now - srv->beat_at[i]);
			return (int)i;
		}
	}
	return -1;
}

/* Fed only while every worker's loop still turns. */
void
stats_watchdogcb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	long long idle;
	int i;

	(void)fd;
	(void)what;
	if ((i = stats_stuck_worker(srv, &idle)) >= 0) {
		log_err("worker %d is stuck (no loop turn for %lld s): "
		    "not feeding the watchdog", i, idle);
		return;
	}
	systemd_watchdog_ping();
}
