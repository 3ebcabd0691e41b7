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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "harness.h"
#include "check_main.h"

#define NECHO		20
#define NORACLE		10
#define NLATE_MAX	200
#define CHUNK		1000
#define OWED_MAX	(16 << 20)

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

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	long t0;

	for (i = 0; i < NECHO; i++) {
		/* A small window for the first: the daemon, not the
		   kernel, holds most of what it is owed. */
		echo[i] = i == 0 ? tcp_open_rcvbuf("127.0.0.1", pe, 4096) :
		    tcp_open("127.0.0.1", pe);
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
	eod_notify_pids(d);
	t0 = now_ms();
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
	printf("restart in place: the new process ready %ld ms after "
	    "SIGUSR2, %d clients connected meanwhile\n", now_ms() - t0, nlate);
	/* Ready, said by the process that was started: in place. */
	ck_assert_int_eq(d->notify_pid, pid);
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

/*
 * Reads until EOF: the bytes must be client i's stream from off on, in
 * order; how many, or -1 on a reset (or 20 s without EOF).
 */
static long
drain_stream(int fd, int i, size_t off)
{
	unsigned char got[16384], want[16384];
	long end = now_ms() + eo_ms(20000);
	size_t total = 0;
	ssize_t n;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (now_ms() > end || poll(&p, 1, 200) < 0)
			return -1;
		if (p.revents == 0)
			continue;
		if ((n = recv(fd, got, sizeof(got), 0)) == 0)
			return (long)total;
		if (n < 0)
			return -1;
		fill(want, i, off + total, (size_t)n);
		ck_assert_msg(memcmp(got, want, (size_t)n) == 0,
		    "bytes at %zu differ", off + total);
		total += (size_t)n;
	}
}

/*
 * Issue 24, defect 7: a client whose listener is gone at SIGUSR2, with
 * replies owed (the daemon's own queue full: it stopped reading) and
 * input the daemon never read.  It used to get what one non-blocking
 * send took, then close() over the unread input: a reset.  Now it gets
 * everything it was owed, in order, then a FIN.
 */
START_TEST(test_sigusr2_removed_listener_closes_cleanly)
{
	int pe = eo_port(), po = eo_port(), px = eo_port();
	char extra[256];
	struct eod *d;
	int fd, kept;
	size_t sent;
	long got;

	snprintf(extra, sizeof(extra), ",\n  { name = \"gone\"; protocol = "
	    "\"echo\"; port = %d; bind = [\"127.0.0.1\"]; }", px);
	d = eod_start(CONF, pe, po, extra);
	fd = tcp_open_rcvbuf("127.0.0.1", px, 4096);
	kept = tcp_open("127.0.0.1", pe);
	send_stream(fd, 0, 0, CHUNK);
	expect_stream(fd, 0, 0, CHUNK);
	eo_expect_echo(kept, "hi");
	sent = send_until_full(fd, 0, CHUNK);
	eod_write_conf(d, CONF, pe, po, "");
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 1 connection of listener \"gone\" "
	    "closed: no such listener"));
	/* Everything owed, in order, then EOF: not a reset.  The daemon
	   stops reading at 128 KiB of replies queued: that much at least
	   was owed. */
	got = drain_stream(fd, 0, CHUNK);
	printf("removed listener at SIGUSR2: %ld bytes owed of %zu sent "
	    "delivered, then EOF\n", got, sent);
	ck_assert_msg(got != -1, "reset, or no EOF, after %zu bytes sent",
	    sent);
	ck_assert_int_ge(got, 128 * 1024);
	eo_expect_echo(kept, "still");
	ck_assert_int_eq(tcp_connect("127.0.0.1", px), -1);
	close(fd);
	close(kept);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A carried connection still counts against max_connections_per_source:
 * a second one from its address is refused after the restart, and the
 * count is given back when it closes.
 */
/*
 * Issue 24, defect 4: a socket-activated listener disabled by a reload
 * (its socket parked: systemd's, so not closed), then SIGUSR2.  The
 * check passed, but the new process was handed the parked socket under
 * its systemd name, refused it as a name no enabled listener has, and
 * exited 78 with every connection.  Now it comes parked, and a reload
 * that enables the listener again serves on that same socket.
 */
