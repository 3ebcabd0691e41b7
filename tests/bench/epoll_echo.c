/*
 * epoll_echo - the "practical limit" reference for echo-oracled.
 *
 * A plain echo server with nothing in it but what echoing needs, to
 * show what this machine can do.  Design, and why:
 *
 * - One thread per worker, each with its own epoll set and its own
 *   SO_REUSEPORT listener.  The kernel spreads new connections over the
 *   listeners, so no lock, no hand-off queue and no cross-thread wakeup
 *   sits on any path; with -t 1 it is a single-threaded event loop.
 *   The cost is a hash-based (not load-based) spread, which over tens
 *   of connections is even enough.
 *
 * - Level-triggered.  One read of up to 64 KiB per readiness report,
 *   then straight back out: a busy connection cannot starve the others
 *   and there is no drain-until-EAGAIN read that finds nothing.
 *
 * - Correct under backpressure: what the socket does not take is kept
 *   for that connection, and the connection is watched for EPOLLOUT
 *   only (not EPOLLIN) until it drains.  So every byte is echoed, in
 *   order, and memory per connection is bounded by one read.
 *
 * - -C (chargen, RFC 864): the 95 lines of one cycle are made once, with
 *   one read's worth of the next cycle after them, so any position in
 *   the stream starts a contiguous 64 KiB slice: one send() per EPOLLOUT
 *   report, no formatting, no copy, no per-connection buffer.  Each
 *   connection keeps only its position in the cycle.  Level-triggered
 *   EPOLLOUT fires while the socket has room, so the client's reading
 *   paces it; what the client sends is read and dropped.
 *
 * - -1: one listening socket for all threads instead, each thread's
 *   epoll set watching it with EPOLLEXCLUSIVE (one waiter woken per
 *   client), as the daemon's workers share theirs: beside the default,
 *   what sharing one socket costs, apart from anything of the daemon's.
 *
 * Stops on SIGTERM or SIGINT (default action: the kernel closes all).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* accept4, SO_REUSEPORT, IN6 macros */
#endif

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE	(64 * 1024)
#define MAX_THREADS	64
#define ACCEPT_BURST	64	/* accepts per listener wakeup */

#define CG_CHARS	95	/* ' ' to '~' */
#define CG_WIDTH	72	/* characters in a line */
#define CG_LINE		(CG_WIDTH + 2)
#define CG_CYCLE	(CG_CHARS * CG_LINE)

/*
 * Unwritten echo of one connection; the array is indexed by fd.  With
 * -C, off is the connection's position in the chargen cycle.
 */
struct pending {
	unsigned char	*buf;
	size_t		 len, off;
};

struct worker {
	pthread_t	 thread;
	int		 ep;
	int		 lfd;
	int		 spare;		/* reserve fd for EMFILE */
	unsigned char	*buf;
};

static struct pending *pend;
static size_t npend;
static int discard;		/* -D: read and drop, as RFC 863 */
static int chargen;		/* -C: RFC 864's lines, input dropped */
static int one_lfd = -1;	/* -1: the listener all threads share */
static unsigned char *cg_stream;	/* a cycle, then BUF_SIZE more */
static struct sockaddr_storage bind_addr;
static socklen_t bind_len;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: epoll_echo [-1] [-C | -D] [-p port] [-b address] "
	    "[-t threads]\n"
	    "  -1          one listening socket shared by all threads, each\n"
	    "              watching it with EPOLLEXCLUSIVE (as the daemon)\n"
	    "  -C          chargen (RFC 864): send its 72-character lines as\n"
	    "              fast as the client reads; input is dropped\n"
	    "  -D          discard (RFC 863): read and drop, send nothing\n"
	    "  -p port     TCP port (default 17021)\n"
	    "  -b address  bind address, loopback only: 127.0.0.0/8 or ::1\n"
	    "              (default 127.0.0.1)\n"
	    "  -t threads  worker threads, each with its own SO_REUSEPORT\n"
	    "              listener and epoll set (default 1)\n"
	    "  -h          this text\n"
	    "Without -C or -D, echoes every byte back, in order.\n"
	    "Stops on SIGTERM or SIGINT.\n");
}

