/*
 * restart_load - clients that a restart of echo-oracled must not notice.
 *
 * One thread, epoll, loopback only (-h refuses any other address).  Three kinds of clients:
 *
 *   echo    E connections, each streaming its own pattern at a steady
 *           rate while reading back; every byte is checked against the
 *           pattern at its offset, so a lost, duplicated or reordered
 *           byte shows as a mismatch or as bytes missing at the end.
 *   oracle  Q connections; each asks one question, then sends half of a
 *           second one and waits.  After the restart it sends the rest
 *           and a third question in one write: with max_questions = 2
 *           (-m) it must get exactly one answer, for the whole second
 *           question, and then the daemon's close.
 *   loop    C loops of connect, one 16-byte echo round trip, close,
 *           paced at -R connects a second in all; refused, reset and
 *           timed-out attempts are counted.
 *
 * Commands on standard input, one a line: "restart" just before the
 * restart is started (its time is the reference), "done" once it has
 * finished (end of input counts as "done").  Then the oracle clients
 * finish, the echo streams run -a seconds more, stop, and must get back
 * every byte they sent.  "ready" is printed on standard output once
 * every client is connected, the half questions are sent and the
 * streams have run -w seconds (1).
 *
 * What it measures about the restart: the longest silence that began
 * between the "restart" and "done" commands, an interval in which no
 * echo byte arrived and no round trip completed on any client, and when
 * it ended, counted from "restart".  With the streams running, the
 * service is silent only while no process serves, and the hand-over
 * starts and ends within that window: the end of that silence is the
 * first byte served by the new process.  The longest silence before
 * "restart" (the streams run -w seconds before "ready") is printed as
 * the baseline of this machine's jitter: a hand-over shorter than it
 * cannot be told apart.
 *
 * Exit status: 0 every error count is 0, 1 some count is not, 2 usage
 * or setup failure, 3 the hard deadline (-d) passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS		10	/* pacing and timeouts */
#define MAX_PENDING	64	/* connects in flight while setting up */
#define WINDOW		8192	/* echo bytes in flight per client */
#define LOOP_LEN	16	/* one connect-loop round trip */
#define OBUF		256	/* an oracle reply */
#define RBUF		16384
#define LOOP_KEY	0x80000000u	/* loops' streams, apart from echo's */

enum kind { K_ECHO, K_ORACLE, K_LOOP };

/* The oracle client's life, one question at a time. */
enum ostate {
	O_CONNECTING,
	O_FIRST,	/* asked the first question, waiting for its answer */
	O_HALF,		/* sent half of the second: the restart goes by */
	O_SECOND,	/* sent the rest and a third, waiting for one answer */
	O_CLOSING,	/* answered: waiting for the daemon's close */
	O_DONE
};

struct client {
	enum kind	 kind;
	int		 fd;
	int		 id;
	int		 up;		/* connected */
	int		 state;		/* enum ostate, or a loop's phase */
	uint64_t	 sent;
	uint64_t	 rcvd;
	int		 bad;		/* echo: a byte did not match */
	int64_t		 t0;		/* loop: when this attempt began */
	size_t		 olen;
	char		 obuf[OBUF];
};

struct counts {
	uint64_t	 sent, rcvd, lost;
	unsigned	 echo_up, echo_reset, echo_corrupt;
	unsigned	 or_answered, or_extra, or_wrong, or_reset, or_early;
	unsigned	 or_missing;
	uint64_t	 loop_ok, loop_refused, loop_reset, loop_timeout;
	uint64_t	 loop_other;
	int64_t		 loop_max;	/* longest round trip, ns */
};

static struct {
	const char	*host;
	int		 echo_port, oracle_port, loop_port;
	int		 necho, noracle, nloop;
	int		 rate;		/* echo bytes a second per client */
	int		 loop_rate;	/* connects a second, all loops */
	int		 after;		/* seconds of echo after "done" */
	int		 deadline;	/* seconds, whole run */
	int		 loop_timeout;	/* seconds, one attempt */
	int		 max_questions;
	int		 warmup;	/* seconds of streams before "ready" */
} opt = { "127.0.0.1", 0, 0, 0, 1000, 100, 4, 4096, 200, 3, 120, 30, 2, 1 };

