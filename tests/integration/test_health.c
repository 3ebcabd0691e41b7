/*
 * Health and readiness on the metrics listener, and the stop delay
 * (issue 27): /healthz follows the watchdog's rule (a worker whose loop
 * stops turning makes it 503), /readyz turns 503 as a stop begins, and
 * stop_delay keeps accepting for its seconds before the drain.
 *
 * A worker is made stuck by stopping its thread alone with ptrace
 * (PTRACE_INTERRUPT stops one thread; SIGSTOP would stop them all, the
 * main thread that answers /healthz included).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

/* One GET on the connected fd; the status code, -1 if none came. */
static int
http_get_on(int fd, const char *target, char *buf, size_t cap)
{
	char req[256];
	size_t n;
	int eof = 0, code;

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	    "\r\n", target);
	if (send_all(fd, req, strlen(req)) == -1)
		return -1;
	n = recv_all(fd, buf, cap - 1, eo_ms(10000), &eof);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		return -1;
	return code;
}

static int
http_get(int port, const char *target, char *buf, size_t cap)
{
	int fd = tcp_connect("127.0.0.1", port), code;

	if (fd == -1)
		return -1;
	code = http_get_on(fd, target, buf, cap);
	close(fd);
	return code;
}

/* Polls target until it answers want; the last code seen. */
static int
http_wait(int port, const char *target, int want, int ms)
{
	char buf[1024];
	int code = -1, i;

	for (i = 0; i < ms / 100; i++) {
		if ((code = http_get(port, target, buf, sizeof(buf))) == want)
			break;
		usleep(100000);
	}
	return code;
}

/* The daemon's threads but its main one: the workers. */
static size_t
worker_tids(pid_t pid, pid_t *tids, size_t max)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	ck_assert_ptr_nonnull(dir = opendir(path));
	while ((e = readdir(dir)) != NULL && n < max) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid > 0 && tid != pid)
			tids[n++] = tid;
	}
	closedir(dir);
	return n;
}

#define CONF_HEALTH							\
	"workers = 1;\n"						\
	"listeners = (\n"						\
	" { name = \"echo\"; protocol = \"echo\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; },\n"					\
	" { name = \"metrics\"; protocol = \"metrics\"; port = %d;"	\
	"   bind = \"127.0.0.1\"; }\n);\n"

START_TEST(test_healthz_503_while_a_worker_is_stuck)
{
	int port = eo_port(), mport = eo_port(), st;
	struct eod *d = eod_start(CONF_HEALTH, port, mport);
	char buf[1024];
	pid_t tids[8];
	size_t n, i;

	ck_assert_int_eq(http_get(mport, "/healthz", buf, sizeof(buf)), 200);
	ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nok\n"));
	n = worker_tids(d->pid, tids, 8);
	ck_assert_uint_ge(n, 1);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(ptrace(PTRACE_SEIZE, tids[i], 0, 0), 0);
		ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, tids[i], 0, 0), 0);
		ck_assert_int_eq(waitpid(tids[i], &st, __WALL), tids[i]);
	}
	/* The rule: no loop turn for more than 3 s. */
	ck_assert_int_eq(http_wait(mport, "/healthz", 503, eo_ms(10000)), 503);
	ck_assert_int_eq(http_get(mport, "/healthz", buf, sizeof(buf)), 503);
	ck_assert_ptr_nonnull(strstr(buf, "worker 0 is stuck"));
	/* Readiness is another question: still serving. */
	ck_assert_int_eq(http_get(mport, "/readyz", buf, sizeof(buf)), 200);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(ptrace(PTRACE_DETACH, tids[i], 0, 0), 0);
	ck_assert_int_eq(http_wait(mport, "/healthz", 200, eo_ms(5000)), 200);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A client that sends without reading until the daemon stops reading:
   its echo is pending, so the drain waits for it. */
static void
fill_until_blocked(int fd)
{
	static char buf[1 << 16];
	int fl = fcntl(fd, F_GETFL), stuck = 0;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	memset(buf, 'x', sizeof(buf));
	while (stuck < 10) {
		if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
			stuck = 0;
		else {
			ck_assert_int_eq(errno, EAGAIN);
			stuck++;
			usleep(20000);
		}
	}
}

/* Without stop_delay: 503 to a probe already connected when the drain
   began (the listeners close then, so a new probe is refused). */
