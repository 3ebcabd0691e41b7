/*
 * loadgen - load generator for the echo-oracled benchmarks.
 *
 * One binary, epoll based, optionally multi-threaded.  Every mode
 * verifies what comes back; a run prints one line of key=value
 * figures (starting with "mode=") and one line for humans.
 *
 * Exit status: 0 ok, 1 verification error (wrong, missing or extra
 * bytes), 2 usage or setup error, 3 incomplete (connections could not
 * be opened or held), 4 hard time limit hit.
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
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE	(64 * 1024)	/* one read; also the largest write */
#define MAX_CONNS	20000
#define MAX_MSG		(1024 * 1024)
#define MAX_THREADS	64
#define MAX_DEPTH	1024
#define MAX_ANSWER	512		/* longest oracle answer we accept */
#define MAX_EOL		16
#define MAX_ATTEMPTS	8		/* connect attempts per connection */
#define NSEC		1000000000ull
#define MSEC		1000000ull
#define CONNECT_TIMEOUT	(5 * NSEC)	/* covers two SYN retransmits */
#define OPEN_TIMEOUT	(120 * NSEC)	/* whole open phase */
#define ROUND_TIMEOUT	(60 * NSEC)	/* one hold echo round */

/*
 * The bulk stream of a connection is this pattern read cyclically
 * from a per-connection start.  Its length is prime and larger than
 * any in-flight window, so a lost, duplicated or reordered chunk
 * shifts the stream against the pattern and is caught by memcmp.
 */
#define PATTERN_LEN	1048573u

#define QPREFIX		"Will it rain "
#define QPREFIX_LEN	(sizeof(QPREFIX) - 1)
#define QDIGITS		10
#define QLEN		(QPREFIX_LEN + QDIGITS + 1)

/*
 * Latency histogram: log-linear buckets over nanoseconds, 64 per power
 * of two, so any percentile is off by less than 1/128.  Fixed size,
 * nothing allocated per message.
 */
#define HIST_SUB_BITS	6u
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_MAX_EXP	40u
#define HIST_BUCKETS	((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

enum mode { M_PINGPONG, M_BULK, M_ORACLE, M_HOLD, M_CONNECT,
	M_CHARGEN, M_DISCARD, M_UDP };

static const char *const mode_names[] = {
	"pingpong", "bulk", "oracle", "hold", "connect", "chargen", "discard",
	"udp"
};

/* Modes measured in bytes (MB/s), not in messages. */
#define STREAM_MODE(m)	((m) == M_BULK || (m) == M_CHARGEN || \
			 (m) == M_DISCARD)

enum cstate { CS_IDLE, CS_CONNECTING, CS_ACTIVE, CS_PARKED, CS_DEAD };

enum phase { PH_QUESTION, PH_SPACE, PH_ANSWER, PH_EOL };

struct hist {
	uint64_t	 n;
	uint64_t	 b[HIST_BUCKETS];
};

struct conn {
	int		 fd;
	enum cstate	 state;
	unsigned	 id;
	unsigned	 attempts;
	uint32_t	 gen;		/* tells stale epoll events apart */
	int		 done;		/* hold: echoed in this round */
	uint64_t	 t_conn;	/* when the connect was started */
	uint64_t	 t_send;	/* when the current message was sent */
	uint64_t	 retry_at;
	uint64_t	 seq;
	uint64_t	 wops;		/* completions in the window */
	unsigned char	*txbuf;
	size_t		 txoff, txlen;	/* written so far / to write */
	size_t		 rxoff;		/* echo bytes verified so far */
	uint64_t	 tx, rx;	/* bulk stream offsets */
	uint64_t	 base;		/* bulk pattern start */
	uint64_t	 qsent, qdone;	/* oracle questions */
	uint64_t	*qtimes;
	char		*qtexts;	/* depth slots: questions in flight */
	enum phase	 phase;
	size_t		 pos;
	size_t		 alen;
	unsigned char	 last;
	const char	*qexp;		/* the question being answered */
};

struct worker {
	pthread_t	 thread;
	int		 ep;
	struct conn	*conns;
	unsigned	 nconns;
	unsigned	 window;	/* connects in progress, at most */
	unsigned char	*rbuf;
	struct hist	*hist;
	int		 running;	/* traffic phase */
	unsigned	 opened;
	unsigned	 gaveup;
	unsigned	 nparked;
	unsigned	 waiting;	/* hold: echoes still owed */
	int		 lasterr;
	uint64_t	 ops;
	uint64_t	 bytes;
	uint64_t	 errors;
	uint64_t	 closed;
	uint64_t	 reconnects;
	uint64_t	 connfail;
	uint64_t	 retries;
	uint64_t	 dropped;
	uint64_t	 starved;	/* connections with no progress */
};

struct opts {
	enum mode	 mode;
	const char	*host;
	unsigned	 port;
	unsigned	 conns;
	size_t		 size;
	double		 duration;
	double		 warmup;
	unsigned	 threads;
	size_t		 inflight;
	unsigned	 depth;
	char		 eol[MAX_EOL];
	size_t		 eollen;
	long		 pid;
	unsigned	 window;
	unsigned	 proxy;		/* -X: PROXY header version; 0 none */
	unsigned	 sources;	/* -S: 127.0.0.1 .. 127.0.0.N; 0 any */
};

static struct opts o;
static struct sockaddr_storage dst;
static socklen_t dstlen;
static unsigned char *pattern;
static pthread_barrier_t barrier;
static uint64_t t_measure, t_end;
static int abort_run;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: loadgen MODE [options]\n"
	    "modes:\n"
	    "  pingpong  each connection sends a message, waits for the whole\n"
	    "            echo, verifies it, repeats; msgs/s and latency\n"
	    "  bulk      each connection streams both ways at once, every byte\n"
	    "            verified in order; MB/s echoed\n"
	    "  oracle    questions \"Will it rain N?\", pipelined; questions/s\n"
	    "  hold      open -c connections, keep them, check each one echoes,\n"
	    "            optionally idle -d seconds and check again\n"
	    "  connect   connect, echo one message, close, repeat; conns/s\n"
	    "  chargen   read a chargen (RFC 864) stream, every byte checked\n"
	    "            against the pattern; MB/s read\n"
	    "  discard   stream the bulk pattern to a discard (RFC 863)\n"
	    "            server, which must send nothing; MB/s sent\n"
	    "  udp       UDP echo: -c sockets, -p datagrams in flight each,\n"
	    "            every reply checked, loss counted; datagrams/s\n"
	    "options:\n"
	    "  -H host    server address, loopback only (default 127.0.0.1)\n"
	    "  -o port    server port (default 17001)\n"
	    "  -c n       connections (default 50; hold 1000; connect: number\n"
	    "             of connect-echo-close cycles in flight, default 32)\n"
	    "  -s bytes   message size (default 64); connect -s 0: send\n"
	    "             nothing, read until the server closes (daytime,\n"
	    "             time, qotd)\n"
	    "  -d secs    measured time (default 5); hold: idle wait before the\n"
	    "             second check (default 0: no second check)\n"
	    "  -w secs    warm-up before measuring (default 1)\n"
	    "  -T n       client threads, connections split between them\n"
	    "             (default 1; hold always uses one)\n"
	    "  -i bytes   bulk: unechoed bytes per connection, at most\n"
	    "             (default 262144)\n"
	    "  -p n       oracle: questions in flight per connection (default 1)\n"
	    "  -e eol     oracle: reply line end, \\r \\n \\t \\\\ understood\n"
	    "             (default \"\\r\\n\"; '' means the reply ends at the\n"
	    "             answer's final '.')\n"
	    "  -P pid     hold: report this server process's VmRSS\n"
	    "  -W n       connects in progress at once while opening\n"
	    "             (default 1024)\n"
	    "  -X 1|2     send a PROXY protocol v1 or v2 header first on\n"
	    "             every connection, as a load balancer would (the\n"
	    "             listener needs proxy_protocol); clients 10.x.y.z\n"
	    "  -S n       connect from n loopback source addresses in turn,\n"
	    "             127.0.0.1 to 127.0.0.n (IPv4 servers): each has its\n"
	    "             own ephemeral ports, which one address runs out of\n"
	    "             at about 14,000 short connections a second\n"
	    "  -h         this text\n"
	    "exit: 0 ok, 1 verification error, 2 usage/setup, 3 incomplete,\n"
	    "      4 time limit\n");
}

