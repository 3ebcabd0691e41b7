/*
 * UDP listeners on the workers: see include/udp.h.
 *
 * Threads: udp_bind and udp_sock_new on the main thread; everything
 * else on the thread of the worker that serves the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "guard.h"
#include "listener.h"
#include "log.h"
#include "protocol.h"
#include "stats.h"
#include "udp.h"

struct udp_sock {
	struct udp_sock		*next, *prev;	/* in its home's list */
	struct udp_home		*home;		/* NULL: in none yet */
	struct event		*ev;
	int			 fd;
	int			 watched;
	const struct cfg_listener *lc;		/* NULL: parked */
	struct guard		*guard;
	struct udp_rate		*rate;		/* its listener's; NULL: none */
	int			 pktinfo;	/* a wildcard's family; 0:
						   bound to one address */
};

/* Room for one IP_PKTINFO or IPV6_PKTINFO control message. */
#define EO_UDP_CMSG	CMSG_SPACE(sizeof(struct in6_pktinfo))

/* Buffers for one batch, shared by a worker's sockets. */
struct udp_batch {
	struct mmsghdr		 in[EO_UDP_BATCH];
	struct mmsghdr		 out[EO_UDP_BATCH];
	struct iovec		 iin[EO_UDP_BATCH];
	struct iovec		 iout[EO_UDP_BATCH];
	struct sockaddr_storage	 from[EO_UDP_BATCH];
	/* Where each datagram was sent, and where its reply leaves
	   from (wildcard sockets only). */
	union {
		struct cmsghdr	 align;
		unsigned char	 buf[EO_UDP_CMSG];
	}			 cin[EO_UDP_BATCH], cout[EO_UDP_BATCH];
	unsigned long		 drops[EO_UDP_NDROPS];
	unsigned char		*bin;		/* EO_UDP_BATCH * EO_UDP_MAX */
	unsigned char		*bout;
};

