/*
 * Worker threads: see include/worker.h.
 *
 * The mailbox is memcached's hand-off: the acceptor queues a message and
 * writes the worker's eventfd only if the queue was empty, so a burst of
 * connections costs one wakeup; the worker takes the whole queue at once.
 *
 * Each worker also accepts, from the listening sockets the main thread
 * puts in its accept set (worker_watch()): a connection the acceptor's
 * pick gives to the worker that accepted it is served from that same
 * loop pass, with no thread woken.  Short connections (a balancer's
 * health check, inetd's one-shot services) paid two task switches each
 * for the hand-off: perf put a fifth of the daemon's time in
 * finish_task_switch, and the daemon spent 16% more CPU per connection
 * than epoll_echo, which accepts on its own loop (tests/bench/README.md,
 * "Accepting on the workers").  The set is an epoll instance of its
 * own, watched by the worker's event_base: the main thread adds and
 * removes sockets with epoll_ctl() under the worker's accept lock, which
 * the worker holds while it accepts, so a socket leaves every worker
 * before the main thread closes it, and no libevent object is touched
 * by two threads.
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

#include "conn.h"
#include "guard.h"
#include "handover.h"
#include "log.h"
#include "stats.h"
#include "udp.h"
#include "worker.h"

enum wmsg_type {
	EO_WM_CONN,		/* adopt msg.ho */
	EO_WM_DRAIN,
	EO_WM_ABORT,
	EO_WM_STOP,
	EO_WM_UDP_SERVE,	/* serve msg.us under msg.lc, msg.guard,
				   msg.rate */
	EO_WM_UDP_PARK,
	EO_WM_UDP_CLOSE,
	EO_WM_FREEZE,		/* export msg.fz, wait to be thawed */
	EO_WM_RESUME		/* adopt msg.ho where msg.rec left it */
};

#define EO_TICK_US	1000000	/* the tick's period */
#define EO_ACCEPT_EVENTS 16	/* sockets looked at per accept pass */

struct wmsg {
	enum wmsg_type		type;
	struct conn_handoff	ho;
	struct udp_sock		*us;
	const struct cfg_listener *lc;
	struct guard		*guard;
	struct udp_rate		*rate;
	struct worker_freeze	*fz;
	struct ho_conn		*rec;
};

struct worker {
	unsigned		 id;
	pthread_t		 thread;
	struct event_base	*base;
	struct conn_home	 home;
	struct udp_home		 udp;
	struct event		*wake_ev;	/* on wake_fd */
	struct event		*tick_ev;	/* once a second: sweep */
	int			 wake_fd;	/* eventfd: mail arrived */
	int			 done_fd;	/* eventfd: main's, "drained" */
	int			 done_sent;
	uint64_t		 tick_due;	/* us: when tick_ev should run */

	pthread_mutex_t		 mtx;		/* guards the queue below */
	struct wmsg		*q;		/* ring of qcap messages */
	size_t			 qhead, qlen, qcap;
	struct wmsg		*batch;		/* the worker's copy */
	size_t			 batchcap;

	pthread_mutex_t		 accept_mtx;	/* held while accepting, and
						   by the main thread while it
						   changes what is accepted */
	int			 accept_fd;	/* epoll: listening sockets */
	struct event		*accept_ev;	/* on accept_fd */
	struct event		*resume_ev;	/* accept again after a pause */
	worker_accept_fn	 accept_fn;
};

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
	n = epoll_wait(fd, ev, EO_ACCEPT_EVENTS, 0);
	for (i = 0; i < n; i++)
		w->accept_fn(w, ev[i].data.ptr);
	pthread_mutex_unlock(&w->accept_mtx);
}

static void
worker_resumecb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	event_add(w->accept_ev, NULL);
}

void
worker_accept_pause(struct worker *w, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)(ms % 1000) * 1000 };

	event_del(w->accept_ev);
	evtimer_add(w->resume_ev, &tv);
}

int
worker_watch(struct worker *w, int fd, void *sock, worker_accept_fn fn)
{
	struct epoll_event ev;
	int r;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = sock;
	pthread_mutex_lock(&w->accept_mtx);
	w->accept_fn = fn;
	r = epoll_ctl(w->accept_fd, EPOLL_CTL_ADD, fd, &ev);
	if (r == -1 && errno == EEXIST)
		r = epoll_ctl(w->accept_fd, EPOLL_CTL_MOD, fd, &ev);
	pthread_mutex_unlock(&w->accept_mtx);
	return r;
}

void
worker_unwatch(struct worker *w, int fd)
{
	pthread_mutex_lock(&w->accept_mtx);
	/* ENOENT: not watched, which is what is wanted. */
	epoll_ctl(w->accept_fd, EPOLL_CTL_DEL, fd, NULL);
	pthread_mutex_unlock(&w->accept_mtx);
}

void
worker_accept_lock(struct worker *w)
{
	pthread_mutex_lock(&w->accept_mtx);
}

void
worker_accept_unlock(struct worker *w)
{
	pthread_mutex_unlock(&w->accept_mtx);
}

