/*
 * The hand-over's state format: see include/handover.h.
 *
 * Integers are written byte by byte, little-endian, so that the format
 * does not depend on the compiler's struct layout: a new binary built
 * differently reads what the old one wrote, or refuses it by version.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handover.h"

#define EO_HO_MAGIC_LEN	8
/* A record's fixed part: generous, only a plausibility bound. */
#define EO_HO_REC_MAX	(64u << 20)

void
ho_buf_free(struct ho_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int
ho_buf_add(struct ho_buf *b, const void *p, size_t n)
{
	if (b->failed)
		return -1;
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *d;

		while (cap - b->len < n)
			cap *= 2;
		if ((d = realloc(b->data, cap)) == NULL) {
			b->failed = 1;
			return -1;
		}
		b->data = d;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static int
put_le(struct ho_buf *b, uint64_t v, unsigned n)
{
	unsigned char p[8];
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return ho_buf_add(b, p, n);
}

static int
put_str(struct ho_buf *b, const char *s)
{
	size_t n = strlen(s);

	return put_le(b, n, 1) == -1 ? -1 : ho_buf_add(b, s, n);
}

static int
put_bytes(struct ho_buf *b, const unsigned char *p, uint32_t n)
{
	return put_le(b, n, 4) == -1 ? -1 : ho_buf_add(b, p, n);
}

static int
put_addr(struct ho_buf *b, const struct ho_addr *a)
{
	put_le(b, a->family, 1);
	ho_buf_add(b, a->addr, sizeof(a->addr));
	return put_le(b, a->port, 2);
}

int
ho_put_header(struct ho_buf *b, uint32_t nconns)
{
	ho_buf_add(b, EO_HO_MAGIC, EO_HO_MAGIC_LEN);
	put_le(b, EO_HO_VERSION, 4);
	return put_le(b, nconns, 4);
}

/* The record's body, after its length; errors stick in b->failed. */
static void
put_conn_body(struct ho_buf *b, const struct ho_conn *c)
{
	put_str(b, c->listener);
	put_str(b, c->proto);
	put_addr(b, &c->local);
	put_addr(b, &c->peer);
	put_le(b, c->client.family, 1);
	ho_buf_add(b, c->client.addr, sizeof(c->client.addr));
	put_le(b, c->client_port, 2);
	put_le(b, c->state, 1);
	put_le(b, c->flags, 1);
	put_le(b, c->in, 8);
	put_le(b, c->out, 8);
	put_le(b, c->acked, 4);
	put_le(b, c->age_start, 4);
	put_le(b, c->age_progress, 4);
	put_le(b, c->age_out, 4);
	put_le(b, (uint32_t)c->unit_in, 4);
	put_le(b, c->pstate_version, 4);
	put_bytes(b, c->pstate, c->pstate_len);
	put_bytes(b, c->held, c->held_len);
	put_bytes(b, c->queued, c->queued_len);
}

int
ho_put_conn(struct ho_buf *b, const struct ho_conn *c)
{
	size_t at = b->len, n;

	/* The length is known once the body is written: patched in. */
	if (put_le(b, 0, 4) == -1)
		return -1;
	put_conn_body(b, c);
	if (b->failed)
		return -1;
	n = b->len - at - 4;
	b->data[at] = (unsigned char)n;
	b->data[at + 1] = (unsigned char)(n >> 8);
	b->data[at + 2] = (unsigned char)(n >> 16);
	b->data[at + 3] = (unsigned char)(n >> 24);
	return 0;
}

/* ---- reading ------------------------------------------------------ */

static int
get_le(struct ho_reader *r, uint64_t *v, unsigned n)
{
	unsigned i;

	if (r->len - r->off < n)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++)
		*v |= (uint64_t)r->data[r->off + i] << (8 * i);
	r->off += n;
	return 0;
}

static int
get_raw(struct ho_reader *r, void *p, size_t n)
{
	if (r->len - r->off < n)
		return -1;
	memcpy(p, r->data + r->off, n);
	r->off += n;
	return 0;
}

/* A string of at most max bytes into s (max + 1 of room). */
static int
get_str(struct ho_reader *r, char *s, size_t max)
{
	uint64_t n;

	if (get_le(r, &n, 1) == -1 || n > max || get_raw(r, s, n) == -1)
		return -1;
	s[n] = '\0';
	return memchr(s, '\0', n) == NULL ? 0 : -1;
}

static int
get_bytes(struct ho_reader *r, const unsigned char **p, uint32_t *len)
{
	uint64_t n;

	if (get_le(r, &n, 4) == -1 || r->len - r->off < n)
		return -1;
	*p = r->data + r->off;
	*len = (uint32_t)n;
	r->off += n;
	return 0;
}

static int
get_addr(struct ho_reader *r, struct ho_addr *a)
{
	uint64_t fam, port;

	if (get_le(r, &fam, 1) == -1 ||
	    get_raw(r, a->addr, sizeof(a->addr)) == -1 ||
	    get_le(r, &port, 2) == -1 ||
	    (fam != AF_INET && fam != AF_INET6))
		return -1;
	a->family = (uint8_t)fam;
	a->port = (uint16_t)port;
	return 0;
}

long
ho_read_header(struct ho_reader *r, const void *data, size_t len,
    char *err, size_t errlen)
{
	char magic[EO_HO_MAGIC_LEN];
	uint64_t version = 0, n;

	r->data = data;
	r->len = len;
	r->off = 0;
	if (get_raw(r, magic, sizeof(magic)) == -1 ||
	    memcmp(magic, EO_HO_MAGIC, sizeof(magic)) != 0) {
		snprintf(err, errlen, "not a saved state (bad magic)");
		return -1;
	}
	if (get_le(r, &version, 4) == -1 || version != EO_HO_VERSION) {
		snprintf(err, errlen, "state format version %llu, this "
		    "binary reads version %d", (unsigned long long)version,
		    EO_HO_VERSION);
		return -1;
	}
	if (get_le(r, &n, 4) == -1) {
		snprintf(err, errlen, "truncated header");
		return -1;
	}
	return (long)n;
}

/* The record's fields, in the order put_conn_body() writes them. */
static int
get_conn_body(struct ho_reader *r, struct ho_conn *c)
{
	uint64_t v[13];

	if (get_str(r, c->listener, EO_NAME_MAX) == -1 ||
	    get_str(r, c->proto, EO_HO_PROTO_MAX) == -1 ||
	    get_addr(r, &c->local) == -1 || get_addr(r, &c->peer) == -1 ||
	    get_le(r, &v[0], 1) == -1 ||
	    get_raw(r, c->client.addr, sizeof(c->client.addr)) == -1 ||
	    get_le(r, &v[1], 2) == -1 || get_le(r, &v[2], 1) == -1 ||
	    get_le(r, &v[3], 1) == -1 || get_le(r, &v[4], 8) == -1 ||
	    get_le(r, &v[5], 8) == -1 || get_le(r, &v[6], 4) == -1 ||
	    get_le(r, &v[7], 4) == -1 || get_le(r, &v[8], 4) == -1 ||
	    get_le(r, &v[9], 4) == -1 || get_le(r, &v[10], 4) == -1 ||
	    get_le(r, &v[11], 4) == -1 ||
	    get_bytes(r, &c->pstate, &c->pstate_len) == -1 ||
	    get_bytes(r, &c->held, &c->held_len) == -1 ||
	    get_bytes(r, &c->queued, &c->queued_len) == -1)
		return -1;
	if (v[0] != 0 && v[0] != AF_INET && v[0] != AF_INET6)
		return -1;
	c->client.family = (uint8_t)v[0];
	c->client_port = (uint16_t)v[1];
	c->state = (uint8_t)v[2];
	c->flags = (uint8_t)v[3];
	c->in = v[4];
	c->out = v[5];
	c->acked = (uint32_t)v[6];
	c->age_start = (uint32_t)v[7];
	c->age_progress = (uint32_t)v[8];
	c->age_out = (uint32_t)v[9];
	c->unit_in = (int32_t)(uint32_t)v[10];
	c->pstate_version = (uint32_t)v[11];
	return 0;
}

int
ho_read_conn(struct ho_reader *r, struct ho_conn *c, char *err,
    size_t errlen)
{
	struct ho_reader rec;
	uint64_t n;

	memset(c, 0, sizeof(*c));
	if (get_le(r, &n, 4) == -1 || n > EO_HO_REC_MAX ||
	    r->len - r->off < n) {
		snprintf(err, errlen, "truncated record at byte %zu", r->off);
		return -1;
	}
	/* The record is read on its own: a field cannot run past it. */
	rec.data = r->data + r->off;
	rec.len = n;
	rec.off = 0;
	if (get_conn_body(&rec, c) == -1 || rec.off != rec.len) {
		snprintf(err, errlen, "corrupted record at byte %zu", r->off);
		return -1;
	}
	r->off += n;
	return 0;
}

long
ho_parse(const void *data, size_t len, struct ho_conn **out, char *err,
    size_t errlen)
{
	struct ho_reader r;
	long i, n = ho_read_header(&r, data, len, err, errlen);

	*out = NULL;
	if (n < 0)
		return -1;
	/* Each record takes more than 16 bytes: a bound before calloc. */
	if ((size_t)n > len / 16) {
		snprintf(err, errlen, "%ld records cannot fit in %zu bytes",
		    n, len);
		return -1;
	}
	if (n > 0 && (*out = calloc((size_t)n, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (ho_read_conn(&r, &(*out)[i], err, errlen) == -1)
			goto fail;
	if (r.off != r.len) {
		snprintf(err, errlen, "%zu bytes after the last record",
		    r.len - r.off);
		goto fail;
	}
	return n;
fail:
	free(*out);
	*out = NULL;
	return -1;
}

struct ho_conn *
ho_conn_dup(const struct ho_conn *c)
{
	size_t n = (size_t)c->pstate_len + c->held_len + c->queued_len;
	struct ho_conn *d = malloc(sizeof(*d) + n);
	unsigned char *p;

	if (d == NULL)
		return NULL;
	*d = *c;
	p = (unsigned char *)(d + 1);
	d->pstate = p;
	if (c->pstate_len > 0)
		memcpy(p, c->pstate, c->pstate_len);
	p += c->pstate_len;
	d->held = p;
	if (c->held_len > 0)
		memcpy(p, c->held, c->held_len);
	p += c->held_len;
	d->queued = p;
	if (c->queued_len > 0)
		memcpy(p, c->queued, c->queued_len);
	return d;
}

/* ---- sockets ------------------------------------------------------ */

int
ho_addr_from(struct ho_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;

		memcpy(a->addr, &s->sin_addr, 4);
		a->port = ntohs(s->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;

		memcpy(a->addr, &s->sin6_addr, 16);
		a->port = ntohs(s->sin6_port);
	} else
		return -1;
	a->family = (uint8_t)sa->sa_family;
	return 0;
}

int
ho_addr_equal(const struct ho_addr *a, const struct ho_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

int
ho_sock_ends(int fd, struct ho_addr *local, struct ho_addr *peer)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    ho_addr_from(local, (struct sockaddr *)&ss) == -1)
		return -1;
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    ho_addr_from(peer, (struct sockaddr *)&ss) == -1)
		return -1;
	return 0;
}

int
ho_job_is_restart(const char *job_type)
{
	static const char *const restarts[] = {
		"restart", "try-restart", "reload-or-restart",
		"try-reload-or-restart", NULL
	};
	size_t i;

	for (i = 0; job_type != NULL && restarts[i] != NULL; i++)
		if (strcmp(job_type, restarts[i]) == 0)
			return 1;
	return 0;
}

/* ---- descriptors in flight ---------------------------------------- */

union ho_cmsg {
	struct cmsghdr	hdr;
	char		buf[CMSG_SPACE(EO_HO_FD_BATCH * sizeof(int))];
};

/* A message of the one byte at tag, with room for control data in u. */
static void
ho_msg_init(struct msghdr *msg, struct iovec *iov, char *tag,
    union ho_cmsg *u, size_t controllen)
{
	memset(msg, 0, sizeof(*msg));
	memset(u, 0, sizeof(*u));
	iov->iov_base = tag;
	iov->iov_len = 1;
	msg->msg_iov = iov;
	msg->msg_iovlen = 1;
	msg->msg_control = u->buf;
	msg->msg_controllen = controllen;
}

int
ho_send_fds(int sock, char tag, const int *fds, size_t n)
{
	union ho_cmsg u;
	struct cmsghdr *cm;
	struct msghdr msg;
	struct iovec iov;
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = n - i < EO_HO_FD_BATCH ? n - i : EO_HO_FD_BATCH;
		ho_msg_init(&msg, &iov, &tag, &u, CMSG_SPACE(k * sizeof(int)));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(cm), fds + i, k * sizeof(int));
		/* Nobody may read until another process: never block. */
		if (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
			return -1;
	}
	return 0;
}

long
ho_recv_fds(int sock, char *tag, int *fds, size_t max)
{
	union ho_cmsg u;
	struct cmsghdr *cm;
	struct msghdr msg;
	struct iovec iov;
	size_t i, k, n = 0;
	int fd;

	/* A stream socket stops at each message that carries descriptors:
	   one call, one message. */
	ho_msg_init(&msg, &iov, tag, &u, sizeof(u.buf));
	if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return (long)n;
}
