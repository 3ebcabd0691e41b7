/*
 * The server's own lines and signals: the descriptor limit in effect,
 * the start line, SIGUSR1's counters, SIGUSR2, singular and plural;
 * which thread accepts, and from which sockets.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "harness.h"
#include "check_main.h"

/*
 * Issue 10 #2: setrlimit's result was ignored and the warning quoted
 * the limit asked for.  The limit in effect is logged, and how many
 * connections it leaves room for.
 */
START_TEST(test_nofile_limit_in_effect)
{
	int p = eo_port();
	struct eod_opts o = { .nofile = 256 };
	struct eod *d = eod_start_opts(&o, "max_connections = 10000;\n"
	    "listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    " bind = \"127.0.0.1\"; } );\n", p);

	/* valgrind keeps some descriptors for itself: the limit the
	   daemon sees is lower, and so the figures. */
	if (getenv("EO_WRAPPER") != NULL)
		ck_assert(eod_log_has(d, "max_connections is 10000 but only "));
	else
		ck_assert(eod_log_has(d, "max_connections is 10000 but only 256 "
		    "file descriptors are allowed (RLIMIT_NOFILE): room for "
		    "about 192 connections; clients beyond are refused"));
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);

	d = eod_start_opts(&o, "max_connections = 100;\nlisteners = ( {"
	    " name = \"echo\"; protocol = \"echo\"; port = %d;"
	    " bind = \"127.0.0.1\"; } );\n", p);
	ck_assert(eod_log_has(d, getenv("EO_WRAPPER") != NULL ?
	    "room for max_connections (100)" : "file descriptors: "
	    "RLIMIT_NOFILE is 256, room for max_connections (100)"));
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 16: the start line names the configuration file; "1
 * connections" only where plural.
 */
START_TEST(test_start_line_and_plurals)
{
	int p = eo_port(), fd;
	struct eod *d = eod_start("listeners = ( { name = \"echo\"; protocol ="
	    " \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n", p);
	char want[256];

	snprintf(want, sizeof(want), "started: 1 listener, ");
	ck_assert(eod_log_has(d, want));
	snprintf(want, sizeof(want), ", configuration %s\n", d->conf);
	ck_assert_msg(eod_log_has(d, want), "no \"%s\"", want);
	fd = tcp_open("127.0.0.1", p);
	eo_expect_echo(fd, "one");
	ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
	ck_assert_int_eq(eod_log_wait(d, "stopping (SIGTERM): 1 connection, ",
	    eo_ms(5000)), 0);
	close(fd);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 16: SIGUSR1 killed the daemon (its default action).  It logs
 * the counters in one line, per listener too, and serves on; SIGUSR2
 * (once ignored with a line) restarts in place, the connection
 * carried.  A per-source refusal names the client.
 */
START_TEST(test_sigusr1_counters)
{
	int p = eo_port(), q = eo_port(), held, fd;
	struct eod *d = eod_start("listeners = (\n"
	    "{ name = \"echo\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; max_connections_per_source = 1; },\n"
	    "{ name = \"other\"; protocol = \"echo\"; port = %d;"
	    "  bind = \"127.0.0.1\"; } );\n", p, q);

	held = tcp_open("127.0.0.1", p);
	eo_expect_echo(held, "held");
	fd = tcp_open("127.0.0.1", p);		/* refused: one per source */
	ck_assert_int_ne(wait_eof(fd, eo_ms(5000)), 0);
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "max_connections_per_source (1): "
	    "127.0.0.1, the latest", eo_ms(5000)), 0);
	ck_assert_int_eq(kill(d->pid, SIGUSR1), 0);
	ck_assert_int_eq(eod_log_wait(d, "counters: 1 open, 1 accepted, 1 "
	    "refused (max_connections 0, listener max_connections 0, "
	    "max_connections_per_source 1, out of file descriptors 0, "
	    "shutting down or out of memory 0, not in proxy_from 0, denied by "
	    "allow/deny 0, bad PROXY header 0, TLS handshake failed or timed "
	    "out 0), 0 evicted, 0 timed out; open per listener: echo 1, "
	    "other 0", eo_ms(5000)), 0);
	ck_assert_int_eq(kill(d->pid, SIGUSR2), 0);
	ck_assert_int_eq(eod_log_wait(d, "restart: 1 connection carried over",
	    eo_ms(15000)), 0);
	eo_expect_echo(held, "still served");
	fd = tcp_open("127.0.0.1", q);
	eo_expect_echo(fd, "new clients too");
	close(fd);
	close(held);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Times the thread tid of the daemon has given up the CPU to wait. */
