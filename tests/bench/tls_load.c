/*
 * tls_load - TLS load client for the echo-oracled benchmarks.
 *
 * Two modes against a TLS echo server (the daemon's TLS listener, or
 * stunnel in front of a plain echo):
 *
 *   handshake  each connection does connect, a full handshake (no
 *              session is ever resumed), one small echo round trip
 *              and close, then starts again; counts the cycles that
 *              finish in the measured window.
 *   bulk       each connection sends -m MiB of a known stream and
 *              reads it back at once, every byte compared in order.
 *
 * poll() loop per thread, non-blocking sockets and SSL objects.  A
 * run prints one machine-readable line starting with "mode=" and one
 * line for people.
 *
 * Exit status: 0 ok; 1 wrong bytes came back, or a connection or
 * handshake failed; 2 usage or setup error; 3 incomplete (bulk did
 * not finish within -d, or nothing completed); 4 hard time limit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* IN6 macros */
#endif

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_CONNS	4096
#define MAX_THREADS	16
#define MAX_MSG		4096		/* handshake mode's echo message */
#define IO_CHUNK	(64 * 1024)	/* largest single read or write */
#define NSEC		1000000000ull
#define OPEN_TIMEOUT	(10 * NSEC)	/* bulk: all handshakes done by then */
#define GRACE_SECS	30		/* hard limit beyond the planned run */

/*
 * The bulk stream is this pattern read cyclically from a per-connection
 * start.  Its length is a prime larger than any in-flight window, so a
 * chunk lost, repeated or swapped shifts the stream against the pattern
 * and the comparison fails; connections start at different offsets, so
 * bytes crossing from one connection to another fail too.  IO_CHUNK
 * more bytes repeat its start: any offset begins a contiguous chunk.
 */
#define PATTERN_LEN	1048573u
#define MAX_WINDOW	(PATTERN_LEN / 2)

enum mode { M_HANDSHAKE, M_BULK };

/* A connection's life; handshake mode loops from CS_CONNECTING again. */
enum cstate {
	CS_IDLE,	/* no socket */
	CS_CONNECTING,	/* non-blocking connect() in progress */
	CS_HANDSHAKE,	/* SSL_connect() not finished */
	CS_SEND,	/* handshake mode: writing the echo message */
	CS_RECV,	/* handshake mode: reading it back */
	CS_STREAM,	/* bulk mode: writing and reading the stream */
	CS_DONE		/* finished or failed, socket closed */
};

struct conn {
	int		 fd;
	SSL		*ssl;
	enum cstate	 state;
	short		 events;	/* what poll() waits for */
	unsigned	 id;
	size_t		 off;		/* handshake: message bytes done */
	uint64_t	 base;		/* pattern offset of byte 0 */
	uint64_t	 tx, rx;	/* stream bytes written / verified */
	int		 wlen;		/* SSL_write to repeat, 0: none */
};

struct worker {
	pthread_t	 tid;
	struct conn	*cs;
	struct pollfd	*pfd;
	unsigned	 n;
	uint64_t	 t_begin, t_end;	/* measured window */
	uint64_t	 done;		/* cycles or streams completed */
	uint64_t	 cycles;	/* handshake: all, warm-up too */
	uint64_t	 failures;	/* connect, handshake or I/O failed */
	uint64_t	 errors;	/* wrong bytes */
	uint64_t	 bytes;		/* bulk: bytes verified */
	uint64_t	 s_begin, s_end;	/* bulk: streaming interval */
	int		 incomplete;
	char		 why[160];	/* the first failure, for people */
	char		 proto[32], cipher[64];
};

static struct {
	enum mode	 mode;
	const char	*host;
	unsigned	 port;
	unsigned	 conns, threads;
	double		 secs, warm;
	unsigned	 mib;
	size_t		 msg, window;
	const char	*version;	/* "1.2", "1.3" or NULL: negotiate */
	const char	*cafile;
	int		 insecure;
	const char	*cert, *key;
} o;

