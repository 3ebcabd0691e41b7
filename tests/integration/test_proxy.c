/*
 * Behind a load balancer: the PROXY protocol on a listener, proxy_from,
 * allow and deny, as a client and a proxy meet them.  First with headers
 * written by hand (every case, exactly), then with a real HAProxy
 * running conf/haproxy-example.cfg in front of two daemons.
 *
 * Clients bind other loopback addresses (127.0.0.2, 127.0.0.3...) before
 * connecting, so that one machine plays several clients.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

/* One echo listener taking PROXY headers from extra's proxy_from. */
#define PROXIED(port, extra)						\
	"log_level = \"debug\";\n"					\
	"listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;" \
	" bind = \"127.0.0.1\"; proxy_protocol = true; " extra " } );\n", \
	port

/* The v2 signature, then version 2 and a command in the 13th byte. */
static const unsigned char v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
	0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* A TCP connection to 127.0.0.1:port from src (a loopback address). */
static int
connect_from(const char *src, int port)
{
	int fd = tcp_connect_from(src, "127.0.0.1", port), one = 1;

	/* Pieces of a header go out as written. */
	if (fd != -1)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* A v2 PROXY header for TCP over IPv4 from src:sport; its length. */
static size_t
v2_tcp4(unsigned char *buf, const char *src, uint16_t sport)
{
	struct in_addr a;

	memcpy(buf, v2_sig, 12);
	buf[12] = 0x21;			/* version 2, PROXY */
	buf[13] = 0x11;			/* AF_INET, STREAM */
	buf[14] = 0;
	buf[15] = 12;
	ck_assert_int_eq(inet_pton(AF_INET, src, &a), 1);
	memcpy(buf + 16, &a, 4);
	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &a), 1);
	memcpy(buf + 20, &a, 4);
	buf[24] = (unsigned char)(sport >> 8);
	buf[25] = (unsigned char)sport;
	buf[26] = 0x1b;			/* 7007 */
	buf[27] = 0x5f;
	return 28;
}

/* Whether the daemon served the connection: an echo comes back. */
static int
echoes(int fd, const char *msg)
{
	char buf[256];
	size_t n = strlen(msg);

	if (send_all(fd, msg, n) == -1)
		return 0;
	return recv_n(fd, buf, n, eo_ms(3000)) == n && memcmp(buf, msg, n) == 0;
}

/* Refused after the accept: EOF (or a reset) comes, no echo. */
static int
refused(int fd)
{
	char buf[64];
	int eof;

	send(fd, "x\n", 2, MSG_NOSIGNAL);
	return recv_all(fd, buf, sizeof(buf), eo_ms(5000), &eof) == 0 &&
	    eof != 0;
}

START_TEST(test_proxy_v1_names_client)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.0/8\"];"));
	int fd = connect_from("127.0.0.2", port);
	const char hdr[] = "PROXY TCP4 192.0.2.7 127.0.0.1 5555 7007\r\n";
	char line[128];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send_all(fd, hdr, sizeof(hdr) - 1), 0);
	ck_assert(echoes(fd, "hello\n"));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "accepted from 192.0.2.7:5555 "
	    "(PROXY v1 from 127.0.0.2:", eo_ms(3000)), 0);
	snprintf(line, sizeof(line), "peer 192.0.2.7:5555)");
	ck_assert_int_eq(eod_log_wait(d, line, eo_ms(3000)), 0);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/*
 * The header and the first bytes arrive a byte at a time: nothing is
 * echoed before the header is whole, and the bytes after it, in the
 * same segment as its end, are the client's.
 */
START_TEST(test_proxy_header_in_pieces)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.1\"];"));
	unsigned char buf[64];
	size_t n = v2_tcp4(buf, "198.51.100.9", 4242), i;
	int fd = connect_from("127.0.0.1", port);

	memcpy(buf + n, "ab\n", 3);
	n += 3;
	for (i = 0; i + 4 < n; i++) {
		ck_assert_int_eq(send_all(fd, buf + i, 1), 0);
		usleep(2000);	/* separate segments, not readiness */
	}
	ck_assert_int_eq(send_all(fd, buf + i, n - i), 0);
	ck_assert_uint_eq(recv_n(fd, buf, 3, eo_ms(3000)), 3);
	ck_assert(memcmp(buf, "ab\n", 3) == 0);
	ck_assert(echoes(fd, "more\n"));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "accepted from 198.51.100.9:4242",
	    eo_ms(3000)), 0);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* Half a header, then silence: closed after proxy_timeout, not before. */
