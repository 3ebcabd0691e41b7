/*
 * The oracle over real sockets: every rule of DESIGN.md, as a client
 * sees it, including how the connection ends (EOF, never a reset).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "check_main.h"

static int port, port_classic, port_many;
static struct eod *d;

static void
setup(void)
{
	port = eo_port();
	port_classic = eo_port();
	port_many = eo_port();
	d = eod_start("listeners = (\n"
	    " { name = \"oracle\"; protocol = \"oracle\"; port = %d;"
	    "   bind = [\"127.0.0.1\", \"::1\"];"
	    "   oracle = { max_questions = 3; max_question_length = 32; }; },\n"
	    " { name = \"classic\"; protocol = \"oracle\"; port = %d;"
	    "   bind = \"127.0.0.1\";"
	    "   oracle = { reply_end = \"\"; max_questions = 0;"
	    "              answers = [\"It is certain.\", \"Ask again.\"]; }; },\n"
	    " { name = \"many\"; protocol = \"oracle\"; port = %d;"
	    "   bind = \"127.0.0.1\"; oracle = { max_questions = 0; }; }\n"
	    ");\n", port, port_classic, port_many);
}

static void
teardown(void)
{
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

static const char *const answers[] = { "Yes.", "Very likely.", "Maybe.",
	"Not likely.", "No." };

/* Whether line (n bytes) is "question ANSWER\r\n". */
static int
is_reply(const char *line, size_t n, const char *question)
{
	size_t qlen = strlen(question);
	int i;

	if (n <= qlen + 3 || memcmp(line, question, qlen) != 0 ||
	    line[qlen] != ' ' || memcmp(line + n - 2, "\r\n", 2) != 0)
		return 0;
	for (i = 0; i < 5; i++)
		if (strlen(answers[i]) == n - qlen - 3 &&
		    memcmp(line + qlen + 1, answers[i], n - qlen - 3) == 0)
			return 1;
	return 0;
}

/* Reads one CR LF line; checks it is "question ANSWER\r\n". */
static void
expect_answer(int fd, const char *question)
{
	char line[256];
	size_t n = 0;

	while (n < sizeof(line) - 1) {
		ck_assert_uint_eq(recv_n(fd, line + n, 1, eo_ms(5000)), 1);
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	ck_assert_msg(is_reply(line, n, question), "for \"%s\" got \"%s\"",
	    question, line);
}

static void
expect_text(int fd, const char *text)
{
	char buf[256];
	size_t len = strlen(text);

	ck_assert_uint_eq(recv_n(fd, buf, len, eo_ms(5000)), len);
	buf[len] = '\0';
	ck_assert_str_eq(buf, text);
}

START_TEST(test_one)
{
	int fd = tcp_open("127.0.0.1", port);

	ck_assert_int_eq(send_all(fd, "Will I be happy tomorrow?", 25), 0);
	expect_answer(fd, "Will I be happy tomorrow?");
	ck_assert(still_open(fd, 200));
	close(fd);
	fd = tcp_open("::1", port);
	ck_assert_int_eq(send_all(fd, "And over IPv6?\r\n", 16), 0);
	expect_answer(fd, "And over IPv6?");
	close(fd);
}
END_TEST

/* Several in one write, then one spread over writes, as telnet sends. */
START_TEST(test_framing)
{
	int fd = tcp_open("127.0.0.1", port);

	ck_assert_int_eq(send_all(fd, "A?\r\nB?C?", 8), 0);
	expect_answer(fd, "A?");
	expect_answer(fd, "B?");
	expect_answer(fd, "C?");
	/* max_questions = 3: replies flushed, then EOF. */
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);

	fd = tcp_open("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, "  Is ", 5), 0);
	usleep(100000);
	ck_assert_int_eq(send_all(fd, "this one", 8), 0);
	usleep(100000);
	ck_assert(still_open(fd, 100));
	ck_assert_int_eq(send_all(fd, " split?\r\n", 9), 0);
	expect_answer(fd, "Is this one split?");
	close(fd);
}
END_TEST

START_TEST(test_nul)
{
	int fd = tcp_open("127.0.0.1", port);
	char buf[64];

	ck_assert_int_eq(send_all(fd, "a\0b?", 4), 0);
	ck_assert_uint_eq(recv_n(fd, buf, 5, eo_ms(5000)), 5);
	ck_assert_int_eq(memcmp(buf, "a\0b? ", 5), 0);
	close(fd);
}
END_TEST

/* Past max_questions the client keeps talking: it still gets every
   reply owed, then EOF, not a reset (the lingering close). */
START_TEST(test_max_questions_linger)
{
	int fd = tcp_open("127.0.0.1", port), i;
	char more[4096];

	memset(more, 'x', sizeof(more));
	ck_assert_int_eq(send_all(fd, "1?2?3?4?5?", 10), 0);
	for (i = 0; i < 20; i++)
		send_all(fd, more, sizeof(more));
	expect_answer(fd, "1?");
	expect_answer(fd, "2?");
	expect_answer(fd, "3?");
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
}
END_TEST

START_TEST(test_too_long)
{
	int fd = tcp_open("::1", port);

	ck_assert_int_eq(send_all(fd, "Short?", 6), 0);
	ck_assert_int_eq(send_all(fd, "This question is much too long to"
	    " be answered?", 46), 0);
	expect_answer(fd, "Short?");
	expect_text(fd, "error: question longer than 32 bytes\r\n");
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
	/* Without any '?' at all: the same, as soon as it is too long. */
	fd = tcp_open("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, "0123456789012345678901234567890123",
	    34), 0);
	expect_text(fd, "error: question longer than 32 bytes\r\n");
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
}
END_TEST