static struct sockaddr_storage dst;
static socklen_t dstlen;
static int dst_is_ip;
static SSL_CTX *ctx;
static unsigned char *pattern;
static pthread_barrier_t streaming;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tls_load handshake|bulk [-H host] [-o port] [-c conns]\n"
	    "         [-T threads] [-d secs] [-w secs] [-m MiB] [-s bytes]\n"
	    "         [-i bytes] [-V 1.2|1.3] (-A cafile | -k)\n"
	    "         [-C certfile -K keyfile]\n"
	    "  handshake  connect, full handshake, echo -s bytes (default\n"
	    "             64), close, again; -c in flight (default 32)\n"
	    "             for -d s (default 5) after -w s warm-up (default 1)\n"
	    "  bulk       -c connections (default 8) each send -m MiB\n"
	    "             (default 32) and read it back, at most -i bytes\n"
	    "             (default 262144) unechoed; -d is the time limit\n"
	    "             (default 120)\n"
	    "  -H host    loopback only (default 127.0.0.1); -o port (17443)\n"
	    "  -V         TLS version to insist on (default: negotiate)\n"
	    "  -A cafile  verify the server's chain and its name or address\n"
	    "  -k         do not verify the server\n"
	    "  -C, -K     client certificate chain and key (mutual TLS)\n");
}

static void
fail_usage(const char *what, const char *arg)
{
	fprintf(stderr, "tls_load: %s%s%s\n", what, arg ? ": " : "",
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

static unsigned long
parse_num(const char *s, unsigned long min, unsigned long max,
    const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max ||
	    s[0] == '-')
		fail_usage(what, s);
	return v;
}

static double
parse_secs(const char *s, double min, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min) ||
	    v > 3600)
		fail_usage(what, s);
	return v;
}

static void
set_defaults(const char *name)
{
	if (strcmp(name, "handshake") == 0) {
		o.mode = M_HANDSHAKE;
		o.conns = 32;
	} else if (strcmp(name, "bulk") == 0) {
		o.mode = M_BULK;
		o.conns = 8;
	} else
		fail_usage("unknown mode", name);
	o.host = "127.0.0.1";
	o.port = 17443;
	o.threads = 1;
	o.secs = o.mode == M_BULK ? 120 : 5;
	o.warm = 1;
	o.mib = 32;
	o.msg = 64;
	o.window = 256 * 1024;
}

