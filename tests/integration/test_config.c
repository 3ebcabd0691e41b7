/*
 * The configuration path through the real binary: `-t` on files that
 * libconfig 1.5 cannot read safely (it exits or blocks on them), on
 * values it would wrap or cut, and where its lines go under systemd.
 * Each run is bounded: a -t that blocks fails the test, never hangs it.
 */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

#define OK_LISTENER							\
	"listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7007;"	\
	" bind = \"127.0.0.1\"; } );\n"

static char dir[64];

static void
dir_make(void)
{
	snprintf(dir, sizeof(dir), "/tmp/eo-it-config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	eo_share(dir);	/* mkdtemp's 0700 would keep the daemon out */
}

static void
dir_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes DIR/name (printf-style); its path in path. */
static void
dir_write(char *path, size_t len, const char *name, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

static void
dir_write(char *path, size_t len, const char *name, const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fclose(f), 0);
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	    (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Reads fd into out until EOF or the deadline; 0 at EOF, -1 late. */
static int
drain(int fd, char *out, size_t outlen, const struct timespec *t0, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t len = 0;
	ssize_t r;
	char junk[4096];

	out[0] = '\0';
	while (ms_since(t0) < ms) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (len + 1 < outlen)
			r = read(fd, out + len, outlen - len - 1);
		else
			r = read(fd, junk, sizeof(junk));
		if (r <= 0)
			return r == 0 ? 0 : -1;
		if (len + 1 < outlen)
			len += (size_t)r;
		out[len] = '\0';
	}
	return -1;
}

/*
 * Runs the binary with "FLAG -c conf": its stdout and stderr into out,
 * its exit code, or -1 if it did not end within 10 s (then killed).
 * journal: JOURNAL_STREAM names its stderr, as systemd sets it.
 */
static int
run_flag(const char *flag, const char *conf, int journal, char *out,
    size_t outlen)
{
	char *argv[] = { (char *)EO_BINARY, (char *)flag, (char *)"-c",
	    (char *)conf, NULL };
	struct timespec t0;
	struct stat st;
	char js[64];
	int p[2], st_code, ended;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(fstat(p[1], &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		if (journal)
			setenv("JOURNAL_STREAM", js, 1);
		else
			unsetenv("JOURNAL_STREAM");
		execv(EO_BINARY, argv);
		_exit(127);
	}
	close(p[1]);
	ended = drain(p[0], out, outlen, &t0, eo_ms(10000)) == 0;
	close(p[0]);
	while (ended && waitpid(pid, &st_code, WNOHANG) == 0)
		if (ms_since(&t0) > eo_ms(10000))
			ended = 0;
	if (!ended) {
		kill(pid, SIGKILL);
		waitpid(pid, &st_code, 0);
		return -1;
	}
	return WIFEXITED(st_code) ? WEXITSTATUS(st_code) : -1;
}

static int
run_t(const char *conf, int journal, char *out, size_t outlen)
{
	return run_flag("-t", conf, journal, out, outlen);
}

/* -t exits 78 at once, and out has want. */
static void
expect_78(const char *conf, const char *want)
{
	char out[8192];

	ck_assert_int_eq(run_t(conf, 0, out, sizeof(out)), 78);
	ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in: %s", want,
	    out);
}

/*
 * Issue 17 #1 #2: an @include of a directory or of /proc/self/mem made
 * libconfig exit(2) with no FILE:LINE; of a FIFO it blocked for ever.
 */
START_TEST(test_include_unsafe_t_exits_78)
{
	static const struct {
		const char	*inc;
		const char	*why;
	} cases[] = {
		{ "sub", "not a regular file (a directory)" },
		{ "fifo", "not a regular file (a FIFO)" },
		{ "mem.conf", "cannot read: Input/output error" },
		{ "missing.conf", "cannot open: No such file or directory" },
	};
	char path[128], other[128], want[512];
	size_t i;

	dir_make();
	snprintf(other, sizeof(other), "%s/sub", dir);
	ck_assert_int_eq(mkdir(other, 0755), 0);
	snprintf(other, sizeof(other), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(other, 0644), 0);
	snprintf(other, sizeof(other), "%s/mem.conf", dir);
	ck_assert_int_eq(symlink("/proc/self/mem", other), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dir_write(path, sizeof(path), "main.conf", "workers = 1;\n"
		    "@include \"%s\"\n" OK_LISTENER, cases[i].inc);
		snprintf(want, sizeof(want), "%s:2: @include \"%s\": %s/%s: %s",
		    path, cases[i].inc, dir, cases[i].inc, cases[i].why);
		expect_78(path, want);
	}
	/* The main file a FIFO or a directory. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	snprintf(want, sizeof(want), "%s: not a regular file (a FIFO)", path);
	expect_78(path, want);
	snprintf(path, sizeof(path), "%s/sub", dir);
	snprintf(want, sizeof(want), "%s: not a regular file (a directory)",
	    path);
	expect_78(path, want);
	dir_clean();
}
END_TEST

/* Issue 16 #1, issue 17 #4 #5: values libconfig wraps or cuts. */
START_TEST(test_values_refused)
{
	static const struct {
		const char	*text;
		const char	*want;
	} cases[] = {
		{ "listeners = ( { name = \"e\"; protocol = \"echo\";\n"
		  " port = 4294984703; bind = \"127.0.0.1\"; } );\n",
		  ":2: port = 4294984703 is out of range" },
		{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port\n"
		  " = 4294967303; bind = \"127.0.0.1\"; } );\n",
		  ":2: port = 4294967303 is out of range" },
		{ "idle_timeout = 4294967299;\n" OK_LISTENER,
		  ":1: idle_timeout = 4294967299 is out of range" },
		{ "max_connections = 99999999999;\n" OK_LISTENER,
		  ":1: max_connections = 99999999999 is out of range" },
		{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
		  "\n bind = \"::ffff:127.0.0.1\"; } );\n",
		  ":2: listener \"e\": bind: \"::ffff:127.0.0.1\" is an "
		  "IPv4-mapped IPv6 address" },
		{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
		  "\n bind = \"fe80::1\"; } );\n",
		  ":2: listener \"e\": bind: \"fe80::1\" is link-local" },
		{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
		  " bind = \"::1\";\n oracle = { reply_end = \"\\x00\"; }; } );\n",
		  ":2: a string holds \\x00, a NUL byte" },
	};
	char path[128], want[256];
	size_t i;

	dir_make();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dir_write(path, sizeof(path), "v.conf", "%s", cases[i].text);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].want);
		expect_78(path, want);
	}
	dir_clean();
}
END_TEST

