/*
 * config: every validation error, with the line it names, and the
 * values a valid file produces.
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "protocol.h"
#include "check_main.h"

/* A valid listener, to append where a case needs one. */
#define OK_LISTENERS							\
	"listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"	\
	" bind = \"127.0.0.1\"; } );\n"

/* One bad configuration: its text, the line and words of the error. */
struct bad_case {
	const char	*text;
	int		 line;
	const char	*words;
};

static const struct bad_case bad_cases[] = {
	/* syntax */
	{ "workers = ;\n" OK_LISTENERS, 1, "syntax error" },
	{ "\n\nlisteners = ( { name = \"e\" }\n", 4, "syntax error" },
	/* the top level */
	{ "idle_timout = 5;\n" OK_LISTENERS, 1,
	  "unknown setting \"idle_timout\"" },
	{ "workers = \"two\";\n" OK_LISTENERS, 1, "workers must be an integer" },
	{ "workers = 1000;\n" OK_LISTENERS, 1,
	  "workers must be 0 to 256, not 1000" },
	{ "max_connections = 0;\n" OK_LISTENERS, 1,
	  "max_connections must be 1 to 1000000, not 0" },
	{ "\nidle_timeout = -1;\n" OK_LISTENERS, 2,
	  "idle_timeout must be 0 to 86400, not -1" },
	{ "write_timeout = 1.5;\n" OK_LISTENERS, 1,
	  "write_timeout must be an integer" },
	{ "shutdown_timeout = 100000;\n" OK_LISTENERS, 1,
	  "shutdown_timeout must be 0 to 3600" },
	{ "\nstop_delay = 301;\n" OK_LISTENERS, 2,
	  "stop_delay must be 0 to 300, not 301" },
	{ "stop_delay = \"5s\";\n" OK_LISTENERS, 1,
	  "stop_delay must be an integer" },
	{ "\n\nwatch_config = 1;\n" OK_LISTENERS, 3,
	  "watch_config must be true or false" },
	{ "log_level = \"loud\";\n" OK_LISTENERS, 1,
	  "log_level must be one of error, warning, notice, info, debug" },
	{ "log_level = 3;\n" OK_LISTENERS, 1, "log_level must be a string" },
	{ "workers = 1;\n", 0, "no listeners = ( ... ); list" },
	{ "listeners = 5;\n", 1, "listeners must be a list of groups" },
	{ "listeners = ();\n", 1, "listeners is empty" },
	{ "listeners = ( 5 );\n", 1, "listeners[0] must be a group" },
	/* a listener */
	{ "listeners = (\n { protocol = \"echo\"; port = 7; bind = "
	  "\"::1\"; } );\n", 2, "listener without a name" },
	{ "listeners = ( { name = \"a b\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\"; } );\n", 1, "listener name \"a b\" must be" },
	{ "listeners = (\n { name = \"e\"; port = 7; bind = \"::1\"; } );\n",
	  2, "listener \"e\": protocol is missing (one of: echo, oracle, "
	  "discard, chargen, daytime, time, qotd, metrics, http)" },
	{ "listeners = ( { name = \"e\";\n protocol = \"gopher\"; port = 7;"
	  " bind = \"::1\"; } );\n", 2,
	  "unknown protocol \"gopher\" (known: echo, oracle, discard, "
	  "chargen, daytime, time, qotd, metrics, http)" },
	{ "listeners = (\n { name = \"e\"; protocol = \"echo\"; bind = "
	  "\"::1\"; } );\n", 2, "port is missing (1 to 65535)" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\";\n port = 0;"
	  " bind = \"::1\"; } );\n", 2, "port must be 1 to 65535, not 0" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\";\n port = 70000;"
	  " bind = \"::1\"; } );\n", 2, "port must be 1 to 65535, not 70000" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = "
	  "\"7\";\n bind = \"::1\"; } );\n", 1, "port must be an integer" },
	{ "listeners = (\n { name = \"e\"; protocol = \"echo\"; port = 7; "
	  "} );\n", 2, "bind is missing" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = []; } );\n", 2, "bind must list at least one address" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = 5; } );\n", 2, "bind must be an address or a list" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"localhost\"]; } );\n", 2,
	  "\"localhost\" is not a numeric IPv4 or IPv6 address" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"10.0.0.300\"]; } );\n", 2, "is not a numeric" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"::1\", \"::1\"]; } );\n", 2,
	  "[::1]:7 clashes with [::1]:7 listed before" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n enabled = \"yes\"; } );\n", 2,
	  "enabled must be true or false" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n socket_per_worker = 1; } );\n", 2,
	  "socket_per_worker must be true or false" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n prot = 1; } );\n", 2,
	  "listener \"e\": unknown setting \"prot\"" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n idle_timeout = 90000; } );\n", 2,
	  "idle_timeout must be 0 to 86400" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n backlog = 0; } );\n", 2,
	  "backlog must be 1 to 65535" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\"; enabled = false; } );\n", 1,
	  "no listener is enabled" },
	/* listeners together */
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\"; },\n { name = \"e\"; protocol = \"echo\";"
	  " port = 8; bind = \"::1\"; } );\n", 2,
	  "listener \"e\" defined twice (first at line 1)" },
	{ "listeners = ( { name = \"a\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\"; },\n { name = \"b\"; protocol = \"oracle\";"
	  " port = 7; bind = \"::1\"; } );\n", 2,
	  "[::1]:7 clashes with [::1]:7 of listener \"a\" (line 1)" },
	{ "listeners = ( { name = \"a\"; protocol = \"echo\"; port = 7;"
	  " bind = \"0.0.0.0\"; },\n { name = \"b\"; protocol = \"echo\";"
	  " port = 7; bind = \"127.0.0.1\"; } );\n", 2,
	  "127.0.0.1:7 clashes with 0.0.0.0:7" },
	/* protocol options */
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n oracle = { max_questions = 1; }; } );\n", 2,
	  "oracle options given, but the protocol is echo" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n echo = { x = 1; }; } );\n", 2,
	  "unknown setting \"x\"" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\";\n oracle = 5; } );\n", 2,
	  "oracle must be a group" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n max_question = 5; }; } );\n", 2,
	  "unknown setting \"max_question\"" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n answers = []; }; } );\n", 2,
	  "answers must hold 1 to 1024 strings, not 0" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n answers = \"Yes.\"; }; } );\n", 2,
	  "answers must be a list of strings" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = { answers = (\"Yes.\",\n 5); }; } );\n",
	  2, "answers[1] must be a string" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = { answers = [\"Yes.\",\n \"\"]; }; } );\n",
	  2, "answers[1] must be 1 to 256 bytes" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n answers = [\"a\\nb\"]; }; } );\n", 2,
	  "answers[0] must be one line" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n max_question_length = 0; }; } );\n",
	  2, "max_question_length must be 1 to 1048576, not 0" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n max_questions = -3; }; } );\n", 2,
	  "max_questions must be 0 to 4294967295, not -3" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n reply_end = \"123456789\"; }; } );\n",
	  2, "reply_end must be at most 8 bytes" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n question_timeout = true; }; } );\n",
	  2, "question_timeout must be an integer" },
	/* issue 16 #1: libconfig 1.5 wraps these to 32 bits */
	{ "listeners = ( { name = \"e\"; protocol = \"echo\";\n"
	  " port = 4294984703; bind = \"::1\"; } );\n", 2,
	  "port = 4294984703 is out of range" },
	{ "idle_timeout = 4294967299;\n" OK_LISTENERS, 1,
	  "idle_timeout = 4294967299 is out of range" },
	{ "max_connections = 99999999999;\n" OK_LISTENERS, 1,
	  "max_connections = 99999999999 is out of range" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\";\n"
	  " port = 0x100000007; bind = \"::1\"; } );\n", 2,
	  "port = 0x100000007 is out of range" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n max_questions = 4294967296; }; }"
	  " );\n", 2, "max_questions = 4294967296 is out of range" },
	{ "workers =\n 99999999999999999999;\n" OK_LISTENERS, 2,
	  "workers = 99999999999999999999 is out of range: an integer must"
	  " fit in 64 bits" },
	/* the literal is read, not the line: libconfig 1.5 wrapped these */
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port\n"
	  " = 4294967303; bind = \"::1\"; } );\n", 2,
	  "port = 4294967303 is out of range" },
	{ "idle_timeout = /* x */ 4294967297;\n" OK_LISTENERS, 1,
	  "idle_timeout = 4294967297 is out of range" },
	{ "listeners = ( { name = \"a\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\"; }, { name = \"b\"; protocol = \"echo\";"
	  " port = 4294967303; bind = \"::1\"; } );\n", 1,
	  "port = 4294967303 is out of range" },
	{ "workers = 2147483648;\n" OK_LISTENERS, 1,
	  "workers = 2147483648 is out of range: libconfig keeps only 32" },
	{ "workers = -2147483649;\n" OK_LISTENERS, 1,
	  "workers = -2147483649 is out of range" },
	{ "workers = 0x80000000;\n" OK_LISTENERS, 1,
	  "workers = 0x80000000 is out of range" },
	{ "workers = 9223372036854775808L;\n" OK_LISTENERS, 1,
	  "workers = 9223372036854775808L is out of range: an integer must" },
	{ "workers = 0x8000000000000000L;\n" OK_LISTENERS, 1,
	  "workers = 0x8000000000000000L is out of range" },
	{ "workers = 4294967296L;\n" OK_LISTENERS, 1,
	  "workers must be 0 to 256, not 4294967296" },
	/* issue 17 #5: libconfig cuts a string at a NUL */
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n reply_end = \"\\x00\"; }; } );\n",
	  2, "a string holds \\x00, a NUL byte" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = { answers = [\"Yes.\",\n \"a\\x00b\"];"
	  " }; } );\n", 2, "a string holds \\x00, a NUL byte" },
	/* issue 17 #4: addresses that can never be bound */
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"::ffff:127.0.0.1\"]; } );\n", 2,
	  "bind: \"::ffff:127.0.0.1\" is an IPv4-mapped IPv6 address" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"::ffff:0.0.0.0\"]; } );\n", 2,
	  "bind: \"::ffff:0.0.0.0\" is an IPv4-mapped IPv6 address" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"::10.0.0.1\"]; } );\n", 2,
	  "\"::10.0.0.1\" is an IPv4-compatible IPv6 address" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"fe80::1\"]; } );\n", 2,
	  "bind: \"fe80::1\" is link-local: name its interface" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"::1%lo\"]; } );\n", 2,
	  "bind: \"::1%lo\" has a scope (%lo), which only a link-local "
	  "address (fe80::/10) may have: write \"::1\"" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"fe80::1%nosuch0\"]; } );\n", 2,
	  "names no interface of this host (nosuch0)" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = [\"ff02::1\", \"224.0.0.1\"]; } );\n", 2,
	  "\"224.0.0.1\" is a multicast address" },
	/* a setting repeated names itself and where it was first set */
	{ "workers = 1;\nidle_timeout = 2;\nworkers = 3;\n" OK_LISTENERS, 3,
	  "workers is set twice: first at line 1 (libconfig stops" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;\n"
	  " bind = \"::1\"; port = 8; } );\n", 2,
	  "port is set twice: first at line 1" },
	/* issue 31: an unknown setting names the known one it is close to */
	{ "idle_timout = 5;\n" OK_LISTENERS, 1, "unknown setting "
	  "\"idle_timout\" (did you mean \"idle_timeout\"?)" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n prot = 1; } );\n", 2,
	  "unknown setting \"prot\" (did you mean \"port\"?)" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n Backlog = 1; } );\n", 2,
	  "unknown setting \"Backlog\" (did you mean \"backlog\"?)" },
	{ "listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;"
	  " bind = \"::1\";\n udp-rate-limit = 1; } );\n", 2,
	  "unknown setting \"udp-rate-limit\" (did you mean "
	  "\"udp_rate_limit\"?)" },
	{ "listeners = ( { name = \"o\"; protocol = \"oracle\"; port = 7;"
	  " bind = \"::1\"; oracle = {\n max_question = 5; }; } );\n", 2,
	  "unknown setting \"max_question\" (did you mean "
	  "\"max_questions\"?)" },
	/* a syntax error quotes its line and says it stops there */
	{ "idle_timeout = 1;\nworkers = ;\n" OK_LISTENERS, 2,
	  "syntax error in \"workers = ;\" (libconfig stops at the first" },
};