static void
parse_args(int argc, char **argv)
{
	int ch;

	if (argc < 2 || argv[1][0] == '-') {
		usage(argc < 2 ? stderr : stdout);
		exit(argc < 2 ? 2 : 0);
	}
	set_defaults(argv[1]);
	optind = 2;
	while ((ch = getopt(argc, argv, "H:o:c:T:d:w:m:s:i:V:A:kC:K:")) != -1) {
		switch (ch) {
		case 'H':
			o.host = optarg;
			break;
		case 'o':
			o.port = (unsigned)parse_num(optarg, 1, 65535, "-o");
			break;
		case 'c':
			o.conns = (unsigned)parse_num(optarg, 1, MAX_CONNS,
			    "-c");
			break;
		case 'T':
			o.threads = (unsigned)parse_num(optarg, 1, MAX_THREADS,
			    "-T");
			break;
		case 'd':
			o.secs = parse_secs(optarg, 0.1, "-d");
			break;
		case 'w':
			o.warm = parse_secs(optarg, 0, "-w");
			break;
		case 'm':
			o.mib = (unsigned)parse_num(optarg, 1, 65536, "-m");
			break;
		case 's':
			o.msg = parse_num(optarg, 1, MAX_MSG, "-s");
			break;
		case 'i':
			o.window = parse_num(optarg, 1, MAX_WINDOW, "-i");
			break;
		case 'V':
			o.version = optarg;
			break;
		case 'A':
			o.cafile = optarg;
			break;
		case 'k':
			o.insecure = 1;
			break;
		case 'C':
			o.cert = optarg;
			break;
		case 'K':
			o.key = optarg;
			break;
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		fail_usage("unexpected argument", argv[optind]);
	if ((o.cafile == NULL) == !o.insecure)
		fail_usage("give exactly one of -A cafile and -k", NULL);
	if ((o.cert == NULL) != (o.key == NULL))
		fail_usage("-C and -K go together", NULL);
	if (o.version != NULL && strcmp(o.version, "1.2") != 0 &&
	    strcmp(o.version, "1.3") != 0)
		fail_usage("-V is 1.2 or 1.3", o.version);
	if (o.threads > o.conns)
		o.threads = o.conns;
}

/* Traffic stays on this machine: 127.0.0.0/8 and ::1 only. */
static int
loopback_addr(const struct sockaddr *sa)
{
	const unsigned char *b;

	if (sa->sa_family == AF_INET) {
		b = (const unsigned char *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
		return b[0] == 127;
	}
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr);
	return 0;
}

static void
resolve(void)
{
	struct addrinfo hints, *res, *ai;
	unsigned char tmp[sizeof(struct in6_addr)];
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", o.port);
	if ((rc = getaddrinfo(o.host, port, &hints, &res)) != 0) {
		fprintf(stderr, "tls_load: %s: %s\n", o.host, gai_strerror(rc));
		exit(2);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (!loopback_addr(ai->ai_addr)) {
			fprintf(stderr, "tls_load: %s: not a loopback address;"
			    " refusing to leave this machine\n", o.host);
			exit(2);
		}
	}
	memcpy(&dst, res->ai_addr, res->ai_addrlen);
	dstlen = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	dst_is_ip = inet_pton(AF_INET, o.host, tmp) == 1 ||
	    inet_pton(AF_INET6, o.host, tmp) == 1;
}

static void
fatal_ssl(const char *what, const char *arg)
{
	fprintf(stderr, "tls_load: %s %s: ", what, arg);
	ERR_print_errors_fp(stderr);
	fputc('\n', stderr);
	exit(2);
}

/*
 * One context for every connection.  No session cache and no tickets:
 * nothing is ever resumed, so each handshake in handshake mode is a
 * full one, which is what a TLS terminator is measured by.
 */
static void
ctx_init(void)
{
	int v;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		fatal_ssl("SSL_CTX_new", "");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (o.version != NULL) {
		v = strcmp(o.version, "1.2") == 0 ? TLS1_2_VERSION :
		    TLS1_3_VERSION;
		if (!SSL_CTX_set_min_proto_version(ctx, v) ||
		    !SSL_CTX_set_max_proto_version(ctx, v))
			fatal_ssl("setting version", o.version);
	}
	if (o.cafile != NULL) {
		if (!SSL_CTX_load_verify_locations(ctx, o.cafile, NULL))
			fatal_ssl("loading CA file", o.cafile);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (o.cert != NULL) {
		if (!SSL_CTX_use_certificate_chain_file(ctx, o.cert))
			fatal_ssl("loading certificate", o.cert);
		if (!SSL_CTX_use_PrivateKey_file(ctx, o.key, SSL_FILETYPE_PEM))
			fatal_ssl("loading key", o.key);
		if (!SSL_CTX_check_private_key(ctx))
			fatal_ssl("key does not match certificate", o.key);
	}
}

/* splitmix64: a cheap, well-mixed stream for the pattern. */
static uint64_t
mix(uint64_t *s)
{
	uint64_t z;

	z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
pattern_init(void)
{
	uint64_t s = 0x746c735f6c6f6164ull, r = 0;
	size_t i;

	if ((pattern = malloc(PATTERN_LEN + IO_CHUNK)) == NULL) {
		perror("tls_load: malloc");
		exit(2);
	}
	for (i = 0; i < PATTERN_LEN; i++) {
		if (i % 8 == 0)
			r = mix(&s);
		pattern[i] = (unsigned char)(r >> (i % 8 * 8));
	}
	memcpy(pattern + PATTERN_LEN, pattern, IO_CHUNK);
}

static const unsigned char *
pattern_at(uint64_t off)
{
	return pattern + off % PATTERN_LEN;
}

static void
on_alarm(int sig)
{
	static const char msg[] = "tls_load: hard time limit reached\n";
	ssize_t rc;

	(void)sig;
	rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)rc;
	_exit(4);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Remember the first failure's reason: one line for people. */
static void
note(struct worker *w, const char *what, int err)
{
	unsigned long e;

	if (w->why[0] != '\0')
		return;
	e = ERR_peek_last_error();
	if (e != 0)
		snprintf(w->why, sizeof(w->why), "%s: %s", what,
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
		    "OpenSSL error");
	else if (err != 0)
		snprintf(w->why, sizeof(w->why), "%s: %s", what, strerror(err));
	else
		snprintf(w->why, sizeof(w->why), "%s", what);
}

static void
conn_close(struct conn *c, int polite)
{
	if (c->ssl != NULL) {
		/* One close_notify, not waiting for the server's. */
		if (polite)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->events = 0;
	c->state = CS_DONE;
	ERR_clear_error();
}

static void
conn_failed(struct worker *w, struct conn *c, const char *what, int err)
{
	note(w, what, err);
	w->failures++;
	conn_close(c, 0);
}

static int
conn_ssl(struct conn *c)
{
	if ((c->ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd))
		return -1;
	if (o.cafile != NULL) {
		if (dst_is_ip) {
			if (!X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(c->ssl), o.host))
				return -1;
		} else if (!SSL_set1_host(c->ssl, o.host))
			return -1;
	}
	/* SNI carries names only, never an address (RFC 6066, 3). */
	if (!dst_is_ip && !SSL_set_tlsext_host_name(c->ssl, o.host))
		return -1;
	SSL_set_connect_state(c->ssl);
	return 0;
}

static void
conn_start(struct worker *w, struct conn *c)
{
	int one = 1;

	c->fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd == -1) {
		conn_failed(w, c, "socket", errno);
		return;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (conn_ssl(c) == -1) {
		conn_failed(w, c, "SSL_new", 0);
		return;
	}
	c->off = 0;
	if (connect(c->fd, (struct sockaddr *)&dst, dstlen) == 0) {
		c->state = CS_HANDSHAKE;
		c->events = POLLOUT;
	} else if (errno == EINPROGRESS) {
		c->state = CS_CONNECTING;
		c->events = POLLOUT;
	} else
		conn_failed(w, c, "connect", errno);
}

static void
record_session(struct worker *w, const struct conn *c)
{
	if (w->proto[0] != '\0')
		return;
	snprintf(w->proto, sizeof(w->proto), "%s", SSL_get_version(c->ssl));
	snprintf(w->cipher, sizeof(w->cipher), "%s",
	    SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
}

static int
in_window(const struct worker *w, uint64_t t)
{
	return t >= w->t_begin && t < w->t_end;
}

/* The poll events an SSL call that returned r waits for; 0: it failed. */
static short
ssl_wants(struct conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return POLLIN;
	case SSL_ERROR_WANT_WRITE:
		return POLLOUT;
	default:
		return 0;
	}
}

static void
ssl_failed(struct worker *w, struct conn *c, int r, const char *what,
    int saved_errno)
{
	int err;

	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_ZERO_RETURN)
		conn_failed(w, c, "server closed the connection", 0);
	else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
	    saved_errno == 0)
		conn_failed(w, c, "server closed the connection", 0);
	else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		conn_failed(w, c, what, saved_errno);
	else
		conn_failed(w, c, what, 0);
}

/* After an SSL call returned r <= 0: 0 waiting as it asks, -1 failed. */
static int
ssl_wait(struct worker *w, struct conn *c, int r, const char *what)
{
	int saved_errno = errno;
	short ev;

	if ((ev = ssl_wants(c, r)) != 0) {
		c->events = ev;
		return 0;
	}
	ssl_failed(w, c, r, what, saved_errno);
	return -1;
}

static void
send_step(struct worker *w, struct conn *c)
{
	int r;

	while (c->off < o.msg) {
		r = SSL_write(c->ssl, pattern_at(c->base + c->off),
		    (int)(o.msg - c->off));
		if (r <= 0) {
			(void)ssl_wait(w, c, r, "write");
			return;
		}
		c->off += (size_t)r;
	}
	c->state = CS_RECV;
	c->off = 0;
	c->events = POLLIN;
}

static void
recv_step(struct worker *w, struct conn *c)
{
	unsigned char buf[MAX_MSG];
	int r;

	while (c->off < o.msg) {
		r = SSL_read(c->ssl, buf, (int)(o.msg - c->off));
		if (r <= 0) {
			(void)ssl_wait(w, c, r, "read");
			return;
		}
		if (memcmp(buf, pattern_at(c->base + c->off), (size_t)r) != 0) {
			note(w, "wrong bytes in the echo", 0);
			w->errors++;
			conn_close(c, 0);
			return;
		}
		c->off += (size_t)r;
	}
	if (in_window(w, now_ns()))
		w->done++;
	w->cycles++;
	c->base += o.msg;
	conn_close(c, 1);
}

static int
bulk_read(struct worker *w, struct conn *c, unsigned char *buf)
{
	int r, saved_errno;

	for (;;) {
		r = SSL_read(c->ssl, buf, IO_CHUNK);
		if (r <= 0) {
			saved_errno = errno;
			if (ssl_wants(c, r) != 0)
				return 0;
			ssl_failed(w, c, r, "read", saved_errno);
			return -1;
		}
		if ((uint64_t)r > c->tx - c->rx ||
		    memcmp(buf, pattern_at(c->base + c->rx), (size_t)r) != 0) {
			note(w, (uint64_t)r > c->tx - c->rx ?
			    "more bytes back than were sent" :
			    "wrong bytes in the echo", 0);
			w->errors++;
			conn_close(c, 0);
			return -1;
		}
		c->rx += (uint64_t)r;
		w->bytes += (uint64_t)r;
	}
}

/*
 * Write while fewer than -i bytes are unechoed: a server that stops
 * reading while its replies wait (backpressure) cannot deadlock us.
 * A write that must wait is repeated with the same length, as
 * SSL_write() requires.
 */
static int
bulk_write(struct worker *w, struct conn *c, uint64_t total)
{
	uint64_t room;
	size_t len;
	int r, saved_errno;
	short ev;

	while (c->tx < total) {
		len = (size_t)c->wlen;
		if (len == 0) {
			if (c->tx - c->rx >= o.window)
				break;
			room = o.window - (c->tx - c->rx);
			if (room > total - c->tx)
				room = total - c->tx;
			len = room < IO_CHUNK ? (size_t)room : IO_CHUNK;
		}
		r = SSL_write(c->ssl, pattern_at(c->base + c->tx), (int)len);
		if (r <= 0) {
			saved_errno = errno;
			if ((ev = ssl_wants(c, r)) == 0) {
				ssl_failed(w, c, r, "write", saved_errno);
				return -1;
			}
			c->wlen = (int)len;
			c->events |= ev;
			return 0;
		}
		c->tx += (uint64_t)r;
		c->wlen = 0;
	}
	return 0;
}

static void
bulk_step(struct worker *w, struct conn *c)
{
	static _Thread_local unsigned char buf[IO_CHUNK];
	uint64_t total = (uint64_t)o.mib << 20;

	if (bulk_read(w, c, buf) == -1)
		return;
	if (c->rx == total) {
		w->done++;
		w->s_end = now_ns();
		conn_close(c, 1);
		return;
	}
	c->events = POLLIN;
	(void)bulk_write(w, c, total);
}

static void
handshake_step(struct worker *w, struct conn *c)
{
	int r;

	if ((r = SSL_connect(c->ssl)) != 1) {
		(void)ssl_wait(w, c, r, "handshake");
		return;
	}
	record_session(w, c);
	if (o.mode == M_BULK) {
		/* Parked until every connection is ready: see run_bulk(). */
		c->state = CS_STREAM;
		c->events = 0;
		return;
	}
	c->state = CS_SEND;
	send_step(w, c);
}

static void
connect_done(struct worker *w, struct conn *c)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		conn_failed(w, c, "connect", err);
		return;
	}
	c->state = CS_HANDSHAKE;
	handshake_step(w, c);
}

