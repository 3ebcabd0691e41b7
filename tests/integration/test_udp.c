/*
 * UDP listeners, end to end: echo byte-exact with our client and with
 * nc -u, the reflection guards (reserved source port, a loop between
 * two of our own services), the per-source rate limit, the oracle
 * refused over UDP, and reloads that keep, add and remove UDP sockets.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "harness.h"
#include "check_main.h"

static socklen_t
sa_of(struct sockaddr_storage *ss, const char *host, int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	}
	ck_assert_int_eq(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	return sizeof(*s6);
}

/* A UDP socket bound to host:port (0: any) and connected to the
   daemon's to:toport, so that an ICMP error shows as ECONNREFUSED. */
static int
udp_client(const char *host, int port, const char *to, int toport)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_of(&ss, host, port);
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int big = 1 << 20;

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	ck_assert_msg(bind(fd, (struct sockaddr *)&ss, len) == 0,
	    "bind %s:%d: %s", host, port, strerror(errno));
	len = sa_of(&ss, to, toport);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

/* A datagram's length within ms, -1 if none came, -2 on an error. */
static ssize_t
udp_recv(int fd, void *buf, size_t cap, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n;

	if (poll(&p, 1, eo_ms(ms)) != 1)
		return -1;
	n = recv(fd, buf, cap, MSG_DONTWAIT);
	return n < 0 ? -2 : n;
}

static void
expect_echo(int fd, size_t size)
{
	static unsigned char out[65527], in[65536];
	size_t i;

	for (i = 0; i < size; i++)
		out[i] = (unsigned char)(i * 131 + size);
	ck_assert_int_eq(send(fd, out, size, 0), (ssize_t)size);
	ck_assert_int_eq(udp_recv(fd, in, sizeof(in), 5000), (ssize_t)size);
	ck_assert_msg(memcmp(in, out, size) == 0, "size %zu differs", size);
}

/* A macro, not a const string: -Wformat-nonliteral sees through the
   latter only when the optimiser folds it (not at -O0, in Debug). */
#define UDP_CONF "listeners = (\n"					\
    "{ name = \"u\"; protocol = \"echo\"; port = %d; transport = \"udp\";\n" \
    "  bind = [\"127.0.0.1\", \"::1\"]; udp_rate_limit = 0; },\n"		\
    "{ name = \"v\"; protocol = \"echo\"; port = %d; transport = \"udp\";\n" \
    "  bind = \"127.0.0.1\"; udp_rate_limit = 0; } );\n"

START_TEST(test_udp_echo_sizes)
{
	static const size_t sizes[] = { 1, 7, 512, 1472, 9000, 65507 };
	int p = eo_port(), q = eo_port();
	struct eod *d = eod_start(UDP_CONF, p, q);
	int f4 = udp_client("127.0.0.1", 0, "127.0.0.1", p);
	int f6 = udp_client("::1", 0, "::1", p);
	char buf[16];
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		expect_echo(f4, sizes[i]);
		expect_echo(f6, sizes[i]);
	}
	/* Issue 24: IPv6 carries 20 bytes more than IPv4 (65,527). */
	expect_echo(f6, 65508);
	expect_echo(f6, 65527);
	/* An empty datagram has nothing to echo: no reply. */
	ck_assert_int_eq(send(f4, buf, 0, 0), 0);
	ck_assert_int_eq(udp_recv(f4, buf, sizeof(buf), 300), -1);
	close(f4);
	close(f6);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