START_TEST(test_sigusr2_after_parking_socket_activated_listener)
{
	int pe = eo_port(), po = eo_port(), socks[2], fd, q;
	struct eod_opts o;
	struct eod *d;
	char buf[64];

	socks[0] = eo_listen("127.0.0.1", pe);
	socks[1] = eo_listen("127.0.0.1", po);
	ck_assert(socks[0] != -1 && socks[1] != -1);
	memset(&o, 0, sizeof(o));
	o.listen_fds = socks;
	o.nlisten = 2;
	o.listen_names = "echo:oracle";
	d = eod_start_opts(&o, CONF, pe, po, "");
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "before");
	snprintf(buf, sizeof(buf), "port = %d; enabled = false;", po);
	eod_write_conf(d, "workers = 2;\nlisteners = (\n"
	    "  { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    " bind = [\"127.0.0.1\"]; },\n"
	    "  { name = \"oracle\"; protocol = \"oracle\"; %s"
	    " bind = [\"127.0.0.1\"]; }\n);\n", pe, buf);
	ck_assert_int_eq(eod_reload(d), 0);
	notify_flush(d);
	eod_notify_pids(d);
	eod_signal(d, SIGUSR2);
	if (eod_wait_notify(d, "READY=1", eo_ms(15000)) == -1) {
		eod_log_dump(d);
		ck_abort_msg("no READY=1 after SIGUSR2 with a parked socket");
	}
	ck_assert_int_eq(d->notify_pid, d->pid);
	eo_expect_echo(fd, "after");
	/* Enabled again: the parked socket, the one systemd passed. */
	eod_write_conf(d, CONF, pe, po, "");
	ck_assert_int_eq(eod_reload(d), 0);
	q = tcp_open("127.0.0.1", po);
	ck_assert_int_eq(send_all(q, "back?", 5), 0);
	expect_line(q, "back? Yes.\r\n");
	close(q);
	close(fd);
	close(socks[0]);
	close(socks[1]);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

START_TEST(test_sigusr2_per_source_count_carried)
{
	int pe = eo_port(), held, fd, i;
	struct eod *d;

	d = eod_start("listeners = ( { name = \"echo\"; protocol = \"echo\"; "
	    "port = %d; bind = [\"127.0.0.1\"]; max_connections_per_source "
	    "= 1; } );\n", pe);
	held = tcp_open("127.0.0.1", pe);
	eo_expect_echo(held, "held");
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 1 connection carried over"));
	eo_expect_echo(held, "carried");
	fd = tcp_open("127.0.0.1", pe);
	ck_assert_int_ne(wait_eof(fd, eo_ms(5000)), 0);	/* refused */
	close(fd);
	close(held);
	/* Given back once the daemon has seen the close. */
	for (i = 0; i < 100; i++) {
		fd = tcp_open("127.0.0.1", pe);
		if (send_all(fd, "x", 1) == 0 && recv_some(fd, &held, 1,
		    eo_ms(1000)) == 1)
			break;
		close(fd);
		fd = -1;
		poll(NULL, 0, 20);
	}
	ck_assert_int_ne(fd, -1);
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The inode of the UDP socket bound to port on 127.0.0.1, or 0. */
static unsigned long
udp_inode(int port)
{
	FILE *f = fopen("/proc/net/udp", "r");
	char line[512], want[32];
	unsigned long ino = 0;

	ck_assert_ptr_nonnull(f);
	snprintf(want, sizeof(want), "0100007F:%04X", port);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, want) != NULL && sscanf(line,
		    "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &ino) == 1)
			break;
	fclose(f);
	return ino;
}

/* A UDP socket is handed over too: the same socket, still answering. */
START_TEST(test_sigusr2_keeps_udp_socket)
{
	int pu = eo_port(), fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin;
	struct eod *d;
	unsigned long ino;
	char buf[16];

	d = eod_start("listeners = ( { name = \"u\"; protocol = \"echo\"; "
	    "port = %d; transport = \"udp\"; bind = [\"127.0.0.1\"]; } );\n",
	    pu);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)pu);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(send(fd, "one", 3, 0), 3);
	ck_assert_uint_eq(recv_some(fd, buf, sizeof(buf), eo_ms(5000)), 3);
	ino = udp_inode(pu);
	ck_assert_uint_ne(ino, 0);
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "handing 0 connections over"));
	ck_assert_uint_eq(udp_inode(pu), ino);
	ck_assert_int_eq(send(fd, "two", 3, 0), 3);
	ck_assert_uint_eq(recv_some(fd, buf, sizeof(buf), eo_ms(5000)), 3);
	ck_assert_int_eq(memcmp(buf, "two", 3), 0);
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * The check passes but the exec itself fails: the daemon serves on as
 * before, connections and all.  The daemon runs from a copy of the
 * binary; once started, the copy is replaced by a script that passes as
 * the check and, from a background process, keeps itself open for
 * writing, so that executing it fails with ETXTBSY.
 */
