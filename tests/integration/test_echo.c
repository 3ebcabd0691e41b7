/*
 * echo over real sockets: every byte back, in order, whatever the sizes;
 * half-close; a client that never reads costs bounded memory and still
 * gets everything once it reads; a thousand clients at once; what an
 * idle connection costs; garbage.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
	d = eod_start("workers = 2;\n"
	    "listeners = ( { name = \"echo\"; protocol = \"echo\";"
	    " port = %d; bind = [\"127.0.0.1\", \"::1\"]; } );\n", port);
}

static void
teardown(void)
{
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

/* The byte at offset i of a stream: no period a short bug could hide in. */
static unsigned char
pattern(uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ULL;

	return (unsigned char)((x >> 29) ^ (x >> 47) ^ i);
}

static void
fill(unsigned char *buf, size_t len, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pattern(off + i);
}

START_TEST(test_small_v4_v6)
{
	static const char msg[] = "hello\0world\r\n\xff\x00";
	const char *hosts[] = { "127.0.0.1", "::1" };
	char buf[64];
	int i, fd;

	for (i = 0; i < 2; i++) {
		fd = tcp_open(hosts[i], port);
		ck_assert_int_eq(send_all(fd, msg, sizeof(msg)), 0);
		ck_assert_uint_eq(recv_n(fd, buf, sizeof(msg), eo_ms(5000)),
		    sizeof(msg));
		ck_assert_int_eq(memcmp(buf, msg, sizeof(msg)), 0);
		close(fd);
	}
}
END_TEST

struct writer {
	int		 fd;
	uint64_t	 total;
	int		 chunk_seed;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned char *buf = malloc(256 * 1024);
	uint64_t off = 0;
	unsigned seed = (unsigned)w->chunk_seed;

	while (off < w->total) {
		size_t n = 1 + (size_t)(rand_r(&seed) % (256 * 1024));

		if (n > w->total - off)
			n = (size_t)(w->total - off);
		fill(buf, n, off);
		if (send_all(w->fd, buf, n) == -1)
			break;
		off += n;
	}
	shutdown(w->fd, SHUT_WR);
	free(buf);
	return NULL;
}

/* 64 MiB, written and read at once in random sizes, every byte checked. */
START_TEST(test_64mib)
{
	struct writer w = { tcp_open("127.0.0.1", port), 64ULL << 20, 1 };
	unsigned char *buf = malloc(200000);
	unsigned seed = 2;
	uint64_t off = 0;
	pthread_t t;
	int eof = 0;

	ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
	while (off < w.total) {
		size_t want = 1 + (size_t)(rand_r(&seed) % 200000), i;
		size_t n = recv_n(w.fd, buf, want, eo_ms(20000));

		ck_assert_msg(n > 0, "stalled at %llu", (unsigned long long)off);
		for (i = 0; i < n; i++)
			if (buf[i] != pattern(off + i))
				ck_abort_msg("byte %llu differs",
				    (unsigned long long)(off + i));
		off += n;
	}
	pthread_join(t, NULL);
	/* Half-closed after the last byte: all echoed, then EOF. */
	ck_assert_uint_eq(recv_all(w.fd, buf, 1, eo_ms(5000), &eof), 0);
	ck_assert_int_eq(eof, 1);
	close(w.fd);
	free(buf);
}
END_TEST

