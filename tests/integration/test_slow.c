/*
 * Slow clients over real sockets.  A client that reads its replies
 * slowly but steadily is making progress and must be served to the end,
 * however long that takes; a client that reads nothing at all is closed
 * once write_timeout has passed without it taking a byte.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

#define SLOW_TOTAL	(6 * 1024 * 1024)	/* bytes echoed */
#define SLOW_READ	4096			/* read per slow step */
#define SLOW_STEP_MS	100
#define SLOW_SERVED_MS	8000			/* 4 x write_timeout */

static int port;
static struct eod *d;

static void
setup(void)
{
	port = eo_port();
	d = eod_start_opts(&(struct eod_opts){ .args = "-d" },
	    "idle_timeout = 2;\n"
	    "write_timeout = 2;\n"
	    "listeners = (\n"
	    " { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "   bind = \"127.0.0.1\"; }\n"
	    ");\n", port);
}

static void
teardown(void)
{
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The byte at offset i of the payload: no short period, so a chunk
   sent twice or out of order shows. */
static unsigned char
pat(size_t i)
{
	return (unsigned char)(i + (i >> 12) * 7 + (i >> 20) * 13);
}

/* A non-blocking client with a small receive buffer, so that what the
   daemon sends waits in the daemon's kernel, not in ours. */
static int
slow_open(void)
{
	struct sockaddr_in sin;
	int fd, rcv = 4096;

	ck_assert_int_ne(fd = socket(AF_INET, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv,
	    sizeof(rcv)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	ck_assert_int_ne(fcntl(fd, F_SETFL, O_NONBLOCK), -1);
	return fd;
}

/* Sends what the socket takes now of the payload from *sent. */
static void
push(int fd, const unsigned char *buf, size_t *sent)
{
	while (*sent < SLOW_TOTAL) {
		ssize_t n = send(fd, buf + *sent, SLOW_TOTAL - *sent,
		    MSG_NOSIGNAL);

		if (n == -1) {
			ck_assert_msg(errno == EAGAIN, "send: %s",
			    strerror(errno));
			return;
		}
		*sent += (size_t)n;
	}
}

/*
 * Reads at most max bytes, checking each against the payload; returns
 * the count.  The daemon closing (EOF or reset) fails the test, saying
 * when.
 */
static size_t
pull(int fd, size_t *got, size_t max, long t0)
{
	unsigned char buf[SLOW_READ];
	size_t i;
	ssize_t n;

	n = recv(fd, buf, max < sizeof(buf) ? max : sizeof(buf), 0);
	if (n == -1 && errno == EAGAIN)
		return 0;
	ck_assert_msg(n > 0, "closed by the daemon after %ld ms, %zu bytes "
	    "read: %s", now_ms() - t0, *got, n == 0 ? "EOF" :
	    strerror(errno));
	for (i = 0; i < (size_t)n; i++)
		ck_assert_msg(buf[i] == pat(*got + i), "byte %zu differs",
		    *got + i);
	*got += (size_t)n;
	return (size_t)n;
}

/*
 * Waits until the daemon closes (FIN or RST) without reading a byte, as
 * a client that reads nothing would: 1 if it did within ms, else 0.
 */
static int
wait_gone(int fd, int ms)
{
	long end = now_ms() + ms;
	struct pollfd p = { fd, POLLRDHUP, 0 };

	while (now_ms() < end) {
		if (poll(&p, 1, (int)(end - now_ms())) == 1 &&
		    (p.revents & (POLLRDHUP | POLLERR | POLLHUP)))
			return 1;
	}
	return 0;
}

static unsigned char *
payload(void)
{
	unsigned char *buf = malloc(SLOW_TOTAL);
	size_t i;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < SLOW_TOTAL; i++)
		buf[i] = pat(i);
	return buf;
}

/*
 * Issue 17 #6, issue 10 #4: a client reading 4 KiB every 100 ms takes
 * 40 KiB/s, far less than the kernel's send buffer holds, so the
 * socket is not reported writable for longer than write_timeout and
 * the queue does not fall to the low watermark within idle_timeout.
 * It is reading: it must still be served after 8 s, and then get every
 * byte back in order.
 */
START_TEST(test_slow_reader_not_idle)
{
	unsigned char *buf = payload();
	size_t sent = 0, got = 0;
	long t0 = now_ms(), end;
	int fd = slow_open();

	while (now_ms() - t0 < SLOW_SERVED_MS) {
		push(fd, buf, &sent);
		pull(fd, &got, SLOW_READ, t0);
		poll(NULL, 0, SLOW_STEP_MS);	/* the client's pace */
	}
	ck_assert_msg(got > 64 * 1024, "only %zu bytes came back", got);
	ck_assert_msg(got < SLOW_TOTAL / 2, "%zu bytes read in the slow "
	    "phase: the test proves nothing", got);
	/* Now it reads at full speed: every byte, in order. */
	end = now_ms() + eo_ms(60000);
	while (got < SLOW_TOTAL && now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (sent < SLOW_TOTAL)
			p.events |= POLLOUT;
		poll(&p, 1, 1000);
		push(fd, buf, &sent);
		while (pull(fd, &got, SLOW_READ, t0) > 0)
			;
	}
	ck_assert_uint_eq(got, SLOW_TOTAL);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	ck_assert_int_ne(fcntl(fd, F_SETFL, 0), -1);
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
	free(buf);
}
END_TEST

/*
 * The other side of the same rule: a client that sends a lot and reads
 * nothing is closed write_timeout after it stopped taking bytes, not
 * before and not much later.
 */
START_TEST(test_non_reader_closed_by_write_timeout)
{
	unsigned char *buf = payload();
	size_t sent = 0;
	long t0 = now_ms(), stalled, waited;
	int fd = slow_open(), r;

	/* Fill every buffer, the payload over and over, until the daemon
	   takes nothing for 300 ms. */
	for (;;) {
		struct pollfd p = { fd, POLLOUT, 0 };

		ck_assert_msg(now_ms() - t0 < eo_ms(20000), "still sending");
		if (sent == SLOW_TOTAL)
			sent = 0;
		push(fd, buf, &sent);
		if (poll(&p, 1, 300) == 0)
			break;
	}
	stalled = now_ms() - 300;
	r = wait_gone(fd, eo_ms(15000));
	waited = now_ms() - stalled;
	if (r == 0)
		eod_log_dump(d);	/* what the daemon saw of it */
	ck_assert_msg(r != 0, "still open %ld ms after it stopped reading",
	    waited);
	/* write_timeout is 2 s; the sweep runs once a second. */
	ck_assert_msg(waited >= 1000 && waited <= eo_ms(6000),
	    "closed %ld ms after the client stopped taking bytes", waited);
	ck_assert_int_eq(eod_log_wait(d, "closed: write_timeout (2 s)",
	    eo_ms(5000)), 0);
	close(fd);
	free(buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("slow");
	TCase *tc = tcase_create("slow");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, eo_ms(120));
	tcase_add_test(tc, test_slow_reader_not_idle);
	tcase_add_test(tc, test_non_reader_closed_by_write_timeout);
	suite_add_tcase(s, tc);
	return check_run(s);
}