static void
die(const char *what)
{
	fprintf(stderr, "epoll_echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
parse_bind(const char *s, unsigned port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&bind_addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&bind_addr;

	memset(&bind_addr, 0, sizeof(bind_addr));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			goto notloop;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		bind_len = sizeof(*sin);
		return;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			goto notloop;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		bind_len = sizeof(*sin6);
		return;
	}
	fprintf(stderr, "epoll_echo: not a numeric address: %s\n", s);
	exit(1);
notloop:
	fprintf(stderr, "epoll_echo: %s is not a loopback address; "
	    "refusing to listen off this machine\n", s);
	exit(1);
}

static int
make_listener(void)
{
	int fd, one = 1;

	fd = socket(bind_addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		die("setsockopt");
	if (bind(fd, (struct sockaddr *)&bind_addr, bind_len) == -1)
		die("bind");
	/* The kernel caps this at net.core.somaxconn. */
	if (listen(fd, 65535) == -1)
		die("listen");
	return fd;
}

static void
conn_close(int fd)
{
	free(pend[fd].buf);
	pend[fd].buf = NULL;
	pend[fd].len = pend[fd].off = 0;
	close(fd);		/* also leaves the epoll set */
}

static void
watch(struct worker *w, int fd, int op, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.fd = fd;
	if (epoll_ctl(w->ep, op, fd, &ev) == -1)
		die("epoll_ctl");
}

/*
 * Out of descriptors: the pending connection would keep the listener
 * readable forever.  Give up the spare descriptor, take the connection
 * and close it at once, so the client learns and the loop goes on.
 */
static void
shed_one(struct worker *w)
{
	int fd;

	if (w->spare != -1)
		close(w->spare);
	fd = accept(w->lfd, NULL, NULL);
	if (fd != -1)
		close(fd);
	w->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
accept_some(struct worker *w)
{
	int fd, i, one = 1;

	for (i = 0; i < ACCEPT_BURST; i++) {
		fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				shed_one(w);
			else if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if ((size_t)fd >= npend) {
			close(fd);
			continue;
		}
		/* Each echo is one write; Nagle would only hold it back. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		watch(w, fd, EPOLL_CTL_ADD,
		    chargen ? EPOLLIN | EPOLLOUT : EPOLLIN);
	}
}

/* Write what the socket takes; keep the rest and stop reading. */
static void
echo_out(struct worker *w, int fd, const unsigned char *p, size_t len)
{
	struct pending *pd = &pend[fd];
	ssize_t n;

	n = send(fd, p, len, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			conn_close(fd);
			return;
		}
		n = 0;
	}
	if ((size_t)n == len)
		return;
	if ((pd->buf = malloc(len - (size_t)n)) == NULL)
		die("malloc");
	memcpy(pd->buf, p + n, len - (size_t)n);
	pd->len = len - (size_t)n;
	pd->off = 0;
	watch(w, fd, EPOLL_CTL_MOD, EPOLLOUT);
}

static void
drain(struct worker *w, int fd)
{
	struct pending *pd = &pend[fd];
	ssize_t n;

	n = send(fd, pd->buf + pd->off, pd->len - pd->off, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(fd);
		return;
	}
	pd->off += (size_t)n;
	if (pd->off < pd->len)
		return;
	free(pd->buf);
	pd->buf = NULL;
	pd->len = pd->off = 0;
	watch(w, fd, EPOLL_CTL_MOD, EPOLLIN);
}

static void
echo_in(struct worker *w, int fd)
{
	ssize_t n;

	n = recv(fd, w->buf, BUF_SIZE, 0);	/* recv: no VFS layer, as the daemon */
	if (n > 0) {
		if (!discard)
			echo_out(w, fd, w->buf, (size_t)n);
	}
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		conn_close(fd);
}

/*
 * Any position in the cycle, plus BUF_SIZE, stays inside cg_stream: the
 * bytes after the cycle are the next cycle's first ones.
 */
static void
chargen_init(void)
{
	size_t k, col;

	if ((cg_stream = malloc(CG_CYCLE + BUF_SIZE)) == NULL)
		die("malloc");
	for (k = 0; k < CG_CYCLE + BUF_SIZE; k++) {
		col = k % CG_LINE;
		if (col < CG_WIDTH)
			cg_stream[k] = (unsigned char)(' ' +
			    ((k / CG_LINE) % CG_CHARS + col) % CG_CHARS);
		else
			cg_stream[k] = col == CG_WIDTH ? '\r' : '\n';
	}
}

/* Input first: an EOF or error closes before anything more is sent. */
static void
chargen_io(struct worker *w, int fd, uint32_t events)
{
	struct pending *pd = &pend[fd];
	ssize_t n;

	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		n = recv(fd, w->buf, BUF_SIZE, 0);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
			conn_close(fd);
			return;
		}
	}
	if (!(events & EPOLLOUT))
		return;
	n = send(fd, cg_stream + pd->off, BUF_SIZE, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(fd);
		return;
	}
	pd->off = (pd->off + (size_t)n) % CG_CYCLE;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[512];
	int i, n, fd;

	for (;;) {
		n = epoll_wait(w->ep, evs, 512, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == w->lfd)
				accept_some(w);
			else if (chargen)
				chargen_io(w, fd, evs[i].events);
			else if (pend[fd].buf != NULL)
				drain(w, fd);
			else
				echo_in(w, fd);
		}
	}
	return NULL;
}

static size_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("setrlimit");
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 24))
		return 1u << 24;
	return (size_t)rl.rlim_cur;
}