START_TEST(test_proxy_timeout)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.1\"]; proxy_timeout = 2;"));
	int fd = connect_from("127.0.0.1", port);
	struct timespec t0, t1;
	long ms;

	ck_assert_int_eq(send_all(fd, "PROXY TCP4 ", 11), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(wait_eof(fd, eo_ms(6000)), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 1900);
	ck_assert_int_eq(eod_log_wait(d, "closed: PROXY header: not whole "
	    "within proxy_timeout (2 s)", eo_ms(3000)), 0);
	close(fd);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* Each malformed header closes its connection, counted and logged. */
START_TEST(test_proxy_malformed)
{
	static const char *const bad[] = {
		"hello\r\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 05 7007\r\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 5 7007\n",
		"PROXY TCP5 192.0.2.1 127.0.0.1 5 7007\r\n",
		"PROXY TCP4 ::1 127.0.0.1 5 7007\r\n",
	};
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.1\"];"));
	unsigned char v2[32];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = connect_from("127.0.0.1", port);
		ck_assert_int_eq(send_all(fd, bad[i], strlen(bad[i])), 0);
		ck_assert_msg(refused(fd), "served after \"%s\"", bad[i]);
		close(fd);
	}
	/* v2 with a bad version nibble. */
	v2_tcp4(v2, "192.0.2.1", 5);
	v2[12] = 0x31;
	fd = connect_from("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, v2, 28), 0);
	ck_assert(refused(fd));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "closed: PROXY header: ",
	    eo_ms(3000)), 0);
	ck_assert_int_eq(eod_log_wait(d, "refusing connections: listener "
	    "echo: bad PROXY header: from 127.0.0.1:", eo_ms(5000)), 0);
	/* Good headers still work. */
	fd = connect_from("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, v2, v2_tcp4(v2, "192.0.2.1", 5)), 0);
	ck_assert(echoes(fd, "fine\n"));
	close(fd);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* v2 LOCAL (HAProxy's health check): served as the proxy itself. */
START_TEST(test_proxy_local_health_check)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.3\"]; allow = [\"192.0.2.0/24\"];"
	    " max_connections_per_source = 1;"));
	unsigned char hdr[16];
	int fd, fd2;

	memcpy(hdr, v2_sig, 12);
	hdr[12] = 0x20;			/* version 2, LOCAL */
	hdr[13] = 0x00;			/* UNSPEC */
	hdr[14] = hdr[15] = 0;
	fd = connect_from("127.0.0.3", port);
	fd2 = connect_from("127.0.0.3", port);
	ck_assert_int_eq(send_all(fd, hdr, 16), 0);
	ck_assert_int_eq(send_all(fd2, hdr, 16), 0);
	/* Not in allow, and two at once: the proxy's own are not screened. */
	ck_assert(echoes(fd, "check\n"));
	ck_assert(echoes(fd2, "check\n"));
	close(fd);
	close(fd2);
	ck_assert_int_eq(eod_log_wait(d, "accepted from 127.0.0.3:",
	    eo_ms(3000)), 0);
	ck_assert_int_eq(eod_log_wait(d, "(PROXY v2 LOCAL from 127.0.0.3:",
	    eo_ms(3000)), 0);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* Only proxy_from may send a header: anyone else is refused at accept. */
START_TEST(test_proxy_untrusted_refused)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.2\"];"));
	const char hdr[] = "PROXY TCP4 192.0.2.7 127.0.0.1 5555 7007\r\n";
	int fd = connect_from("127.0.0.4", port);

	send(fd, hdr, sizeof(hdr) - 1, MSG_NOSIGNAL);
	ck_assert(refused(fd));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "refusing connections: listener "
	    "echo takes PROXY headers only from proxy_from: 127.0.0.4 is not",
	    eo_ms(5000)), 0);
	fd = connect_from("127.0.0.2", port);
	ck_assert_int_eq(send_all(fd, hdr, sizeof(hdr) - 1), 0);
	ck_assert(echoes(fd, "trusted\n"));
	close(fd);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/*
 * Behind a proxy every connection comes from the proxy's address:
 * max_connections_per_source must count the client in the header.
 * Two clients, one connection each allowed: the first client's second
 * connection is refused, the other client is served.
 */