static int		 ep;
static struct client	*clients;
static int		 nclients;
static struct counts	 n;
static int64_t		 t_start, t_restart, t_done, t_stop;
static int64_t		 last_rx, gap_before, gap_after, gap_end;
static double		 loop_tokens;
static int		 pending;	/* connects in flight at setup */

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double
ms(int64_t ns)
{
	return (double)ns / 1e6;
}

/* The byte at offset off of stream key: no short period. */
static unsigned char
pattern(unsigned key, uint64_t off)
{
	uint64_t x = off + key * 0x9e3779b97f4a7c15ull;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return (unsigned char)(x >> 56);
}

/* Any service seen: a silence in it is measured, before and after. */
static void
served(int64_t t)
{
	int64_t gap = t - last_rx;

	if (t_restart == 0) {
		if (t_start != 0 && gap > gap_before)
			gap_before = gap;
	} else if (gap > gap_after && (t_done == 0 || last_rx < t_done)) {
		gap_after = gap;
		gap_end = t - t_restart;
	}
	last_rx = t;
}

static int
open_conn(struct client *c, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct epoll_event ev;
	socklen_t len;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, opt.host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, opt.host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else
		return -1;
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	c->up = 0;
	if (connect(c->fd, (struct sockaddr *)&ss, len) == -1 &&
	    errno != EINPROGRESS) {
		int e = errno;

		close(c->fd);
		c->fd = -1;
		errno = e;
		return -1;
	}
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
drop(struct client *c)
{
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	c->up = 0;
}

static void
want_write(struct client *c, int on)
{
	struct epoll_event ev;

	ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A whole small message, or -1: these fit any fresh socket buffer. */
static int
send_all(struct client *c, const char *s, size_t len)
{
	ssize_t w = send(c->fd, s, len, MSG_NOSIGNAL);

	return w == (ssize_t)len ? 0 : -1;
}

/* ---------------------------------------------------------- echo */

static void
echo_send(struct client *c, size_t budget)
{
	unsigned char buf[RBUF];
	size_t room = WINDOW - (size_t)(c->sent - c->rcvd), i;
	ssize_t w;

	if (!c->up || c->fd == -1 || t_stop != 0)
		return;
	if (budget > room)
		budget = room;
	if (budget > sizeof(buf))
		budget = sizeof(buf);
	if (budget == 0)
		return;
	for (i = 0; i < budget; i++)
		buf[i] = pattern((unsigned)c->id, c->sent + i);
	w = send(c->fd, buf, budget, MSG_NOSIGNAL);
	if (w > 0)
		c->sent += (uint64_t)w;
	else if (w == -1 && errno != EAGAIN) {
		n.echo_reset++;
		drop(c);
	}
}

static void
echo_read(struct client *c, int64_t t)
{
	unsigned char buf[RBUF];
	ssize_t r, i;

	while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
		for (i = 0; i < r && !c->bad; i++)
			if (buf[i] != pattern((unsigned)c->id, c->rcvd + (uint64_t)i)) {
				c->bad = 1;
				n.echo_corrupt++;
			}
		c->rcvd += (uint64_t)r;
		served(t);
		if (c->rcvd > c->sent) {
			/* More than was sent: duplicated bytes. */
			if (!c->bad)
				n.echo_corrupt++;
			c->bad = 1;
		}
	}
	if (r == 0 || (r == -1 && errno != EAGAIN)) {
		n.echo_reset++;
		drop(c);
	}
}

/* ---------------------------------------------------------- oracle */

static void
oracle_ask(struct client *c, int which)
{
	char q[OBUF];
	int len;

	if (which == 1)
		len = snprintf(q, sizeof(q), "Is client %d awake?", c->id);
	else if (which == 2)
		len = snprintf(q, sizeof(q), "Will client %d ", c->id);
	else
		len = snprintf(q, sizeof(q),
		    "survive the restart?\r\nIs a third one too many?");
	if (send_all(c, q, (size_t)len) == -1) {
		n.or_reset++;
		drop(c);
	}
}

/* One reply line is complete in obuf: is it for the question asked? */
static int
oracle_reply_ok(struct client *c)
{
	char q[OBUF];
	int len;

	if (c->state == O_FIRST)
		len = snprintf(q, sizeof(q), "Is client %d awake? ", c->id);
	else
		len = snprintf(q, sizeof(q),
		    "Will client %d survive the restart? ", c->id);
	return c->olen > (size_t)len && memcmp(c->obuf, q, (size_t)len) == 0;
}

/* A complete reply line in obuf; moves the client on. */
static void
oracle_line(struct client *c, size_t linelen)
{
	if (c->state == O_FIRST || c->state == O_SECOND) {
		if (!oracle_reply_ok(c))
			n.or_wrong++;
		if (c->state == O_FIRST) {
			c->state = O_HALF;
			oracle_ask(c, 2);
		} else {
			n.or_answered++;
			c->state = O_CLOSING;
		}
	} else if (c->state == O_CLOSING)
		n.or_extra++;	/* the third question was answered */
	else
		n.or_early++;	/* a reply to half a question */
	c->olen -= linelen;
	memmove(c->obuf, c->obuf + linelen, c->olen);
}

static void
oracle_read(struct client *c, int64_t t)
{
	char *eol;
	ssize_t r;

	for (;;) {
		if (c->olen == sizeof(c->obuf)) {
			n.or_wrong++;
			c->olen = 0;
		}
		r = recv(c->fd, c->obuf + c->olen, sizeof(c->obuf) - c->olen,
		    0);
		if (r <= 0)
			break;
		c->olen += (size_t)r;
		served(t);
		while (c->fd != -1 &&
		    (eol = memchr(c->obuf, '\n', c->olen)) != NULL)
			oracle_line(c, (size_t)(eol - c->obuf) + 1);
		if (c->fd == -1)
			return;
	}
	if (r == -1 && errno == EAGAIN)
		return;
	if (r == 0 && c->state == O_CLOSING && c->olen == 0)
		c->state = O_DONE;	/* max_questions: closed, as due */
	else if (c->state == O_CLOSING || c->state == O_SECOND ||
	    c->state == O_HALF || c->state == O_FIRST)
		n.or_reset++;
	drop(c);
}

/* ---------------------------------------------------------- loop */

static void
loop_start(struct client *c, int64_t t)
{
	c->t0 = t;
	c->state = 0;
	c->rcvd = 0;
	if (open_conn(c, opt.loop_port) == -1) {
		if (errno == ECONNREFUSED)
			n.loop_refused++;
		else
			n.loop_other++;
		drop(c);
	}
}

static void
loop_end(struct client *c, uint64_t *count)
{
	(*count)++;
	drop(c);
}

static void
loop_read(struct client *c, int64_t t)
{
	unsigned char buf[LOOP_LEN];
	ssize_t r;

	r = recv(c->fd, buf, sizeof(buf) - c->rcvd, 0);
	if (r > 0) {
		uint64_t i;

		for (i = 0; i < (uint64_t)r; i++)
			if (buf[i] != pattern(LOOP_KEY + (unsigned)c->id, c->rcvd + i)) {
				loop_end(c, &n.loop_other);
				return;
			}
		c->rcvd += (uint64_t)r;
		if (c->rcvd < LOOP_LEN)
			return;
		served(t);
		if (t - c->t0 > n.loop_max)
			n.loop_max = t - c->t0;
		loop_end(c, &n.loop_ok);
	} else if (r == 0 || errno != EAGAIN)
		loop_end(c, &n.loop_reset);
}

static void
loop_connected(struct client *c)
{
	unsigned char buf[LOOP_LEN];
	uint64_t i;

	for (i = 0; i < LOOP_LEN; i++)
		buf[i] = pattern(LOOP_KEY + (unsigned)c->id, i);
	if (send_all(c, (const char *)buf, sizeof(buf)) == -1)
		loop_end(c, &n.loop_reset);
	else
		want_write(c, 0);
}

/* ---------------------------------------------------------- events */

/* A connect finished: 0 if it worked, else counted and dropped. */
static int
connected(struct client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (c->kind != K_LOOP)
		pending--;
	if (err == 0) {
		c->up = 1;
		return 0;
	}
	if (c->kind == K_LOOP)
		loop_end(c, err == ECONNREFUSED ? &n.loop_refused :
		    err == ETIMEDOUT ? &n.loop_timeout : &n.loop_other);
	else {
		fprintf(stderr, "restart_load: connect: %s\n", strerror(err));
		drop(c);
	}
	return -1;
}

static void
on_event(struct client *c, uint32_t events, int64_t t)
{
	if (!c->up) {
		if (connected(c) == -1)
			return;
		if (c->kind == K_LOOP)
			loop_connected(c);
		else if (c->kind == K_ORACLE) {
			c->state = O_FIRST;
			oracle_ask(c, 1);
			if (c->fd != -1)
				want_write(c, 0);
		} else {
			n.echo_up++;
			want_write(c, 0);
		}
		return;
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	if (c->kind == K_ECHO)
		echo_read(c, t);
	else if (c->kind == K_ORACLE)
		oracle_read(c, t);
	else
		loop_read(c, t);
}

/* Pacing: echo bytes, new loop attempts, loop timeouts. */
static void
tick(int64_t t, int64_t dt)
{
	size_t budget = (size_t)((int64_t)opt.rate * dt / 1000000000);
	int i;

	if (budget == 0)
		budget = 1;
	if (t_stop == 0)
		loop_tokens += (double)opt.loop_rate * (double)dt / 1e9;
	if (loop_tokens > opt.nloop)
		loop_tokens = opt.nloop;
	for (i = 0; i < nclients; i++) {
		struct client *c = &clients[i];

		if (c->kind == K_ECHO)
			echo_send(c, budget);
		else if (c->kind != K_LOOP)
			continue;
		else if (c->fd != -1 &&
		    t - c->t0 > (int64_t)opt.loop_timeout * 1000000000)
			loop_end(c, &n.loop_timeout);
		else if (c->fd == -1 && t_stop == 0 && loop_tokens >= 1 &&
		    t_start != 0) {
			loop_tokens -= 1;
			loop_start(c, t);
		}
	}
}

/* ---------------------------------------------------------- phases */

static int	 next_open;	/* echo and oracle clients opened so far */

/* Opens a few more echo and oracle clients; 1 once all are ready. */
static int
setup_more(void)
{
	int i, ready = 1;

	while (pending < MAX_PENDING && next_open < opt.necho + opt.noracle) {
		struct client *c = &clients[next_open++];

		if (open_conn(c, c->kind == K_ECHO ? opt.echo_port :
		    opt.oracle_port) == -1) {
			perror("restart_load: connect");
			exit(2);
		}
		pending++;
	}
	if (next_open < opt.necho + opt.noracle)
		return 0;
	for (i = 0; i < opt.necho + opt.noracle && ready; i++) {
		struct client *c = &clients[i];

		if (c->fd == -1) {
			fprintf(stderr, "restart_load: a client failed "
			    "before the restart\n");
			exit(2);
		}
		ready = c->kind == K_ECHO ? c->rcvd > 0 : c->state == O_HALF;
	}
	return ready;
}

/* "done": the oracle clients finish their half questions. */
static void
restart_done(int64_t t)
{
	int i;

	t_done = t;
	for (i = 0; i < nclients; i++) {
		struct client *c = &clients[i];

		if (c->kind == K_ORACLE && c->fd != -1 && c->state == O_HALF) {
			c->state = O_SECOND;
			oracle_ask(c, 3);
		}
	}
}

/* Commands on standard input; -1 at end of input before "restart". */
static int
read_commands(int64_t t)
{
	static char line[64];
	static size_t len;
	ssize_t r;
	char *eol;

	r = read(STDIN_FILENO, line + len, sizeof(line) - 1 - len);
	if (r <= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
		if (t_restart == 0)
			return -1;
		if (t_done == 0)
			restart_done(t);
		return 0;
	}
	len += (size_t)r;
	while ((eol = memchr(line, '\n', len)) != NULL) {
		*eol = '\0';
		if (strcmp(line, "restart") == 0 && t_restart == 0) {
			t_restart = t;
			last_rx = t;
		} else if (strcmp(line, "done") == 0 && t_restart != 0 &&
		    t_done == 0)
			restart_done(t);
		else
			fprintf(stderr, "restart_load: ignored \"%s\"\n", line);
		len -= (size_t)(eol + 1 - line);
		memmove(line, eol + 1, len);
	}
	if (len == sizeof(line) - 1)
		len = 0;
	return 0;
}

/* Once stopped: 1 when every client has finished or dropped out. */
static int
drained(void)
{
	int i;

	for (i = 0; i < nclients; i++) {
		const struct client *c = &clients[i];

		if (c->fd == -1)
			continue;
		if (c->kind == K_LOOP || (c->kind == K_ECHO &&
		    c->rcvd < c->sent) || c->kind == K_ORACLE)
			return 0;
	}
	return 1;
}

/* Counts what never came back, once the run is over. */
static void
tally(void)
{
	int i;

	for (i = 0; i < nclients; i++) {
		const struct client *c = &clients[i];

		if (c->kind == K_ECHO) {
			n.sent += c->sent;
			n.rcvd += c->rcvd;
			if (c->rcvd < c->sent)
				n.lost += c->sent - c->rcvd;
		} else if (c->kind == K_ORACLE && c->fd != -1)
			n.or_missing++;	/* no answer, or no close */
		else if (c->kind == K_LOOP && c->fd != -1)
			n.loop_timeout++;
	}
}

static int
report(int deadline_hit)
{
	uint64_t errs;

	tally();
	printf("echo: clients=%d connected=%u sent=%llu received=%llu "
	    "lost=%llu corrupt=%u reset=%u\n", opt.necho, n.echo_up,
	    (unsigned long long)n.sent, (unsigned long long)n.rcvd,
	    (unsigned long long)n.lost, n.echo_corrupt, n.echo_reset);
	printf("oracle: clients=%d answered=%u extra=%u wrong=%u early=%u "
	    "reset=%u missing=%u\n", opt.noracle, n.or_answered, n.or_extra,
	    n.or_wrong, n.or_early, n.or_reset, n.or_missing);
	printf("loop: ok=%llu refused=%llu reset=%llu timeout=%llu "
	    "other=%llu longest_ms=%.1f\n", (unsigned long long)n.loop_ok,
	    (unsigned long long)n.loop_refused,
	    (unsigned long long)n.loop_reset,
	    (unsigned long long)n.loop_timeout,
	    (unsigned long long)n.loop_other, ms(n.loop_max));
	printf("restart: command_to_done_ms=%.1f silence_before_ms=%.1f "
	    "silence_ms=%.1f first_byte_after_ms=%.1f\n",
	    t_done ? ms(t_done - t_restart) : -1.0, ms(gap_before),
	    ms(gap_after), ms(gap_end));
	errs = n.lost + n.echo_corrupt + n.echo_reset + n.or_extra +
	    n.or_wrong + n.or_early + n.or_reset + n.or_missing +
	    n.loop_refused + n.loop_reset + n.loop_timeout + n.loop_other +
	    (uint64_t)(opt.necho - (int)n.echo_up) +
	    (uint64_t)(opt.noracle - (int)n.or_answered);
	if (deadline_hit) {
		fprintf(stderr, "restart_load: the %d s deadline passed\n",
		    opt.deadline);
		return 3;
	}
	return errs == 0 ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: restart_load -e ECHO_PORT -o ORACLE_PORT [-l LOOP_PORT]\n"
	    "           [-h HOST] [-E echo clients] [-Q oracle clients]\n"
	    "           [-C connect loops] [-r echo bytes/s per client]\n"
	    "           [-R connects/s] [-a seconds after done]\n"
	    "           [-d deadline seconds] [-t connect-loop timeout]\n"
	    "           [-m max_questions (2)] [-w warm-up seconds]\n"
	    "commands on stdin: \"restart\", then \"done\"\n");
	exit(2);
}

static int
num(const char *s, int lo, int hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		usage();
	return (int)v;
}

/* A load this size is for this machine only: 127.0.0.0/8 or ::1. */
static int
loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static void
parse_args(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "a:C:d:E:e:h:l:m:o:Q:R:r:t:w:")) != -1) {
		switch (ch) {
		case 'a': opt.after = num(optarg, 0, 3600); break;
		case 'C': opt.nloop = num(optarg, 0, 1000); break;
		case 'd': opt.deadline = num(optarg, 1, 86400); break;
		case 'E': opt.necho = num(optarg, 0, 100000); break;
		case 'e': opt.echo_port = num(optarg, 1, 65535); break;
		case 'h': opt.host = optarg; break;
		case 'l': opt.loop_port = num(optarg, 1, 65535); break;
		case 'm': opt.max_questions = num(optarg, 2, 2); break;
		case 'o': opt.oracle_port = num(optarg, 1, 65535); break;
		case 'Q': opt.noracle = num(optarg, 0, 100000); break;
		case 'R': opt.loop_rate = num(optarg, 1, 100000); break;
		case 'r': opt.rate = num(optarg, 1, 100000000); break;
		case 'w': opt.warmup = num(optarg, 0, 3600); break;
		case 't': opt.loop_timeout = num(optarg, 1, 3600); break;
		default: usage();
		}
	}
	if (optind != argc || opt.echo_port == 0 ||
	    (opt.noracle > 0 && opt.oracle_port == 0))
		usage();
	if (opt.loop_port == 0)
		opt.loop_port = opt.echo_port;
	if (!loopback(opt.host)) {
		fprintf(stderr, "restart_load: %s is not a loopback address\n",
		    opt.host);
		exit(2);
	}
}