static void
conn_step(struct worker *w, struct conn *c)
{
	switch (c->state) {
	case CS_CONNECTING:
		connect_done(w, c);
		break;
	case CS_HANDSHAKE:
		handshake_step(w, c);
		break;
	case CS_SEND:
		send_step(w, c);
		break;
	case CS_RECV:
		recv_step(w, c);
		break;
	case CS_STREAM:
		bulk_step(w, c);
		break;
	case CS_IDLE:
	case CS_DONE:
		break;
	}
}

static void
conn_begin(struct worker *w, struct conn *c)
{
	conn_start(w, c);
	if (c->state == CS_HANDSHAKE)
		handshake_step(w, c);
}

/* Every connection has reached state s, or is done. */
static int
all_reached(const struct worker *w, enum cstate s)
{
	unsigned i;

	for (i = 0; i < w->n; i++)
		if (w->cs[i].state != s && w->cs[i].state != CS_DONE)
			return 0;
	return 1;
}

/*
 * Serve the connections until the deadline or, in bulk mode, until all
 * have reached state s.  In handshake mode a finished or failed
 * connection starts again at once.
 */
static void
poll_loop(struct worker *w, uint64_t deadline, enum cstate s)
{
	struct conn *c;
	uint64_t now;
	unsigned i;
	int ms;

	while ((now = now_ns()) < deadline) {
		if (o.mode == M_BULK && all_reached(w, s))
			return;
		for (i = 0; i < w->n; i++) {
			c = &w->cs[i];
			if (o.mode == M_HANDSHAKE && c->state == CS_DONE)
				conn_begin(w, c);
			w->pfd[i].fd = c->events != 0 ? c->fd : -1;
			w->pfd[i].events = c->events;
			w->pfd[i].revents = 0;
		}
		ms = (int)((deadline - now) / 1000000) + 1;
		if (poll(w->pfd, w->n, ms > 100 ? 100 : ms) == -1) {
			if (errno == EINTR)
				continue;
			perror("tls_load: poll");
			exit(2);
		}
		for (i = 0; i < w->n; i++)
			if (w->pfd[i].revents != 0)
				conn_step(w, &w->cs[i]);
	}
}