/*
 * Issue 17 #3: 4,000 listeners on one address gave 8 million lines
 * (944 MB); now 50 and a count of the rest.
 */
START_TEST(test_errors_capped)
{
	char path[128], *out, *p;
	size_t lines = 0;
	FILE *f;
	int i;

	dir_make();
	snprintf(path, sizeof(path), "%s/many.conf", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "listeners = (\n");
	for (i = 0; i < 4000; i++)
		fprintf(f, "%s{ name = \"l%d\"; protocol = \"echo\"; port = 7;"
		    " bind = \"127.0.0.1\"; }\n", i ? "," : "", i == 3999 ? 0 : i);
	fprintf(f, ");\n");
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(out = malloc(1 << 20));
	ck_assert_int_eq(run_t(path, 0, out, 1 << 20), 78);
	for (p = out; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	ck_assert_uint_eq(lines, 51);
	ck_assert_ptr_nonnull(strstr(out, "3950 more errors not shown\n"));
	free(out);
	dir_clean();
}
END_TEST

/*
 * Issue 10 #6: -t run by systemd (ExecReload=) writes into the journal:
 * its lines carry error priority there, and are plain elsewhere.
 */
START_TEST(test_t_journal_priority)
{
	char path[128], out[4096], want[256];

	dir_make();
	dir_write(path, sizeof(path), "bad.conf", "workers = -1;\n"
	    "idle_timout = 3;\n" OK_LISTENER);
	ck_assert_int_eq(run_t(path, 1, out, sizeof(out)), 78);
	snprintf(want, sizeof(want), "<3>%s:1: workers must be", path);
	ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "got %s", out);
	snprintf(want, sizeof(want), "\n<3>%s:2: unknown setting", path);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	ck_assert_int_eq(run_t(path, 0, out, sizeof(out)), 78);
	snprintf(want, sizeof(want), "%s:1: workers must be", path);
	ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "got %s", out);
	ck_assert_ptr_null(strstr(out, "<3>"));
	dir_clean();
}
END_TEST