/* nc -N: send, shut the write side, still get every byte back. */
START_TEST(test_half_close)
{
	size_t len = 3 << 20, got;
	unsigned char *out = malloc(len), *in = malloc(len + 1);
	int fd = tcp_open("::1", port), eof;
	struct writer w = { fd, len, 3 };
	pthread_t t;

	fill(out, len, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
	got = recv_all(fd, in, len + 1, eo_ms(20000), &eof);
	pthread_join(t, NULL);
	ck_assert_uint_eq(got, len);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(memcmp(in, out, len), 0);
	close(fd);
	free(out);
	free(in);
}
END_TEST

/*
 * A client that sends and never reads: once the kernel's buffers and
 * the daemon's bounded queue are full, the daemon stops reading it.
 * Its memory stays bounded; and when the client reads at last, every
 * byte comes back.
 */
START_TEST(test_non_reader)
{
	int fd = tcp_open("127.0.0.1", port), fl, eof;
	unsigned char *buf = malloc(1 << 20);
	long rss0 = eod_rss_kb(d), rss1;
	uint64_t sent = 0, got = 0;
	int stuck = 0;

	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (stuck < 20 && sent < (256ULL << 20)) {
		ssize_t n;

		fill(buf, 1 << 20, sent);
		n = send(fd, buf, 1 << 20, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (uint64_t)n;
			stuck = 0;
		} else {
			ck_assert_int_eq(errno, EAGAIN);
			stuck++;
			usleep(50000);
		}
	}
	ck_assert_msg(stuck >= 20, "the daemon kept reading %llu bytes",
	    (unsigned long long)sent);
	rss1 = eod_rss_kb(d);
	fprintf(stderr, "non-reader: sent %llu bytes before blocking; "
	    "daemon RSS %ld -> %ld KiB\n", (unsigned long long)sent, rss0,
	    rss1);
	/* 128 KiB queued plus a 64 KiB read, with slack for malloc. */
	ck_assert_int_lt(rss1 - rss0, eo_mem(1024));
	fcntl(fd, F_SETFL, fl);
	shutdown(fd, SHUT_WR);
	for (;;) {
		size_t n = recv_all(fd, buf, 1 << 20, eo_ms(10000), &eof), i;

		for (i = 0; i < n; i++)
			if (buf[i] != pattern(got + i))
				ck_abort_msg("byte %llu differs",
				    (unsigned long long)(got + i));
		got += n;
		if (eof != 0 || n == 0)
			break;
	}
	ck_assert_int_eq(eof, 1);
	ck_assert_uint_eq(got, sent);
	close(fd);
	free(buf);
}
END_TEST

static void
raise_nofile(void)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* A thousand clients connected at once, each answered, none mixed up. */
START_TEST(test_thousand)
{
	enum { N = 1000 };
	static int fds[N];
	static struct pollfd pfd[N];
	char msg[64], buf[64];
	int i, left = N;

	raise_nofile();
	for (i = 0; i < N; i++)
		fds[i] = tcp_open(i % 2 ? "::1" : "127.0.0.1", port);
	for (i = 0; i < N; i++) {
		snprintf(msg, sizeof(msg), "client %04d says hi\n", i);
		ck_assert_int_eq(send_all(fds[i], msg, strlen(msg)), 0);
		pfd[i].fd = fds[i];
		pfd[i].events = POLLIN;
	}
	while (left > 0) {
		ck_assert_int_gt(poll(pfd, N, eo_ms(10000)), 0);
		for (i = 0; i < N; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & POLLIN))
				continue;
			snprintf(msg, sizeof(msg), "client %04d says hi\n", i);
			ck_assert_uint_eq(recv_n(fds[i], buf, strlen(msg),
			    eo_ms(5000)), strlen(msg));
			ck_assert_int_eq(memcmp(buf, msg, strlen(msg)), 0);
			pfd[i].fd = -1;
			left--;
		}
	}
	for (i = 0; i < N; i++)
		close(fds[i]);
}
END_TEST

/*
 * Issue 28: an idle connection costs at most 256 bytes of the daemon's
 * memory (nginx keeps about 250 per idle keep-alive connection).  Each
 * connection echoes once, as tests/bench/idle_memory.sh's do, then all
 * are left quiet past EO_QUIET_MS and the next sweep (when a quiet
 * connection has given its buffers back).
 * The figure is what 4000 more such connections add to the daemon's
 * RSS, divided by 4000: the first 1000 pay the fixed costs (arrays
 * that grow with the highest descriptor, malloc's arenas).  Then every
 * one still answers, twice: the second within EO_QUIET_MS of the first
 * makes it busy, with a read event of its own again (conn_park.c).
 * Sanitizers and wrappers add their own bytes to each allocation: there
 * only the answers are checked.
 */
enum { IDLE_BASE = 1000, IDLE_MORE = 4000, IDLE_QUIET_MS = 3500 };
static int idle_fds[IDLE_BASE + IDLE_MORE];

static long
idle_rss_after(int from, int to)
{
	int i;

	for (i = from; i < to; i++) {
		idle_fds[i] = tcp_open("127.0.0.1", port);
		eo_expect_echo(idle_fds[i], "idle?");
	}
	usleep(IDLE_QUIET_MS * 1000);
	return eod_rss_kb(d);
}

