/*
 * The server's lifecycle: start (workers, sockets, events), the signals,
 * graceful stop.  See include/server.h.  The rest of the server lives
 * below it in src/server/: acceptor.c accepts, reload.c checks a new
 * file and this file applies it with plan.c, restart.c and
 * restart_import.c hand over,
 * status.c reports, systemd.c adopts systemd's sockets.
 *
 * Threads: main thread only.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "cfgwatch.h"
#include "clock.h"
#include "config.h"
#include "guard.h"
#include "handover.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "server_internal.h"
#include "stats.h"
#include "systemd.h"
#include "tls.h"
#include "worker.h"

#define EO_FD_RESERVE	64	/* fds beyond max_connections we need */

/* ---- reload -------------------------------------------- */

/* Each TLS listener's certificate that the reload changed, logged. */
static void
server_log_certs(const struct cfg *old, const struct cfg *cfg)
{
	const struct tls_ctx *was;
	size_t i, j;

	for (i = 0; i < cfg->nlisteners; i++) {
		if (cfg->listeners[i].tls == NULL)
			continue;
		was = NULL;
		for (j = 0; j < old->nlisteners; j++)
			if (strcmp(old->listeners[j].name,
			    cfg->listeners[i].name) == 0)
				was = old->listeners[j].tls;
		tls_log_change(cfg->listeners[i].name, was,
		    cfg->listeners[i].tls);
	}
}

/*
 * The file the reload's check found valid (srv->checked): loaded,
 * applied by the plan, and for SIGUSR2 the restart.
 */
static void
server_reload_apply(struct server *srv)
{
	struct cfg_diag d;
	struct cfg *cfg, *old = srv->cfg;
	char err[512], status[512];
	size_t i;

	cfg_diag_init(&d);
	if ((cfg = cfg_load_file(srv->cfg->path, &d)) == NULL) {
		for (i = 0; i < d.n; i++)
			log_err("%s", d.msgs[i]);
		cfg_diag_free(&d);
		reload_failed(srv, "the file changed while it was checked");
		return;
	}
	for (i = 0; i < d.nwarns; i++)
		log_warnx("%s", d.warns[i]);
	cfg_diag_free(&d);
	if (cfg->workers != srv->cfg->workers && !srv->check_restart)
		log_notice("workers changed: takes effect at the next start; "
		    "still %u", srv->nworkers);
	cfg_ref(old);		/* to compare certificates once applied */
	if (plan_apply(srv, cfg, err, sizeof(err)) == -1) {
		log_err("%s", err);
		cfg_unref(cfg);
		cfg_unref(old);
		reload_failed(srv, "cannot open a listener, see the log");
		return;
	}
	server_log_certs(old, cfg);
	cfg_unref(old);
	restart_store_listeners(srv);
	log_set_level(srv->debug ? EO_LOG_DEBUG : cfg->log_level);
	/*
	 * SIGUSR2: applied here first, so that a listener that cannot be
	 * opened refuses the restart while this process can still serve
	 * on; the new process adopts the sockets opened here.
	 */
	if (srv->check_restart) {
		srv->check_restart = 0;
		log_info("restart: %s applied: %zu listener%s", cfg->path,
		    srv->nlis, srv->nlis == 1 ? "" : "s");
		restart_exec(srv);
		return;
	}
	log_info("reloaded %s: %zu listener%s", cfg->path, srv->nlis,
	    srv->nlis == 1 ? "" : "s");
	srv->reload_failure[0] = '\0';
	srv->reloads[1]++;
	srv->reload_ok_at = time(NULL);
	stats_status_text(srv, status, sizeof(status));
	systemd_ready(status);
}

/* ---- stop ---------------------------------------------- */

