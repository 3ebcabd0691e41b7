/*
 * guard: the UDP reflection guards, as a table of sources and the
 * verdict each must get.
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <unistd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "guard.h"
#include "check_main.h"

struct guard_case {
	const char		*addr;
	unsigned		 port;
	enum guard_verdict	 want;
};

static const struct guard_case guard_cases[] = {
	/* Ordinary clients. */
	{ "127.0.0.1", 40000, EO_GUARD_OK },
	{ "192.0.2.7", 1024, EO_GUARD_OK },
	{ "::1", 40000, EO_GUARD_OK },
	{ "2001:db8::1", 65535, EO_GUARD_OK },
	{ "10.1.2.3", 2048, EO_GUARD_OK },
	{ "10.1.2.3", 2050, EO_GUARD_OK },
	/* Reserved ports: other daemons' replies (an echo to chargen). */
	{ "127.0.0.1", 0, EO_GUARD_RESERVED_PORT },
	{ "127.0.0.1", 7, EO_GUARD_RESERVED_PORT },
	{ "127.0.0.1", 19, EO_GUARD_RESERVED_PORT },
	{ "192.0.2.7", 1023, EO_GUARD_RESERVED_PORT },
	{ "192.0.2.7", 2049, EO_GUARD_RESERVED_PORT },
	{ "::1", 53, EO_GUARD_RESERVED_PORT },
	/* Our own UDP services: a loop between two of them. */
	{ "127.0.0.1", 7007, EO_GUARD_OWN_PORT },
	{ "::1", 7019, EO_GUARD_OWN_PORT },
	{ "127.0.0.1", 7008, EO_GUARD_OK },
	/* Addresses no single host sends from. */
	{ "224.0.0.1", 40000, EO_GUARD_MULTICAST },
	{ "239.255.255.250", 40000, EO_GUARD_MULTICAST },
	{ "ff02::1", 40000, EO_GUARD_MULTICAST },
	{ "255.255.255.255", 40000, EO_GUARD_BROADCAST },
	{ "192.168.1.255", 40000, EO_GUARD_BROADCAST },
	{ "192.168.2.255", 40000, EO_GUARD_OK },
	{ "0.0.0.0", 40000, EO_GUARD_BOGUS_ADDR },
	{ "0.1.2.3", 40000, EO_GUARD_BOGUS_ADDR },
	{ "255.1.2.3", 40000, EO_GUARD_BOGUS_ADDR },
	{ "::", 40000, EO_GUARD_BOGUS_ADDR },
	{ "::ffff:127.0.0.1", 40000, EO_GUARD_BOGUS_ADDR },
	{ "::ffff:192.0.2.7", 40000, EO_GUARD_BOGUS_ADDR },
	{ "::192.0.2.7", 40000, EO_GUARD_BOGUS_ADDR },
	/* The address is checked before the port. */
	{ "224.0.0.1", 7, EO_GUARD_MULTICAST },
};

static void
sockaddr_of(struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return;
	}
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
}

static struct guard *
test_guard(void)
{
	uint16_t ports[] = { 7019, 7007, 7019 };
	struct in_addr b;

	inet_pton(AF_INET, "192.168.1.255", &b);
	return guard_new(ports, 3, &b.s_addr, 1);
}

START_TEST(test_guard_table)
{
	const struct guard_case *c = &guard_cases[_i];
	struct guard *g = test_guard();
	struct sockaddr_storage ss;

	ck_assert_ptr_nonnull(g);
	sockaddr_of(&ss, c->addr, c->port);
	ck_assert_msg(guard_check(g, (struct sockaddr *)&ss) == c->want,
	    "%s port %u: got %d (%s), want %d", c->addr, c->port,
	    guard_check(g, (struct sockaddr *)&ss),
	    guard_why(guard_check(g, (struct sockaddr *)&ss)), c->want);
	guard_unref(g);
}
END_TEST

/* No ports of ours, no interface broadcasts: the fixed rules remain. */
START_TEST(test_guard_empty)
{
	struct guard *g = guard_new(NULL, 0, NULL, 0);
	struct sockaddr_storage ss;

	sockaddr_of(&ss, "127.0.0.1", 7007);
	ck_assert_int_eq(guard_check(g, (struct sockaddr *)&ss), EO_GUARD_OK);
	sockaddr_of(&ss, "255.255.255.255", 7007);
	ck_assert_int_eq(guard_check(g, (struct sockaddr *)&ss),
	    EO_GUARD_BROADCAST);
	sockaddr_of(&ss, "127.0.0.1", 1000);
	ck_assert_int_eq(guard_check(g, (struct sockaddr *)&ss),
	    EO_GUARD_RESERVED_PORT);
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(guard_check(g, (struct sockaddr *)&ss),
	    EO_GUARD_BOGUS_ADDR);
	guard_unref(g);
}
END_TEST

/* Whether a in network order is the dotted quad text. */
static int
is_addr(uint32_t a, const char *text)
{
	struct in_addr want;

	ck_assert_int_eq(inet_pton(AF_INET, text, &want), 1);
	return a == want.s_addr;
}

/*
 * Loopback has no broadcast address, so on a bare machine any answer
 * passes: give the test an interface with two.  A dummy link in a
 * network namespace of the test's own, or a veth pair where the kernel
 * has no dummy links; as root only, as CI runs.
 */
START_TEST(test_guard_local_broadcasts)
{
	uint32_t *b = NULL;
	int n;

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: a network namespace needs root\n");
		return;
	}
	/* Check runs each test in a child process: the namespace ends
	   with it. */
	ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare: %s",
	    strerror(errno));
	ck_assert_int_eq(system("{ ip link add eo0 type dummy 2>/dev/null || "
	    "ip link add eo0 type veth peer name eo1; } && "
	    "ip addr add 192.0.2.1/24 brd + dev eo0 && "
	    "ip addr add 198.51.100.5/30 brd + dev eo0 && "
	    "ip addr add 127.0.0.1/8 dev lo && ip link set lo up"), 0);
	n = guard_local_broadcasts(&b);
	ck_assert_int_eq(n, 2);
	ck_assert((is_addr(b[0], "192.0.2.255") &&
	    is_addr(b[1], "198.51.100.7")) || (is_addr(b[1], "192.0.2.255") &&
	    is_addr(b[0], "198.51.100.7")));
	free(b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("guard");
	TCase *tc = tcase_create("guard");

	tcase_add_loop_test(tc, test_guard_table, 0,
	    (int)(sizeof(guard_cases) / sizeof(guard_cases[0])));
	tcase_add_test(tc, test_guard_empty);
	tcase_add_test(tc, test_guard_local_broadcasts);
	suite_add_tcase(s, tc);
	return check_run(s);
}
