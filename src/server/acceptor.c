/*
 * The acceptor: the listening sockets (struct listen_sock), accepting
 * from them, admission against the global and per-listener limits, the
 * hand-off to a worker, and surviving EMFILE.
 *
 * Threads.  The workers accept from the stream sockets (worker_watch()):
 * each runs the admission (admission.c) on its own thread and serves
 * what it places on itself in the same loop pass.  With the hand-off
 * alone, every short connection woke the main thread, then a worker:
 * two task switches, and 16% more CPU per connection than a loop that
 * accepts for itself (tests/bench/README.md, "Accepting on the
 * workers").  On a socket of ours each worker has a socket of its own
 * on the address ("One socket per worker" below), keeps what it
 * accepts there, and the kernel places clients; a socket from systemd,
 * or with socket_per_worker off, is in every worker's accept set, each
 * waiting for it with EPOLLEXCLUSIVE (worker.c: a client wakes one idle
 * worker, not all), and the pick (least loaded, ties round robin)
 * places clients.  The main thread owns everything admission reads (a
 * socket's listener, the running config) and changes it only under
 * every worker's accept lock (acceptor_lock()); a worker holds its own
 * while it accepts.  The main thread still accepts for http (metrics)
 * listeners, which it serves, and when it takes what is queued on a
 * socket it closes.  Counters go to the accepting thread's slot, the
 * burst lines' notes under the stats' note lock.  Admission and the
 * pick are one step under srv->acc_mtx, so clients are admitted one at
 * a time, as when one thread accepted them all (limits stay exact);
 * the rest (accept4(), adopting) runs in parallel.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "conn.h"
#include "fd_spare.h"
#include "listener.h"
#include "log.h"
#include "protocol.h"
#include "server_internal.h"
#include "stats.h"
#include "udp.h"
#include "worker.h"

#define EO_RESUME_MS	100	/* accept again after running out of fds */
#define EO_SPARE_DRAIN	64	/* accept-and-close at most this many */
#define EO_RETIRE_MAX	(1 << 20) /* accepts when retiring, at most */
#define EO_ACCEPT_BATCH	32	/* accepts per socket per worker pass */

/* How new clients are held off a socket (ls->held). */
#define EO_HELD_GHOST	1	/* bound to a device that does not exist */
#define EO_HELD_FILTER	2	/* a filter drops their SYNs */
#define EO_HELD_SHRUNK	3	/* its queue has room for one */
#define EO_GHOST_IFINDEX 0x7fffffff	/* never a device's index */

static void	acceptor_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	acceptor_error(struct evconnlistener *, void *);
static void	acceptor_on_worker(struct worker *, void *);
static void	listen_sock_disable(struct listen_sock *);
static void	listen_sock_taps(struct listen_sock *);

/*
 * A UDP socket is read by a worker, not here: its record goes to the
 * next worker in turn, which serves it once a plan says under what.
 */
static int
listen_sock_dgram(struct server *srv, struct listen_sock *ls)
{
	if (srv->nworkers == 0 || (ls->us = udp_sock_new(ls->fd)) == NULL)
		return -1;
	ls->dgram = 1;
	ls->w = srv->workers[srv->udp_rr++ % srv->nworkers];
	return 0;
}

static int
sock_is_dgram(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_DGRAM;
}

/* No Nagle delay for small replies: set on the listening socket, as
   Linux copies it to each accepted one (bound, systemd's or carried). */
static void
listen_sock_nodelay(int fd, const struct cfg_addr *addr)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
	    sizeof(int)) == -1)
		log_warn("%s: TCP_NODELAY", addr->text);
}