static long
thread_waits(const struct eod *d, pid_t tid)
{
	char path[64], line[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)d->pid,
	    (int)tid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * Issue 28: the main thread accepted every connection and woke a
 * worker for it, two task switches per short connection (a balancer's
 * health check, a one-shot echo), a fifth of the daemon's time.  The
 * workers accept now: 300 connect-echo-close cycles, one after the
 * other, wake the main thread no more than its own timers do (a few
 * times a second), where they woke it once each.  The counters still
 * count them all.
 */
START_TEST(test_short_connections_leave_main_thread_asleep)
{
	int p = eo_port(), i, fd;
	struct eod *d = eod_start("workers = 2;\nlisteners = ( { name = "
	    "\"echo\"; protocol = \"echo\"; port = %d; bind = \"127.0.0.1\";"
	    " } );\n", p);
	long before, after;

	fd = tcp_open("127.0.0.1", p);	/* the loops are running */
	eo_expect_echo(fd, "warm");
	close(fd);
	before = thread_waits(d, d->pid);
	ck_assert_int_ge(before, 0);
	for (i = 0; i < 300; i++) {
		fd = tcp_open("127.0.0.1", p);
		eo_expect_echo(fd, "x");
		close(fd);
	}
	after = thread_waits(d, d->pid);
	/* valgrind runs one thread at a time, handing over by waits. */
	if (getenv("EO_WRAPPER") == NULL)
		ck_assert_msg(after - before < 75, "the main thread waited "
		    "%ld times for 300 connections", after - before);
	eod_signal(d, SIGUSR1);
	ck_assert_int_eq(eod_log_wait(d, "301 accepted", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

static int
sock_port(int fd, int peer)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if ((peer ? getpeername(fd, (struct sockaddr *)&sin, &len) :
	    getsockname(fd, (struct sockaddr *)&sin, &len)) == -1 ||
	    sin.sin_family != AF_INET)
		return -1;
	return ntohs(sin.sin_port);
}

/*
 * The daemon's end of the client socket fd, a copy taken with
 * pidfd_getfd() (the tests run as root); -1 if it has none.
 */
static int
daemon_end_of(pid_t pid, int fd)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int pidfd, theirs = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1 ||
	    (dir = opendir(path)) == NULL)
		return -1;
	while (theirs == -1 && (e = readdir(dir)) != NULL) {
		int n = atoi(e->d_name), s;

		if (e->d_name[0] == '.' || (s = (int)syscall(SYS_pidfd_getfd,
		    pidfd, n, 0)) == -1)
			continue;
		if (sock_port(s, 0) == sock_port(fd, 1) &&
		    sock_port(s, 1) == sock_port(fd, 0))
			theirs = s;
		else
			close(s);
	}
	closedir(dir);
	close(pidfd);
	return theirs;
}

static void
expect_nodelay(struct eod *d, int port)
{
	int fd = tcp_open("127.0.0.1", port), s, on = 0;
	socklen_t len = sizeof(on);

	eo_expect_echo(fd, "x");
	ck_assert_int_ne(s = daemon_end_of(d->pid, fd), -1);
	ck_assert_int_eq(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &len),
	    0);
	ck_assert_msg(on != 0, "port %d: a connection without TCP_NODELAY",
	    port);
	close(s);
	close(fd);
}

/*
 * Issue 28: TCP_NODELAY was set by a system call per connection; it is
 * set once on each listening socket, which accepted ones inherit.  A
 * connection on a socket the daemon bound, and on one systemd passed,
 * still has it: replies are not held back by Nagle's algorithm.
 */
