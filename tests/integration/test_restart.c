/*
 * The re-exec in place (SIGUSR2) under load, without systemd, measured
 * with tests/tools/restart_load: echo streams checked byte by byte,
 * oracle clients in the middle of a question with max_questions = 2,
 * and a connect loop.  Nothing may be reset, lost, reordered or
 * refused, and each oracle client gets exactly the one answer it is
 * still owed.  The same scenario under systemctl restart is
 * tests/systemd/restart.sh.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

#define CONF \
	"max_connections = 1000;\n" \
	"listeners = (\n" \
	"  { name = \"echo\"; protocol = \"echo\"; port = %d;\n" \
	"    bind = [\"127.0.0.1\"]; },\n" \
	"  { name = \"oracle\"; protocol = \"oracle\"; port = %d;\n" \
	"    bind = [\"127.0.0.1\"]; oracle = { max_questions = 2; }; }\n" \
	");\n"

/* restart_load as a child: its standard input and output. */
struct load {
	pid_t	pid;
	int	in;
	int	out;
};

static void
load_start(struct load *l, int echo_port, int oracle_port, const char *echo,
    const char *oracle)
{
	char ep[16], op[16];
	int pin[2], pout[2];

	snprintf(ep, sizeof(ep), "%d", echo_port);
	snprintf(op, sizeof(op), "%d", oracle_port);
	ck_assert_int_eq(pipe2(pin, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pout, O_CLOEXEC), 0);
	l->pid = fork();
	ck_assert_int_ne(l->pid, -1);
	if (l->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pin[0], STDIN_FILENO);
		dup2(pout[1], STDOUT_FILENO);
		execl(EO_RESTART_LOAD, "restart_load", "-e", ep, "-o", op,
		    "-E", echo, "-Q", oracle, "-C", "2", "-a", "2",
		    "-d", "300", (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	l->in = pin[1];
	l->out = pout[0];
}

/* One line of its output into buf (no newline); 0, or -1 at EOF or
   after ms. */
static int
load_line(struct load *l, char *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = l->out, .events = POLLIN };
	size_t n = 0;
	char ch;

	while (n + 1 < len) {
		if (poll(&pfd, 1, ms) != 1 || read(l->out, &ch, 1) != 1)
			return -1;
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return 0;
}

static void
load_say(struct load *l, const char *cmd)
{
	ck_assert_int_eq(write(l->in, cmd, strlen(cmd)),
	    (ssize_t)strlen(cmd));
}

/* "done", its report on stderr; its exit status. */
static int
load_finish(struct load *l)
{
	char line[512];
	int status;

	load_say(l, "done\n");
	close(l->in);
	while (load_line(l, line, sizeof(line), eo_ms(300000)) == 0)
		fprintf(stderr, "restart_load: %s\n", line);
	close(l->out);
	ck_assert_int_eq(waitpid(l->pid, &status, 0), l->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * 200 echo streams, 50 oracle clients each with half a question sent
 * and one answered, a connect loop: SIGUSR2, the daemon checks and
 * re-executes itself in place, and none of them notices.
 */
START_TEST(test_usr2_reexec_under_load_drops_nothing)
{
	int pe = eo_port(), po = eo_port();
	char line[512];
	struct load l;
	struct eod *d;
	pid_t pid;

	eo_raise_nofile();
	d = eod_start(CONF, pe, po);
	pid = d->pid;
	load_start(&l, pe, po, "200", "50");
	ck_assert_int_eq(load_line(&l, line, sizeof(line), eo_ms(120000)), 0);
	ck_assert_str_eq(line, "ready");
	load_say(&l, "restart\n");
	eod_notify_pids(d);
	eod_signal(d, SIGUSR2);
	if (eod_wait_notify(d, "READY=1", eo_ms(30000)) == -1) {
		eod_log_dump(d);
		ck_abort_msg("no READY=1 after SIGUSR2");
	}
	ck_assert(eod_running(d));
	/* Ready, said by the process that was started: in place. */
	ck_assert_int_eq(d->notify_pid, pid);
	if (load_finish(&l) != 0) {
		eod_log_dump(d);
		ck_abort_msg("restart_load counted errors through SIGUSR2");
	}
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Connections a re-exec took over are handed over again by the next
 * one: two SIGUSR2 while the oracle clients wait with half a question.
 */
START_TEST(test_usr2_twice_carries_carried_connections)
{
	int pe = eo_port(), po = eo_port(), i;
	char line[512];
	struct load l;
	struct eod *d;

	eo_raise_nofile();
	d = eod_start(CONF, pe, po);
	load_start(&l, pe, po, "50", "20");
	ck_assert_int_eq(load_line(&l, line, sizeof(line), eo_ms(120000)), 0);
	ck_assert_str_eq(line, "ready");
	load_say(&l, "restart\n");
	for (i = 0; i < 2; i++) {
		eod_signal(d, SIGUSR2);
		if (eod_wait_notify(d, "READY=1", eo_ms(30000)) == -1) {
			eod_log_dump(d);
			ck_abort_msg("no READY=1 after SIGUSR2 number %d", i + 1);
		}
	}
	if (load_finish(&l) != 0) {
		eod_log_dump(d);
		ck_abort_msg("restart_load counted errors through two SIGUSR2");
	}
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

#define CONF_WORKERS "workers = %d;\nlisteners = ( { name = \"echo\"; " \
	"protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n"

/* SIGUSR2 with d's file saying workers = n; READY=1 from the same pid. */
static void
reexec_with_workers(struct eod *d, int port, int n)
{
	eod_write_conf(d, CONF_WORKERS, n, port);
	eod_signal(d, SIGUSR2);
	if (eod_wait_notify(d, "READY=1", eo_ms(30000)) == -1) {
		eod_log_dump(d);
		ck_abort_msg("no READY=1 after SIGUSR2 (workers = %d)", n);
	}
	ck_assert(eod_running(d));
}

static int
has_inode(const unsigned long *v, int n, unsigned long ino)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i] == ino)
			return 1;
	return 0;
}

/*
 * Each worker's own listening socket (acceptor.c) is handed over with
 * the others, never closed: the same sockets listen after SIGUSR2.
 * With fewer workers, the next process folds the extra ones (steered
 * off, served, closed); with more, it adds to those it was given.
 */
START_TEST(test_usr2_carries_each_workers_socket)
{
	unsigned long a[8], b[8];
	int p = eo_port(), fd, i, n;
	struct eod *d;

	d = eod_start(CONF_WORKERS, 3, p);
	ck_assert_int_eq(eod_listening(d, p, a, 8), 3);
	eod_notify_pids(d);
	reexec_with_workers(d, p, 3);
	ck_assert_int_eq(eod_listening(d, p, b, 8), 3);
	for (i = 0; i < 3; i++)
		ck_assert(a[i] == b[i]);
	reexec_with_workers(d, p, 2);
	ck_assert_int_eq(n = eod_listening(d, p, b, 8), 2);
	for (i = 0; i < n; i++)
		ck_assert(has_inode(a, 3, b[i]));
	reexec_with_workers(d, p, 4);
	ck_assert_int_eq(eod_listening(d, p, a, 8), 4);
	for (i = 0; i < n; i++)
		ck_assert(has_inode(a, 4, b[i]));
	for (i = 0; i < 50; i++) {
		fd = tcp_open("127.0.0.1", p);
		eo_expect_echo(fd, "after three restarts");
		close(fd);
	}
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A copy of the built binary at path, executable. */
static void
copy_binary(const char *path)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	ck_assert_int_ne(in = open(EO_BINARY, O_RDONLY | O_CLOEXEC), -1);
	ck_assert_int_ne(out = open(path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0755), -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

/* dir/current points at dir/version now, swapped in one rename. */
static void
point_current(const char *dir, const char *version)
{
	char link[PATH_MAX], next[PATH_MAX];

	snprintf(link, sizeof(link), "%s/current", dir);
	snprintf(next, sizeof(next), "%s/current.next", dir);
	unlink(next);
	ck_assert_int_eq(symlink(version, next), 0);
	ck_assert_int_eq(rename(next, link), 0);
}

/* SIGUSR2; the process that was started says READY=1 again, running
   dir/version: by the kernel's word when not under a wrapper (valgrind
   is /proc/PID/exe there), and by its log. */
static void
expect_reexec_runs(struct eod *d, const char *dir, const char *version)
{
	char want[PATH_MAX], line[PATH_MAX + 32], exe[PATH_MAX], proc[64];
	const char *w = getenv("EO_WRAPPER");
	ssize_t n;

	eod_notify_pids(d);
	eod_signal(d, SIGUSR2);
	if (eod_wait_notify(d, "READY=1", eo_ms(30000)) == -1) {
		eod_log_dump(d);
		ck_abort_msg("no READY=1 after SIGUSR2");
	}
	ck_assert_int_eq(d->notify_pid, d->pid);
	snprintf(want, sizeof(want), "%s/%s/echo-oracled", dir, version);
	if (w == NULL || *w == '\0') {
		snprintf(proc, sizeof(proc), "/proc/%d/exe", (int)d->pid);
		ck_assert_int_gt(n = readlink(proc, exe, sizeof(exe) - 1), 0);
		exe[n] = '\0';
		ck_assert_str_eq(exe, want);
	}
	snprintf(line, sizeof(line), "restart: running %s", want);
	if (!eod_log_has(d, line)) {
		eod_log_dump(d);
		ck_abort_msg("no \"%s\" in the log", line);
	}
}

/*
 * An upgrade by a link: the daemon started by dir/current/echo-oracled
 * (a link to v1), the link moved to v2, SIGUSR2: v2 runs; moved back,
 * SIGUSR2 again: v1 runs.  Started the three ways a shell finds it: by
 * that absolute path, as ./echo-oracled from inside dir/current (the
 * working folder is v1's, $PWD says current), and by its bare name
 * through PATH.  The old one resolved /proc/self/exe at start and ran
 * v1 for ever.
 */
START_TEST(test_usr2_upgrade_by_link_runs_the_new_file)
{
	static const char *how[] = { "absolute", "relative", "path" };
	char dir[] = "/tmp/eo-link.XXXXXX", path[PATH_MAX], cwd[PATH_MAX];
	char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	char *old_pwd = getenv("PWD") ? strdup(getenv("PWD")) : NULL;
	int pe = eo_port(), po = eo_port(), fd;
	struct eod_opts o;
	struct eod *d;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	chmod(dir, 0755);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	snprintf(path, sizeof(path), "%s/v1", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/v2", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/v1/echo-oracled", dir);
	copy_binary(path);
	snprintf(path, sizeof(path), "%s/v2/echo-oracled", dir);
	copy_binary(path);
	memset(&o, 0, sizeof(o));
	o.binary = path;
	point_current(dir, "v1");
	if (_i == 0)
		snprintf(path, sizeof(path), "%s/current/echo-oracled", dir);
	else if (_i == 1) {
		snprintf(path, sizeof(path), "%s/current", dir);
		ck_assert_int_eq(chdir(path), 0);
		setenv("PWD", path, 1);
		snprintf(path, sizeof(path), "./echo-oracled");
	} else {
		snprintf(path, sizeof(path), "%s/current:%s", dir,
		    old_path != NULL ? old_path : "/usr/bin:/bin");
		setenv("PATH", path, 1);
		snprintf(path, sizeof(path), "echo-oracled");
	}
	printf("upgrade by link, started by its %s path: %s\n", how[_i], path);
	d = eod_start_opts(&o, CONF, pe, po);
	/* Back, so that nothing else of the test depends on them. */
	ck_assert_int_eq(chdir(cwd), 0);
	if (old_path != NULL)
		setenv("PATH", old_path, 1);
	if (old_pwd != NULL)
		setenv("PWD", old_pwd, 1);
	fd = tcp_open("127.0.0.1", pe);
	eo_expect_echo(fd, "v1");
	point_current(dir, "v2");
	expect_reexec_runs(d, dir, "v2");
	eo_expect_echo(fd, "v2");
	point_current(dir, "v1");
	expect_reexec_runs(d, dir, "v1");
	eo_expect_echo(fd, "v1 again");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	ck_assert_int_eq(system(path), 0);
	free(old_path);
	free(old_pwd);
}
END_TEST

#define NBIG	17000

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every client sends its own 6 bytes and gets them back. */
static void
echo_all(const int *fds, int n, char tag)
{
	char want[16], got[16];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%c%05d", tag, i);
		ck_assert_int_eq(send_all(fds[i], want, 6), 0);
	}
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%c%05d", tag, i);
		ck_assert_msg(recv_n(fds[i], got, 6, eo_ms(20000)) == 6 &&
		    memcmp(got, want, 6) == 0, "client %d: no echo", i);
	}
}

/*
 * Issue 24, defect 5: each carried descriptor added its name to
 * LISTEN_FDNAMES, so past about 16,000 connections the variable passed
 * 128 KiB (MAX_ARG_STRLEN) and the exec failed with E2BIG.  17,000
 * connections through SIGUSR2, each still echoing after.
 */
START_TEST(test_usr2_carries_17000_connections)
{
	int pe = eo_port(), po = eo_port(), *fds, i;
	struct rlimit rl;
	struct eod *d;
	char line[64];
	long t0;

	eo_raise_nofile();
	getrlimit(RLIMIT_NOFILE, &rl);
	ck_assert_msg(rl.rlim_cur >= NBIG + 200, "RLIMIT_NOFILE %lu: too "
	    "small for %d clients", (unsigned long)rl.rlim_cur, NBIG);
	d = eod_start("max_connections = 18000;\nlisteners = (\n"
	    "  { name = \"echo\"; protocol = \"echo\"; port = %d;"
	    " bind = [\"127.0.0.1\"]; },\n"
	    "  { name = \"oracle\"; protocol = \"oracle\"; port = %d;"
	    " bind = [\"127.0.0.1\"]; }\n);\n", pe, po);
	ck_assert_ptr_nonnull(fds = calloc(NBIG, sizeof(*fds)));
	for (i = 0; i < NBIG; i++)
		fds[i] = tcp_open("127.0.0.1", pe);
	echo_all(fds, NBIG, 'b');
	eod_notify_pids(d);
	t0 = now_ms();
	eod_signal(d, SIGUSR2);
	if (eod_wait_notify(d, "READY=1", eo_ms(60000)) == -1) {
		eod_log_dump(d);
		ck_abort_msg("no READY=1 after SIGUSR2 with %d connections",
		    NBIG);
	}
	printf("SIGUSR2 with %d connections: ready again after %ld ms\n",
	    NBIG, now_ms() - t0);
	ck_assert_int_eq(d->notify_pid, d->pid);
	snprintf(line, sizeof(line), "restart: %d connections carried over",
	    NBIG);
	ck_assert(eod_log_has(d, line));
	echo_all(fds, NBIG, 'a');
	for (i = 0; i < NBIG; i++)
		close(fds[i]);
	free(fds);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("restart");
	TCase *tc = tcase_create("restart");

	tcase_set_timeout(tc, eo_ms(600));
	tcase_add_test(tc, test_usr2_reexec_under_load_drops_nothing);
	tcase_add_test(tc, test_usr2_twice_carries_carried_connections);
	tcase_add_test(tc, test_usr2_carries_each_workers_socket);
	tcase_add_loop_test(tc, test_usr2_upgrade_by_link_runs_the_new_file,
	    0, 3);
	tcase_add_test(tc, test_usr2_carries_17000_connections);
	suite_add_tcase(s, tc);
	return check_run(s);
}