/* No more accepting; the connections have shutdown_timeout to end. */
static void
server_drain(struct server *srv, const char *why)
{
	struct timeval grace = { (time_t)srv->cfg->shutdown_timeout, 0 };
	size_t i, nours = 0;
	unsigned n;

	evtimer_del(srv->ev_delay);
	reload_cancel(srv);
	/* Out of the store first: systemd's copy would go on queueing
	   clients that nobody serves. */
	restart_store_forget(srv);
	/* No more accepting: the sockets close now, ours once what is
	   queued on them is served; systemd's keep their queue for the
	   next start. */
	for (i = 0; i < srv->nsocks; i++) {
		if (srv->socks[i]->sd_name == NULL)
			srv->socks[nours++] = srv->socks[i];
		else
			listen_sock_free(srv->socks[i]);
	}
	listen_sock_retire(srv->socks, nours);
	srv->nsocks = 0;
	srv->stopping = srv->unready = 1;
	systemd_stopping();
	n = stats_get(&srv->stats.conns);
	log_info("stopping (%s): %u connection%s, up to %u s to finish", why,
	    n, n == 1 ? "" : "s", srv->cfg->shutdown_timeout);
	for (i = 0; i < srv->nworkers; i++)
		worker_drain(srv->workers[i]);
	evtimer_add(srv->ev_grace, &grace);
}

static void
server_delaycb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	server_drain(srv, srv->stop_why);
}

/*
 * A stop: at once, or after stop_delay seconds of serving as before
 * with /readyz already 503, for the balancers (a Kubernetes Service's
 * endpoints) that go on sending for a while after the signal.  A second
 * signal ends the delay; a third, the drain.
 */
static void
server_stop(struct server *srv, const char *why)
{
	struct timeval delay = { (time_t)srv->cfg->stop_delay, 0 };
	size_t i;

	if (srv->stopping) {
		log_notice("%s again: closing every connection now", why);
		for (i = 0; i < srv->nworkers; i++)
			worker_abort(srv->workers[i]);
		return;
	}
	if (srv->unready || srv->cfg->stop_delay == 0 ||
	    evtimer_add(srv->ev_delay, &delay) == -1) {
		server_drain(srv, why);
		return;
	}
	srv->unready = 1;
	srv->stop_why = why;
	reload_cancel(srv);
	systemd_stopping();
	log_info("stop (%s) begins: /readyz says 503; still accepting for %u s "
	    "(stop_delay), then the drain", why, srv->cfg->stop_delay);
}

/*
 * SIGTERM under systemd may be the first half of `systemctl restart`:
 * then the connections go to the fd store for the next process (and
 * this does not return).  See systemd_restarting() for how it is told.
 */
static void
server_restart_or_stop(struct server *srv)
{
	char job[64];

	if (srv->unready || !systemd_notifying())
		return;
	if (systemd_restarting(job, sizeof(job))) {
		log_info("SIGTERM for a restart (systemd job \"%s\")", job);
		reload_cancel(srv);
		restart_to_store(srv);
	} else
		log_debug("SIGTERM: a stop (systemd job: %s)", job);
}

static void
server_signalcb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	switch (sig) {
	case SIGHUP:
		/* A stop has begun: its configuration is the last. */
		if (!srv->unready)
			reload_run(srv);
		break;
	case SIGUSR1:
		stats_dump(srv);
		break;
	case SIGUSR2:
		/* nginx's binary upgrade: here, in place (restart.c); not
		   once a stop has begun, which the new process would not
		   know of. */
		if (!srv->unready)
			reload_restart(srv);
		break;
	default:
		if (sig == SIGTERM)
			server_restart_or_stop(srv);
		server_stop(srv, sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
}

static void
server_gracecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	unsigned i, n = stats_get(&srv->stats.conns);

	(void)fd;
	(void)what;
	log_notice("shutdown_timeout (%u s) is over: closing %u connection%s",
	    srv->cfg->shutdown_timeout, n, n == 1 ? "" : "s");
	for (i = 0; i < srv->nworkers; i++)
		worker_abort(srv->workers[i]);
}

static void
server_donecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	srv->ndrained += (unsigned)n;
	if (srv->ndrained >= srv->nworkers)
		event_base_loopexit(srv->base, NULL);
}

/* ---- watch_config ------------------------------------------------- */

