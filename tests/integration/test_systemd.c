/*
 * What the daemon says to systemd, and takes from it, seen without
 * systemd: the harness is the notify socket, passes listening sockets
 * the way socket activation does, and sets JOURNAL_STREAM and
 * WATCHDOG_USEC.  (tests/systemd/ runs the real thing.)
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include "harness.h"
#include "check_main.h"

/* Served on the passed sockets, not on the config's own addresses. */
START_TEST(test_activation)
{
	int pe = eo_port(), po = eo_port(), other = eo_port(), more = eo_port();
	int fds[2] = { eo_listen("127.0.0.1", pe), eo_listen("::1", po) };
	struct eod_opts o = { .listen_fds = fds, .nlisten = 2,
	    .listen_names = "echo:oracle" };
	struct eod *d = eod_start_opts(&o, "listeners = (\n"
	    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; },\n"
	    "{ name = \"oracle\"; protocol = \"oracle\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", pe, other);
	char want[128], buf[64];
	int fd;

	close(fds[0]);
	close(fds[1]);
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "activated");
	close(fd);
	fd = tcp_open("::1", po);
	ck_assert_int_eq(send_all(fd, "Passed?", 7), 0);
	ck_assert_uint_eq(recv_n(fd, buf, 8, eo_ms(5000)), 8);
	ck_assert_int_eq(memcmp(buf, "Passed? ", 8), 0);
	close(fd);
	fd = tcp_connect("127.0.0.1", other);
	ck_assert_int_eq(fd, -1);	/* the config's address: not bound */
	snprintf(want, sizeof(want), "listener echo (echo): listening on "
	    "127.0.0.1:%d (socket from systemd)", pe);
	ck_assert(eod_log_has(d, want));

	/* A reload keeps them, and binds a listener it adds itself. */
	eod_write_conf(d, "listeners = (\n"
	    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; },\n"
	    "{ name = \"oracle\"; protocol = \"oracle\"; port = %d;"
	    "  bind = \"127.0.0.1\"; },\n"
	    "{ name = \"more\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", pe, other, more);
	ck_assert_int_eq(eod_reload(d), 0);
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "kept");
	close(fd);
	fd = tcp_open("127.0.0.1", more);
	eo_expect_echo(fd, "added");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A bound UDP socket on 127.0.0.1:port, as ListenDatagram= passes. */
static int
udp_bound(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

#define UDP_CONF "listeners = (\n"					\
	"{ name = \"echo\"; protocol = \"echo\"; port = %d;"		\
	"  bind = \"127.0.0.1\"; },\n"					\
	"{ name = \"echo-udp\"; protocol = \"echo\"; port = %d;"	\
	"  transport = \"udp\"; bind = \"127.0.0.1\"; } );\n"

/* Issue 11: ListenDatagram= sockets are adopted by name, like stream
   ones, served over UDP, and kept by a reload. */
START_TEST(test_activation_udp)
{
	int pe = eo_port(), pu = eo_port(), other = eo_port();
	int fds[2] = { eo_listen("127.0.0.1", pe), udp_bound(pu) };
	struct eod_opts o = { .listen_fds = fds, .nlisten = 2,
	    .listen_names = "echo:echo-udp" };
	struct eod *d = eod_start_opts(&o, UDP_CONF, pe, other);
	struct sockaddr_in sin;
	char want[128], buf[64];
	int c, round;

	close(fds[0]);
	close(fds[1]);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)pu);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	for (round = 0; round < 2; round++) {
		ck_assert_int_eq(send(c, "datagram", 8, 0), 8);
		ck_assert_uint_eq(recv_n(c, buf, 8, eo_ms(5000)), 8);
		ck_assert_int_eq(memcmp(buf, "datagram", 8), 0);
		if (round == 0) {
			eod_write_conf(d, UDP_CONF, pe, other);
			ck_assert_int_eq(eod_reload(d), 0);
		}
	}
	snprintf(want, sizeof(want), "listener echo-udp (echo): listening on "
	    "127.0.0.1:%d/udp (socket from systemd)", pu);
	ck_assert(eod_log_has(d, want));
	close(c);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 24 #3: the README's recipe (the three socket units, the shipped
 * config with its metrics listener) exited 78, "listener metrics has no
 * socket from systemd".  A listener without a socket is bound by the
 * daemon itself, as nginx and HAProxy do; under the socket-only drop-in
 * a reload that adds one is refused, naming the drop-in.
 */
