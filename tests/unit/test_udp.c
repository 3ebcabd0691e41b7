/*
 * udp: the per-source reply rate limit, echo's datagram hook, and the
 * config's rules for UDP listeners.
 */
#include <check.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "stats.h"
#include "udp.h"
#include "check_main.h"

START_TEST(test_rate_burst_then_steady)
{
	uint64_t tat = 0, now = 1000000;
	int i, n = 0;

	/* A burst of 50 at once: the limit's 5 pass. */
	for (i = 0; i < 50; i++)
		n += udp_rate_allow(&tat, now, 5);
	ck_assert_int_eq(n, 5);
	/* A fifth of a second later: one more. */
	ck_assert_int_eq(udp_rate_allow(&tat, now + 200000, 5), 1);
	ck_assert_int_eq(udp_rate_allow(&tat, now + 200000, 5), 0);
	/* After a quiet second, a whole burst again. */
	for (i = 0, n = 0; i < 50; i++)
		n += udp_rate_allow(&tat, now + 2200000, 5);
	ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(test_rate_zero_is_unlimited)
{
	uint64_t tat = 0;
	int i;

	for (i = 0; i < 10000; i++)
		ck_assert_int_eq(udp_rate_allow(&tat, 5, 0), 1);
}
END_TEST

START_TEST(test_rate_high)
{
	uint64_t tat = 0;
	int i, n = 0;

	/* Over a million a second the interval would be 0 microseconds. */
	for (i = 0; i < 3000000; i++)
		n += udp_rate_allow(&tat, 10, 2000000);
	ck_assert_int_gt(n, 0);
}
END_TEST

/* Through the shared table, one source alone: the same GCRA. */
START_TEST(test_rate_table_one_source)
{
	struct udp_rate *t = udp_rate_new(64, 0x9e3779b97f4a7c15ULL);
	uint64_t now = 1000000;
	uint32_t key = 7;
	int i, n = 0;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < 50; i++)
		n += udp_rate_check(t, &key, sizeof(key), now, 5);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(udp_rate_check(t, &key, sizeof(key), now + 200000,
	    5), 1);
	ck_assert_int_eq(udp_rate_check(t, &key, sizeof(key), now + 200000,
	    5), 0);
	/* Another source has a burst of its own. */
	key = 8;
	for (i = 0, n = 0; i < 50; i++)
		n += udp_rate_check(t, &key, sizeof(key), now, 5);
	ck_assert_int_eq(n, 5);
	udp_rate_unref(t);
}
END_TEST

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Issue 30: a flood of forged sources, 8 random ones for each of the
 * victim's, 100,000 a second within 127/8, for 10 seconds against a
 * limit of 100 and the default table.  The victim is never answered
 * when its own GCRA would refuse (the old table of one slot per source
 * gave it a fresh burst whenever one of the 8 landed in its slot:
 * 1,566 to 1,905 replies a second), and the flood's one-off sources
 * are still answered: crowding costs them almost nothing.
 */
START_TEST(test_rate_table_flood_never_undercounts_victim)
{
	struct udp_rate *t = udp_rate_new(4096, 0x9e3779b97f4a7c15ULL);
	uint64_t rng = 88172645463325252ULL, tat = 0, now;
	uint32_t victim = 0x7f000005, src;
	long i, nvictim = 0, nrandom = 0, okrandom = 0;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < 1000000; i++) {
		now = 1000000 + (uint64_t)i * 10;	/* 100,000/s */
		if (i % 9 == 0) {
			if (udp_rate_check(t, &victim, sizeof(victim), now,
			    100)) {
				ck_assert_msg(udp_rate_allow(&tat, now, 100),
				    "victim answered beyond its limit at "
				    "%lu us", (unsigned long)now);
				nvictim++;
			}
			continue;
		}
		src = 0x7f000000 | (uint32_t)(xorshift(&rng) & 0xffffff);
		nrandom++;
		okrandom += udp_rate_check(t, &src, sizeof(src), now, 100);
	}
	/* 10 s: a burst of 100, then 100 a second. */
	ck_assert_int_le(nvictim, 100 + 1000);
	ck_assert_int_ge(nvictim, 1000);
	ck_assert_msg(okrandom * 100 >= nrandom * 99, "%ld of %ld answered",
	    okrandom, nrandom);
	udp_rate_unref(t);
}
END_TEST

START_TEST(test_echo_dgram)
{
	unsigned char in[65507], out[65507];
	uint64_t rng = 1;
	size_t i;

	ck_assert_ptr_nonnull(proto_echo.dgram);
	ck_assert_int_eq(proto_echo.amplifies, 0);
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7);
	ck_assert_uint_eq(proto_echo.dgram(NULL, in, sizeof(in), out,
	    sizeof(out), &rng), sizeof(in));
	ck_assert_int_eq(memcmp(in, out, sizeof(in)), 0);
	/* An empty datagram: the hook's 0 means no reply. */
	ck_assert_uint_eq(proto_echo.dgram(NULL, in, 0, out, sizeof(out),
	    &rng), 0);
	/* No room: no reply rather than a cut one. */
	ck_assert_uint_eq(proto_echo.dgram(NULL, in, 10, out, 9, &rng), 0);
	ck_assert_ptr_null(proto_oracle.dgram);
}
END_TEST

static struct cfg *
load(const char *text, struct cfg_diag *d)
{
	cfg_diag_init(d);
	return cfg_load_string(text, "test.conf", d);
}