START_TEST(test_accepted_sockets_have_nodelay)
{
	int pb = eo_port(), ps = eo_port(), sock;
	struct eod_opts o;
	struct eod *d;

	sock = eo_listen("127.0.0.1", ps);
	ck_assert_int_ne(sock, -1);
	memset(&o, 0, sizeof(o));
	o.listen_fds = &sock;
	o.nlisten = 1;
	o.listen_names = "passed";
	d = eod_start_opts(&o, "workers = 2;\nlisteners = (\n"
	    "{ name = \"bound\"; protocol = \"echo\"; port = %d; bind ="
	    " \"127.0.0.1\"; },\n{ name = \"passed\"; protocol = \"echo\";"
	    " port = %d; bind = \"127.0.0.1\"; } );\n", pb, ps);
	expect_nodelay(d, pb);
	expect_nodelay(d, ps);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	close(sock);
}
END_TEST

/*
 * A socket on 127.0.0.1:port, SO_REUSEPORT set if share, listening; -1
 * (errno) if the bind fails.  Owned by d's uid (the tests run the
 * daemon as nobody when they are root): Linux lets only a socket of the
 * same uid join a SO_REUSEPORT group.
 */
static int
bind_beside(struct eod *d, int port, int share)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char proc[32];
	struct stat st;
	int fd, e;

	snprintf(proc, sizeof(proc), "/proc/%d", (int)d->pid);
	ck_assert_int_eq(stat(proc, &st), 0);
	setfsuid(st.st_uid);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setfsuid(geteuid());
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &share,
	    sizeof(share)), 0);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 128) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
echo_rounds(int port, int n)
{
	int i, fd;

	for (i = 0; i < n; i++) {
		fd = tcp_open("127.0.0.1", port);
		eo_expect_echo(fd, "round");
		close(fd);
	}
}

/* n clients echoed by d, while joiner, in d's group, is given none. */
static void
joiner_gets_none(struct eod *d, int port, int n)
{
	int joiner;

	ck_assert_int_ge(joiner = bind_beside(d, port, 1), 0);
	echo_rounds(port, n);
	ck_assert_int_eq(accept(joiner, NULL, NULL), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(joiner);
}

#define CONF_PER_WORKER "workers = 3;\nlisteners = ( { name = \"echo\"; " \
	"protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; %s } );\n"

/*
 * Issue 28: each worker accepts from a socket of its own (three here),
 * joined by SO_REUSEPORT, the kernel placing clients.  A plain bind of
 * the address (a second daemon's) still fails; a process of our uid
 * that joins with SO_REUSEPORT is given no client (the group's steering
 * stops at ours: without it, a quarter of these 300 would be its own
 * and hang unanswered).  socket_per_worker = false on reload: the
 * workers share one of them again, the others closed, and the group
 * of one still gives a joiner nothing; true again: three.
 */
START_TEST(test_socket_per_worker_cannot_be_joined)
{
	unsigned long ino[8], one[8];
	int p = eo_port();
	struct eod *d = eod_start(CONF_PER_WORKER, p, "");

	echo_rounds(p, 1);
	ck_assert_int_eq(eod_listening(d, p, ino, 8), 3);
	ck_assert_int_eq(bind_beside(d, p, 0), -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	joiner_gets_none(d, p, 300);

	eod_write_conf(d, CONF_PER_WORKER, p, "socket_per_worker = false;");
	ck_assert_int_eq(eod_reload(d), 0);
	ck_assert_int_eq(eod_listening(d, p, one, 8), 1);
	ck_assert(one[0] == ino[0] || one[0] == ino[1] || one[0] == ino[2]);
	/* Still a group, of one: one that joins it is given none. */
	joiner_gets_none(d, p, 100);

	eod_write_conf(d, CONF_PER_WORKER, p, "");
	ck_assert_int_eq(eod_reload(d), 0);
	ck_assert_int_eq(eod_listening(d, p, ino, 8), 3);
	echo_rounds(p, 50);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("server");

	tcase_set_timeout(tc, eo_ms(60));
	tcase_add_test(tc, test_nofile_limit_in_effect);
	tcase_add_test(tc, test_start_line_and_plurals);
	tcase_add_test(tc, test_sigusr1_counters);
	tcase_add_test(tc, test_short_connections_leave_main_thread_asleep);
	tcase_add_test(tc, test_accepted_sockets_have_nodelay);
	tcase_add_test(tc, test_socket_per_worker_cannot_be_joined);
	suite_add_tcase(s, tc);
	return check_run(s);
}