/* A watched file changed: the same check and result as SIGHUP's. */
static void
server_watch_fire(void *arg)
{
	struct server *srv = arg;

	if (srv->unready)
		return;
	log_info("configuration changed (watch_config): reloading");
	reload_run(srv);
}

/*
 * The watcher follows the running configuration: made, dropped or
 * remade (its files may differ) once a reload has applied another.
 * A watcher that cannot be made is logged; SIGHUP still works.
 */
static void
server_watch_sync(struct server *srv)
{
	char err[256];
	int pending, had = srv->watch != NULL;

	if (srv->watch_cfg == srv->cfg)
		return;
	/* A change seen by the old watcher is the new one's to report. */
	pending = had && cfgwatch_pending(srv->watch);
	cfgwatch_free(srv->watch);
	srv->watch = NULL;
	if (srv->watch_cfg != NULL)
		cfg_unref(srv->watch_cfg);
	cfg_ref(srv->watch_cfg = srv->cfg);
	if (!srv->cfg->watch_config)
		return;
	err[0] = '\0';
	if ((srv->watch = cfgwatch_new(srv->base, srv->cfg, server_watch_fire,
	    srv, err, sizeof(err))) == NULL)
		log_warnx("watch_config: %s; SIGHUP still reloads", err);
	else if (!had)
		log_info("watch_config: reloading when %s or its includes "
		    "change", srv->cfg->path);
	if (srv->watch != NULL && pending)
		cfgwatch_poke(srv->watch);
}

static void
server_watchcb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	server_watch_sync(arg);
}

/* ---- start and end ------------------------------------------------ */

static void
server_free(struct server *srv)
{
	size_t i;

	restart_linger_end(srv);
	/* Sockets first: a UDP socket's worker closes it. */
	for (i = 0; i < srv->nsocks; i++)
		listen_sock_free(srv->socks[i]);
	free(srv->socks);
	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i] != NULL)
			worker_stop(srv->workers[i]);
	free(srv->workers);
	guard_unref(srv->guard);
	metrics_fini(srv);
	for (i = 0; i < srv->nlis; i++)
		listener_unref(srv->lis[i]);
	free(srv->lis);
	if (srv->cfg != NULL)
		cfg_unref(srv->cfg);
	for (i = 0; i < EO_NSIGNALS; i++)
		if (srv->ev_sig[i] != NULL)
			event_free(srv->ev_sig[i]);
	if (srv->ev_tick) event_free(srv->ev_tick);
	if (srv->ev_resume) event_free(srv->ev_resume);
	if (srv->ev_grace) event_free(srv->ev_grace);
	if (srv->ev_delay) event_free(srv->ev_delay);
	if (srv->ev_watch) event_free(srv->ev_watch);
	cfgwatch_free(srv->watch);
	if (srv->watch_cfg != NULL)
		cfg_unref(srv->watch_cfg);
	if (srv->ev_done) event_free(srv->ev_done);
	if (srv->ev_watchdog) event_free(srv->ev_watchdog);
	if (srv->done_fd != -1)
		close(srv->done_fd);
	fd_spare_free(&srv->spare);
	reload_cancel(srv);
	free(srv->check_out);
	for (i = 0; i < srv->nstored; i++)
		free(srv->stored[i]);
	free(srv->stored);
	free(srv->beats);
	free(srv->beat_at);
	if (srv->base != NULL)
		event_base_free(srv->base);
	stats_fini(&srv->stats);
	pthread_mutex_destroy(&srv->acc_mtx);
	free(srv);
}