/* Room for every client: the soft descriptor limit up to the hard one. */
static void
setup(void)
{
	struct epoll_event ev;
	struct rlimit rl;
	int i;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	nclients = opt.necho + opt.noracle + opt.nloop;
	if ((clients = calloc((size_t)nclients + 1, sizeof(*clients))) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("restart_load");
		exit(2);
	}
	for (i = 0; i < nclients; i++) {
		clients[i].fd = -1;
		clients[i].id = i;
		clients[i].kind = i < opt.necho ? K_ECHO :
		    i < opt.necho + opt.noracle ? K_ORACLE : K_LOOP;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == -1) {
		fprintf(stderr, "restart_load: standard input must be a pipe "
		    "or a terminal: %s\n", strerror(errno));
		exit(2);
	}
}

/* One pass of events; -1 if the controller went away too early. */
static int
step(int64_t *last_tick)
{
	struct epoll_event evs[256];
	int64_t t;
	int i, k;

	k = epoll_wait(ep, evs, 256, TICK_MS);
	t = now_ns();
	for (i = 0; i < k; i++) {
		struct client *c = evs[i].data.ptr;

		if (c == NULL) {
			if (read_commands(t) == -1)
				return -1;
		} else if (c->fd != -1)
			on_event(c, evs[i].events, t);
	}
	if (t - *last_tick >= (int64_t)TICK_MS * 1000000) {
		tick(t, t - *last_tick);
		*last_tick = t;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	int64_t begin, last_tick, drain_until = 0;
	int ready = 0;

	parse_args(argc, argv);
	setup();
	begin = last_tick = now_ns();
	for (;;) {
		int64_t t = now_ns();

		if (t - begin > (int64_t)opt.deadline * 1000000000)
			return report(1);
		if (t_start == 0 && setup_more())
			t_start = last_rx = t;
		if (t_start != 0 && !ready &&
		    t - t_start >= (int64_t)opt.warmup * 1000000000) {
			ready = 1;
			printf("ready\n");
			fflush(stdout);
		}
		if (t_done != 0 && t_stop == 0 &&
		    t - t_done >= (int64_t)opt.after * 1000000000) {
			t_stop = t;
			drain_until = t + 15 * (int64_t)1000000000;
		}
		if (t_stop != 0 && (drained() || t > drain_until))
			return report(0);
		if (step(&last_tick) == -1) {
			fprintf(stderr, "restart_load: end of input before "
			    "\"restart\"\n");
			return 2;
		}
	}
}