START_TEST(test_readyz_503_while_draining)
{
	int port = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF_HEALTH, port, mport);
	int fd = tcp_open("127.0.0.1", port), probe;
	char buf[1024];

	ck_assert_int_eq(http_get(mport, "/readyz", buf, sizeof(buf)), 200);
	ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nready\n"));
	eo_expect_echo(fd, "before");
	fill_until_blocked(fd);
	probe = tcp_open("127.0.0.1", mport);
	eod_signal(d, SIGTERM);
	ck_assert_int_eq(eod_log_wait(d, "stopping (SIGTERM): ",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(http_get_on(probe, "/readyz", buf, sizeof(buf)), 503);
	ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nstopping\n"));
	close(probe);
	close(fd);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	eod_free(d);
}
END_TEST

#define CONF_DELAY							\
	"stop_delay = 2;\n"						\
	"listeners = (\n"						\
	" { name = \"echo\"; protocol = \"echo\"; port = %d;"		\
	"   bind = \"127.0.0.1\"; },\n"					\
	" { name = \"metrics\"; protocol = \"metrics\"; port = %d;"	\
	"   bind = \"127.0.0.1\"; }\n);\n"

/* During stop_delay: /readyz 503, new clients still accepted and
   served; then the drain, every byte delivered, exit 0. */
START_TEST(test_stop_delay_accepts_with_readyz_503)
{
	int port = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF_DELAY, port, mport);
	int fd = tcp_open("127.0.0.1", port), late;
	char buf[1024];

	eo_expect_echo(fd, "before");
	eod_signal(d, SIGTERM);
	ck_assert_int_eq(eod_log_wait(d, "still accepting for 2 s "
	    "(stop_delay)", eo_ms(5000)), 0);
	ck_assert_int_eq(http_get(mport, "/readyz", buf, sizeof(buf)), 503);
	ck_assert_int_eq(http_get(mport, "/healthz", buf, sizeof(buf)), 200);
	late = tcp_open("127.0.0.1", port);
	eo_expect_echo(late, "accepted during the delay");
	ck_assert(!eod_log_has(d, "stopping (SIGTERM): "));
	/* Then the drain: no new client; the open ones, owed nothing,
	   are closed. */
	ck_assert_int_eq(eod_log_wait(d, "stopping (SIGTERM): 2 connections",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	ck_assert_int_eq(wait_eof(late, eo_ms(5000)), 1);
	ck_assert_int_eq(tcp_connect("127.0.0.1", port), -1);
	close(fd);
	close(late);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	eod_free(d);
}
END_TEST

/* A second signal ends the delay: an operator's Ctrl-C twice. */
START_TEST(test_stop_delay_second_signal_drains_now)
{
	int port = eo_port(), mport = eo_port();
	struct eod *d = eod_start("stop_delay = 300;\n"
	    "listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    " bind = \"127.0.0.1\"; },\n { name = \"metrics\"; protocol = "
	    "\"metrics\"; port = %d; bind = \"127.0.0.1\"; } );\n", port,
	    mport);

	eod_signal(d, SIGTERM);
	ck_assert_int_eq(eod_log_wait(d, "(stop_delay)", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop_sig(d, SIGINT, eo_ms(10000)), 0);
	ck_assert(eod_log_has(d, "stopping (SIGINT): 0 connections"));
	eod_free(d);
}
END_TEST

/* SIGUSR2 during stop_delay: the stop has begun, no restart may undo
   it (the new process would not know it is stopping). */
START_TEST(test_stop_delay_ignores_a_restart)
{
	int port = eo_port(), mport = eo_port();
	struct eod *d = eod_start(CONF_DELAY, port, mport);

	eod_signal(d, SIGTERM);
	ck_assert_int_eq(eod_log_wait(d, "(stop_delay)", eo_ms(5000)), 0);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	ck_assert(!eod_log_has(d, "restart in place asked"));
	eod_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("health");

	tcase_set_timeout(tc, eo_ms(60));
	tcase_add_test(tc, test_healthz_503_while_a_worker_is_stuck);
	tcase_add_test(tc, test_readyz_503_while_draining);
	tcase_add_test(tc, test_stop_delay_accepts_with_readyz_503);
	tcase_add_test(tc, test_stop_delay_second_signal_drains_now);
	tcase_add_test(tc, test_stop_delay_ignores_a_restart);
	suite_add_tcase(s, tc);
	return check_run(s);
}
