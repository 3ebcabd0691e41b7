/*
 * inetd's built-in services over real sockets (issue 11), with real
 * clients where there are some: nc(1) for daytime, qotd and discard,
 * rdate(8) for time (its -o takes the port), and clients of our own
 * for what they cannot tell: every chargen line, a reader that stops.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

enum { P_DISCARD, P_CHARGEN, P_DAYTIME, P_TIME, P_QOTD, P_INDIA, NPORTS };

#define WRITE_TIMEOUT	2
#define IDLE_TIMEOUT	2

static int port[NPORTS];
static struct eod *d;

static void
setup(void)
{
	int i;

	for (i = 0; i < NPORTS; i++)
		port[i] = eo_port();
	d = eod_start_opts(&(struct eod_opts){ .args = "-d" },
	    "workers = 2;\n"
	    "listeners = (\n"
	    " { name = \"discard\"; protocol = \"discard\"; port = %d;"
	    "   bind = [\"127.0.0.1\", \"::1\"]; idle_timeout = %d; },\n"
	    " { name = \"chargen\"; protocol = \"chargen\"; port = %d;"
	    "   bind = [\"127.0.0.1\", \"::1\"]; write_timeout = %d; },\n"
	    " { name = \"daytime\"; protocol = \"daytime\"; port = %d;"
	    "   bind = [\"127.0.0.1\", \"::1\"]; },\n"
	    " { name = \"time\"; protocol = \"time\"; port = %d;"
	    "   bind = [\"127.0.0.1\", \"::1\"]; },\n"
	    " { name = \"qotd\"; protocol = \"qotd\"; port = %d;"
	    "   bind = \"127.0.0.1\";"
	    "   qotd = { quotes = [\"Alpha.\", \"Beta,\\ngamma.\"]; }; },\n"
	    " { name = \"india\"; protocol = \"daytime\"; port = %d;"
	    "   bind = \"127.0.0.1\";"
	    "   daytime = { timezone = \"Asia/Kolkata\"; format = \"%%z %%Z\";"
	    " }; }\n"
	    ");\n", port[P_DISCARD], IDLE_TIMEOUT, port[P_CHARGEN],
	    WRITE_TIMEOUT,
	    port[P_DAYTIME], port[P_TIME], port[P_QOTD], port[P_INDIA]);
}

static void
teardown(void)
{
	ck_assert_int_eq(eod_stop(d), 0);
	/* No connection of these closed on an error of ours. */
	ck_assert_msg(!eod_log_has(d, "closed: error"), "an error close");
	ck_assert_msg(!eod_log_has(d, "protocol error"), "a protocol error");
	eod_free(d);
}

/* Runs cmd with a shell; its exit code, its output in out. */
static int
run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n;

	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	return pclose(p);
}

/* What a daytime listener sends to nc, over v4 and v6. */
START_TEST(test_daytime_nc)
{
	const char *hosts[] = { "127.0.0.1", "::1" };
	char cmd[128], out[256];
	struct tm tm;
	time_t before, after, t;
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "nc -w 5 %s %d </dev/null",
		    hosts[i], port[P_DAYTIME]);
		before = time(NULL);
		ck_assert_int_eq(run(cmd, out, sizeof(out)), 0);
		after = time(NULL);
		/* "Sunday, September 22, 2024 09:59:59-UTC\r\n" */
		memset(&tm, 0, sizeof(tm));
		ck_assert_msg(strptime(out, "%A, %B %d, %Y %H:%M:%S-UTC",
		    &tm) != NULL, "daytime said \"%s\"", out);
		t = timegm(&tm);
		ck_assert_int_ge(t, before);
		ck_assert_int_le(t, after);
		ck_assert_msg(strlen(out) > 2 &&
		    strcmp(out + strlen(out) - 6, "-UTC\r\n") == 0, "%s", out);
	}
	ck_assert_int_eq(eod_log_wait(d, "closed: daytime sent",
	    eo_ms(5000)), 0);
}
END_TEST