struct listen_sock *
listen_sock_new(struct server *srv, int fd, const struct cfg_addr *addr,
    int backlog, const char *sd_name, char *err, size_t errlen)
{
	struct listen_sock *ls = calloc(1, sizeof(*ls));

	if (ls == NULL || (sd_name != NULL &&
	    (ls->sd_name = strdup(sd_name)) == NULL)) {
		snprintf(err, errlen, "%s: out of memory", addr->text);
		free(ls);
		return NULL;
	}
	ls->srv = srv;
	ls->fd = fd;
	ls->addr = *addr;
	ls->backlog = backlog;
	if (sock_is_dgram(fd)) {
		if (listen_sock_dgram(srv, ls) == 0)
			return ls;
		snprintf(err, errlen, "%s/udp: out of memory", addr->text);
		free(ls->sd_name);
		free(ls);
		return NULL;
	}
	listen_sock_nodelay(fd, addr);
	/* Backlog 0: the socket already listens.  Accepted sockets come
	   non-blocking; CLOSE_ON_EXEC makes them close-on-exec too. */
	ls->evl = evconnlistener_new(srv->base, acceptor_accept, ls,
	    LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ls->evl == NULL || (srv->nworkers > 0 && (ls->taps =
	    calloc(srv->nworkers, sizeof(*ls->taps))) == NULL)) {
		snprintf(err, errlen, "%s: cannot watch the socket",
		    addr->text);
		if (ls->evl != NULL)
			evconnlistener_free(ls->evl);
		free(ls->sd_name);
		free(ls);
		return NULL;
	}
	listen_sock_taps(ls);
	evconnlistener_set_error_cb(ls->evl, acceptor_error);
	evconnlistener_disable(ls->evl);	/* until a listener owns it */
	return ls;
}

struct listen_sock *
listen_sock_open(struct server *srv, const struct cfg_addr *addr,
    int backlog, char *err, size_t errlen)
{
	struct listen_sock *ls;
	int fd;

	if ((fd = listener_bind(addr, backlog, err, errlen)) == -1)
		return NULL;
	if ((ls = listen_sock_new(srv, fd, addr, backlog, NULL, err,
	    errlen)) == NULL)
		close(fd);
	return ls;
}

struct listen_sock *
listen_sock_open_udp(struct server *srv, const struct cfg_addr *addr,
    char *err, size_t errlen)
{
	struct listen_sock *ls;
	int fd;

	if ((fd = udp_bind(addr, err, errlen)) == -1)
		return NULL;
	if ((ls = listen_sock_new(srv, fd, addr, 0, NULL, err,
	    errlen)) == NULL)
		close(fd);
	return ls;
}

/* Closes ls's extra sockets past the first keep, the last first: the
   group's order stays as it was for those kept (listener_steer()). */
static void
listen_sock_close_extra(struct listen_sock *ls, unsigned keep)
{
	while (ls->nextra > keep)
		close(ls->extra[--ls->nextra]);
	listen_sock_taps(ls);
}

void
listen_sock_free(struct listen_sock *ls)
{
	/* systemd's copy queues clients for the next start: as it was. */
	if (ls->sd_name != NULL && ls->held != 0)
		listen_sock_unpark(ls);
	if (ls->dgram)
		worker_udp_close(ls->w, ls->us);	/* closes the fd */
	else if (ls->fd != -1) {	/* -1: moved away, see listen_sock_close */
		listen_sock_disable(ls);
		listen_sock_close_extra(ls, 0);
		evconnlistener_free(ls->evl);
		close(ls->fd);
	}
	free(ls->extra);
	free(ls->taps);
	free(ls->sd_name);
	free(ls);
}

/*
 * Closing a listening socket resets every connection in its queue,
 * though those clients' connect() succeeded.  So, for all the sockets
 * being closed at once: new clients are held off, what is queued is
 * accepted and served, a millisecond passes for handshakes under way,
 * again, then the socket closes.
 *
 * Held off how, measured with clients connecting throughout (README,
 * "Privileges"): a filter that drops SYNs needs CAP_NET_ADMIN in the
 * socket's network namespace on TCP (Linux 6.x and stable kernels),
 * which the unit does not have.  A backlog of 0 is worse than nothing:
 * Linux then drops the last ACK of handshakes that raced each other,
 * and those clients, connected already, are reset at the close.  What
 * needs no privilege: binding the socket to a device that does not
 * exist (SO_BINDTOIFINDEX, allowed once on a socket bound to none).
 * No SYN matches it any more: one meets the socket that replaces it
 * (bound beside it, plan.c) or a refusal, while handshakes under way
 * and the queue stay the socket's.  It cannot be undone without
 * CAP_NET_RAW, so it is for sockets about to close; the filter is the
 * fallback (a socket bound to a device already, an older kernel).
 */