/* The descriptor limit in effect, and what it leaves for clients. */
static void
server_fd_report(const struct cfg *cfg, rlim_t cur, int raise_errno)
{
	unsigned long long room = cur == RLIM_INFINITY ? ~0ULL :
	    cur > EO_FD_RESERVE ? (unsigned long long)cur - EO_FD_RESERVE : 0;

	if (room >= cfg->max_conns) {
		log_info("file descriptors: RLIMIT_NOFILE is %llu, room for "
		    "max_connections (%u)", (unsigned long long)cur,
		    cfg->max_conns);
		return;
	}
	log_warnx("max_connections is %u but only %llu file descriptors are "
	    "allowed (RLIMIT_NOFILE)%s%s%s: room for about %llu connection%s; "
	    "clients beyond are refused; raise LimitNOFILE= or ulimit -n",
	    cfg->max_conns, (unsigned long long)cur, raise_errno ?
	    " (raising it failed: " : "", raise_errno ? strerror(raise_errno) :
	    "", raise_errno ? ")" : "", room, room == 1 ? "" : "s");
}

/*
 * Enough descriptors for max_connections: raise the soft limit toward
 * the hard one, then report what is in effect (setrlimit can be
 * refused, by a syscall filter say).  Short of it, accept() will meet
 * EMFILE first, which is survived (acceptor.c) but worth a warning now.
 */
static void
server_fd_limit(const struct cfg *cfg)
{
	rlim_t want = (rlim_t)cfg->max_conns + EO_FD_RESERVE;
	struct rlimit rl, raised;
	int raise_errno = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit RLIMIT_NOFILE");
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		raised = rl;
		raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &raised) == -1)
			raise_errno = errno;
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("getrlimit RLIMIT_NOFILE");
			return;
		}
	}
	server_fd_report(cfg, rl.rlim_cur, raise_errno);
}

static unsigned
cpu_count(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    (n = CPU_COUNT(&set)) > 0)
		return (unsigned)n;
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/*
 * The sockets beside ours in their SO_REUSEPORT groups (acceptor.c),
 * each to the socket of its address, in the order handed over; one
 * whose socket did not come is closed (the plan would not know it).
 */
static int
server_adopt_extra(struct server *srv, struct systemd_inherited *inh,
    char *err, size_t errlen)
{
	const struct systemd_socket *x;
	struct listen_sock *ls;
	size_t i, j;

	for (i = 0; i < inh->nours; i++) {
		x = &inh->ours[i];
		if (strncmp(x->name, EO_HO_FD_EXTRA, strlen(EO_HO_FD_EXTRA)))
			continue;
		for (j = 0, ls = NULL; ls == NULL && j < srv->nsocks; j++)
			if (!srv->socks[j]->dgram &&
			    srv->socks[j]->sd_name == NULL &&
			    srv->socks[j]->addr.len == x->addr.len &&
			    memcmp(&srv->socks[j]->addr.ss, &x->addr.ss,
			    x->addr.len) == 0)
				ls = srv->socks[j];
		if (ls == NULL) {
			log_warnx("restart: socket %s (%s) is no listener's: "
			    "closed", x->addr.text, x->name);
			close(x->fd);
		} else if (listen_sock_adopt_extra(ls, x->fd) == -1) {
			snprintf(err, errlen, "restart: out of memory");
			return -1;	/* inh closes the rest */
		}
		inh->ours[i].fd = -1;
		if (ls != NULL && restart_stored_name(srv, x->name) == -1) {
			snprintf(err, errlen, "restart: out of memory");
			return -1;
		}
	}
	return 0;
}

/*
 * The listening sockets a previous process of ours bound and handed
 * over (restart.c): ours again, found by address by the plan like the
 * sockets of a reload, closed by it if no listener wants them.
 */
