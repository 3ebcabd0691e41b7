/*
 * The Prometheus endpoint (issue 13): counters checked exactly against
 * what the test did, HTTP errors, promtool's lint of the output and of
 * the example alerting rules, and a real Prometheus scraping the daemon.
 *
 * it_metrics            the daemon alone
 * it_metrics promtool   promtool check metrics / check rules
 * it_metrics prometheus a real Prometheus (2.42, Debian 12)
 * The last two exit 77 (skipped), saying why, when the tool is absent,
 * unless EO_NO_SKIP is set (.ci/run installs prometheus).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

#define MBUF	(256 * 1024)

/*
 * One HTTP/1.0 request to 127.0.0.1:port; the whole response (headers
 * and body) in buf.  Returns the status code, -1 if none came.
 */
static int
http_req_from(const char *src, int port, const char *method,
    const char *target, char *buf, size_t cap)
{
	char req[2048];
	size_t n;
	int fd, eof = 0, code;

	fd = tcp_connect_from(src, "127.0.0.1", port);
	if (fd == -1)
		return -1;
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	    "\r\n", method, target);
	if (send_all(fd, req, strlen(req)) == -1) {
		close(fd);
		return -1;
	}
	n = recv_all(fd, buf, cap - 1, eo_ms(10000), &eof);
	close(fd);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		return -1;
	return code;
}

static int
http_req(int port, const char *method, const char *target, char *buf,
    size_t cap)
{
	return http_req_from("127.0.0.1", port, method, target, buf, cap);
}

static const char *
http_body(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p != NULL ? p + 4 : resp;
}

/* The value of the series written exactly as series; -1: absent. */
static long long
series_value(const char *text, const char *series)
{
	size_t len = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[len] == ' ')
			return atoll(p + len + 1);
		p += len;
	}
	return -1;
}

static long long
scrape_value(int mport, const char *series)
{
	static char buf[MBUF];

	if (http_req(mport, "GET", "/metrics", buf, sizeof(buf)) != 200)
		return -1;
	return series_value(http_body(buf), series);
}

/* Counters move when a worker gets to it: polls, bounded. */
static long long
wait_value(int mport, const char *series, long long want)
{
	long long v = -1;
	int i;

	for (i = 0; i < eo_ms(5000) / 20; i++) {
		if ((v = scrape_value(mport, series)) == want)
			return v;
		usleep(20000);
	}
	return v;
}

#define S(name, lis, extra)						\
	"echo_oracled_" name "{listener=\"" lis "\",protocol=\"echo\"" extra "}"

#define CONF								\
	"listeners = (\n"						\
	" { name = \"echo\"; protocol = \"echo\"; port = %d;"		\
	"   bind = [\"127.0.0.1\", \"::1\"]; },\n"			\
	" { name = \"capped\"; protocol = \"echo\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; max_connections = 1;"		\
	"   idle_timeout = 1; },\n"					\
	" { name = \"metrics\"; protocol = \"metrics\"; port = %d;"	\
	"   bind = \"127.0.0.1\"; }\n);\n"

/*
 * k connections: accepted is k, each closed for the client's EOF, and
 * the bytes are what was sent and echoed.
 */
