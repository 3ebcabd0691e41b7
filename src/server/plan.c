/*
 * The reload plan, applied at start and on SIGHUP (reload.c): which
 * listeners and sockets the new configuration needs, found among the
 * running ones or opened, then the swap, which cannot fail.
 *
 * Lookups go through sorted copies of the running listeners and
 * sockets, so a reload costs O(n log n) in listeners, not O(n^2): the
 * main thread accepts nothing while it plans.
 *
 * Threads: main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "guard.h"
#include "listener.h"
#include "log.h"
#include "protocol.h"
#include "self_exe.h"
#include "server_internal.h"
#include "systemd.h"
#include "tls.h"
#include "worker.h"

struct plan_move {
	const struct cfg_listener *lc;
	const struct cfg_addr	 *addr;
	size_t			  slot;		/* in socks[] */
};

/* What a configuration needs, found or opened before anything changes. */
struct plan {
	struct listener		**lis;		/* one per enabled listener */
	const struct cfg_listener **lcs;	/* ... and its settings */
	size_t			  nlis;
	struct listen_sock	**socks;	/* the sockets they serve */
	struct listener		**owner;	/* ... and whose each is */
	size_t			  nsocks;
	struct listen_sock	**fresh;	/* opened for this plan */
	size_t			  nfresh;
	struct listener		**made;		/* created for this plan */
	size_t			  nmade;

	/* The running state, sorted for lookups. */
	struct listener		**old;		/* by name */
	unsigned char		 *old_kept;	/* old[i] is in the plan */
	size_t			  nold;
	struct listen_sock	**ours;		/* by address */
	size_t			  nours;
	struct listen_sock	**sd;		/* systemd's, by name */
	size_t			  nsd;
	struct listen_sock	**gone;		/* ours, to close */

	/* Addresses whose port one of ours holds (a wildcard beside a
	   specific address): opened last, once the holder is closed. */
	struct plan_move	 *moves;
	size_t			  nmoves;
	struct listen_sock	**closed;	/* ours, closed by moves */
	size_t			  nclosed;
};

static int
cmp_lis(const void *a, const void *b)
{
	return strcmp(listener_name(*(struct listener *const *)a),
	    listener_name(*(struct listener *const *)b));
}

/* Family, then port, then the rest: one port's sockets sort together. */
static int
cmp_addr(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(&a->ss, &b->ss, a->len);
}

/* TCP first, then UDP: a port's TCP and UDP sockets are apart. */
static int
cmp_ours(const void *a, const void *b)
{
	const struct listen_sock *x = *(struct listen_sock *const *)a,
	    *y = *(struct listen_sock *const *)b;

	if (x->dgram != y->dgram)
		return x->dgram < y->dgram ? -1 : 1;
	return cmp_addr(&x->addr, &y->addr);
}

static int
cmp_sd(const void *a, const void *b)
{
	return strcmp((*(struct listen_sock *const *)a)->sd_name,
	    (*(struct listen_sock *const *)b)->sd_name);
}

static void
plan_free(struct plan *p)
{
	free(p->lis);
	free(p->lcs);
	free(p->socks);
	free(p->owner);
	free(p->fresh);
	free(p->made);
	free(p->old);
	free(p->old_kept);
	free(p->ours);
	free(p->sd);
	free(p->gone);
	free(p->moves);
	free(p->closed);
}

/* Undoes a plan that will not be applied. */
static void
plan_abandon(struct plan *p)
{
	char err[256];
	size_t i;

	for (i = 0; i < p->nsocks; i++)
		if (p->socks[i] != NULL)	/* NULL: a move not made */
			p->socks[i]->planned = 0;
	for (i = 0; i < p->nfresh; i++)
		listen_sock_free(p->fresh[i]);
	/* After the frees: the new sockets held these ports. */
	for (i = 0; i < p->nclosed; i++)
		if (listen_sock_reopen(p->closed[i], err, sizeof(err)) == -1)
			log_err("listener %s: %s is not listening any more: "
			    "%s", listen_sock_owner(p->closed[i]),
			    p->closed[i]->addr.text, err);
	for (i = 0; i < p->nmade; i++)
		listener_unref(p->made[i]);
	plan_free(p);
}

