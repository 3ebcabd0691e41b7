/*
 * The oracle, a "sphinx": a question is every byte up to and including
 * the first '?'; whitespace before a question is skipped.  Each question
 * is answered with itself, one space, one of the configured answers
 * drawn at random, and reply_end ("\r\n" by default):
 *
 *	Will I be happy tomorrow? Very likely.\r\n
 *
 * Bytes are bytes: a question may hold NULs or any other octet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define ORACLE_MAX_ANSWERS	1024
#define ORACLE_ANSWER_MAX	256	/* bytes in one answer */
#define ORACLE_REPLY_END_MAX	8

struct oracle_opts {
	uint32_t	  max_questions;	/* 0: no limit */
	uint32_t	  max_question_length;	/* bytes, '?' included */
	uint32_t	  question_timeout;	/* s; 0: no limit */
	uint32_t	  nanswers;
	char		  reply_end[ORACLE_REPLY_END_MAX + 1];	/* for -T */
	/* " ANSWER" + reply_end: a reply is the question and one of these */
	char		**tails;
	size_t		 *tail_lens;
	char		  too_long[64];	/* the error line, ready to send */
	size_t		  too_long_len;
	/* Close reasons for the log, in the config's words. */
	char		  why_max[48];	/* "max_questions (10)" */
	char		  why_long[48];	/* "max_question_length (1024)" */
};

static const char oracle_unfinished[] =
    "error: unfinished question: questions end with '?'\r\n";

struct oracle_state {
	uint32_t	  answered;
	/* Bytes at the head of the input already searched for '?', so a
	   question arriving a byte at a time is scanned once, not n^2/2. */
	uint32_t	  scanned;
};

static const char *const oracle_default_answers[] = {
	"Yes.", "Very likely.", "Maybe.", "Not likely.", "No.",
};

static void
oracle_opts_free(void *vopts)
{
	struct oracle_opts *o = vopts;
	uint32_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->nanswers; i++)
		free(o->tails[i]);
	free(o->tails);
	free(o->tail_lens);
	free(o);
}

static int
oracle_add_answer(struct oracle_opts *o, const char *answer,
    const char *reply_end)
{
	size_t alen = strlen(answer), elen = strlen(reply_end);
	char *tail = malloc(1 + alen + elen + 1);

	if (tail == NULL)
		return -1;
	tail[0] = ' ';
	memcpy(tail + 1, answer, alen);
	memcpy(tail + 1 + alen, reply_end, elen + 1);
	o->tails[o->nanswers] = tail;
	o->tail_lens[o->nanswers] = 1 + alen + elen;
	o->nanswers++;
	return 0;
}

/* Checks the answers list; returns how many there are, or -1. */
static int
oracle_check_answers(const config_setting_t *list, struct cfg_diag *d)
{
	int i, n, bad = 0;

	if (!config_setting_is_aggregate(list) ||
	    config_setting_is_group(list)) {
		cfg_error(d, list, "answers must be a list of strings, "
		    "e.g. [\"Yes.\", \"No.\"]");
		return -1;
	}
	n = config_setting_length(list);
	if (n < 1 || n > ORACLE_MAX_ANSWERS) {
		cfg_error(d, list, "answers must hold 1 to %d strings, not %d",
		    ORACLE_MAX_ANSWERS, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list,
		    (unsigned)i);
		const char *s = config_setting_get_string(e);
		size_t len;

		if (s == NULL) {
			cfg_error(d, e, "answers[%d] must be a string", i);
			bad = 1;
			continue;
		}
		len = strlen(s);
		if (len == 0 || len > ORACLE_ANSWER_MAX) {
			cfg_error(d, e, "answers[%d] must be 1 to %d bytes",
			    i, ORACLE_ANSWER_MAX);
			bad = 1;
		} else if (strpbrk(s, "\r\n") != NULL) {
			cfg_error(d, e, "answers[%d] must be one line", i);
			bad = 1;
		}
	}
	return bad ? -1 : n;
}

/* The texts made once per configuration: the error line the client
   reads and the close reasons the log shows. */
static void
oracle_opts_texts(struct oracle_opts *o)
{
	o->too_long_len = (size_t)snprintf(o->too_long, sizeof(o->too_long),
	    "error: question longer than %u bytes\r\n", o->max_question_length);
	snprintf(o->why_max, sizeof(o->why_max), "max_questions (%u)",
	    o->max_questions);
	snprintf(o->why_long, sizeof(o->why_long), "max_question_length (%u)",
	    o->max_question_length);
}

static int
oracle_opts_parse(const config_setting_t *group, void **optsp,
    struct cfg_diag *d)
{
	static const char *const known[] = { "answers", "max_questions",
	    "max_question_length", "question_timeout", "reply_end", NULL };
	const config_setting_t *list = NULL;
	struct oracle_opts *o;
	const char *reply_end = "\r\n";
	int i, n = (int)(sizeof(oracle_default_answers) /
	    sizeof(oracle_default_answers[0]));
	int bad = 0;