static void
die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
fail_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "loadgen: %s%s%s\n", msg, arg ? ": " : "",
	    arg ? arg : "");
	usage(stderr);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static uint64_t
secs_to_ns(double s)
{
	return (uint64_t)(s * (double)NSEC);
}

/* SplitMix64: cheap, good enough to make patterns that never repeat. */
static uint64_t
mix64(uint64_t *state)
{
	uint64_t z;

	z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
fill_random(unsigned char *p, size_t len, uint64_t seed)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = mix64(&seed);
		p[i] = (unsigned char)(v >> (8 * (i % 8)));
	}
}

static unsigned
hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v >= (1ull << HIST_MAX_EXP))
		v = (1ull << HIST_MAX_EXP) - 1;
	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	shift = e - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

/* Middle of a bucket, in nanoseconds. */
static double
hist_value(unsigned idx)
{
	unsigned shift;
	uint64_t m;

	if (idx < 2 * HIST_SUB)
		return (double)idx;
	shift = idx / HIST_SUB - 1;
	m = idx % HIST_SUB + HIST_SUB;
	return (double)(m << shift) + (double)(1ull << shift) / 2.0;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->n++;
}

static double
hist_pct(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;
	unsigned i;

	if (h->n == 0)
		return 0.0;
	rank = (uint64_t)(q * (double)h->n + 0.999999);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

static double
hist_max(const struct hist *h)
{
	unsigned i;

	for (i = HIST_BUCKETS; i > 0; i--)
		if (h->b[i - 1] != 0)
			return hist_value(i - 1);
	return 0.0;
}

/*
 * Traffic must stay on this machine: only 127.0.0.0/8 and ::1 (also
 * as a v4-mapped address) are accepted as targets.
 */
static int
is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    sin6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

static void
resolve_target(void)
{
	struct addrinfo hints, *res, *ai;
	char port[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", o.port);
	rc = getaddrinfo(o.host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", o.host, gai_strerror(rc));
		exit(2);
	}
	/* Refuse a name if any of its addresses leaves the machine. */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (!is_loopback(ai->ai_addr)) {
			fprintf(stderr, "loadgen: %s: not a loopback address; "
			    "refusing to send traffic off this machine\n",
			    o.host);
			exit(2);
		}
	}
	memcpy(&dst, res->ai_addr, res->ai_addrlen);
	dstlen = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
}

static unsigned long
parse_ulong(const char *s, unsigned long min, unsigned long max,
    const char *what)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "loadgen: %s must be %lu..%lu: %s\n", what,
		    min, max, s);
		exit(2);
	}
	return v;
}

static double
parse_secs(const char *s, double max, const char *what)
{
	double v;
	char *end;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0) ||
	    v > max) {
		fprintf(stderr, "loadgen: %s must be 0..%g seconds: %s\n",
		    what, max, s);
		exit(2);
	}
	return v;
}

/* The line end may be given with C escapes, e.g. -e '\r\n'. */
static void
parse_eol(const char *s)
{
	size_t n = 0;
	char ch;

	for (; *s != '\0'; s++) {
		ch = *s;
		if (ch == '\\') {
			s++;
			switch (*s) {
			case 'r':	ch = '\r'; break;
			case 'n':	ch = '\n'; break;
			case 't':	ch = '\t'; break;
			case '\\':	ch = '\\'; break;
			default:
				fail_usage("bad escape in -e", NULL);
			}
		}
		if (n == MAX_EOL - 1)
			fail_usage("-e line end too long", NULL);
		o.eol[n++] = ch;
	}
	o.eol[n] = '\0';
	o.eollen = n;
}

static void
set_defaults(const char *name)
{
	unsigned i, n = sizeof(mode_names) / sizeof(mode_names[0]);

	for (i = 0; i < n; i++)
		if (strcmp(name, mode_names[i]) == 0)
			break;
	if (i == n)
		fail_usage("unknown mode", name);
	memset(&o, 0, sizeof(o));
	o.mode = (enum mode)i;
	o.host = "127.0.0.1";
	o.port = 17001;
	o.conns = 50;
	o.size = 64;
	o.duration = 5.0;
	o.warmup = 1.0;
	o.threads = 1;
	o.inflight = 256 * 1024;
	o.depth = 1;
	o.pid = -1;
	o.window = 1024;
	parse_eol("\\r\\n");
}

static void
parse_args(int argc, char **argv)
{
	int ch, have_c = 0, have_d = 0;

	if (argc < 2)
		fail_usage("no mode given", NULL);
	if (strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		exit(0);
	}
	set_defaults(argv[1]);
	optind = 2;
	while ((ch = getopt(argc, argv, "H:o:c:s:d:w:T:i:p:e:P:W:X:S:h")) != -1) {
		switch (ch) {
		case 'H': o.host = optarg; break;
		case 'o':
			o.port = (unsigned)parse_ulong(optarg, 1, 65535, "-o");
			break;
		case 'c':
			o.conns = (unsigned)parse_ulong(optarg, 1, MAX_CONNS,
			    "-c");
			have_c = 1;
			break;
		case 's':
			o.size = parse_ulong(optarg, 0, MAX_MSG, "-s");
			break;
		case 'd':
			o.duration = parse_secs(optarg, 3600.0, "-d");
			have_d = 1;
			break;
		case 'w': o.warmup = parse_secs(optarg, 600.0, "-w"); break;
		case 'T':
			o.threads = (unsigned)parse_ulong(optarg, 1,
			    MAX_THREADS, "-T");
			break;
		case 'i':
			o.inflight = parse_ulong(optarg, 1024, 64ul << 20,
			    "-i");
			break;
		case 'p':
			o.depth = (unsigned)parse_ulong(optarg, 1, MAX_DEPTH,
			    "-p");
			break;
		case 'e': parse_eol(optarg); break;
		case 'P':
			o.pid = (long)parse_ulong(optarg, 1, INT_MAX, "-P");
			break;
		case 'W':
			o.window = (unsigned)parse_ulong(optarg, 1, MAX_CONNS,
			    "-W");
			break;
		case 'X':
			o.proxy = (unsigned)parse_ulong(optarg, 1, 2, "-X");
			break;
		case 'S':
			o.sources = (unsigned)parse_ulong(optarg, 1, 254,
			    "-S");
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc)
		fail_usage("unexpected argument", argv[optind]);
	if (!have_c && o.mode == M_HOLD)
		o.conns = 1000;
	if (!have_c && o.mode == M_CONNECT)
		o.conns = 32;
	if (o.size == 0 && o.mode != M_CONNECT)
		fail_usage("-s 0 is for connect only", NULL);
	if (!have_d && o.mode == M_HOLD)
		o.duration = 0.0;
	if (o.duration <= 0.0 && o.mode != M_HOLD)
		fail_usage("-d must be more than 0", NULL);
	if (o.sources != 0 && o.mode == M_UDP)
		fail_usage("-S is TCP only", NULL);
	if (o.proxy != 0 && o.mode == M_UDP)
		fail_usage("-X is TCP only: no PROXY header over UDP", NULL);
	if (o.mode == M_HOLD)
		o.threads = 1;
	if (o.threads > o.conns)
		o.threads = o.conns;
}

/*
 * Hold needs one descriptor per connection; so may a big pingpong.
 * The soft limit is often far below the hard one.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			die("setrlimit");
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < o.conns + 16u) {
		fprintf(stderr, "loadgen: %u connections need more than the "
		    "%lu descriptors allowed\n", o.conns,
		    (unsigned long)rl.rlim_cur);
		exit(2);
	}
}

static void
on_alarm(int sig)
{
	static const char msg[] = "loadgen: hard time limit reached\n";
	ssize_t rc;

	(void)sig;
	rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)rc;
	_exit(4);
}

static int
so_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return errno;
	return err;
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->state = CS_IDLE;
}

/*
 * -X: the PROXY header a balancer would send before the client's bytes,
 * naming client 10.x.y.z (from the connection's id, so that per-source
 * counting sees many clients) and the server.  MSG_MORE: it leaves with
 * the first message, in one segment, as a balancer's usually does
 * (except in hold, whose first message may come much later).
 * Returns 0 or an errno value.
 */
static int
proxy_header(const struct conn *c)
{
	static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
		0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	unsigned char b[108];
	unsigned id = c->id + 1;
	size_t n;

	if (o.proxy == 1)
		n = (size_t)snprintf((char *)b, sizeof(b), "PROXY TCP4 10.%u.%u.%u"
		    " 127.0.0.1 %u %u\r\n", (id >> 16) & 255, (id >> 8) & 255,
		    id & 255, 1024 + (unsigned)(c->seq % 60000), o.port);
	else {
		memcpy(b, sig, 12);
		b[12] = 0x21;		/* v2, PROXY */
		b[13] = 0x11;		/* TCP over IPv4 */
		b[14] = 0;
		b[15] = 12;
		b[16] = 10;
		b[17] = (unsigned char)(id >> 16);
		b[18] = (unsigned char)(id >> 8);
		b[19] = (unsigned char)id;
		b[20] = 127; b[21] = 0; b[22] = 0; b[23] = 1;
		b[24] = 0x04; b[25] = 0x00;	/* port 1024 */
		b[26] = (unsigned char)(o.port >> 8);
		b[27] = (unsigned char)o.port;
		n = 28;
	}
	/* hold sends nothing for a while: the header must not wait. */
	if (send(c->fd, b, n, MSG_NOSIGNAL | (o.mode == M_HOLD ? 0 :
	    MSG_MORE)) != (ssize_t)n)
		return errno != 0 ? errno : EIO;
	return 0;
}

/*
 * Start a non-blocking connect.  The socket is registered once,
 * edge-triggered for both directions: connect completion shows up as
 * EPOLLOUT, and we never need epoll_ctl again for this socket.
 * Returns 0 or an errno value.
 */
/*
 * -S: the next of the loopback source addresses, the port left to
 * connect() (IP_BIND_ADDRESS_NO_PORT), so that each address has the
 * whole ephemeral range.  0 or an errno value.
 */
static int
bind_source(int fd)
{
	static _Thread_local unsigned next;
	struct sockaddr_in sin;
	int one = 1;

	if (dst.ss_family != AF_INET)
		return EAFNOSUPPORT;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001u + next++ % o.sources);
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
	    sizeof(one));
	return bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 :
	    errno;
}