static struct cfg *
load(const char *text, struct cfg_diag *d)
{
	cfg_diag_init(d);
	return cfg_load_string(text, "test.conf", d);
}

START_TEST(test_bad)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct cfg_diag d;
	char where[64];
	size_t i;
	int found = 0;

	ck_assert_ptr_null(load(bc->text, &d));
	ck_assert_uint_ge(d.n, 1);
	if (bc->line > 0)
		snprintf(where, sizeof(where), "test.conf:%d: ", bc->line);
	else
		snprintf(where, sizeof(where), "test.conf: ");
	for (i = 0; i < d.n; i++)
		if (strncmp(d.msgs[i], where, strlen(where)) == 0 &&
		    strstr(d.msgs[i], bc->words) != NULL)
			found = 1;
	if (!found)
		for (i = 0; i < d.n; i++)
			fprintf(stderr, "case %d got: %s\n", _i, d.msgs[i]);
	ck_assert_msg(found, "case %d: no \"%s%s\"", _i, where, bc->words);
	cfg_diag_free(&d);
}
END_TEST

/* One run names every mistake, each with its own line. */
START_TEST(test_all_errors_at_once)
{
	struct cfg_diag d;

	ck_assert_ptr_null(load("workers = -1;\n"
	    "idle_timout = 3;\n"
	    "listeners = ( { name = \"e\"; protocol = \"echo\";\n"
	    " port = 99999; bind = [\"nowhere\"]; } );\n", &d));
	ck_assert_uint_eq(d.n, 4);
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "test.conf:1: workers"));
	ck_assert_ptr_nonnull(strstr(d.msgs[1], "test.conf:2: unknown"));
	ck_assert_ptr_nonnull(strstr(d.msgs[2], "test.conf:4: listener \"e\": "
	    "port must be"));
	ck_assert_ptr_nonnull(strstr(d.msgs[3], "test.conf:4: listener \"e\": "
	    "bind"));
	cfg_diag_free(&d);
}
END_TEST

/* n listeners named l0..; same: all on one port and address. */
static char *
many_listeners(int n, int same, int dup)
{
	size_t cap = (size_t)n * 128 + 64, len;
	char *t = malloc(cap);
	int i;

	ck_assert_ptr_nonnull(t);
	len = (size_t)snprintf(t, cap, "listeners = (\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(t + len, cap - len, "%s{ name = \"l%d\";"
		    " protocol = \"echo\"; port = %d; bind = \"127.0.%d.%d\"; }\n",
		    i ? "," : "", i == dup ? 0 : i, same ? 7 : 1024 + i,
		    same ? 0 : i / 250, same ? 1 : i % 250 + 1);
	snprintf(t + len, cap - len, ");\n");
	return t;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Issue 17 #3: 4,000 listeners on one address, one name repeated, gave
 * 8 million lines: now each listener is reported once, the messages
 * are capped, and the last line counts the rest.
 */
START_TEST(test_errors_capped_not_quadratic)
{
	char *t = many_listeners(4000, 1, 3999);
	struct cfg_diag d;

	ck_assert_ptr_null(load(t, &d));
	ck_assert_uint_eq(d.n, EO_CFG_MAX_ERRORS + 1);
	ck_assert_uint_eq(d.total, 4000);	/* 3,999 clashes, 1 name */
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "test.conf:3: listener "
	    "\"l1\": 127.0.0.1:7 clashes with 127.0.0.1:7 of listener \"l0\""));
	ck_assert_str_eq(d.msgs[d.n - 1], "test.conf: 3950 more errors not "
	    "shown");
	cfg_diag_free(&d);
	free(t);
	/* Identical messages are shown once. */
	ck_assert_ptr_null(load("workers = -1;\n@include \"/nonexistent\"\n",
	    &d));
	ck_assert_uint_eq(d.n, 1);
	cfg_diag_free(&d);
}
END_TEST