static int
acceptor_attach_drop(int fd)
{
	/* Offset 0 is the TCP header: flags at 13, SYN is 0x02. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog;

	/* Its padding too: the kernel copies the whole struct. */
	memset(&prog, 0, sizeof(prog));
	prog.len = sizeof(code) / sizeof(code[0]);
	prog.filter = code;
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
	    sizeof(prog));
}

/* Said once a process, at info: how the unit runs is not a fault. */
static void
acceptor_say_once(int *said, const char *what)
{
	if (*said)
		return;
	*said = 1;
	log_info("listeners: %s", what);
}

/* EO_HELD_GHOST or EO_HELD_FILTER as fd could be held off; 0: not. */
static int
acceptor_hold_fd(int fd)
{
	int ghost = EO_GHOST_IFINDEX;

	if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ghost,
	    sizeof(ghost)) == 0)
		return EO_HELD_GHOST;
	return acceptor_attach_drop(fd) == 0 ? EO_HELD_FILTER : 0;
}

/* Every socket of ls's group alike: a SYN given to one of them by the
   group's steering would still be let in (its device is not looked at
   once the group is found), but none is found when all are held. */
static void
acceptor_hold_off(struct listen_sock *ls)
{
	static int said;
	unsigned i;

	listen_sock_disable(ls);
	if (ls->held != 0)
		return;
	for (i = 0; i < ls->nextra; i++)
		acceptor_hold_fd(ls->extra[i]);
	if ((ls->held = (unsigned char)acceptor_hold_fd(ls->fd)) == 0)
		acceptor_say_once(&said, "neither SO_BINDTOIFINDEX nor, "
		    "without CAP_NET_ADMIN, SO_ATTACH_FILTER: a client "
		    "connecting while a listening socket closes may be reset");
}

/*
 * A parked socket is systemd's and may be served again: the hold must
 * come off.  The filter does; without CAP_NET_ADMIN the queue shrinks
 * to a backlog of 0 instead, so one client completes its handshake and
 * waits to be served, and the others' SYNs are dropped and retried.
 */
static void
acceptor_hold_parked(struct listen_sock *ls)
{
	static int said;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	listen_sock_disable(ls);
	if (ls->held != 0)
		return;
	if (acceptor_attach_drop(ls->fd) == 0) {
		ls->held = EO_HELD_FILTER;
		return;
	}
	/* For a listening socket, Linux reports the backlog in
	   tcpi_sacked: listen_sock_unpark() gives it back. */
	ls->held_backlog = getsockopt(ls->fd, IPPROTO_TCP, TCP_INFO, &ti,
	    &len) == 0 && ti.tcpi_sacked > 0 ? (int)ti.tcpi_sacked : SOMAXCONN;
	if (listen(ls->fd, 0) == -1) {
		log_warn("listener %s: cannot hold new clients off %s",
		    listen_sock_owner(ls), ls->addr.text);
		return;
	}
	ls->held = EO_HELD_SHRUNK;
	acceptor_say_once(&said, "without CAP_NET_ADMIN, a socket from systemd "
	    "that no listener serves keeps one client waiting (its backlog "
	    "is 0) instead of none");
}

static void
acceptor_take_queued_fd(struct listen_sock *ls, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, n;

	for (n = 0; n < EO_RETIRE_MAX; n++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1 && errno == EINTR)
			continue;
		if (fd == -1)
			break;
		/* Accepted sockets inherit the listener's filter (an int:
		   Linux refuses a shorter option, though it reads none). */
		if (ls->held == EO_HELD_FILTER)
			setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &n,
			    sizeof(n));
		acceptor_accept(ls->evl, fd, (struct sockaddr *)&ss, (int)len,
		    ls);
	}
	if (n == EO_RETIRE_MAX || (errno != EAGAIN && errno != EWOULDBLOCK))
		log_warn("listener %s: clients still queued on %s are reset",
		    listen_sock_owner(ls), ls->addr.text);
}