START_TEST(test_proxy_per_source_counts_client)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.1\"]; max_connections_per_source = 1;"));
	const char a[] = "PROXY TCP4 192.0.2.1 127.0.0.1 1000 7007\r\n";
	const char b[] = "PROXY TCP4 192.0.2.2 127.0.0.1 1000 7007\r\n";
	int fa = connect_from("127.0.0.1", port);
	int fa2 = connect_from("127.0.0.1", port);
	int fb = connect_from("127.0.0.1", port);

	ck_assert_int_eq(send_all(fa, a, sizeof(a) - 1), 0);
	ck_assert(echoes(fa, "a\n"));
	ck_assert_int_eq(send_all(fb, b, sizeof(b) - 1), 0);
	ck_assert(echoes(fb, "b\n"));
	ck_assert_int_eq(send_all(fa2, a, sizeof(a) - 1), 0);
	ck_assert(refused(fa2));
	ck_assert_int_eq(eod_log_wait(d, "reached max_connections_per_source"
	    " (1): 192.0.2.1, the latest", eo_ms(5000)), 0);
	/* Its slot comes back when it closes (the daemon's EOF follows
	   its close, and the count is given back with it). */
	ck_assert_int_eq(shutdown(fa, SHUT_WR), 0);
	ck_assert_int_eq(wait_eof(fa, eo_ms(5000)), 1);
	close(fa);
	fa = connect_from("127.0.0.1", port);
	ck_assert_int_eq(send_all(fa, a, sizeof(a) - 1), 0);
	ck_assert(echoes(fa, "again\n"));
	close(fa);
	close(fa2);
	close(fb);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/*
 * Issue 30: one client, two names.  A proxy may write an IPv4 client as
 * 10.7.7.7 or as ::ffff:10.7.7.7; allow/deny treat them as one address,
 * and so must max_connections_per_source: 4 served, not 8.
 */
START_TEST(test_proxy_per_source_v4_mapped_one_client)
{
	int port = eo_port(), fd[8], i;
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.1\"]; max_connections_per_source = 4;"));
	const char v4[] = "PROXY TCP4 10.7.7.7 127.0.0.1 1000 7007\r\n";
	const char v6[] = "PROXY TCP6 ::ffff:10.7.7.7 ::1 1000 7007\r\n";

	for (i = 0; i < 8; i++) {
		const char *h = i % 2 ? v6 : v4;

		fd[i] = connect_from("127.0.0.1", port);
		ck_assert_int_eq(send_all(fd[i], h, strlen(h)), 0);
		if (i < 4)
			ck_assert_msg(echoes(fd[i], "in\n"), "#%d refused", i);
		else
			ck_assert_msg(refused(fd[i]), "#%d served", i);
	}
	ck_assert_int_eq(eod_log_wait(d, "reached max_connections_per_source"
	    " (4): 10.7.7.7, the latest", eo_ms(5000)), 0);
	for (i = 0; i < 8; i++)
		close(fd[i]);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* allow and deny on the client in the header. */
