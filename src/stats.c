/*
 * Reporting the counters: burst lines when refusals start and end, the
 * STATUS= line, and the watchdog, fed only while every worker turns.
 *
 * Threads: main thread only (the counters themselves are atomics that
 * any thread bumps: include/stats.h).
 */
#include <stdio.h>
#include <string.h>

#include <event2/util.h>

#include "clock.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "server_internal.h"
#include "stats.h"
#include "systemd.h"
#include "worker.h"

static void
burst_describe(struct server *srv, int r, char *buf, size_t len)
{
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
	case EO_REFUSED_SOURCE:
		snprintf(buf, len, "a client of listener %s reached "
		    "max_connections_per_source (%u): %s, the latest",
		    srv->refused_by[r], srv->refused_limit[r],
		    srv->refused_peer);
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

static void
stats_bursts(struct server *srv)
{
	char what[256];
	int r;

	for (r = 0; r <= EO_NREFUSALS; r++) {
		struct burst *b = &srv->bursts[r];
		unsigned long now = r < EO_NREFUSALS ?
		    stats_get(&srv->stats.refused[r]) :
		    stats_get(&srv->stats.evicted);

		if (now != b->seen && !b->active) {
			b->active = 1;
			b->start = b->seen;
			b->began = mono_sec();
			burst_describe(srv, r, what, sizeof(what));
			log_warnx("%s connections: %s", r < EO_NREFUSALS ?
			    "refusing" : "evicting", what);
		} else if (now == b->seen && b->active) {
			b->active = 0;
			burst_describe(srv, r, what, sizeof(what));
			log_notice("%s %lu connection%s in %lld s: %s",
			    r < EO_NREFUSALS ? "refused" : "evicted",
			    now - b->start, now - b->start == 1 ? "" : "s",
			    (long long)(mono_sec() - b->began), what);
		}
		b->seen = now;
	}
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

void
stats_dump(struct server *srv)
{
	const struct stats *st = &srv->stats;
	unsigned long refused = 0, listed = 0, open;
	char per[1024];
	size_t i;
	int r;

	for (r = 0; r < EO_NREFUSALS; r++)
		refused += stats_get(&st->refused[r]);
	open = stats_get(&st->conns);
	/* Connections of listeners a reload removed count in "open" but
	   under no listener: say how many, so that the line adds up. */
	for (i = 0; i < srv->nlis; i++)
		listed += listener_nconns(srv->lis[i]);
	stats_per_listener(srv, per, sizeof(per));
	log_notice("counters: %lu open, %lu accepted, %lu refused "
	    "(max_connections %lu, listener max_connections %lu, "
	    "max_connections_per_source %lu, out of file descriptors %lu, "
	    "shutting down or out of memory %lu), %lu evicted, %lu timed out; "
	    "open per listener: %s (removed listeners %lu)", open,
	    stats_get(&st->accepted), refused,
	    stats_get(&st->refused[EO_REFUSED_FULL]),
	    stats_get(&st->refused[EO_REFUSED_LISTENER]),
	    stats_get(&st->refused[EO_REFUSED_SOURCE]),
	    stats_get(&st->refused[EO_REFUSED_FDS]),
	    stats_get(&st->refused[EO_REFUSED_OTHER]),
	    stats_get(&st->evicted), stats_get(&st->timeouts),
	    per[0] != '\0' ? per : "none", open > listed ? open - listed : 0);
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