/* On the main thread, what waits on ls and its extra sockets. */
static void
acceptor_take_queued(struct listen_sock *ls)
{
	unsigned i;

	if (ls->dgram)
		return;
	acceptor_take_queued_fd(ls, ls->fd);
	for (i = 0; i < ls->nextra; i++)
		acceptor_take_queued_fd(ls, ls->extra[i]);
}

void
listen_sock_retire(struct listen_sock **v, size_t n)
{
	struct timespec ms = { 0, 1000000 };
	size_t i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		if (!v[i]->dgram && v[i]->fd != -1) {
			acceptor_hold_off(v[i]);
			acceptor_take_queued(v[i]);
		}
	nanosleep(&ms, NULL);
	for (i = 0; i < n; i++) {
		if (!v[i]->dgram && v[i]->fd != -1)
			acceptor_take_queued(v[i]);
		listen_sock_free(v[i]);
	}
}

/*
 * systemd keeps its copy of a socket that no listener serves: clients
 * would complete their handshake and wait for ever.  So new SYNs are
 * dropped (a client retries, then gives up: its connect() fails), and
 * what is queued is served by the listener that had it.
 */
void
listen_sock_park(struct listen_sock *ls)
{
	acceptor_hold_parked(ls);
	acceptor_take_queued(ls);
	ls->parked = 1;
}

void
listen_sock_unpark(struct listen_sock *ls)
{
	int unused = 0;

	/* Linux wants an int here, though it reads none. */
	if (ls->held == EO_HELD_FILTER && setsockopt(ls->fd, SOL_SOCKET,
	    SO_DETACH_FILTER, &unused, sizeof(unused)) == -1)
		log_warn("listener %s: cannot let new clients in on %s",
		    listen_sock_owner(ls), ls->addr.text);
	if (ls->held == EO_HELD_SHRUNK && listen(ls->fd, ls->held_backlog) ==
	    -1)
		log_warn("listener %s: cannot give %s its queue back",
		    listen_sock_owner(ls), ls->addr.text);
	ls->held = 0;
	ls->parked = 0;
}

/*
 * A reload moves ls to another address of its port: new SYNs go past
 * it (to the new socket, bound beside it by plan.c, or refused if it
 * could not be); what is queued is served; then the socket closes, and
 * the struct stays so that listen_sock_reopen() can bind it back.  The
 * wait is for handshakes already under way (their client counts as
 * connected): 10 ms, not 1, since a loaded machine defers loopback
 * packets to ksoftirqd; short all the same, because it blocks the main
 * loop.
 */
void
listen_sock_close(struct listen_sock *ls)
{
	struct timespec ms = { 0, 10000000 };

	acceptor_hold_off(ls);
	acceptor_take_queued(ls);
	nanosleep(&ms, NULL);
	acceptor_take_queued(ls);
	listen_sock_close_extra(ls, 0);
	evconnlistener_free(ls->evl);
	close(ls->fd);
	ls->evl = NULL;
	ls->fd = -1;
	ls->steered = 0;
	listen_sock_taps(ls);
	ls->held = 0;	/* the hold was the closed socket's */
}

/* Undoes listen_sock_close(): the new address could not be bound. */
int
listen_sock_reopen(struct listen_sock *ls, char *err, size_t errlen)
{
	struct listen_sock *n;

	if ((n = listen_sock_open(ls->srv, &ls->addr, ls->backlog, err,
	    errlen)) == NULL)
		return -1;
	ls->fd = n->fd;
	ls->evl = n->evl;
	evconnlistener_set_cb(ls->evl, acceptor_accept, ls);
	listen_sock_taps(ls);
	free(n->taps);
	free(n);
	if (ls->lis != NULL && !ls->srv->paused && !ls->srv->stopping)
		listen_sock_enable(ls);
	return 0;
}

void
acceptor_set_accepting(struct server *srv, int on)
{
	size_t i;

	for (i = 0; i < srv->nsocks; i++) {
		struct listen_sock *ls = srv->socks[i];

		if (ls->dgram)
			continue;	/* a worker's, and costs no fd */
		if (on && ls->lis != NULL)
			listen_sock_enable(ls);
		else
			listen_sock_disable(ls);
	}
}