/* The zone's own offset and name, whatever the process's TZ. */
START_TEST(test_daytime_zone)
{
	char out[64];
	size_t n;
	int fd = tcp_open("127.0.0.1", port[P_INDIA]), eof;

	n = recv_all(fd, out, sizeof(out) - 1, eo_ms(5000), &eof);
	out[n] = '\0';
	ck_assert_str_eq(out, "+0530 IST\r\n");
	ck_assert_int_eq(eof, 1);
	close(fd);
}
END_TEST

/* Input to a service that speaks first is dropped; the line comes. */
START_TEST(test_daytime_ignores_input)
{
	char out[256];
	size_t n;
	int fd = tcp_open("127.0.0.1", port[P_DAYTIME]), eof;

	ck_assert_int_eq(send_all(fd, "hello?\r\n", 8), 0);
	n = recv_all(fd, out, sizeof(out) - 1, eo_ms(5000), &eof);
	out[n] = '\0';
	ck_assert_int_eq(eof, 1);
	ck_assert_msg(n > 6 && strcmp(out + n - 6, "-UTC\r\n") == 0, "%s",
	    out);
	close(fd);
}
END_TEST

/* rdate(8), the RFC 868 client operators use. */
START_TEST(test_time_rdate)
{
	char cmd[128], out[256];
	struct tm tm;
	time_t before, after;
	int rc;

	snprintf(cmd, sizeof(cmd), "TZ=UTC rdate -p -o %d 127.0.0.1 2>&1",
	    port[P_TIME]);
	before = time(NULL);
	rc = run(cmd, out, sizeof(out));
	after = time(NULL);
	if (rc != 0 && strstr(out, "not found") != NULL &&
	    getenv("EO_NO_SKIP") == NULL) {
		fprintf(stderr, "rdate not installed: skipping its case\n");
		return;
	}
	ck_assert_msg(rc == 0, "rdate: %s", out);
	/* "Wed Nov 25 18:16:40 UTC 2026": the time it read, as it sees it */
	memset(&tm, 0, sizeof(tm));
	ck_assert_msg(strptime(out, "%a %b %d %H:%M:%S UTC %Y", &tm) != NULL,
	    "rdate: %s", out);
	ck_assert_int_ge(timegm(&tm), before);
	ck_assert_int_le(timegm(&tm), after);
	ck_assert_int_eq(eod_log_wait(d, "closed: time sent", eo_ms(5000)),
	    0);
}
END_TEST

/* Our own client: four bytes, network order, now since 1900; EOF. */
/* Seconds since 1900, as RFC 868 counts them, from the clock the daemon
   reads. */
static uint32_t
realtime_1900(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec + 2208988800ULL);
}

START_TEST(test_time_value)
{
	unsigned char b[8];
	uint32_t v, lo, hi;
	size_t n;
	int fd, eof;

	/* Not time(2): Linux answers it from the coarse clock, which can
	   lag the daemon's CLOCK_REALTIME across a second boundary. */
	lo = realtime_1900();
	fd = tcp_open("::1", port[P_TIME]);
	n = recv_all(fd, b, sizeof(b), eo_ms(5000), &eof);
	hi = realtime_1900();
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(eof, 1);
	v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
	ck_assert_uint_ge(v, lo);
	ck_assert_uint_le(v, hi);
	close(fd);
}
END_TEST