int
udp_bind(const struct cfg_addr *a, char *err, size_t errlen)
{
	int fd, on = 1;

	fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "%s: socket: %s", a->text,
		    strerror(errno));
		return -1;
	}
	/* No IPv4 sources on an IPv6 socket: the guards reject them. */
	if ((a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
		snprintf(err, errlen, "%s/udp: bind: %s", a->text,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A socket bound to a wildcard would answer from whatever address the
 * route back prefers, which a client that sent to another of the
 * host's addresses drops: ask for each datagram's destination, to
 * answer from it.  The family if asked; 0 if not needed (or refused:
 * replies then leave as the route says, logged).
 */
static int
udp_want_pktinfo(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in *s4 = (const void *)&ss;
	const struct sockaddr_in6 *s6 = (const void *)&ss;
	int on = 1, r;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET && s4->sin_addr.s_addr == INADDR_ANY)
		r = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	else if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
		r = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on,
		    sizeof(on));
	else
		return 0;
	if (r == -1) {
		log_warn("UDP socket on a wildcard: cannot learn datagrams' "
		    "destinations; replies leave from the route's address");
		return 0;
	}
	return ss.ss_family;
}

struct udp_sock *
udp_sock_new(int fd)
{
	struct udp_sock *us = calloc(1, sizeof(*us));

	if (us == NULL)
		return NULL;
	us->fd = fd;
	us->pktinfo = udp_want_pktinfo(fd);
	return us;
}

void
udp_home_init(struct udp_home *h, struct event_base *base,
    struct stats *stats)
{
	memset(h, 0, sizeof(*h));
	h->base = base;
	h->stats = stats;
	proto_seed(&h->rng);
}

void
udp_home_fini(struct udp_home *h)
{
	while (h->socks != NULL)
		udp_close(h, h->socks);
	if (h->batch != NULL) {
		free(h->batch->bin);
		free(h->batch->bout);
		free(h->batch);
		h->batch = NULL;
	}
}

static int
udp_batch_alloc(struct udp_home *h)
{
	struct udp_batch *b;

	if (h->batch != NULL)
		return 0;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -1;
	b->bin = malloc((size_t)EO_UDP_BATCH * EO_UDP_MAX);
	b->bout = malloc((size_t)EO_UDP_BATCH * EO_UDP_MAX);
	if (b->bin == NULL || b->bout == NULL) {
		free(b->bin);
		free(b->bout);
		free(b);
		return -1;
	}
	h->batch = b;
	return 0;
}

static int
udp_rate_ok(struct udp_sock *us, const struct sockaddr *sa, uint64_t now)
{
	struct peer_key k;

	if (us->lc->udp_rate == 0 || us->rate == NULL)
		return 1;
	peer_key_from(&k, sa);
	return udp_rate_check(us->rate, &k, sizeof(k), now, us->lc->udp_rate);
}

static uint64_t
udp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Datagrams received into the batch; 0: none waiting; -1: an error,
   counted: try again. */
static int
udp_recv(struct udp_sock *us, struct udp_batch *b)
{
	unsigned i;
	int n;

	for (i = 0; i < EO_UDP_BATCH; i++) {
		struct msghdr *m = &b->in[i].msg_hdr;

		b->iin[i].iov_base = b->bin + (size_t)i * EO_UDP_MAX;
		b->iin[i].iov_len = EO_UDP_MAX;
		memset(m, 0, sizeof(*m));
		m->msg_name = &b->from[i];
		m->msg_namelen = sizeof(b->from[i]);
		m->msg_iov = &b->iin[i];
		m->msg_iovlen = 1;
		if (us->pktinfo) {
			m->msg_control = b->cin[i].buf;
			m->msg_controllen = sizeof(b->cin[i].buf);
		}
	}
	while ((n = recvmmsg(us->fd, b->in, EO_UDP_BATCH, MSG_DONTWAIT,
	    NULL)) == -1 && errno == EINTR)
		;
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	/* An ICMP error for an earlier reply (ECONNREFUSED and the like):
	   it concerns that reply's destination, not this socket. */
	b->drops[EO_UDP_ICMP]++;
	return -1;
}

/* Whether datagram i may be answered; counts why not. */
static int
udp_admit(struct udp_sock *us, struct udp_batch *b, unsigned i,
    uint64_t now)
{
	const struct sockaddr *sa = (const struct sockaddr *)&b->from[i];
	enum guard_verdict v;

	if (b->in[i].msg_hdr.msg_flags & MSG_TRUNC) {
		b->drops[EO_UDP_TRUNCATED]++;
		return 0;
	}
	if (!cfg_listener_admits(us->lc, sa)) {
		b->drops[EO_UDP_DENIED]++;
		return 0;
	}
	if ((v = guard_check(us->guard, sa)) != EO_GUARD_OK) {
		b->drops[v - 1]++;
		return 0;
	}
	if (!udp_rate_ok(us, sa, now)) {
		b->drops[EO_UDP_RATE]++;
		return 0;
	}
	return 1;
}

/*
 * Writes one control message at r: the msg_controllen for it alone.
 * Its length without the trailing padding: sendmsg() copies up to 36
 * bytes of control on the stack and allocates beyond, which an IPv6
 * one padded (40) would cost on every reply.
 */
static size_t
udp_cmsg_put(struct cmsghdr *r, int level, int type, const void *data,
    size_t len)
{
	r->cmsg_len = CMSG_LEN(len);
	r->cmsg_level = level;
	r->cmsg_type = type;
	memcpy(CMSG_DATA(r), data, len);
	return CMSG_LEN(len);
}

/*
 * The control message that makes reply k leave from the address
 * datagram i was sent to: IPv4's local address of the datagram (an
 * interface's own when it was sent to a broadcast), IPv6's destination
 * with its interface if link-local (the scope needs it).  Without
 * one, the kernel picks the source address as the route says.
 */
static void
udp_reply_from(struct udp_batch *b, unsigned i, unsigned k)
{
	struct msghdr *in = &b->in[i].msg_hdr, *out = &b->out[k].msg_hdr;
	struct cmsghdr *c, *r = (struct cmsghdr *)(void *)b->cout[k].buf;
	struct in_pktinfo p4;
	struct in6_pktinfo p6;

	for (c = CMSG_FIRSTHDR(in); c != NULL; c = CMSG_NXTHDR(in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&p4, CMSG_DATA(c), sizeof(p4));
			p4.ipi_ifindex = 0;
			p4.ipi_addr.s_addr = INADDR_ANY;
			out->msg_controllen = udp_cmsg_put(r, IPPROTO_IP,
			    IP_PKTINFO, &p4, sizeof(p4));
		} else if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&p6, CMSG_DATA(c), sizeof(p6));
			if (IN6_IS_ADDR_MULTICAST(&p6.ipi6_addr))
				p6.ipi6_addr = in6addr_any;
			if (!IN6_IS_ADDR_LINKLOCAL(&p6.ipi6_addr))
				p6.ipi6_ifindex = 0;
			out->msg_controllen = udp_cmsg_put(r, IPPROTO_IPV6,
			    IPV6_PKTINFO, &p6, sizeof(p6));
		} else
			continue;
		out->msg_control = r;
		return;
	}
}

/* The largest reply the source's family can carry: a datagram of
   65,508 to 65,527 bytes fits IPv6, not IPv4. */
static size_t
udp_reply_max(const struct sockaddr_storage *to)
{
	return to->ss_family == AF_INET6 ? EO_UDP6_REPLY_MAX :
	    EO_UDP_REPLY_MAX;
}