/* The fastest of three loads of n valid listeners, in seconds. */
static double
load_time(int n)
{
	char *t = many_listeners(n, 0, -1);
	struct cfg_diag d;
	struct cfg *cfg;
	double best = 1e9, t0, took;
	int i;

	for (i = 0; i < 3; i++) {
		t0 = now_s();
		cfg = load(t, &d);
		took = now_s() - t0;
		ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
		ck_assert_uint_eq(cfg->nlisteners, (size_t)n);
		cfg_unref(cfg);
		cfg_diag_free(&d);
		best = took < best ? took : best;
	}
	free(t);
	return best;
}

/*
 * Issue 17 #3: 10,000 valid listeners are checked in well under 1 s
 * (pairwise checks took 0.4 s here, sorting 0.05 s), and the time grows
 * about like the file, not like its square: ten times the listeners
 * took 80 times as long with pairwise checks.
 */
START_TEST(test_many_listeners_fast)
{
	double small = load_time(1000), big = load_time(10000);

	/* A ratio in one run, not a time: machines differ and are busy.
	   Linear or n log n gives ~10-13x, quadratic ~100x. */
	ck_assert_msg(big / small < 50.0, "1,000 "
	    "listeners took %.3f s, 10,000 took %.3f s", small, big);
}
END_TEST

/*
 * Issue 24 #9: the scan before libconfig searched the rest of the text
 * for a float's '.' or 'e' at every number, so a file of integers took
 * time in its size squared: 400 KB 1.3 s, 16 MiB would take half an
 * hour.  The largest file allowed must be scanned well within this
 * case's timeout.  libconfig stops at the syntax error on line 1, so
 * the scan is nearly all the work (and the memory stays small).
 */
START_TEST(test_scan_integers_linear)
{
	size_t cap = EO_CFG_MAX_BYTES - 64, len, i;
	struct cfg_diag d;
	char *t = malloc(cap + 1);

	ck_assert_ptr_nonnull(t);
	len = (size_t)snprintf(t, cap, "workers = ;\nn = [");
	for (i = 0; len + 16 < cap; i++)
		len += (size_t)snprintf(t + len, cap - len, "%zu,%s",
		    i % 100000, i % 16 == 15 ? "\n" : " ");
	snprintf(t + len, cap - len, "0];\n");
	ck_assert_ptr_null(load(t, &d));
	ck_assert_uint_eq(d.n, 1);
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "test.conf:1: syntax error"));
	cfg_diag_free(&d);
	free(t);
}
END_TEST

/* Issue 31: a name far from every known one gets no guess. */
START_TEST(test_unknown_far_no_guess)
{
	struct cfg_diag d;

	ck_assert_ptr_null(load("colour = 1;\nlisteners = ( { name = \"e\"; "
	    "protocol = \"echo\"; port = 7; bind = \"::1\"; tmeout = 1; } "
	    ");\n", &d));
	ck_assert_uint_eq(d.n, 2);
	ck_assert_str_eq(d.msgs[0], "test.conf:1: unknown setting \"colour\"");
	ck_assert_str_eq(d.msgs[1], "test.conf:2: listener \"e\": unknown "
	    "setting \"tmeout\"");
	cfg_diag_free(&d);
}
END_TEST

/* A valid file whose one listener sets a setting that does nothing. */
struct warn_case {
	const char	*text;
	const char	*words;		/* after "test.conf:2: warning: " */
};

#define TCP_L	"listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;" \
		" bind = \"::1\";\n"
#define UDP_L	"listeners = ( { name = \"e\"; protocol = \"echo\"; port = 7;" \
		" bind = \"::1\"; transport = \"udp\";\n"

static const struct warn_case warn_cases[] = {
	{ TCP_L " allow_amplification = true; } );\n", "listener \"e\": "
	  "allow_amplification has no effect: it is for UDP, and this "
	  "listener is TCP" },
	{ TCP_L " udp_rate_limit = 5; } );\n", "listener \"e\": "
	  "udp_rate_limit has no effect: it is for UDP" },
	{ TCP_L " udp_rate_table = 5; } );\n", "listener \"e\": "
	  "udp_rate_table has no effect: it is for UDP" },
	{ TCP_L " proxy_timeout = 5; } );\n", "listener \"e\": proxy_timeout "
	  "has no effect: it bounds the wait for a PROXY header, and "
	  "proxy_protocol is off" },
	{ TCP_L " tls_handshake_timeout = 5; } );\n", "listener \"e\": "
	  "tls_handshake_timeout has no effect: this listener has no tls "
	  "group" },
	{ UDP_L " max_connections = 5; } );\n", "listener \"e\": "
	  "max_connections has no effect: it is for TCP connections, and "
	  "this listener is UDP" },
	{ UDP_L " idle_timeout = 5; } );\n", "listener \"e\": idle_timeout "
	  "has no effect: it is for TCP connections" },
	{ UDP_L " socket_per_worker = false; } );\n", "listener \"e\": "
	  "socket_per_worker has no effect: it is for TCP connections" },
	{ UDP_L " backlog = 5; } );\n", "listener \"e\": backlog has no "
	  "effect: it is for TCP connections" },
	{ UDP_L " write_timeout = 5; } );\n", "listener \"e\": write_timeout "
	  "has no effect: it is for TCP connections" },
	{ UDP_L " max_connections_per_source = 5; } );\n", "listener \"e\": "
	  "max_connections_per_source has no effect: it is for TCP" },
	{ UDP_L " proxy_timeout = 5; } );\n", "listener \"e\": proxy_timeout "
	  "has no effect" },
	{ UDP_L " tls_handshake_timeout = 5; } );\n", "listener \"e\": "
	  "tls_handshake_timeout has no effect" },
};

/*
 * Issue 31: a setting that does nothing where it is set was accepted
 * without a word.  The file stays valid (-t exits 0), with a warning
 * naming the line and why.
 */
