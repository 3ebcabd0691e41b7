/*
 * The protocol table, the PRNG protocols draw from, and echo.
 */
#include <check.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "check_main.h"

START_TEST(test_table)
{
	ck_assert_ptr_eq(protocol_find("echo"), &proto_echo);
	ck_assert_ptr_eq(protocol_find("oracle"), &proto_oracle);
	ck_assert_ptr_eq(protocol_find("discard"), &proto_discard);
	ck_assert_ptr_eq(protocol_find("chargen"), &proto_chargen);
	ck_assert_ptr_eq(protocol_find("daytime"), &proto_daytime);
	ck_assert_ptr_eq(protocol_find("time"), &proto_time);
	ck_assert_ptr_eq(protocol_find("qotd"), &proto_qotd);
	ck_assert_ptr_null(protocol_find("echo "));
	ck_assert_ptr_null(protocol_find(""));
	ck_assert_ptr_null(protocol_find("Echo"));
	ck_assert_ptr_eq(protocol_find("metrics"), &proto_metrics);
	ck_assert_ptr_eq(protocol_find("http"), &proto_http);
	ck_assert_str_eq(protocol_names(), "echo, oracle, discard, chargen, "
	    "daytime, time, qotd, metrics, http");
	ck_assert_str_eq(proto_echo.name, "echo");
	ck_assert_str_eq(proto_oracle.name, "oracle");
}
END_TEST

/* Every entry fills what conn.c calls unconditionally. */
START_TEST(test_entries_complete)
{
	const struct protocol *const all[] = { &proto_echo, &proto_oracle,
	    &proto_discard, &proto_chargen, &proto_daytime, &proto_time,
	    &proto_qotd };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct cfg_diag d;
		void *opts = NULL;

		ck_assert_ptr_nonnull(all[i]->opts_parse);
		ck_assert_ptr_nonnull(all[i]->opts_free);
		ck_assert_ptr_nonnull(all[i]->input);
		ck_assert_ptr_nonnull(all[i]->eof);
		cfg_diag_init(&d);
		/* No group: the defaults. */
		ck_assert_int_eq(all[i]->opts_parse(NULL, &opts, &d), 0);
		ck_assert_uint_eq(d.n, 0);
		all[i]->opts_free(opts);
		cfg_diag_free(&d);
	}
}
END_TEST

/*
 * The hooks each entry says it has: who speaks first, who produces,
 * and what UDP may do with it (issue 11).
 */
START_TEST(test_entries_hooks)
{
	const struct protocol *const greeters[] = { &proto_daytime,
	    &proto_time, &proto_qotd };
	size_t i;

	for (i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(greeters[i]->greet);
		ck_assert_ptr_null(greeters[i]->produce);
		ck_assert_ptr_nonnull(greeters[i]->close_why);
		ck_assert_ptr_nonnull(greeters[i]->dgram);
		ck_assert_int_eq(greeters[i]->amplifies, 1);
	}
	ck_assert_ptr_nonnull(proto_chargen.produce);
	ck_assert_ptr_null(proto_chargen.greet);
	ck_assert_int_eq(proto_chargen.amplifies, 1);
	ck_assert_ptr_nonnull(proto_discard.dgram);
	ck_assert_int_eq(proto_discard.amplifies, 0);
	ck_assert_ptr_null(proto_discard.greet);
	ck_assert_ptr_null(proto_discard.produce);
	/* echo and the oracle keep their input-driven path. */
	ck_assert_ptr_null(proto_echo.greet);
	ck_assert_ptr_null(proto_echo.produce);
	ck_assert_ptr_null(proto_oracle.greet);
	ck_assert_ptr_null(proto_oracle.produce);
}
END_TEST

/* Runs the oracle on text with room to spare; its verdict. */
static enum proto_verdict
oracle_feed(void *st, const void *opts, const char *text)
{
	struct iovec iov[16];
	uint64_t rng = 1;
	struct proto_in in = { (const unsigned char *)text, strlen(text) };
	struct proto_out out = { iov, 0, 16, 0, (size_t)-1, 0, 0, &rng, NULL, NULL,
	    0, 0 };

	return proto_oracle.input(st, opts, &in, &out);
}

/*
 * Issue 16 #2: when input() closes, close_why() names the rule and its
 * value in the words of the config, for the close line in the log.
 */
