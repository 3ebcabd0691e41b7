/*
 * The spare descriptor (fd_spare.c), with a real listening socket and
 * a full descriptor table: two accepting threads' steps, in the order
 * that lost the spare (another thread's accept taking its place between
 * the drain's close and the drain's accept), must not lose it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "fd_spare.h"

enum { NCLIENTS = 3, MAXFILL = 256 };

static int lsock, clients[NCLIENTS], fill[MAXFILL], nfill;
static struct rlimit saved;

/* A listening socket on loopback with NCLIENTS clients queued. */
static void
setup(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int i;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lsock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ne(lsock, -1);
	ck_assert_int_eq(bind(lsock, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lsock, 16), 0);
	ck_assert_int_eq(getsockname(lsock, (struct sockaddr *)&sin, &len),
	    0);
	for (i = 0; i < NCLIENTS; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(clients[i], (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
	}
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	nfill = 0;
}

/* Lowers the limit a little above what is open, and fills the rest. */
static void
fill_table(void)
{
	struct rlimit rl = saved;
	int fd;

	fd = open("/dev/null", O_RDONLY);
	ck_assert_int_ne(fd, -1);
	close(fd);
	/* fd is the lowest free one: what is free below fd + 8 is all
	   there is to fill. */
	rl.rlim_cur = (rlim_t)fd + 8;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while ((fd = open("/dev/null", O_RDONLY)) != -1) {
		ck_assert_int_lt(nfill, MAXFILL);
		fill[nfill++] = fd;
	}
	ck_assert_int_eq(errno, EMFILE);
}

static void
teardown(void)
{
	int i;

	while (nfill > 0)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &saved);
	for (i = 0; i < NCLIENTS; i++)
		close(clients[i]);
	close(lsock);
}

/* The order that lost it: A gives the spare up to drain, B's accept
   takes its place, A finds nothing and cannot put it back. */
START_TEST(test_spare_taken_by_another_accept)
{
	struct fd_spare s;
	int b, a;

	ck_assert_int_eq(fd_spare_init(&s), 0);
	fill_table();
	ck_assert_int_eq(accept(lsock, NULL, NULL), -1);
	ck_assert_int_eq(errno, EMFILE);
	fd_spare_give(&s);				/* A */
	b = accept(lsock, NULL, NULL);			/* B */
	ck_assert_int_ne(b, -1);
	a = accept(lsock, NULL, NULL);			/* A */
	ck_assert_int_eq(a, -1);
	ck_assert_int_eq(errno, EMFILE);
	fd_spare_put(&s);				/* A: cannot */
	ck_assert_int_eq(s.fd, -1);
	/* B, with its client: the spare's place, so the client goes. */
	ck_assert_int_eq(fd_spare_missing(&s), -1);
	close(b);
	fd_spare_put(&s);
	ck_assert_int_ne(s.fd, -1);
	/* The next drain has it: one waiting client accepted and closed. */
	fd_spare_give(&s);
	a = accept(lsock, NULL, NULL);
	ck_assert_int_ne(a, -1);
	close(a);
	fd_spare_put(&s);
	ck_assert_int_ne(s.fd, -1);
	ck_assert_int_eq(fd_spare_missing(&s), 0);
	fd_spare_free(&s);
}
END_TEST

/* Missing while descriptors are free: had again, the client served. */
START_TEST(test_spare_had_again_when_free)
{
	struct fd_spare s;

	ck_assert_int_eq(fd_spare_init(&s), 0);
	fd_spare_give(&s);
	ck_assert_int_eq(s.fd, -1);
	ck_assert_int_eq(fd_spare_missing(&s), 0);
	ck_assert_int_ne(s.fd, -1);
	fd_spare_free(&s);
}
END_TEST

/* None at start: none asked for later, and no client refused for it. */
START_TEST(test_no_spare_at_start)
{
	struct fd_spare s;

	fill_table();
	ck_assert_int_eq(fd_spare_init(&s), -1);
	close(fill[--nfill]);
	ck_assert_int_eq(fd_spare_missing(&s), 0);
	ck_assert_int_eq(s.fd, -1);
	fd_spare_put(&s);
	ck_assert_int_eq(s.fd, -1);
}
END_TEST

static Suite *
spare_suite(void)
{
	Suite *s = suite_create("spare");
	TCase *tc = tcase_create("spare");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_spare_taken_by_another_accept);
	tcase_add_test(tc, test_spare_had_again_when_free);
	tcase_add_test(tc, test_no_spare_at_start);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(spare_suite());
}
