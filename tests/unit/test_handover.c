/*
 * The hand-over's state format: a blob of records round-trips field
 * for field; cut at every length it is refused with a reason, never
 * read past its end (run under ASan: the blob is copied to a buffer of
 * exactly the cut length); every byte flipped in turn is refused or
 * read back flipped; an unknown version, bad magic
 * or bytes after the last record are refused.  And the restart-vs-stop
 * decision, as a function of systemd's job type.
 */
#include <check.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handover.h"
#include "check_main.h"

static const unsigned char pstate[] = { 3, 0, 0, 0, 7, 0, 0, 0 };
static const unsigned char held[] = "Will it ra";
static const unsigned char queued[] = "one? Yes.\r\ntwo? No.\r\n";

static void
sample(struct ho_conn *c, int i)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listener, sizeof(c->listener), "oracle-%d", i);
	snprintf(c->proto, sizeof(c->proto), "oracle");
	c->local.family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", c->local.addr);
	c->local.port = 1234;
	c->peer.family = AF_INET6;
	inet_pton(AF_INET6, "::1", c->peer.addr);
	c->peer.port = (uint16_t)(40000 + i);
	c->client.family = AF_INET;
	c->client.addr[0] = 10;
	c->client.addr[3] = (uint8_t)i;
	c->client_port = 5555;
	c->state = 1;
	c->flags = 0x2a;
	c->in = 0x0102030405060708ULL;
	c->out = 42;
	c->acked = 41;
	c->age_start = 123456;
	c->age_progress = 12;
	c->age_out = 7;
	c->unit_in = -2500;
	c->pstate_version = 1;
	c->pstate = pstate;
	c->pstate_len = sizeof(pstate);
	c->held = held;
	c->held_len = (uint32_t)(sizeof(held) - 1);
	c->queued = queued;
	c->queued_len = i == 1 ? 0 : (uint32_t)(sizeof(queued) - 1);
}

#define NSAMPLES 3

static void
blob(struct ho_buf *b)
{
	struct ho_conn c;
	int i;

	memset(b, 0, sizeof(*b));
	ck_assert_int_eq(ho_put_header(b, NSAMPLES), 0);
	for (i = 0; i < NSAMPLES; i++) {
		sample(&c, i);
		ck_assert_int_eq(ho_put_conn(b, &c), 0);
	}
}

static void
same(const struct ho_conn *a, const struct ho_conn *b)
{
	ck_assert_str_eq(a->listener, b->listener);
	ck_assert_str_eq(a->proto, b->proto);
	ck_assert(ho_addr_equal(&a->local, &b->local));
	ck_assert(ho_addr_equal(&a->peer, &b->peer));
	ck_assert_mem_eq(&a->client, &b->client, sizeof(a->client));
	ck_assert_uint_eq(a->client_port, b->client_port);
	ck_assert_uint_eq(a->state, b->state);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert(a->in == b->in && a->out == b->out);
	ck_assert_uint_eq(a->acked, b->acked);
	ck_assert_uint_eq(a->age_start, b->age_start);
	ck_assert_uint_eq(a->age_progress, b->age_progress);
	ck_assert_uint_eq(a->age_out, b->age_out);
	ck_assert_int_eq(a->unit_in, b->unit_in);
	ck_assert_uint_eq(a->pstate_version, b->pstate_version);
	ck_assert_uint_eq(a->pstate_len, b->pstate_len);
	ck_assert_mem_eq(a->pstate, b->pstate, a->pstate_len);
	ck_assert_uint_eq(a->held_len, b->held_len);
	ck_assert_mem_eq(a->held, b->held, a->held_len);
	ck_assert_uint_eq(a->queued_len, b->queued_len);
	if (a->queued_len > 0)
		ck_assert_mem_eq(a->queued, b->queued, a->queued_len);
}

START_TEST(test_round_trip)
{
	struct ho_conn *recs, want, *dup;
	struct ho_buf b;
	char err[128];
	int i;

	blob(&b);
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)),
	    NSAMPLES);
	for (i = 0; i < NSAMPLES; i++) {
		sample(&want, i);
		same(&recs[i], &want);
	}
	/* The copy owns its bytes: the blob can go. */
	dup = ho_conn_dup(&recs[0]);
	ck_assert_ptr_nonnull(dup);
	free(recs);
	memset(b.data, 0, b.len);
	sample(&want, 0);
	same(dup, &want);
	free(dup);
	ho_buf_free(&b);
}
END_TEST

START_TEST(test_empty_state)
{
	struct ho_conn *recs;
	struct ho_buf b;
	char err[128];

	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(ho_put_header(&b, 0), 0);
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)), 0);
	ck_assert_ptr_null(recs);
	ho_buf_free(&b);
}
END_TEST

/* Every cut: refused, in a buffer of exactly that size (ASan sees any
   read past it). */