START_TEST(test_metrics_counts_connections_and_bytes)
{
	int port = eo_port(), cport = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF, port, cport, mport);
	char msg[64];
	long long bytes = 0;
	int i, fd;

	for (i = 0; i < 7; i++) {
		fd = tcp_open(i % 2 ? "::1" : "127.0.0.1", port);
		snprintf(msg, sizeof(msg), "hello number %d", i * 1000);
		eo_expect_echo(fd, msg);
		bytes += (long long)strlen(msg);
		close(fd);
	}
	ck_assert_int_eq(wait_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"client_eof\""), 7), 7);
	ck_assert_int_eq(scrape_value(mport, S("connections_accepted_total",
	    "echo", "")), 7);
	ck_assert_int_eq(scrape_value(mport, S("received_bytes_total", "echo",
	    "")), bytes);
	ck_assert_int_eq(scrape_value(mport, S("sent_bytes_total", "echo",
	    "")), bytes);
	ck_assert_int_eq(scrape_value(mport, S("connections", "echo", "")), 0);
	/* The other listener saw nothing. */
	ck_assert_int_eq(scrape_value(mport, S("connections_accepted_total",
	    "capped", "")), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A refused and an idle-closed connection each move their own counter
 * by one, and nothing else.
 */
START_TEST(test_metrics_refused_and_idle_each_count_once)
{
	int port = eo_port(), cport = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF, port, cport, mport);
	int in, out;

	in = tcp_open("127.0.0.1", cport);
	eo_expect_echo(in, "first");
	ck_assert_int_eq(wait_value(mport, S("connections", "capped", ""), 1),
	    1);
	out = tcp_open("127.0.0.1", cport);
	ck_assert_int_ne(wait_eof(out, eo_ms(5000)), 0);
	close(out);
	ck_assert_int_eq(wait_value(mport, S("connections_refused_total",
	    "capped", ",reason=\"listener_max_connections\""), 1), 1);
	/* in falls quiet: closed after idle_timeout (1 s). */
	ck_assert_int_eq(wait_eof(in, eo_ms(5000)), 1);
	close(in);
	ck_assert_int_eq(wait_value(mport, S("connections_closed_total",
	    "capped", ",reason=\"idle_timeout\""), 1), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_accepted_total",
	    "capped", "")), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_refused_total",
	    "capped", ",reason=\"max_connections\"")), 0);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "capped", ",reason=\"client_eof\"")), 0);
	ck_assert_int_eq(scrape_value(mport, S("connections_evicted_total",
	    "capped", "")), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* At max_connections a newcomer evicts one quiet connection: one. */
START_TEST(test_metrics_evicted_counts_once)
{
	int port = eo_port(), mport = eo_port(), a, b, c;
	struct eod *d = eod_start("workers = 1; max_connections = 2; "
	    "evict_after = 1;\nlisteners = (\n"
	    " { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "   bind = \"127.0.0.1\"; },\n"
	    " { name = \"m\"; protocol = \"metrics\"; port = %d;"
	    "   bind = \"127.0.0.1\"; }\n);\n", port, mport);

	a = tcp_open("127.0.0.1", port);
	eo_expect_echo(a, "a");
	b = tcp_open("127.0.0.1", port);
	eo_expect_echo(b, "b");
	/* Quiet for longer than evict_after: that is the condition. */
	usleep(1500000);
	c = tcp_open("127.0.0.1", port);
	eo_expect_echo(c, "c");
	ck_assert_int_eq(wait_value(mport, S("connections_evicted_total",
	    "echo", ""), 1), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"evicted\"")), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_accepted_total",
	    "echo", "")), 3);
	ck_assert_int_eq(scrape_value(mport, S("connections", "echo", "")), 2);
	close(a);
	close(b);
	close(c);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* GET /metrics only: the content type of format 0.0.4, 404, 405. */
