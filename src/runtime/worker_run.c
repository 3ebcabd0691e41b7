/*
 * A worker's own thread (include/worker.h; the mailbox and the accept
 * set are worker.c): its event loop, what it does with its mail (adopt,
 * drain, freeze for a restart, serve a UDP socket), its accept pass
 * and its once-a-second tick.  worker_start() makes the thread,
 * worker_stop() joins it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "stats.h"
#include "worker_int.h"

#define EO_TICK_US	1000000	/* the tick's period */
#define EO_ACCEPT_EVENTS 16	/* sockets looked at per accept pass */

/* Tells the main thread, once, that this worker holds no connection. */
static void
worker_drained(void *arg)
{
	struct worker *w = arg;
	uint64_t one = 1;

	if (w->done_sent)
		return;
	w->done_sent = 1;
	if (write(w->done_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("worker %u: cannot report being drained", w->id);
}

/* Takes the whole queue under the lock; handles it outside. */
static size_t
worker_take(struct worker *w)
{
	size_t i, n;

	pthread_mutex_lock(&w->mtx);
	n = w->qlen;
	if (n > w->batchcap) {
		struct wmsg *b = realloc(w->batch, w->qcap * sizeof(*b));

		if (b == NULL)
			n = w->batchcap;	/* the rest on the next round */
		else {
			w->batch = b;
			w->batchcap = w->qcap;
		}
	}
	for (i = 0; i < n; i++)
		w->batch[i] = w->q[(w->qhead + i) % w->qcap];
	w->qhead = (w->qhead + n) % (w->qcap ? w->qcap : 1);
	w->qlen -= n;
	pthread_mutex_unlock(&w->mtx);
	return n;
}

static void
worker_udp_mail(struct worker *w, struct wmsg *m)
{
	switch (m->type) {
	case EO_WM_UDP_SERVE:
		udp_serve(&w->udp, m->us, m->lc, m->guard, m->rate);
		break;
	case EO_WM_UDP_PARK:
		udp_park(m->us);
		break;
	case EO_WM_UDP_CLOSE:
		udp_close(&w->udp, m->us);
		break;
	default:
		break;
	}
}

/*
 * A restart: the connections written out, then this thread waits,
 * touching nothing, until the process execs (the thread ends with it)
 * or the restart fails and the main thread thaws it: then it goes on
 * as if nothing happened, the sockets' events still registered.
 */
static void
worker_frozen(struct worker *w, struct worker_freeze *fz)
{
	fz->fds = calloc(w->home.nconns + 1, sizeof(*fz->fds));
	fz->failed = fz->fds == NULL ||
	    conn_export(&w->home, &fz->buf, fz->fds, &fz->nfds,
	    &fz->nclosed) == -1;
	sem_post(&fz->done);
	while (sem_wait(&fz->thaw) == -1)
		;
	/* Told once more: then the main thread may free fz. */
	sem_post(&fz->done);
}

static void
worker_wakecb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t v;
	size_t i, n;

	(void)what;
	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("worker %u: eventfd", w->id);
	while ((n = worker_take(w)) > 0) {
		for (i = 0; i < n; i++) {
			struct wmsg *m = &w->batch[i];

			switch (m->type) {
			case EO_WM_CONN:
				conn_adopt(&w->home, &m->ho);
				break;
			case EO_WM_DRAIN:
				conn_drain_all(&w->home);
				break;
			case EO_WM_UDP_SERVE:
			case EO_WM_UDP_PARK:
			case EO_WM_UDP_CLOSE:
				worker_udp_mail(w, m);
				break;
			case EO_WM_ABORT:
				w->home.draining = 1;
				conn_close_all(&w->home,
				    "shutdown (shutdown_timeout over)");
				worker_drained(w);
				break;
			case EO_WM_STOP:
				event_base_loopbreak(w->base);
				break;
			case EO_WM_FREEZE:
				worker_frozen(w, m->fz);
				break;
			case EO_WM_RESUME:
				conn_resume(&w->home, &m->ho, m->rec);
				break;
			}
		}
	}
}

/* Listening sockets with clients queued: the acceptor takes them. */
static void
worker_acceptcb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[EO_ACCEPT_EVENTS];
	int i, n;

	(void)what;
	pthread_mutex_lock(&w->accept_mtx);
	/* One socket in the loop's own set: it is the one with clients
	   (or, woken before a pause, none: accept4() says EAGAIN). */
	if (w->loop_fd != -1 && w->nwatched == 1) {
		if (!w->paused)
			w->accept_fn(w, w->watched[0].sock);
	} else {
		n = epoll_wait(fd, ev, EO_ACCEPT_EVENTS, 0);
		/* Out of descriptors for one socket: for the rest too. */
		for (i = 0; i < n && !w->paused; i++)
			w->accept_fn(w, ev[i].data.ptr);
	}
	pthread_mutex_unlock(&w->accept_mtx);
}

static void
worker_resumecb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	worker_accept_resume(w);
}

static uint64_t
worker_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * How late the tick runs is the loop's lag: what a client waits, on
 * top of the work, when the thread is busy elsewhere.  libevent runs a
 * persistent timer a period after it was due, or after now if that has
 * passed: the next due time follows the same rule.
 */