START_TEST(test_oracle_close_why)
{
	config_t lcfg;
	struct cfg_diag d;
	void *opts = NULL;
	uint64_t st[4];

	ck_assert_ptr_nonnull(proto_oracle.close_why);
	ck_assert_ptr_null(proto_echo.close_why);
	ck_assert_str_eq(proto_oracle.unit_timeout_name, "question_timeout");
	ck_assert_uint_le(proto_oracle.state_size, sizeof(st));
	config_init(&lcfg);
	ck_assert_int_eq(config_read_string(&lcfg, "oracle = { max_questions "
	    "= 2; max_question_length = 16; };"), CONFIG_TRUE);
	cfg_diag_init(&d);
	ck_assert_int_eq(proto_oracle.opts_parse(config_lookup(&lcfg,
	    "oracle"), &opts, &d), 0);

	memset(st, 0, sizeof(st));
	ck_assert_int_eq(oracle_feed(st, opts, "A? B? C?"), EO_PROTO_CLOSE);
	ck_assert_str_eq(proto_oracle.close_why(st, opts),
	    "max_questions (2)");
	memset(st, 0, sizeof(st));
	ck_assert_int_eq(oracle_feed(st, opts, "A? twenty bytes, no mark"),
	    EO_PROTO_CLOSE);
	ck_assert_str_eq(proto_oracle.close_why(st, opts),
	    "max_question_length (16)");

	proto_oracle.opts_free(opts);
	cfg_diag_free(&d);
	config_destroy(&lcfg);
}
END_TEST

START_TEST(test_random)
{
	uint64_t rng = 1;
	struct proto_out out = { NULL, 0, 0, 0, 0, 0, 0, &rng, NULL, NULL, 0,
	    0 };
	unsigned seen[7] = { 0 }, i;

	for (i = 0; i < 7000; i++) {
		uint32_t r = proto_random(&out, 7);

		ck_assert_uint_lt(r, 7);
		seen[r]++;
	}
	for (i = 0; i < 7; i++)
		ck_assert_uint_gt(seen[i], 800);
	for (i = 0; i < 100; i++)
		ck_assert_uint_eq(proto_random(&out, 1), 0);
	/* Seeds differ from one worker to the next. */
	{
		uint64_t a = 0, b = 0;

		proto_seed(&a);
		proto_seed(&b);
		ck_assert(a != b);
	}
}
END_TEST

/* The reply is the input itself, not a copy; the budget holds. */
START_TEST(test_echo)
{
	static unsigned char data[70000];
	struct iovec iov[4];
	struct proto_in in = { data, sizeof(data) };
	struct proto_out out = { iov, 0, 4, 0, 1000, 0, 0, NULL, NULL, NULL, 0,
	    0 };
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + i / 256);
	data[10] = '\0';
	/* At most room bytes; the rest waits, and out says it is full. */
	ck_assert_int_eq(proto_echo.input(NULL, NULL, &in, &out), EO_PROTO_OK);
	ck_assert_uint_eq(out.niov, 1);
	ck_assert_ptr_eq(iov[0].iov_base, data);
	ck_assert_uint_eq(iov[0].iov_len, 1000);
	ck_assert_uint_eq(out.len, 1000);
	ck_assert_int_eq(out.full, 1);
	ck_assert_uint_eq(out.units, 1);
	ck_assert_ptr_eq(in.data, data + 1000);
	ck_assert_uint_eq(in.len, sizeof(data) - 1000);
	/* No room at all: nothing taken. */
	out.full = 0;
	ck_assert_int_eq(proto_echo.input(NULL, NULL, &in, &out), EO_PROTO_OK);
	ck_assert_uint_eq(out.niov, 1);
	ck_assert_int_eq(out.full, 1);
	/* Room enough: everything, in one piece. */
	out.niov = 0;
	out.len = 0;
	out.full = 0;
	out.room = (size_t)-1;
	ck_assert_int_eq(proto_echo.input(NULL, NULL, &in, &out), EO_PROTO_OK);
	ck_assert_uint_eq(out.niov, 1);
	ck_assert_ptr_eq(iov[0].iov_base, data + 1000);
	ck_assert_uint_eq(iov[0].iov_len, sizeof(data) - 1000);
	ck_assert_uint_eq(in.len, 0);
	ck_assert_int_eq(out.full, 0);
	ck_assert_uint_eq(out.units, 2);
	/* Nothing in, nothing out. */
	ck_assert_int_eq(proto_echo.input(NULL, NULL, &in, &out), EO_PROTO_OK);
	ck_assert_uint_eq(out.units, 2);
	ck_assert_int_eq(proto_echo.eof(NULL, NULL, &in, &out),
	    EO_PROTO_CLOSE);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc = tcase_create("protocol");

	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_entries_complete);
	tcase_add_test(tc, test_entries_hooks);
	tcase_add_test(tc, test_random);
	tcase_add_test(tc, test_oracle_close_why);
	tcase_add_test(tc, test_echo);
	suite_add_tcase(s, tc);
	return check_run(s);
}