START_TEST(test_sigusr2_exec_failure_serves_on)
{
	static const char script[] = "#!/bin/sh\n"
	    "sleep 5 3>>\"$0\" >/dev/null 2>&1 </dev/null &\n"
	    "exit 0\n";
	int pe = eo_port(), po = eo_port(), fd, in, out;
	char copy[128], tmp[140], buf[65536];
	struct eod_opts o;
	struct eod *d;
	ssize_t n;

	snprintf(copy, sizeof(copy), "/tmp/eo-exe.%d", (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.new", copy);
	ck_assert_int_ne(in = open(EO_BINARY, O_RDONLY), -1);
	ck_assert_int_ne(out = open(copy, O_WRONLY | O_CREAT | O_TRUNC,
	    0755), -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	memset(&o, 0, sizeof(o));
	o.binary = copy;
	o.no_wrapper = 1;
	d = eod_start_opts(&o, CONF, pe, po, "");
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "before");
	ck_assert_int_ne(out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755),
	    -1);
	ck_assert_int_eq(write(out, script, sizeof(script) - 1),
	    (ssize_t)sizeof(script) - 1);
	close(out);
	eo_give(tmp);	/* the script opens itself to write, as the daemon */
	ck_assert_int_eq(rename(tmp, copy), 0);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_log_wait(d, "restart failed: still serving",
	    eo_ms(10000)), 0);
	ck_assert(eod_log_has(d, "cannot execute"));
	eo_expect_echo(fd, "after");
	close(fd);
	fd = tcp_open("127.0.0.1", po);
	ck_assert_int_eq(send_all(fd, "new?", 4), 0);
	expect_line(fd, "new? Yes.\r\n");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	unlink(copy);
}
END_TEST

/*
 * SIGUSR2 twice, or a SIGHUP, while the restart execs: the new process
 * must not die of a signal that comes before it has set up its
 * handlers (SIGUSR2's and SIGHUP's default action is to terminate).
 * The signals come every millisecond from the first SIGUSR2 until the
 * new process is ready; they are handled then, one restart after the
 * other, and every connection lives through them all.
 */
START_TEST(test_sigusr2_twice_during_exec_not_fatal)
{
	int pe = eo_port(), po = eo_port(), fd, i;
	struct eod *d = eod_start(CONF, pe, po, "");
	pid_t pid = d->pid;

	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "before");
	notify_flush(d);
	eod_notify_pids(d);
	eod_signal(d, SIGUSR2);
	for (i = 0; i < 20000 && eod_running(d) &&
	    eod_wait_notify(d, "READY=1", 1) == -1; i++)
		eod_signal(d, i % 2 ? SIGHUP : SIGUSR2);
	ck_assert_msg(eod_running(d), "killed by a signal during the exec");
	ck_assert_int_eq(d->notify_pid, pid);
	/* The READY=1 may be a reload's, its SIGHUP handled before the
	   first SIGUSR2 (see the next case): the restart follows it. */
	ck_assert_int_eq(eod_log_wait(d, " carried over", eo_ms(10000)), 0);
	eo_expect_echo(fd, "after");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * SIGUSR2, then at once SIGHUP: read from libevent's signal socket in
 * one go, they run by signal number, SIGHUP's first, so the SIGUSR2
 * comes during the reload's check.  It must not be lost (it was:
 * "ignored, send it again"): the restart follows the check.  Sent to
 * the stopped daemon, the two arrive together.
 */
START_TEST(test_sigusr2_then_sighup_at_once_restarts)
{
	int pe = eo_port(), po = eo_port(), fd;
	struct eod *d = eod_start(CONF, pe, po, "");

	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "before");
	eod_signal(d, SIGSTOP);
	eod_signal(d, SIGUSR2);
	eod_signal(d, SIGHUP);
	eod_signal(d, SIGCONT);
	ck_assert_int_eq(eod_log_wait(d, " carried over", eo_ms(10000)), 0);
	eo_expect_echo(fd, "after");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

#define ORACLE_LEN \
    "listeners = ( { name = \"oracle\"; protocol = \"oracle\"; port = %d;" \
    " bind = [\"127.0.0.1\"];\n" \
    "    oracle = { max_question_length = %d; answers = [\"Yes.\"]; }; } );\n"

/*
 * An unfinished question already longer than the new configuration's
 * max_question_length: the part the old process searched for '?' is
 * past the new limit.  It is too long, as it would have been had it
 * come to the new process: the error line and a close, never a search
 * from beyond the limit (which answered a 3,002-byte question, or read
 * past the input when no '?' followed).
 */
