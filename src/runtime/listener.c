/*
 * Listeners at run time and listening sockets: see include/listener.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "protocol.h"
#include "stats.h"
#include "udp_rate.h"

#define SRC_BUCKETS	1024	/* per-source table; chains grow past it */

/* Connections from one client address. */
struct src_entry {
	struct src_entry	*next;
	struct peer_key		 key;
	unsigned		 count;
};

struct listener {
	atomic_uint		 refs;
	atomic_uint		 nconns;	/* open, this listener */
	char			 name[EO_NAME_MAX + 1];
	const struct cfg_listener *lc;		/* main thread only */

	pthread_mutex_t		 src_mtx;	/* guards src */
	struct src_entry	**src;		/* NULL until first needed */
	struct stats_lis	*stats;		/* per thread: stats.h */
	struct udp_rate		*udp_rate;	/* NULL until first needed */
};

struct listener *
listener_new(const struct cfg_listener *lc)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	if ((l->stats = stats_lis_new()) == NULL) {
		free(l);
		return NULL;
	}
	atomic_init(&l->refs, 1);
	atomic_init(&l->nconns, 0);
	snprintf(l->name, sizeof(l->name), "%s", lc->name);
	l->lc = lc;
	pthread_mutex_init(&l->src_mtx, NULL);
	return l;
}

void
listener_set_config(struct listener *l, const struct cfg_listener *lc)
{
	l->lc = lc;
}

struct stats_lis *
listener_stats(const struct listener *l)
{
	return l->stats;
}

const struct cfg_listener *
listener_config(const struct listener *l)
{
	return l->lc;
}

const char *
listener_name(const struct listener *l)
{
	return l->name;
}

unsigned
listener_nconns(const struct listener *l)
{
	return atomic_load_explicit(&l->nconns, memory_order_relaxed);
}

void
listener_ref(struct listener *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

void
listener_unref(struct listener *l)
{
	size_t i;

	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (l->src != NULL) {
		for (i = 0; i < SRC_BUCKETS; i++)
			while (l->src[i] != NULL) {
				struct src_entry *e = l->src[i];

				l->src[i] = e->next;
				free(e);
			}
		free(l->src);
	}
	pthread_mutex_destroy(&l->src_mtx);
	udp_rate_unref(l->udp_rate);
	stats_lis_free(l->stats);
	free(l);
}

struct udp_rate *
listener_udp_rate(struct listener *l)
{
	const struct cfg_listener *lc = l->lc;
	struct udp_rate *t;
	uint64_t seed;

	if (!lc->udp || lc->udp_rate == 0)
		return NULL;
	if (l->udp_rate != NULL && udp_rate_width(l->udp_rate) ==
	    lc->udp_rate_table)
		return l->udp_rate;
	proto_seed(&seed);
	if ((t = udp_rate_new(lc->udp_rate_table, seed)) == NULL)
		return l->udp_rate;
	udp_rate_unref(l->udp_rate);
	l->udp_rate = t;
	return t;
}

static size_t
src_hash(const struct peer_key *k)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	size_t i, n = k->family == AF_INET ? 4 : 16;

	for (i = 0; i < n; i++)
		h = (h ^ k->addr[i]) * 1099511628211ULL;
	return (size_t)(h % SRC_BUCKETS);
}

static int
src_same(const struct peer_key *a, const struct peer_key *b)
{
	return a->family == b->family &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* Counts one more connection from k if under max; 0 or -1 (full). */
static int
src_take(struct listener *l, const struct peer_key *k, unsigned max)
{
	struct src_entry *e, **bucket;
	int r = 0;

	pthread_mutex_lock(&l->src_mtx);
	if (l->src == NULL &&
	    (l->src = calloc(SRC_BUCKETS, sizeof(*l->src))) == NULL) {
		r = -1;
		goto out;
	}
	bucket = &l->src[src_hash(k)];
	for (e = *bucket; e != NULL; e = e->next)
		if (src_same(&e->key, k))
			break;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			r = -1;
			goto out;
		}
		e->key = *k;
		e->next = *bucket;
		*bucket = e;
	}
	if (e->count >= max)
		r = -1;
	else
		e->count++;