START_TEST(test_metrics_http)
{
	int port = eo_port(), cport = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF, port, cport, mport);
	static char buf[MBUF];

	ck_assert_int_eq(http_req(mport, "GET", "/metrics", buf, sizeof(buf)),
	    200);
	ck_assert_ptr_nonnull(strstr(buf, "\r\nContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\n# TYPE echo_oracled_"
	    "connections_accepted_total counter\n"));
	ck_assert_int_eq(series_value(http_body(buf),
	    "echo_oracled_build_info{version=\"" EO_VERSION "\"}"), 1);
	/* The metrics listener counts like every listener: this scrape. */
	ck_assert_int_eq(series_value(http_body(buf), "echo_oracled_"
	    "connections_accepted_total{listener=\"metrics\",protocol="
	    "\"metrics\"}"), 1);
	ck_assert_int_eq(http_req(mport, "GET", "/", buf, sizeof(buf)), 404);
	ck_assert_int_eq(http_req(mport, "GET", "/metricsx", buf,
	    sizeof(buf)), 404);
	ck_assert_int_eq(http_req(mport, "POST", "/metrics", buf,
	    sizeof(buf)), 405);
	ck_assert_ptr_nonnull(strstr(buf, "\r\nAllow: GET\r\n"));
	ck_assert_int_eq(http_req(mport, "DELETE", "/metrics", buf,
	    sizeof(buf)), 405);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* allow and deny apply to scrapers as to every listener's clients: at
   accept, before any byte is read (issue 24 #6; it was a 403). */
START_TEST(test_metrics_allow_deny)
{
	int port = eo_port(), mport = eo_port();
	struct eod *d = eod_start("listeners = (\n"
	    " { name = \"e\"; protocol = \"echo\"; port = %d;"
	    " bind = \"127.0.0.1\"; },\n"
	    " { name = \"m\"; protocol = \"metrics\"; port = %d;"
	    " bind = \"0.0.0.0\"; allow = [\"127.0.0.0/8\"];"
	    " deny = [\"127.0.0.2\"]; }\n);\n", port, mport);
	static char buf[MBUF];

	ck_assert_int_eq(http_req_from("127.0.0.1", mport, "GET", "/metrics",
	    buf, sizeof(buf)), 200);
	ck_assert_int_eq(http_req_from("127.0.0.2", mport, "GET", "/metrics",
	    buf, sizeof(buf)), -1);
	ck_assert_int_eq(http_req_from("127.0.0.3", mport, "GET", "/metrics",
	    buf, sizeof(buf)), 200);
	ck_assert_int_eq(series_value(http_body(buf), "echo_oracled_"
	    "connections_refused_total{listener=\"m\",protocol=\"metrics\","
	    "reason=\"denied\"}"), 1);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

#define PROXY_CONF							\
	"listeners = (\n"						\
	" { name = \"echo\"; protocol = \"echo\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; proxy_protocol = true;"		\
	"   proxy_from = [\"127.0.0.1\"]; deny = [\"192.0.2.66\"];"	\
	"   max_connections_per_source = 1; },\n"			\
	" { name = \"metrics\"; protocol = \"metrics\"; port = %d;"	\
	"   bind = \"127.0.0.1\"; }\n);\n"

/* A connection to port that sends hdr: refused (EOF, no echo) or not. */
static int
proxied(int port, const char *hdr)
{
	int fd = tcp_open("127.0.0.1", port);

	ck_assert_int_eq(send_all(fd, hdr, strlen(hdr)), 0);
	return fd;
}

/*
 * Issue 24 #9: a client refused once its PROXY header named it (deny,
 * max_connections_per_source) was counted as accepted and as closed for
 * "error".  It is a refusal: that counter alone moves.
 */
START_TEST(test_metrics_refusal_after_proxy_header_counts_as_refusal)
{
	int port = eo_port(), mport = eo_port(), fa, fb, fc;
	struct eod *d = eod_start(PROXY_CONF, port, mport);

	fa = proxied(port, "PROXY TCP4 192.0.2.1 127.0.0.1 1000 7007\r\n");
	eo_expect_echo(fa, "served");
	fb = proxied(port, "PROXY TCP4 192.0.2.66 127.0.0.1 1000 7007\r\n");
	ck_assert_int_ne(wait_eof(fb, eo_ms(5000)), 0);
	fc = proxied(port, "PROXY TCP4 192.0.2.1 127.0.0.1 1001 7007\r\n");
	ck_assert_int_ne(wait_eof(fc, eo_ms(5000)), 0);
	close(fb);
	close(fc);
	close(fa);
	ck_assert_int_eq(wait_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"client_eof\""), 1), 1);
	ck_assert_int_eq(wait_value(mport, S("connections_refused_total",
	    "echo", ",reason=\"denied\""), 1), 1);
	ck_assert_int_eq(wait_value(mport, S("connections_refused_total",
	    "echo", ",reason=\"max_connections_per_source\""), 1), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_accepted_total",
	    "echo", "")), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"error\"")), 0);
	ck_assert_int_eq(scrape_value(mport, S("connections", "echo", "")), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * The same across a restart in place: a connection in its PROXY header
 * at SIGUSR2 whose header, finished in the new process, names a denied
 * client is a refusal there too, not an accepted connection closed for
 * "error".
 */
START_TEST(test_metrics_refusal_after_proxy_header_across_restart)
{
	int port = eo_port(), mport = eo_port(), fd;
	struct eod *d = eod_start(PROXY_CONF, port, mport);
	char buf[4096];

	fd = proxied(port, "PROXY TCP4 192.0.2");
	while (recv(d->notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 1 connection carried over"));
	ck_assert_int_eq(send_all(fd, ".66 127.0.0.1 1000 7007\r\n", 25), 0);
	ck_assert_int_ne(wait_eof(fd, eo_ms(5000)), 0);
	close(fd);
	ck_assert_int_eq(wait_value(mport, S("connections_refused_total",
	    "echo", ",reason=\"denied\""), 1), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_accepted_total",
	    "echo", "")), 0);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"error\"")), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 31 #2: every balancer health check (a v2 LOCAL header, then a
 * close, HAProxy's with a reset) was counted as client_reset or
 * client_eof, one a second per listener, drowning the real ones.  They
 * are counted as health_check.  And the check's log line named port 0,
 * the connection being gone when the worker looked at it: the accept's
 * own address is kept.
 */