static int
conn_connect(struct worker *w, struct conn *c)
{
	struct epoll_event ev;
	int fd, one = 1, err;

	fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return errno;
	/* Every write is a whole message; Nagle would only add delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o.sources != 0 && (err = bind_source(fd)) != 0) {
		close(fd);
		return err;
	}
	c->fd = fd;
	c->t_conn = now_ns();
	if (connect(fd, (struct sockaddr *)&dst, dstlen) == 0) {
		c->state = CS_ACTIVE;
		if (o.proxy != 0 && (err = proxy_header(c)) != 0) {
			conn_close(c);
			return err;
		}
	}
	else if (errno == EINPROGRESS)
		c->state = CS_CONNECTING;
	else {
		err = errno;
		conn_close(c);
		return err;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	/*
	 * Tag with index and generation, not a pointer: a batch of events
	 * can still hold one for a socket we closed and replaced since.
	 */
	c->gen++;
	ev.data.u64 = (uint64_t)c->gen << 32 | (uint64_t)(c - w->conns);
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		err = errno;
		conn_close(c);
		return err;
	}
	return 0;
}

static struct conn *
event_conn(struct worker *w, uint64_t tag)
{
	struct conn *c;
	uint32_t idx = (uint32_t)tag;

	if (idx >= w->nconns)
		return NULL;
	c = &w->conns[idx];
	if (c->gen != (uint32_t)(tag >> 32) || c->fd == -1)
		return NULL;
	return c;
}

/*
 * Open phase bookkeeping: a failed attempt goes back to the end of the
 * queue after a growing pause, up to MAX_ATTEMPTS tries.
 */
struct openq {
	unsigned	*idx;
	unsigned	 head, count, cap;
	unsigned	 pending;
};

static void
open_retry(struct worker *w, struct openq *q, struct conn *c, int err,
    uint64_t now)
{
	uint64_t pause;

	conn_close(c);
	w->lasterr = err;
	if (c->attempts >= MAX_ATTEMPTS) {
		c->state = CS_DEAD;
		w->gaveup++;
		return;
	}
	w->retries++;
	pause = 10 * MSEC << (c->attempts < 7 ? c->attempts : 7);
	c->retry_at = now + pause;
	q->idx[(q->head + q->count) % q->cap] = (unsigned)(c - w->conns);
	q->count++;
}

static void
open_start_some(struct worker *w, struct openq *q, uint64_t now)
{
	struct conn *c;
	int err;

	while (q->pending < w->window && q->count > 0) {
		c = &w->conns[q->idx[q->head]];
		if (c->retry_at > now)
			break;
		q->head = (q->head + 1) % q->cap;
		q->count--;
		c->attempts++;
		err = conn_connect(w, c);
		if (err == EMFILE || err == ENFILE) {
			/* Our own limit: retrying cannot help. */
			c->attempts = MAX_ATTEMPTS;
			open_retry(w, q, c, err, now);
		} else if (err != 0)
			open_retry(w, q, c, err, now);
		else if (c->state == CS_ACTIVE)
			w->opened++;
		else
			q->pending++;
	}
}

static void
open_event(struct worker *w, struct openq *q, struct conn *c, uint32_t ev,
    uint64_t now)
{
	int err;

	if (c->state == CS_CONNECTING) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		q->pending--;
		err = so_error(c->fd);
		if (err == 0 && o.proxy != 0)
			err = proxy_header(c);
		if (err != 0)
			open_retry(w, q, c, err, now);
		else {
			c->state = CS_ACTIVE;
			w->opened++;
		}
	} else if (c->state == CS_ACTIVE &&
	    (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		/* Accepted, then closed: e.g. the server is at its limit. */
		w->opened--;
		w->dropped++;
		open_retry(w, q, c, ECONNRESET, now);
	}
}

/* Connects that hang (SYN lost to a full backlog) are started anew. */
static void
open_reap_stuck(struct worker *w, struct openq *q, uint64_t now)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < w->nconns; i++) {
		c = &w->conns[i];
		if (c->state == CS_CONNECTING &&
		    now - c->t_conn > CONNECT_TIMEOUT) {
			q->pending--;
			open_retry(w, q, c, ETIMEDOUT, now);
		}
	}
}

/*
 * Open every connection of this worker, as fast as the window allows,
 * retrying refused, reset and stuck attempts.  Returns the number held.
 */
static unsigned
open_all(struct worker *w)
{
	struct epoll_event evs[512];
	struct openq q;
	struct conn *c;
	uint64_t now, start, last_reap;
	unsigned i;
	int n, k;

	memset(&q, 0, sizeof(q));
	q.cap = w->nconns;
	if ((q.idx = calloc(q.cap, sizeof(*q.idx))) == NULL)
		die("calloc");
	for (i = 0; i < w->nconns; i++)
		q.idx[i] = i;
	q.count = w->nconns;
	start = last_reap = now_ns();
	while (w->opened + w->gaveup < w->nconns) {
		now = now_ns();
		if (now - start > OPEN_TIMEOUT)
			break;
		open_start_some(w, &q, now);
		n = epoll_wait(w->ep, evs, 512, 10);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		now = now_ns();
		for (k = 0; k < n; k++) {
			c = event_conn(w, evs[k].data.u64);
			if (c != NULL)
				open_event(w, &q, c, evs[k].events, now);
		}
		if (now - last_reap > 100 * MSEC) {
			open_reap_stuck(w, &q, now);
			last_reap = now;
		}
	}
	/* Whatever is still unopened at the deadline stays closed. */
	for (i = 0; i < w->nconns; i++) {
		if (w->conns[i].state == CS_CONNECTING ||
		    w->conns[i].state == CS_IDLE) {
			conn_close(&w->conns[i]);
			w->conns[i].state = CS_DEAD;
			w->gaveup++;
		}
	}
	free(q.idx);
	return w->opened;
}

/*
 * Traffic phase.  Each handler is called on any event for an active
 * connection: it first pushes out what is pending, then reads until the
 * socket is drained (edge-triggered), then queues more if allowed.
 *
 * A read shorter than asked means the socket was drained, and any later
 * arrival raises a new edge, which saves the read that would only say
 * EAGAIN.  Not so for an end of file that came in with the data: its
 * edge is this one, so when the event says EPOLLRDHUP/HUP/ERR we read
 * on until the end is seen.
 */
#define EV_CLOSING	(EPOLLRDHUP | EPOLLHUP | EPOLLERR)
static void conn_begin(struct worker *, struct conn *);

