/*
 * stats: the watchdog's rule for a stuck worker (issue 10: the watchdog
 * withheld while a worker is stuck had no test), and the close reasons'
 * labels.
 */
#include <check.h>
#include <time.h>

#include "stats.h"
#include "check_main.h"

/* A worker whose heartbeat stops is stuck only past the limit. */
START_TEST(test_watchdog_withheld_while_worker_stuck)
{
	static const struct {
		unsigned long	beat;
		time_t		now;
		int		stuck;
	} steps[] = {
		{ 1, 100, 0 },		/* moved: seen at 100 */
		{ 2, 101, 0 },		/* moved: seen at 101 */
		{ 2, 103, 0 },		/* 2 s still: within 3 */
		{ 2, 104, 0 },		/* 3 s: not more than the limit */
		{ 2, 105, 1 },		/* 4 s: stuck, watchdog withheld */
		{ 2, 200, 1 },		/* still stuck */
		{ 3, 201, 0 },		/* turns again: fed again */
		{ 3, 204, 0 },
		{ 3, 205, 1 },
	};
	unsigned long seen = 0;
	time_t seen_at = 100;
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		ck_assert_msg(stats_beat_stuck(steps[i].beat, &seen, &seen_at,
		    steps[i].now, 3) == steps[i].stuck, "step %zu", i);
	ck_assert_uint_eq(seen, 3);
	ck_assert_int_eq(seen_at, 201);
}
END_TEST

START_TEST(test_stuck_after)
{
	ck_assert_int_eq(stats_stuck_after(0), 3);
	ck_assert_int_eq(stats_stuck_after(1000000), 3);
	ck_assert_int_eq(stats_stuck_after(20000000), 20);
}
END_TEST

/*
 * A connection a restart closes (TLS) was counted in
 * connections_closed_total under reason "error", which the metrics
 * table gives to a failed system call.  (A client refused once its
 * PROXY header named it is counted refused only, never closed:
 * integration.metrics checks that.)
 */
START_TEST(test_restart_close_not_error)
{
	static const struct {
		const char	*why;		/* as conn.c closes with it */
		const char	*label;
	} cases[] = {
		{ "restart (TLS state cannot be carried)", "restart" },
		{ "restart (ending when it was carried)", "restart" },
		{ "error: read: Connection timed out", "error" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(stats_close_name(stats_close_reason(
		    cases[i].why)), cases[i].label);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, test_watchdog_withheld_while_worker_stuck);
	tcase_add_test(tc, test_stuck_after);
	tcase_add_test(tc, test_restart_close_not_error);
	suite_add_tcase(s, tc);
	return check_run(s);
}