static void
run_bulk(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->n; i++)
		conn_begin(w, &w->cs[i]);
	poll_loop(w, now_ns() + OPEN_TIMEOUT, CS_STREAM);
	/* The clock starts once every thread has all its handshakes done. */
	pthread_barrier_wait(&streaming);
	w->s_begin = w->s_end = now_ns();
	for (i = 0; i < w->n; i++)
		if (w->cs[i].state == CS_STREAM)
			bulk_step(w, &w->cs[i]);
	poll_loop(w, w->s_begin + (uint64_t)(o.secs * NSEC), CS_DONE);
	for (i = 0; i < w->n; i++)
		if (w->cs[i].state != CS_DONE)
			w->incomplete = 1;
	if (w->incomplete)
		w->s_end = now_ns();
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	if (o.mode == M_BULK)
		run_bulk(w);
	else {
		for (i = 0; i < w->n; i++)
			conn_begin(w, &w->cs[i]);
		poll_loop(w, w->t_end, CS_DONE);
	}
	for (i = 0; i < w->n; i++)
		conn_close(&w->cs[i], 0);
	ERR_clear_error();
	return NULL;
}

/* Sum the threads' figures into the first. */
static void
collect(struct worker *ws)
{
	struct worker *t = &ws[0];
	unsigned i;

	for (i = 1; i < o.threads; i++) {
		t->done += ws[i].done;
		t->cycles += ws[i].cycles;
		t->failures += ws[i].failures;
		t->errors += ws[i].errors;
		t->bytes += ws[i].bytes;
		t->incomplete |= ws[i].incomplete;
		if (ws[i].s_begin < t->s_begin)
			t->s_begin = ws[i].s_begin;
		if (ws[i].s_end > t->s_end)
			t->s_end = ws[i].s_end;
		if (t->why[0] == '\0')
			memcpy(t->why, ws[i].why, sizeof(t->why));
		if (t->proto[0] == '\0') {
			memcpy(t->proto, ws[i].proto, sizeof(t->proto));
			memcpy(t->cipher, ws[i].cipher, sizeof(t->cipher));
		}
	}
}