static int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->txoff < c->txlen) {
		n = send(c->fd, c->txbuf + c->txoff, c->txlen - c->txoff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->txoff += (size_t)n;
	}
	return 0;
}

/* Bytes read, 0 when drained, -1 at end of file or on error. */
static ssize_t
conn_read(struct worker *w, struct conn *c)
{
	ssize_t n;

	for (;;) {
		n = read(c->fd, w->rbuf, RBUF_SIZE);
		if (n > 0)
			return n;
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : -1;
	}
}

/* Close for good; in hold, a connection owed an echo no longer is. */
static void
conn_kill(struct worker *w, struct conn *c)
{
	conn_close(c);
	c->state = CS_DEAD;
	if (o.mode == M_HOLD && !c->done && w->waiting > 0)
		w->waiting--;
}

static void
verify_failed(struct worker *w, struct conn *c, const char *what)
{
	if (w->errors < 5)
		fprintf(stderr, "loadgen: connection %u: %s\n", c->id, what);
	w->errors++;
	conn_kill(w, c);
}

static void
conn_failed(struct worker *w, struct conn *c, int err)
{
	conn_close(c);
	w->connfail++;
	w->lasterr = err;
	if (o.mode == M_CONNECT) {
		/* A short pause, so a refused or port-starved slot won't spin. */
		c->state = CS_PARKED;
		c->retry_at = now_ns() + MSEC;
		w->nparked++;
	} else
		c->state = CS_DEAD;
}

static void
conn_restart(struct worker *w, struct conn *c)
{
	int err;

	if (now_ns() >= t_end) {
		conn_kill(w, c);
		return;
	}
	err = conn_connect(w, c);
	if (err != 0)
		conn_failed(w, c, err);
	else if (c->state == CS_ACTIVE)
		conn_begin(w, c);
}

/* The server closed or reset a connection during traffic. */
static void
conn_lost(struct worker *w, struct conn *c)
{
	switch (o.mode) {
	case M_ORACLE:
		/* Expected when the server limits questions per connection. */
		conn_close(c);
		w->reconnects++;
		conn_restart(w, c);
		break;
	case M_HOLD:
		w->dropped++;
		conn_kill(w, c);
		break;
	default:
		/* An echo was owed: bytes went out and never came back. */
		if (w->closed < 5)
			fprintf(stderr, "loadgen: connection %u closed by "
			    "server\n", c->id);
		conn_close(c);
		w->closed++;
		conn_restart(w, c);
		break;
	}
}

static int
in_window(uint64_t start, uint64_t end)
{
	return start >= t_measure && end <= t_end;
}

/* Start one echo message; its first bytes carry a sequence number. */
static void
pp_send(struct worker *w, struct conn *c)
{
	uint64_t seq = ++c->seq;
	size_t i;

	for (i = 0; i < 8 && i < o.size; i++)
		c->txbuf[i] = (unsigned char)(seq >> (8 * i));
	c->txoff = 0;
	c->txlen = o.size;
	c->rxoff = 0;
	c->t_send = now_ns();
	if (conn_flush(c) == -1)
		conn_lost(w, c);
}

static void
pp_done(struct worker *w, struct conn *c)
{
	uint64_t now = now_ns();

	switch (o.mode) {
	case M_HOLD:
		c->done = 1;
		w->waiting--;
		w->ops++;
		break;
	case M_CONNECT:
		if (in_window(c->t_conn, now)) {
			hist_add(w->hist, now - c->t_conn);
			w->ops++;
		}
		conn_close(c);
		conn_restart(w, c);
		break;
	default:
		if (in_window(c->t_send, now)) {
			hist_add(w->hist, now - c->t_send);
			w->ops++;
			c->wops++;
		}
		if (now < t_end)
			pp_send(w, c);
		break;
	}
}

/* connect -s 0: the server speaks first and closes (daytime, time,
   qotd); what it says is read to its end, then the cycle is done. */