/* The replies to n datagrams, into the out half: their number. */
static unsigned
udp_answer(struct udp_sock *us, struct udp_home *h, struct udp_batch *b,
    unsigned n)
{
	const struct protocol *p = us->lc->proto;
	uint64_t now = udp_now_us();
	unsigned i, k = 0;
	size_t len;

	for (i = 0; i < n; i++) {
		unsigned char *out = b->bout + (size_t)k * EO_UDP_MAX;

		if (!udp_admit(us, b, i, now))
			continue;
		len = p->dgram(us->lc->popts, b->iin[i].iov_base,
		    b->in[i].msg_len, out, udp_reply_max(&b->from[i]),
		    &h->rng);
		if (len == 0)
			continue;
		b->iout[k].iov_base = out;
		b->iout[k].iov_len = len;
		memset(&b->out[k].msg_hdr, 0, sizeof(b->out[k].msg_hdr));
		b->out[k].msg_hdr.msg_name = &b->from[i];
		b->out[k].msg_hdr.msg_namelen = b->in[i].msg_hdr.msg_namelen;
		b->out[k].msg_hdr.msg_iov = &b->iout[k];
		b->out[k].msg_hdr.msg_iovlen = 1;
		if (us->pktinfo)
			udp_reply_from(b, i, k);
		k++;
	}
	return k;
}

/* Sends n replies: what the socket refuses is counted, not retried. */
static unsigned
udp_send(struct udp_sock *us, struct udp_batch *b, unsigned n)
{
	unsigned k = 0, sent = 0;
	int r;

	while (k < n) {
		r = sendmmsg(us->fd, b->out + k, n - k, MSG_DONTWAIT);
		if (r > 0) {
			k += (unsigned)r;
			sent += (unsigned)r;
		} else if (r == -1 && errno == EINTR)
			continue;
		else if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ENOBUFS)) {
			b->drops[EO_UDP_SEND_FULL] += n - k;
			break;
		} else {
			b->drops[EO_UDP_SEND_ERROR]++;
			k++;		/* that one's destination: skip it */
		}
	}
	return sent;
}

static void
udp_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_sock *us = arg;
	struct udp_home *h = us->home;
	struct udp_batch *b = h->batch;
	unsigned long in = 0, out = 0;
	int round, n, i;

	(void)fd;
	(void)what;
	for (round = 0; round < EO_UDP_ROUNDS; round++) {
		if ((n = udp_recv(us, b)) == -1)
			continue;
		if (n == 0)
			break;
		in += (unsigned)n;
		out += udp_send(us, b, udp_answer(us, h, b, (unsigned)n));
		if (n < EO_UDP_BATCH)
			break;		/* drained: no need to ask again */
	}
	stats_add(&h->stats->udp_in, in);
	stats_add(&h->stats->udp_out, out);
	for (i = 0; i < EO_UDP_NDROPS; i++) {
		if (b->drops[i] == 0)
			continue;
		stats_add(&h->stats->udp_dropped[i], b->drops[i]);
		b->drops[i] = 0;
	}
}

static void
udp_drop_refs(struct udp_sock *us)
{
	if (us->lc != NULL)
		cfg_unref(us->lc->cfg);
	guard_unref(us->guard);
	udp_rate_unref(us->rate);
	us->lc = NULL;
	us->guard = NULL;
	us->rate = NULL;
}

static void
udp_link(struct udp_home *h, struct udp_sock *us)
{
	us->home = h;
	us->prev = NULL;
	if ((us->next = h->socks) != NULL)
		h->socks->prev = us;
	h->socks = us;
}

void
udp_serve(struct udp_home *h, struct udp_sock *us,
    const struct cfg_listener *lc, struct guard *g, struct udp_rate *rate)
{
	if (us->home == NULL)
		udp_link(h, us);
	udp_drop_refs(us);
	us->lc = lc;
	us->guard = g;
	us->rate = rate;
	if (us->ev == NULL)
		us->ev = event_new(h->base, us->fd, EV_READ | EV_PERSIST,
		    udp_readcb, us);
	/* No table for a limit: its listener ran out of memory. */
	if (udp_batch_alloc(h) == -1 || (lc->udp_rate != 0 && rate == NULL) ||
	    us->ev == NULL || (!us->watched && event_add(us->ev, NULL) == -1)) {
		log_warnx("listener %s: out of memory: not serving its UDP "
		    "socket", lc->name);
		udp_park(us);
		return;
	}
	us->watched = 1;
}

void
udp_park(struct udp_sock *us)
{
	if (us->watched)
		event_del(us->ev);
	us->watched = 0;
	udp_drop_refs(us);
}

void
udp_close(struct udp_home *h, struct udp_sock *us)
{
	udp_park(us);
	if (us->home != NULL) {
		if (us->prev != NULL)
			us->prev->next = us->next;
		else
			h->socks = us->next;
		if (us->next != NULL)
			us->next->prev = us->prev;
	}
	if (us->ev != NULL)
		event_free(us->ev);
	close(us->fd);
	free(us);
}