START_TEST(test_warn_setting_without_effect)
{
	const struct warn_case *wc = &warn_cases[_i];
	struct cfg_diag d;
	struct cfg *cfg = load(wc->text, &d);
	char want[512];

	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(d.n, 0);
	ck_assert_msg(d.nwarns == 1, "case %d: %zu warnings", _i, d.nwarns);
	snprintf(want, sizeof(want), "test.conf:2: warning: %s", wc->words);
	ck_assert_msg(strncmp(d.warns[0], want, strlen(want)) == 0,
	    "case %d: got %s", _i, d.warns[0]);
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* Warnings are capped as errors are: 50, then one line counts the rest. */
START_TEST(test_warnings_capped)
{
	size_t cap = 70 * 128 + 64, len, i;
	char *t = malloc(cap);
	struct cfg_diag d;
	struct cfg *cfg;

	ck_assert_ptr_nonnull(t);
	len = (size_t)snprintf(t, cap, "listeners = (\n");
	for (i = 0; i < 70; i++)
		len += (size_t)snprintf(t + len, cap - len, "%s{ name = \"l%zu\";"
		    " protocol = \"echo\"; port = %zu; bind = \"::1\";"
		    " proxy_timeout = 2; }\n", i ? "," : "", i, 1024 + i);
	snprintf(t + len, cap - len, ");\n");
	cfg = load(t, &d);
	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(d.warns_total, 70);
	ck_assert_uint_eq(d.nwarns, EO_CFG_MAX_ERRORS + 1);
	ck_assert_ptr_nonnull(strstr(d.warns[0], "test.conf:2: warning: "
	    "listener \"l0\": proxy_timeout"));
	ck_assert_str_eq(d.warns[d.nwarns - 1], "test.conf: 20 more warnings "
	    "not shown");
	cfg_unref(cfg);
	cfg_diag_free(&d);
	free(t);
}
END_TEST

/*
 * Where they apply, the same settings say nothing: over UDP the UDP
 * ones, behind a proxy proxy_timeout, at the top level the defaults
 * that some listeners use; and the shipped file warns of nothing.
 */
START_TEST(test_no_warning_where_settings_apply)
{
	struct cfg_diag d;
	struct cfg *cfg = load("idle_timeout = 5; backlog = 9;"
	    " max_connections_per_source = 2; write_timeout = 7;"
	    " tls_handshake_timeout = 3;\nlisteners = (\n"
	    " { name = \"u\"; protocol = \"echo\"; port = 7; bind = \"::1\";"
	    "   transport = \"udp\"; udp_rate_limit = 5; udp_rate_table = 9;"
	    "   allow_amplification = true; },\n"
	    " { name = \"p\"; protocol = \"echo\"; port = 7; bind = \"::1\";"
	    "   proxy_protocol = true; proxy_from = \"::1\";"
	    "   proxy_timeout = 4; backlog = 3; idle_timeout = 2;"
	    "   max_connections = 9; socket_per_worker = false; }\n"
	    ");\n", &d);

	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_msg(d.nwarns == 0, "%s", d.warns[0]);
	ck_assert_int_eq(cfg->listeners[0].socket_per_worker, 1);
	ck_assert_int_eq(cfg->listeners[1].socket_per_worker, 0);
	cfg_unref(cfg);
	cfg_diag_free(&d);
	cfg_diag_init(&d);
	cfg = cfg_load_file(EO_SOURCE_DIR "/conf/echo-oracled.conf", &d);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_msg(d.nwarns == 0, "%s", d.warns[0]);
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* Issue 10 #5: name and address clashes are found beside other mistakes. */
START_TEST(test_clashes_with_other_errors)
{
	struct cfg_diag d;

	ck_assert_ptr_null(load("workers = -1;\nlisteners = (\n"
	    " { name = \"a\"; protocol = \"echo\"; port = 7; bind = \"::1\";"
	    " backlog = 0; },\n"
	    " { name = \"a\"; protocol = \"echo\"; port = 8; bind = \"::1\"; },\n"
	    " { name = \"c\"; protocol = \"echo\"; port = 7; bind = \"::\"; }\n"
	    ");\n", &d));
	ck_assert_uint_eq(d.n, 4);
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "test.conf:1: workers"));
	ck_assert_ptr_nonnull(strstr(d.msgs[1], "test.conf:3: listener \"a\": "
	    "backlog"));
	ck_assert_ptr_nonnull(strstr(d.msgs[2], "test.conf:4: listener \"a\" "
	    "defined twice (first at line 3)"));
	ck_assert_ptr_nonnull(strstr(d.msgs[3], "test.conf:5: listener \"c\": "
	    "[::]:7 clashes with [::1]:7 of listener \"a\" (line 3)"));
	cfg_diag_free(&d);
}
END_TEST

START_TEST(test_defaults)
{
	struct cfg_diag d;
	struct cfg *cfg = load(OK_LISTENERS, &d);
	const struct cfg_listener *l;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_uint_eq(cfg->max_conns, 10000);
	ck_assert_uint_eq(cfg->evict_after, 1);
	ck_assert_uint_eq(cfg->shutdown_timeout, 10);
	ck_assert_uint_eq(cfg->stop_delay, 0);
	ck_assert_int_eq(cfg->watch_config, 0);
	ck_assert_int_eq(cfg->log_level, EO_LOG_INFO);
	ck_assert_uint_eq(cfg->nlisteners, 1);
	l = &cfg->listeners[0];
	ck_assert_str_eq(l->name, "e");
	ck_assert_ptr_eq(l->proto, &proto_echo);
	ck_assert_int_eq(l->enabled, 1);
	ck_assert_uint_eq(l->port, 7);
	ck_assert_int_eq(l->backlog, 4096);
	ck_assert_uint_eq(l->max_conns, 0);
	ck_assert_uint_eq(l->max_per_source, 0);
	ck_assert_uint_eq(l->idle_timeout, 300);
	ck_assert_uint_eq(l->write_timeout, 60);
	ck_assert_uint_eq(l->unit_timeout, 0);
	ck_assert_uint_eq(l->naddrs, 1);
	ck_assert_str_eq(l->addrs[0].text, "127.0.0.1:7");
	ck_assert_ptr_eq(cfg_find_listener(cfg, "e"), l);
	ck_assert_ptr_null(cfg_find_listener(cfg, "x"));
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* Listener settings override the top level's, which override defaults. */
START_TEST(test_overrides)
{
	struct cfg_diag d;
	struct cfg *cfg = load("idle_timeout = 5; write_timeout = 6;\n"
	    "max_connections_per_source = 3; backlog = 10;\n"
	    "log_level = \"debug\"; max_connections = 20; evict_after = 0;\n"
	    "listeners = (\n"
	    " { name = \"a\"; protocol = \"echo\"; port = 7;"
	    "   bind = [\"0.0.0.0\", \"::\"]; idle_timeout = 0;"
	    "   max_connections = 4; backlog = 11; },\n"
	    " { name = \"b\"; protocol = \"oracle\"; port = 8;"
	    "   bind = [\"::1\", \"fe80::1%lo\"];"
	    "   oracle = { question_timeout = 9; max_questions = 0; }; },\n"
	    " { name = \"c\"; protocol = \"echo\"; port = 7; bind = \"0.0.0.0\";"
	    "   enabled = false; }\n"
	    ");\n", &d);

	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->log_level, EO_LOG_DEBUG);
	ck_assert_uint_eq(cfg->max_conns, 20);
	ck_assert_uint_eq(cfg->evict_after, 0);
	ck_assert_uint_eq(cfg->listeners[0].idle_timeout, 0);
	ck_assert_uint_eq(cfg->listeners[0].write_timeout, 6);
	ck_assert_uint_eq(cfg->listeners[0].max_conns, 4);
	ck_assert_uint_eq(cfg->listeners[0].max_per_source, 3);
	ck_assert_int_eq(cfg->listeners[0].backlog, 11);
	/* A link-local address keeps its interface. */
	ck_assert_str_eq(cfg->listeners[1].addrs[1].text, "[fe80::1%lo]:8");
	/* [::] is IPV6_V6ONLY: no clash with 0.0.0.0 on the same port. */
	ck_assert_uint_eq(cfg->listeners[0].naddrs, 2);
	ck_assert_str_eq(cfg->listeners[0].addrs[1].text, "[::]:7");
	ck_assert_uint_eq(cfg->listeners[1].idle_timeout, 5);
	ck_assert_int_eq(cfg->listeners[1].backlog, 10);
	ck_assert_uint_eq(cfg->listeners[1].unit_timeout, 9);
	/* A disabled listener may repeat an address. */
	ck_assert_int_eq(cfg->listeners[2].enabled, 0);
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/*
 * Integers are read from the text at full width: several settings of
 * one name on one line each get their own value.
 */
START_TEST(test_int_same_line)
{
	struct cfg_diag d;
	struct cfg *cfg = load("listeners = ( { name = \"a\"; protocol = "
	    "\"echo\"; port = 7001; bind = \"::1\"; }, { name = \"b\"; "
	    "protocol = \"echo\"; port = 0x1B5A; bind = \"::1\"; } );\n", &d);

	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(cfg->listeners[0].port, 7001);
	ck_assert_uint_eq(cfg->listeners[1].port, 7002);
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/*
 * The integer scan refuses literals only: numbers in strings, comments
 * and names, and floats, are no integers; an L reads 64 bits exactly.
 */
START_TEST(test_int_scan_literals_only)
{
	struct cfg_diag d;
	struct cfg *cfg = load("# 4294967303\n// 4294967303\n"
	    "/* 4294967303\n 0x100000007 */ shutdown_timeout = 7;\n"
	    "listeners = ( { name = \"n4294967303\"; protocol = \"oracle\";"
	    " port = 7L; bind = \"::1\"; oracle = { max_questions ="
	    " 4294967295L; answers = [\"4294967303 0x100000007\"]; }; } );\n",
	    &d);

	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(cfg->listeners[0].port, 7);
	ck_assert_uint_eq(cfg->shutdown_timeout, 7);
	cfg_unref(cfg);
	cfg_diag_free(&d);
	/* A float, even a huge one, is refused for being a float. */
	ck_assert_ptr_null(load("workers = 1e+99999999999;\n" OK_LISTENERS,
	    &d));
	ck_assert_uint_eq(d.n, 1);
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "workers must be an integer"));
	cfg_diag_free(&d);
}
END_TEST

