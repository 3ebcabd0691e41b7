/*
 * log: levels and their names, the journal "<N>" form against the
 * timestamped one, log_warn's strerror, empty, unformattable and
 * over-long messages, one write per line.
 *
 * stderr is a packet-mode pipe (O_DIRECT) for each test: every write(2)
 * is read back as one packet, so the test sees exactly the bytes of each
 * write and how many writes there were.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "log.h"
#include "check_main.h"

#define LINE_MAX_BYTES	2047	/* log.c's longest line, '\n' included */

static int	cap_rd = -1;	/* read end; the write end is stderr */
static int	saved_stderr = -1;

static void
cap_setup(void)
{
	int fds[2];

	ck_assert_int_eq(pipe2(fds, O_DIRECT | O_CLOEXEC), 0);
	ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ne(saved_stderr, -1);
	ck_assert_int_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
	close(fds[1]);
	cap_rd = fds[0];
	unsetenv("JOURNAL_STREAM");
	log_init();
	log_set_level(EO_LOG_INFO);
}

static void
cap_teardown(void)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(cap_rd);
}

/* Makes log.c see stderr as journald's stream, as systemd would. */
static void
as_journal(void)
{
	struct stat st;
	char js[64];

	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	ck_assert_int_eq(setenv("JOURNAL_STREAM", js, 1), 0);
	log_init();
}

/* One write's bytes (NUL-terminated into buf); -1 if nothing was written. */
static ssize_t
next_write(char *buf, size_t size)
{
	ssize_t n = read(cap_rd, buf, size - 1);

	if (n == -1) {
		ck_assert_int_eq(errno, EAGAIN);
		return -1;
	}
	buf[n] = '\0';
	return n;
}

/* Nothing was written. */
static void
expect_nothing(void)
{
	char buf[16];

	ck_assert_int_eq(next_write(buf, sizeof(buf)), -1);
}

/* The next write is exactly want, and nothing follows it. */
static void
expect_only(const char *want)
{
	char buf[4 * LINE_MAX_BYTES];
	ssize_t n = next_write(buf, sizeof(buf));

	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_mem_eq(buf, want, strlen(want));
	expect_nothing();
}

START_TEST(test_level_names)
{
	static const struct {
		const char	*name;
		int		 level;
	} t[] = {
		{ "error", EO_LOG_ERR }, { "warning", EO_LOG_WARNING },
		{ "notice", EO_LOG_NOTICE }, { "info", EO_LOG_INFO },
		{ "debug", EO_LOG_DEBUG },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_assert_int_eq(log_level_from_name(t[i].name), t[i].level);
		ck_assert_str_eq(log_level_name(t[i].level), t[i].name);
	}
	ck_assert_int_eq(log_level_from_name("DeBuG"), EO_LOG_DEBUG);
	ck_assert_int_eq(log_level_from_name("warn"), -1);
	ck_assert_int_eq(log_level_from_name(""), -1);
	ck_assert_str_eq(log_level_name(0), "?");
}
END_TEST

/* Each level is written at and above its threshold, never below. */
START_TEST(test_level_threshold)
{
	char want[32];
	int set, lv;

	as_journal();
	for (set = EO_LOG_ERR; set <= EO_LOG_DEBUG; set++) {
		log_set_level(set);
		for (lv = EO_LOG_ERR; lv <= EO_LOG_DEBUG; lv++) {
			ck_assert_int_eq(log_enabled(lv), lv <= set);
			log_msg(lv, "m%d", lv);
			if (lv <= set) {
				snprintf(want, sizeof(want), "<%d>m%d\n", lv,
				    lv);
				expect_only(want);
			} else
				expect_nothing();
		}
	}
}
END_TEST

/* log_debug must not even format below debug: arguments have effects. */
START_TEST(test_debug_not_formatted)
{
	int calls = 0;

	log_debug("%d", ++calls);
	ck_assert_int_eq(calls, 0);
	expect_nothing();
	log_set_level(EO_LOG_DEBUG);
	as_journal();
	log_debug("%d", ++calls);
	ck_assert_int_eq(calls, 1);
	expect_only("<7>1\n");
}
END_TEST

START_TEST(test_journal_prefix)
{
	as_journal();
	log_err("disk %s", "gone");
	expect_only("<3>disk gone\n");
	log_warnx("w");
	expect_only("<4>w\n");
	log_notice("n");
	expect_only("<5>n\n");
	log_info("i");
	expect_only("<6>i\n");
}
END_TEST

static void
expect_stamped(const char *level, const char *msg)
{
	char buf[LINE_MAX_BYTES + 1], pat[256];
	regex_t re;

	ck_assert_int_gt(next_write(buf, sizeof(buf)), 0);
	snprintf(pat, sizeof(pat), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
	    "[0-9]{2}:[0-9]{2}\\.[0-9]{3} %s: %s\n$", level, msg);
	ck_assert_int_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, buf, 0, NULL, 0) == 0, "got \"%s\"", buf);
	regfree(&re);
	expect_nothing();
}