	*optsp = NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->max_questions = 10;
	o->max_question_length = 1024;
	o->question_timeout = 30;
	if (group != NULL) {
		bad |= cfg_check_keys(d, group, known) < 0;
		bad |= cfg_get_uint(d, group, "max_questions", 0, UINT32_MAX,
		    &o->max_questions) < 0;
		bad |= cfg_get_uint(d, group, "max_question_length", 1,
		    1024 * 1024, &o->max_question_length) < 0;
		bad |= cfg_get_uint(d, group, "question_timeout", 0, 86400,
		    &o->question_timeout) < 0;
		bad |= cfg_get_string(d, group, "reply_end",
		    ORACLE_REPLY_END_MAX, &reply_end) < 0;
		if ((list = config_setting_get_member(group, "answers")) !=
		    NULL && (n = oracle_check_answers(list, d)) < 0)
			bad = 1;
	}
	if (bad) {
		oracle_opts_free(o);
		return -1;
	}
	snprintf(o->reply_end, sizeof(o->reply_end), "%s", reply_end);
	o->tails = calloc((size_t)n, sizeof(*o->tails));
	o->tail_lens = calloc((size_t)n, sizeof(*o->tail_lens));
	if (o->tails == NULL || o->tail_lens == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		const char *a = list != NULL ? config_setting_get_string_elem(
		    list, i) : oracle_default_answers[i];
		if (oracle_add_answer(o, a, reply_end) == -1)
			goto nomem;
	}
	oracle_opts_texts(o);
	*optsp = o;
	return 0;
nomem:
	cfg_error(d, group, "out of memory");
	oracle_opts_free(o);
	return -1;
}

static void
oracle_opts_print(const void *vopts, FILE *f)
{
	const struct oracle_opts *o = vopts;
	char answer[ORACLE_ANSWER_MAX + 1];
	size_t alen, elen = strlen(o->reply_end);
	uint32_t i;

	fprintf(f, "max_questions = %u; max_question_length = %u;\n"
	    "      question_timeout = %u; reply_end = ", o->max_questions,
	    o->max_question_length, o->question_timeout);
	cfg_print_string(f, o->reply_end);
	fputs(";\n      answers = [", f);
	for (i = 0; i < o->nanswers; i++) {
		/* A tail is " ANSWER" then reply_end: the answer between. */
		alen = o->tail_lens[i] - 1 - elen;
		memcpy(answer, o->tails[i] + 1, alen);
		answer[alen] = '\0';
		fputs(i > 0 ? ", " : "", f);
		cfg_print_string(f, answer);
	}
	fputs("]; ", f);
}

static uint32_t
oracle_unit_timeout(const void *vopts)
{
	const struct oracle_opts *o = vopts;

	return o->question_timeout;
}

/* isspace() in the C locale, without its per-byte function call. */
static int
oracle_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Takes the whitespace at the head of in: the CR LF after a question. */
static void
oracle_skip_space(struct proto_in *in)
{
	size_t n = 0;

	while (n < in->len && oracle_space(in->data[n]))
		n++;
	proto_take(in, n);
}

static enum proto_verdict
oracle_input(void *vstate, const void *vopts, struct proto_in *in,
    struct proto_out *out)
{
	struct oracle_state *st = vstate;
	const struct oracle_opts *o = vopts;

	for (;;) {
		const unsigned char *mark;
		size_t limit, qlen;
		uint32_t pick;

		if (o->max_questions != 0 && st->answered >= o->max_questions)
			return EO_PROTO_CLOSE;
		if (st->scanned == 0)
			oracle_skip_space(in);
		if (in->len == 0 || !proto_room(out, 2))
			return EO_PROTO_OK;
		/* A '?' past max_question_length would come too late. */
		limit = in->len < o->max_question_length ? in->len :
		    o->max_question_length;
		/* Searched further by the process before a restart, under a
		   higher limit (or the state is damaged): no '?' was within
		   ours, and the search must not start past the input. */
		if (st->scanned > limit)
			st->scanned = (uint32_t)limit;
		mark = memchr(in->data + st->scanned, '?', limit - st->scanned);
		if (mark == NULL) {
			if (in->len < o->max_question_length) {
				st->scanned = (uint32_t)in->len;
				return EO_PROTO_OK;	/* the rest will come */
			}
			proto_put(out, o->too_long, o->too_long_len);
			return EO_PROTO_CLOSE;
		}
		qlen = (size_t)(mark - in->data) + 1;
		pick = proto_random(out, o->nanswers);
		proto_put(out, in->data, qlen);
		proto_put(out, o->tails[pick], o->tail_lens[pick]);
		proto_take(in, qlen);
		st->scanned = 0;
		st->answered++;
		out->units++;
	}
}

static enum proto_verdict
oracle_eof(void *vstate, const void *vopts, struct proto_in *in,
    struct proto_out *out)
{
	struct oracle_state *st = vstate;

	(void)vopts;
	if (st->scanned == 0)
		oracle_skip_space(in);
	/* The budget is for taking units; a last word is always said
	   (input() left a free piece, or it would have been full). */
	if (in->len > 0 && out->niov < out->maxiov)
		proto_put(out, oracle_unfinished, sizeof(oracle_unfinished) - 1);
	return EO_PROTO_CLOSE;
}

/* input() closes for one of two rules: the count, or a long question. */
static const char *
oracle_close_why(const void *vstate, const void *vopts)
{
	const struct oracle_state *st = vstate;
	const struct oracle_opts *o = vopts;

	if (o->max_questions != 0 && st->answered >= o->max_questions)
		return o->why_max;
	return o->why_long;
}

const struct protocol proto_oracle = {
	.name = "oracle",
	.state_size = sizeof(struct oracle_state),
	.state_version = 1,
	.opts_parse = oracle_opts_parse,
	.opts_free = oracle_opts_free,
	.unit_timeout = oracle_unit_timeout,
	.unit_timeout_name = "question_timeout",
	.init = NULL,
	.input = oracle_input,
	.eof = oracle_eof,
	.close_why = oracle_close_why,
	.opts_print = oracle_opts_print,
};