/* What -T prints for cfg; the caller frees it. */
static char *
print_text(const struct cfg *cfg)
{
	char *text = NULL;
	size_t len;
	FILE *f;

	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	cfg_print(cfg, f);
	ck_assert_int_eq(fclose(f), 0);
	return text;
}

/*
 * Issue 16 -T: the configuration printed loads back to the same one,
 * field by field, overrides, defaults and protocol options included.
 */
START_TEST(test_print_loads_back)
{
	struct cfg_diag d;
	struct cfg *a, *b;
	char *text, *again;
	size_t i, j;

	a = load("idle_timeout = 5; write_timeout = 6; workers = 3;\n"
	    "max_connections_per_source = 3; backlog = 10;\n"
	    "log_level = \"debug\"; max_connections = 20; evict_after = 0;\n"
	    "shutdown_timeout = 7; stop_delay = 4; watch_config = true;\n"
	    "listeners = (\n"
	    " { name = \"a\"; protocol = \"echo\"; port = 7;"
	    "   bind = [\"0.0.0.0\", \"::\"]; idle_timeout = 0;"
	    "   max_connections = 4; backlog = 11; echo = { }; },\n"
	    " { name = \"b\"; protocol = \"oracle\"; port = 8;"
	    "   bind = [\"::1\", \"fe80::1%lo\"];"
	    "   oracle = { question_timeout = 9; max_questions = 0;"
	    "   answers = [\"Yes \\\"really\\\".\", \"No\\\\.\"];"
	    "   reply_end = \"\\x01\\t\"; }; },\n"
	    " { name = \"c\"; protocol = \"echo\"; port = 7; bind = \"0.0.0.0\";"
	    "   enabled = false; },\n"
	    " { name = \"t\"; protocol = \"daytime\"; port = 13; bind = \"::1\";"
	    "   daytime = { timezone = \"Europe/Paris\"; format = \"%H:%M\\t%Z\"; };"
	    " }\n"
	    ");\n", &d);
	ck_assert_msg(a != NULL, "%s", d.n ? d.msgs[0] : "?");
	text = print_text(a);
	b = load(text, &d);
	ck_assert_msg(b != NULL, "%s\n%s", d.n ? d.msgs[0] : "?", text);
	ck_assert_uint_eq(a->workers, b->workers);
	ck_assert_uint_eq(a->max_conns, b->max_conns);
	ck_assert_uint_eq(a->evict_after, b->evict_after);
	ck_assert_uint_eq(a->shutdown_timeout, b->shutdown_timeout);
	ck_assert_uint_eq(a->stop_delay, 4);
	ck_assert_uint_eq(a->stop_delay, b->stop_delay);
	ck_assert_int_eq(a->watch_config, 1);
	ck_assert_int_eq(a->watch_config, b->watch_config);
	ck_assert_int_eq(a->log_level, b->log_level);
	ck_assert_uint_eq(a->nlisteners, b->nlisteners);
	for (i = 0; i < a->nlisteners; i++) {
		const struct cfg_listener *x = &a->listeners[i],
		    *y = &b->listeners[i];

		ck_assert_str_eq(x->name, y->name);
		ck_assert_ptr_eq(x->proto, y->proto);
		ck_assert_int_eq(x->enabled, y->enabled);
		ck_assert_uint_eq(x->port, y->port);
		ck_assert_int_eq(x->backlog, y->backlog);
		ck_assert_uint_eq(x->max_conns, y->max_conns);
		ck_assert_uint_eq(x->max_per_source, y->max_per_source);
		ck_assert_uint_eq(x->idle_timeout, y->idle_timeout);
		ck_assert_uint_eq(x->write_timeout, y->write_timeout);
		ck_assert_uint_eq(x->unit_timeout, y->unit_timeout);
		ck_assert_uint_eq(x->naddrs, y->naddrs);
		for (j = 0; j < x->naddrs; j++)
			ck_assert_str_eq(x->addrs[j].text, y->addrs[j].text);
	}
	/* The protocol options too: what b holds prints as a did. */
	again = print_text(b);
	ck_assert_str_eq(again, text);
	/* The top-level defaults were resolved into each listener. */
	ck_assert_uint_eq(b->listeners[1].write_timeout, 6);
	ck_assert_ptr_nonnull(strstr(text, "oracle = { max_questions = 0; "
	    "max_question_length = 1024;\n      question_timeout = 9; "
	    "reply_end = \"\\x01\\t\";\n"
	    "      answers = [\"Yes \\\"really\\\".\", \"No\\\\.\"]; };"));
	ck_assert_ptr_nonnull(strstr(text, "daytime = { format = \"%H:%M\\t%Z\";"
	    " timezone = \"Europe/Paris\"; };"));
	cfg_unref(a);
	cfg_unref(b);
	cfg_diag_free(&d);
	free(text);
	free(again);
}
END_TEST

/*
 * -T prints what is in effect: loaded back, it warns of nothing, so
 * it prints no setting a listener ignores.
 */
START_TEST(test_print_no_ignored_settings)
{
	struct cfg_diag d;
	struct cfg *a, *b;
	char *text, *again;

	a = load("listeners = (\n"
	    " { name = \"t\"; protocol = \"echo\"; port = 7; bind = \"::1\"; },\n"
	    " { name = \"u\"; protocol = \"echo\"; port = 7; bind = \"::1\";"
	    "   transport = \"udp\"; udp_rate_limit = 5; },\n"
	    " { name = \"p\"; protocol = \"echo\"; port = 8; bind = \"::1\";"
	    "   proxy_protocol = true; proxy_from = \"::1\";"
	    "   proxy_timeout = 4; }\n"
	    ");\n", &d);
	ck_assert_msg(a != NULL, "%s", d.n ? d.msgs[0] : "?");
	text = print_text(a);
	b = load(text, &d);
	ck_assert_msg(b != NULL, "%s\n%s", d.n ? d.msgs[0] : "?", text);
	ck_assert_msg(d.nwarns == 0, "%s\n%s", d.warns[0], text);
	ck_assert_uint_eq(b->listeners[1].udp_rate, 5);
	ck_assert_uint_eq(b->listeners[2].proxy_timeout, 4);
	again = print_text(b);
	ck_assert_str_eq(again, text);
	cfg_unref(a);
	cfg_unref(b);
	cfg_diag_free(&d);
	free(text);
	free(again);
}
END_TEST

/*
 * Issue 16: -T printed protocol options as written, so an option the
 * operator left out did not show, nor its default.  Every one shows,
 * and what is printed loads back to what prints the same.
 */
START_TEST(test_print_protocol_defaults)
{
	struct cfg_diag d;
	struct cfg *a, *b;
	char *text, *again;

	a = load("listeners = (\n"
	    " { name = \"o\"; protocol = \"oracle\"; port = 1; bind = \"::1\"; },\n"
	    " { name = \"d\"; protocol = \"daytime\"; port = 2; bind = \"::1\";"
	    "   daytime = { }; },\n"
	    " { name = \"q\"; protocol = \"qotd\"; port = 3; bind = \"::1\"; },\n"
	    " { name = \"l\"; protocol = \"qotd\"; port = 4; bind = \"::1\";"
	    "   qotd = { quotes = [\"one\\ntwo\", \"three\\r\\nfour \\n\"]; }; }\n"
	    ");\n", &d);
	ck_assert_msg(a != NULL, "%s", d.n ? d.msgs[0] : "?");
	text = print_text(a);
	ck_assert_msg(strstr(text, "oracle = { max_questions = 10; "
	    "max_question_length = 1024;\n      question_timeout = 30; "
	    "reply_end = \"\\r\\n\";\n      answers = [\"Yes.\", "
	    "\"Very likely.\", \"Maybe.\", \"Not likely.\", \"No.\"]; };")
	    != NULL, "%s", text);
	ck_assert_msg(strstr(text, "daytime = { format = "
	    "\"%A, %B %d, %Y %H:%M:%S-%Z\"; timezone = \"UTC\"; };") != NULL,
	    "%s", text);
	ck_assert_msg(strstr(text, "qotd = { quotes = [\"A quote a day keeps "
	    "the silence away.\",\n      \"Set quotes or quotes_file in the "
	    "qotd group for your own.\"]; };") != NULL, "%s", text);
	/* Line ends as sent: "\n" and "\r\n" load as the same quote. */
	ck_assert_msg(strstr(text, "qotd = { quotes = [\"one\\r\\ntwo\",\n"
	    "      \"three\\r\\nfour\"]; };") != NULL, "%s", text);
	b = load(text, &d);
	ck_assert_msg(b != NULL, "%s\n%s", d.n ? d.msgs[0] : "?", text);
	again = print_text(b);
	ck_assert_str_eq(again, text);
	cfg_unref(a);
	cfg_unref(b);
	cfg_diag_free(&d);
	free(text);
	free(again);
}
END_TEST

