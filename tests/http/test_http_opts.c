/*
 * The listener's http = { ... } options: defaults, every setting read,
 * every mistake reported as FILE:LINE, and -T's output read back.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "http.h"

static struct cfg_diag diag;
static config_t lc;

/* Parses "http = { BODY };" (the body on the lines it has). */
static int
parse(const char *body, struct http_opts *o)
{
	char text[2048];

	snprintf(text, sizeof(text), "http = {\n%s\n};\n", body);
	config_destroy(&lc);
	config_init(&lc);
	ck_assert_int_eq(config_read_string(&lc, text), CONFIG_TRUE);
	cfg_diag_free(&diag);
	cfg_diag_init(&diag);
	diag.file = "test.conf";
	return http_opts_parse(config_lookup(&lc, "http"), o, &diag);
}

static void
setup(void)
{
	config_init(&lc);
	cfg_diag_init(&diag);
}

static void
teardown(void)
{
	config_destroy(&lc);
	cfg_diag_free(&diag);
}

static int
has_error(const char *needle)
{
	size_t i;

	for (i = 0; i < diag.n; i++)
		if (strstr(diag.msgs[i], needle) != NULL)
			return 1;
	return 0;
}

START_TEST(test_defaults)
{
	struct http_opts o;

	ck_assert_int_eq(http_opts_parse(NULL, &o, NULL), 0);
	ck_assert_int_eq(o.format, HTTP_FMT_JSON);
	ck_assert_int_eq(o.controls, 1);
	ck_assert_uint_eq(o.max_delay, 10000);
	ck_assert_uint_eq(o.max_response_size, 10u << 20);
	ck_assert_uint_eq(o.max_header_size, 8192);
	ck_assert_uint_eq(o.max_body_size, 1u << 20);
	ck_assert_uint_eq(o.request_timeout, 30);
	ck_assert_uint_eq(o.max_requests, 1000);
	ck_assert_uint_eq(o.max_message_size, 1u << 20);
	ck_assert_int_eq(parse("", &o), 0);
	ck_assert_uint_eq(o.max_header_size, 8192);
}
END_TEST

START_TEST(test_every_setting_read)
{
	struct http_opts o;

	ck_assert_int_eq(parse("format = \"text\"; controls = false;\n"
	    "max_delay = 5; max_response_size = 4000000000L;\n"
	    "max_header_size = 1024; max_body_size = 0; request_timeout = 0;\n"
	    "max_requests = 1; max_message_size = 99;", &o), 0);
	ck_assert_int_eq(o.format, HTTP_FMT_TEXT);
	ck_assert_int_eq(o.controls, 0);
	ck_assert_uint_eq(o.max_delay, 5);
	ck_assert_uint_eq(o.max_response_size, 4000000000u);
	ck_assert_uint_eq(o.max_header_size, 1024);
	ck_assert_uint_eq(o.max_body_size, 0);
	ck_assert_uint_eq(o.request_timeout, 0);
	ck_assert_uint_eq(o.max_requests, 1);
	ck_assert_uint_eq(o.max_message_size, 99);
}
END_TEST

/* Each mistake, alone, and the FILE:LINE it is reported at.  (Big
   numbers carry libconfig's L here: the loader's own scan, which reads
   them without it, is not on this path.) */
static const struct {
	const char *body;
	const char *error;
} bad[] = {
	{ "format = \"xml\";", "test.conf:2: " },
	{ "format = 1;", "test.conf:2: " },
	{ "controls = 1;", "test.conf:2: " },
	{ "max_delay = 600001;", "test.conf:2: " },
	{ "max_delay = -1;", "test.conf:2: " },
	{ "max_header_size = 255;", "test.conf:2: " },
	{ "max_header_size = 1048577;", "test.conf:2: " },
	{ "max_body_size = 67108865;", "test.conf:2: " },
	{ "request_timeout = 86401;", "test.conf:2: " },
	{ "max_message_size = 0;", "test.conf:2: " },
	{ "max_response_size = 4294967296L;", "test.conf:2: " },
	{ "max_requests = \"10\";", "test.conf:2: " },
	{ "\nmax_bodysize = 1;", "test.conf:3: " },
};

START_TEST(test_bad_setting_reported_at_its_line)
{
	struct http_opts o;

	ck_assert_int_eq(parse(bad[_i].body, &o), -1);
	ck_assert_msg(has_error(bad[_i].error), "%s: %s", bad[_i].body,
	    diag.n > 0 ? diag.msgs[0] : "no message");
}
END_TEST

/* One run reports every mistake, as parse.y does. */
START_TEST(test_every_mistake_at_once)
{
	struct http_opts o;

	ck_assert_int_eq(parse("format = \"xml\";\nmax_delay = -1;\n"
	    "nope = 1;", &o), -1);
	ck_assert(has_error("test.conf:2: "));
	ck_assert(has_error("test.conf:3: "));
	ck_assert(has_error("test.conf:4: "));
}
END_TEST

START_TEST(test_not_a_group)
{
	struct http_opts o;

	config_destroy(&lc);
	config_init(&lc);
	ck_assert_int_eq(config_read_string(&lc, "http = 1;"), CONFIG_TRUE);
	diag.file = "test.conf";
	ck_assert_int_eq(http_opts_parse(config_lookup(&lc, "http"), &o,
	    &diag), -1);
	ck_assert(has_error("test.conf:1: "));
}
END_TEST

/* What -T prints reads back as the same options. */
START_TEST(test_print_reads_back)
{
	struct http_opts o, back;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(parse("format = \"text\"; controls = false;\n"
	    "max_delay = 7; max_response_size = 123; max_requests = 0;", &o), 0);
	f = open_memstream(&text, &len);
	http_opts_print(&o, f);
	fclose(f);
	ck_assert_int_eq(parse(text, &back), 0);
	ck_assert_mem_eq(&o, &back, sizeof(o));
	free(text);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http_opts");
	TCase *tc = tcase_create("opts");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_setting_read);
	tcase_add_loop_test(tc, test_bad_setting_reported_at_its_line, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_every_mistake_at_once);
	tcase_add_test(tc, test_not_a_group);
	tcase_add_test(tc, test_print_reads_back);
	suite_add_tcase(s, tc);
	return check_run(s);
}