/* nc gets one of the quotes, lines CR LF ended, then EOF; both come. */
START_TEST(test_qotd_nc)
{
	char cmd[128], out[256];
	int i, alpha = 0, beta = 0;

	snprintf(cmd, sizeof(cmd), "nc -w 5 127.0.0.1 %d </dev/null",
	    port[P_QOTD]);
	for (i = 0; i < 40 && (alpha == 0 || beta == 0); i++) {
		ck_assert_int_eq(run(cmd, out, sizeof(out)), 0);
		if (strcmp(out, "Alpha.\r\n") == 0)
			alpha++;
		else if (strcmp(out, "Beta,\r\ngamma.\r\n") == 0)
			beta++;
		else
			ck_abort_msg("qotd said \"%s\"", out);
	}
	ck_assert_int_gt(alpha, 0);
	ck_assert_int_gt(beta, 0);
	ck_assert_int_eq(eod_log_wait(d, "closed: quote sent", eo_ms(5000)),
	    0);
}
END_TEST

/* 64 MiB into discard through nc -N: all taken, nothing back, EOF. */
START_TEST(test_discard_nc)
{
	char cmd[160], out[64];

	snprintf(cmd, sizeof(cmd), "head -c 67108864 /dev/urandom | "
	    "nc -N -w 10 127.0.0.1 %d | wc -c", port[P_DISCARD]);
	ck_assert_int_eq(run(cmd, out, sizeof(out)), 0);
	ck_assert_int_eq(atoi(out), 0);
	ck_assert_int_eq(eod_log_wait(d, "closed: client EOF (read 67108864, "
	    "sent 0 bytes", eo_ms(10000)), 0);
}
END_TEST

/*
 * A discard client that stops sending is idle: closed by idle_timeout,
 * with nothing ever sent to it.  One that keeps sending is not.
 */
START_TEST(test_discard_idle)
{
	static const char chunk[1000] = "x";
	int quiet = tcp_open("127.0.0.1", port[P_DISCARD]);
	int busy = tcp_open("::1", port[P_DISCARD]);
	char buf[16];
	int i;

	ck_assert_int_eq(send_all(quiet, chunk, sizeof(chunk)), 0);
	/* busy sends every 200 ms, for twice idle_timeout. */
	for (i = 0; i < 10 * IDLE_TIMEOUT; i++) {
		ck_assert_int_eq(send_all(busy, chunk, sizeof(chunk)), 0);
		poll(NULL, 0, 200);
	}
	ck_assert_uint_eq(recv_all(quiet, buf, sizeof(buf),
	    eo_ms(IDLE_TIMEOUT * 1000 + 5000), &i), 0);
	ck_assert_int_eq(i, 1);		/* EOF, no byte before it */
	ck_assert_int_eq(eod_log_wait(d, "closed: idle_timeout (2 s) (read "
	    "1000, sent 0 bytes", eo_ms(5000)), 0);
	ck_assert_int_eq(still_open(busy, 10), 1);
	close(quiet);
	close(busy);
}
END_TEST

/* The byte at offset k of the RFC 864 stream. */
static unsigned char
chargen_at(uint64_t k)
{
	uint64_t line = k / 74, col = k % 74;

	if (col == 72)
		return '\r';
	if (col == 73)
		return '\n';
	return (unsigned char)(' ' + (line + col) % 95);
}

/*
 * Reads up to len bytes of chargen from fd, the first at stream offset
 * start, checking each; stops at EOF.  The bytes read.
 */
static uint64_t
chargen_read_from(int fd, uint64_t start, uint64_t len)
{
	static unsigned char buf[65536];
	uint64_t off = start;
	size_t n, i;

	while (off - start < len) {
		n = recv_some(fd, buf, sizeof(buf), eo_ms(10000));
		if (n == 0)
			break;
		for (i = 0; i < n; i++)
			if (buf[i] != chargen_at(off + i))
				ck_abort_msg("chargen byte %llu: 0x%02x, not "
				    "0x%02x", (unsigned long long)(off + i),
				    buf[i], chargen_at(off + i));
		off += n;
	}
	return off - start;
}

static uint64_t
chargen_read(int fd, uint64_t len)
{
	return chargen_read_from(fd, 0, len);
}

/*
 * 64 MiB, every line checked, then the client closes with output still
 * coming: the daemon sees a reset, no error, and serves the next one.
 */