START_TEST(test_idle_conn_under_256_bytes)
{
	const char *w = getenv("EO_WRAPPER");
	long rss0, rss1, per;
	int i;

	raise_nofile();
	rss0 = idle_rss_after(0, IDLE_BASE);
	rss1 = idle_rss_after(IDLE_BASE, IDLE_BASE + IDLE_MORE);
	per = (rss1 - rss0) * 1024 / IDLE_MORE;
	fprintf(stderr, "idle connections: RSS %ld KiB with %d, %ld KiB "
	    "with %d: %ld bytes each\n", rss0, IDLE_BASE, rss1,
	    IDLE_BASE + IDLE_MORE, per);
#ifndef EO_SANITIZED
	if (w == NULL || *w == '\0')
		ck_assert_int_le(per, 256);
#endif
	(void)w;
	for (i = 0; i < IDLE_BASE + IDLE_MORE; i++) {
		eo_expect_echo(idle_fds[i], "still?");
		eo_expect_echo(idle_fds[i], "again?");
		close(idle_fds[i]);
	}
}
END_TEST

/*
 * Issue 28: a busy connection's read event goes back to the system once
 * it is quiet, not only to malloc (where, between live connections, it
 * stays in RSS).  2000 connections echo twice (the second makes each
 * busy, conn_park.c), the RSS is read at once and again once all are
 * quiet: it must have fallen by at least half an event (128 bytes) per
 * connection, though some may have been parked before the first look.
 */
START_TEST(test_quiet_conn_gives_back_its_event)
{
	enum { N = 2000 };
	const char *w = getenv("EO_WRAPPER");
	long busy, quiet, per;
	int i;

	raise_nofile();
	for (i = 0; i < N; i++) {
		idle_fds[i] = tcp_open("127.0.0.1", port);
		eo_expect_echo(idle_fds[i], "one?");
		eo_expect_echo(idle_fds[i], "two?");
	}
	busy = eod_rss_kb(d);
	usleep(IDLE_QUIET_MS * 1000);
	quiet = eod_rss_kb(d);
	per = (busy - quiet) * 1024 / N;
	fprintf(stderr, "busy connections: RSS %ld KiB, quiet %ld KiB: %ld "
	    "bytes each given back\n", busy, quiet, per);
#ifndef EO_SANITIZED
	if (w == NULL || *w == '\0')
		ck_assert_int_ge(per, 64);
#endif
	(void)w;
	for (i = 0; i < N; i++) {
		eo_expect_echo(idle_fds[i], "three?");
		close(idle_fds[i]);
	}
}
END_TEST

/*
 * Abrupt ends: resets mid-stream must not hurt anyone else.  A client
 * connected before them and one connected after both get exactly their
 * own bytes back.
 */
static void
garbage_resets(void)
{
	int before = tcp_open("::1", port), after, round;

	eo_expect_echo(before, "before?");
	for (round = 0; round < 50; round++) {
		struct linger lg = { 1, 0 };
		int fd = tcp_open("127.0.0.1", port);

		send_all(fd, "abcdef", 6);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	after = tcp_open("127.0.0.1", port);
	eo_expect_echo(after, "ok?");
	eo_expect_echo(before, "still?");
	close(after);
	close(before);
}

/* Random bytes in random sizes: all back; the daemon lives on. */
START_TEST(test_garbage)
{
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 20; round++) {
		size_t len = 1 + (size_t)(rand_r(&seed) % 300000), i, off = 0;
		unsigned char *out = malloc(len), *in = malloc(len);
		int fd = tcp_open(round % 2 ? "::1" : "127.0.0.1", port), eof;

		for (i = 0; i < len; i++)
			out[i] = (unsigned char)rand_r(&seed);
		while (off < len) {
			size_t n = 1 + (size_t)(rand_r(&seed) % 5000);

			if (n > len - off)
				n = len - off;
			ck_assert_int_eq(send_all(fd, out + off, n), 0);
			off += n;
			if (rand_r(&seed) % 8 == 0)
				usleep(1000);
		}
		shutdown(fd, SHUT_WR);
		ck_assert_uint_eq(recv_all(fd, in, len, eo_ms(10000), &eof),
		    len);
		ck_assert_int_eq(memcmp(in, out, len), 0);
		ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
		close(fd);
		free(out);
		free(in);
	}
	garbage_resets();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("echo");
	TCase *tc = tcase_create("echo");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, eo_ms(120));
	tcase_add_test(tc, test_small_v4_v6);
	tcase_add_test(tc, test_64mib);
	tcase_add_test(tc, test_half_close);
	tcase_add_test(tc, test_non_reader);
	tcase_add_test(tc, test_thousand);
	tcase_add_test(tc, test_idle_conn_under_256_bytes);
	tcase_add_test(tc, test_quiet_conn_gives_back_its_event);
	tcase_add_test(tc, test_garbage);
	suite_add_tcase(s, tc);
	return check_run(s);
}
