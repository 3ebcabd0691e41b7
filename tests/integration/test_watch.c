/*
 * watch_config (issue 27): the daemon reloads, without a signal, when
 * its configuration changes, as a Kubernetes ConfigMap volume changes
 * it: a new timestamped folder, a "..data_tmp" symlink to it renamed
 * over "..data" (the kubelet's AtomicWriter), the file a symlink
 * through "..data".  Nobody sends SIGHUP here.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

#define DEBOUNCE_MS	500	/* EO_WATCH_DEBOUNCE_MS, include/cfgwatch.h */

/* A ConfigMap-like folder: kube/echo-oracled.conf -> ..data/... */
struct kube {
	char	dir[64];
	char	conf[128];
	int	gen;
};

static void
kube_write(const char *path, const char *fmt, va_list ap)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	vfprintf(f, fmt, ap);
	ck_assert_int_eq(fclose(f), 0);
}

/* A new generation holding the text, swapped in as the kubelet does. */
static void
kube_swap(struct kube *k, const char *fmt, ...)
{
	char gen[192], file[256], tmp[192], data[192];
	va_list ap;

	k->gen++;
	snprintf(gen, sizeof(gen), "%s/..2026_12_06_00_00_%02d.%d", k->dir,
	    k->gen, k->gen);
	ck_assert_int_eq(mkdir(gen, 0755), 0);
	snprintf(file, sizeof(file), "%s/echo-oracled.conf", gen);
	va_start(ap, fmt);
	kube_write(file, fmt, ap);
	va_end(ap);
	snprintf(tmp, sizeof(tmp), "%s/..data_tmp", k->dir);
	snprintf(data, sizeof(data), "%s/..data", k->dir);
	ck_assert_int_eq(symlink(strrchr(gen, '/') + 1, tmp), 0);
	ck_assert_int_eq(rename(tmp, data), 0);
}

static void
kube_init(struct kube *k)
{
	char link[192];

	memset(k, 0, sizeof(*k));
	snprintf(k->dir, sizeof(k->dir), "/tmp/eo-watch-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(k->dir));
	ck_assert_int_eq(chmod(k->dir, 0755), 0);
	snprintf(k->conf, sizeof(k->conf), "%s/echo-oracled.conf", k->dir);
	snprintf(link, sizeof(link), "..data/echo-oracled.conf");
	ck_assert_int_eq(symlink(link, k->conf), 0);
}

static void
kube_free(struct kube *k)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
	ck_assert_int_eq(system(cmd), 0);
}

#define ONE_ECHO							\
	"watch_config = true;\n"					\
	"listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;" \
	" bind = \"127.0.0.1\"; } );\n"
#define TWO_ECHOES							\
	"watch_config = true;\n"					\
	"listeners = ( { name = \"echo\"; protocol = \"echo\"; port = %d;" \
	" bind = \"127.0.0.1\"; },\n { name = \"echo2\"; protocol = "	\
	"\"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n"

static struct eod *
start_in(struct kube *k, int port)
{
	char args[160];
	struct eod_opts o = { .args = args };

	kube_swap(k, ONE_ECHO, port);
	snprintf(args, sizeof(args), "-c %s", k->conf);
	/* The harness's own file is never read: -c comes last. */
	return eod_start_opts(&o, "# unused\n");
}