static void
greet_io(struct worker *w, struct conn *c)
{
	ssize_t n;

	for (;;) {
		n = read(c->fd, w->rbuf, RBUF_SIZE);
		if (n > 0)
			c->rxoff += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	if (n == -1 && errno == EAGAIN)
		return;
	if (n == 0 && c->rxoff > 0)
		pp_done(w, c);
	else if (n == 0)
		verify_failed(w, c, "closed without a word");
	else
		conn_lost(w, c);
}

static void
pp_io(struct worker *w, struct conn *c, uint32_t ev)
{
	ssize_t n;
	size_t len;

	if (conn_flush(c) == -1) {
		conn_lost(w, c);
		return;
	}
	for (;;) {
		if ((n = conn_read(w, c)) == 0)
			return;
		if (n == -1) {
			conn_lost(w, c);
			return;
		}
		len = (size_t)n;
		if (len > c->txoff - c->rxoff) {
			verify_failed(w, c, "more bytes echoed than sent");
			return;
		}
		if (memcmp(w->rbuf, c->txbuf + c->rxoff, len) != 0) {
			verify_failed(w, c, "echo differs from what was sent");
			return;
		}
		c->rxoff += len;
		if (c->rxoff == c->txlen) {
			pp_done(w, c);
			/* Look for the end of file only if an echo is owed. */
			if (!(ev & EV_CLOSING) || o.mode != M_PINGPONG ||
			    c->state != CS_ACTIVE || c->txlen == 0 ||
			    now_ns() >= t_end)
				return;
			continue;
		}
		if (len < RBUF_SIZE && !(ev & EV_CLOSING))
			return;
	}
}

static void
bulk_io(struct worker *w, struct conn *c, uint32_t ev)
{
	uint64_t now;
	size_t len, off;
	ssize_t n;

	for (;;) {
		if ((n = conn_read(w, c)) == 0)
			break;
		if (n == -1) {
			conn_lost(w, c);
			return;
		}
		len = (size_t)n;
		off = (size_t)((c->base + c->rx) % PATTERN_LEN);
		if (len > c->tx - c->rx) {
			verify_failed(w, c, "more bytes echoed than sent");
			return;
		}
		if (memcmp(w->rbuf, pattern + off, len) != 0) {
			verify_failed(w, c, "stream differs from what was sent");
			return;
		}
		c->rx += len;
		now = now_ns();
		if (now >= t_measure && now <= t_end) {
			w->bytes += len;
			c->wops++;
		}
		if (len < RBUF_SIZE && !(ev & EV_CLOSING))
			break;
	}
	/* Keep at most o.inflight bytes unechoed: the server may push back. */
	now = now_ns();
	while (now < t_end && c->tx - c->rx < o.inflight) {
		len = o.inflight - (size_t)(c->tx - c->rx);
		if (len > RBUF_SIZE)
			len = RBUF_SIZE;
		off = (size_t)((c->base + c->tx) % PATTERN_LEN);
		n = send(c->fd, pattern + off, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			conn_lost(w, c);
			return;
		}
		c->tx += (uint64_t)n;
	}
}

/*
 * The RFC 864 stream: 95 lines of 72 characters and CR LF, each line
 * starting one character further.  One cycle, then one read's worth
 * more, so that any read is checked with one memcmp.
 */
#define CG_CYCLE	(95 * 74)

static unsigned char cg_stream[CG_CYCLE + RBUF_SIZE];

static void
chargen_init(void)
{
	size_t k, line, col;

	for (k = 0; k < sizeof(cg_stream); k++) {
		line = (k / 74) % 95;
		col = k % 74;
		cg_stream[k] = col >= 72 ? (col == 72 ? '\r' : '\n') :
		    (unsigned char)(' ' + (line + col) % 95);
	}
}

static void
chargen_io(struct worker *w, struct conn *c, uint32_t ev)
{
	uint64_t now;
	size_t len;
	ssize_t n;

	for (;;) {
		if ((n = conn_read(w, c)) == 0)
			break;
		if (n == -1) {
			conn_lost(w, c);
			return;
		}
		len = (size_t)n;
		if (memcmp(w->rbuf, cg_stream + c->rx % CG_CYCLE, len) != 0) {
			verify_failed(w, c, "chargen stream differs from "
			    "RFC 864's");
			return;
		}
		c->rx += len;
		now = now_ns();
		if (now >= t_measure && now <= t_end) {
			w->bytes += len;
			c->wops++;
		}
		if (len < RBUF_SIZE && !(ev & EV_CLOSING))
			break;
	}
}

static void
discard_io(struct worker *w, struct conn *c, uint32_t ev)
{
	uint64_t now;
	size_t off;
	ssize_t n;

	(void)ev;
	if ((n = conn_read(w, c)) > 0) {
		verify_failed(w, c, "discard server sent bytes");
		return;
	}
	if (n == -1) {
		conn_lost(w, c);
		return;
	}
	while ((now = now_ns()) < t_end) {
		off = (size_t)((c->base + c->tx) % PATTERN_LEN);
		n = send(c->fd, pattern + off, RBUF_SIZE, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			conn_lost(w, c);
			return;
		}
		c->tx += (uint64_t)n;
		if (now >= t_measure) {
			w->bytes += (uint64_t)n;
			c->wops++;
		}
	}
}

/*
 * Oracle questions have a fixed size, "Will it rain NNNNNNNNNN?", so
 * the echo reference can be run with the same message size.  The
 * number differs per connection, so a reply sent down the wrong
 * connection is caught too.
 */
static void
question_text(const struct conn *c, uint64_t seq, char *out)
{
	uint64_t v = ((uint64_t)c->id * 100003u + seq) % 10000000000ull;
	size_t i;

	memcpy(out, QPREFIX, QPREFIX_LEN);
	for (i = QDIGITS; i > 0; i--) {
		out[QPREFIX_LEN + i - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	out[QLEN - 1] = '?';
}

static void
oracle_fill(struct conn *c)
{
	uint64_t now = now_ns();
	size_t k = 0;

	while (c->qsent - c->qdone < o.depth) {
		char *q = c->qtexts + (c->qsent % o.depth) * QLEN;

		/* Kept, so a reply is checked without making it again. */
		question_text(c, c->qsent, q);
		memcpy(c->txbuf + k * QLEN, q, QLEN);
		c->qtimes[c->qsent % o.depth] = now;
		c->qsent++;
		k++;
	}
	c->txoff = 0;
	c->txlen = k * QLEN;
}

static void
oracle_reply_done(struct worker *w, struct conn *c)
{
	uint64_t now = now_ns(), sent = c->qtimes[c->qdone % o.depth];

	if (in_window(sent, now)) {
		hist_add(w->hist, now - sent);
		w->ops++;
		c->wops++;
	}
	c->qdone++;
	c->phase = PH_QUESTION;
	c->pos = 0;
}

/*
 * A whole reply at p, checked in bulk rather than byte by byte: the
 * client shares the machine with the server it measures, and should cost
 * it as little as the pingpong client does.  Returns the reply's length,
 * or 0 to let oracle_parse() go byte by byte (a reply cut by the read,
 * or a wrong one, which it then names).
 */
static size_t
oracle_whole(struct worker *w, struct conn *c, const unsigned char *p,
    size_t len)
{
	const unsigned char *ans = p + QLEN + 1, *end;
	size_t alen, i, need;

	if (len < QLEN + 3 || c->qdone == c->qsent)
		return 0;
	c->qexp = c->qtexts + (c->qdone % o.depth) * QLEN;
	if (memcmp(p, c->qexp, QLEN) != 0 || p[QLEN] != ' ')
		return 0;
	end = memchr(ans, o.eollen > 0 ? o.eol[0] : '.', len - QLEN - 1);
	if (end == NULL)
		return 0;
	alen = (size_t)(end - ans) + (o.eollen > 0 ? 0 : 1);
	if (alen == 0 || alen > MAX_ANSWER || ans[alen - 1] != '.')
		return 0;
	for (i = 0; i < alen; i++)
		if (ans[i] < 0x20 || ans[i] == 0x7f)
			return 0;
	need = QLEN + 1 + alen + o.eollen;
	if (need > len || memcmp(ans + alen, o.eol, o.eollen) != 0)
		return 0;
	oracle_reply_done(w, c);
	return need;
}

/*
 * A reply is the question exactly as sent, one space, an answer of
 * printable text ending in '.', then the line end (if any).  Returns
 * NULL if all is well, else what was wrong.
 */
static const char *
oracle_parse(struct worker *w, struct conn *c, const unsigned char *p,
    size_t len)
{
	unsigned char ch;
	size_t i, k;

	for (i = 0; i < len; i++) {
		while (c->phase == PH_QUESTION && c->pos == 0 && i < len &&
		    (k = oracle_whole(w, c, p + i, len - i)) > 0)
			i += k;
		if (i == len)
			break;
		ch = p[i];
		switch (c->phase) {
		case PH_QUESTION:
			if (c->pos == 0) {
				if (c->qdone == c->qsent)
					return "reply to no question";
				c->qexp = c->qtexts + (c->qdone % o.depth) *
				    QLEN;
			}
			if (ch != (unsigned char)c->qexp[c->pos])
				return "reply does not start with the question";
			if (++c->pos == QLEN)
				c->phase = PH_SPACE;
			break;
		case PH_SPACE:
			if (ch != ' ')
				return "no space after the question";
			c->phase = PH_ANSWER;
			c->alen = 0;
			break;
		case PH_ANSWER:
			if (o.eollen > 0 && ch == (unsigned char)o.eol[0]) {
				if (c->alen == 0 || c->last != '.')
					return "answer does not end in '.'";
				c->phase = PH_EOL;
				c->pos = 1;
				if (c->pos == o.eollen)
					oracle_reply_done(w, c);
				break;
			}
			if (ch < 0x20 || ch == 0x7f || ++c->alen > MAX_ANSWER)
				return "answer too long or not text";
			c->last = ch;
			if (o.eollen == 0 && ch == '.')
				oracle_reply_done(w, c);
			break;
		case PH_EOL:
			if (ch != (unsigned char)o.eol[c->pos])
				return "wrong line end";
			if (++c->pos == o.eollen)
				oracle_reply_done(w, c);
			break;
		}
	}
	return NULL;
}

static void
oracle_io(struct worker *w, struct conn *c, uint32_t ev)
{
	const char *bad;
	ssize_t n;

	if (conn_flush(c) == -1) {
		conn_lost(w, c);
		return;
	}
	for (;;) {
		if ((n = conn_read(w, c)) == 0)
			break;
		if (n == -1) {
			conn_lost(w, c);
			return;
		}
		bad = oracle_parse(w, c, w->rbuf, (size_t)n);
		if (bad != NULL) {
			verify_failed(w, c, bad);
			return;
		}
		if ((size_t)n < RBUF_SIZE && !(ev & EV_CLOSING))
			break;
	}
	/* Top up to the pipelining depth once the last batch is out. */
	if (c->txoff == c->txlen && c->qsent - c->qdone < o.depth &&
	    now_ns() < t_end) {
		oracle_fill(c);
		if (conn_flush(c) == -1)
			conn_lost(w, c);
	}
}

static void
conn_begin(struct worker *w, struct conn *c)
{
	c->txoff = c->txlen = c->rxoff = 0;
	switch (o.mode) {
	case M_PINGPONG:
	case M_CONNECT:
		if (o.size > 0)
			pp_send(w, c);
		else	/* the greeting may have come with the connect's edge */
			greet_io(w, c);
		break;
	case M_BULK:
		c->tx = c->rx = 0;
		bulk_io(w, c, 0);
		break;
	case M_CHARGEN:
		c->tx = c->rx = 0;
		chargen_io(w, c, 0);
		break;
	case M_DISCARD:
		c->tx = c->rx = 0;
		discard_io(w, c, 0);
		break;
	case M_ORACLE:
		/* Questions unanswered on a closed connection are dropped. */
		c->qsent = c->qdone = 0;
		c->phase = PH_QUESTION;
		c->pos = 0;
		oracle_io(w, c, 0);
		break;
	case M_HOLD:
	case M_UDP:		/* run_udp(): no connections */
		break;
	}
}

static void
handle_event(struct worker *w, struct conn *c, uint32_t ev)
{
	int err;

	if (c->state == CS_CONNECTING) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if ((err = so_error(c->fd)) != 0 ||
		    (o.proxy != 0 && (err = proxy_header(c)) != 0)) {
			conn_failed(w, c, err);
			return;
		}
		c->state = CS_ACTIVE;
		conn_begin(w, c);
		return;
	}
	if (c->state != CS_ACTIVE)
		return;
	switch (o.mode) {
	case M_BULK:
		bulk_io(w, c, ev);
		break;
	case M_CHARGEN:
		chargen_io(w, c, ev);
		break;
	case M_DISCARD:
		discard_io(w, c, ev);
		break;
	case M_ORACLE:
		oracle_io(w, c, ev);
		break;
	default:
		if (o.mode == M_CONNECT && o.size == 0)
			greet_io(w, c);
		else
			pp_io(w, c, ev);
		break;
	}
}

static void
unpark(struct worker *w, uint64_t now)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < w->nconns && w->nparked > 0; i++) {
		c = &w->conns[i];
		if (c->state == CS_PARKED && c->retry_at <= now) {
			w->nparked--;
			c->state = CS_IDLE;
			conn_restart(w, c);
		}
	}
}