/* Half-close after an unfinished question: answers, then the rule. */
START_TEST(test_eof_unfinished)
{
	int fd = tcp_open("127.0.0.1", port);

	ck_assert_int_eq(send_all(fd, "Done?\r\nAnd then", 15), 0);
	shutdown(fd, SHUT_WR);
	expect_answer(fd, "Done?");
	expect_text(fd, "error: unfinished question: questions end with "
	    "'?'\r\n");
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
	/* Only whitespace left: no complaint, just EOF. */
	fd = tcp_open("127.0.0.1", port);
	ck_assert_int_eq(send_all(fd, "Done?\r\n", 7), 0);
	shutdown(fd, SHUT_WR);
	expect_answer(fd, "Done?");
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
}
END_TEST

/*
 * A classic sphinx client: sends a bare question, reads until the reply
 * ends with the answer's final '.', asks the next.  It would wait for
 * ever after a CR LF; with reply_end = "" each reply ends at the '.'.
 */
START_TEST(test_classic_client)
{
	static const char *const qs[] = { "Is the oracle wise?",
	    "Shall we dance?", "Is 2+2 four?" };
	int fd = tcp_open("127.0.0.1", port_classic);
	size_t i;

	for (i = 0; i < 3; i++) {
		char reply[256];
		size_t n = 0, q = strlen(qs[i]);

		ck_assert_int_eq(send_all(fd, qs[i], q), 0);
		while (n == 0 || reply[n - 1] != '.') {
			ck_assert_uint_lt(n, sizeof(reply) - 1);
			ck_assert_uint_eq(recv_n(fd, reply + n, 1, eo_ms(5000)),
			    1);
			n++;
		}
		reply[n] = '\0';
		ck_assert_int_eq(memcmp(reply, qs[i], q), 0);
		ck_assert_msg(strcmp(reply + q, " It is certain.") == 0 ||
		    strcmp(reply + q, " Ask again.") == 0, "got %s", reply);
	}
	/* Nothing after the '.': the next byte would be the next reply. */
	ck_assert(still_open(fd, 200));
	close(fd);
}
END_TEST

START_TEST(test_half_close_many)
{
	int fd = tcp_open("127.0.0.1", port_classic), eof;
	char buf[8192];
	size_t n, i, count = 0;

	for (i = 0; i < 200; i++)
		ck_assert_int_eq(send_all(fd, "Q?", 2), 0);
	shutdown(fd, SHUT_WR);
	n = recv_all(fd, buf, sizeof(buf), eo_ms(5000), &eof);
	ck_assert_int_eq(eof, 1);
	for (i = 0; i + 1 < n; i++)
		if (buf[i] == 'Q' && buf[i + 1] == '?')
			count++;
	ck_assert_uint_eq(count, 200);
	close(fd);
}
END_TEST

/* Numbered questions of a given width, "q000000xx..x?" on: the replies
   say whether each came back, in order. */
#define NQ_WIDTH_MAX	128

struct numbered {
	char		buf[8192];
	size_t		have;
	size_t		width;		/* of each question */
	unsigned	next;		/* the next reply expected */
};

static void
numbered_question(char *q, size_t width, unsigned i)
{
	int n = snprintf(q, width, "q%06u", i);

	memset(q + n, 'x', width - 1 - (size_t)n);
	q[width - 1] = '?';
	q[width] = '\0';
}

/* Checks every whole line held; keeps a partial one for later. */
static void
numbered_check(struct numbered *r)
{
	char q[NQ_WIDTH_MAX + 1], *nl;

	while ((nl = memchr(r->buf, '\n', r->have)) != NULL) {
		size_t len = (size_t)(nl - r->buf) + 1;

		numbered_question(q, r->width, r->next);
		ck_assert_msg(is_reply(r->buf, len, q), "reply %u: \"%.*s\"",
		    r->next, (int)len, r->buf);
		memmove(r->buf, nl + 1, r->have - len);
		r->have -= len;
		r->next++;
	}
	ck_assert_uint_lt(r->have, sizeof(r->buf));
}

