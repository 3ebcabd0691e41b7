/*
 * Connections, without the daemon: a socketpair, an event_base and a
 * conn_home as a worker would set them up, and a hand-made listener
 * whose protocol the test chooses (well-behaved, or deliberately not).
 */
#include <check.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "protocol.h"
#include "stats.h"
#include "check_main.h"

/* A protocol that breaks the contract: "no room" with room to spare,
   taking nothing, every time it is called. */
static enum proto_verdict
stuck_input(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	(void)state;
	(void)opts;
	(void)in;
	out->full = 1;
	return EO_PROTO_OK;
}

static enum proto_verdict
stuck_eof(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	(void)state;
	(void)opts;
	(void)in;
	(void)out;
	return EO_PROTO_CLOSE;
}

static void
stuck_opts_free(void *opts)
{
	(void)opts;
}

static const struct protocol proto_stuck = {
	.name = "stuck",
	.opts_free = stuck_opts_free,
	.input = stuck_input,
	.eof = stuck_eof,
};

/* A protocol that speaks first and closes, as daytime does. */
static enum proto_verdict
hello_greet(void *state, const void *opts, struct proto_out *out)
{
	(void)state;
	(void)opts;
	if (proto_room(out, 1))
		proto_put(out, "hello\r\n", 7);
	return EO_PROTO_CLOSE;
}

static const struct protocol proto_hello = {
	.name = "hello",
	.opts_free = stuck_opts_free,
	.input = stuck_eof,
	.eof = stuck_eof,
	.greet = hello_greet,
};

/* The daemon's own epoll_ctl() calls, counted: the link wraps them
   (tests/CMakeLists.txt). */
static unsigned epoll_ctls;

int	__real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int	__wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

int
__wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	epoll_ctls++;
	return __real_epoll_ctl(epfd, op, fd, ev);
}

/* One connection's world: the daemon's end is sv[0], the client's sv[1]. */
struct rig {
	struct cfg		*cfg;
	struct listener		*lis;
	struct event_base	*base;
	struct stats		 stats;
	struct conn_home	 home;
	int			 sv[2];
};

static void
rig_up(struct rig *r, const struct protocol *p)
{
	struct cfg_diag d;
	struct conn_handoff ho;
	int per_source;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(stats_init(&r->stats, 1), 0);
	cfg_diag_init(&d);
	r->cfg = cfg_load_string("listeners = ( { name = \"t\"; protocol = "
	    "\"echo\"; port = 7; bind = \"127.0.0.1\"; } );\n", "test", &d);
	ck_assert_ptr_nonnull(r->cfg);
	cfg_diag_free(&d);
	r->cfg->listeners[0].proto = p;
	ck_assert_ptr_nonnull(r->lis = listener_new(&r->cfg->listeners[0]));
	ck_assert_ptr_nonnull(r->base = event_base_new());
	ck_assert_int_eq(conn_home_init(&r->home, r->base, &r->stats, 0), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, r->sv), 0);
	ck_assert_int_ne(fcntl(r->sv[0], F_SETFL, O_NONBLOCK), -1);

	/* What the acceptor and the dispatcher do before handing it over. */
	memset(&ho, 0, sizeof(ho));
	ho.fd = r->sv[0];
	ho.lc = &r->cfg->listeners[0];
	ck_assert_int_eq(listener_admit(r->lis, &ho.peer, &per_source),
	    EO_ADMIT_OK);
	ho.lis = r->lis;
	cfg_ref(r->cfg);
	stats_add(&r->stats.conns, 1);
	atomic_fetch_add(&r->home.load, 1);
	conn_adopt(&r->home, &ho);
	ck_assert_uint_eq(r->home.nconns, 1);
}

static void
rig_down(struct rig *r)
{
	conn_home_fini(&r->home);
	event_base_free(r->base);
	close(r->sv[1]);
	listener_unref(r->lis);
	cfg_unref(r->cfg);
	stats_fini(&r->stats);
}