START_TEST(test_udp_echo_nc)
{
	int p = eo_port(), q = eo_port();
	struct eod *d = eod_start(UDP_CONF, p, q);
	char cmd[256], out[256] = "";
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "printf 'from nc -u' | timeout 10 "
	    "nc -u -w1 127.0.0.1 %d", p);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	n = fread(out, 1, sizeof(out) - 1, f);
	pclose(f);
	out[n] = '\0';
	ck_assert_str_eq(out, "from nc -u");
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 24: a listener on a wildcard answers from the address the
 * datagram was sent to.  A client bound to from and connected to to
 * takes only replies from to: an echo (or a time protocol's 4 bytes)
 * comes back only if the reply left from to.
 */
static void
expect_reply_from(const char *from, const char *to, int port, size_t want)
{
	int fd = udp_client(from, 0, to, port);
	unsigned char buf[64];

	ck_assert_int_eq(send(fd, "whose?", 6, 0), 6);
	ck_assert_msg(udp_recv(fd, buf, sizeof(buf), 2000) == (ssize_t)want,
	    "no reply from %s:%d to %s", to, port, from);
	close(fd);
}

#define WILDCARD_CONF "listeners = (\n"				\
    "{ name = \"u\"; protocol = \"echo\"; port = %d; transport = \"udp\";\n" \
    "  bind = [\"0.0.0.0\", \"::\"]; udp_rate_limit = 0; },\n"		\
    "{ name = \"t\"; protocol = \"time\"; port = %d; transport = \"udp\";\n" \
    "  bind = [\"0.0.0.0\", \"::\"]; allow_amplification = true; } );\n"

START_TEST(test_udp_wildcard_replies_from_address_asked)
{
	static const char *const to[] = { "127.0.0.1", "127.0.0.2",
	    "127.0.0.3" };
	int p = eo_port(), q = eo_port();
	struct eod *d = eod_start(WILDCARD_CONF, p, q);
	size_t i;

	for (i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		expect_reply_from("127.0.0.1", to[i], p, 6);
		expect_reply_from("127.0.0.1", to[i], q, 4);
	}
	expect_reply_from("::1", "::1", p, 6);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The same over IPv6: a second address on lo, in a network namespace
   of the test's own (the test runs in a child process: it ends there). */
START_TEST(test_udp_wildcard_replies_from_address_asked_v6)
{
	int p, q;
	struct eod *d;

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: a network namespace needs root\n");
		return;
	}
	ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare: %s",
	    strerror(errno));
	ck_assert_int_eq(system("ip link set lo up && ip -6 addr add "
	    "2001:db8::2/128 dev lo nodad"), 0);
	p = eo_port();
	q = eo_port();
	d = eod_start(WILDCARD_CONF, p, q);
	expect_reply_from("::1", "2001:db8::2", p, 6);
	expect_reply_from("::1", "2001:db8::2", q, 4);
	expect_reply_from("2001:db8::2", "::1", p, 6);
	expect_reply_from("127.0.0.1", "127.0.0.2", p, 6);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * The counters SIGUSR1 logs contain want, within a few seconds.  want
 * must begin and end with what surrounds a value (a name, ", ", ")"),
 * so that "udp_rate_limit 4," cannot match 45 or 400.
 */
static void
expect_counter(struct eod *d, const char *want)
{
	size_t n = strlen(want);
	int i;

	ck_assert_msg(n > 0 && !isdigit((unsigned char)want[0]) &&
	    !isdigit((unsigned char)want[n - 1]),
	    "\"%s\" would match a longer number", want);
	for (i = 0; i < 50; i++) {
		eod_signal(d, SIGUSR1);
		if (eod_log_wait(d, want, eo_ms(100)) == 0)
			return;
	}
	eod_log_dump(d);
	ck_abort_msg("no counters with \"%s\"", want);
}

/* Issue 11: a datagram from a reserved port (another daemon's reply,
   or a forged one) gets no reply; counted and logged. */
START_TEST(test_udp_guard_reserved_port)
{
	int p = eo_port(), q = eo_port(), fd;
	struct eod *d;
	char buf[64];

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: binding port 1000 needs root\n");
		return;
	}
	d = eod_start(UDP_CONF, p, q);
	fd = udp_client("127.0.0.1", 1000, "127.0.0.1", p);
	ck_assert_int_eq(send(fd, "reflect me", 10, 0), 10);
	ck_assert_int_eq(udp_recv(fd, buf, sizeof(buf), 500), -1);
	expect_counter(d, "reserved source port 1,");
	ck_assert_int_eq(eod_log_wait(d, "dropping UDP datagrams without "
	    "reply: from a reserved source port", eo_ms(5000)), 0);
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A UDP datagram from 127.0.0.1:from to 127.0.0.1:to, its source
   forged to be one of the daemon's own sockets (raw socket: root). */
static void
send_forged(int from, int to, const char *msg)
{
	unsigned char pkt[128];
	struct udphdr *u = (struct udphdr *)pkt;
	struct sockaddr_storage ss;
	size_t len = sizeof(*u) + strlen(msg);
	socklen_t sl = sa_of(&ss, "127.0.0.1", to);
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);

	ck_assert_int_ge(fd, 0);
	memset(pkt, 0, sizeof(pkt));
	u->source = htons((uint16_t)from);
	u->dest = htons((uint16_t)to);
	u->len = htons((uint16_t)len);
	u->check = 0;			/* IPv4: no checksum */
	memcpy(pkt + sizeof(*u), msg, strlen(msg));
	ck_assert_int_eq(sendto(fd, pkt, len, 0, (struct sockaddr *)&ss, sl),
	    (ssize_t)len);
	close(fd);
}