/*
 * Issue 31: a setting that does nothing where it is set was accepted
 * without a word.  -t warns, naming the line and why, and still exits
 * 0; under systemd with warning priority.  A reload onto such a file
 * succeeds and logs the warning; a typo names the setting meant.
 */
START_TEST(test_t_warns_setting_without_effect)
{
	char path[128], out[4096], want[512];
	int port = eo_port(), fd;
	struct eod *d;

	dir_make();
	dir_write(path, sizeof(path), "w.conf", "listeners = ( { name = \"e\";"
	    " protocol = \"echo\"; port = 7007;\n bind = \"127.0.0.1\";"
	    " proxy_timeout = 5; } );\n");
	ck_assert_int_eq(run_t(path, 0, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s:2: warning: listener \"e\": "
	    "proxy_timeout has no effect: it bounds the wait for a PROXY "
	    "header, and proxy_protocol is off\n", path);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	ck_assert_ptr_nonnull(strstr(out, "configuration is valid"));
	ck_assert_int_eq(run_t(path, 1, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "<4>%s:2: warning: listener \"e\": "
	    "proxy_timeout", path);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	dir_write(path, sizeof(path), "w.conf", "listeners = ( { name = \"e\";"
	    " protocol = \"echo\"; port = 7007;\n bind = \"127.0.0.1\";"
	    " idle_timout = 5; } );\n");
	ck_assert_int_eq(run_t(path, 0, out, sizeof(out)), 78);
	snprintf(want, sizeof(want), "%s:2: listener \"e\": unknown setting "
	    "\"idle_timout\" (did you mean \"idle_timeout\"?)\n", path);
	ck_assert_msg(strstr(out, want) != NULL, "got %s", out);
	dir_clean();

	d = eod_start("listeners = ( { name = \"e\"; protocol = \"echo\"; "
	    "port = %d; bind = \"127.0.0.1\"; } );\n", port);
	eod_write_conf(d, "listeners = ( { name = \"e\"; protocol = \"echo\"; "
	    "port = %d; bind = \"127.0.0.1\";\n udp_rate_limit = 5; } );\n",
	    port);
	ck_assert_int_eq(eod_reload(d), 0);
	snprintf(want, sizeof(want), "%s:2: warning: listener \"e\": "
	    "udp_rate_limit has no effect: it is for UDP", d->conf);
	ck_assert_msg(eod_log_has(d, want), "no \"%s\"", want);
	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "served after the reload");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A control byte in a configuration string reached -t's output as it
 * is: "x\n<0>forged line" printed a second line the journal reads as
 * of emergency priority.  It is escaped as -T writes it.
 */
START_TEST(test_t_control_bytes_escaped)
{
	char path[128], out[4096], want[512];

	dir_make();
	dir_write(path, sizeof(path), "ctl.conf", "log_level = "
	    "\"x\\n<0>forged\\x1b\\x7f\";\n" OK_LISTENER);
	ck_assert_int_eq(run_t(path, 1, out, sizeof(out)), 78);
	snprintf(want, sizeof(want), "<3>%s:1: log_level must be one of "
	    "error, warning, notice, info, debug; not \"x\\n<0>forged"
	    "\\x1b\\x7f\"\n", path);
	ck_assert_str_eq(out, want);
	dir_clean();
}
END_TEST

/*
 * Issue 16: -T prints the configuration in effect, which -t accepts and
 * -T prints again the same; on a mistake it exits 78 as -t does.
 */
START_TEST(test_T_prints_config_in_effect)
{
	char path[128], again[128], out[8192], out2[8192];

	dir_make();
	dir_write(path, sizeof(path), "in.conf", "idle_timeout = 9;\n"
	    "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	    " bind = \"::1\"; write_timeout = 4;"
	    " oracle = { max_questions = 2; }; } );\n");
	ck_assert_int_eq(run_flag("-T", path, 0, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "idle_timeout = 9; write_timeout = "
	    "4;"));
	ck_assert_ptr_nonnull(strstr(out, "backlog = 4096;"));
	/* Those not written too, with their defaults. */
	ck_assert_ptr_nonnull(strstr(out, "oracle = { max_questions = 2; "
	    "max_question_length = 1024;\n      question_timeout = 30;"));
	dir_write(again, sizeof(again), "out.conf", "%s", out);
	ck_assert_int_eq(run_flag("-T", again, 0, out2, sizeof(out2)), 0);
	/* The same but for the first line, which names the file read. */
	ck_assert_str_eq(strchr(out, '\n'), strchr(out2, '\n'));
	dir_write(path, sizeof(path), "in.conf", "workers = -1;\n"
	    OK_LISTENER);
	ck_assert_int_eq(run_flag("-T", path, 0, out, sizeof(out)), 78);
	ck_assert_ptr_nonnull(strstr(out, ":1: workers must be"));
	dir_clean();
}
END_TEST

/*
 * Issue 17 #1 #2 on SIGHUP: a reload onto an @include of a directory
 * (libconfig exited) or of a FIFO (it blocked) is refused with the
 * reason, and the daemon goes on serving.
 */
START_TEST(test_reload_unsafe_include_keeps_serving)
{
	static const char *const incs[] = { "sub", "fifo" };
	int port = eo_port(), fd;
	struct eod *d = eod_start("listeners = ( { name = \"e\"; protocol = "
	    "\"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n", port);
	char path[160], want[256];
	size_t i;

	snprintf(path, sizeof(path), "%s/sub", d->dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/fifo", d->dir);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	fd = tcp_open("127.0.0.1", port);
	for (i = 0; i < sizeof(incs) / sizeof(incs[0]); i++) {
		eod_write_conf(d, "@include \"%s\"\nlisteners = ( { name = "
		    "\"e\"; protocol = \"echo\"; port = %d; bind = "
		    "\"127.0.0.1\"; } );\n", incs[i], port);
		ck_assert_int_eq(eod_reload(d), 1);
		snprintf(want, sizeof(want), "%s:1: @include \"%s\": %s/%s: "
		    "not a regular file", d->conf, incs[i], d->dir, incs[i]);
		ck_assert_msg(eod_log_has(d, want), "no \"%s\"", want);
		eo_expect_echo(fd, "still here");
	}
	close(fd);
	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "and new clients too");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	snprintf(path, sizeof(path), "%s/sub", d->dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/fifo", d->dir);
	unlink(path);
	eod_free(d);
}
END_TEST

/*
 * Issue 16 drop-ins: a file added to include_dir brings its listener in
 * at the next reload; a broken one is refused naming its own line.
 */
START_TEST(test_dropin_added_on_reload)
{
	int pe = eo_port(), pd = eo_port(), fd;
	char sub[96], path[160], want[256];
	struct eod *d;

	dir_make();
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	d = eod_start("include_dir = \"%s\";\nlisteners = ( { name = \"e\";"
	    " protocol = \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n",
	    sub, pe);
	ck_assert_int_eq(tcp_connect("127.0.0.1", pd), -1);
	dir_write(path, sizeof(path), "conf.d/10-d.conf", "listeners = ( "
	    "{ name = \"d\"; protocol = \"echo\"; port = %d; bind = "
	    "\"127.0.0.1\"; } );\n", pd);
	ck_assert_int_eq(eod_reload(d), 0);
	fd = tcp_open("127.0.0.1", pd);
	eo_expect_echo(fd, "from a drop-in");
	dir_write(path, sizeof(path), "conf.d/20-bad.conf", "\nworkers = 2;"
	    "\n");
	ck_assert_int_eq(eod_reload(d), 1);
	snprintf(want, sizeof(want), "%s:2: workers cannot be set in a file "
	    "of include_dir", path);
	ck_assert_msg(eod_log_has(d, want), "no \"%s\"", want);
	eo_expect_echo(fd, "still served");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	dir_clean();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_include_unsafe_t_exits_78);
	tcase_add_test(tc, test_values_refused);
	tcase_add_test(tc, test_errors_capped);
	tcase_add_test(tc, test_t_journal_priority);
	tcase_add_test(tc, test_t_warns_setting_without_effect);
	tcase_add_test(tc, test_t_control_bytes_escaped);
	tcase_add_test(tc, test_T_prints_config_in_effect);
	tcase_add_test(tc, test_reload_unsafe_include_keeps_serving);
	tcase_add_test(tc, test_dropin_added_on_reload);
	suite_add_tcase(s, tc);
	return check_run(s);
}