START_TEST(test_sigusr2_question_over_new_max_question_length)
{
	static const char want[] = "error: question longer than 100 bytes\r\n";
	int po = eo_port(), fd, eof;
	struct eod *d = eod_start(ORACLE_LEN, po, 4000);
	char q[3000], got[4096];
	size_t n;

	fd = tcp_open("127.0.0.1", po);
	memset(q, 'a', sizeof(q));
	ck_assert_int_eq(send_all(fd, q, sizeof(q)), 0);
	eod_write_conf(d, ORACLE_LEN, po, 100);
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 1 connection carried over"));
	ck_assert_int_eq(send_all(fd, "b?", 2), 0);
	n = recv_all(fd, got, sizeof(got) - 1, eo_ms(5000), &eof);
	got[n] = '\0';
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(eof, 1);
	ck_assert(eod_running(d));
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Whether a SIGTERM is a restart is asked over D-Bus; a system bus that
 * accepts the connection and never answers (hung, overloaded) must not
 * hang the stop beyond a few seconds: the answer is then "a stop", and
 * the daemon drains and exits as usual.
 */
START_TEST(test_sigterm_hung_bus_stops_in_bound)
{
	struct sockaddr_un sun;
	char addr[160];
	struct eod *d;
	long t0;
	int bus, pe = eo_port(), po = eo_port();

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/eo-bus.%d",
	    (int)getpid());
	unlink(sun.sun_path);
	ck_assert_int_ne(bus = socket(AF_UNIX, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(bind(bus, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(bus, 16), 0);	/* never accepted */
	snprintf(addr, sizeof(addr), "unix:path=%s", sun.sun_path);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);
	d = eod_start(CONF, pe, po, "");
	unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	t0 = now_ms();
	ck_assert_int_eq(eod_stop_sig(d, SIGTERM, eo_ms(20000)), 0);
	printf("SIGTERM with a hung system bus: exited after %ld ms\n",
	    now_ms() - t0);
	ck_assert_int_lt(now_ms() - t0, eo_ms(10000));
	eod_free(d);
	close(bus);
	unlink(sun.sun_path);
}
END_TEST

/* A list of descriptors that is not one: a clear refusal to start. */
START_TEST(test_malformed_fd_list_refused)
{
	char out[512];

	setenv("EO_HANDOVER_FDS", "7,x", 1);
	ck_assert_int_eq(eo_run("-V", out, sizeof(out)), 1);
	unsetenv("EO_HANDOVER_FDS");
	ck_assert_ptr_nonnull(strstr(out, "EO_HANDOVER_FDS is malformed"));
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

/* A record for the server end s of a pair, as an old process writes. */
static void
record_for(int s, struct ho_conn *r, const char *listener,
    const char *proto, uint32_t pstate_len, uint32_t version,
    const char *queued)
{
	static const unsigned char zeros[64];

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(ho_sock_ends(s, &r->local, &r->peer), 0);
	snprintf(r->listener, sizeof(r->listener), "%s", listener);
	snprintf(r->proto, sizeof(r->proto), "%s", proto);
	r->client.family = AF_INET;
	memcpy(r->client.addr, r->peer.addr, 4);
	r->client_port = r->peer.port;
	r->state = 1;				/* serving */
	r->pstate = zeros;
	r->pstate_len = pstate_len;
	r->pstate_version = version;
	r->queued = (const unsigned char *)queued;
	r->queued_len = (uint32_t)strlen(queued);
	r->out = r->queued_len;
}

/*
 * Per connection: carried with the output it was owed, or closed
 * cleanly (the output owed sent first, then EOF) when its listener's
 * protocol changed or its protocol state has another version; each
 * counted in the log.
 */
START_TEST(test_state_checked_per_connection)
{
	int client[3], fds[4], pe = eo_port(), po = eo_port(), i;
	struct ho_conn r;
	struct ho_buf b;
	struct eod_opts o;
	struct eod *d;
	char buf[64];

	memset(&b, 0, sizeof(b));
	ho_put_header(&b, 3);
	fds[0] = conn_pair(&client[0]);
	record_for(fds[0], &r, "echo", "echo", 0, 0, "owed");
	ho_put_conn(&b, &r);
	fds[1] = conn_pair(&client[1]);
	record_for(fds[1], &r, "oracle", "oracle", 8, 99, "old? Yes.\r\n");
	ho_put_conn(&b, &r);
	fds[2] = conn_pair(&client[2]);
	record_for(fds[2], &r, "echo", "oracle", 8, 1, "bye");
	ho_put_conn(&b, &r);
	fds[3] = state_fd(b.data, b.len);
	ho_buf_free(&b);
	memset(&o, 0, sizeof(o));
	o.listen_fds = fds;
	o.nlisten = 4;
	o.listen_names = "eo-conn:eo-conn:eo-conn:eo-state";
	d = eod_start_opts(&o, CONF, pe, po, "");
	for (i = 0; i < 4; i++)
		close(fds[i]);
	ck_assert(eod_log_has(d, "restart: 1 connection carried over"));
	ck_assert(eod_log_has(d, "restart: 1 connection of listener "
	    "\"oracle\" closed: unknown protocol state version"));
	ck_assert(eod_log_has(d, "restart: 1 connection of listener "
	    "\"echo\" closed: its listener's protocol changed"));
	expect_line(client[0], "owed");
	eo_expect_echo(client[0], "and on");
	expect_line(client[1], "old? Yes.\r\n");
	ck_assert_int_eq(wait_eof(client[1], eo_ms(5000)), 1);
	ck_assert_uint_eq(recv_n(client[2], buf, 3, eo_ms(5000)), 3);
	ck_assert_int_eq(memcmp(buf, "bye", 3), 0);
	ck_assert_int_eq(wait_eof(client[2], eo_ms(5000)), 1);
	for (i = 0; i < 3; i++)
		close(client[i]);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * The next notification containing what, with the descriptors it
 * carries (SCM_RIGHTS) in fds; how many, or -1 if none came in time.
 * The test plays systemd's part of the fd store.
 */
static int
notify_fds(struct eod *d, const char *what, int *fds, int maxfds)
{
	char buf[4096];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 253)];
	} cm;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr msg;
		struct pollfd p = { d->notify_fd, POLLIN, 0 };
		struct cmsghdr *c;
		ssize_t n;
		int nfds = 0;

		if (poll(&p, 1, eo_ms(200)) <= 0)
			continue;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		if ((n = recvmsg(d->notify_fd, &msg, MSG_CMSG_CLOEXEC)) <= 0)
			continue;
		buf[n] = '\0';
		for (c = CMSG_FIRSTHDR(&msg); c != NULL;
		    c = CMSG_NXTHDR(&msg, c)) {
			int i, k = (int)((c->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int));

			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;

			for (i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int),
				    sizeof(int));
				if (strstr(buf, what) != NULL && nfds < maxfds)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
		if (strstr(buf, what) != NULL)
			return nfds;
	}
	return -1;
}