static void
worker_lag(struct worker *w)
{
	uint64_t now = worker_now_us();

	stats_lag(w->home.st, now > w->tick_due ? now - w->tick_due : 0);
	w->tick_due += EO_TICK_US;
	if (w->tick_due < now)
		w->tick_due = now + EO_TICK_US;
}

static void
worker_tickcb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	worker_lag(w);
	conn_sweep(&w->home);
	/* The heartbeat is a counter of the worker's slot, so that the
	   watchdog and /healthz read it without calling the worker. */
	stats_bump(&w->home.st->beats, 1);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

/*
 * A bufferevent freed while one of its deferred callbacks waits (a
 * TLS connection's read trigger, conn_tls_trigger()) lives on until
 * that callback has run and dropped its reference.  The STOP mail can
 * break the loop first, in the same pass as the drain that closed the
 * connection, and event_base_free() cancels such a callback without
 * running it: the bufferevent, its buffers and their chains leaked.
 * Every event of ours is gone by now, so one more loop, that never
 * waits, runs just those callbacks and the finalizers they schedule.
 */
static void
worker_base_free(struct event_base *base)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}

static void
worker_free(struct worker *w)
{
	size_t i;

	/* Mail never read: give back what the handoffs hold. */
	for (i = 0; i < w->qlen; i++) {
		struct wmsg *m = &w->q[(w->qhead + i) % w->qcap];

		if (m->type == EO_WM_CONN || m->type == EO_WM_RESUME)
			conn_handoff_release(w->home.stats, &m->ho);
		if (m->type == EO_WM_RESUME)
			free(m->rec);
		else if (w->udp.base != NULL)
			worker_udp_mail(w, m);	/* sockets are closed below */
	}
	if (w->udp.base != NULL)
		udp_home_fini(&w->udp);
	if (w->home.base != NULL)
		conn_home_fini(&w->home);
	if (w->wake_ev != NULL)
		event_free(w->wake_ev);
	if (w->tick_ev != NULL)
		event_free(w->tick_ev);
	if (w->accept_ev != NULL)
		event_free(w->accept_ev);
	if (w->resume_ev != NULL)
		event_free(w->resume_ev);
	if (w->base != NULL)
		worker_base_free(w->base);
	if (w->wake_fd != -1)
		close(w->wake_fd);
	if (w->accept_fd != -1)
		close(w->accept_fd);
	pthread_mutex_destroy(&w->mtx);
	pthread_mutex_destroy(&w->accept_mtx);
	free(w->q);
	free(w->batch);
	free(w->watched);
	free(w);
}

static struct event_base *
worker_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (ec == NULL)
		return NULL;
	/* One thread per base: no locks.  The changelist merges an
	   add and a del of the same fd in one loop pass into nothing. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK |
	    EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

/*
 * The accept set and its lock.  Recursive: the main thread holds every
 * worker's lock through a reload's swap (worker_accept_lock()) and
 * adds and removes sockets inside it.
 */
static int
worker_accept_init(struct worker *w)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&w->accept_mtx, &a);
	pthread_mutexattr_destroy(&a);
	if ((w->accept_fd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (w->accept_ev = event_new(w->base, w->accept_fd,
	    EV_READ | EV_PERSIST, worker_acceptcb, w)) == NULL ||
	    (w->resume_ev = evtimer_new(w->base, worker_resumecb, w)) ==
	    NULL || event_add(w->accept_ev, NULL) == -1)
		return -1;
	return 0;
}

struct worker *
worker_start(unsigned id, struct stats *stats, int done_fd, char *err,
    size_t errlen)
{
	struct timeval second = { 1, 0 };
	struct worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int r;

	if (w == NULL) {
		snprintf(err, errlen, "worker %u: out of memory", id);
		return NULL;
	}
	w->id = id;
	w->done_fd = done_fd;
	w->wake_fd = w->accept_fd = w->loop_fd = -1;
	pthread_mutex_init(&w->mtx, NULL);
	if ((w->base = worker_base()) == NULL ||
	    worker_accept_init(w) == -1 ||
	    conn_home_init(&w->home, w->base, stats, id) == -1 ||
	    (w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST,
	    worker_wakecb, w)) == NULL ||
	    (w->tick_ev = event_new(w->base, -1, EV_PERSIST, worker_tickcb,
	    w)) == NULL ||
	    event_add(w->wake_ev, NULL) == -1 ||
	    event_add(w->tick_ev, &second) == -1) {
		snprintf(err, errlen, "worker %u: cannot set up its event "
		    "loop: %s", id, strerror(errno));
		worker_free(w);
		return NULL;
	}
	w->tick_due = worker_now_us() + EO_TICK_US;
	worker_direct_init(w);
	udp_home_init(&w->udp, w->base, stats);
	w->home.drained_cb = worker_drained;
	w->home.drained_arg = w;
	/* Signals are the main thread's: workers start with them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		snprintf(err, errlen, "worker %u: pthread_create: %s", id,
		    strerror(r));
		worker_free(w);
		return NULL;
	}
	return w;
}

void
worker_stop(struct worker *w)
{
	worker_send(w, EO_WM_STOP);
	pthread_join(w->thread, NULL);
	worker_free(w);
}