START_TEST(test_activation_listener_without_socket_bound_itself)
{
	int pe = eo_port(), po = eo_port(), more = eo_port();
	int fds[1] = { eo_listen("127.0.0.1", pe) };
	struct eod_opts o = { .listen_fds = fds, .nlisten = 1,
	    .listen_names = "echo" };
	struct eod *d = eod_start_opts(&o, "listeners = (\n"
	    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; },\n"
	    "{ name = \"oracle\"; protocol = \"oracle\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", pe, po);
	char buf[64];
	int fd;

	close(fds[0]);
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "from systemd");
	close(fd);
	fd = tcp_open("127.0.0.1", po);
	ck_assert_int_eq(send_all(fd, "Bound?", 6), 0);
	ck_assert_uint_eq(recv_n(fd, buf, 7, eo_ms(5000)), 7);
	ck_assert_int_eq(memcmp(buf, "Bound? ", 7), 0);
	close(fd);
	ck_assert(eod_log_has(d, "listener \"oracle\" has no socket from "
	    "systemd: bound by the daemon itself"));
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);

	/* Socket-only: every listener from systemd, at a reload too. */
	fds[0] = eo_listen("127.0.0.1", pe);
	setenv("ECHO_ORACLED_SOCKET_ONLY", "1", 1);
	d = eod_start_opts(&o, "listeners = ( { name = \"echo\"; "
	    "protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n",
	    pe);
	unsetenv("ECHO_ORACLED_SOCKET_ONLY");
	close(fds[0]);
	eod_write_conf(d, "listeners = (\n"
	    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; },\n"
	    "{ name = \"more\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", pe, more);
	ck_assert_int_eq(eod_reload(d), 1);
	ck_assert(eod_log_has(d, "listener \"more\" has no socket from "
	    "systemd, and the socket-only drop-in"));
	ck_assert_int_eq(tcp_connect("127.0.0.1", more), -1);
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "still served");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A socket for no listener, a listener without a socket (socket-only):
   exit 78. */
START_TEST(test_activation_mismatch)
{
	static const struct {
		const char	*names;
		const char	*words;
	} cases[] = {
		{ "echo:chargen", "systemd passed a socket named \"chargen\"" },
		/* Issue 24 #9: it said "has no  listener". */
		{ "echo:chargen", "has no listener of that name" },
		{ "echo", "listener \"oracle\" has no socket from systemd, "
		    "and the socket-only drop-in "
		    "(echo-oracled-socket-only.conf" },
		{ NULL, "socket named \"unknown\"" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int pe = eo_port(), po = eo_port();
		int fds[2] = { eo_listen("127.0.0.1", pe),
		    eo_listen("127.0.0.1", po) };
		struct eod_opts o = { .listen_fds = fds,
		    .nlisten = i == 2 ? 1 : 2, .listen_names = cases[i].names,
		    .expect_fail = 1 };
		struct eod *d;

		/* The socket-only drop-in's Environment= line. */
		if (i == 2)
			setenv("ECHO_ORACLED_SOCKET_ONLY", "1", 1);
		d = eod_start_opts(&o, "listeners = (\n"
		    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
		    "  bind = \"127.0.0.1\"; },\n"
		    "{ name = \"oracle\"; protocol = \"oracle\"; port = %d;"
		    "  bind = \"127.0.0.1\"; } );\n", pe, po);

		unsetenv("ECHO_ORACLED_SOCKET_ONLY");
		ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 78);
		ck_assert_msg(eod_log_has(d, cases[i].words), "case %zu", i);
		close(fds[0]);
		close(fds[1]);
		eod_free(d);
	}
}
END_TEST

/*
 * Issue 10 #7: a UNIX stream socket passed by systemd was accepted,
 * though the message said TCP (served with peer "?" and no per-source
 * limit).  It is refused, exit 78, with a message that says what to do.
 */
START_TEST(test_activation_unix_socket_refused)
{
	int pe = eo_port(), po = eo_port();
	int fds[2] = { eo_listen("127.0.0.1", pe), -1 };
	struct sockaddr_un sun;
	struct eod_opts o = { .listen_fds = fds, .nlisten = 2,
	    .listen_names = "echo:oracle", .expect_fail = 1 };
	struct eod *d;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/eo-unix.%d",
	    (int)getpid());
	unlink(sun.sun_path);
	fds[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fds[1], 0);
	ck_assert_int_eq(bind(fds[1], (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	ck_assert_int_eq(listen(fds[1], 8), 0);
	d = eod_start_opts(&o, "listeners = (\n"
	    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; },\n"
	    "{ name = \"oracle\"; protocol = \"oracle\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", pe, po);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 78);
	ck_assert(eod_log_has(d, "(oracle) is neither a listening TCP socket"));
	close(fds[0]);
	close(fds[1]);
	unlink(sun.sun_path);
	eod_free(d);
}
END_TEST

