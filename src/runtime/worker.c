/*
 * Workers, as other threads see them (include/worker.h): the mailbox,
 * the accept set and the load.  What a worker's own thread does with
 * its mail and its sockets is worker_run.c; the two share worker_int.h.
 * Nothing here calls into a connection: a connection reaches a worker
 * as mail, or, accepted on the worker's own thread, is adopted there
 * by the acceptor (worker_home()).
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
 * own, which says which sockets have clients; the worker's event loop
 * is woken for them one worker at a time (below, "Waking one worker
 * per client").  The main thread adds and removes sockets with
 * epoll_ctl() under the worker's accept lock, which the worker holds
 * while it accepts, so a socket leaves every worker before the main
 * thread closes it, and no libevent object is touched by two threads.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "guard.h"
#include "log.h"
#include "udp_rate.h"
#include "worker_int.h"

/*
 * Waking one worker per client.  Nested in the event_base's epoll set,
 * the accept set wakes every idle worker for each client, and all but
 * one find nothing: EPOLLEXCLUSIVE picks one waiter only among threads
 * that wait in the very set holding the socket, so it cannot help
 * there (the kernel's ep_poll_callback() counts a wake-up as taken only
 * if a thread sleeps in that set itself).  libevent 2.1 cannot be given
 * the flag, and does not tell its epoll descriptor; so the worker finds
 * it once (worker_loop_set()) and puts each listening socket in it
 * itself, exclusive, reported under the accept set's descriptor: the
 * accept set's event runs, and the accept set, no longer nested, still
 * says which sockets have clients.  libevent never sees these entries:
 * it knows no event on a listening socket's descriptor, and none of
 * ours changes on the accept set's after the start.  Where the set is
 * not found (no /proc, a backend other than epoll), the accept set
 * stays nested, as before: one more wake-up per idle worker and client.
 * The kernel wakes the first idle worker in the socket's queue, so at
 * low load one worker accepts most clients; where each is served is
 * still the pick's (least loaded), as before.  tests/bench/README.md,
 * "Accepting on the workers", has the figures.
 */
static int
worker_direct_add(struct worker *w, int fd)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = w->accept_fd;
	if (epoll_ctl(w->loop_fd, EPOLL_CTL_ADD, fd, &ev) == -1 &&
	    errno != EEXIST)
		return -1;
	return 0;
}

/*
 * The event_base's own epoll set: of the process's epoll sets, the one
 * already holding wake_fd (adding it anywhere else succeeds, and is
 * undone at once; with no events asked it is never reported).  Below
 * the soft descriptor limit only: what a tool such as valgrind keeps
 * above it is not ours to touch.
 */
static int
worker_loop_set(const struct worker *w)
{
	struct epoll_event ev;
	struct rlimit rl;
	struct dirent *d;
	DIR *dir;
	int fd, found = -1;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    (dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	memset(&ev, 0, sizeof(ev));
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' || (fd = atoi(d->d_name)) ==
		    dirfd(dir) || fd == w->wake_fd ||
		    (rlim_t)fd >= rl.rlim_cur)
			continue;
		if (epoll_ctl(fd, EPOLL_CTL_ADD, w->wake_fd, &ev) == 0)
			epoll_ctl(fd, EPOLL_CTL_DEL, w->wake_fd, NULL);
		else if (errno == EEXIST)
			found = found == -1 ? fd : -2;
	}
	closedir(dir);
	return found < 0 ? -1 : found;
}

void
worker_direct_init(struct worker *w)
{
	w->loop_fd = -1;
	/* One pass that waits for nothing applies the changelist: the
	   base's set then holds wake_fd and the accept set. */
	if (strncmp(event_base_get_method(w->base), "epoll", 5) != 0 ||
	    event_base_loop(w->base, EVLOOP_NONBLOCK) == -1 ||
	    (w->loop_fd = worker_loop_set(w)) == -1 ||
	    epoll_ctl(w->loop_fd, EPOLL_CTL_DEL, w->accept_fd, NULL) == -1) {
		w->loop_fd = -1;
		log_info("worker %u: every idle worker wakes for each client "
		    "(the event loop's epoll set was not found)", w->id);
	}
}

int
worker_accepts_one_at_a_time(const struct worker *w)
{
	return w->loop_fd != -1;
}

/*
 * Out of descriptors (w's thread, from the acceptor).  The process's
 * limit is every worker's, so the others are not woken for the clients
 * left queued: they would fail the same way.  Nor are they woken while
 * w is paused, unless a new client comes; what waits is taken when the
 * sockets go back in the set (a socket added with clients queued is
 * reported at once).
 */