/* Errors in an included file name that file; a missing file says so. */
START_TEST(test_files)
{
	char dir[] = "/tmp/eo-test-config.XXXXXX", main_path[128],
	    inc_path[128], missing[128], want[192];
	struct cfg_diag d;
	struct cfg *cfg;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
	snprintf(inc_path, sizeof(inc_path), "%s/listeners.conf", dir);
	snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
	ck_assert_ptr_nonnull(f = fopen(main_path, "w"));
	fprintf(f, "workers = 1;\n@include \"listeners.conf\"\n");
	fclose(f);
	ck_assert_ptr_nonnull(f = fopen(inc_path, "w"));
	fprintf(f, "# listeners\n\nlisteners = ( { name = \"e\"; protocol ="
	    " \"echo\";\n port = 0; bind = \"::1\"; } );\n");
	fclose(f);

	cfg_diag_init(&d);
	ck_assert_ptr_null(cfg_load_file(main_path, &d));
	ck_assert_uint_eq(d.n, 1);
	snprintf(want, sizeof(want), "%s:4: listener \"e\": port must be",
	    inc_path);
	ck_assert_msg(strncmp(d.msgs[0], want, strlen(want)) == 0,
	    "got %s", d.msgs[0]);
	cfg_diag_free(&d);

	ck_assert_ptr_null(cfg_load_file(missing, &d));
	ck_assert_uint_eq(d.n, 1);
	snprintf(want, sizeof(want), "%s: cannot open: No such file", missing);
	ck_assert_msg(strncmp(d.msgs[0], want, strlen(want)) == 0,
	    "got %s", d.msgs[0]);
	cfg_diag_free(&d);

	ck_assert_ptr_nonnull(f = fopen(inc_path, "w"));
	fprintf(f, "listeners = ( { name = \"e\"; protocol = \"echo\";"
	    " port = 7; bind = \"::1\"; } );\n");
	fclose(f);
	ck_assert_ptr_nonnull(cfg = cfg_load_file(main_path, &d));
	ck_assert_str_eq(cfg->path, main_path);
	cfg_unref(cfg);
	cfg_diag_free(&d);
	unlink(main_path);
	unlink(inc_path);
	rmdir(dir);
}
END_TEST

/* A scratch folder for files a case writes; removed by tmp_clean. */
static char tmp_dir[64];