START_TEST(test_timestamped)
{
	log_info("listening on %s", "127.0.0.1:7");
	expect_stamped("info", "listening on 127\\.0\\.0\\.1:7");
	log_err("e");
	expect_stamped("error", "e");
}
END_TEST

/* A child whose stderr was redirected inherits JOURNAL_STREAM: it is
   not journald's stream, so lines keep their timestamp. */
START_TEST(test_journal_stream_elsewhere)
{
	struct stat st;
	char js[64];

	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_init();
	log_info("x");
	expect_stamped("info", "x");
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init();
	log_info("y");
	expect_stamped("info", "y");
}
END_TEST

START_TEST(test_warn_strerror)
{
	char want[256];

	as_journal();
	errno = ENOENT;
	log_warn("open %s", "/nope");
	ck_assert_int_eq(errno, ENOENT);	/* callers may log, then test */
	snprintf(want, sizeof(want), "<4>open /nope: %s\n", strerror(ENOENT));
	expect_only(want);
	errno = ENOENT;
	log_warnx("open %s", "/nope");
	expect_only("<4>open /nope\n");
}
END_TEST

/*
 * A line break in logged text (a config string: log_level = "x\n<0>y")
 * started a second line that journald read at emergency priority.
 */
START_TEST(test_control_bytes_cannot_forge_a_line)
{
	as_journal();
	log_err("log_level must be one of ...; not \"%s\"", "x\n<0>forged\r\x7f\tok");
	expect_only("<3>log_level must be one of ...; not \"x?<0>forged??\tok\"\n");
}
END_TEST

/*
 * Issue 10 #3: an empty message counted the whole buffer as written, so
 * about 2 KiB of uninitialised stack went to stderr or the journal.
 */
START_TEST(test_empty_message_sends_no_stack)
{
	as_journal();
	log_info("%s", "");
	expect_only("<6>\n");
	errno = EPIPE;
	log_warn("%s", "");
	{
		char want[128];

		snprintf(want, sizeof(want), "<4>: %s\n", strerror(EPIPE));
		expect_only(want);
	}
}
END_TEST

/* Issue 10 #3, the other way in: vsnprintf failing (a wide character
   the C locale cannot encode) sent the same stack bytes. */
START_TEST(test_unformattable_sends_no_stack)
{
	as_journal();
	log_info("q %ls", L"\u00e9");
	expect_only("<6>q %ls\n");
}
END_TEST

/* Cut at the line's size, still one line ending in '\n'. */
START_TEST(test_long_message_truncated)
{
	char big[3 * LINE_MAX_BYTES], buf[4 * LINE_MAX_BYTES];
	ssize_t n;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	as_journal();
	errno = EIO;
	log_warn("%s", big);
	n = next_write(buf, sizeof(buf));
	ck_assert_int_eq(n, LINE_MAX_BYTES);
	ck_assert_mem_eq(buf, "<4>xxx", 6);
	ck_assert_ptr_eq(memchr(buf, '\n', (size_t)n), buf + n - 1);
	ck_assert_uint_eq(strspn(buf + 3, "x"), (size_t)n - 4);
	expect_nothing();

	/* Just fits: nothing cut. */
	big[LINE_MAX_BYTES - 3 - 1] = '\0';
	log_info("%s", big);
	n = next_write(buf, sizeof(buf));
	ck_assert_int_eq(n, LINE_MAX_BYTES);
	ck_assert_uint_eq(strspn(buf + 3, "x"), (size_t)n - 4);
	ck_assert_int_eq(buf[n - 1], '\n');
}
END_TEST

/* Many lines, each its own write: threads cannot split one.  (A packet
   pipe holds 16 packets: stay below.) */
START_TEST(test_one_write_per_line)
{
	char buf[LINE_MAX_BYTES + 1], want[32];
	int i;

	as_journal();
	for (i = 0; i < 12; i++)
		log_info("line %d of %s", i, "twelve");
	for (i = 0; i < 12; i++) {
		snprintf(want, sizeof(want), "<6>line %d of twelve\n", i);
		ck_assert_int_eq(next_write(buf, sizeof(buf)),
		    (ssize_t)strlen(want));
		ck_assert_str_eq(buf, want);
	}
	expect_nothing();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, cap_setup, cap_teardown);
	tcase_add_test(tc, test_level_names);
	tcase_add_test(tc, test_level_threshold);
	tcase_add_test(tc, test_debug_not_formatted);
	tcase_add_test(tc, test_journal_prefix);
	tcase_add_test(tc, test_timestamped);
	tcase_add_test(tc, test_journal_stream_elsewhere);
	tcase_add_test(tc, test_warn_strerror);
	tcase_add_test(tc, test_empty_message_sends_no_stack);
	tcase_add_test(tc, test_unformattable_sends_no_stack);
	tcase_add_test(tc, test_long_message_truncated);
	tcase_add_test(tc, test_one_write_per_line);
	tcase_add_test(tc, test_control_bytes_cannot_forge_a_line);
	suite_add_tcase(s, tc);
	return check_run(s);
}