/* Served on the main thread (metrics), or no worker to accept. */
static int
listen_sock_on_main(const struct listen_sock *ls)
{
	return ls->srv->nworkers == 0 || ls->taps == NULL ||
	    (ls->lis != NULL && listener_config(ls->lis)->proto->http);
}

/*
 * One socket per worker.  Workers sharing one listening socket cost
 * the raw loop 1.14 times the CPU per short connection, and the daemon
 * as much (tests/bench/README.md, "One socket per worker"): each
 * accept contends for the socket's queue with the other workers.  So
 * on a socket of ours (bound by us, not systemd's: socket activation
 * gives one per address) with two workers or more, each worker but the
 * first gets a socket of its own on the same address, joined to ls->fd
 * by SO_REUSEPORT, and serves what it accepts there (the kernel placed
 * it); systemd's sockets stay shared, placed by the pick.
 *
 * SO_REUSEPORT alone would let any process of our uid bind the port
 * beside us and take a share of our clients, silently; and no socket
 * of a group could be closed without resetting the handshakes the
 * kernel had just given it.  listener_steer() answers both: the group
 * gives clients to its first 1 + nextra sockets only (ours: ls->fd
 * first, the extra ones in order), and before extra sockets close, to
 * ls->fd alone.  ls->fd is listening before SO_REUSEPORT is set on it,
 * so a plain bind of the address (a second daemon's) still fails.
 */
static unsigned
listen_sock_wanted(const struct listen_sock *ls)
{
	if (ls->sd_name != NULL || ls->dgram || ls->fd == -1 ||
	    ls->srv->nworkers < 2 || listen_sock_on_main(ls) ||
	    ls->lis == NULL || !listener_config(ls->lis)->socket_per_worker)
		return 0;
	return ls->srv->nworkers - 1;
}

static int
listen_sock_steer(struct listen_sock *ls, unsigned n)
{
	if (listener_steer(ls->fd, n) == -1)
		return -1;
	ls->steered = 1;
	return 0;
}

/* Worker i accepts from its own socket if ls has one for each. */
static void
listen_sock_taps(struct listen_sock *ls)
{
	unsigned i, n = ls->srv->nworkers;
	int own = ls->nextra > 0 && ls->nextra + 1 >= n;

	for (i = 0; ls->taps != NULL && i < n; i++) {
		ls->taps[i].ls = ls;
		ls->taps[i].own = own;
		ls->taps[i].fd = own && i > 0 ? ls->extra[i - 1] : ls->fd;
	}
}

/*
 * Down to keep extra sockets: new clients go to the others first, what
 * waits on those leaving is served, a millisecond passes for
 * handshakes under way (as listen_sock_retire()), again, then they
 * close.  ls->fd goes on sharing the port with its steering, down to
 * itself: Linux lets a socket of our uid bind the port while one bound
 * as shared stays, and one that could not join ls->fd's group would
 * be a group of its own, found first, given every client.
 */
static void
listen_sock_fold(struct listen_sock *ls, unsigned keep)
{
	struct timespec ms = { 0, 1000000 };
	unsigned i, k;

	if (ls->nextra <= keep)
		return;
	listen_sock_disable(ls);
	if (listen_sock_steer(ls, 1 + keep) == -1)
		log_warn("listener %s: cannot steer clients off the sockets "
		    "closing on %s", listen_sock_owner(ls), ls->addr.text);
	for (k = 0; k < 2; k++) {
		if (k > 0)
			nanosleep(&ms, NULL);
		for (i = keep; i < ls->nextra; i++)
			acceptor_take_queued_fd(ls, ls->extra[i]);
	}
	listen_sock_close_extra(ls, keep);
}

