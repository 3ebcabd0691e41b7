/*
 * Restarts in place (SIGUSR2) that carry every connection: echo
 * clients with every byte checked, one of them owed far more than its
 * socket holds when the signal comes; oracle clients in the middle of
 * a question, with max_questions counted across; clients connecting
 * while the process execs.  Then what cannot be carried: a refused
 * check keeps the old process serving, a removed listener closes its
 * connections cleanly, and a saved state that does not parse (the test
 * hands one to a fresh daemon itself, as LISTEN_FDS) closes the
 * connections handed over, never a crash.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

#define NECHO		20
#define NORACLE		10
#define NLATE_MAX	200
#define CHUNK		1000
#define OWED_MAX	(4 << 20)

#define CONF \
    "workers = 2;\n" \
    "listeners = (\n" \
    "  { name = \"echo\"; protocol = \"echo\"; port = %d;" \
    " bind = [\"127.0.0.1\"]; },\n" \
    "  { name = \"oracle\"; protocol = \"oracle\"; port = %d;" \
    " bind = [\"127.0.0.1\"];\n" \
    "    oracle = { max_questions = 3; answers = [\"Yes.\"]; }; }%s\n" \
    ");\n"

/* Client i's byte at offset k of its stream. */
static unsigned char
pattern(int i, size_t k)
{
	return (unsigned char)(k * 7 + (size_t)i * 13 + k / 251);
}

static void
fill(unsigned char *p, int i, size_t off, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		p[k] = pattern(i, off + k);
}

/* Reads n bytes of client i's stream from offset off and checks them. */
static void
expect_stream(int fd, int i, size_t off, size_t n)
{
	unsigned char *got = malloc(n), want[4096];
	size_t k, m;

	ck_assert_uint_eq(recv_n(fd, got, n, eo_ms(10000)), n);
	for (k = 0; k < n; k += m) {
		m = n - k < sizeof(want) ? n - k : sizeof(want);
		fill(want, i, off + k, m);
		ck_assert_msg(memcmp(got + k, want, m) == 0,
		    "client %d: bytes at %zu differ", i, off + k);
	}
	free(got);
}

static void
send_stream(int fd, int i, size_t off, size_t n)
{
	unsigned char buf[CHUNK];

	ck_assert_uint_le(n, sizeof(buf));
	fill(buf, i, off, n);
	ck_assert_int_eq(send_all(fd, buf, n), 0);
}

/*
 * Sends without reading until neither the daemon nor the kernel takes
 * more for a while: the daemon then holds replies it could not send.
 * Returns how many bytes were sent.
 */