static int
report(const struct worker *t)
{
	double secs = o.secs;

	printf("mode=%s host=%s port=%u conns=%u threads=%u version=%s "
	    "cipher=%s", o.mode == M_BULK ? "bulk" : "handshake", o.host,
	    o.port, o.conns, o.threads, t->proto[0] ? t->proto : "none",
	    t->cipher[0] ? t->cipher : "none");
	if (o.mode == M_HANDSHAKE) {
		printf(" duration=%.3f size=%zu handshakes=%llu rate=%.1f"
		    " handshakes_all=%llu", o.secs, o.msg,
		    (unsigned long long)t->done, (double)t->done / o.secs,
		    (unsigned long long)t->cycles);
	} else {
		secs = (double)(t->s_end - t->s_begin) / NSEC;
		if (secs <= 0)
			secs = 1e-9;
		printf(" mib=%u inflight=%zu bytes=%llu secs=%.3f mbps=%.2f"
		    " complete=%llu", o.mib, o.window,
		    (unsigned long long)t->bytes, secs,
		    (double)t->bytes / secs / 1e6, (unsigned long long)t->done);
	}
	printf(" failures=%llu errors=%llu\n", (unsigned long long)t->failures,
	    (unsigned long long)t->errors);
	if (o.mode == M_HANDSHAKE)
		printf("handshake: %.1f handshakes/s over %u connections",
		    (double)t->done / o.secs, o.conns);
	else
		printf("bulk: %.1f MB/s echoed, %llu of %u connections "
		    "complete", (double)t->bytes / secs / 1e6,
		    (unsigned long long)t->done, o.conns);
	if (t->proto[0] != '\0')
		printf(" (%s %s)", t->proto, t->cipher);
	else
		printf(" (no handshake completed)");
	printf(", %llu failures, %llu errors\n",
	    (unsigned long long)t->failures, (unsigned long long)t->errors);
	if (t->why[0] != '\0')
		printf("first failure: %s\n", t->why);
	if (t->errors != 0 || t->failures != 0)
		return 1;
	return t->incomplete || t->done == 0 ? 3 : 0;
}