START_TEST(test_watch_config_data_swap_reloads_without_a_signal)
{
	int port = eo_port(), port2 = eo_port(), fd;
	struct kube k;
	struct eod *d;

	kube_init(&k);
	d = start_in(&k, port);
	ck_assert_int_eq(eod_log_wait(d, "watch_config: reloading when",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(tcp_connect("127.0.0.1", port2), -1);
	kube_swap(&k, TWO_ECHOES, port, port2);
	ck_assert_int_eq(eod_log_wait(d, "reloaded ", eo_ms(10000)), 0);
	ck_assert(eod_log_has(d, "configuration changed (watch_config)"));
	fd = tcp_open("127.0.0.1", port2);
	eo_expect_echo(fd, "applied without a signal");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	kube_free(&k);
}
END_TEST

/* A bad file: as a bad SIGHUP, FILE:LINE logged, the old one kept. */
START_TEST(test_watch_config_bad_file_keeps_the_old)
{
	int port = eo_port(), fd;
	struct kube k;
	struct eod *d;
	char want[256];

	kube_init(&k);
	d = start_in(&k, port);
	ck_assert_int_eq(eod_log_wait(d, "watch_config: reloading when",
	    eo_ms(5000)), 0);
	kube_swap(&k, "watch_config = true;\nlisteners = ( { name = ;\n");
	snprintf(want, sizeof(want), "%s:2: syntax error", k.conf);
	ck_assert_int_eq(eod_log_wait(d, want, eo_ms(10000)), 0);
	ck_assert_int_eq(eod_log_wait(d, "reload failed", eo_ms(5000)), 0);
	ck_assert(!eod_log_has(d, "reloaded "));
	fd = tcp_open("127.0.0.1", port);
	eo_expect_echo(fd, "the old one serves");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	kube_free(&k);
}
END_TEST

/* Quick edits in a row: one reload, once they stop. */
START_TEST(test_watch_config_debounced)
{
	int port = eo_port(), port2 = eo_port(), i;
	struct kube k;
	struct eod *d;

	kube_init(&k);
	d = start_in(&k, port);
	ck_assert_int_eq(eod_log_wait(d, "watch_config: reloading when",
	    eo_ms(5000)), 0);
	for (i = 0; i < 5; i++) {
		if (i % 2 == 0)
			kube_swap(&k, TWO_ECHOES, port, port2);
		else
			kube_swap(&k, ONE_ECHO, port);
		usleep(50000);
	}
	ck_assert_int_eq(eod_log_wait(d, "reloaded ", eo_ms(10000)), 0);
	/* Longer than the debounce: a second reload would have begun. */
	usleep(3 * DEBOUNCE_MS * 1000);
	ck_assert_int_eq(eod_log_count(d,
	    "configuration changed (watch_config)"), 1);
	ck_assert_int_eq(eod_log_count(d, "reloaded "), 1);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	kube_free(&k);
}
END_TEST

/* A change right after a reload, while the watcher is remade for the
   new configuration, is not lost. */
START_TEST(test_watch_config_change_after_a_reload_not_lost)
{
	int port = eo_port(), port2 = eo_port(), port3 = eo_port(), fd;
	struct kube k;
	struct eod *d;

	kube_init(&k);
	d = start_in(&k, port);
	ck_assert_int_eq(eod_log_wait(d, "watch_config: reloading when",
	    eo_ms(5000)), 0);
	kube_swap(&k, TWO_ECHOES, port, port2);
	ck_assert_int_eq(eod_log_wait(d, "reloaded ", eo_ms(10000)), 0);
	kube_swap(&k, TWO_ECHOES, port, port3);
	fd = -1;
	for (int i = 0; i < eo_ms(5000) / 50 && fd == -1; i++) {
		if ((fd = tcp_connect("127.0.0.1", port3)) == -1)
			usleep(50000);
	}
	ck_assert_msg(fd != -1, "the second change was not applied");
	eo_expect_echo(fd, "the second change");
	close(fd);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
	kube_free(&k);
}
END_TEST

/* Off by default: an edit waits for SIGHUP. */
START_TEST(test_watch_config_off_by_default)
{
	int port = eo_port(), port2 = eo_port();
	struct eod *d = eod_start("listeners = ( { name = \"echo\"; protocol ="
	    " \"echo\"; port = %d; bind = \"127.0.0.1\"; } );\n", port);

	eod_write_conf(d, "listeners = ( { name = \"echo\"; protocol = "
	    "\"echo\"; port = %d; bind = \"127.0.0.1\"; },\n { name = "
	    "\"echo2\"; protocol = \"echo\"; port = %d; bind = \"127.0.0.1\";"
	    " } );\n", port, port2);
	usleep(3 * DEBOUNCE_MS * 1000);
	ck_assert(!eod_log_has(d, "reloading"));
	ck_assert_int_eq(tcp_connect("127.0.0.1", port2), -1);
	ck_assert_int_eq(eod_reload(d), 0);
	ck_assert_int_ne(tcp_connect("127.0.0.1", port2), -1);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("watch");

	tcase_set_timeout(tc, eo_ms(60));
	tcase_add_test(tc,
	    test_watch_config_data_swap_reloads_without_a_signal);
	tcase_add_test(tc, test_watch_config_bad_file_keeps_the_old);
	tcase_add_test(tc, test_watch_config_debounced);
	tcase_add_test(tc, test_watch_config_change_after_a_reload_not_lost);
	tcase_add_test(tc, test_watch_config_off_by_default);
	suite_add_tcase(s, tc);
	return check_run(s);
}