/* Serve events until the deadline (or, in hold, until nothing is owed). */
static void
event_loop(struct worker *w, uint64_t deadline)
{
	struct epoll_event evs[512];
	struct conn *c;
	uint64_t now, left;
	int n, k, ms;

	for (;;) {
		now = now_ns();
		if (now >= deadline || (o.mode == M_HOLD && w->waiting == 0))
			break;
		if (w->nparked > 0)
			unpark(w, now);
		left = (deadline - now) / MSEC + 1;
		ms = w->nparked > 0 ? 1 : left < 20 ? (int)left : 20;
		n = epoll_wait(w->ep, evs, 512, ms);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (k = 0; k < n; k++) {
			c = event_conn(w, evs[k].data.u64);
			if (c != NULL)
				handle_event(w, c, evs[k].events);
		}
	}
}

/*
 * Per-connection buffers come from two slabs, allocated once: message
 * (or question batch) buffers and oracle send times.
 */
static struct conn *
conns_alloc(void)
{
	struct conn *cs;
	unsigned char *tx = NULL;
	uint64_t *qt = NULL;
	char *qx = NULL;
	size_t txsize = 0, i;

	if (o.mode == M_ORACLE)
		txsize = (size_t)o.depth * QLEN;
	else if (!STREAM_MODE(o.mode))
		txsize = o.size;
	if ((cs = calloc(o.conns, sizeof(*cs))) == NULL)
		die("calloc");
	if (txsize > 0 && (tx = malloc(txsize * o.conns)) == NULL)
		die("malloc");
	if (o.mode == M_ORACLE &&
	    ((qt = calloc((size_t)o.depth * o.conns, sizeof(*qt))) == NULL ||
	    (qx = calloc((size_t)o.depth * o.conns, QLEN)) == NULL))
		die("calloc");
	for (i = 0; i < o.conns; i++) {
		cs[i].fd = -1;
		cs[i].id = (unsigned)i;
		cs[i].base = (i * 2654435761u) % PATTERN_LEN;
		if (tx != NULL) {
			cs[i].txbuf = tx + i * txsize;
			fill_random(cs[i].txbuf, txsize, i + 1);
		}
		if (qt != NULL) {
			cs[i].qtimes = qt + i * o.depth;
			cs[i].qtexts = qx + (size_t)i * o.depth * QLEN;
		}
	}
	return cs;
}

/* The slabs start at the first connection's buffers. */
static void
conns_free(struct conn *cs)
{
	free(cs[0].txbuf);
	free(cs[0].qtimes);
	free(cs[0].qtexts);
	free(cs);
}

static void
worker_init(struct worker *w, struct conn *cs, unsigned n)
{
	memset(w, 0, sizeof(*w));
	w->conns = cs;
	w->nconns = n;
	w->window = o.window / o.threads > 0 ? o.window / o.threads : 1;
	if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	if ((w->rbuf = malloc(RBUF_SIZE)) == NULL ||
	    (w->hist = calloc(1, sizeof(*w->hist))) == NULL)
		die("malloc");
}

/* Everything is freed, so a sanitizer build exits clean. */
static void
worker_free(struct worker *w)
{
	close(w->ep);
	free(w->rbuf);
	free(w->hist);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	/* Connect mode opens its own connections as part of the work. */
	if (o.mode != M_CONNECT)
		open_all(w);
	pthread_barrier_wait(&barrier);		/* all opened */
	pthread_barrier_wait(&barrier);		/* clock set by main */
	if (!abort_run) {
		w->running = 1;
		for (i = 0; i < w->nconns; i++) {
			if (o.mode == M_CONNECT)
				conn_restart(w, &w->conns[i]);
			else if (w->conns[i].state == CS_ACTIVE)
				conn_begin(w, &w->conns[i]);
		}
		event_loop(w, t_end);
	}
	/* A server that starves a connection is as wrong as one that lies. */
	for (i = 0; i < w->nconns; i++) {
		if (o.mode != M_CONNECT && w->conns[i].wops == 0)
			w->starved++;
		conn_close(&w->conns[i]);
	}
	return NULL;
}

static void
print_common(void)
{
	printf("mode=%s host=%s port=%u conns=%u threads=%u", mode_names[o.mode],
	    o.host, o.port, o.conns, o.threads);
}

static void
print_eol(void)
{
	size_t i;

	printf(" eol=");
	if (o.eollen == 0)
		printf("none");
	for (i = 0; i < o.eollen; i++) {
		if (o.eol[i] == '\r')
			printf("\\r");
		else if (o.eol[i] == '\n')
			printf("\\n");
		else if (o.eol[i] == '\t')
			printf("\\t");
		else if (o.eol[i] == '\\')
			printf("\\\\");
		else
			putchar(o.eol[i]);
	}
}

static void
report_traffic(const struct worker *t, const struct hist *h, double secs)
{
	double rate = (double)t->ops / secs;
	double p50 = hist_pct(h, 0.50) / 1e3, p99 = hist_pct(h, 0.99) / 1e3;
	double p999 = hist_pct(h, 0.999) / 1e3, mx = hist_max(h) / 1e3;
	const char *unit = o.mode == M_ORACLE ? "questions" :
	    o.mode == M_CONNECT ? "connections" : "msgs";

	print_common();
	printf(" duration=%.3f", secs);
	if (STREAM_MODE(o.mode)) {
		printf(" inflight=%zu bytes=%llu mbps=%.2f", o.inflight,
		    (unsigned long long)t->bytes, (double)t->bytes / secs / 1e6);
	} else {
		if (o.mode == M_ORACLE) {
			printf(" depth=%u", o.depth);
			print_eol();
		} else
			printf(" size=%zu", o.size);
		printf(" %s=%llu rate=%.1f p50_us=%.1f p99_us=%.1f "
		    "p999_us=%.1f max_us=%.1f", unit,
		    (unsigned long long)t->ops, rate, p50, p99, p999, mx);
	}
	printf(" errors=%llu closed=%llu starved=%llu reconnects=%llu "
	    "connfail=%llu\n",
	    (unsigned long long)t->errors, (unsigned long long)t->closed,
	    (unsigned long long)t->starved,
	    (unsigned long long)t->reconnects,
	    (unsigned long long)t->connfail);

	if (STREAM_MODE(o.mode))
		printf("%s: %.1f MB/s %s over %u connections, %llu errors\n",
		    mode_names[o.mode], (double)t->bytes / secs / 1e6,
		    o.mode == M_BULK ? "echoed and verified" :
		    o.mode == M_CHARGEN ? "read and verified" : "sent",
		    o.conns, (unsigned long long)(t->errors + t->closed));
	else
		printf("%s: %.0f %s/s over %u connections, latency us "
		    "p50 %.1f p99 %.1f p99.9 %.1f, %llu errors\n",
		    mode_names[o.mode], rate, unit, o.conns, p50, p99, p999,
		    (unsigned long long)(t->errors + t->closed));
	if (t->starved > 0)
		printf("%s: %llu connections made no progress while measured\n",
		    mode_names[o.mode], (unsigned long long)t->starved);
	if (t->connfail > 0)
		printf("%s: %llu connects failed (last: %s)\n",
		    mode_names[o.mode], (unsigned long long)t->connfail,
		    strerror(t->lasterr));
}

/* Measuring with fewer connections than asked would mislead: give up. */
static void
check_opened(const struct worker *ws)
{
	unsigned i, opened = 0;
	int err = 0;

	for (i = 0; i < o.threads; i++) {
		opened += ws[i].opened;
		if (ws[i].lasterr != 0)
			err = ws[i].lasterr;
	}
	if (opened < o.conns) {
		fprintf(stderr, "loadgen: opened only %u of %u connections to "
		    "%s port %u (last error: %s)\n", opened, o.conns, o.host,
		    o.port, strerror(err));
		abort_run = 1;
	}
}