static int
server_adopt_ours(struct server *srv, struct systemd_inherited *inh,
    char *err, size_t errlen)
{
	struct listen_sock *ls;
	size_t i;

	if (inh->nours == 0)
		return 0;
	if ((srv->socks = calloc(inh->nours, sizeof(*srv->socks))) == NULL) {
		snprintf(err, errlen, "restart: out of memory");
		return -1;
	}
	for (i = 0; i < inh->nours; i++) {
		const char *name = inh->ours[i].name;

		if (strncmp(name, EO_HO_FD_EXTRA, strlen(EO_HO_FD_EXTRA)) == 0)
			continue;	/* server_adopt_extra(), once all are */
		/* systemd's, parked by a reload: systemd's again, and parked
		   by the plan, since no enabled listener has its name. */
		if (strncmp(name, EO_HO_FD_PARKED, strlen(EO_HO_FD_PARKED)) == 0)
			name += strlen(EO_HO_FD_PARKED);
		else
			name = NULL;
		if ((ls = listen_sock_new(srv, inh->ours[i].fd,
		    &inh->ours[i].addr, 0, name, err, errlen)) == NULL)
			return -1;	/* inh closes the rest */
		inh->ours[i].fd = -1;
		srv->socks[srv->nsocks++] = ls;
		if (name != NULL)
			continue;	/* never in the fd store */
		/* Stored by the previous process, maybe: the first store
		   of ours takes out the names no listener has now. */
		if (restart_stored_name(srv, inh->ours[i].name) == -1) {
			snprintf(err, errlen, "restart: out of memory");
			return -1;
		}
	}
	return server_adopt_extra(srv, inh, err, errlen);
}

/*
 * Sockets from socket activation become parked listening sockets named
 * after their FileDescriptorName=; the plan gives them to listeners.
 */
static int
server_adopt_systemd(struct server *srv, const struct cfg *cfg,
    struct systemd_inherited *inh, char *err, size_t errlen)
{
	struct systemd_socket *sd;
	struct listen_sock *ls;
	int i, n = systemd_adopt(cfg, &sd, inh, err, errlen);

	if (n < 0)
		return n;
	if (server_adopt_ours(srv, inh, err, errlen) == -1) {
		i = 0;
		goto fail;
	}
	if (n == 0)
		return n;
	if ((srv->socks = reallocarray(srv->socks, srv->nsocks + (size_t)n,
	    sizeof(*srv->socks))) == NULL) {
		snprintf(err, errlen, "socket activation: out of memory");
		i = 0;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if ((ls = listen_sock_new(srv, sd[i].fd, &sd[i].addr, 0,
		    sd[i].name, err, errlen)) == NULL)
			goto fail;
		srv->socks[srv->nsocks++] = ls;
	}
	free(sd);
	return n;
fail:
	for (; i < n; i++)
		close(sd[i].fd);
	free(sd);
	return -1;
}

static int
server_events(struct server *srv)
{
	struct timeval second = { 1, 0 };

	size_t i;

	for (i = 0; i < EO_NSIGNALS; i++)
		if ((srv->ev_sig[i] = evsignal_new(srv->base, signals_handled[i],
		    server_signalcb, srv)) == NULL ||
		    event_add(srv->ev_sig[i], NULL) == -1)
			return -1;
	/* Handled from now on: a restart in place execs with them blocked
	   (restart.c), and those that came meanwhile are delivered now. */
	signals_mask(SIG_UNBLOCK, NULL);
	srv->ev_tick = event_new(srv->base, -1, EV_PERSIST, stats_tickcb,
	    srv);
	srv->ev_resume = evtimer_new(srv->base, acceptor_resumecb, srv);
	srv->ev_grace = evtimer_new(srv->base, server_gracecb, srv);
	srv->ev_delay = evtimer_new(srv->base, server_delaycb, srv);
	srv->ev_watch = event_new(srv->base, -1, EV_PERSIST, server_watchcb,
	    srv);
	srv->ev_done = event_new(srv->base, srv->done_fd, EV_READ | EV_PERSIST,
	    server_donecb, srv);
	if (srv->ev_tick == NULL || srv->ev_resume == NULL ||
	    srv->ev_grace == NULL || srv->ev_delay == NULL ||
	    srv->ev_done == NULL || srv->ev_watch == NULL ||
	    event_add(srv->ev_tick, &second) == -1 ||
	    event_add(srv->ev_watch, &second) == -1 ||
	    event_add(srv->ev_done, NULL) == -1)
		return -1;
	if ((srv->watchdog_usec = systemd_watchdog_usec()) > 0) {
		struct timeval half = {
			(time_t)(srv->watchdog_usec / 2000000),
			(suseconds_t)(srv->watchdog_usec / 2 % 1000000) };

		srv->ev_watchdog = event_new(srv->base, -1, EV_PERSIST,
		    stats_watchdogcb, srv);
		if (srv->ev_watchdog == NULL ||
		    event_add(srv->ev_watchdog, &half) == -1)
			return -1;
	}
	return 0;
}