START_TEST(test_config_udp)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"t\"; protocol = \"echo\"; port = 7007; "
	    "bind = \"127.0.0.1\"; },\n"
	    "{ name = \"u\"; protocol = \"echo\"; port = 7007; "
	    "bind = \"127.0.0.1\"; transport = \"udp\"; "
	    "udp_rate_limit = 7; udp_rate_table = 64; } );", &d);

	/* One port over TCP and UDP: no clash. */
	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_int_eq(cfg->listeners[0].udp, 0);
	ck_assert_uint_eq(cfg->listeners[0].udp_rate, 100);
	ck_assert_int_eq(cfg->listeners[1].udp, 1);
	ck_assert_uint_eq(cfg->listeners[1].udp_rate, 7);
	ck_assert_uint_eq(cfg->listeners[1].udp_rate_table, 64);
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(test_config_udp_clash)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"u\"; protocol = \"echo\"; port = 7007; "
	    "bind = \"127.0.0.1\"; transport = \"udp\"; },\n"
	    "{ name = \"v\"; protocol = \"echo\"; port = 7007; "
	    "bind = \"127.0.0.1\"; transport = \"udp\"; } );", &d);

	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(d.msgs[0], "clashes") != NULL, "%s", d.msgs[0]);
	cfg_diag_free(&d);
}
END_TEST

/* The oracle has no dgram hook: a FILE:LINE error, at transport. */
START_TEST(test_config_oracle_udp)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"o\"; protocol = \"oracle\"; port = 7007;\n"
	    "  transport = \"udp\"; bind = \"::1\"; } );", &d);

	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_msg(strstr(d.msgs[0], "test.conf:3: ") != NULL &&
	    strstr(d.msgs[0], "oracle serves TCP only") != NULL, "%s",
	    d.msgs[0]);
	cfg_diag_free(&d);
}
END_TEST

START_TEST(test_config_bad_transport)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"o\"; protocol = \"echo\"; port = 7007;\n"
	    "  transport = \"sctp\"; udp_rate_table = 0; bind = \"::1\"; "
	    "} );", &d);

	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.n, 2);
	ck_assert_msg(strstr(d.msgs[0], "test.conf:3: ") != NULL &&
	    strstr(d.msgs[0], "\"tcp\" or \"udp\"") != NULL, "%s", d.msgs[0]);
	cfg_diag_free(&d);
}
END_TEST

/* The PROXY header precedes a stream: over UDP, FILE:LINE at the key. */
START_TEST(test_config_proxy_udp)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"u\"; protocol = \"echo\"; port = 7007;\n"
	    "  transport = \"udp\"; bind = \"::1\";\n"
	    "  proxy_protocol = true; proxy_from = [\"10.0.0.1\"]; } );", &d);

	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_msg(strstr(d.msgs[0], "test.conf:4: ") != NULL &&
	    strstr(d.msgs[0], "PROXY protocol is TCP only") != NULL, "%s",
	    d.msgs[0]);
	cfg_diag_free(&d);
}
END_TEST

/* metrics has no dgram hook: evhttp serves it, over TCP only. */
START_TEST(test_config_metrics_udp)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"m\"; protocol = \"metrics\"; port = 9107;\n"
	    "  transport = \"udp\"; bind = \"::1\"; } );", &d);

	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_msg(strstr(d.msgs[0], "test.conf:3: ") != NULL &&
	    strstr(d.msgs[0], "metrics serves TCP only") != NULL, "%s",
	    d.msgs[0]);
	cfg_diag_free(&d);
}
END_TEST

/* allow and deny are kept on a UDP listener; chargen amplifies. */
START_TEST(test_config_udp_access)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = (\n"
	    "{ name = \"u\"; protocol = \"echo\"; port = 7007;\n"
	    "  transport = \"udp\"; bind = \"::1\"; allow = [\"::1\"];\n"
	    "  deny = [\"10.0.0.0/8\"]; } );", &d);

	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(cfg->listeners[0].allow.n, 1);
	ck_assert_uint_eq(cfg->listeners[0].deny.n, 1);
	cfg_unref(cfg);
	cfg_diag_free(&d);
	cfg = load("listeners = (\n"
	    "{ name = \"c\"; protocol = \"chargen\"; port = 7019;\n"
	    "  transport = \"udp\"; bind = \"::1\"; } );", &d);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(d.msgs[0], "allow_amplification") != NULL, "%s",
	    d.msgs[0]);
	cfg_diag_free(&d);
	cfg = load("listeners = (\n"
	    "{ name = \"c\"; protocol = \"chargen\"; port = 7019;\n"
	    "  transport = \"udp\"; bind = \"::1\";\n"
	    "  allow_amplification = true; } );", &d);
	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	cfg_unref(cfg);
	cfg_diag_free(&d);
	ck_assert_str_eq(stats_udp_drop_name(EO_UDP_DENIED), "denied");
	ck_assert_str_eq(stats_udp_drop_name(EO_UDP_RATE), "rate_limit");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("udp");
	TCase *tc = tcase_create("udp");

	tcase_add_test(tc, test_rate_burst_then_steady);
	tcase_add_test(tc, test_rate_zero_is_unlimited);
	tcase_add_test(tc, test_rate_high);
	tcase_add_test(tc, test_rate_table_one_source);
	tcase_add_test(tc, test_rate_table_flood_never_undercounts_victim);
	tcase_add_test(tc, test_echo_dgram);
	tcase_add_test(tc, test_config_udp);
	tcase_add_test(tc, test_config_udp_clash);
	tcase_add_test(tc, test_config_oracle_udp);
	tcase_add_test(tc, test_config_bad_transport);
	tcase_add_test(tc, test_config_proxy_udp);
	tcase_add_test(tc, test_config_metrics_udp);
	tcase_add_test(tc, test_config_udp_access);
	suite_add_tcase(s, tc);
	return check_run(s);
}