static int
plan_alloc(struct server *srv, struct plan *p, const struct cfg *cfg)
{
	size_t i, n = cfg->nlisteners, naddrs = srv->nsocks;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < n; i++)
		naddrs += cfg->listeners[i].naddrs;
	p->lis = calloc(n + 1, sizeof(*p->lis));
	p->lcs = calloc(n + 1, sizeof(*p->lcs));
	p->made = calloc(n + 1, sizeof(*p->made));
	p->socks = calloc(naddrs + 1, sizeof(*p->socks));
	p->owner = calloc(naddrs + 1, sizeof(*p->owner));
	p->fresh = calloc(naddrs + 1, sizeof(*p->fresh));
	p->old = calloc(srv->nlis + 1, sizeof(*p->old));
	p->old_kept = calloc(srv->nlis + 1, 1);
	p->ours = calloc(srv->nsocks + 1, sizeof(*p->ours));
	p->sd = calloc(srv->nsocks + 1, sizeof(*p->sd));
	p->gone = calloc(srv->nsocks + 1, sizeof(*p->gone));
	p->moves = calloc(naddrs + 1, sizeof(*p->moves));
	p->closed = calloc(srv->nsocks + 1, sizeof(*p->closed));
	return p->lis == NULL || p->lcs == NULL || p->made == NULL ||
	    p->socks == NULL || p->owner == NULL || p->fresh == NULL ||
	    p->old == NULL || p->old_kept == NULL || p->ours == NULL ||
	    p->sd == NULL || p->gone == NULL || p->moves == NULL ||
	    p->closed == NULL ? -1 : 0;
}

/* Sorted copies of what runs now. */
static void
plan_index(struct server *srv, struct plan *p)
{
	size_t i;

	for (i = 0; i < srv->nlis; i++)
		p->old[i] = srv->lis[i];
	p->nold = srv->nlis;
	qsort(p->old, p->nold, sizeof(*p->old), cmp_lis);
	for (i = 0; i < srv->nsocks; i++) {
		if (srv->socks[i]->sd_name != NULL)
			p->sd[p->nsd++] = srv->socks[i];
		else
			p->ours[p->nours++] = srv->socks[i];
	}
	qsort(p->ours, p->nours, sizeof(*p->ours), cmp_ours);
	qsort(p->sd, p->nsd, sizeof(*p->sd), cmp_sd);
}

