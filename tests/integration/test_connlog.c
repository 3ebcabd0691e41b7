/*
 * The per-connection debug lines, exactly as an operator reads them:
 * the accept line and the close line share the connection's id and name
 * the listener and the client's address and port; the close line says
 * how much was read and sent, for how long, and the rule that ended the
 * connection, in the words of the config (issue 16).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

static int port;
static struct eod *d;

static void
setup(void)
{
	port = eo_port();
	d = eod_start_opts(&(struct eod_opts){ .args = "-d" },
	    "listeners = (\n"
	    " { name = \"sphinx\"; protocol = \"oracle\"; port = %d;"
	    "   bind = \"127.0.0.1\"; idle_timeout = 2;"
	    "   oracle = { max_questions = 2; max_question_length = 16;"
	    "              question_timeout = 1; }; }\n"
	    ");\n", port);
}

static void
teardown(void)
{
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

/* The client's own port: how the test finds its lines in the log. */
static int
local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	return ntohs(sin.sin_port);
}

/* The log line holding "conn " and needle, from "listener" on, without
   its end. */
static void
log_line(const char *needle, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen(d->log, "r");
	char *p;

	ck_assert_ptr_nonnull(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL &&
		    strstr(line, ": conn ") != NULL &&
		    (p = strstr(line, "listener ")) != NULL) {
			p[strcspn(p, "\n")] = '\0';
			snprintf(out, len, "%s", p);
			break;
		}
	fclose(f);
	ck_assert_msg(out[0] != '\0', "no line with \"%s\"", needle);
}

/*
 * Checks both lines of the connection from local port lport: the accept
 * line, and the close line with what it read and sent, its reason, and
 * a duration within [min_ms, max_ms].
 */
static void
expect_lines(int lport, size_t nread, size_t nsent, const char *why,
    unsigned min_ms, unsigned max_ms)
{
	char needle[64], acc[512], cls[512], want[512], id[32];
	unsigned s, ms;
	int n = 0;

	snprintf(needle, sizeof(needle), "peer 127.0.0.1:%d)", lport);
	ck_assert_int_eq(eod_log_wait(d, needle, eo_ms(5000)), 0);
	snprintf(needle, sizeof(needle), "accepted from 127.0.0.1:%d", lport);
	log_line(needle, acc, sizeof(acc));
	ck_assert_msg(sscanf(acc, "listener sphinx: conn %31s accepted%n",
	    id, &n) == 1 && n > 0, "accept line: \"%s\"", acc);
	snprintf(want, sizeof(want), "listener sphinx: conn %s accepted from "
	    "127.0.0.1:%d", id, lport);
	ck_assert_str_eq(acc, want);

	snprintf(needle, sizeof(needle), "peer 127.0.0.1:%d)", lport);
	log_line(needle, cls, sizeof(cls));
	snprintf(want, sizeof(want), "listener sphinx: conn %s closed: %s "
	    "(read %zu, sent %zu bytes in ", id, why, nread, nsent);
	ck_assert_msg(strncmp(cls, want, strlen(want)) == 0,
	    "close line \"%s\", wanted \"%s...\"", cls, want);
	ck_assert_msg(sscanf(cls + strlen(want), "%u.%3u s, peer ", &s, &ms)
	    == 2, "no duration in \"%s\"", cls);
	ms += s * 1000;
	ck_assert_msg(ms >= min_ms && ms <= max_ms, "lasted %u ms", ms);
	snprintf(want, sizeof(want), " s, peer 127.0.0.1:%d)", lport);
	ck_assert_str_eq(strstr(cls, " s, peer "), want);
}

/* Reads until EOF; the bytes read. */
static size_t
drain(int fd)
{
	char buf[4096];
	int eof = 0;
	size_t n = recv_all(fd, buf, sizeof(buf), eo_ms(8000), &eof);

	ck_assert_int_eq(eof, 1);
	return n;
}

START_TEST(test_close_reason_max_questions)
{
	int fd = tcp_open("127.0.0.1", port), lport = local_port(fd);
	size_t got;

	ck_assert_int_eq(send_all(fd, "A? B? C?", 8), 0);
	got = drain(fd);
	close(fd);
	expect_lines(lport, 8, got, "max_questions (2)", 0, 3000);
}
END_TEST

START_TEST(test_close_reason_max_question_length)
{
	static const char err[] = "error: question longer than 16 bytes\r\n";
	int fd = tcp_open("127.0.0.1", port), lport = local_port(fd);

	ck_assert_int_eq(send_all(fd, "Twenty bytes, no qm", 19), 0);
	ck_assert_uint_eq(drain(fd), sizeof(err) - 1);
	close(fd);
	expect_lines(lport, 19, sizeof(err) - 1, "max_question_length (16)",
	    0, 3000);
}
END_TEST

START_TEST(test_close_reason_question_timeout)
{
	int fd = tcp_open("127.0.0.1", port), lport = local_port(fd);

	ck_assert_int_eq(send_all(fd, "Will it", 7), 0);
	ck_assert_uint_eq(drain(fd), 0);
	close(fd);
	/* The sweep runs once a second: within a second after it is due. */
	expect_lines(lport, 7, 0, "question_timeout (1 s)", 1000,
	    (unsigned)eo_ms(3500));
}
END_TEST

START_TEST(test_close_reason_idle_timeout)
{
	int fd = tcp_open("127.0.0.1", port), lport = local_port(fd);

	ck_assert_uint_eq(drain(fd), 0);
	close(fd);
	expect_lines(lport, 0, 0, "idle_timeout (2 s)", 2000,
	    (unsigned)eo_ms(4500));
}
END_TEST

START_TEST(test_close_reason_client_eof)
{
	int fd = tcp_open("127.0.0.1", port), lport = local_port(fd);
	size_t got;

	ck_assert_int_eq(send_all(fd, "Q?", 2), 0);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	got = drain(fd);
	ck_assert_uint_gt(got, 2);
	close(fd);
	expect_lines(lport, 2, got, "client EOF", 0, 3000);
}
END_TEST

/* A reset is the client's doing, not an error of the daemon's. */
START_TEST(test_close_reason_client_reset)
{
	int fd = tcp_open("127.0.0.1", port), lport = local_port(fd);
	struct linger lg = { 1, 0 };
	char needle[64];

	/* Accepted first, so that the accept line has the port. */
	snprintf(needle, sizeof(needle), "accepted from 127.0.0.1:%d", lport);
	ck_assert_int_eq(eod_log_wait(d, needle, eo_ms(5000)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	close(fd);		/* with SO_LINGER 0: a RST */
	expect_lines(lport, 0, 0, "client reset", 0, 3000);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("connlog");
	TCase *tc = tcase_create("connlog");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, eo_ms(60));
	tcase_add_test(tc, test_close_reason_max_questions);
	tcase_add_test(tc, test_close_reason_max_question_length);
	tcase_add_test(tc, test_close_reason_question_timeout);
	tcase_add_test(tc, test_close_reason_idle_timeout);
	tcase_add_test(tc, test_close_reason_client_eof);
	tcase_add_test(tc, test_close_reason_client_reset);
	suite_add_tcase(s, tc);
	return check_run(s);
}