static void
worker_start(struct worker *w)
{
	int rc;

	memset(w, 0, sizeof(*w));
	if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	w->lfd = one_lfd != -1 ? one_lfd : make_listener();
	w->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((w->buf = malloc(BUF_SIZE)) == NULL)
		die("malloc");
	watch(w, w->lfd, EPOLL_CTL_ADD,
	    one_lfd != -1 ? EPOLLIN | EPOLLEXCLUSIVE : EPOLLIN);
	if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		errno = rc;
		die("pthread_create");
	}
}

int
main(int argc, char **argv)
{
	static struct worker ws[MAX_THREADS];
	const char *addr = "127.0.0.1";
	unsigned long port = 17021, nthreads = 1, i;
	char *end;
	int ch, one = 0;

	while ((ch = getopt(argc, argv, "1CDp:b:t:h")) != -1) {
		switch (ch) {
		case '1':
			one = 1;
			break;
		case 'C':
			chargen = 1;
			break;
		case 'D':
			discard = 1;
			break;
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end != '\0' || port < 1 || port > 65535) {
				fprintf(stderr, "epoll_echo: bad port\n");
				return 1;
			}
			break;
		case 'b':
			addr = optarg;
			break;
		case 't':
			nthreads = strtoul(optarg, &end, 10);
			if (*end != '\0' || nthreads < 1 ||
			    nthreads > MAX_THREADS) {
				fprintf(stderr, "epoll_echo: threads must be "
				    "1..%d\n", MAX_THREADS);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || (chargen && discard)) {
		usage(stderr);
		return 1;
	}
	parse_bind(addr, (unsigned)port);
	signal(SIGPIPE, SIG_IGN);
	npend = raise_nofile();
	if ((pend = calloc(npend, sizeof(*pend))) == NULL)
		die("calloc");
	if (chargen)
		chargen_init();
	if (one)
		one_lfd = make_listener();
	for (i = 0; i < nthreads; i++)
		worker_start(&ws[i]);
	fprintf(stderr, "epoll_echo: %s port %lu, %lu worker(s)%s\n", addr,
	    port, nthreads, one ? ", one listening socket" : "");
	pthread_join(ws[0].thread, NULL);
	return 0;
}