START_TEST(test_proxy_deny_client)
{
	int port = eo_port();
	struct eod *d = eod_start(PROXIED(port, "proxy_from = "
	    "[\"127.0.0.1\"]; allow = [\"192.0.2.0/24\"];"
	    " deny = [\"192.0.2.66\"];"));
	const char ok[] = "PROXY TCP4 192.0.2.1 127.0.0.1 1000 7007\r\n";
	const char no[] = "PROXY TCP4 192.0.2.66 127.0.0.1 1000 7007\r\n";
	const char out[] = "PROXY TCP4 203.0.113.1 127.0.0.1 1000 7007\r\n";
	int fd = connect_from("127.0.0.1", port);

	ck_assert_int_eq(send_all(fd, ok, sizeof(ok) - 1), 0);
	ck_assert(echoes(fd, "ok\n"));
	close(fd);
	fd = connect_from("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, no, sizeof(no) - 1), 0);
	ck_assert(refused(fd));
	close(fd);
	fd = connect_from("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, out, sizeof(out) - 1), 0);
	ck_assert(refused(fd));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "client denied by allow/deny: ",
	    eo_ms(5000)), 0);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* allow and deny on a plain listener: the peer's own address. */
START_TEST(test_allow_deny_plain)
{
	int port = eo_port();
	struct eod *d = eod_start("listeners = ( { name = \"echo\"; "
	    "protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; "
	    "allow = [\"127.0.0.0/29\"]; deny = [\"127.0.0.3\"]; } );\n",
	    port);
	int fd = connect_from("127.0.0.2", port);

	ck_assert(echoes(fd, "two\n"));
	close(fd);
	fd = connect_from("127.0.0.3", port);
	ck_assert(refused(fd));
	close(fd);
	fd = connect_from("127.0.0.9", port);	/* not in allow */
	ck_assert(refused(fd));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "refusing connections: listener "
	    "echo: client denied by allow/deny: 127.0.0.", eo_ms(5000)), 0);
	eod_stop(d);
	eod_free(d);
}
END_TEST

/* ---- a real HAProxy ------------------------------------------------- */

struct hap {
	pid_t	pid;
	char	dir[64];
	char	log[96];
	int	echo_port;	/* its frontends */
	int	oracle_port;
};

#define EO_DAEMON(pe, po)						\
	"log_level = \"debug\";\n"					\
	"listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;" \
	" bind = \"127.0.0.1\"; proxy_protocol = true;"			\
	" proxy_from = [\"127.0.0.1\"]; max_connections_per_source = 1; },\n" \
	" { name = \"oracle\"; protocol = \"oracle\"; port = %d;"	\
	" bind = \"127.0.0.1\"; proxy_protocol = true;"			\
	" proxy_from = [\"127.0.0.1\"];"				\
	" oracle = { answers = [\"Yes.\"]; }; } );\n", pe, po

/* Replaces every "from" in s (at most cap bytes) with "to". */
static void
replace(char *s, size_t cap, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *p = s;

	while ((p = strstr(p, from)) != NULL) {
		ck_assert_uint_lt(strlen(s) - fl + tl, cap);
		memmove(p + tl, p + fl, strlen(p + fl) + 1);
		memcpy(p, to, tl);
		p += tl;
	}
}