/* The running listener called name, marked as kept; or NULL. */
static struct listener *
plan_find_listener(struct plan *p, const char *name)
{
	size_t lo = 0, hi = p->nold, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(name, listener_name(p->old[mid]))) == 0) {
			p->old_kept[mid] = 1;
			return p->old[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* A running socket of ours bound to a (over UDP: dgram), or NULL. */
static struct listen_sock *
plan_find_sock(struct plan *p, const struct cfg_addr *a, int dgram)
{
	size_t lo = 0, hi = p->nours, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (dgram != p->ours[mid]->dgram)
			c = dgram < p->ours[mid]->dgram ? -1 : 1;
		else
			c = cmp_addr(a, &p->ours[mid]->addr);
		if (c == 0)
			return p->ours[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Whether two addresses have the same family and port. */
static int
same_port(const struct cfg_addr *a, const struct cfg_addr *b)
{
	/* sa_family, then the port: the same offsets in both families. */
	size_t key = offsetof(struct sockaddr_in, sin_port) +
	    sizeof(in_port_t);

	return a->len == b->len && memcmp(&a->ss, &b->ss, key) == 0;
}

/*
 * The first of our running sockets with a's family and port (so a is a
 * wildcard beside a specific address, or the reverse), or nours: they
 * sort together, around where a would be.
 */
static size_t
plan_port_first(const struct plan *p, const struct cfg_addr *a)
{
	size_t lo = 0, hi = p->nours, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (!p->ours[mid]->dgram && cmp_addr(&p->ours[mid]->addr, a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo > 0 && !p->ours[lo - 1]->dgram &&
	    same_port(&p->ours[lo - 1]->addr, a))
		lo--;
	return lo < p->nours && !p->ours[lo]->dgram &&
	    same_port(&p->ours[lo]->addr, a) ? lo : p->nours;
}

/* The first of systemd's sockets named name (they sort together). */
static size_t
plan_find_sd(const struct plan *p, const char *name)
{
	size_t lo = 0, hi = p->nsd, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(p->sd[mid]->sd_name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
plan_take(struct plan *p, struct listen_sock *ls, struct listener *l)
{
	ls->planned = 1;
	p->owner[p->nsocks] = l;
	p->socks[p->nsocks++] = ls;
}

/* The sockets of one listener: systemd's if it passed any, else ours. */
static int
plan_sockets(struct server *srv, struct plan *p,
    const struct cfg_listener *lc, struct listener *l, char *err,
    size_t errlen)
{
	struct listen_sock *ls;
	size_t i = plan_find_sd(p, lc->name);
	char why[256];

	if (i < p->nsd && strcmp(p->sd[i]->sd_name, lc->name) == 0) {
		for (; i < p->nsd && strcmp(p->sd[i]->sd_name, lc->name) == 0;
		    i++) {
			if (p->sd[i]->dgram != lc->udp) {
				snprintf(err, errlen, "socket %s from systemd "
				    "(\"%s\") is a %s socket but the listener's "
				    "transport is %s (%s:%d)", p->sd[i]->addr.text,
				    lc->name, p->sd[i]->dgram ? "datagram" :
				    "stream", lc->udp ? "udp" : "tcp",
				    lc->cfg->path, lc->line);
				return -1;
			}
			plan_take(p, p->sd[i], l);
		}
		return 0;
	}
	for (i = 0; i < lc->naddrs; i++) {
		if ((ls = plan_find_sock(p, &lc->addrs[i], lc->udp)) == NULL &&
		    !lc->udp && plan_port_first(p, &lc->addrs[i]) < p->nours) {
			p->moves[p->nmoves].lc = lc;
			p->moves[p->nmoves].addr = &lc->addrs[i];
			p->moves[p->nmoves++].slot = p->nsocks;
			p->owner[p->nsocks] = l;
			p->socks[p->nsocks++] = NULL;	/* plan_moves() */
			continue;
		}
		if (ls == NULL && systemd_socket_only()) {
			/* No network of our own: the bind would fail with a
			   reason that names no cause. */
			systemd_socket_only_why(lc->name, err, errlen);
			return -1;
		}
		if (ls == NULL) {
			ls = lc->udp ? listen_sock_open_udp(srv, &lc->addrs[i],
			    why, sizeof(why)) : listen_sock_open(srv,
			    &lc->addrs[i], lc->backlog, why, sizeof(why));
			if (ls == NULL) {
				/* Which listener, and where it is set. */
				snprintf(err, errlen, "%s (listener \"%s\", %s:%d)",
				    why, lc->name, lc->cfg->path, lc->line);
				return -1;
			}
			ls->fresh = 1;
			p->fresh[p->nfresh++] = ls;
		}
		plan_take(p, ls, l);
	}
	return 0;
}

static int
plan_listener(struct server *srv, struct plan *p,
    const struct cfg_listener *lc, char *err, size_t errlen)
{
	struct listener *l = plan_find_listener(p, lc->name);

	if (l == NULL) {
		if ((l = listener_new(lc)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->made[p->nmade++] = l;
	}
	p->lcs[p->nlis] = lc;
	p->lis[p->nlis++] = l;
	return plan_sockets(srv, p, lc, l, err, errlen);
}

/* Our sockets on m's port that the plan does not keep, from j on. */
static struct listen_sock *
plan_next_leaving(struct plan *p, const struct plan_move *m, size_t *j)
{
	struct listen_sock *ls;

	for (; *j < p->nours && same_port(&p->ours[*j]->addr, m->addr);
	    (*j)++) {
		ls = p->ours[*j];
		if (!ls->planned && ls->fd != -1) {
			(*j)++;
			return ls;
		}
	}
	return NULL;
}

/*
 * The moves, once every other socket is found: our sockets on the
 * port that the plan does not keep are closed (their queue served).
 * If that fails, plan_abandon() binds the old ones back.
 */
static void
plan_close_port(struct plan *p, const struct plan_move *m)
{
	struct listen_sock *ls;
	size_t j = plan_port_first(p, m->addr);

	while ((ls = plan_next_leaving(p, m, &j)) != NULL) {
		log_info("listener %s: closing %s to listen on %s",
		    listen_sock_owner(ls), ls->addr.text, m->addr->text);
		listen_sock_close(ls);
		p->closed[p->nclosed++] = ls;
	}
}

/*
 * The new address listens beside the old ones before they close, so
 * that no SYN meets the port with nobody listening (a refusal): with
 * SO_REUSEPORT on both sides for that moment, a wildcard and a specific
 * address of one port can.  Then listen_sock_close() sends the old
 * socket's new SYNs past it, to this one.  0, or -1 with every socket
 * as it was (another's socket holds the address, say).
 */
static int
plan_bind_beside(struct plan *p, const struct plan_move *m, int fd)
{
	struct listen_sock *ls;
	size_t j = plan_port_first(p, m->addr);
	char why[256];
	int ok = listener_share_port(fd, 1) == 0;

	while (ok && (ls = plan_next_leaving(p, m, &j)) != NULL)
		ok = listener_share_port(ls->fd, 1) == 0;
	if (ok)
		ok = listener_listen(fd, m->addr, m->lc->backlog, why,
		    sizeof(why)) == 0;
	j = plan_port_first(p, m->addr);
	while ((ls = plan_next_leaving(p, m, &j)) != NULL)
		if (ls->nextra == 0)	/* else its group's (acceptor.c) */
			listener_share_port(ls->fd, 0);
	listener_share_port(fd, 0);
	return ok ? 0 : -1;
}

static int
plan_moves(struct server *srv, struct plan *p, char *err, size_t errlen)
{
	struct plan_move *m;
	struct listen_sock *ls;
	size_t i;
	char why[256];
	int fd, beside;

	for (i = 0; i < p->nmoves; i++) {
		m = &p->moves[i];
		if ((fd = listener_socket(m->addr, why, sizeof(why))) == -1)
			goto fail;
		beside = plan_bind_beside(p, m, fd) == 0;
		plan_close_port(p, m);
		if ((!beside && listener_listen(fd, m->addr, m->lc->backlog,
		    why, sizeof(why)) == -1) || (ls = listen_sock_new(srv, fd,
		    m->addr, m->lc->backlog, NULL, why, sizeof(why))) == NULL) {
			close(fd);
			goto fail;
		}
		ls->fresh = ls->planned = 1;
		p->fresh[p->nfresh++] = ls;
		p->socks[m->slot] = ls;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s (listener \"%s\", %s:%d); binding the "
	    "previous addresses back", why, m->lc->name, m->lc->cfg->path,
	    m->lc->line);
	return -1;
}

/* The running sockets the plan does not serve: parked or closed. */
static void
plan_drop_socks(struct server *srv, struct plan *p,
    struct listen_sock **kept, size_t *nkept)
{
	size_t i, ngone = 0;

	for (i = 0; i < srv->nsocks; i++) {
		struct listen_sock *ls = srv->socks[i];

		if (ls->planned)
			continue;
		if (ls->sd_name != NULL) {
			/* systemd keeps its copy anyway: park ours, so a
			   later reload can serve it again. */
			if (ls->lis != NULL)
				log_warnx("socket %s from systemd (\"%s\") "
				    "has no listener any more: not serving it",
				    ls->addr.text, ls->sd_name);
			if (ls->dgram && ls->lis != NULL)
				worker_udp_park(ls->w, ls->us);
			else if (!ls->dgram && !ls->parked)
				listen_sock_park(ls);
			ls->lis = NULL;
			kept[(*nkept)++] = ls;
		} else {
			log_info("listener %s: closed %s",
			    listen_sock_owner(ls), ls->addr.text);
			p->gone[ngone++] = ls;
		}
	}
	listen_sock_retire(p->gone, ngone);
}

static void
plan_serve_socks(struct server *srv, struct plan *p)
{
	size_t i;

	for (i = 0; i < p->nsocks; i++) {
		struct listen_sock *ls = p->socks[i];
		const struct cfg_listener *lc = listener_config(p->owner[i]);

		if (ls->lis != p->owner[i] || ls->fresh)
			log_info("listener %s (%s): listening on %s%s%s",
			    lc->name, lc->proto->name, ls->addr.text,
			    ls->dgram ? "/udp" : "",
			    ls->sd_name ? " (socket from systemd)" : "");
		ls->lis = p->owner[i];
		ls->planned = ls->fresh = 0;
		if (ls->parked)
			listen_sock_unpark(ls);
		/* Here, not in the plan: a failed reload changes nothing. */
		if (!ls->dgram && ls->sd_name == NULL &&
		    ls->backlog != lc->backlog)
			listen_sock_backlog(ls, lc->backlog);
		/* The new settings, kept socket or not: the worker swaps. */
		if (ls->dgram)
			worker_udp_serve(ls->w, ls->us, lc, srv->guard,
			    listener_udp_rate(p->owner[i]));
		else if (!srv->paused && !srv->stopping)
			listen_sock_enable(ls);
	}
}

/*
 * The UDP guards for the plan: its UDP sockets' ports (systemd's may
 * differ from the config's) and the interfaces' broadcast addresses,
 * read again at each reload as interfaces come and go.
 */
static struct guard *
plan_guard(const struct plan *p)
{
	struct guard *g;
	uint16_t *ports = calloc(p->nsocks + 1, sizeof(*ports));
	uint32_t *bcast = NULL;
	size_t i, n = 0;
	int nb;

	if (ports == NULL)
		return NULL;
	for (i = 0; i < p->nsocks; i++) {
		const struct sockaddr_in *s4;

		/* NULL: a TCP socket still to move (plan_moves). */
		if (p->socks[i] == NULL || !p->socks[i]->dgram)
			continue;
		/* sin_port and sin6_port are at the same offset. */
		s4 = (const void *)&p->socks[i]->addr.ss;
		ports[n++] = ntohs(s4->sin_port);
	}
	if ((nb = guard_local_broadcasts(&bcast)) == -1) {
		log_warn("cannot list the interfaces' broadcast addresses: "
		    "UDP guards know only 255.255.255.255");
		nb = 0;
	}
	g = guard_new(ports, n, bcast, (size_t)nb);
	free(ports);
	free(bcast);
	return g;
}

/* Swaps the plan in: nothing here can fail. */
static void
plan_commit(struct server *srv, struct plan *p, struct cfg *cfg,
    struct guard *g)
{
	struct listen_sock **kept = p->socks;
	size_t i, nkept = p->nsocks;

	/* Workers accept with what this changes: none does meanwhile. */
	acceptor_lock(srv, 1);
	guard_unref(srv->guard);
	srv->guard = g;

	for (i = 0; i < p->nlis; i++)
		listener_set_config(p->lis[i], p->lcs[i]);
	/* First: the serving loop below clears the marks it reads. */
	plan_drop_socks(srv, p, kept, &nkept);
	plan_serve_socks(srv, p);
	/* The server's references to listeners that are gone. */
	for (i = 0; i < p->nold; i++)
		if (!p->old_kept[i])
			listener_unref(p->old[i]);
	free(srv->lis);
	free(srv->socks);
	srv->lis = p->lis;
	srv->nlis = p->nlis;
	srv->socks = kept;
	srv->nsocks = nkept;
	p->lis = NULL;
	p->socks = NULL;
	plan_free(p);
	if (srv->cfg != NULL)
		cfg_unref(srv->cfg);
	srv->cfg = cfg;
	acceptor_lock(srv, 0);
}

/*
 * Makes cfg the running configuration: every listener's sockets found
 * (kept open: no gap) or opened first, and only if all succeed, the
 * swap.  Takes over the reference to cfg on success.
 */
int
plan_apply(struct server *srv, struct cfg *cfg, char *err, size_t errlen)
{
	struct guard *g;
	struct plan p;
	size_t i;

	if (plan_alloc(srv, &p, cfg) == -1) {
		snprintf(err, errlen, "out of memory");
		plan_abandon(&p);
		return -1;
	}
	plan_index(srv, &p);
	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].enabled && plan_listener(srv, &p,
		    &cfg->listeners[i], err, errlen) == -1) {
			plan_abandon(&p);
			return -1;
		}
	/* Before the moves: nothing may fail once a socket has moved. */
	if ((g = plan_guard(&p)) == NULL) {
		snprintf(err, errlen, "out of memory");
		plan_abandon(&p);
		return -1;
	}
	if (plan_moves(srv, &p, err, errlen) == -1) {
		guard_unref(g);
		plan_abandon(&p);
		return -1;
	}
	plan_commit(srv, &p, cfg, g);
	return 0;
}
