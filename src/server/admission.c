/*
 * Admission: every rule that decides whether one accepted client is
 * served and by which worker, and the counters and notes of a refusal.
 * Any accepting thread runs it (acceptor.c), under srv->acc_mtx where
 * acceptor_admit() says so; it reads what the main thread changes only
 * under every worker's accept lock (acceptor_lock()).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "protocol.h"
#include "server_internal.h"
#include "stats.h"
#include "worker.h"

const char *
listen_sock_owner(const struct listen_sock *ls)
{
	return ls->lis != NULL ? listener_name(ls->lis) : "?";
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
void
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
void
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

/*
 * HTTP (metrics) is served on this thread, admitted and counted as
 * every listener's.  Over max_connections with evict_after set, where
 * another listener's newcomer would evict a quiet connection, a scrape
 * is served all the same: the quiet ones are the workers', and a full
 * daemon is when its metrics are wanted most.  It is short (at most
 * EO_METRICS_TIMEOUT) and bounded by its listener's own limits.
 */
void
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
    struct worker *self, int own, struct conn_handoff *ho,
    struct worker **to)
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
		/* Counted before the hand-off: the next pick sees it.  From
		   its own socket, the kernel placed it (acceptor.c). */
		*to = own ? self : acceptor_pick(srv);
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
int
acceptor_admit(struct listen_sock *ls, struct worker *self, int own, int fd,
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
	ho->port = peer_port(sa);
	if (acceptor_screen(srv, ls, self, fd, lc, sa) == -1 ||
	    acceptor_over_max(srv, ls, self, open, ho) == -1)
		return -1;
	return acceptor_admit_lis(srv, ls, self, own, ho, to);
}