/*
 * Under systemd the daemon keeps its own listening sockets in the fd
 * store, so that after a crash (kill -9) clients queue in systemd's
 * copy instead of being refused, and the next process serves them.
 * The test plays systemd: it keeps the socket sent with FDSTORE=1,
 * kills the daemon, connects, and starts a new one with that socket as
 * LISTEN_FDS, named as stored.
 */
START_TEST(test_fdstore_listeners_survive_a_crash)
{
	int pe = eo_port(), po = eo_port(), stored[4], n, client, fd;
	struct eod_opts o;
	struct eod *d;

	/* eod_start() reads up to READY=1, past the first stores: a
	   reload stores the sockets again. */
	d = eod_start(CONF, pe, po, "");
	notify_flush(d);
	eod_signal(d, SIGHUP);
	n = notify_fds(d, "FDSTORE=1\nFDNAME=eo-l-echo", stored, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(eod_stop_sig(d, SIGKILL, eo_ms(5000)), -1);
	eod_free(d);

	/* No daemon now: the client waits in the stored socket's queue. */
	client = tcp_open("127.0.0.1", pe);
	ck_assert_int_eq(send_all(client, "queued", 6), 0);
	memset(&o, 0, sizeof(o));
	o.listen_fds = stored;
	o.nlisten = 1;
	o.listen_names = "eo-l-echo";
	d = eod_start_opts(&o, CONF, pe, po, "");
	close(stored[0]);
	expect_line(client, "queued");
	close(client);
	fd = tcp_open("127.0.0.1", po);
	ck_assert_int_eq(send_all(fd, "ok?", 3), 0);
	expect_line(fd, "ok? Yes.\r\n");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A real stop takes the listening sockets out of the store before it
 * closes them (systemd's copy would go on queueing clients nobody
 * serves); a reload takes out those of a listener it removes.
 */
START_TEST(test_fdstore_removed_at_stop_and_reload)
{
	int pe = eo_port(), po = eo_port(), px = eo_port(), fds[4];
	char extra[256];
	struct eod *d;

	snprintf(extra, sizeof(extra), ",\n  { name = \"gone\"; protocol = "
	    "\"echo\"; port = %d; bind = [\"127.0.0.1\"]; }", px);
	d = eod_start(CONF, pe, po, extra);
	eod_write_conf(d, CONF, pe, po, "");
	notify_flush(d);
	eod_signal(d, SIGHUP);
	ck_assert_int_eq(notify_fds(d, "FDSTOREREMOVE=1\nFDNAME=eo-l-gone",
	    fds, 4), 0);
	ck_assert_int_eq(notify_fds(d, "READY=1", fds, 4), 0);
	eod_signal(d, SIGTERM);
	ck_assert_int_eq(notify_fds(d, "FDSTOREREMOVE=1\nFDNAME=eo-l-echo",
	    fds, 4), 0);
	/* After the removal, not before. */
	ck_assert_int_eq(notify_fds(d, "STOPPING=1", fds, 4), 0);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	eod_free(d);
}
END_TEST

/*
 * A damaged protocol state: a chargen position past the end of its
 * cycle.  The stream goes on from the start of the cycle, every byte a
 * chargen byte, never a read past the cycle (which crashed the daemon).
 */
START_TEST(test_chargen_position_out_of_cycle_not_fatal)
{
	static const unsigned char pos[4] = { 0xff, 0xff, 0xff, 0xff };
	int client, fds[2], pe = eo_port(), po = eo_port(), pc = eo_port();
	unsigned char got[8000];
	char extra[256];
	struct ho_conn r;
	struct ho_buf b;
	struct eod_opts o;
	struct eod *d;
	size_t k;

	memset(&b, 0, sizeof(b));
	ho_put_header(&b, 1);
	fds[0] = conn_pair(&client);
	record_for(fds[0], &r, "cg", "chargen", sizeof(pos), 1, "");
	r.pstate = pos;
	ho_put_conn(&b, &r);
	fds[1] = state_fd(b.data, b.len);
	ho_buf_free(&b);
	memset(&o, 0, sizeof(o));
	o.listen_fds = fds;
	o.nlisten = 2;
	o.listen_names = "eo-conn:eo-state";
	snprintf(extra, sizeof(extra), ",\n  { name = \"cg\"; protocol = "
	    "\"chargen\"; port = %d; bind = [\"127.0.0.1\"]; }", pc);
	d = eod_start_opts(&o, CONF, pe, po, extra);
	close(fds[0]);
	close(fds[1]);
	ck_assert(eod_log_has(d, "restart: 1 connection carried over"));
	ck_assert_uint_eq(recv_n(client, got, sizeof(got), eo_ms(10000)),
	    sizeof(got));
	/* The first line of the cycle, then the second. */
	for (k = 0; k < 74 * 2; k++) {
		size_t line = k / 74, col = k % 74;
		unsigned char want = col == 72 ? '\r' : col == 73 ? '\n' :
		    (unsigned char)(' ' + (line + col) % 95);

		ck_assert_msg(got[k] == want, "byte %zu: %d, not %d", k,
		    got[k], want);
	}
	ck_assert(eod_running(d));
	close(client);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A saved connection whose descriptor did not come (the fd store keeps
 * no more than FileDescriptorStoreMax= and drops the rest without a
 * word to the sender): the new process says how many were lost.
 */
START_TEST(test_saved_connection_without_descriptor_logged)
{
	int client[2], fds[3], pe = eo_port(), po = eo_port();
	struct ho_conn r;
	struct ho_buf b;
	struct eod_opts o;
	struct eod *d;

	memset(&b, 0, sizeof(b));
	ho_put_header(&b, 2);
	fds[0] = conn_pair(&client[0]);
	record_for(fds[0], &r, "echo", "echo", 0, 0, "");
	ho_put_conn(&b, &r);
	fds[1] = conn_pair(&client[1]);
	record_for(fds[1], &r, "echo", "echo", 0, 0, "");
	ho_put_conn(&b, &r);
	close(fds[1]);			/* dropped on the way */
	fds[1] = state_fd(b.data, b.len);
	ho_buf_free(&b);
	memset(&o, 0, sizeof(o));
	o.listen_fds = fds;
	o.nlisten = 2;
	o.listen_names = "eo-conn:eo-state";
	d = eod_start_opts(&o, CONF, pe, po, "");
	close(fds[0]);
	close(fds[1]);
	ck_assert(eod_log_has(d, "restart: 1 connection carried over"));
	ck_assert(eod_log_has(d, "restart: 1 connection lost: saved, but "
	    "not handed over"));
	eo_expect_echo(client[0], "kept");
	close(client[0]);
	close(client[1]);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Connections in their last states: an echo client that has sent EOF
 * while it is still owed most of its bytes (the daemon flushing, or the
 * kernel holding them), and a
 * chargen client mid-stream that reads slowly.  After the restart the
 * first gets every byte, in order, then EOF; the second's stream goes
 * on where it was, every byte the next one of the cycle.
 */
START_TEST(test_sigusr2_flushing_after_eof_and_chargen_mid_stream)
{
	int pe = eo_port(), po = eo_port(), pc = eo_port(), fe, fc, eof;
	unsigned char *got = malloc(200000), *cg = malloc(200000);
	unsigned char buf[CHUNK];
	size_t k, n, sent = 0, line, col;
	char extra[256];
	struct eod *d;

	snprintf(extra, sizeof(extra), ",\n  { name = \"cg\"; protocol = "
	    "\"chargen\"; port = %d; bind = [\"127.0.0.1\"]; }", pc);
	d = eod_start(CONF, pe, po, extra);
	fe = tcp_open_rcvbuf("127.0.0.1", pe, 4096);
	while (sent < 100 * CHUNK) {
		fill(buf, 5, sent, CHUNK);
		ck_assert_int_eq(send_all(fe, buf, CHUNK), 0);
		sent += CHUNK;
	}
	ck_assert_int_eq(shutdown(fe, SHUT_WR), 0);
	fc = tcp_open_rcvbuf("127.0.0.1", pc, 4096);
	ck_assert_uint_eq(recv_n(fc, cg, 1000, eo_ms(5000)), 1000);
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	/* The echo client's may be done already, its bytes all in the
	   kernel's buffers: then only chargen's is carried. */
	ck_assert(eod_log_has(d, " carried over"));
	ck_assert(!eod_log_has(d, "closed: "));
	n = recv_all(fe, got, 200000, eo_ms(10000), &eof);
	ck_assert_uint_eq(n, sent);
	ck_assert_int_eq(eof, 1);
	for (k = 0; k < sent; k += CHUNK) {
		fill(buf, 5, k, CHUNK);
		ck_assert_msg(memcmp(got + k, buf, CHUNK) == 0,
		    "echo: bytes at %zu differ", k);
	}
	ck_assert_uint_eq(recv_n(fc, cg + 1000, 199000, eo_ms(10000)),
	    199000);
	for (k = 0; k < 200000; k++) {
		line = k / 74 % 95;
		col = k % 74;
		ck_assert_msg(cg[k] == (col == 72 ? '\r' : col == 73 ? '\n' :
		    (unsigned char)(' ' + (line + col) % 95)),
		    "chargen: byte %zu is off the cycle", k);
	}
	close(fe);
	close(fc);
	free(got);
	free(cg);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* The metrics page, fetched once; the response in buf. */
static void
get_metrics(int port, char *buf, size_t cap)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	int fd = tcp_open("127.0.0.1", port), eof;
	size_t n;

	ck_assert_int_eq(send_all(fd, req, sizeof(req) - 1), 0);
	n = recv_all(fd, buf, cap - 1, eo_ms(10000), &eof);
	buf[n] = '\0';
	close(fd);
	ck_assert_msg(strncmp(buf + 8, " 200", 4) == 0, "%.40s", buf);
}

/*
 * A metrics listener's socket is handed over too (evhttp serves it in
 * the new process), and the carried connections are counted there: the
 * gauge says 2 after the restart as before it.
 */
START_TEST(test_sigusr2_metrics_served_and_counting)
{
	static const char want[] = "\necho_oracled_connections{listener="
	    "\"echo\",protocol=\"echo\"} 2\n";
	int pe = eo_port(), po = eo_port(), pm = eo_port(), a, b;
	static char buf[1 << 16];
	char extra[256];
	struct eod *d;

	snprintf(extra, sizeof(extra), ",\n  { name = \"m\"; protocol = "
	    "\"metrics\"; port = %d; bind = [\"127.0.0.1\"]; }", pm);
	d = eod_start(CONF, pe, po, extra);
	a = tcp_open("127.0.0.1", pe);
	b = tcp_open("127.0.0.1", pe);
	eo_expect_echo(a, "a");
	eo_expect_echo(b, "b");
	get_metrics(pm, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, want));
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 2 connections carried over"));
	get_metrics(pm, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
	eo_expect_echo(a, "a2");
	eo_expect_echo(b, "b2");
	close(a);
	close(b);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Behind a proxy: a connection still in its PROXY header at the restart
 * finishes it in the new process and is served; one already past it
 * stays counted under the client its header named, so that the same
 * client is refused a second connection after the restart.
 */
START_TEST(test_sigusr2_proxy_phase_and_source_carried)
{
	static const char hb[] = "PROXY TCP4 192.0.2.9 127.0.0.1 5555 7\r\n";
	int pe = eo_port(), a, b, c;
	struct eod *d;

	d = eod_start("listeners = ( { name = \"echo\"; protocol = \"echo\"; "
	    "port = %d; bind = [\"127.0.0.1\"]; proxy_protocol = true; "
	    "proxy_from = [\"127.0.0.1\"]; "
	    "max_connections_per_source = 1; } );\n", pe);
	b = tcp_open("127.0.0.1", pe);
	ck_assert_int_eq(send_all(b, hb, sizeof(hb) - 1), 0);
	eo_expect_echo(b, "b");
	a = tcp_open("127.0.0.1", pe);
	ck_assert_int_eq(send_all(a, "PROXY TCP4 192.0", 16), 0);
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 2 connections carried over"));
	ck_assert_int_eq(send_all(a, ".2.7 127.0.0.1 5555 7\r\n", 23), 0);
	eo_expect_echo(a, "a");
	eo_expect_echo(b, "b2");
	c = tcp_open("127.0.0.1", pe);
	ck_assert_int_eq(send_all(c, hb, sizeof(hb) - 1), 0);
	ck_assert_int_ne(wait_eof(c, eo_ms(5000)), 0);	/* refused */
	close(a);
	close(b);
	close(c);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * At max_connections when SIGUSR2 comes: both connections carried and
 * counted, so that a third is still refused after the restart; once
 * one of them closes, a newcomer is served again.
 */
START_TEST(test_sigusr2_at_max_connections)
{
	int pe = eo_port(), a, b, c, i;
	struct eod *d;
	char ch;

	d = eod_start("max_connections = 2;\nlisteners = ( { name = \"echo\"; "
	    "protocol = \"echo\"; port = %d; bind = [\"127.0.0.1\"]; } );\n",
	    pe);
	a = tcp_open("127.0.0.1", pe);
	b = tcp_open("127.0.0.1", pe);
	eo_expect_echo(a, "a");
	eo_expect_echo(b, "b");
	notify_flush(d);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(15000)), 0);
	ck_assert(eod_log_has(d, "restart: 2 connections carried over"));
	c = tcp_open("127.0.0.1", pe);
	ck_assert_int_ne(wait_eof(c, eo_ms(5000)), 0);	/* refused */
	close(c);
	eo_expect_echo(a, "a2");
	close(a);
	for (i = 0; i < 100; i++) {
		c = tcp_open("127.0.0.1", pe);
		if (send_all(c, "x", 1) == 0 && recv_some(c, &ch, 1,
		    eo_ms(1000)) == 1)
			break;
		close(c);
		c = -1;
		poll(NULL, 0, 20);
	}
	ck_assert_int_ne(c, -1);
	eo_expect_echo(b, "b2");
	close(b);
	close(c);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A new configuration that passes -t but cannot be applied: it adds a
 * listener on a port another program holds.  The restart is refused
 * before the exec and the daemon serves on, connections and all; the
 * new process used to find out itself, too late, and exit with every
 * connection.
 */
START_TEST(test_sigusr2_unbindable_listener_refused)
{
	int pe = eo_port(), po = eo_port(), px = eo_port(), fd, taken;
	char extra[256];
	struct eod *d = eod_start(CONF, pe, po, "");

	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "before");
	ck_assert_int_ne(taken = eo_listen("127.0.0.1", px), -1);
	snprintf(extra, sizeof(extra), ",\n  { name = \"new\"; protocol = "
	    "\"echo\"; port = %d; bind = [\"127.0.0.1\"]; }", px);
	eod_write_conf(d, CONF, pe, po, extra);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_log_wait(d, "restart refused", eo_ms(10000)), 0);
	/* Still the process that was started (waitpid() would have reaped
	   it), and it never began the hand-over. */
	ck_assert(eod_running(d));
	ck_assert(!eod_log_has(d, "handing"));
	eo_expect_echo(fd, "after");
	close(fd);
	close(taken);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
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
	tcase_add_test(tc, test_sigusr2_after_parking_socket_activated_listener);
	tcase_add_test(tc, test_unknown_state_version_closes_inherited);
	tcase_add_test(tc, test_garbage_state_closes_inherited);
	tcase_add_test(tc, test_state_checked_per_connection);
	tcase_add_test(tc, test_sigusr2_keeps_udp_socket);
	tcase_add_test(tc, test_sigusr2_per_source_count_carried);
	tcase_add_test(tc, test_sigusr2_exec_failure_serves_on);
	tcase_add_test(tc, test_malformed_fd_list_refused);
	tcase_add_test(tc, test_sigusr2_twice_during_exec_not_fatal);
	tcase_add_test(tc, test_sigusr2_then_sighup_at_once_restarts);
	tcase_add_test(tc, test_sigusr2_question_over_new_max_question_length);
	tcase_add_test(tc, test_sigterm_hung_bus_stops_in_bound);
	tcase_add_test(tc, test_chargen_position_out_of_cycle_not_fatal);
	tcase_add_test(tc, test_saved_connection_without_descriptor_logged);
	tcase_add_test(tc, test_sigusr2_flushing_after_eof_and_chargen_mid_stream);
	tcase_add_test(tc, test_sigusr2_metrics_served_and_counting);
	tcase_add_test(tc, test_sigusr2_proxy_phase_and_source_carried);
	tcase_add_test(tc, test_sigusr2_at_max_connections);
	tcase_add_test(tc, test_sigusr2_unbindable_listener_refused);
	tcase_add_test(tc, test_fdstore_listeners_survive_a_crash);
	tcase_add_test(tc, test_fdstore_removed_at_stop_and_reload);
	suite_add_tcase(s, tc);
	return check_run(s);
}