static void
tmp_make(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/eo-test-config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void
tmp_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes DIR/name; its path in path. */
static void
tmp_write(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmp_dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads path, expecting one error that starts with want. */
static void
expect_one(const char *path, const char *want)
{
	struct cfg_diag d;

	cfg_diag_init(&d);
	ck_assert_ptr_null(cfg_load_file(path, &d));
	ck_assert_msg(d.n == 1 && strncmp(d.msgs[0], want, strlen(want)) ==
	    0, "want %s, got %zu: %s", want, d.n, d.n ? d.msgs[0] : "");
	cfg_diag_free(&d);
}

/*
 * Issue 17 #1 #2: libconfig 1.5 calls exit() on an @include of a
 * directory or of a file whose read fails, and blocks on a FIFO: each
 * is refused first, naming the @include line, the file and why.
 */
START_TEST(test_include_unsafe_files)
{
	static const struct {
		const char	*inc;
		const char	*why;
	} cases[] = {
		{ "sub", "not a regular file (a directory)" },
		{ "fifo", "not a regular file (a FIFO)" },
		{ "mem.conf", "cannot read: Input/output error" },
		{ "missing.conf", "cannot open: No such file or directory" },
		{ "loop.conf", "is already being read: an @include loop" },
	};
	char path[128], sub[128], text[256], want[512];
	size_t i;

	tmp_make();
	snprintf(sub, sizeof(sub), "%s/sub", tmp_dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/fifo", tmp_dir);
	ck_assert_int_eq(mkfifo(sub, 0600), 0);
	snprintf(sub, sizeof(sub), "%s/mem.conf", tmp_dir);
	ck_assert_int_eq(symlink("/proc/self/mem", sub), 0);
	tmp_write("loop.conf", "\n@include \"loop.conf\"\n", path,
	    sizeof(path));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "workers = 1;\n@include \"%s\"\n"
		    OK_LISTENERS, cases[i].inc);
		tmp_write("main.conf", text, path, sizeof(path));
		if (strcmp(cases[i].inc, "loop.conf") == 0)
			snprintf(want, sizeof(want), "%s/loop.conf:2: @include "
			    "\"loop.conf\": %s/loop.conf %s", tmp_dir, tmp_dir,
			    cases[i].why);
		else
			snprintf(want, sizeof(want), "%s:2: @include \"%s\": "
			    "%s/%s: %s", path, cases[i].inc, tmp_dir,
			    cases[i].inc, cases[i].why);
		expect_one(path, want);
	}
	/* The main file itself: a FIFO, a directory. */
	snprintf(want, sizeof(want), "%s/fifo: not a regular file (a FIFO)",
	    tmp_dir);
	snprintf(path, sizeof(path), "%s/fifo", tmp_dir);
	expect_one(path, want);
	snprintf(want, sizeof(want), "%s/sub: not a regular file (a "
	    "directory)", tmp_dir);
	snprintf(path, sizeof(path), "%s/sub", tmp_dir);
	expect_one(path, want);
	tmp_clean();
}
END_TEST

/* A good @include, two deep, loads; an error names the deepest file. */
START_TEST(test_include_nested)
{
	char path[128], want[256];
	struct cfg_diag d;
	struct cfg *cfg;

	tmp_make();
	tmp_write("b.conf", "# b\nlisteners = ( { name = \"e\"; protocol ="
	    " \"echo\"; port = 7; bind = \"::1\";\n backlog = 0; } );\n",
	    path, sizeof(path));
	tmp_write("a.conf", "@include \"b.conf\"\n", path, sizeof(path));
	tmp_write("main.conf", "workers = 2;\n  @include \"a.conf\"\n", path,
	    sizeof(path));
	snprintf(want, sizeof(want), "%s/b.conf:3: listener \"e\": backlog",
	    tmp_dir);
	expect_one(path, want);
	/* Issue 16: a setting repeated in an include names the first. */
	tmp_write("b.conf", "\nworkers = 3;\n" OK_LISTENERS, path,
	    sizeof(path));
	snprintf(want, sizeof(want), "%s/b.conf:2: workers is set twice: "
	    "first at %s/main.conf:1", tmp_dir, tmp_dir);
	snprintf(path, sizeof(path), "%s/main.conf", tmp_dir);
	expect_one(path, want);
	tmp_write("b.conf", OK_LISTENERS, path, sizeof(path));
	snprintf(path, sizeof(path), "%s/main.conf", tmp_dir);
	cfg_diag_init(&d);
	ck_assert_ptr_nonnull(cfg = cfg_load_file(path, &d));
	ck_assert_uint_eq(cfg->workers, 2);
	cfg_unref(cfg);
	cfg_diag_free(&d);
	tmp_clean();
}
END_TEST

/*
 * Issue 16 drop-ins: include_dir's *.conf files, in name order, add
 * listeners; other names and hidden files are skipped; errors name the
 * drop-in's own file and line.
 */
START_TEST(test_dropins)
{
	char path[128], sub[128], want[512];
	struct cfg_diag d;
	struct cfg *cfg;

	tmp_make();
	snprintf(sub, sizeof(sub), "%s/conf.d", tmp_dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	tmp_write("conf.d/20-b.conf", "# b\nlisteners = ( { name = \"b\"; "
	    "protocol = \"echo\"; port = 8; bind = \"::1\"; } );\n", path,
	    sizeof(path));
	tmp_write("conf.d/10-a.conf", "listeners = ( { name = \"a\"; "
	    "protocol = \"echo\"; port = 9; bind = \"::1\"; } );\n", path,
	    sizeof(path));
	tmp_write("conf.d/README", "not a configuration", path, sizeof(path));
	tmp_write("conf.d/.old.conf", "workers = 9;", path, sizeof(path));
	tmp_write("main.conf", "idle_timeout = 5;\ninclude_dir = \"conf.d\";\n"
	    OK_LISTENERS, path, sizeof(path));
	cfg_diag_init(&d);
	cfg = cfg_load_file(path, &d);
	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(cfg->nlisteners, 3);
	ck_assert_str_eq(cfg->listeners[0].name, "e");
	ck_assert_str_eq(cfg->listeners[1].name, "a");
	ck_assert_str_eq(cfg->listeners[2].name, "b");
	ck_assert_uint_eq(cfg->listeners[2].port, 8);
	/* The main file's defaults apply to drop-ins' listeners. */
	ck_assert_uint_eq(cfg->listeners[2].idle_timeout, 5);
	cfg_unref(cfg);
	cfg_diag_free(&d);

	tmp_write("conf.d/30-c.conf", "\nworkers = 2;\nlisteners = ( { name "
	    "= \"a\"; protocol = \"echo\";\n port = 99999; bind = "
	    "\"::1\"; } );\n", path, sizeof(path));
	snprintf(path, sizeof(path), "%s/main.conf", tmp_dir);
	ck_assert_ptr_null(cfg_load_file(path, &d));
	ck_assert_uint_eq(d.n, 3);
	snprintf(want, sizeof(want), "%s/30-c.conf:2: workers cannot be set "
	    "in a file of include_dir", sub);
	ck_assert_msg(strstr(d.msgs[0], want) == d.msgs[0], "%s", d.msgs[0]);
	snprintf(want, sizeof(want), "%s/30-c.conf:3: listener \"a\" defined "
	    "twice (first at %s/10-a.conf:1)", sub, sub);
	ck_assert_msg(strstr(d.msgs[1], want) == d.msgs[1], "%s", d.msgs[1]);
	snprintf(want, sizeof(want), "%s/30-c.conf:4: listener \"a\": port "
	    "must be 1 to 65535, not 99999", sub);
	ck_assert_msg(strstr(d.msgs[2], want) == d.msgs[2], "%s", d.msgs[2]);
	cfg_diag_free(&d);
	/* An integer libconfig would wrap names the drop-in's line. */
	tmp_write("conf.d/30-c.conf", "\nlisteners = ( { name = \"c\"; "
	    "protocol = \"echo\";\n port = 99999999999; bind = \"::1\"; } );"
	    "\n", path, sizeof(path));
	snprintf(path, sizeof(path), "%s/main.conf", tmp_dir);
	ck_assert_ptr_null(cfg_load_file(path, &d));
	ck_assert_uint_eq(d.n, 1);
	snprintf(want, sizeof(want), "%s/30-c.conf:3: port = 99999999999 is "
	    "out of range", sub);
	ck_assert_msg(strstr(d.msgs[0], want) == d.msgs[0], "%s", d.msgs[0]);
	cfg_diag_free(&d);

	tmp_write("main.conf", "include_dir = \"nowhere\";\n", path,
	    sizeof(path));
	snprintf(want, sizeof(want), "%s:1: include_dir \"nowhere\": "
	    "%s/nowhere: No such file or directory", path, tmp_dir);
	expect_one(path, want);
	tmp_clean();
}
END_TEST

/*
 * Issue 16: -T prints quotes_file, not its quotes, and absolute: a
 * name relative to the config file's folder (here ".") would point
 * elsewhere from the folder the printed configuration is saved in.
 */
START_TEST(test_print_quotes_file)
{
	char cwd[4096], quotes[128], conf[128], saved[160], want[256];
	struct cfg_diag d;
	struct cfg *a, *b;
	char *text, *again;

	tmp_make();
	tmp_write("quotes.txt", "Carpe diem.\n\nMemento\nmori.\n", quotes,
	    sizeof(quotes));
	tmp_write("main.conf", "listeners = ( { name = \"q\"; protocol ="
	    " \"qotd\"; port = 17;\n bind = \"::1\";"
	    " qotd = { quotes_file = \"quotes.txt\"; }; } );\n", conf,
	    sizeof(conf));
	snprintf(saved, sizeof(saved), "%s/elsewhere", tmp_dir);
	ck_assert_int_eq(mkdir(saved, 0700), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmp_dir), 0);
	cfg_diag_init(&d);
	a = cfg_load_file("main.conf", &d);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(a != NULL, "%s", d.n ? d.msgs[0] : "?");
	text = print_text(a);
	snprintf(want, sizeof(want), "qotd = { quotes_file = \"%s\"; };",
	    quotes);
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);
	tmp_write("elsewhere/printed.conf", text, saved, sizeof(saved));
	b = cfg_load_file(saved, &d);
	ck_assert_msg(b != NULL, "%s\n%s", d.n ? d.msgs[0] : "?", text);
	again = print_text(b);
	/* The same but for the header, which names the file read. */
	ck_assert_str_eq(strstr(again, "\nworkers = "),
	    strstr(text, "\nworkers = "));
	cfg_unref(a);
	cfg_unref(b);
	cfg_diag_free(&d);
	free(text);
	free(again);
	tmp_clean();
}
END_TEST