/* The example, its addresses and ports replaced by the test's. */
static void
hap_config(struct hap *h, const int pe[2], const int po[2], const char *out)
{
	static char text[8192];
	char to[32];
	FILE *f = fopen(EO_SOURCE_DIR "/conf/haproxy-example.cfg", "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	snprintf(to, sizeof(to), "127.0.0.1:%d", h->echo_port);
	replace(text, sizeof(text), "192.0.2.10:7007", to);
	snprintf(to, sizeof(to), "127.0.0.1:%d", h->oracle_port);
	replace(text, sizeof(text), "192.0.2.10:7070", to);
	snprintf(to, sizeof(to), "127.0.0.1:%d", pe[0]);
	replace(text, sizeof(text), "192.0.2.21:7007", to);
	snprintf(to, sizeof(to), "127.0.0.1:%d", pe[1]);
	replace(text, sizeof(text), "192.0.2.22:7007", to);
	snprintf(to, sizeof(to), "127.0.0.1:%d", po[0]);
	replace(text, sizeof(text), "192.0.2.21:7070", to);
	snprintf(to, sizeof(to), "127.0.0.1:%d", po[1]);
	replace(text, sizeof(text), "192.0.2.22:7070", to);
	f = fopen(out, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static int
hap_found(void)
{
	return access("/usr/sbin/haproxy", X_OK) == 0;
}

/* Starts HAProxy on the example; returns once its frontends accept. */
static void
hap_start(struct hap *h, const int pe[2], const int po[2])
{
	char conf[128];
	int i, fd;

	snprintf(h->dir, sizeof(h->dir), "/tmp/eo-hap.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(h->dir));
	snprintf(conf, sizeof(conf), "%s/haproxy.cfg", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/stderr", h->dir);
	h->echo_port = eo_port();
	do
		h->oracle_port = eo_port();
	while (h->oracle_port == h->echo_port);
	hap_config(h, pe, po, conf);
	if ((h->pid = fork()) == 0) {
		int lfd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(lfd, 1);
		dup2(lfd, 2);
		execl("/usr/sbin/haproxy", "haproxy", "-db", "-f", conf,
		    (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(h->pid, 0);
	for (i = 0; i < eo_ms(10000) / 20; i++) {
		if ((fd = tcp_connect("127.0.0.1", h->oracle_port)) != -1) {
			close(fd);
			return;
		}
		ck_assert_int_eq(waitpid(h->pid, NULL, WNOHANG), 0);
		usleep(20000);
	}
	ck_abort_msg("haproxy did not start listening");
}

/* Whether HAProxy's stderr has needle yet, waiting up to ms. */
static int
hap_log_wait(const struct hap *h, const char *needle, int ms)
{
	char buf[65536];
	int i;

	for (i = 0; i <= ms / 50; i++) {
		FILE *f = fopen(h->log, "r");
		size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f != NULL)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, needle) != NULL)
			return 0;
		usleep(50000);
	}
	return -1;
}

static void
hap_stop(struct hap *h)
{
	char cmd[128];

	kill(h->pid, SIGTERM);
	waitpid(h->pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* An oracle question through the proxy, answered byte-exact. */
static void
ask(int fd)
{
	const char q[] = "Will it scale?";
	const char a[] = "Will it scale? Yes.\r\n";
	char buf[64];

	ck_assert_int_eq(send_all(fd, q, sizeof(q) - 1), 0);
	ck_assert_uint_eq(recv_n(fd, buf, sizeof(a) - 1, eo_ms(3000)),
	    sizeof(a) - 1);
	ck_assert(memcmp(buf, a, sizeof(a) - 1) == 0);
}

/*
 * Two daemons behind the example: echo and oracle (send-proxy-v2)
 * byte-exact; the daemons log the real client; the
 * per-source limit counts the real clients; a direct connection from
 * outside proxy_from is refused.
 */
START_TEST(test_haproxy_two_instances)
{
	int pe[2] = { eo_port(), eo_port() }, po[2] = { eo_port(), eo_port() };
	struct eod *d[2];
	struct hap h;
	int c2a, c2b, c2c, c3, fd, i;
	unsigned char big[20000], back[20000];

	if (!hap_found()) {
		fprintf(stderr, "test_haproxy_two_instances: skipped: "
		    "/usr/sbin/haproxy not installed (apt-get install "
		    "haproxy)\n");
		return;
	}
	d[0] = eod_start(EO_DAEMON(pe[0], po[0]));
	d[1] = eod_start(EO_DAEMON(pe[1], po[1]));
	hap_start(&h, pe, po);

	c2a = connect_from("127.0.0.2", h.echo_port);
	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + i / 256);
	ck_assert_int_eq(send_all(c2a, big, sizeof(big)), 0);
	ck_assert_uint_eq(recv_n(c2a, back, sizeof(big), eo_ms(5000)),
	    sizeof(big));
	ck_assert(memcmp(big, back, sizeof(big)) == 0);
	ck_assert(eod_log_wait(d[0], "accepted from 127.0.0.2:", 0) == 0 ||
	    eod_log_wait(d[1], "accepted from 127.0.0.2:", eo_ms(3000)) == 0);

	fd = connect_from("127.0.0.3", h.oracle_port);
	ask(fd);
	close(fd);
	ck_assert(eod_log_wait(d[0], "(PROXY v2 from 127.0.0.1:", 0) == 0 ||
	    eod_log_wait(d[1], "(PROXY v2 from 127.0.0.1:", eo_ms(3000)) == 0);

	/* One connection per client per instance: leastconn puts the
	   second from 127.0.0.2 on the other instance, the third meets
	   the limit; 127.0.0.3 is another client. */
	c2b = connect_from("127.0.0.2", h.echo_port);
	ck_assert(echoes(c2b, "second\n"));
	c2c = connect_from("127.0.0.2", h.echo_port);
	ck_assert(refused(c2c));
	c3 = connect_from("127.0.0.3", h.echo_port);
	ck_assert(echoes(c3, "other client\n"));

	/* The daemons trust only the proxy. */
	fd = connect_from("127.0.0.5", pe[0]);
	ck_assert(refused(fd));
	close(fd);
	ck_assert_int_eq(eod_log_wait(d[0], "not in it, the latest",
	    eo_ms(5000)), 0);

	close(c2a);
	close(c2b);
	close(c2c);
	close(c3);
	hap_stop(&h);
	eod_stop(d[0]);
	eod_stop(d[1]);
	eod_free(d[0]);
	eod_free(d[1]);
}
END_TEST

/* The value of series (written whole) on the metrics port; -1: none. */
static long long
scrape(int mport, const char *series)
{
	static char buf[262144];
	const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	size_t n, len = strlen(series);
	const char *p = buf;
	int fd = tcp_open("127.0.0.1", mport), eof = 0;

	ck_assert_int_eq(send_all(fd, req, sizeof(req) - 1), 0);
	n = recv_all(fd, buf, sizeof(buf) - 1, eo_ms(5000), &eof);
	close(fd);
	buf[n] = '\0';
	while ((p = strstr(p, series)) != NULL) {
		if (p[-1] == '\n' && p[len] == ' ')
			return atoll(p + len + 1);
		p += len;
	}
	return -1;
}

#define CLOSED(lis, proto, reason)					\
	"echo_oracled_connections_closed_total{listener=\"" lis "\","	\
	"protocol=\"" proto "\",reason=\"" reason "\"}"
#define REFUSED(lis, proto, reason)					\
	"echo_oracled_connections_refused_total{listener=\"" lis "\","	\
	"protocol=\"" proto "\",reason=\"" reason "\"}"

/* Both listeners allow only the clients, never the balancer. */
#define EO_ALLOWING(pe, po, pm)						\
	"listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;" \
	" bind = \"127.0.0.1\"; proxy_protocol = true;"			\
	" proxy_from = [\"127.0.0.1\"]; allow = [\"127.0.0.2\"]; },\n"	\
	" { name = \"oracle\"; protocol = \"oracle\"; port = %d;"	\
	" bind = \"127.0.0.1\"; proxy_protocol = true;"			\
	" proxy_from = [\"127.0.0.1\"]; allow = [\"127.0.0.2\"];"	\
	" oracle = { answers = [\"Yes.\"]; }; },\n"			\
	" { name = \"metrics\"; protocol = \"metrics\"; port = %d;"	\
	" bind = \"127.0.0.1\"; } );\n", pe, po, pm

/*
 * Issue 31 #2: the example's oracle backend used send-proxy (v1), whose
 * checks carry HAProxy's own address; with an allow list that does not
 * hold the balancer every check was refused as "denied" and closed as
 * an error, and every check of either kind was counted client_reset.
 * With the example's v2 (LOCAL checks): no refusal, no client_reset,
 * the checks under health_check, both servers of both backends up.
 */
START_TEST(test_haproxy_checks_pass_allow_list)
{
	int pe[2] = { eo_port(), eo_port() }, po[2] = { eo_port(), eo_port() };
	int pm[2] = { eo_port(), eo_port() }, i, k, fd;
	struct eod *d[2];
	struct hap h;

	if (!hap_found()) {
		fprintf(stderr, "test_haproxy_checks_pass_allow_list: skipped: "
		    "/usr/sbin/haproxy not installed (apt-get install "
		    "haproxy)\n");
		return;
	}
	for (k = 0; k < 2; k++)
		d[k] = eod_start(EO_ALLOWING(pe[k], po[k], pm[k]));
	hap_start(&h, pe, po);
	fd = connect_from("127.0.0.2", h.oracle_port);
	ask(fd);
	close(fd);
	/* Checks every second: three each, at least, on every listener. */
	for (i = 0; i < eo_ms(15000) / 100; i++) {
		for (k = 0; k < 2; k++)
			if (scrape(pm[k], CLOSED("echo", "echo",
			    "health_check")) < 3 || scrape(pm[k],
			    CLOSED("oracle", "oracle", "health_check")) < 3)
				break;
		if (k == 2)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(k, 2);
	/* hap_start()'s probe of the oracle frontend, from 127.0.0.1, is
	   the one client outside allow that may have come through. */
	ck_assert_int_le(scrape(pm[0], REFUSED("oracle", "oracle", "denied")) +
	    scrape(pm[1], REFUSED("oracle", "oracle", "denied")), 1);
	for (k = 0; k < 2; k++) {
		ck_assert_int_eq(scrape(pm[k], REFUSED("echo", "echo",
		    "denied")), 0);
		ck_assert_int_eq(scrape(pm[k], CLOSED("oracle", "oracle",
		    "client_reset")), 0);
		ck_assert_int_eq(scrape(pm[k], CLOSED("echo", "echo",
		    "client_reset")), 0);
		ck_assert_int_eq(scrape(pm[k], CLOSED("oracle", "oracle",
		    "error")), 0);
	}
	ck_assert_int_eq(hap_log_wait(&h, "is DOWN", 0), -1);
	/* And a client outside allow is still refused through it. */
	fd = connect_from("127.0.0.3", h.echo_port);
	ck_assert(refused(fd));
	close(fd);
	hap_stop(&h);
	for (k = 0; k < 2; k++) {
		eod_stop(d[k]);
		eod_free(d[k]);
	}
}
END_TEST

/*
 * One instance stopped mid-run: HAProxy's health check takes it out;
 * from then on every new connection goes to the other and is served.
 */
START_TEST(test_haproxy_instance_stopped)
{
	int pe[2] = { eo_port(), eo_port() }, po[2] = { eo_port(), eo_port() };
	struct eod *d[2];
	struct hap h;
	char msg[32];
	int i, fd;

	if (!hap_found()) {
		fprintf(stderr, "test_haproxy_instance_stopped: skipped: "
		    "/usr/sbin/haproxy not installed (apt-get install "
		    "haproxy)\n");
		return;
	}
	d[0] = eod_start(EO_DAEMON(pe[0], po[0]));
	d[1] = eod_start(EO_DAEMON(pe[1], po[1]));
	hap_start(&h, pe, po);
	/* Each from its own client: max_connections_per_source is 1, and
	   a closed one may not have closed at the daemon yet. */
	for (i = 0; i < 4; i++) {
		snprintf(msg, sizeof(msg), "127.0.1.%d", i + 1);
		fd = connect_from(msg, h.echo_port);
		ck_assert(echoes(fd, "before\n"));
		close(fd);
	}
	ck_assert_int_eq(eod_stop(d[0]), 0);
	ck_assert_int_eq(hap_log_wait(&h, "Server echo_servers/eo1 is DOWN",
	    eo_ms(15000)), 0);
	for (i = 0; i < 50; i++) {
		snprintf(msg, sizeof(msg), "127.0.2.%d", i + 1);
		fd = connect_from(msg, h.echo_port);
		snprintf(msg, sizeof(msg), "after %d\n", i);
		ck_assert_msg(echoes(fd, msg), "connection %d refused", i);
		close(fd);
	}
	ck_assert_int_eq(eod_log_wait(d[1], "accepted from 127.0.2.50:",
	    eo_ms(3000)), 0);
	hap_stop(&h);
	eod_stop(d[1]);
	eod_free(d[0]);
	eod_free(d[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_proxy_v1_names_client);
	tcase_add_test(tc, test_proxy_header_in_pieces);
	tcase_add_test(tc, test_proxy_timeout);
	tcase_add_test(tc, test_proxy_malformed);
	tcase_add_test(tc, test_proxy_local_health_check);
	tcase_add_test(tc, test_proxy_untrusted_refused);
	tcase_add_test(tc, test_proxy_per_source_counts_client);
	tcase_add_test(tc, test_proxy_per_source_v4_mapped_one_client);
	tcase_add_test(tc, test_proxy_deny_client);
	tcase_add_test(tc, test_allow_deny_plain);
	tcase_add_test(tc, test_haproxy_two_instances);
	tcase_add_test(tc, test_haproxy_instance_stopped);
	tcase_add_test(tc, test_haproxy_checks_pass_allow_list);
	suite_add_tcase(s, tc);
	return check_run(s);
}