static struct worker *
workers_new(void)
{
	struct worker *ws;
	struct conn *cs;
	struct pollfd *pfd;
	unsigned i, first;

	ws = calloc(o.threads, sizeof(*ws));
	cs = calloc(o.conns, sizeof(*cs));
	pfd = calloc(o.conns, sizeof(*pfd));
	if (ws == NULL || cs == NULL || pfd == NULL) {
		perror("tls_load: calloc");
		exit(2);
	}
	for (i = 0; i < o.conns; i++) {
		cs[i].fd = -1;
		cs[i].id = i;
		/*
		 * Distinct starts modulo the prime PATTERN_LEN (i < it): a
		 * chunk of one connection's stream never matches another's.
		 */
		cs[i].base = (uint64_t)i * 7919;
	}
	for (i = 0, first = 0; i < o.threads; i++) {
		ws[i].n = (o.conns * (i + 1)) / o.threads - first;
		ws[i].cs = cs + first;
		ws[i].pfd = pfd + first;
		first += ws[i].n;
	}
	return ws;
}

int
main(int argc, char **argv)
{
	struct worker *ws;
	uint64_t start;
	unsigned i, limit;
	int rc;

	parse_args(argc, argv);
	resolve();
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	ctx_init();
	pattern_init();
	ws = workers_new();
	limit = (unsigned)(o.warm + o.secs) + GRACE_SECS +
	    (o.mode == M_BULK ? (unsigned)(OPEN_TIMEOUT / NSEC) : 0);
	alarm(limit);
	if ((rc = pthread_barrier_init(&streaming, NULL, o.threads)) != 0) {
		fprintf(stderr, "tls_load: barrier: %s\n", strerror(rc));
		return 2;
	}
	start = now_ns();
	for (i = 0; i < o.threads; i++) {
		ws[i].t_begin = start + (uint64_t)(o.warm * NSEC);
		ws[i].t_end = ws[i].t_begin + (uint64_t)(o.secs * NSEC);
		if ((rc = pthread_create(&ws[i].tid, NULL, worker_main,
		    &ws[i])) != 0) {
			fprintf(stderr, "tls_load: thread: %s\n", strerror(rc));
			return 2;
		}
	}
	for (i = 0; i < o.threads; i++)
		pthread_join(ws[i].tid, NULL);
	collect(ws);
	rc = report(&ws[0]);
	pthread_barrier_destroy(&streaming);
	free(ws[0].cs);
	free(ws[0].pfd);
	free(ws);
	free(pattern);
	SSL_CTX_free(ctx);
	return rc;
}