/* The shipped file is valid and says what the README says. */
START_TEST(test_shipped)
{
	struct cfg_diag d;
	struct cfg *cfg;

	cfg_diag_init(&d);
	cfg = cfg_load_file(EO_SOURCE_DIR "/conf/echo-oracled.conf", &d);
	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	ck_assert_uint_eq(cfg->nlisteners, 5);
	ck_assert_str_eq(cfg->listeners[0].name, "echo");
	ck_assert_uint_eq(cfg->listeners[0].port, 7007);
	ck_assert_int_eq(cfg->listeners[0].udp, 0);
	ck_assert_str_eq(cfg->listeners[1].name, "echo-udp");
	ck_assert_uint_eq(cfg->listeners[1].port, 7007);
	ck_assert_int_eq(cfg->listeners[1].udp, 1);
	ck_assert_uint_eq(cfg->listeners[1].udp_rate, 100);
	ck_assert_str_eq(cfg->listeners[2].name, "oracle");
	ck_assert_uint_eq(cfg->listeners[2].port, 7070);
	ck_assert_str_eq(cfg->listeners[2].addrs[0].text, "127.0.0.1:7070");
	ck_assert_str_eq(cfg->listeners[2].addrs[1].text, "[::1]:7070");
	ck_assert_str_eq(cfg->listeners[3].name, "metrics");
	ck_assert_str_eq(cfg->listeners[3].proto->name, "metrics");
	ck_assert_int_eq(cfg->listeners[3].udp, 0);
	ck_assert_str_eq(cfg->listeners[3].addrs[0].text, "127.0.0.1:9107");
	/* http: shipped off, on loopback once enabled. */
	ck_assert_str_eq(cfg->listeners[4].name, "http");
	ck_assert_str_eq(cfg->listeners[4].proto->name, "http");
	ck_assert_int_eq(cfg->listeners[4].enabled, 0);
	ck_assert_str_eq(cfg->listeners[4].addrs[0].text, "127.0.0.1:7080");
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/*
 * Connections hold a generation: the last reference frees it, all of
 * it (listeners, addresses, names), and not before.  Issue 10: this
 * was checked only through the count.  The C library's heap in use
 * says it, give or take what its per-thread caches keep (under 1 KiB a
 * load here): 500 listeners hold well over 64 KiB.  A sanitizer's
 * allocator does not count there, but then the sanitizer reports a
 * leak or a use after free itself.
 */
START_TEST(test_refs)
{
	char *text = many_listeners(500, 0, -1);
	struct cfg_diag d;
	struct cfg *cfg;
	size_t before, held, after;
	unsigned refs;

	/* Warm up: what the C library allocates once, it has by now. */
	cfg_unref(load(text, &d));
	cfg_diag_free(&d);
	/* No assertion until the end: Check's own records take memory. */
	before = mallinfo2().uordblks;
	cfg = load(text, &d);
	cfg_diag_free(&d);
	cfg_ref(cfg);
	cfg_unref(cfg);
	refs = atomic_load(&cfg->refs);
	held = mallinfo2().uordblks;
	cfg_unref(cfg);
	after = mallinfo2().uordblks;
	free(text);
	ck_assert_uint_eq(refs, 1);
	/* A sanitizer's heap is not counted there (all zero). */
	if (held == 0)
		return;
	ck_assert_uint_gt(held, before + 64 * 1024);
	ck_assert_uint_lt(after, before + 16 * 1024);
}
END_TEST

/* ---- PROXY protocol, proxy_from, allow, deny ------------------------ */

#define PL(extra)							\
	"listeners = ( { name = \"p\"; protocol = \"echo\"; port = 7;"	\
	" bind = \"127.0.0.1\";\n" extra " } );\n"

static const struct bad_case access_bad_cases[] = {
	/* The spec: never accept the header from anyone. */
	{ PL("proxy_protocol = true;"), 2,
	  "proxy_protocol is on but proxy_from is missing" },
	{ PL("proxy_from = [\"10.0.0.1\"];"), 2,
	  "proxy_from is set but proxy_protocol is off" },
	{ PL("proxy_protocol = true; proxy_from = [];"), 2,
	  "proxy_from must list at least one network" },
	{ PL("proxy_protocol = true; proxy_from = [\"10.0.0.1/8\"];"), 2,
	  "proxy_from: \"10.0.0.1/8\": " },
	{ PL("proxy_protocol = 1; proxy_from = [\"10.0.0.1\"];"), 2,
	  "proxy_protocol must be true or false" },
	{ PL("proxy_protocol = true; proxy_from = \"::1\";\n"
	  "proxy_timeout = 0;"), 3, "proxy_timeout must be 1 to 86400" },
	{ PL("allow = [\"10.0.0.0/33\"];"), 2, "allow: \"10.0.0.0/33\": " },
	{ PL("deny = [\"example.com\"];"), 2, "deny: \"example.com\": " },
	{ PL("deny = [5];"), 2, "deny: each network must be a string" },
	{ PL("allow = 5;"), 2, "allow must be a list of networks" },
	{ PL("allow = [];"), 2, "allow must list at least one network" },
};

START_TEST(test_access_bad)
{
	const struct bad_case *bc = &access_bad_cases[_i];
	struct cfg_diag d;
	char where[64];
	size_t i;
	int found = 0;

	ck_assert_ptr_null(load(bc->text, &d));
	snprintf(where, sizeof(where), "test.conf:%d: ", bc->line);
	for (i = 0; i < d.n; i++)
		if (strncmp(d.msgs[i], where, strlen(where)) == 0 &&
		    strstr(d.msgs[i], bc->words) != NULL)
			found = 1;
	for (i = 0; !found && i < d.n; i++)
		fprintf(stderr, "case %d got: %s\n", _i, d.msgs[i]);
	ck_assert_msg(found, "case %d: no \"%s%s\"", _i, where, bc->words);
	cfg_diag_free(&d);
}
END_TEST

static const struct sockaddr *
sa4(struct sockaddr_in *sin, const char *text)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	return (const struct sockaddr *)sin;
}

/* Defaults, the lists as read, deny before allow, and -T round trip. */
START_TEST(test_access_settings)
{
	struct cfg_diag d;
	struct cfg *a, *b;
	const struct cfg_listener *l;
	struct sockaddr_in sin;
	char *text = NULL;
	size_t len;
	FILE *f;

	a = load(OK_LISTENERS, &d);
	ck_assert_ptr_nonnull(a);
	l = &a->listeners[0];
	ck_assert_int_eq(l->proxy_protocol, 0);
	ck_assert_uint_eq(l->proxy_timeout, 3);
	/* No allow: everyone. */
	ck_assert(cfg_listener_admits(l, sa4(&sin, "203.0.113.9")));
	cfg_unref(a);

	a = load(PL("proxy_protocol = true; proxy_from = [\"10.0.0.5\","
	    " \"2001:db8::/32\"]; proxy_timeout = 9;\n"
	    "allow = [\"192.0.2.0/24\", \"::1\"]; deny = \"192.0.2.66\";"),
	    &d);
	ck_assert_msg(a != NULL, "%s", d.n ? d.msgs[0] : "?");
	l = &a->listeners[0];
	ck_assert_int_eq(l->proxy_protocol, 1);
	ck_assert_uint_eq(l->proxy_timeout, 9);
	ck_assert_uint_eq(l->proxy_from.n, 2);
	ck_assert(cfg_listener_admits(l, sa4(&sin, "192.0.2.1")));
	ck_assert(!cfg_listener_admits(l, sa4(&sin, "192.0.2.66")));
	ck_assert(!cfg_listener_admits(l, sa4(&sin, "198.51.100.1")));

	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	cfg_print(a, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(strstr(text, "proxy_from = [\"10.0.0.5/32\", "
	    "\"2001:db8::/32\"];"));
	b = load(text, &d);
	ck_assert_msg(b != NULL, "%s\n%s", d.n ? d.msgs[0] : "?", text);
	l = &b->listeners[0];
	ck_assert_int_eq(l->proxy_protocol, 1);
	ck_assert_uint_eq(l->proxy_timeout, 9);
	ck_assert_uint_eq(l->proxy_from.n, 2);
	ck_assert_uint_eq(l->allow.n, 2);
	ck_assert_uint_eq(l->deny.n, 1);
	ck_assert(!cfg_listener_admits(l, sa4(&sin, "192.0.2.66")));
	cfg_unref(a);
	cfg_unref(b);
	cfg_diag_free(&d);
	free(text);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_loop_test(tc, test_bad, 0,
	    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_all_errors_at_once);
	tcase_add_test(tc, test_errors_capped_not_quadratic);
	tcase_add_test(tc, test_many_listeners_fast);
	tcase_add_test(tc, test_clashes_with_other_errors);
	tcase_add_test(tc, test_unknown_far_no_guess);
	tcase_add_loop_test(tc, test_warn_setting_without_effect, 0,
	    (int)(sizeof(warn_cases) / sizeof(warn_cases[0])));
	tcase_add_test(tc, test_warnings_capped);
	tcase_add_test(tc, test_no_warning_where_settings_apply);
	tcase_add_test(tc, test_print_no_ignored_settings);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_overrides);
	tcase_add_test(tc, test_int_same_line);
	tcase_add_test(tc, test_int_scan_literals_only);
	tcase_add_test(tc, test_print_loads_back);
	tcase_add_test(tc, test_print_protocol_defaults);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_include_unsafe_files);
	tcase_add_test(tc, test_include_nested);
	tcase_add_test(tc, test_dropins);
	tcase_add_test(tc, test_print_quotes_file);
	tcase_add_test(tc, test_shipped);
	tcase_add_test(tc, test_refs);
	tcase_add_loop_test(tc, test_access_bad, 0,
	    (int)(sizeof(access_bad_cases) / sizeof(access_bad_cases[0])));
	tcase_add_test(tc, test_access_settings);
	suite_add_tcase(s, tc);
	/* The largest file: its own time limit, well within ctest's. */
	tc = tcase_create("scale");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_scan_integers_linear);
	suite_add_tcase(s, tc);
	return check_run(s);
}