START_TEST(test_metrics_health_checks_counted_as_such)
{
	static const unsigned char local[16] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
	    0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0, 0 };
	int port = eo_port(), mport = eo_port(), i, fd;
	struct eod *d = eod_start("log_level = \"debug\";\n" PROXY_CONF,
	    port, mport);
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	struct linger rst = { 1, 0 };
	char want[64];

	for (i = 0; i < 4; i++) {
		fd = tcp_open("127.0.0.1", port);
		ck_assert_int_eq(send_all(fd, local, sizeof(local)), 0);
		if (i % 2 == 1) {
			/* HAProxy's way: a reset at once. */
			ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me,
			    &len), 0);
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst,
			    sizeof(rst));
		}
		close(fd);
	}
	ck_assert_int_eq(wait_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"health_check\""), 4), 4);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"client_reset\"")), 0);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"client_eof\"")), 0);
	/* A client's own close is still the client's. */
	fd = proxied(port, "PROXY TCP4 192.0.2.1 127.0.0.1 1000 7007\r\n");
	eo_expect_echo(fd, "client");
	close(fd);
	ck_assert_int_eq(wait_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"client_eof\""), 1), 1);
	ck_assert_int_eq(scrape_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"health_check\"")), 4);
	snprintf(want, sizeof(want), "accepted from 127.0.0.1:%d (PROXY v2 "
	    "LOCAL", ntohs(me.sin_port));
	ck_assert_int_eq(eod_log_wait(d, want, eo_ms(3000)), 0);
	ck_assert(!eod_log_has(d, "127.0.0.1:0 "));
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 24 #6: allow/deny was applied only to a whole request, and
 * metrics connections counted against no limit, so 300 connections
 * from a denied address, each sending a byte now and then, took every
 * descriptor under a limit of 200: every echo client was refused "out
 * of file descriptors".  The denied are refused at accept, as on every
 * listener, and counted so.
 */
START_TEST(test_metrics_denied_slow_scrapers_starve_no_listener)
{
	struct eod_opts o = { .nofile = 200 };
	int port = eo_port(), mport = eo_port(), fds[300], i, fd;
	struct eod *d = eod_start_opts(&o, "max_connections = 100;\n"
	    "listeners = (\n"
	    " { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "   bind = \"127.0.0.1\"; },\n"
	    " { name = \"metrics\"; protocol = \"metrics\"; port = %d;"
	    "   bind = \"127.0.0.1\"; deny = [\"127.0.0.2\"]; }\n);\n",
	    port, mport);

	for (i = 0; i < 300; i++) {
		fds[i] = tcp_connect_from("127.0.0.2", "127.0.0.1", mport);
		if (fds[i] != -1)
			send(fds[i], "G", 1, MSG_NOSIGNAL);
	}
	for (i = 0; i < 300; i++)
		if (fds[i] != -1)
			send(fds[i], "E", 1, MSG_NOSIGNAL);
	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "still served");
	close(fd);
	ck_assert_int_eq(wait_value(mport, "echo_oracled_connections_refused_"
	    "total{listener=\"metrics\",protocol=\"metrics\",reason="
	    "\"denied\"}", 300), 300);
	ck_assert_int_eq(scrape_value(mport, S("connections_refused_total",
	    "echo", ",reason=\"out_of_fds\"")), 0);
	for (i = 0; i < 300; i++)
		if (fds[i] != -1)
			close(fds[i]);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * evhttp's timeout was per read: a byte every few seconds held a
 * connection for ever.  The whole request has 10 s.
 */