unsigned
worker_id(const struct worker *w)
{
	return w->id;
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

static int
worker_post(struct worker *w, const struct wmsg *m)
{
	uint64_t one = 1;
	int was_empty;

	pthread_mutex_lock(&w->mtx);
	if (w->qlen == w->qcap) {
		size_t i, cap = w->qcap ? w->qcap * 2 : 64;
		struct wmsg *q = malloc(cap * sizeof(*q));

		if (q == NULL) {
			pthread_mutex_unlock(&w->mtx);
			return -1;
		}
		for (i = 0; i < w->qlen; i++)
			q[i] = w->q[(w->qhead + i) % w->qcap];
		free(w->q);
		w->q = q;
		w->qhead = 0;
		w->qcap = cap;
	}
	w->q[(w->qhead + w->qlen) % w->qcap] = *m;
	was_empty = w->qlen++ == 0;
	pthread_mutex_unlock(&w->mtx);
	/* A non-empty queue already has a wakeup on its way. */
	if (was_empty && write(w->wake_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("worker %u: cannot wake it", w->id);
	return 0;
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
	w->wake_fd = w->accept_fd = -1;
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

/* A connection for w, new (rec NULL) or carried: counted in its load
   until the worker has it; -1 if the message could not be posted. */
static int
worker_post_conn(struct worker *w, enum wmsg_type type,
    const struct conn_handoff *ho, struct ho_conn *rec)
{
	struct wmsg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.ho = *ho;
	m.rec = rec;
	atomic_fetch_add_explicit(&w->home.load, 1, memory_order_relaxed);
	if (worker_post(w, &m) == -1) {
		atomic_fetch_sub_explicit(&w->home.load, 1,
		    memory_order_relaxed);
		return -1;
	}
	return 0;
}

int
worker_dispatch(struct worker *w, const struct conn_handoff *ho)
{
	return worker_post_conn(w, EO_WM_CONN, ho, NULL);
}

void
worker_reserve(struct worker *w)
{
	atomic_fetch_add_explicit(&w->home.load, 1, memory_order_relaxed);
}

int
worker_hand(struct worker *self, struct worker *w,
    const struct conn_handoff *ho)
{
	struct wmsg m;

	if (w == self) {
		conn_adopt(&w->home, ho);
		return 0;
	}
	memset(&m, 0, sizeof(m));
	m.type = EO_WM_CONN;
	m.ho = *ho;
	if (worker_post(w, &m) == -1) {
		atomic_fetch_sub_explicit(&w->home.load, 1,
		    memory_order_relaxed);
		return -1;
	}
	return 0;
}

int
worker_resume(struct worker *w, const struct conn_handoff *ho,
    struct ho_conn *rec)
{
	return worker_post_conn(w, EO_WM_RESUME, ho, rec);
}

void
worker_freeze(struct worker *w, struct worker_freeze *fz)
{
	struct wmsg m;

	memset(&m, 0, sizeof(m));
	m.type = EO_WM_FREEZE;
	m.fz = fz;
	while (worker_post(w, &m) == -1)
		usleep(1000);
}

static void
worker_send(struct worker *w, enum wmsg_type type)
{
	struct wmsg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	/* Control mail must arrive: retry rather than lose a shutdown. */
	while (worker_post(w, &m) == -1)
		usleep(1000);
}

void
worker_drain(struct worker *w)
{
	worker_send(w, EO_WM_DRAIN);
}

void
worker_abort(struct worker *w)
{
	worker_send(w, EO_WM_ABORT);
}

void
worker_stop(struct worker *w)
{
	worker_send(w, EO_WM_STOP);
	pthread_join(w->thread, NULL);
	worker_free(w);
}

/* UDP mail must arrive, like control mail: a lost close leaks. */
static void
worker_udp_post(struct worker *w, enum wmsg_type type, struct udp_sock *us,
    const struct cfg_listener *lc, struct guard *g, struct udp_rate *rate)
{
	struct wmsg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.us = us;
	m.lc = lc;
	m.guard = g;
	m.rate = rate;
	while (worker_post(w, &m) == -1)
		usleep(1000);
}

void
worker_udp_serve(struct worker *w, struct udp_sock *us,
    const struct cfg_listener *lc, struct guard *g, struct udp_rate *rate)
{
	cfg_ref(lc->cfg);
	guard_ref(g);
	if (rate != NULL)
		udp_rate_ref(rate);
	worker_udp_post(w, EO_WM_UDP_SERVE, us, lc, g, rate);
}

void
worker_udp_park(struct worker *w, struct udp_sock *us)
{
	worker_udp_post(w, EO_WM_UDP_PARK, us, NULL, NULL, NULL);
}

void
worker_udp_close(struct worker *w, struct udp_sock *us)
{
	worker_udp_post(w, EO_WM_UDP_CLOSE, us, NULL, NULL, NULL);
}

unsigned
worker_load(const struct worker *w)
{
	return atomic_load_explicit(&w->home.load, memory_order_relaxed);
}