out:
	pthread_mutex_unlock(&l->src_mtx);
	return r;
}

static void
src_give(struct listener *l, const struct peer_key *k)
{
	struct src_entry *e, **pp;

	pthread_mutex_lock(&l->src_mtx);
	if (l->src != NULL)
		for (pp = &l->src[src_hash(k)]; (e = *pp) != NULL;
		    pp = &e->next)
			if (src_same(&e->key, k)) {
				if (--e->count == 0) {
					*pp = e->next;
					free(e);
				}
				break;
			}
	pthread_mutex_unlock(&l->src_mtx);
}

enum listener_admit
listener_admit(struct listener *l, const struct peer_key *peer,
    int *per_source)
{
	const struct cfg_listener *lc = l->lc;

	unsigned n = listener_nconns(l);

	*per_source = 0;
	/* Workers admit at once: the place is taken in the same step as
	   it is found free. */
	do {
		if (lc->max_conns != 0 && n >= lc->max_conns)
			return EO_ADMIT_LISTENER_FULL;
	} while (!atomic_compare_exchange_weak_explicit(&l->nconns, &n,
	    n + 1, memory_order_relaxed, memory_order_relaxed));
	if (lc->max_per_source != 0 && peer->family != 0) {
		if (src_take(l, peer, lc->max_per_source) == -1) {
			atomic_fetch_sub_explicit(&l->nconns, 1,
			    memory_order_relaxed);
			return EO_ADMIT_SOURCE_FULL;
		}
		*per_source = 1;
	}
	listener_ref(l);
	return EO_ADMIT_OK;
}

int
listener_admit_source(struct listener *l, const struct peer_key *peer,
    unsigned max)
{
	return src_take(l, peer, max);
}

void
listener_release(struct listener *l, const struct peer_key *peer,
    int per_source)
{
	if (per_source)
		src_give(l, peer);
	atomic_fetch_sub_explicit(&l->nconns, 1, memory_order_relaxed);
	listener_unref(l);
}

static int
listener_fail(const char *what, const struct cfg_addr *a, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s %s: %s", what, a->text, strerror(errno));
	return -1;
}

int
listener_socket(const struct cfg_addr *a, char *err, size_t errlen)
{
	int fd, on = 1;
	const char *what;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return listener_fail("socket", a, err, errlen);
	/* Restart at once, without waiting out TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1) {
		what = "setsockopt SO_REUSEADDR";
		goto fail;
	}
	/* [::] means IPv6 only: 0.0.0.0 on the same port is separate. */
	if (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1) {
		what = "setsockopt IPV6_V6ONLY";
		goto fail;
	}
	return fd;
fail:
	listener_fail(what, a, err, errlen);
	close(fd);
	return -1;
}

int
listener_listen(int fd, const struct cfg_addr *a, int backlog, char *err,
    size_t errlen)
{
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
		return listener_fail("bind", a, err, errlen);
	if (listen(fd, backlog) == -1)
		return listener_fail("listen", a, err, errlen);
	return 0;
}

int
listener_share_port(int fd, int on)
{
	return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
}

int
listener_steer(int fd, unsigned n)
{
	/* A at random (prandom_u32), modulo n, is the group's index. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM)),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog;

	if (n == 0) {
		errno = EINVAL;
		return -1;
	}
	/* Its padding too: the kernel copies the whole struct. */
	memset(&prog, 0, sizeof(prog));
	prog.len = sizeof(code) / sizeof(code[0]);
	prog.filter = code;
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog));
}

int
listener_bind(const struct cfg_addr *a, int backlog, char *err, size_t errlen)
{
	int fd;

	if ((fd = listener_socket(a, err, errlen)) == -1)
		return -1;
	if (listener_listen(fd, a, backlog, err, errlen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}