START_TEST(test_every_truncation)
{
	struct ho_conn *recs;
	struct ho_buf b;
	char err[128];
	size_t n;

	blob(&b);
	for (n = 0; n < b.len; n++) {
		unsigned char *cut = malloc(n + 1);

		memcpy(cut, b.data, n);
		err[0] = '\0';
		ck_assert_msg(ho_parse(cut, n, &recs, err, sizeof(err)) == -1,
		    "cut at %zu of %zu parsed", n, b.len);
		ck_assert_ptr_null(recs);
		ck_assert_msg(err[0] != '\0', "cut at %zu: no reason", n);
		free(cut);
	}
	ho_buf_free(&b);
}
END_TEST

/* The records written out again: the blob they were read from, byte for
   byte, if the reader kept every field it was given. */
static void
rewrite(struct ho_buf *b, const struct ho_conn *recs, long n)
{
	long i;

	memset(b, 0, sizeof(*b));
	ck_assert_int_eq(ho_put_header(b, (uint32_t)n), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(ho_put_conn(b, &recs[i]), 0);
}

/* Every byte spoiled: refused, or read back spoiled (never ignored, never
   read as something else). */
START_TEST(test_every_byte_corrupted)
{
	struct ho_conn *recs;
	struct ho_buf b, again;
	char err[128];
	size_t i;
	long n;

	blob(&b);
	for (i = 0; i < b.len; i++) {
		unsigned char *bad = malloc(b.len);

		memcpy(bad, b.data, b.len);
		bad[i] ^= 0xff;
		n = ho_parse(bad, b.len, &recs, err, sizeof(err));
		if (n != -1) {
			ck_assert_int_eq(n, NSAMPLES);
			rewrite(&again, recs, n);
			ck_assert_msg(again.len == b.len &&
			    memcmp(again.data, bad, b.len) == 0,
			    "byte %zu of %zu flipped: parsed, but not read "
			    "back as flipped", i, b.len);
			ho_buf_free(&again);
		}
		free(recs);
		free(bad);
	}
	ho_buf_free(&b);
}
END_TEST

START_TEST(test_unknown_version)
{
	struct ho_conn *recs;
	struct ho_buf b;
	char err[128];

	blob(&b);
	b.data[8] = EO_HO_VERSION + 1;
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "version 2"));
	ho_buf_free(&b);
}
END_TEST

START_TEST(test_bad_magic)
{
	struct ho_conn *recs;
	struct ho_buf b;
	char err[128];

	blob(&b);
	b.data[0] = 'X';
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "magic"));
	ho_buf_free(&b);
}
END_TEST

START_TEST(test_trailing_bytes)
{
	struct ho_conn *recs;
	struct ho_buf b;
	char err[128];

	blob(&b);
	ck_assert_int_eq(ho_buf_add(&b, "x", 1), 0);
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "after the last record"));
	ho_buf_free(&b);
}
END_TEST

/* A count far beyond what the bytes hold: refused before any calloc. */
START_TEST(test_huge_count)
{
	struct ho_conn *recs;
	struct ho_buf b;
	char err[128];

	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(ho_put_header(&b, 0xffffffffu), 0);
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)),
	    -1);
	ho_buf_free(&b);
}
END_TEST

/* A record whose inner length runs past its own end. */
START_TEST(test_field_past_record)
{
	struct ho_conn *recs, c;
	struct ho_buf b;
	char err[128];
	size_t at;

	memset(&b, 0, sizeof(b));
	ho_put_header(&b, 1);
	at = b.len;
	sample(&c, 0);
	ho_put_conn(&b, &c);
	/* The record one byte shorter than its fields: its last byte is
	   then read as the next record's. */
	b.data[at] = (unsigned char)(b.data[at] - 1);
	ck_assert_int_eq(ho_parse(b.data, b.len, &recs, err, sizeof(err)),
	    -1);
	ho_buf_free(&b);
}
END_TEST

START_TEST(test_job_is_restart)
{
	ck_assert(ho_job_is_restart("restart"));
	ck_assert(ho_job_is_restart("try-restart"));
	ck_assert(ho_job_is_restart("reload-or-restart"));
	ck_assert(!ho_job_is_restart("stop"));
	ck_assert(!ho_job_is_restart("start"));
	ck_assert(!ho_job_is_restart("reload"));
	ck_assert(!ho_job_is_restart(""));
	ck_assert(!ho_job_is_restart(NULL));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("handover");
	TCase *tc = tcase_create("handover");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_empty_state);
	tcase_add_test(tc, test_every_truncation);
	tcase_add_test(tc, test_every_byte_corrupted);
	tcase_add_test(tc, test_unknown_version);
	tcase_add_test(tc, test_bad_magic);
	tcase_add_test(tc, test_trailing_bytes);
	tcase_add_test(tc, test_huge_count);
	tcase_add_test(tc, test_field_past_record);
	tcase_add_test(tc, test_job_is_restart);
	suite_add_tcase(s, tc);
	return check_run(s);
}
