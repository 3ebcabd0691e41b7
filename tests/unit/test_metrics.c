/*
 * metrics and the counters behind it (issue 13): close reasons counted
 * by kind, label escaping, /proc/self/stat parsing, the lag histogram,
 * and per-thread slots summed.
 */
#include <check.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"
#include "check_main.h"

/* Every reason conn.c writes lands in its own kind, not in "error". */
START_TEST(test_close_reason_kinds)
{
	static const struct {
		const char		*why;
		enum stats_close	 r;
	} cases[] = {
		{ "client EOF", EO_CLOSE_CLIENT_EOF },
		{ "client reset", EO_CLOSE_CLIENT_RESET },
		{ "idle_timeout (300 s)", EO_CLOSE_IDLE_TIMEOUT },
		{ "write_timeout (30 s)", EO_CLOSE_WRITE_TIMEOUT },
		{ "question_timeout (5 s)", EO_CLOSE_UNIT_TIMEOUT },
		{ "max_questions (10)", EO_CLOSE_MAX_QUESTIONS },
		{ "max_question_length (1024)", EO_CLOSE_MAX_QUESTION_LENGTH },
		{ "protocol closed", EO_CLOSE_PROTOCOL_CLOSED },
		{ "protocol error", EO_CLOSE_PROTOCOL_ERROR },
		{ "evicted", EO_CLOSE_EVICTED },
		{ "shutdown", EO_CLOSE_SHUTDOWN },
		{ "shutdown (shutdown_timeout over)", EO_CLOSE_SHUTDOWN },
		{ "error: read: Bad file descriptor", EO_CLOSE_ERROR },
		{ "error: out of memory", EO_CLOSE_ERROR },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(stats_close_reason(cases[i].why) == cases[i].r,
		    "%s", cases[i].why);
	ck_assert_str_eq(stats_close_name(EO_CLOSE_MAX_QUESTION_LENGTH),
	    "max_question_length");
	ck_assert_str_eq(stats_refusal_name(EO_REFUSED_SOURCE),
	    "max_connections_per_source");
}
END_TEST

START_TEST(test_label_escape)
{
	char out[32];

	metrics_escape("a\"b\\c\nd", out, sizeof(out));
	ck_assert_str_eq(out, "a\\\"b\\\\c\\nd");
	/* Never cut inside an escape. */
	metrics_escape("ab\"", out, 4);
	ck_assert_str_eq(out, "ab");
	metrics_escape("plain", out, sizeof(out));
	ck_assert_str_eq(out, "plain");
}
END_TEST

/* The name may hold ") (": fields count from the last ')'. */
START_TEST(test_proc_stat_parse)
{
	const char *line = "4242 (echo) (x) y) S 1 4242 4242 0 -1 4194560 "
	    "100 0 0 0 17 5 0 0 20 0 3 0 12345 104857600 2048 "
	    "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n";
	struct proc_stat ps;

	ck_assert_int_eq(metrics_proc_stat(line, &ps), 0);
	ck_assert_uint_eq(ps.utime, 17);
	ck_assert_uint_eq(ps.stime, 5);
	ck_assert_uint_eq(ps.starttime, 12345);
	ck_assert_uint_eq(ps.vsize, 104857600);
	ck_assert_uint_eq(ps.rss, 2048);
	ck_assert_int_eq(metrics_proc_stat("4242 (echo) S 1 2", &ps), -1);
	ck_assert_int_eq(metrics_proc_stat("garbage", &ps), -1);
}
END_TEST

/* Bucket bounds are inclusive (le); beyond the last is +Inf. */
START_TEST(test_lag_buckets)
{
	struct stats st;
	struct stats_sum sum;

	ck_assert_int_eq(stats_init(&st, 2), 0);
	stats_lag(stats_slot(st.all, 0), 0);
	stats_lag(stats_slot(st.all, 0), 1000);
	stats_lag(stats_slot(st.all, 1), 1001);
	stats_lag(stats_slot(st.all, 1), 9000000);
	memset(&sum, 0, sizeof(sum));
	stats_sum(st.all, &sum);
	ck_assert_uint_eq(sum.lag[0], 2);
	ck_assert_uint_eq(sum.lag[1], 1);
	ck_assert_uint_eq(sum.lag[EO_NLAG], 1);
	ck_assert_uint_eq(sum.lag_us, 9002001);
	stats_fini(&st);
}
END_TEST

/* Each thread's slot is its own; the sum adds them all, acceptor too. */
START_TEST(test_slots_summed)
{
	struct stats st;
	struct stats_lis *l;
	struct stats_sum sum;
	unsigned i;

	ck_assert_int_eq(stats_init(&st, 3), 0);
	ck_assert_uint_eq(stats_acceptor(), 3);
	ck_assert_ptr_nonnull(l = stats_lis_new());
	for (i = 0; i <= 3; i++) {
		stats_bump(&stats_slot(l, i)->bytes_in, 10 * (i + 1));
		stats_bump(&stats_slot(l, i)->closed[EO_CLOSE_EVICTED], 1);
	}
	stats_bump(&stats_slot(l, stats_acceptor())->accepted, 4);
	/* Slots sit on their own cache lines. */
	ck_assert_uint_eq((uintptr_t)stats_slot(l, 1) % 64, 0);
	ck_assert_ptr_eq(stats_slot(l, 99), stats_slot(l, 3));
	memset(&sum, 0, sizeof(sum));
	stats_sum(l, &sum);
	ck_assert_uint_eq(sum.bytes_in, 100);
	ck_assert_uint_eq(sum.closed[EO_CLOSE_EVICTED], 4);
	ck_assert_uint_eq(sum.accepted, 4);
	stats_lis_free(l);
	stats_fini(&st);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, test_close_reason_kinds);
	tcase_add_test(tc, test_label_escape);
	tcase_add_test(tc, test_proc_stat_parse);
	tcase_add_test(tc, test_lag_buckets);
	tcase_add_test(tc, test_slots_summed);
	suite_add_tcase(s, tc);
	return check_run(s);
}