static int
server_workers(struct server *srv, const struct cfg *cfg, char *err,
    size_t errlen)
{
	unsigned i, n = cfg->workers ? cfg->workers : cpu_count();

	srv->workers = calloc(n, sizeof(*srv->workers));
	srv->beats = calloc(n, sizeof(*srv->beats));
	srv->beat_at = calloc(n, sizeof(*srv->beat_at));
	if (srv->workers == NULL || srv->beats == NULL ||
	    srv->beat_at == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		srv->workers[i] = worker_start(i, &srv->stats, srv->done_fd,
		    err, errlen);
		if (srv->workers[i] == NULL)
			return -1;
		srv->nworkers++;
		srv->beat_at[i] = mono_sec();
	}
	return 0;
}

struct server *
server_start(struct cfg *cfg, int debug, char *err, size_t errlen,
    int *exit_code)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct systemd_inherited inh;
	int n;

	*exit_code = 1;
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		cfg_unref(cfg);
		return NULL;
	}
	memset(&inh, 0, sizeof(inh));
	inh.state_fd = -1;
	srv->done_fd = srv->spare.fd = srv->check_fd = -1;
	pthread_mutex_init(&srv->acc_mtx, NULL);
	srv->checked = server_reload_apply;
	srv->debug = debug;
	server_fd_limit(cfg);
	if ((srv->base = event_base_new()) == NULL ||
	    (srv->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot set up the event loop: %s",
		    strerror(errno));
		goto fail;
	}
	if (fd_spare_init(&srv->spare) == -1)
		log_warn("no spare descriptor (/dev/null): out of "
		    "descriptors, waiting clients will wait, not be refused");
	srv->started = srv->reload_ok_at = time(NULL);
	/* Before the plan: listeners get one counter slot per worker. */
	if (stats_init(&srv->stats, cfg->workers ? cfg->workers :
	    cpu_count()) == -1 || metrics_init(srv) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Workers first: UDP sockets are given to one as they open. */
	if (server_workers(srv, cfg, err, errlen) == -1)
		goto fail;
	if ((n = server_adopt_systemd(srv, cfg, &inh, err, errlen)) == -1) {
		*exit_code = 78;
		goto fail;
	}
	if (plan_apply(srv, cfg, err, errlen) == -1)
		goto fail;
	cfg = NULL;			/* srv->cfg holds it now */
	restart_import(srv, &inh);
	systemd_inherited_free(&inh);
	restart_store_listeners(srv);
	if (server_events(srv) == -1) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot set up the event loop");
		goto fail;
	}
	return srv;
fail:
	systemd_inherited_free(&inh);
	if (cfg != NULL)
		cfg_unref(cfg);
	server_free(srv);
	return NULL;
}

void
server_run(struct server *srv)
{
	char status[512];

	log_info("echo-oracled %s started: %zu listener%s, %u worker%s, "
	    "max_connections %u, configuration %s", EO_VERSION, srv->nlis,
	    srv->nlis == 1 ? "" : "s", srv->nworkers,
	    srv->nworkers == 1 ? "" : "s", srv->cfg->max_conns,
	    srv->cfg->path);
	server_watch_sync(srv);
	stats_status_text(srv, status, sizeof(status));
	systemd_ready(status);
	event_base_dispatch(srv->base);
	{
		struct stats_sum sum;
		unsigned long long n;

		memset(&sum, 0, sizeof(sum));
		stats_sum(srv->stats.all, &sum);
		n = sum.accepted;
		log_info("stopped: %llu connection%s served", n,
		    n == 1 ? "" : "s");
	}
	server_free(srv);
}