/* Up to want extra sockets; or none, if one cannot be had. */
static void
listen_sock_extend(struct listen_sock *ls, unsigned want)
{
	static int said;
	char why[256];
	int fd, *v;

	if ((v = reallocarray(ls->extra, want, sizeof(*v))) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	ls->extra = v;
	listen_sock_disable(ls);
	if (listener_share_port(ls->fd, 1) == -1) {
		snprintf(why, sizeof(why), "SO_REUSEPORT: %s", strerror(errno));
		goto fail;
	}
	while (ls->nextra < want) {
		if ((fd = listener_socket(&ls->addr, why, sizeof(why))) == -1)
			goto fail;
		if (listener_share_port(fd, 1) == -1 || listener_listen(fd,
		    &ls->addr, ls->backlog, why, sizeof(why)) == -1) {
			close(fd);
			goto fail;
		}
		listen_sock_nodelay(fd, &ls->addr);
		ls->extra[ls->nextra++] = fd;
	}
	if (listen_sock_steer(ls, 1 + ls->nextra) == 0) {
		listen_sock_taps(ls);
		return;
	}
	snprintf(why, sizeof(why), "SO_ATTACH_REUSEPORT_CBPF: %s",
	    strerror(errno));
fail:
	if (!said)
		log_warnx("listener %s: the workers share %s, a socket for "
		    "each could not be made (%s)", listen_sock_owner(ls),
		    ls->addr.text, why);
	said = 1;
	listen_sock_fold(ls, 0);
	if (!ls->steered)	/* no group was made: the port is ours */
		listener_share_port(ls->fd, 0);
}

/* ls's extra sockets as many as it wants now: a reload may have made
   it an http listener's, a restart may bring more or fewer.  As many
   as before: the group's steering already counts them (a restart's
   too, set by the process that made them). */
static void
listen_sock_group(struct listen_sock *ls)
{
	unsigned want = listen_sock_wanted(ls);

	if (ls->nextra > want)
		listen_sock_fold(ls, want);
	else if (ls->nextra < want)
		listen_sock_extend(ls, want);
}

int
listen_sock_adopt_extra(struct listen_sock *ls, int fd)
{
	int *v = reallocarray(ls->extra, ls->nextra + 1, sizeof(*v));

	if (v == NULL)
		return -1;
	ls->extra = v;
	ls->extra[ls->nextra++] = fd;
	listen_sock_taps(ls);
	return 0;
}

int
listen_sock_backlog(struct listen_sock *ls, int backlog)
{
	unsigned i;

	for (i = 0; i < ls->nextra; i++)
		if (listen(ls->extra[i], backlog) == -1)
			return -1;
	if (listen(ls->fd, backlog) == -1)
		return -1;
	ls->backlog = backlog;
	return 0;
}

void
listen_sock_enable(struct listen_sock *ls)
{
	struct server *srv = ls->srv;
	unsigned i;

	listen_sock_group(ls);
	if (listen_sock_on_main(ls)) {
		listen_sock_disable(ls);	/* a reload may move it here */
		evconnlistener_enable(ls->evl);
		return;
	}
	evconnlistener_disable(ls->evl);
	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i] != NULL && worker_watch(srv->workers[i],
		    ls->taps[i].fd, &ls->taps[i], acceptor_on_worker) == -1) {
			/* The main thread accepts for all, as it can. */
			log_warn("listener %s: workers cannot watch %s",
			    listen_sock_owner(ls), ls->addr.text);
			listen_sock_fold(ls, 0);
			listen_sock_disable(ls);
			evconnlistener_enable(ls->evl);
			return;
		}
}

/* Once it returns, no thread accepts from ls. */
static void
listen_sock_disable(struct listen_sock *ls)
{
	struct server *srv = ls->srv;
	unsigned i;

	evconnlistener_disable(ls->evl);
	for (i = 0; ls->taps != NULL && i < srv->nworkers; i++)
		if (srv->workers[i] != NULL && ls->taps[i].fd != -1)
			worker_unwatch(srv->workers[i], ls->taps[i].fd);
}

