/*
 * Parking: a quiet plain connection is watched without an event of its
 * own.  libevent's struct event is 128 bytes, nearly as much as the
 * rest of the connection, and a quiet connection needs none of it but
 * the news of input.  So each worker keeps one more epoll set, the park
 * set, itself one event in the worker's base; a parked connection's
 * socket is in that set with the connection as its epoll_data, and its
 * event goes back to conn_evpool.c.  A new connection starts parked.
 * Input to a parked connection is read from the park set's callback;
 * one that shows itself busy (input again within EO_QUIET_MS of its last
 * progress) gets an event again, and quiet for EO_QUIET_MS it is parked
 * again by the sweep.
 *
 * Busy ones keep their event: a socket in a nested epoll set costs every
 * wake-up a second epoll_wait() and the kernel a second wake-up, which
 * every message of a busy connection would pay.
 * Timers, eviction, drain and restarts never needed the event: they
 * see the socket through conn_sock(), and conn_set_reading() takes a
 * parked one out of the set or puts it back (conn_io_add/del).
 * Worker thread only.
 */
#include "conn_int.h"

#define EO_PARK_BATCH	64	/* connections woken per callback */

/* A parked connection is busy again: its event comes back (watching if
   it was), and with it the read that woke it. */
static void
conn_unpark(struct conn *c)
{
	struct conn_home *h = c->c_home;
	int fd = conn_sock(c), reading = c->c_flags & EO_CF_READING;
	struct event *ev;

	if ((ev = conn_ev_alloc(h)) == NULL) {
		conn_close(c, "error: out of memory");
		return;
	}
	event_assign(ev, h->base, fd, EV_READ | EV_PERSIST, conn_readcb, c);
	conn_set_reading(c, 0);
	c->c_io = (uintptr_t)ev;
	if (!reading)
		return;
	conn_set_reading(c, 1);
	if (!(c->c_flags & EO_CF_READING)) {
		conn_close(c, "error: cannot watch the socket");
		return;
	}
	conn_readcb(fd, EV_READ, c);
}

/*
 * The park set is readable: some parked connections are.  One that made
 * progress within EO_QUIET_MS before this input is busy: it gets its
 * event back.  Any other is read where it is: a new connection's first
 * input, or a quiet one's occasional line, costs no event (and leaves
 * libevent no entry for its descriptor, 40 bytes kept for good).  So
 * does the end of a connection (EPOLLRDHUP: the client sent its FIN):
 * what is left to read is read here, and a short connection (connect,
 * one request, close) never takes an event only to close.  (An upload
 * whose FIN is already queued behind megabytes is then read here too,
 * a chunk a pass: the same reads and copies, one epoll_wait() more
 * for each 64 KiB.)  A
 * bounded batch, the rest on the next pass (level-triggered).  Reading
 * one connection never closes another, so every pointer of the batch is
 * still good when its turn comes.
 */
static void
conn_park_cb(evutil_socket_t fd, short what, void *arg)
{
	struct epoll_event evs[EO_PARK_BATCH];
	uint32_t now = mono_ms();
	int i, n;

	(void)what;
	(void)arg;
	n = epoll_wait(fd, evs, EO_PARK_BATCH, 0);
	for (i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (c->c_in > 0 && mono_since(now, c->c_t_progress) <
		    EO_QUIET_MS && !(evs[i].events & (EPOLLRDHUP | EPOLLHUP |
		    EPOLLERR)))
			conn_unpark(c);
		else
			conn_readcb(conn_sock(c), EV_READ, c);
	}
}

int
conn_park_init(struct conn_home *h)
{
	h->park_ev = NULL;
	if ((h->park_fd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	h->park_ev = event_new(h->base, h->park_fd, EV_READ | EV_PERSIST,
	    conn_park_cb, h);
	if (h->park_ev == NULL || event_add(h->park_ev, NULL) == -1) {
		if (h->park_ev != NULL)
			event_free(h->park_ev);
		h->park_ev = NULL;
		close(h->park_fd);
		h->park_fd = -1;
		return -1;
	}
	return 0;
}

/* After every connection is closed: none is parked any more. */
void
conn_park_fini(struct conn_home *h)
{
	conn_evpool_fini(h);
	if (h->park_ev == NULL)
		return;
	event_free(h->park_ev);
	h->park_ev = NULL;
	close(h->park_fd);
	h->park_fd = -1;
}

/*
 * Parks c if all it does is wait for input: serving, reading, nothing
 * held or queued, no pause, no TLS (whose bufferevent has events of
 * its own).  Into the park set first, so that no input can come
 * unwatched; then the event goes.  If the set refuses, c stays busy.
 */
void
conn_park(struct conn *c)
{
	struct epoll_event ev = { .events = EO_PARK_EVENTS, .data.ptr = c };
	struct event *own = (struct event *)c->c_io;
	int fd;

	if (conn_parked(c) || c->c_home->park_ev == NULL ||
	    c->c_state != EO_CONN_SERVING ||
	    !(c->c_flags & EO_CF_READING) || c->c_bev != NULL ||
	    c->c_held != NULL || c->c_pause != NULL || c->c_ssl != NULL)
		return;
	fd = conn_sock(c);
	if (epoll_ctl(c->c_home->park_fd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return;
	event_del(own);
	conn_ev_free(c->c_home, own);
	c->c_io = (uintptr_t)fd << 1 | 1;
}
