/*
 * worker: accepting on the workers.  A client wakes one idle worker,
 * not all of them; a worker that pauses (out of descriptors) does not
 * spin while paused, and accepts what is queued when it resumes.
 * Real threads, a real listening socket on loopback.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "stats.h"
#include "worker.h"
#include "check_main.h"

#define NW	2

static atomic_int	accepted, calls, paused_once;
static int		pause_first;

/* The acceptor's part: take every queued client, close it. */
static void
on_clients(struct worker *w, void *sock)
{
	int lfd = *(int *)sock, fd;

	atomic_fetch_add(&calls, 1);
	if (pause_first && atomic_exchange(&paused_once, 1) == 0) {
		worker_accept_pause(w, 300);
		return;
	}
	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) != -1) {
		atomic_fetch_add(&accepted, 1);
		close(fd);
	}
}

static int
listen_any(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	ck_assert_int_ne(fd, -1);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

static void
client(const struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_eq(connect(fd, (const struct sockaddr *)sin,
	    sizeof(*sin)), 0);
	close(fd);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Over every thread but this one: what key says in status (a count of
   task switches), or CPU ticks from stat (key NULL). */
static long
others(const char *key)
{
	char path[300], line[512];
	long sum = 0, me = (long)syscall(SYS_gettid);
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");
	FILE *f;

	ck_assert_ptr_nonnull(dir);
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' || atol(d->d_name) == me)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/%s",
		    d->d_name, key ? "status" : "stat");
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			unsigned long ut, st;
			char *p = strrchr(line, ')');

			if (key == NULL && p != NULL && sscanf(p + 2,
			    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			    "%lu %lu", &ut, &st) == 2)
				sum += (long)(ut + st);
			else if (key != NULL && strncmp(line, key,
			    strlen(key)) == 0)
				sum += atol(line + strlen(key));
		}
		fclose(f);
	}
	closedir(dir);
	return sum;
}

struct rig {
	struct stats		 stats;
	struct worker		*w[NW];
	struct sockaddr_in	 sin;
	int			 lfd, done_fd;
};

static void
rig_up(struct rig *r)
{
	char err[256];
	int i;

	memset(r, 0, sizeof(*r));
	atomic_store(&accepted, 0);
	atomic_store(&calls, 0);
	atomic_store(&paused_once, 0);
	ck_assert_int_eq(stats_init(&r->stats, NW), 0);
	ck_assert_int_ne(r->done_fd = eventfd(0, EFD_NONBLOCK), -1);
	r->lfd = listen_any(&r->sin);
	for (i = 0; i < NW; i++) {
		r->w[i] = worker_start((unsigned)i, &r->stats, r->done_fd,
		    err, sizeof(err));
		ck_assert_msg(r->w[i] != NULL, "%s", err);
		ck_assert_int_eq(worker_watch(r->w[i], r->lfd, &r->lfd,
		    on_clients), 0);
	}
}

static void
rig_down(struct rig *r)
{
	int i;

	for (i = 0; i < NW; i++) {
		worker_unwatch(r->w[i], r->lfd);
		worker_stop(r->w[i]);
	}
	close(r->lfd);
	close(r->done_fd);
	stats_fini(&r->stats);
}

/*
 * Clients one at a time, the workers idle in between: each client
 * wakes one worker.  With the socket in every worker's nested accept
 * set each woke both, and the loser found nothing: twice the task
 * switches.
 */
START_TEST(test_one_worker_wakes_per_client)
{
	struct rig r;
	long before, after;
	int i, n = 40;

	pause_first = 0;
	rig_up(&r);
	for (i = 0; i < NW; i++)
		ck_assert_int_eq(worker_accepts_one_at_a_time(r.w[i]), 1);
	sleep_ms(50);
	before = others("voluntary_ctxt_switches:");
	for (i = 0; i < n; i++) {
		client(&r.sin);
		sleep_ms(10);
	}
	for (i = 0; i < 500 && atomic_load(&accepted) < n; i++)
		sleep_ms(10);
	sleep_ms(20);
	after = others("voluntary_ctxt_switches:");
	ck_assert_int_eq(atomic_load(&accepted), n);
	/* One wake-up a client, the once-a-second ticks, and slack for a
	   slow machine (49 under valgrind): waking every idle worker
	   made 2n (80). */
	ck_assert_msg(after - before <= n + n / 2,
	    "%ld task switches for %d clients: more than one worker woke "
	    "for each", after - before, n);
	ck_assert_int_le(atomic_load(&calls), n + 2);
	rig_down(&r);
}
END_TEST

/*
 * A worker out of descriptors pauses: while paused it must not spin on
 * the socket that still has a client (the loop would report it at once,
 * again and again), and when the pause ends the client is taken.
 */
START_TEST(test_pause_does_not_spin)
{
	struct rig r;
	long cpu0, cpu1;
	int i;

	pause_first = 1;
	rig_up(&r);
	sleep_ms(50);
	cpu0 = others(NULL);
	client(&r.sin);
	for (i = 0; i < 100 && atomic_load(&paused_once) == 0; i++)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&paused_once), 1);
	sleep_ms(200);
	cpu1 = others(NULL);
	/* 200 ms spinning is 20 ticks; a worker at rest uses none. */
	ck_assert_msg(cpu1 - cpu0 <= 3, "workers used %ld ticks of CPU "
	    "while one was paused", cpu1 - cpu0);
	for (i = 0; i < 300 && atomic_load(&accepted) == 0; i++)
		sleep_ms(10);
	ck_assert_int_eq(atomic_load(&accepted), 1);
	/* Accepting again afterwards, from any worker. */
	client(&r.sin);
	for (i = 0; i < 300 && atomic_load(&accepted) == 1; i++)
		sleep_ms(10);
	ck_assert_int_eq(atomic_load(&accepted), 2);
	rig_down(&r);
}
END_TEST

/* A socket taken out is never reported again, even with clients. */
START_TEST(test_unwatch_stops_accepting)
{
	struct rig r;
	int i;

	pause_first = 0;
	rig_up(&r);
	for (i = 0; i < NW; i++)
		worker_unwatch(r.w[i], r.lfd);
	atomic_store(&calls, 0);
	client(&r.sin);
	sleep_ms(200);
	ck_assert_int_eq(atomic_load(&calls), 0);
	ck_assert_int_eq(atomic_load(&accepted), 0);
	/* And back. */
	for (i = 0; i < NW; i++)
		ck_assert_int_eq(worker_watch(r.w[i], r.lfd, &r.lfd,
		    on_clients), 0);
	for (i = 0; i < 300 && atomic_load(&accepted) == 0; i++)
		sleep_ms(10);
	ck_assert_int_eq(atomic_load(&accepted), 1);
	rig_down(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("worker");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_one_worker_wakes_per_client);
	tcase_add_test(tc, test_pause_does_not_spin);
	tcase_add_test(tc, test_unwatch_stops_accepting);
	suite_add_tcase(s, tc);
	return check_run(s);
}