void
acceptor_lock(struct server *srv, int on)
{
	unsigned i;

	/* Always in the workers' order: no two lockers wait on each
	   other (a worker takes only its own). */
	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i] != NULL) {
			if (on)
				worker_accept_lock(srv->workers[i]);
			else
				worker_accept_unlock(srv->workers[i]);
		}
}
/* One accepted client, on the main thread (self NULL) or a worker's. */
static void
acceptor_take(struct listen_sock *ls, struct worker *self, int own, int fd,
    const struct sockaddr *sa)
{
	struct server *srv = ls->srv;
	struct conn_handoff ho;
	struct worker *to = NULL;
	int r;

	/* Out of descriptors, this one may be the spare's (fd_spare.c). */
	if (fd_spare_missing(&srv->spare) == -1) {
		acceptor_turn_away(srv, ls, self, fd, EO_REFUSED_FDS, 0);
		fd_spare_put(&srv->spare);
		return;
	}
	pthread_mutex_lock(&srv->acc_mtx);
	r = acceptor_admit(ls, self, own, fd, sa, &ho, &to);
	pthread_mutex_unlock(&srv->acc_mtx);
	if (r == -1)
		return;
	if (ho.lc->proto->http) {
		acceptor_http(srv, ls, &ho);
		return;
	}
	if (to == self)		/* on its own thread: no mail, no wake-up */
		conn_adopt(worker_home(self), &ho);
	else if (worker_hand(to, &ho) == -1) {
		conn_handoff_release(&srv->stats, &ho);
		acceptor_count(srv, ls, self, 1, EO_REFUSED_OTHER);
		return;
	}
	/* Behind a proxy, accepted once the header admits the client
	   (conn.c): a client it refuses is a refusal, not a connection. */
	if (!ho.lc->proxy_protocol)
		acceptor_count(srv, ls, self, 0, EO_REFUSED_OTHER);
}

static void
acceptor_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int slen, void *arg)
{
	(void)evl;
	(void)slen;
	acceptor_take(arg, NULL, 0, fd, sa);
}

/*
 * Out of descriptors.  libevent's listener would call accept() again at
 * once, forever, at 100% CPU.  Instead: give up the spare descriptor to
 * accept and close what waits (those clients hear "no" now instead of
 * hanging), and stop accepting for a moment.  Any accepting thread
 * drains: whoever holds the spare's place uses it (fd_spare.c).
 */
static void
acceptor_drain_spare(struct server *srv, struct listen_sock *ls, int lfd,
    struct worker *self)
{
	int i, fd;

	for (i = 0; i < EO_SPARE_DRAIN; i++) {
		fd_spare_give(&srv->spare);
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			break;
		acceptor_turn_away(srv, ls, self, fd, EO_REFUSED_FDS, 0);
		fd_spare_put(&srv->spare);
	}
	fd_spare_put(&srv->spare);
}

static void
acceptor_fd_starved(struct server *srv, struct listen_sock *ls)
{
	acceptor_drain_spare(srv, ls, ls->fd, NULL);
	if (!srv->paused) {
		struct timeval tv = { 0, EO_RESUME_MS * 1000 };

		srv->paused = 1;
		acceptor_set_accepting(srv, 0);
		evtimer_add(srv->ev_resume, &tv);
	}
}

static void
acceptor_error(struct evconnlistener *evl, void *arg)
{
	struct listen_sock *ls = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)evl;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		acceptor_fd_starved(ls->srv, ls);
		return;
	}
	/* Anything else (EPERM from a firewall, say) concerns one client. */
	errno = err;
	log_warn("listener %s: accept on %s", listen_sock_owner(ls),
	    ls->addr.text);
}

void
acceptor_resumecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	srv->paused = 0;
	if (!srv->stopping)
		acceptor_set_accepting(srv, 1);
}

/*
 * A worker's turn at ls (worker_run.c: its accept lock held, so ls and
 * what admission reads stay as they are).  A batch, then the loop goes
 * on to the worker's connections; what is left keeps ls ready.  Out of
 * descriptors, the worker drains what waits with the spare and stops
 * accepting for EO_RESUME_MS: every worker meets the same limit, so
 * each stops on its own, and none spins.
 */
static void
acceptor_on_worker(struct worker *w, void *sock)
{
	const struct listen_tap *tap = sock;
	struct listen_sock *ls = tap->ls;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, n;

	for (n = 0; n < EO_ACCEPT_BATCH; n++) {
		len = sizeof(ss);
		fd = accept4(tap->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			acceptor_take(ls, w, tap->own, fd,
			    (struct sockaddr *)&ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			acceptor_drain_spare(ls->srv, ls, tap->fd, w);
			worker_accept_pause(w, EO_RESUME_MS);
			return;
		}
		/* Anything else (EPERM from a firewall) is one client's. */
		log_warn("listener %s: accept on %s", listen_sock_owner(ls),
		    ls->addr.text);
	}
}