START_TEST(test_chargen_read_close)
{
	int fd = tcp_open("127.0.0.1", port[P_CHARGEN]);

	ck_assert_uint_ge(chargen_read(fd, 64ULL << 20), 64ULL << 20);
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "closed: client reset",
	    eo_ms(10000)), 0);
	fd = tcp_open("::1", port[P_CHARGEN]);
	ck_assert_uint_ge(chargen_read(fd, 1 << 20), 1 << 20);
	close(fd);
}
END_TEST

/* A client that half-closes ends the stream: EOF after whole bytes. */
START_TEST(test_chargen_half_close)
{
	int fd = tcp_open("127.0.0.1", port[P_CHARGEN]);
	uint64_t off, more;

	off = chargen_read(fd, 1 << 20);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	/* What was on its way still comes, in sequence, then EOF: a few
	   MiB of socket buffers, not a stream that goes on. */
	more = chargen_read_from(fd, off, 64ULL << 20);
	ck_assert_msg(more < 64ULL << 20, "chargen went on after EOF");
	ck_assert_int_eq(wait_eof(fd, eo_ms(1000)), 1);
	ck_assert_int_eq(eod_log_wait(d, "closed: client EOF", eo_ms(5000)),
	    0);
	close(fd);
}
END_TEST

#define STALLED		40

/* Waits (bounded) until want lines hold needle; how many there are. */
static int
log_count_wait(const char *needle, int want, int ms)
{
	struct pollfd none;
	int n, waited;

	for (waited = 0; (n = eod_log_count(d, needle)) < want && waited < ms;
	    waited += 100)
		poll(&none, 0, 100);
	return n;
}

/* The daemon's peak resident memory so far, KiB (VmHWM). */
static long
peak_kb(void)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	ck_assert_int_gt(kb, 0);
	return kb;
}

/*
 * Readers that stop: the daemon queues at most its per-connection
 * bound for each (128 KiB), then closes them on write_timeout.
 */
START_TEST(test_chargen_stalled)
{
	int fds[STALLED], i;
	long before, after, bound;

	before = peak_kb();
	for (i = 0; i < STALLED; i++)
		fds[i] = tcp_open_rcvbuf("127.0.0.1", port[P_CHARGEN], 4096);
	/* Each fills its socket buffers and the daemon's queue, then
	   takes nothing: write_timeout closes it (reset or EOF). */
	ck_assert_int_eq(log_count_wait("closed: write_timeout (2 s)",
	    STALLED, eo_ms(WRITE_TIMEOUT * 1000 + 20000)), STALLED);
	for (i = 0; i < STALLED; i++)
		close(fds[i]);
	/* The peak, while all were stalled with full queues: 128 KiB
	   each and the buffers' overhead, where an unbounded queue would
	   have grown by the megabyte.  Valgrind doubles what it tracks. */
	after = peak_kb();
	bound = eo_mem(STALLED * 256L) * (getenv("EO_WRAPPER") != NULL ?
	    3 : 1);
	ck_assert_msg(after - before < bound, "%d stalled chargen clients "
	    "cost %ld KiB (bound %ld)", STALLED, after - before, bound);
	fprintf(stderr, "%d stalled chargen clients: %ld KiB\n", STALLED,
	    after - before);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("builtins");
	TCase *tc = tcase_create("builtins");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_daytime_nc);
	tcase_add_test(tc, test_daytime_zone);
	tcase_add_test(tc, test_daytime_ignores_input);
	tcase_add_test(tc, test_time_rdate);
	tcase_add_test(tc, test_time_value);
	tcase_add_test(tc, test_qotd_nc);
	tcase_add_test(tc, test_discard_nc);
	tcase_add_test(tc, test_discard_idle);
	tcase_add_test(tc, test_chargen_read_close);
	tcase_add_test(tc, test_chargen_half_close);
	tcase_add_test(tc, test_chargen_stalled);
	suite_add_tcase(s, tc);
	return check_run(s);
}