static void
collect(struct worker *total, struct hist *h, const struct worker *w)
{
	unsigned j;

	total->ops += w->ops;
	total->bytes += w->bytes;
	total->errors += w->errors;
	total->closed += w->closed;
	total->reconnects += w->reconnects;
	total->connfail += w->connfail;
	total->starved += w->starved;
	if (w->lasterr != 0)
		total->lasterr = w->lasterr;
	for (j = 0; j < HIST_BUCKETS; j++)
		h->b[j] += w->hist->b[j];
	h->n += w->hist->n;
}

/* ---- udp: datagrams, each one checked ------------------------------ */

/*
 * Each flow is a connected UDP socket keeping -p datagrams in flight:
 * one slot each, the slot's sequence number in the datagram's header
 * (flow, sequence) and the rest a pattern of both, so a reply is
 * matched and checked byte for byte.  A reply not back in
 * UDP_LOST_AFTER counts as lost and its slot sends a new datagram:
 * UDP may drop, and a run must neither stall nor hide it.
 */
#define UDP_HDR		16
#define UDP_MAX		65507
#define UDP_LOST_AFTER	(200 * 1000000ull)

struct uflow {
	int		 fd;
	uint64_t	 id;
	uint64_t	 next;		/* next sequence number */
	uint64_t	*seq;		/* per slot: in flight */
	uint64_t	*sent;		/* ... sent at; 0: free */
};

struct uworker {
	pthread_t	 thread;
	struct uflow	*flows;
	unsigned	 nflows;
	unsigned char	*buf;
	uint64_t	 ops, lost, late, errors, senderr;
};

static void
udp_fill(unsigned char *p, uint64_t flow, uint64_t seq, size_t len)
{
	size_t i;

	memcpy(p, &flow, 8);
	memcpy(p + 8, &seq, 8);
	for (i = UDP_HDR; i < len; i++)
		p[i] = (unsigned char)(seq * 31 + flow * 7 + i);
}

static int
udp_check(const unsigned char *p, uint64_t flow, uint64_t seq, size_t len)
{
	size_t i;

	for (i = UDP_HDR; i < len; i++)
		if (p[i] != (unsigned char)(seq * 31 + flow * 7 + i))
			return -1;
	return 0;
}

static void
udp_send_slot(struct uworker *w, struct uflow *f, unsigned slot,
    uint64_t now)
{
	uint64_t seq = f->next++;

	udp_fill(w->buf, f->id, seq, o.size);
	f->seq[slot] = seq;
	f->sent[slot] = now;
	/* A send the kernel refuses is a datagram lost: it times out. */
	if (send(f->fd, w->buf, o.size, MSG_DONTWAIT) != (ssize_t)o.size)
		w->senderr++;
}

static void
udp_receive(struct uworker *w, struct uflow *f, uint64_t now, int measure)
{
	uint64_t flow, seq;
	unsigned slot;
	ssize_t n;

	while ((n = recv(f->fd, w->buf, UDP_MAX, MSG_DONTWAIT)) >= 0) {
		if ((size_t)n != o.size) {
			w->errors++;
			continue;
		}
		memcpy(&flow, w->buf, 8);
		memcpy(&seq, w->buf + 8, 8);
		slot = (unsigned)(seq % o.depth);
		if (flow != f->id || udp_check(w->buf, flow, seq, o.size)) {
			w->errors++;
			continue;
		}
		if (f->sent[slot] == 0 || f->seq[slot] != seq) {
			w->late++;	/* counted lost already, or doubled */
			continue;
		}
		if (measure)
			w->ops++;
		udp_send_slot(w, f, slot, now);
	}
}

/* Slots waiting too long: lost, and sent again with a new number. */
static void
udp_expire(struct uworker *w, struct uflow *f, uint64_t now, int measure)
{
	unsigned s;

	for (s = 0; s < o.depth; s++)
		if (now - f->sent[s] > UDP_LOST_AFTER) {
			if (measure)
				w->lost++;
			udp_send_slot(w, f, s, now);
		}
}

static void *
udp_worker(void *arg)
{
	struct uworker *w = arg;
	uint64_t now, t0, t1, last_scan = 0;
	unsigned i, s;
	int ep = epoll_create1(EPOLL_CLOEXEC), n, k, measure;
	struct epoll_event ev, evs[64];

	if (ep == -1)
		die("epoll_create1");
	for (i = 0; i < w->nflows; i++) {
		ev.events = EPOLLIN;
		ev.data.ptr = &w->flows[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->flows[i].fd, &ev) == -1)
			die("epoll_ctl");
	}
	pthread_barrier_wait(&barrier);
	t0 = now_ns() + secs_to_ns(o.warmup);
	t1 = t0 + secs_to_ns(o.duration);
	now = now_ns();
	for (i = 0; i < w->nflows; i++)
		for (s = 0; s < o.depth; s++)
			udp_send_slot(w, &w->flows[i], s, now);
	while ((now = now_ns()) < t1 && !abort_run) {
		measure = now >= t0;
		n = epoll_wait(ep, evs, 64, 5);
		now = now_ns();
		for (k = 0; k < n; k++)
			udp_receive(w, evs[k].data.ptr, now, measure);
		if (now - last_scan > 10 * 1000000ull) {
			for (i = 0; i < w->nflows; i++)
				udp_expire(w, &w->flows[i], now, measure);
			last_scan = now;
		}
	}
	close(ep);
	return NULL;
}

static void
udp_flow_open(struct uflow *f, uint64_t id)
{
	int big = 4 << 20;

	f->id = id;
	if ((f->fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) ==
	    -1)
		die("socket");
	setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (connect(f->fd, (struct sockaddr *)&dst, dstlen) == -1)
		die("connect");
	f->seq = calloc(o.depth, sizeof(*f->seq));
	f->sent = calloc(o.depth, sizeof(*f->sent));
	if (f->seq == NULL || f->sent == NULL)
		die("calloc");
}

static int
run_udp(void)
{
	struct uworker *ws = calloc(o.threads, sizeof(*ws)), t;
	unsigned i, j, id = 0;

	if (o.size < UDP_HDR || o.size > UDP_MAX)
		fail_usage("udp: -s must be 16 to 65507", NULL);
	if (ws == NULL)
		die("calloc");
	memset(&t, 0, sizeof(t));
	pthread_barrier_init(&barrier, NULL, o.threads);
	for (i = 0; i < o.threads; i++) {
		ws[i].nflows = o.conns / o.threads + (i < o.conns % o.threads);
		ws[i].flows = calloc(ws[i].nflows, sizeof(*ws[i].flows));
		if (ws[i].flows == NULL ||
		    (ws[i].buf = malloc(UDP_MAX)) == NULL)
			die("malloc");
		for (j = 0; j < ws[i].nflows; j++)
			udp_flow_open(&ws[i].flows[j], id++);
		if (pthread_create(&ws[i].thread, NULL, udp_worker, &ws[i]))
			die("pthread_create");
	}
	for (i = 0; i < o.threads; i++) {
		pthread_join(ws[i].thread, NULL);
		t.ops += ws[i].ops;
		t.lost += ws[i].lost;
		t.late += ws[i].late;
		t.errors += ws[i].errors;
		t.senderr += ws[i].senderr;
		for (j = 0; j < ws[i].nflows; j++) {
			close(ws[i].flows[j].fd);
			free(ws[i].flows[j].seq);
			free(ws[i].flows[j].sent);
		}
		free(ws[i].flows);
		free(ws[i].buf);
	}
	free(ws);
	print_common();
	printf(" duration=%.3f size=%zu depth=%u msgs=%llu rate=%.1f lost=%llu "
	    "late=%llu senderr=%llu errors=%llu\n", o.duration, o.size,
	    o.depth, (unsigned long long)t.ops, (double)t.ops / o.duration,
	    (unsigned long long)t.lost, (unsigned long long)t.late,
	    (unsigned long long)t.senderr, (unsigned long long)t.errors);
	printf("udp: %.0f datagrams/s echoed and checked over %u flows, "
	    "%llu lost (%.3f%%), %llu wrong\n", (double)t.ops / o.duration,
	    o.conns, (unsigned long long)t.lost, t.ops + t.lost ? 100.0 *
	    (double)t.lost / (double)(t.ops + t.lost) : 0.0,
	    (unsigned long long)t.errors);
	return t.errors > 0 ? 1 : 0;
}