static size_t
send_until_full(int fd, int i, size_t start)
{
	unsigned char buf[16384];
	size_t off = start;
	int quiet = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (off < OWED_MAX && quiet < 5) {
		ssize_t n;

		fill(buf, i, off, sizeof(buf));
		if ((n = send(fd, buf, sizeof(buf), 0)) > 0) {
			off += (size_t)n;
			quiet = 0;
			continue;
		}
		ck_assert(n == -1 && errno == EAGAIN);
		poll(NULL, 0, 40);
		quiet++;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return off - start;
}

static void
expect_line(int fd, const char *want)
{
	char buf[256];
	size_t n = strlen(want);

	ck_assert_uint_lt(n, sizeof(buf));
	ck_assert_uint_eq(recv_n(fd, buf, n, eo_ms(10000)), n);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

/* Forgets the notices so far: the next READY=1 is the new process's. */
static void
notify_flush(struct eod *d)
{
	char buf[4096];

	while (recv(d->notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

START_TEST(test_sigusr2_carries_every_connection)
{
	int pe = eo_port(), po = eo_port();
	struct eod *d = eod_start(CONF, pe, po, "");
	int echo[NECHO], oracle[NORACLE], late[NLATE_MAX], nlate = 0, i;
	size_t owed, off = CHUNK;
	pid_t pid = d->pid;

	for (i = 0; i < NECHO; i++) {
		echo[i] = tcp_open("127.0.0.1", pe);
		send_stream(echo[i], i, 0, CHUNK);
		expect_stream(echo[i], i, 0, CHUNK);
		/* Sent, the reply not read: in flight at the restart. */
		send_stream(echo[i], i, CHUNK, CHUNK);
	}
	owed = send_until_full(echo[0], 0, 2 * CHUNK);
	for (i = 0; i < NORACLE; i++) {
		oracle[i] = tcp_open("127.0.0.1", po);
		ck_assert_int_eq(send_all(oracle[i], "one? two? thr", 13), 0);
		expect_line(oracle[i], "one? Yes.\r\ntwo? Yes.\r\n");
	}
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	/* Clients arriving while it execs wait in the listening queue. */
	while (nlate < NLATE_MAX &&
	    eod_wait_notify(d, "READY=1", 5) == -1) {
		late[nlate] = tcp_connect("127.0.0.1", pe);
		ck_assert_msg(late[nlate] != -1, "refused during the restart");
		ck_assert_int_eq(send_all(late[nlate], "late", 4), 0);
		nlate++;
	}
	if (nlate == NLATE_MAX)
		ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)),
		    0);
	ck_assert_int_eq(d->pid, pid);
	ck_assert(eod_running(d));
	/* 30 and the late clients accepted while -t ran: none closed. */
	ck_assert(eod_log_has(d, " connections carried over"));
	ck_assert(!eod_log_has(d, "closed: "));

	/* Every byte owed, in order, then more. */
	expect_stream(echo[0], 0, CHUNK, CHUNK + owed);
	for (i = 1; i < NECHO; i++) {
		expect_stream(echo[i], i, CHUNK, CHUNK);
		send_stream(echo[i], i, off, CHUNK);
		expect_stream(echo[i], i, off, CHUNK);
	}
	for (i = 0; i < nlate; i++) {
		expect_line(late[i], "late");
		close(late[i]);
	}
	/* The question finishes; the third answer is the last. */
	for (i = 0; i < NORACLE; i++) {
		ck_assert_int_eq(send_all(oracle[i], "ee? four?", 9), 0);
		expect_line(oracle[i], "three? Yes.\r\n");
		ck_assert_int_eq(wait_eof(oracle[i], eo_ms(5000)), 1);
		close(oracle[i]);
	}
	for (i = 0; i < NECHO; i++)
		close(echo[i]);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

START_TEST(test_sigusr2_bad_config_keeps_serving)
{
	int pe = eo_port(), po = eo_port();
	struct eod *d = eod_start(CONF, pe, po, "");
	int fd = tcp_open("127.0.0.1", pe);

	eo_expect_echo(fd, "before");
	eod_write_conf(d, "listeners = ( { name = \"x\"; } );\n");
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_log_wait(d, "restart refused", eo_ms(10000)), 0);
	eo_expect_echo(fd, "after");
	ck_assert(!eod_log_has(d, "handing"));
	close(fd);
	fd = tcp_open("127.0.0.1", po);
	ck_assert_int_eq(send_all(fd, "still?", 6), 0);
	expect_line(fd, "still? Yes.\r\n");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

START_TEST(test_sigusr2_removed_listener_closes_cleanly)
{
	int pe = eo_port(), po = eo_port(), px = eo_port();
	char extra[256];
	struct eod *d;
	int fd, kept;

	snprintf(extra, sizeof(extra), ",\n  { name = \"gone\"; protocol = "
	    "\"echo\"; port = %d; bind = [\"127.0.0.1\"]; }", px);
	d = eod_start(CONF, pe, po, extra);
	fd = tcp_open("127.0.0.1", px);
	kept = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "hi");
	eo_expect_echo(kept, "hi");
	eod_write_conf(d, CONF, pe, po, "");
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 1 connection of listener \"gone\" "
	    "closed: no such listener"));
	/* EOF, not a reset; the other one carried. */
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	eo_expect_echo(kept, "still");
	ck_assert_int_eq(tcp_connect("127.0.0.1", px), -1);
	close(fd);
	close(kept);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A connected pair on loopback: *client the test's, the other end
   returned, as an accepted socket would be. */
static int
conn_pair(int *client)
{
	int port = eo_port(), l = eo_listen("127.0.0.1", port), s;

	*client = tcp_open("127.0.0.1", port);
	ck_assert_int_ne(s = accept(l, NULL, NULL), -1);
	close(l);
	return s;
}

/* A state blob in a memfd, as the old process leaves it. */
static int
state_fd(const void *p, size_t n)
{
	int fd = memfd_create("eo-state", 0);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	return fd;
}

static void
check_bad_state(const void *blob, size_t n, const char *reason)
{
	struct eod_opts o;
	struct eod *d;
	int client, fds[2], pe = eo_port(), po = eo_port(), fd;

	fds[0] = conn_pair(&client);
	fds[1] = state_fd(blob, n);
	memset(&o, 0, sizeof(o));
	o.listen_fds = fds;
	o.nlisten = 2;
	o.listen_names = "eo-conn:eo-state";
	d = eod_start_opts(&o, CONF, pe, po, "");
	close(fds[0]);
	close(fds[1]);
	ck_assert(eod_log_has(d, "saved state is unusable"));
	ck_assert_msg(eod_log_has(d, reason), "no \"%s\" in the log", reason);
	/* Closed cleanly: EOF, no reset; the daemon serves on. */
	ck_assert_int_eq(wait_eof(client, eo_ms(5000)), 1);
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "fine");
	close(fd);
	close(client);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

START_TEST(test_unknown_state_version_closes_inherited)
{
	static const unsigned char v99[] = "EOSTATE\0" "\x63\0\0\0" "\0\0\0\0";

	check_bad_state(v99, sizeof(v99) - 1, "version 99");
}
END_TEST

START_TEST(test_garbage_state_closes_inherited)
{
	static const char junk[] = "this is not a state";

	check_bad_state(junk, sizeof(junk) - 1, "bad magic");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("handover");
	TCase *tc = tcase_create("handover");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sigusr2_carries_every_connection);
	tcase_add_test(tc, test_sigusr2_bad_config_keeps_serving);
	tcase_add_test(tc, test_sigusr2_removed_listener_closes_cleanly);
	tcase_add_test(tc, test_unknown_state_version_closes_inherited);
	tcase_add_test(tc, test_garbage_state_closes_inherited);
	suite_add_tcase(s, tc);
	return check_run(s);
}