START_TEST(test_metrics_request_bounded_in_time)
{
	int port = eo_port(), cport = eo_port(), mport = eo_port(), i;
	struct eod *d = eod_start(CONF, port, cport, mport);
	int fd = tcp_open("127.0.0.1", mport);
	struct timespec t0, t1;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(send_all(fd, "GET /metrics HTTP/1.1\r\n", 23), 0);
	for (i = 0; i < 30; i++) {
		if (send(fd, "X", 1, MSG_NOSIGNAL) != 1 ||
		    wait_eof(fd, eo_ms(1000)) != 0)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_msg(i < 30, "still open after 30 s of one byte a second");
	ck_assert_int_ge(ms, 9000);
	ck_assert_int_le(ms, eo_ms(13000));
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Metrics connections count in the limits like every listener's: its
 * own max_connections refuses the third, and the gauge shows two.
 */
START_TEST(test_metrics_connections_count_in_limits)
{
	int port = eo_port(), mport = eo_port(), m2 = eo_port(), a, b, c;
	struct eod *d = eod_start("listeners = (\n"
	    " { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "   bind = \"127.0.0.1\"; },\n"
	    " { name = \"metrics\"; protocol = \"metrics\"; port = %d;"
	    "   bind = \"127.0.0.1\"; max_connections = 2; },\n"
	    " { name = \"m2\"; protocol = \"metrics\"; port = %d;"
	    "   bind = \"127.0.0.1\"; }\n);\n", port, mport, m2);

	a = tcp_open("127.0.0.1", mport);
	b = tcp_open("127.0.0.1", mport);
	ck_assert_int_eq(wait_value(m2, "echo_oracled_connections{listener="
	    "\"metrics\",protocol=\"metrics\"}", 2), 2);
	c = tcp_open("127.0.0.1", mport);
	ck_assert_int_ne(wait_eof(c, eo_ms(5000)), 0);
	ck_assert_int_eq(wait_value(m2, "echo_oracled_connections_refused_"
	    "total{listener=\"metrics\",protocol=\"metrics\",reason="
	    "\"listener_max_connections\"}", 1), 1);
	close(a);
	close(b);
	close(c);
	ck_assert_int_eq(wait_value(m2, "echo_oracled_connections{listener="
	    "\"metrics\",protocol=\"metrics\"}", 0), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

#define SWITCH_CONF							\
	"listeners = (\n"						\
	" { name = \"a\"; protocol = \"%s\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; },\n"				\
	" { name = \"m\"; protocol = \"metrics\"; port = %d;"	\
	"   bind = \"127.0.0.1\"; }\n);\n"

/*
 * A reload moves a listener between echo and metrics on the same
 * address: the socket is handed to evhttp and back, and counted reloads.
 */
START_TEST(test_metrics_reload_switches_protocol)
{
	int port = eo_port(), mport = eo_port();
	struct eod *d = eod_start(SWITCH_CONF, "echo", port, mport);
	static char buf[MBUF];
	int fd;

	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "echo first");
	close(fd);
	eod_write_conf(d, SWITCH_CONF, "metrics", port, mport);
	ck_assert_int_eq(eod_reload(d), 0);
	ck_assert_int_eq(http_req(port, "GET", "/metrics", buf, sizeof(buf)),
	    200);
	ck_assert_int_eq(series_value(http_body(buf),
	    "echo_oracled_reloads_total{result=\"success\"}"), 1);
	eod_write_conf(d, SWITCH_CONF, "echo", port, mport);
	ck_assert_int_eq(eod_reload(d), 0);
	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "echo again");
	close(fd);
	ck_assert_int_eq(scrape_value(mport,
	    "echo_oracled_reloads_total{result=\"success\"}"), 2);
	ck_assert_int_eq(scrape_value(mport,
	    "echo_oracled_reloads_total{result=\"failure\"}"), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Socket activation: the metrics listener serves systemd's socket. */
START_TEST(test_metrics_socket_activation)
{
	int pm = eo_port(), other = eo_port();
	int fds[1] = { eo_listen("127.0.0.1", pm) };
	struct eod_opts o = { .listen_fds = fds, .nlisten = 1,
	    .listen_names = "m" };
	struct eod *d = eod_start_opts(&o, "listeners = (\n"
	    "{ name = \"m\"; protocol = \"metrics\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", other);
	static char buf[MBUF];

	close(fds[0]);
	ck_assert_int_eq(http_req(pm, "GET", "/metrics", buf, sizeof(buf)),
	    200);
	ck_assert_int_eq(series_value(http_body(buf),
	    "echo_oracled_reloads_total{result=\"failure\"}"), 0);
	ck_assert_int_eq(tcp_connect("127.0.0.1", other), -1);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* ---- promtool and Prometheus ---------------------------------------- */

/* Runs a shell command; its exit code, its output in out. */
static int
sh_run(const char *cmd, char *out, size_t outlen)
{
	size_t len = 0;
	FILE *p;
	int st;

	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	while (len + 1 < outlen && fgets(out + len, (int)(outlen - len), p))
		len += strlen(out + len);
	out[len] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* EO_PROMETHEUS_BIN (a folder), or the usual ones; "" if absent. */
static const char *
tool(const char *name)
{
	static char path[2][512];
	static int slot;
	const char *dir = getenv("EO_PROMETHEUS_BIN");
	const char *dirs[] = { dir, "/usr/bin", "/usr/local/bin" };
	char *p = path[slot++ % 2];
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (dirs[i] == NULL)
			continue;
		snprintf(p, sizeof(path[0]), "%s/%s", dirs[i], name);
		if (access(p, X_OK) == 0)
			return p;
	}
	return "";
}

static int
skip_without(const char *name)
{
	if (tool(name)[0] != '\0')
		return 0;
	fprintf(stderr, "%s not found (install Debian's prometheus package, "
	    "or set EO_PROMETHEUS_BIN to a folder holding it)\n", name);
	if (getenv("EO_NO_SKIP") != NULL)
		return 1;
	return 77;
}

/* promtool check metrics passes on a scrape with every series moving. */
START_TEST(test_promtool_check_metrics)
{
	int port = eo_port(), cport = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF, port, cport, mport);
	static char buf[MBUF], cmd[1024], out[4096];
	char path[128];
	FILE *f;
	int fd;

	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "some traffic");
	close(fd);
	ck_assert_int_eq(http_req(mport, "GET", "/metrics", buf, sizeof(buf)),
	    200);
	snprintf(path, sizeof(path), "%s/scrape.txt", d->dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(http_body(buf), f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1",
	    tool("promtool"), path);
	ck_assert_msg(sh_run(cmd, out, sizeof(out)) == 0, "promtool: %s", out);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The example alerting rules shipped in conf/ are valid. */
START_TEST(test_promtool_check_rules)
{
	char cmd[1024], out[4096];

	snprintf(cmd, sizeof(cmd), "%s check rules %s/conf/echo-oracled-"
	    "alerts.yml 2>&1", tool("promtool"), EO_SOURCE_DIR);
	ck_assert_msg(sh_run(cmd, out, sizeof(out)) == 0, "promtool: %s", out);
	ck_assert_ptr_nonnull(strstr(out, "SUCCESS"));
}
END_TEST

static pid_t
prometheus_start(const char *dir, int pport, int mport)
{
	char conf[256], data[256], listen[64], cfgarg[300], dataarg[300];
	FILE *f;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/prometheus.yml", dir);
	snprintf(data, sizeof(data), "%s/tsdb", dir);
	ck_assert_ptr_nonnull(f = fopen(conf, "w"));
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
	    "scrape_configs:\n  - job_name: echo-oracled\n"
	    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n", mport);
	fclose(f);
	snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d",
	    pport);
	snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", conf);
	snprintf(dataarg, sizeof(dataarg), "--storage.tsdb.path=%s", data);
	if ((pid = fork()) == 0) {
		char log[300];
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(log, sizeof(log), "%s/prometheus.log", dir);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(tool("prometheus"), "prometheus", cfgarg, dataarg,
		    listen, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	return pid;
}

/* A Prometheus instant query's value as a number; -1: none yet. */
static long long
prom_query(int pport, const char *query)
{
	static char buf[MBUF];
	char target[1024];
	const char *p;

	snprintf(target, sizeof(target), "/api/v1/query?query=%s", query);
	if (http_req(pport, "GET", target, buf, sizeof(buf)) != 200)
		return -1;
	/* "value":[1795630965.123,"3"] */
	if ((p = strstr(buf, "\"value\":[")) == NULL ||
	    (p = strchr(p, ',')) == NULL || p[1] != '"')
		return -1;
	return atoll(p + 2);
}

static long long
prom_wait(int pport, const char *query, long long want, int ms)
{
	long long v = -1;
	int i;

	for (i = 0; i < eo_ms(ms) / 100; i++) {
		if ((v = prom_query(pport, query)) == want)
			return v;
		usleep(100000);
	}
	return v;
}

/*
 * A real Prometheus scrapes the daemon: the target is up, and a counter
 * it stored equals what the test did.
 */
START_TEST(test_prometheus_scrapes_daemon)
{
	int port = eo_port(), cport = eo_port(), mport = eo_port();
	int pport = eo_port(), i, fd, status;
	struct eod *d = eod_start(CONF, port, cport, mport);
	pid_t prom;

	for (i = 0; i < 3; i++) {
		fd = tcp_open("127.0.0.1", port);
		eo_expect_echo(fd, "scrape me");
		close(fd);
	}
	ck_assert_int_eq(wait_value(mport, S("connections_closed_total",
	    "echo", ",reason=\"client_eof\""), 3), 3);
	prom = prometheus_start(d->dir, pport, mport);
	ck_assert_int_eq(prom_wait(pport, "up%7Bjob%3D%22echo-oracled%22%7D",
	    1, 60000), 1);
	ck_assert_int_eq(prom_wait(pport, "echo_oracled_connections_accepted_"
	    "total%7Blistener%3D%22echo%22%7D", 3, 20000), 3);
	ck_assert_int_eq(prom_query(pport, "sum(echo_oracled_received_bytes_"
	    "total)"), 3 * 9);
	kill(prom, SIGTERM);
	ck_assert_int_eq(waitpid(prom, &status, 0), prom);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The http listener's series, after curl and Python's websockets. */
static void
http_traffic(int hport)
{
	char cmd[1024], out[4096];

	snprintf(cmd, sizeof(cmd), "curl -sS -o /dev/null -o /dev/null "
	    "-o /dev/null http://127.0.0.1:%d/a http://127.0.0.1:%d/b "
	    "http://127.0.0.1:%d/c && curl -sS -o /dev/null -d x "
	    "'http://127.0.0.1:%d/?echo_code=404' && timeout 30 "
	    "/usr/bin/python3 %s/tests/integration/ws_client.py %d text 2>&1",
	    hport, hport, hport, hport, EO_SOURCE_DIR, hport);
	ck_assert_msg(sh_run(cmd, out, sizeof(out)) == 0, "%s", out);
}

#define HTTP_CONF							\
	"listeners = (\n"						\
	" { name = \"web\"; protocol = \"http\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; },\n"					\
	" { name = \"m\"; protocol = \"metrics\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; }\n);\n"
#define H(extra)							\
	"echo_oracled_http_requests_total{listener=\"web\",protocol="	\
	"\"http\"," extra "}"
#define W(name, extra)							\
	"echo_oracled_websocket_" name "{listener=\"web\",protocol="	\
	"\"http\"" extra "}"

/* Requests by method and status class, WebSocket messages and closes. */
START_TEST(test_metrics_http_listener_counters)
{
	int hport = eo_port(), mport = eo_port();
	struct eod *d = eod_start(HTTP_CONF, hport, mport);

	http_traffic(hport);
	ck_assert_int_eq(wait_value(mport, H("method=\"GET\",code=\"2xx\""),
	    3), 3);
	ck_assert_int_eq(wait_value(mport, H("method=\"POST\",code=\"4xx\""),
	    1), 1);
	/* The upgrade's 101. */
	ck_assert_int_eq(wait_value(mport, H("method=\"GET\",code=\"1xx\""),
	    1), 1);
	ck_assert_int_eq(wait_value(mport, W("messages_total", ""), 1), 1);
	ck_assert_int_eq(wait_value(mport, W("closes_total",
	    ",code=\"1000\""), 1), 1);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A real Prometheus stores the http listener's counters. */
START_TEST(test_prometheus_scrapes_http_counters)
{
	int hport = eo_port(), mport = eo_port(), pport = eo_port(), status;
	struct eod *d = eod_start(HTTP_CONF, hport, mport);
	static char buf[MBUF], cmd[1024], out[4096];
	char path[128];
	pid_t prom;
	FILE *f;

	http_traffic(hport);
	ck_assert_int_eq(wait_value(mport, H("method=\"GET\",code=\"2xx\""),
	    3), 3);
	ck_assert_int_eq(http_req(mport, "GET", "/metrics", buf, sizeof(buf)),
	    200);
	snprintf(path, sizeof(path), "%s/scrape.txt", d->dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(http_body(buf), f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1",
	    tool("promtool"), path);
	ck_assert_msg(sh_run(cmd, out, sizeof(out)) == 0, "promtool: %s", out);
	prom = prometheus_start(d->dir, pport, mport);
	ck_assert_int_eq(prom_wait(pport, "echo_oracled_http_requests_total"
	    "%7Bmethod%3D%22GET%22%2Ccode%3D%222xx%22%7D", 3, 60000), 3);
	ck_assert_int_eq(prom_wait(pport, "echo_oracled_websocket_messages_"
	    "total", 1, 20000), 1);
	kill(prom, SIGTERM);
	ck_assert_int_eq(waitpid(prom, &status, 0), prom);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	int r;

	tcase_set_timeout(tc, eo_ms(120));
	if (strcmp(mode, "promtool") == 0) {
		if ((r = skip_without("promtool")) != 0)
			return r;
		tcase_add_test(tc, test_promtool_check_metrics);
		tcase_add_test(tc, test_promtool_check_rules);
	} else if (strcmp(mode, "prometheus") == 0) {
		if ((r = skip_without("prometheus")) != 0)
			return r;
		tcase_add_test(tc, test_prometheus_scrapes_daemon);
		tcase_add_test(tc, test_prometheus_scrapes_http_counters);
	} else {
		tcase_add_test(tc, test_metrics_counts_connections_and_bytes);
		tcase_add_test(tc,
		    test_metrics_refused_and_idle_each_count_once);
		tcase_add_test(tc, test_metrics_evicted_counts_once);
		tcase_add_test(tc, test_metrics_http);
		tcase_add_test(tc, test_metrics_http_listener_counters);
		tcase_add_test(tc, test_metrics_allow_deny);
		tcase_add_test(tc,
		    test_metrics_refusal_after_proxy_header_counts_as_refusal);
		tcase_add_test(tc,
		    test_metrics_refusal_after_proxy_header_across_restart);
		tcase_add_test(tc, test_metrics_health_checks_counted_as_such);
		tcase_add_test(tc,
		    test_metrics_denied_slow_scrapers_starve_no_listener);
		tcase_add_test(tc, test_metrics_request_bounded_in_time);
		tcase_add_test(tc, test_metrics_connections_count_in_limits);
		tcase_add_test(tc, test_metrics_reload_switches_protocol);
		tcase_add_test(tc, test_metrics_socket_activation);
	}
	suite_add_tcase(s, tc);
	return check_run(s);
}