/*
 * Issue 11: echo on one port answering echo on another would bounce a
 * datagram between them for ever (CERT CA-1996-01).  One forged
 * datagram from service v to service u: dropped at once, the daemon
 * stays idle.
 */
START_TEST(test_udp_guard_own_port_no_storm)
{
	int p = eo_port(), q = eo_port();
	struct eod *d;
	long cpu;

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: forging a source needs root\n");
		return;
	}
	d = eod_start(UDP_CONF, p, q);
	cpu = eod_cpu_ms(d);
	send_forged(q, p, "ping-pong");
	expect_counter(d, "own service port 1,");
	/* A second on: a storm would have received thousands. */
	usleep(1000000);
	expect_counter(d, ": 1 datagrams received, 0 answered,");
	ck_assert_int_lt(eod_cpu_ms(d) - cpu, 500);
	ck_assert_int_eq(eod_log_wait(d, "from the port of one of our own UDP "
	    "services", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The same rule without root: any address, one of our UDP ports. */
START_TEST(test_udp_guard_own_port)
{
	int p = eo_port(), q = eo_port(), fd;
	struct eod *d = eod_start(UDP_CONF, p, q);
	char buf[64];

	fd = udp_client("127.0.0.2", q, "127.0.0.1", p);
	ck_assert_int_eq(send(fd, "loop?", 5, 0), 5);
	ck_assert_int_eq(udp_recv(fd, buf, sizeof(buf), 500), -1);
	expect_counter(d, "own service port 1,");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Whether a datagram of size comes back whole, sent up to 20 times. */
static int
echo_retried(int fd, size_t size)
{
	static unsigned char out[65507], in[65536];
	ssize_t n;
	int i;

	memset(out, 'r', size);
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(send(fd, out, size, 0), (ssize_t)size);
		while ((n = udp_recv(fd, in, sizeof(in), 1000)) >= 0)
			if ((size_t)n == size && memcmp(in, out, size) == 0)
				return 1;
	}
	return 0;
}

/*
 * Clients that vanish before their reply (ICMP port unreachable for it)
 * and a datagram cut to nothing concern themselves only: the listener
 * serves the next client.
 */
START_TEST(test_udp_vanished_clients)
{
	int p = eo_port(), q = eo_port(), fd, i;
	struct eod *d = eod_start(UDP_CONF, p, q);

	for (i = 0; i < 200; i++) {
		fd = udp_client("127.0.0.1", 0, "127.0.0.1", p);
		ck_assert_int_eq(send(fd, "gone", 4, 0), 4);
		close(fd);
	}
	/* Those 200 may still fill the daemon's receive buffer, where the
	   kernel drops what does not fit: try again, as a UDP client does. */
	fd = udp_client("127.0.0.1", 0, "127.0.0.1", p);
	ck_assert(echo_retried(fd, 65507));
	close(fd);
	fd = udp_client("::1", 0, "::1", p);
	ck_assert(echo_retried(fd, 3));
	close(fd);
	ck_assert(eod_running(d));
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_udp_rate_limit)
{
	int p = eo_port(), fd, i, got = 0;
	struct eod *d = eod_start("listeners = ( { name = \"u\"; protocol = "
	    "\"echo\"; port = %d; transport = \"udp\"; bind = \"127.0.0.1\";\n"
	    "  udp_rate_limit = 5; } );\n", p);
	char buf[64], want[64];
	long t0, took;

	fd = udp_client("127.0.0.1", 0, "127.0.0.1", p);
	t0 = now_ms();
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(send(fd, "burst", 5, 0), 5);
	while (udp_recv(fd, buf, sizeof(buf), 300) == 5)
		got++;
	/* The last wait for nothing: 300 ms that do not count. */
	took = now_ms() - t0 - eo_ms(300);
	ck_assert_int_ge(got, 5);
	ck_assert_msg(got <= 5 + 1 + took * 5 / 1000, "%d replies in %ld ms",
	    got, took);
	/* Every datagram not answered was over the limit, no more. */
	snprintf(want, sizeof(want), "udp_rate_limit %d,", 50 - got);
	expect_counter(d, want);
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Replies waiting on fd now, read and counted. */
static long
drain(int fd)
{
	char buf[256];
	long n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

/* Datagram i of a flood into pkt: every 9th from the victim (vport on
   127.0.0.5), the others from a random source of 127/8; its length. */
static size_t
flood_packet(unsigned char *pkt, long i, int vport, int to, uint64_t *rng)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *u = (struct udphdr *)(pkt + sizeof(*ip));
	size_t len = sizeof(*ip) + sizeof(*u) + 5;
	uint32_t src = 0x7f000005;
	uint16_t sport = (uint16_t)vport;

	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	if (i % 9 != 0) {
		src = 0x7f000000 | (uint32_t)(*rng & 0xfffffe);
		sport = (uint16_t)(1024 + (*rng >> 32) % 60000);
	}
	memset(pkt, 0, len);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = htonl(src);
	ip->daddr = htonl(0x7f000001);
	u->source = htons(sport);
	u->dest = htons((uint16_t)to);
	u->len = htons((uint16_t)(sizeof(*u) + 5));
	memcpy(pkt + sizeof(*ip) + sizeof(*u), "flood", 5);
	return len;			/* the kernel fills in the rest */
}

/*
 * Issue 30: the probe's flood.  A victim's address mixed with 8 random
 * forged sources of 127/8 per datagram, 100,000 a second (as far as
 * this machine sends them) for 3 s, to a limit of 100: the victim gets
 * at most 1.1x its burst and rate.  The table of one slot per source
 * gave it a fresh burst whenever a forged source took its slot.
 */
START_TEST(test_udp_rate_limit_forged_flood_victim)
{
	int p = eo_port(), vport = eo_port(), raw, victim, on = 1;
	struct eod *d;
	struct sockaddr_storage ss;
	socklen_t sl;
	static unsigned char pkt[64][64];
	struct mmsghdr mm[64];
	struct iovec iov[64];
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	long sent = 0, got = 0, due, t0, took;
	unsigned k;

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: forging sources needs root\n");
		return;
	}
	d = eod_start("listeners = ( { name = \"u\"; protocol = \"echo\"; "
	    "port = %d; transport = \"udp\"; bind = \"127.0.0.1\";\n"
	    "  udp_rate_limit = 100; } );\n", p);
	victim = udp_client("127.0.0.5", vport, "127.0.0.1", p);
	ck_assert_int_ge(raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC,
	    IPPROTO_RAW), 0);
	ck_assert_int_eq(setsockopt(raw, IPPROTO_IP, IP_HDRINCL, &on,
	    sizeof(on)), 0);
	sl = sa_of(&ss, "127.0.0.1", p);
	t0 = now_ms();
	while ((took = now_ms() - t0) < 3000) {
		due = took * 100;		/* 100,000 a second */
		for (k = 0; k < 64 && sent + k < due; k++) {
			iov[k].iov_base = pkt[k];
			iov[k].iov_len = flood_packet(pkt[k], sent + k, vport,
			    p, &rng);
			memset(&mm[k], 0, sizeof(mm[k]));
			mm[k].msg_hdr.msg_name = &ss;
			mm[k].msg_hdr.msg_namelen = sl;
			mm[k].msg_hdr.msg_iov = &iov[k];
			mm[k].msg_hdr.msg_iovlen = 1;
		}
		if (k > 0 && sendmmsg(raw, mm, k, 0) > 0)
			sent += k;
		got += drain(victim);
		if (sent >= due)
			usleep(200);
	}
	usleep(300000);
	got += drain(victim);
	fprintf(stderr, "forged flood: %ld datagrams in %ld ms, the victim "
	    "%ld replies\n", sent, took, got);
	ck_assert_int_ge(got, 100);
	ck_assert_msg(got * 10 <= 11 * (100 + 100 * took / 1000), "the victim "
	    "got %ld replies in %ld ms: limit 100 a second", got, took);
	close(raw);
	close(victim);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 30: a listener on two addresses (two sockets, on two workers)
 * is one limit, not one each.  One client sends to both, 5,000 a second
 * for 2 s: at most 1.1x the burst and rate of 100, not twice that.
 */
START_TEST(test_udp_rate_limit_per_listener_not_per_socket)
{
	int p = eo_port(), fd, i;
	struct eod *d = eod_start("workers = 2;\nlisteners = ( { name = \"u\"; "
	    "protocol = \"echo\"; port = %d; transport = \"udp\";\n"
	    "  bind = [\"127.0.0.1\", \"127.0.0.2\"]; udp_rate_limit = 100; "
	    "} );\n", p);
	struct sockaddr_storage to[2];
	socklen_t tl[2];
	long got = 0, t0, took;

	tl[0] = sa_of(&to[0], "127.0.0.1", p);
	tl[1] = sa_of(&to[1], "127.0.0.2", p);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	t0 = now_ms();
	for (i = 0; (took = now_ms() - t0) < 2000; i++) {
		if (i >= took * 5) {
			usleep(1000);
			i--;
		} else
			sendto(fd, "both", 4, 0,
			    (struct sockaddr *)&to[i % 2], tl[i % 2]);
		got += drain(fd);
	}
	usleep(300000);
	got += drain(fd);
	fprintf(stderr, "one listener on two addresses: %ld replies in %ld "
	    "ms\n", got, took);
	ck_assert_int_ge(got, 100);
	ck_assert_msg(got * 10 <= 11 * (100 + 100 * took / 1000), "%ld "
	    "replies in %ld ms: limit 100 a second", got, took);
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

START_TEST(test_udp_oracle_refused)
{
	struct eod_opts o = { .expect_fail = 1 };
	struct eod *d = eod_start_opts(&o, "listeners = (\n"
	    "{ name = \"o\"; protocol = \"oracle\"; port = %d;\n"
	    "  transport = \"udp\"; bind = \"127.0.0.1\"; } );\n", eo_port());
	char want[200];

	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 78);
	snprintf(want, sizeof(want), "%s:3: listener \"o\": protocol oracle "
	    "serves TCP only", d->conf);
	ck_assert_msg(eod_log_has(d, want), "no \"%s\"", want);
	eod_free(d);
}
END_TEST

/* Until the port is closed: a connected UDP socket hears the ICMP. */
static int
udp_closed(int fd)
{
	char buf[16];
	int i;

	for (i = 0; i < 100; i++) {
		if (send(fd, "?", 1, 0) == -1 && errno == ECONNREFUSED)
			return 1;
		if (udp_recv(fd, buf, sizeof(buf), 50) == -2 &&
		    errno == ECONNREFUSED)
			return 1;
	}
	return 0;
}

START_TEST(test_udp_reload)
{
	int p = eo_port(), q = eo_port(), r = eo_port(), fp, fr, i;
	struct eod *d = eod_start(UDP_CONF, p, q);
	char want[128], buf[16];

	fp = udp_client("127.0.0.1", 0, "127.0.0.1", p);
	expect_echo(fp, 100);
	/* Datagrams sent while the reload runs wait in the kept socket. */
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(send(fp, "queued", 6, 0), 6);
	eod_write_conf(d, "listeners = (\n"
	    "{ name = \"u\"; protocol = \"echo\"; port = %d; transport = "
	    "\"udp\";\n  bind = [\"127.0.0.1\", \"::1\"]; udp_rate_limit = 0; },\n"
	    "{ name = \"w\"; protocol = \"echo\"; port = %d; transport = "
	    "\"udp\";\n  bind = \"127.0.0.1\"; } );\n", p, r);
	ck_assert_int_eq(eod_reload(d), 0);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(udp_recv(fp, buf, sizeof(buf), 5000), 6);
	expect_echo(fp, 1000);
	/* Kept: opened once, not again. */
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d/udp", p);
	ck_assert_int_eq(eod_log_count(d, want), 1);
	snprintf(want, sizeof(want), "listener v: closed 127.0.0.1:%d", q);
	ck_assert(eod_log_has(d, want));
	fr = udp_client("127.0.0.1", 0, "127.0.0.1", r);
	expect_echo(fr, 10);
	close(fr);
	fr = udp_client("127.0.0.1", 0, "127.0.0.1", q);
	ck_assert(udp_closed(fr));
	close(fr);
	close(fp);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The metrics endpoint's page, body and headers; "" if none came. */
static const char *
metrics_page(int mport)
{
	static char buf[256 * 1024];
	const char *req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
	size_t n;
	int fd, eof = 0;

	buf[0] = '\0';
	if ((fd = tcp_connect("127.0.0.1", mport)) == -1)
		return buf;
	if (send_all(fd, req, strlen(req)) == 0) {
		n = recv_all(fd, buf, sizeof(buf) - 1, eo_ms(5000), &eof);
		buf[n] = '\0';
	}
	close(fd);
	return buf;
}

/* Whether the page has the line "series value" within a few seconds. */
static int
metrics_has(int mport, const char *line)
{
	char want[256];
	int i;

	snprintf(want, sizeof(want), "\n%s\n", line);
	for (i = 0; i < 100; i++) {
		if (strstr(metrics_page(mport), want) != NULL)
			return 1;
		usleep(50000);
	}
	fprintf(stderr, "no line \"%s\" in:\n%s\n", line,
	    metrics_page(mport));
	return 0;
}

/* deny applies to each datagram: no reply, counted as "denied", in the
   log and on the metrics endpoint; another source is still answered. */
START_TEST(test_udp_deny_and_metrics)
{
	int p = eo_port(), m = eo_port(), f4, f6;
	struct eod *d = eod_start("listeners = (\n"
	    "{ name = \"u\"; protocol = \"echo\"; port = %d;\n"
	    "  transport = \"udp\"; bind = [\"127.0.0.1\", \"::1\"];\n"
	    "  deny = [\"127.0.0.0/8\"]; udp_rate_limit = 0; },\n"
	    "{ name = \"m\"; protocol = \"metrics\"; port = %d;\n"
	    "  bind = \"127.0.0.1\"; } );\n", p, m);
	char buf[64];

	f4 = udp_client("127.0.0.1", 0, "127.0.0.1", p);
	f6 = udp_client("::1", 0, "::1", p);
	ck_assert_int_eq(send(f4, "denied", 6, 0), 6);
	ck_assert_int_eq(udp_recv(f4, buf, sizeof(buf), 500), -1);
	expect_echo(f6, 100);
	expect_counter(d, "denied by allow/deny 1)");
	ck_assert_int_eq(eod_log_wait(d, "dropping UDP datagrams without "
	    "reply: their source is refused by allow/deny", eo_ms(5000)), 0);
	ck_assert(metrics_has(m, "echo_oracled_udp_datagrams_dropped_total"
	    "{reason=\"denied\"} 1"));
	ck_assert(metrics_has(m, "echo_oracled_udp_datagrams_received_total 2"));
	ck_assert(metrics_has(m, "echo_oracled_udp_datagrams_sent_total 1"));
	close(f4);
	close(f6);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("udp");
	TCase *tc = tcase_create("udp");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_udp_echo_sizes);
	tcase_add_test(tc, test_udp_echo_nc);
	tcase_add_test(tc, test_udp_wildcard_replies_from_address_asked);
	tcase_add_test(tc, test_udp_wildcard_replies_from_address_asked_v6);
	tcase_add_test(tc, test_udp_guard_reserved_port);
	tcase_add_test(tc, test_udp_guard_own_port_no_storm);
	tcase_add_test(tc, test_udp_guard_own_port);
	tcase_add_test(tc, test_udp_vanished_clients);
	tcase_add_test(tc, test_udp_rate_limit);
	tcase_add_test(tc, test_udp_rate_limit_forged_flood_victim);
	tcase_add_test(tc, test_udp_rate_limit_per_listener_not_per_socket);
	tcase_add_test(tc, test_udp_oracle_refused);
	tcase_add_test(tc, test_udp_reload);
	tcase_add_test(tc, test_udp_deny_and_metrics);
	suite_add_tcase(s, tc);
	return check_run(s);
}