static int
run_traffic(void)
{
	struct worker *ws, total;
	struct hist *h;
	struct conn *cs;
	unsigned i, lo, hi;
	int rc;

	cs = conns_alloc();
	if ((ws = calloc(o.threads, sizeof(*ws))) == NULL ||
	    (h = calloc(1, sizeof(*h))) == NULL)
		die("calloc");
	if (pthread_barrier_init(&barrier, NULL, o.threads + 1) != 0)
		die("pthread_barrier_init");
	for (i = 0; i < o.threads; i++) {
		lo = (unsigned)((uint64_t)o.conns * i / o.threads);
		hi = (unsigned)((uint64_t)o.conns * (i + 1) / o.threads);
		worker_init(&ws[i], cs + lo, hi - lo);
		if ((rc = pthread_create(&ws[i].thread, NULL, worker_main,
		    &ws[i])) != 0) {
			errno = rc;
			die("pthread_create");
		}
	}
	pthread_barrier_wait(&barrier);
	if (o.mode != M_CONNECT)
		check_opened(ws);
	t_measure = now_ns() + secs_to_ns(o.warmup);
	t_end = t_measure + secs_to_ns(o.duration);
	pthread_barrier_wait(&barrier);

	memset(&total, 0, sizeof(total));
	for (i = 0; i < o.threads; i++) {
		pthread_join(ws[i].thread, NULL);
		collect(&total, h, &ws[i]);
		worker_free(&ws[i]);
	}
	pthread_barrier_destroy(&barrier);
	conns_free(cs);
	free(ws);
	if (abort_run) {
		free(h);
		return 3;
	}
	report_traffic(&total, h, (double)(t_end - t_measure) / 1e9);
	free(h);
	if (total.errors > 0 || total.closed > 0)
		return 1;
	if (STREAM_MODE(o.mode))
		return total.bytes == 0 ? 3 : 0;
	return total.ops == 0 ? 3 : 0;
}

static long
rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/*
 * One echo round over every held connection, all at once.  Whatever
 * has not answered by the deadline is closed and no longer held.
 * Returns the number that answered.
 */
static unsigned
hold_round(struct worker *w)
{
	struct conn *c;
	unsigned i, answered = 0;

	w->waiting = 0;
	for (i = 0; i < w->nconns; i++) {
		c = &w->conns[i];
		if (c->state != CS_ACTIVE)
			continue;
		c->done = 0;
		w->waiting++;
		pp_send(w, c);
	}
	event_loop(w, now_ns() + ROUND_TIMEOUT);
	for (i = 0; i < w->nconns; i++) {
		c = &w->conns[i];
		if (c->state != CS_ACTIVE)
			continue;
		if (c->done)
			answered++;
		else
			conn_kill(w, c);
	}
	return answered;
}

/* Idle for a while, but notice connections the server drops. */
static void
hold_idle(struct worker *w, double secs)
{
	struct epoll_event evs[512];
	struct conn *c;
	uint64_t deadline = now_ns() + secs_to_ns(secs), now;
	int n, k;

	while ((now = now_ns()) < deadline) {
		n = epoll_wait(w->ep, evs, 512,
		    (int)((deadline - now) / MSEC) + 1);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (k = 0; k < n; k++) {
			c = event_conn(w, evs[k].data.u64);
			if (c != NULL && c->state == CS_ACTIVE &&
			    (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
				w->dropped++;
				conn_kill(w, c);
			}
		}
	}
}

static long
per_conn(long before_kb, long after_kb, unsigned n)
{
	if (before_kb < 0 || after_kb < 0 || n == 0)
		return -1;
	return (after_kb - before_kb) * 1024 / (long)n;
}

struct hold_result {
	unsigned	 held, answered, answered_idle;
	double		 open_s, echo_s, echo_idle_s;
	long		 rss_before, rss_open, rss_echo, rss_idle;	/* KiB */
};

static void
report_hold(const struct worker *w, const struct hold_result *r, int idle)
{
	long after = idle ? r->rss_idle : r->rss_echo;

	print_common();
	printf(" size=%zu held=%u open_s=%.3f answered=%u echo_s=%.3f "
	    "idle_s=%.1f answered_idle=%d echo_idle_s=%.3f dropped=%llu "
	    "retries=%llu errors=%llu rss_before_kb=%ld rss_open_kb=%ld "
	    "rss_echo_kb=%ld rss_idle_kb=%ld bytes_per_conn_open=%ld "
	    "bytes_per_conn_echo=%ld bytes_per_conn_idle=%ld\n", o.size,
	    r->held, r->open_s, r->answered, r->echo_s, o.duration,
	    idle ? (int)r->answered_idle : -1, r->echo_idle_s,
	    (unsigned long long)w->dropped, (unsigned long long)w->retries,
	    (unsigned long long)w->errors, r->rss_before, r->rss_open,
	    r->rss_echo, r->rss_idle,
	    per_conn(r->rss_before, r->rss_open, r->held),
	    per_conn(r->rss_before, r->rss_echo, r->answered),
	    per_conn(r->rss_before, r->rss_idle, r->answered));
	printf("hold: %u of %u connections held (opened in %.2f s), %u "
	    "answered", r->held, o.conns, r->open_s, r->answered);
	if (idle)
		printf(", %u still answered after %.1f s idle",
		    r->answered_idle, o.duration);
	if (r->rss_before >= 0)
		printf("; server RSS %ld -> %ld KiB, %ld bytes/connection",
		    r->rss_before, after,
		    per_conn(r->rss_before, after, r->answered));
	printf("\n");
	if (r->held < o.conns && w->lasterr != 0)
		printf("hold: last connect error: %s\n", strerror(w->lasterr));
}

/*
 * Open, check every connection echoes, optionally idle and check again;
 * the server's RSS is read between the steps.
 */
static int
run_hold(void)
{
	struct hold_result r;
	struct worker w;
	uint64_t t0;
	int idle = o.duration > 0.0, rc = 0;
	unsigned i;

	memset(&r, 0, sizeof(r));
	r.rss_idle = -1;
	worker_init(&w, conns_alloc(), o.conns);
	if ((r.rss_before = rss_kb(o.pid)) < 0 && o.pid > 0)
		fprintf(stderr, "loadgen: cannot read VmRSS of pid %ld\n",
		    o.pid);
	t0 = now_ns();
	r.held = open_all(&w);
	r.open_s = (double)(now_ns() - t0) / 1e9;
	r.rss_open = rss_kb(o.pid);
	w.running = 1;
	t0 = now_ns();
	r.answered = hold_round(&w);
	r.echo_s = (double)(now_ns() - t0) / 1e9;
	r.rss_echo = rss_kb(o.pid);
	if (idle) {
		hold_idle(&w, o.duration);
		r.rss_idle = rss_kb(o.pid);
		t0 = now_ns();
		r.answered_idle = hold_round(&w);
		r.echo_idle_s = (double)(now_ns() - t0) / 1e9;
	}
	report_hold(&w, &r, idle);

	if (w.errors > 0)
		rc = 1;
	else if (r.held < o.conns || r.answered < r.held ||
	    (idle && r.answered_idle < r.held))
		rc = 3;
	for (i = 0; i < w.nconns; i++)
		conn_close(&w.conns[i]);
	conns_free(w.conns);
	worker_free(&w);
	return rc;
}

int
main(int argc, char **argv)
{
	uint64_t seed = 0x5eed;
	unsigned limit;
	int rc;

	parse_args(argc, argv);
	resolve_target();
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* A hard bound on the whole run, whatever the server does. */
	limit = (unsigned)(OPEN_TIMEOUT / NSEC + 30);
	if (o.mode == M_HOLD)
		limit += (unsigned)(2 * ROUND_TIMEOUT / NSEC + o.duration);
	else
		limit += (unsigned)(o.warmup + o.duration);
	alarm(limit);

	if (o.mode == M_BULK || o.mode == M_DISCARD) {
		if ((pattern = malloc(PATTERN_LEN + RBUF_SIZE)) == NULL)
			die("malloc");
		fill_random(pattern, PATTERN_LEN, seed);
		/* The tail repeats the head, so any chunk is contiguous. */
		memcpy(pattern + PATTERN_LEN, pattern, RBUF_SIZE);
	}
	if (o.mode == M_CHARGEN)
		chargen_init();
	rc = o.mode == M_HOLD ? run_hold() : o.mode == M_UDP ? run_udp() :
	    run_traffic();
	free(pattern);
	return rc;
}
