/*
 * A client's address as counted and shown (peer.c): the text of a key
 * is inet_ntop's, for every IPv4 address shape (one to three digits per
 * byte) and for IPv6, and a short buffer is never overrun.
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check_main.h"
#include "peer.h"

static void
key4(struct peer_key *k, uint32_t a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_addr.s_addr = htonl(a);
	peer_key_from(k, (const struct sockaddr *)&sin);
}

/* Every byte value in every position, as inet_ntop writes it. */
START_TEST(test_peer_ipv4_as_inet_ntop)
{
	char got[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN];
	struct peer_key k;
	uint32_t v;

	for (v = 0; v < 256; v++) {
		uint32_t a = v << 24 | (255 - v) << 16 | (v * 7 & 255) << 8 |
		    (v * 13 & 255);

		key4(&k, a);
		peer_key_format(&k, got, sizeof(got));
		ck_assert_ptr_nonnull(inet_ntop(AF_INET, k.addr, want,
		    sizeof(want)));
		ck_assert_str_eq(got, want);
	}
}
END_TEST

START_TEST(test_peer_ipv6_and_mapped)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct peer_key k;
	char got[INET6_ADDRSTRLEN];

	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	peer_key_from(&k, (const struct sockaddr *)&s6);
	peer_key_format(&k, got, sizeof(got));
	ck_assert_str_eq(got, "2001:db8::1");
	inet_pton(AF_INET6, "::ffff:10.0.0.254", &s6.sin6_addr);
	peer_key_from(&k, (const struct sockaddr *)&s6);
	peer_key_format(&k, got, sizeof(got));
	ck_assert_str_eq(got, "10.0.0.254");
}
END_TEST

/* A buffer too short for the text gets "?" (as inet_ntop's failure). */
START_TEST(test_peer_short_buffer)
{
	struct peer_key k;
	char got[16];

	key4(&k, 0xffffffffu);
	memset(got, 'x', sizeof(got));
	peer_key_format(&k, got, 15);
	ck_assert_str_eq(got, "?");
	ck_assert_int_eq(got[15], 'x');
	peer_key_format(&k, got, 16);
	ck_assert_str_eq(got, "255.255.255.255");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("peer");
	TCase *tc = tcase_create("peer");

	tcase_add_test(tc, test_peer_ipv4_as_inet_ntop);
	tcase_add_test(tc, test_peer_ipv6_and_mapped);
	tcase_add_test(tc, test_peer_short_buffer);
	suite_add_tcase(s, tc);
	return check_run(s);
}