/* READY=1 with STATUS=, RELOADING=1 with MONOTONIC_USEC=, STOPPING=1. */
START_TEST(test_notify)
{
	int pe = eo_port(), fd;
	struct eod *d = eod_start("listeners = ( { name = \"echo\"; protocol ="
	    " \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n", pe);

	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "x");
	/* The status follows the connection count. */
	ck_assert_int_eq(eod_wait_notify(d, "serving 1 listener (echo);"
	    " 1 connection", eo_ms(5000)), 0);
	ck_assert_int_eq(kill(d->pid, SIGHUP), 0);
	ck_assert_int_eq(eod_wait_notify(d, "MONOTONIC_USEC=", eo_ms(5000)),
	    0);
	ck_assert_int_eq(eod_wait_notify(d, "READY=1", eo_ms(5000)), 0);
	ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
	ck_assert_int_eq(eod_wait_notify(d, "STOPPING=1", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	close(fd);
	eod_free(d);
}
END_TEST

START_TEST(test_watchdog)
{
	int pe = eo_port();
	struct eod_opts o = { .watchdog_usec = 1000000 };
	struct eod *d = eod_start_opts(&o, "listeners = ( { name = \"echo\";"
	    " protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n",
	    pe);

	/* Fed at half the period. */
	ck_assert_int_eq(eod_wait_notify(d, "WATCHDOG=1", eo_ms(3000)), 0);
	ck_assert_int_eq(eod_wait_notify(d, "WATCHDOG=1", eo_ms(3000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Under journald: "<N>" priority prefixes, no timestamps of our own. */
START_TEST(test_journal_prefix)
{
	int pe = eo_port();
	struct eod_opts o = { .journal = 1 };
	struct eod *d = eod_start_opts(&o, "listeners = ( { name = \"echo\";"
	    " protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n",
	    pe);
	char want[128];

	snprintf(want, sizeof(want), "<6>listener echo (echo): listening on "
	    "127.0.0.1:%d\n", pe);
	ck_assert_int_eq(eod_stop(d), 0);
	ck_assert(eod_log_has(d, want));
	ck_assert(!eod_log_has(d, " info: "));
	eod_free(d);
}
END_TEST

/* A connect() to 127.0.0.1:port under way: its socket. */
static int
connect_start(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    -1);
	return fd;
}

/* 1: the connection completed within ms, 0: it is still under way. */
static int
connect_done(int fd, int ms)
{
	struct pollfd p = { fd, POLLOUT, 0 };

	return poll(&p, 1, ms) == 1;
}

#define CONF_PARK \
    "listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;" \
    " bind = \"127.0.0.1\"; enabled = %s; },\n" \
    "{ name = \"other\"; protocol = \"echo\"; port = %d;" \
    " bind = \"127.0.0.1\"; } );\n"

/*
 * Review of the reload changes #5: a socket from systemd whose listener
 * a reload disabled stayed open (systemd holds it) and kept completing
 * handshakes that nobody accepted: those clients hung.  Now its SYNs
 * are dropped, so a client's connect() does not complete; served
 * again, its retried SYN gets through.  Issue 29: without CAP_NET_ADMIN
 * no filter drops them; the queue shrinks to the one place Linux keeps
 * above a backlog of 0, so of three clients one may complete and wait,
 * never more, and all three are served again.
 */
static void
parked_drops_syns(int root)
{
	int pe = eo_port(), po = eo_port(), fd[3], done = 0, i;
	int fds[2] = { eo_listen("127.0.0.1", pe),
	    eo_listen("127.0.0.1", po) };
	struct eod_opts o = { .listen_fds = fds, .nlisten = 2,
	    .listen_names = "echo:other", .root = root };
	struct eod *d = eod_start_opts(&o, CONF_PARK, pe, "true", po);

	close(fds[0]);
	close(fds[1]);
	eod_write_conf(d, CONF_PARK, pe, "false", po);
	ck_assert_int_eq(eod_reload(d), 0);
	for (i = 0; i < 3; i++)
		fd[i] = connect_start(pe);
	for (i = 0; i < 3; i++)
		done += connect_done(fd[i], eo_ms(500));
	ck_assert_msg(done <= (root ? 0 : 1), "a parked socket completed %d "
	    "handshakes%s", done, root ? " as root" : "");
	eod_write_conf(d, CONF_PARK, pe, "true", po);
	ck_assert_int_eq(eod_reload(d), 0);
	/* The clients retry their SYN after about a second. */
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(connect_done(fd[i], eo_ms(10000)), 1);
		fcntl(fd[i], F_SETFL, 0);
		eo_expect_echo(fd[i], "served again");
		close(fd[i]);
	}
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

/* Root: CAP_NET_ADMIN, so the filter, which lets no client through. */
START_TEST(test_parked_systemd_socket_drops_syns)
{
	parked_drops_syns(0);
	if (eo_root())
		parked_drops_syns(1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("systemd protocol");
	TCase *tc = tcase_create("systemd");

	tcase_set_timeout(tc, eo_ms(60));
	tcase_add_test(tc, test_activation);
	tcase_add_test(tc, test_activation_udp);
	tcase_add_test(tc, test_activation_listener_without_socket_bound_itself);
	tcase_add_test(tc, test_activation_mismatch);
	tcase_add_test(tc, test_activation_unix_socket_refused);
	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_watchdog);
	tcase_add_test(tc, test_journal_prefix);
	tcase_add_test(tc, test_parked_systemd_socket_drops_syns);
	suite_add_tcase(s, tc);
	return check_run(s);
}