/* Turns the loop until the connection is gone or n rounds are done. */
static void
rig_run(struct rig *r, int n)
{
	while (n-- > 0 && r->home.nconns > 0)
		event_base_loop(r->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* msg (at most 8 bytes) sent, the loop turned: msg comes back. */
static void
echo_once(struct rig *r, const char *msg)
{
	char buf[8];
	ssize_t n = (ssize_t)strlen(msg);

	ck_assert_int_eq(write(r->sv[1], msg, (size_t)n), n);
	rig_run(r, 10);
	ck_assert_int_eq(read(r->sv[1], buf, sizeof(buf)), n);
	ck_assert_int_eq(memcmp(buf, msg, (size_t)n), 0);
}

/* The rig itself: echo through a socketpair answers. */
START_TEST(test_echo_served)
{
	struct rig r;

	rig_up(&r, &proto_echo);
	echo_once(&r, "hello");
	ck_assert_uint_eq(r.home.nconns, 1);
	rig_down(&r);
}
END_TEST

/*
 * A short connection (one request, then the client's FIN) is served and
 * closed from the park set: its end, coming at once after its request,
 * is not taken for a busy connection's input, and no read event is
 * ever made for it (no page of events allocated, none kept spare).
 */
START_TEST(test_short_connection_takes_no_event)
{
	struct rig r;
	char buf[8];

	rig_up(&r, &proto_echo);
	echo_once(&r, "hello");
	ck_assert_int_eq(shutdown(r.sv[1], SHUT_WR), 0);
	rig_run(&r, 10);
	ck_assert_uint_eq(r.home.nconns, 0);
	ck_assert_int_eq(read(r.sv[1], buf, sizeof(buf)), 0);
	ck_assert_ptr_null(r.home.ev_pages);
	ck_assert_ptr_null(r.home.ev_spare);
	rig_down(&r);
}
END_TEST

/*
 * A protocol that speaks first and closes (daytime, time, qotd), with
 * nothing left to flush: the connection lingers for the client's end
 * with its reading as it was, not stopped and started again.  Its
 * epoll calls: one to watch it, one to stop at the close (four before).
 */
START_TEST(test_greeting_lingers_as_watched)
{
	struct rig r;
	char buf[16];

	epoll_ctls = 0;
	rig_up(&r, &proto_hello);
	ck_assert_int_eq(read(r.sv[1], buf, sizeof(buf)), 7);
	ck_assert_int_eq(memcmp(buf, "hello\r\n", 7), 0);
	ck_assert_int_eq(read(r.sv[1], buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.home.nconns, 1);	/* lingering */
	ck_assert_uint_eq(epoll_ctls, 1);
	ck_assert_int_eq(shutdown(r.sv[1], SHUT_WR), 0);
	rig_run(&r, 10);
	ck_assert_uint_eq(r.home.nconns, 0);
	ck_assert_uint_eq(epoll_ctls, 2);
	rig_down(&r);
}
END_TEST

/* One whose input comes again at once is busy: it gets its event. */
START_TEST(test_busy_connection_takes_event)
{
	struct rig r;

	rig_up(&r, &proto_echo);
	echo_once(&r, "one");
	echo_once(&r, "two");
	ck_assert_ptr_nonnull(r.home.ev_pages);
	ck_assert_uint_eq(r.home.nconns, 1);
	rig_down(&r);
}
END_TEST

/*
 * Issue 10 #8: a protocol that reports "full" without taking any input
 * while nothing is queued made conn_serve() call it again at once, for
 * ever (this test then hits Check's timeout).  The connection must be
 * closed as a protocol error instead, and the worker go on.
 */
START_TEST(test_protocol_full_without_progress_closed)
{
	struct rig r;
	char buf[8];

	rig_up(&r, &proto_stuck);
	ck_assert_int_eq(write(r.sv[1], "hello", 5), 5);
	rig_run(&r, 10);
	ck_assert_uint_eq(r.home.nconns, 0);
	ck_assert_uint_eq(atomic_load(&r.home.load), 0);
	ck_assert_uint_eq(listener_nconns(r.lis), 0);
	/* The client sees the end: EOF or a reset, never a hang. */
	ck_assert_int_le(read(r.sv[1], buf, sizeof(buf)), 0);
	rig_down(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("conn");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_echo_served);
	tcase_add_test(tc, test_short_connection_takes_no_event);
	tcase_add_test(tc, test_busy_connection_takes_event);
	tcase_add_test(tc, test_greeting_lingers_as_watched);
	tcase_add_test(tc, test_protocol_full_without_progress_closed);
	suite_add_tcase(s, tc);
	return check_run(s);
}
