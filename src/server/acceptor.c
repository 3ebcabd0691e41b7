/*
 * The acceptor: the listening sockets (struct listen_sock), accepting
 * from them, admission against the global and per-listener limits, the
 * hand-off to a worker, and surviving EMFILE.
 *
 * Threads.  The workers accept from the stream sockets (worker_watch()):
 * each runs the admission below on its own thread and serves what the
 * pick gives it in the same loop pass.  With the hand-off alone, every
 * short connection woke the main thread, then a worker: two task
 * switches, and 16% more CPU per connection than a loop that accepts
 * for itself (tests/bench/README.md, "Accepting on the workers").  One
 * listening socket per address is kept (not one SO_REUSEPORT socket
 * per worker), so socket activation, reloads that keep sockets open,
 * restarts that carry them and the closing socket's hold-off work as
 * before.  The main thread owns everything admission reads (a
 * socket's listener, the running config) and changes it only under
 * every worker's accept lock (acceptor_lock()); a worker holds its own
 * while it accepts.  The main thread still accepts for http (metrics)
 * listeners, which it serves, and when it takes what is queued on a
 * socket it closes.  Counters go to the accepting thread's slot, the
 * burst lines' notes under the stats' note lock.  Admission and the
 * pick (least loaded, ties round robin) are one step under
 * srv->acc_mtx, so clients are admitted and placed one at a time, as
 * when one thread accepted them all; the rest (accept4(), adopting)
 * runs in parallel.
 *
 * A socket is in every worker's accept set, and each worker waits for
 * it in its event loop's own epoll set with EPOLLEXCLUSIVE (worker.c):
 * a client wakes one idle worker, not all of them, and when none is
 * idle the first to look takes it.
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
	/* No Nagle delay for small replies: set here once, as Linux copies
	   it to each accepted socket (bound, systemd's or carried alike). */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
	    sizeof(int)) == -1)
		log_warn("%s: TCP_NODELAY", addr->text);
	/* Backlog 0: the socket already listens.  Accepted sockets come
	   non-blocking; CLOSE_ON_EXEC makes them close-on-exec too. */
	ls->evl = evconnlistener_new(srv->base, acceptor_accept, ls,
	    LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ls->evl == NULL) {
		snprintf(err, errlen, "%s: cannot watch the socket",
		    addr->text);
		free(ls->sd_name);
		free(ls);
		return NULL;
	}
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
		evconnlistener_free(ls->evl);
		close(ls->fd);
	}
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
acceptor_attach_drop(struct listen_sock *ls)
{
	/* Offset 0 is the TCP header: flags at 13, SYN is 0x02. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };

	return setsockopt(ls->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
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

static void
acceptor_hold_off(struct listen_sock *ls)
{
	static int said;
	int ghost = EO_GHOST_IFINDEX;

	listen_sock_disable(ls);
	if (ls->held != 0)
		return;
	if (setsockopt(ls->fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ghost,
	    sizeof(ghost)) == 0)
		ls->held = EO_HELD_GHOST;
	else if (acceptor_attach_drop(ls) == 0)
		ls->held = EO_HELD_FILTER;
	else
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
	if (acceptor_attach_drop(ls) == 0) {
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
acceptor_take_queued(struct listen_sock *ls)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, n;

	if (ls->dgram)
		return;
	for (n = 0; n < EO_RETIRE_MAX; n++) {
		len = sizeof(ss);
		fd = accept4(ls->fd, (struct sockaddr *)&ss, &len,
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
	evconnlistener_free(ls->evl);
	close(ls->fd);
	ls->evl = NULL;
	ls->fd = -1;
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
	free(n);
	if (ls->lis != NULL && !ls->srv->paused && !ls->srv->stopping)
		listen_sock_enable(ls);
	return 0;
}

const char *
listen_sock_owner(const struct listen_sock *ls)
{
	return ls->lis != NULL ? listener_name(ls->lis) : "?";
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
	return ls->srv->nworkers == 0 || (ls->lis != NULL &&
	    listener_config(ls->lis)->proto->http);
}

void
listen_sock_enable(struct listen_sock *ls)
{
	struct server *srv = ls->srv;
	unsigned i;

	if (listen_sock_on_main(ls)) {
		listen_sock_disable(ls);	/* a reload may move it here */
		evconnlistener_enable(ls->evl);
		return;
	}
	evconnlistener_disable(ls->evl);
	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i] != NULL && worker_watch(srv->workers[i],
		    ls->fd, ls, acceptor_on_worker) == -1) {
			/* The main thread accepts for all, as it can. */
			log_warn("listener %s: workers cannot watch %s",
			    listen_sock_owner(ls), ls->addr.text);
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
	for (i = 0; i < srv->nworkers; i++)
		if (srv->workers[i] != NULL)
			worker_unwatch(srv->workers[i], ls->fd);
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

static struct worker *
acceptor_pick(struct server *srv)
{
	unsigned i, best = srv->rr % srv->nworkers, load;
	unsigned best_load = worker_load(srv->workers[best]);

	/* Least loaded: connections live long and unevenly, so round robin
	   alone would let the workers drift apart. */
	for (i = 1; i < srv->nworkers; i++) {
		unsigned k = (srv->rr + i) % srv->nworkers;

		if ((load = worker_load(srv->workers[k])) < best_load) {
			best = k;
			best_load = load;
		}
	}
	srv->rr = best + 1;
	return srv->workers[best];
}

/* Counts in the accepting thread's slots (self NULL: the main
   thread's): the process's, and ls's listener's. */
static void
acceptor_count(struct server *srv, struct listen_sock *ls,
    struct worker *self, int refused, enum stats_refusal why)
{
	unsigned k = self != NULL ? worker_id(self) : stats_acceptor();
	struct stats_slot *all = stats_slot(srv->stats.all, k);
	struct stats_slot *one = ls->lis == NULL ? NULL :
	    stats_slot(listener_stats(ls->lis), k);

	if (!refused) {
		stats_bump(&all->accepted, 1);
		if (one != NULL)
			stats_bump(&one->accepted, 1);
		return;
	}
	stats_bump(&all->refused[why], 1);
	if (one != NULL)
		stats_bump(&one->refused[why], 1);
}

/* A client closed as soon as accepted, before it counted as open. */
static void
acceptor_turn_away(struct server *srv, struct listen_sock *ls,
    struct worker *self, int fd, enum stats_refusal why, unsigned limit)
{
	close(fd);
	acceptor_count(srv, ls, self, 1, why);
	pthread_mutex_lock(&srv->stats.note_mtx);	/* status.c reads */
	snprintf(srv->refused_by[why], sizeof(srv->refused_by[why]), "%s",
	    listen_sock_owner(ls));
	srv->refused_limit[why] = limit;
	pthread_mutex_unlock(&srv->stats.note_mtx);
}

static void
acceptor_refuse(struct server *srv, struct listen_sock *ls,
    struct worker *self, int fd, enum stats_refusal why, unsigned limit)
{
	stats_sub(&srv->stats.conns, 1);
	acceptor_turn_away(srv, ls, self, fd, why, limit);
}

/* Who was refused (the peer's address), for the burst line. */
static void
acceptor_note(struct server *srv, struct listen_sock *ls,
    enum stats_refusal why, const struct peer_key *peer, unsigned limit)
{
	char who[EO_ADDR_TEXT_MAX];

	peer_key_format(peer, who, sizeof(who));
	stats_note(&srv->stats, why, listen_sock_owner(ls), who, limit);
}

/*
 * The address lists, on the peer: on a PROXY listener the peer is the
 * proxy, which must be in proxy_from (allow and deny wait for the
 * client's address in the header); elsewhere it is the client.
 * 0: go on.
 */
static int
acceptor_screen(struct server *srv, struct listen_sock *ls,
    struct worker *self, int fd, const struct cfg_listener *lc,
    const struct sockaddr *sa)
{
	enum stats_refusal why;
	struct peer_key k;

	if (lc->proxy_protocol) {
		if (cidr_list_match(&lc->proxy_from, sa))
			return 0;
		why = EO_REFUSED_UNTRUSTED;
	} else {
		if (cfg_listener_admits(lc, sa))
			return 0;
		why = EO_REFUSED_DENIED;
	}
	peer_key_from(&k, sa);
	acceptor_note(srv, ls, why, &k, 0);
	acceptor_refuse(srv, ls, self, fd, why, 0);
	return -1;
}

/*
 * Over max_connections: refuse, or let the worker evict.  0: go on.
 * open: the count with this one, from its own increment.
 */
static int
acceptor_over_max(struct server *srv, struct listen_sock *ls,
    struct worker *self, unsigned open, struct conn_handoff *ho)
{
	int fd = ho->fd;

	if (open <= srv->cfg->max_conns)
		return 0;
	if (srv->cfg->evict_after == 0) {
		acceptor_refuse(srv, ls, self, fd, EO_REFUSED_FULL,
		    srv->cfg->max_conns);
		return -1;
	}
	ho->evict = 1;	/* the worker evicts a quiet one or refuses */
	ho->evict_after = srv->cfg->evict_after;
	return 0;
}

/* The port of sa, an IPv4 or IPv6 peer; 0 for anything else. */
static uint16_t
acceptor_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/*
 * HTTP (metrics) is served on this thread, admitted and counted as
 * every listener's.  Over max_connections with evict_after set, where
 * another listener's newcomer would evict a quiet connection, a scrape
 * is served all the same: the quiet ones are the workers', and a full
 * daemon is when its metrics are wanted most.  It is short (at most
 * EO_METRICS_TIMEOUT) and bounded by its listener's own limits.
 */
static void
acceptor_http(struct server *srv, struct listen_sock *ls,
    const struct conn_handoff *ho)
{
	if (srv->take_http(srv, ho) == -1) {
		conn_handoff_release(&srv->stats, ho);
		acceptor_count(srv, ls, NULL, 1, EO_REFUSED_OTHER);
		return;
	}
	acceptor_count(srv, ls, NULL, 0, EO_REFUSED_OTHER);
}

/* The listener's own limits; then the worker, picked (*to) for all but
   http.  0: admitted. */
static int
acceptor_admit_lis(struct server *srv, struct listen_sock *ls,
    struct worker *self, struct conn_handoff *ho, struct worker **to)
{
	const struct cfg_listener *lc = ho->lc;
	struct peer_key no_peer = { 0, { 0 } };
	int per_source;

	/* Behind a proxy the peer is the proxy: the client is counted
	   per source once its header names it (conn.c). */
	switch (listener_admit(ls->lis, lc->proxy_protocol ? &no_peer :
	    &ho->peer, &per_source)) {
	case EO_ADMIT_LISTENER_FULL:
		acceptor_refuse(srv, ls, self, ho->fd, EO_REFUSED_LISTENER,
		    lc->max_conns);
		return -1;
	case EO_ADMIT_SOURCE_FULL:
		acceptor_note(srv, ls, EO_REFUSED_SOURCE, &ho->peer,
		    lc->max_per_source);
		acceptor_refuse(srv, ls, self, ho->fd, EO_REFUSED_SOURCE,
		    lc->max_per_source);
		return -1;
	case EO_ADMIT_OK:
		break;
	}
	ho->lis = ls->lis;
	ho->per_source = (uint8_t)per_source;
	cfg_ref(lc->cfg);
	if (!lc->proto->http) {
		/* Counted before the hand-off: the next pick sees it. */
		*to = acceptor_pick(srv);
		worker_reserve(*to);
	}
	return 0;
}

/*
 * Every rule that decides, for one client (0: admitted, to the worker
 * *to).  Called under srv->acc_mtx: two workers accepting at once
 * decide one after the other, as when one thread accepted all (a
 * refusal's moment in the open count cannot turn another client away).
 */
static int
acceptor_admit(struct listen_sock *ls, struct worker *self, int fd,
    const struct sockaddr *sa, struct conn_handoff *ho, struct worker **to)
{
	struct server *srv = ls->srv;
	const struct cfg_listener *lc;
	unsigned open;

	open = (unsigned)stats_add(&srv->stats.conns, 1) + 1;
	if (ls->lis == NULL || srv->stopping) {
		acceptor_refuse(srv, ls, self, fd, EO_REFUSED_OTHER, 0);
		return -1;
	}
	lc = listener_config(ls->lis);
	memset(ho, 0, sizeof(*ho));
	ho->fd = fd;
	ho->lc = lc;
	peer_key_from(&ho->peer, sa);
	ho->port = acceptor_port(sa);
	if (acceptor_screen(srv, ls, self, fd, lc, sa) == -1 ||
	    acceptor_over_max(srv, ls, self, open, ho) == -1)
		return -1;
	return acceptor_admit_lis(srv, ls, self, ho, to);
}

/* One accepted client, on the main thread (self NULL) or a worker's. */
static void
acceptor_take(struct listen_sock *ls, struct worker *self, int fd,
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
	r = acceptor_admit(ls, self, fd, sa, &ho, &to);
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
	acceptor_take(arg, NULL, fd, sa);
}

/*
 * Out of descriptors.  libevent's listener would call accept() again at
 * once, forever, at 100% CPU.  Instead: give up the spare descriptor to
 * accept and close what waits (those clients hear "no" now instead of
 * hanging), and stop accepting for a moment.  Any accepting thread
 * drains: whoever holds the spare's place uses it (fd_spare.c).
 */
static void
acceptor_drain_spare(struct server *srv, struct listen_sock *ls,
    struct worker *self)
{
	int i, fd;

	for (i = 0; i < EO_SPARE_DRAIN; i++) {
		fd_spare_give(&srv->spare);
		if ((fd = accept4(ls->fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			break;
		acceptor_turn_away(srv, ls, self, fd, EO_REFUSED_FDS, 0);
		fd_spare_put(&srv->spare);
	}
	fd_spare_put(&srv->spare);
}

static void
acceptor_fd_starved(struct server *srv, struct listen_sock *ls)
{
	acceptor_drain_spare(srv, ls, NULL);
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
	struct listen_sock *ls = sock;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, n;

	for (n = 0; n < EO_ACCEPT_BATCH; n++) {
		len = sizeof(ss);
		fd = accept4(ls->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			acceptor_take(ls, w, fd, (struct sockaddr *)&ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			acceptor_drain_spare(ls->srv, ls, w);
			worker_accept_pause(w, EO_RESUME_MS);
			return;
		}
		/* Anything else (EPERM from a firewall) is one client's. */
		log_warn("listener %s: accept on %s", listen_sock_owner(ls),
		    ls->addr.text);
	}
}
