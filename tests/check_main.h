/*
 * The one main() every Check suite here needs: run the suite, report,
 * exit 0 only if every test passed.
 */
#ifndef EO_CHECK_MAIN_H
#define EO_CHECK_MAIN_H

#include <check.h>

static inline int
check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

#endif