void
worker_accept_pause(struct worker *w, unsigned ms)
{
	size_t i;

	pthread_mutex_lock(&w->accept_mtx);
	if (w->loop_fd == -1)
		event_del(w->accept_ev);
	else if (!w->paused)
		for (i = 0; i < w->nwatched; i++)
			epoll_ctl(w->loop_fd, EPOLL_CTL_DEL,
			    w->watched[i].fd, NULL);
	w->paused = 1;
	w->pause_tv.tv_sec = (time_t)(ms / 1000);
	w->pause_tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	pthread_mutex_unlock(&w->accept_mtx);
	evtimer_add(w->resume_ev, &w->pause_tv);
}

/* Puts every watched socket back in the loop's set, or none: -1 with
   errno if one cannot go (memory, the user's epoll watch limit). */
static int
worker_direct_add_all(struct worker *w)
{
	size_t i;
	int e;

	for (i = 0; i < w->nwatched; i++)
		if (worker_direct_add(w, w->watched[i].fd) == -1) {
			e = errno;
			while (i-- > 0)
				epoll_ctl(w->loop_fd, EPOLL_CTL_DEL,
				    w->watched[i].fd, NULL);
			errno = e;
			return -1;
		}
	return 0;
}

void
worker_accept_resume(struct worker *w)
{
	pthread_mutex_lock(&w->accept_mtx);
	if (w->loop_fd == -1)
		event_add(w->accept_ev, NULL);
	else if (w->paused && worker_direct_add_all(w) == -1) {
		/* Still paused: tried again after as long, said once. */
		if (!w->resume_failed)
			log_warn("worker %u: cannot watch its listening "
			    "sockets again: %s; trying again", w->id,
			    strerror(errno));
		w->resume_failed = 1;
		pthread_mutex_unlock(&w->accept_mtx);
		evtimer_add(w->resume_ev, &w->pause_tv);
		return;
	}
	if (w->resume_failed)
		log_info("worker %u: watching its listening sockets again",
		    w->id);
	w->resume_failed = 0;
	w->paused = 0;
	pthread_mutex_unlock(&w->accept_mtx);
}

/* The list of watched sockets, for a pause (direct only). */
static int
worker_list_add(struct worker *w, int fd, void *sock)
{
	struct worker_watched *v;
	size_t i;

	for (i = 0; i < w->nwatched; i++)
		if (w->watched[i].fd == fd) {
			w->watched[i].sock = sock;
			return 0;
		}
	if (w->nwatched == w->watchcap) {
		size_t cap = w->watchcap ? w->watchcap * 2 : 8;

		if ((v = realloc(w->watched, cap * sizeof(*v))) == NULL)
			return -1;
		w->watched = v;
		w->watchcap = cap;
	}
	w->watched[w->nwatched].fd = fd;
	w->watched[w->nwatched++].sock = sock;
	return 0;
}

/* 1 if fd was in the list. */
static int
worker_list_del(struct worker *w, int fd)
{
	size_t i;

	for (i = 0; i < w->nwatched; i++)
		if (w->watched[i].fd == fd) {
			w->watched[i] = w->watched[--w->nwatched];
			return 1;
		}
	return 0;
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
	if (r == 0 && w->loop_fd != -1 && (worker_list_add(w, fd, sock) == -1 ||
	    (!w->paused && worker_direct_add(w, fd) == -1))) {
		worker_list_del(w, fd);
		epoll_ctl(w->accept_fd, EPOLL_CTL_DEL, fd, NULL);
		r = -1;
	}
	pthread_mutex_unlock(&w->accept_mtx);
	return r;
}

void
worker_unwatch(struct worker *w, int fd)
{
	pthread_mutex_lock(&w->accept_mtx);
	/* ENOENT: not watched, which is what is wanted. */
	epoll_ctl(w->accept_fd, EPOLL_CTL_DEL, fd, NULL);
	/* Only a socket of ours: the loop's set holds libevent's too. */
	if (w->loop_fd != -1 && worker_list_del(w, fd) && !w->paused)
		epoll_ctl(w->loop_fd, EPOLL_CTL_DEL, fd, NULL);
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

int
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
worker_hand(struct worker *w, const struct conn_handoff *ho)
{
	struct wmsg m;

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

struct conn_home *
worker_home(struct worker *w)
{
	return &w->home;
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

void
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