/* Reads what fd has (waiting up to ms); 0 on EOF or timeout. */
static size_t
numbered_read(struct numbered *r, int fd, int ms)
{
	size_t n = recv_some(fd, r->buf + r->have, sizeof(r->buf) - r->have,
	    ms);

	r->have += n;
	numbered_check(r);
	return n;
}

/* n questions of r's width, back to back. */
static char *
numbered_questions(const struct numbered *r, unsigned n)
{
	char *qs = malloc((size_t)n * r->width + 1);
	unsigned i;

	ck_assert_uint_le(r->width, NQ_WIDTH_MAX);
	for (i = 0; i < n; i++)
		numbered_question(qs + (size_t)i * r->width, r->width, i);
	return qs;
}

/*
 * One read holding more questions than one reply batch holds (EO_IOV,
 * 1024 pieces, two per answer): every one answered, in order, though
 * the socket takes each batch at once and no write callback comes.
 */
START_TEST(test_more_than_one_batch)
{
	static struct numbered r = { .width = 8 };
	unsigned n = 2000;
	char *qs = numbered_questions(&r, n);
	int fd = tcp_open("127.0.0.1", port_many);

	/* 16,000 bytes: one segment on loopback, one read of the daemon. */
	ck_assert_int_eq(send_all(fd, qs, (size_t)n * r.width), 0);
	while (r.next < n)
		ck_assert_msg(numbered_read(&r, fd, eo_ms(5000)) > 0,
		    "%u replies of %u", r.next, n);
	ck_assert_uint_eq(r.have, 0);
	ck_assert(still_open(fd, 200));
	close(fd);
	free(qs);
}
END_TEST

/* Sends what the socket takes now; the bytes sent. */
static size_t
send_some(int fd, const char *p, size_t len)
{
	ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n == -1)
		ck_assert_msg(errno == EAGAIN, "send: %s", strerror(errno));
	return n > 0 ? (size_t)n : 0;
}

/* The third figure of a /proc/sys/net/ipv4/tcp_[rw]mem file; 0 if none. */
static size_t
tcp_mem_max(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long lo, def, max;
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "%lu %lu %lu", &lo, &def, &max);
	fclose(f);
	return n == 3 ? max : 0;
}

/*
 * A client with a small receive buffer sends thousands of questions
 * without reading, until nothing more is taken: the daemon's sendmsg
 * calls are cut anywhere in their many pieces and the rest queued.  Then
 * it reads everything (sending the rest meanwhile): every answer whole,
 * none twice, in order, then EOF.
 */
START_TEST(test_partial_sendmsg)
{
	static struct numbered r = { .width = 100 };
	/* More than the daemon's socket buffers can ever absorb (both may
	   grow to the kernel's maxima: 32 MiB and 4 MiB on some machines,
	   where 6 MB were once all taken), plus its queue and a margin. */
	size_t room = tcp_mem_max("/proc/sys/net/ipv4/tcp_rmem") +
	    tcp_mem_max("/proc/sys/net/ipv4/tcp_wmem") + 4000000;
	unsigned n = (unsigned)((room > 6000000 ? room : 6000000) / r.width);
	size_t len = (size_t)n * r.width, off = 0;
	char *qs = numbered_questions(&r, n);
	int fd = tcp_open_rcvbuf("127.0.0.1", port_many, 4096);
	int sndbuf = 16384, shut = 0;
	struct pollfd p = { fd, POLLOUT, 0 };

	/* Our own small send buffer: what we send waits in the daemon. */
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    sizeof(sndbuf)), 0);
	while (off < len && poll(&p, 1, eo_ms(500)) == 1)
		off += send_some(fd, qs + off, len - off);
	/* Held back: the daemon's socket and queue were full meanwhile. */
	ck_assert_msg(off < len, "all %zu bytes taken at once: the daemon was"
	    " never held back", len);
	while (r.next < n) {
		if (off < len)
			off += send_some(fd, qs + off, len - off);
		if (off == len && !shut) {
			ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
			shut = 1;
		}
		ck_assert_msg(numbered_read(&r, fd, eo_ms(10000)) > 0,
		    "%u replies of %u, %zu bytes sent", r.next, n, off);
	}
	ck_assert_uint_eq(r.have, 0);
	ck_assert_int_eq(wait_eof(fd, eo_ms(5000)), 1);
	close(fd);
	free(qs);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("oracle");
	TCase *tc = tcase_create("oracle");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, eo_ms(60));
	tcase_add_test(tc, test_one);
	tcase_add_test(tc, test_framing);
	tcase_add_test(tc, test_nul);
	tcase_add_test(tc, test_max_questions_linger);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_eof_unfinished);
	tcase_add_test(tc, test_classic_client);
	tcase_add_test(tc, test_half_close_many);
	tcase_add_test(tc, test_more_than_one_batch);
	tcase_add_test(tc, test_partial_sendmsg);
	suite_add_tcase(s, tc);
	return check_run(s);
}
