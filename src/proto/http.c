/*
 * protocol = "http": HTTP/1.1 echo.  Each request gets 200 and a
 * description of itself (http_resp.c); the reading is http_req.c's, the
 * options http_opts.c's.  This file is the protocol entry: it feeds the
 * reader from the connection's input, one request at a time and in
 * order (pipelining), and hands back the responses as one piece.
 *
 * The responses are built in the state's buffer, which the piece points
 * into until the connection has sent or copied it (released()): an idle
 * connection holds no buffer, only the reader (http.h, "Memory").
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "http.h"
#include "protocol.h"
#include "ws.h"

/* A listener's options, and the host name its descriptions give. */
struct http_lopts {
	struct http_opts o;
	char		 host[256];
};

struct http_state {
	struct http_reader rd;
	struct http_buf	 out;		/* this call's responses */
	const char	*why;		/* the rule that closed, static */
	struct http_controls ctl;	/* the ready request's */
	int		 have_ctl;	/* ctl read; its delay asked for */
	int		 closing;	/* close once the body is sent */
	uint64_t	 left;		/* body bytes (echo_size) owed */
	size_t		 fed;		/* of the input, bytes of the request
					   under way the reader has taken:
					   left there until it is answered */
	int		 due_set;	/* due holds its delay's end */
	uint32_t	 due;		/* mono_ms() when it is answered */
	int		 told;		/* its 100 Continue was sent (before
					   a restart) */
	struct ws_session *ws;		/* after an upgrade; NULL: HTTP */
	size_t		 ws_put;	/* of its output, what the last call
					   put (done once released) */
	uint64_t	 ws_counted;	/* of its messages, counted */
	int		 ws_closed;	/* its close counted */
	struct stats_slot *st;		/* the listener's, this worker's */
};

/* A response of status counted under the request's method. */
static void
http_count(struct http_state *s, int status)
{
	/* The method is known once the URL has begun: a request line
	   refused before is "other". */
	unsigned m = s->rd.req.url.len == 0 ? EO_NHTTP_METHODS - 1 :
	    stats_http_method(http_method_str(
	    (enum http_method)s->rd.parser.method));
	int k = status / 100 - 1;

	if (s->st != NULL && k >= 0 && k < EO_NHTTP_CLASSES)
		stats_bump(&s->st->http[m][k], 1);
}

/* The session's messages since the last count, and its close once. */
static void
http_ws_count(struct http_state *s, int over)
{
	uint64_t n = ws_messages(s->ws);

	if (s->st == NULL)
		return;
	stats_bump(&s->st->ws_messages, n - s->ws_counted);
	s->ws_counted = n;
	if (over && !s->ws_closed) {
		stats_bump(&s->st->ws_closes[stats_ws_code(
		    ws_close_code(s->ws))], 1);
		s->ws_closed = 1;
	}
}

/* WebSocket output above this waits in wslay, and input with it. */
#define HTTP_WS_MARK	(64 * 1024)

/*
 * A sized body is the pattern of http_body_fill(), whose byte i of a
 * body with L bytes left is pat[(L - i) % 65].  It is sent from one
 * static copy, a piece of it at a time: no memory per connection.
 */
#define HTTP_PAT	65
#define HTTP_BODY_PIECE	(1008 * HTTP_PAT)
static char http_pattern[HTTP_BODY_PIECE + HTTP_PAT];

/* The byte at k is pat[-k mod 65] (the array's size is a multiple of
   65): a body with L bytes left starts at (65 - L % 65) % 65. */
__attribute__((constructor)) static void
http_pattern_init(void)
{
	uint64_t left = sizeof(http_pattern);

	http_body_fill(&left, http_pattern, sizeof(http_pattern));
}

/* Pieces of the body owed while out has room; whether it is all sent. */
static int
http_body(struct http_state *s, struct proto_out *out)
{
	while (s->left > 0 && proto_room(out, 1)) {
		size_t n = s->left < HTTP_BODY_PIECE ? (size_t)s->left :
		    HTTP_BODY_PIECE;

		proto_put(out, http_pattern + (HTTP_PAT - s->left % HTTP_PAT) %
		    HTTP_PAT, n);
		s->left -= n;
	}
	return s->left == 0;
}

static int
http_opts_parse_any(const config_setting_t *group, void **opts,
    struct cfg_diag *d)
{
	struct http_lopts *lo;

	if ((lo = calloc(1, sizeof(*lo))) == NULL)
		return -1;
	if (http_opts_parse(group, &lo->o, d) == -1) {
		free(lo);
		return -1;
	}
	/* Read once per configuration: a description names the host as
	   the daemon knew it when the listener was set up. */
	if (gethostname(lo->host, sizeof(lo->host) - 1) == -1)
		strcpy(lo->host, "localhost");
	*opts = lo;
	return 0;
}

static void
http_opts_free_any(void *opts)
{
	free(opts);
}

static void
http_opts_print_any(const void *opts, FILE *f)
{
	http_opts_print(&((const struct http_lopts *)opts)->o, f);
}

static uint32_t
http_unit_timeout(const void *opts)
{
	return ((const struct http_lopts *)opts)->o.request_timeout;
}

static void
http_init(void *state, const void *opts)
{
	struct http_state *s = state;

	http_reader_init(&s->rd, &((const struct http_lopts *)opts)->o);
}

static void
http_fini(void *state)
{
	struct http_state *s = state;

	http_reader_free(&s->rd);
	http_buf_free(&s->out);
	ws_session_free(s->ws);
}

static void
http_released(void *state)
{
	struct http_state *s = state;

	http_buf_free(&s->out);
	if (s->ws != NULL && s->ws_put > 0) {
		ws_output_done(s->ws, s->ws_put);
		s->ws_put = 0;
	}
}

/*
 * The session's output, one piece (it stays put until released()), and
 * whether the session is over: then everything it had to say is in out.
 */
static int
http_ws_out(struct http_state *s, struct proto_out *out)
{
	int over = ws_finished(s->ws);
	const void *p;
	size_t len;

	if (out->niov < out->maxiov && (out->len < out->room || over) &&
	    (p = ws_output(s->ws, &len)) != NULL) {
		proto_put(out, p, len);
		s->ws_put = len;
	} else if (!over)
		out->full = out->len >= out->room;
	http_ws_count(s, over);
	if (over)
		s->why = "websocket closed";
	return over;
}

/*
 * A WebSocket connection: messages in, echoes out.  Input the session
 * cannot take now (its output is above the mark) waits, full.
 */
static enum proto_verdict
http_ws_input(struct http_state *s, struct proto_in *in,
    struct proto_out *out)
{
	/* The connection's queue is full: the client is not reading its
	   echoes, so no more is read from it (echo's backpressure). */
	if (out->len >= out->room && in->len > 0) {
		out->full = 1;
		return EO_PROTO_OK;
	}
	proto_take(in, ws_feed(s->ws, in->data, in->len));
	if (http_ws_out(s, out))
		return EO_PROTO_CLOSE;
	if (in->len > 0)
		out->full = 1;
	return EO_PROTO_OK;
}

/* The upgrade asked for: 101 and a session, or the refusal and a close. */
static int
http_upgrade(struct http_state *s, const struct http_lopts *lo)
{
	int st = ws_handshake(&s->rd, &s->out);

	http_count(s, st != 0 ? st : 101);
	if (st != 0) {
		s->why = "bad request (WebSocket handshake)";
		return -1;
	}
	s->ws = ws_session_new(lo->o.max_message_size, HTTP_WS_MARK);
	http_reader_next(&s->rd);
	http_reader_free(&s->rd);
	if (s->ws == NULL) {
		s->why = "error: out of memory";
		return -1;
	}
	return 1;
}

/* The connection's facts in the words the description uses. */
static void
http_info(const struct http_lopts *lo, const struct proto_conn_info *pi,
    struct http_conn_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->server_host = lo->host;
	if (pi == NULL)
		return;
	ci->listener = pi->listener;
	ci->client_addr = pi->client_addr;
	ci->client_port = pi->client_port;
	ci->proxy_addr = pi->proxy_addr;
	ci->proxy_port = pi->proxy_port;
	ci->tls = pi->tls;
	ci->tls_version = pi->tls_version;
	ci->tls_cipher = pi->tls_cipher;
	ci->tls_sni = pi->tls_sni;
	ci->tls_alpn = pi->tls_alpn;
	ci->cert_subject = pi->cert_subject;
	ci->cert_issuer = pi->cert_issuer;
	ci->cert_serial = pi->cert_serial;
	ci->cert_not_after = pi->cert_not_after;
}

/* The words of a close decided with a response. */
static const char *
http_close_rule(const struct http_reader *rd)
{
	return rd->opts->max_requests != 0 &&
	    rd->served >= rd->opts->max_requests ?
	    "max_requests" : "Connection: close";
}

/*
 * A timer of the connection's for the rest of the request's delay: the
 * loop never blocks, and input waits for the answer.  The end is kept
 * as a time of the system's monotonic clock, the same in the process a
 * restart starts: a carried request waits only for what was left.
 * Whether there is still some left.
 */
static int
http_delay(struct http_state *s, struct proto_out *out)
{
	uint32_t now = mono_ms();
	int32_t left;

	if (!s->due_set) {
		s->due = now + s->ctl.delay_ms;
		s->due_set = 1;
	}
	left = (int32_t)(s->due - now);
	if (left <= 0)
		return 0;
	out->pause_ms = (uint32_t)left;
	return 1;
}

/* The request under way is answered: its bytes are done with. */
static void
http_take(struct http_state *s, struct proto_in *in)
{
	proto_take(in, s->fed);
	s->fed = 0;
	s->told = 0;
}

/*
 * Answers the ready request: 1 when it must wait for its delay first
 * (out->pause_ms set; the next call answers), 0 when answered, -1 when
 * the connection ends once the response (and its body) is sent.
 */
static int
http_answer(struct http_state *s, const struct http_lopts *lo,
    struct proto_out *out)
{
	struct http_conn_info ci;
	char why[160];
	int st;

	if (!s->have_ctl) {
		s->have_ctl = 1;
		if ((st = http_controls_get(&s->rd, &s->ctl, why,
		    sizeof(why))) != 0) {
			http_respond_error(st, why, &s->out);
			http_count(s, st);
			s->why = "bad request (controls)";
			return -1;
		}
		if (s->ctl.delay_ms > 0 && http_delay(s, out))
			return 1;
	}
	s->have_ctl = 0;
	s->due_set = 0;
	/* Only a description names the connection's facts. */
	http_info(lo, s->ctl.sized || s->ctl.status == 204 ||
	    s->ctl.status == 304 ? NULL : proto_info(out), &ci);
	if (http_respond(&s->rd, &ci, &s->ctl, &s->out) == -1) {
		s->why = "error: out of memory";
		return -1;
	}
	http_count(s, s->ctl.status);
	if (s->ctl.sized && s->rd.req.method != HTTP_HEAD)
		s->left = s->ctl.size;
	http_reader_next(&s->rd);
	if (s->rd.done) {
		s->why = http_close_rule(&s->rd);
		return -1;
	}
	return 0;
}

/* A request the reader refused: its status (400, 413, 431...), then the
   close, as nginx does. */
static void
http_refuse(struct http_state *s, int status)
{
	http_respond_error(status, http_reason(status), &s->out);
	http_count(s, status);
	s->why = status == 413 ? "max_body_size" : status == 431 ?
	    "max_header_size" : "bad request";
}

/*
 * One step of the reader on in: 0 to go on, 1 to stop for now, -1 to
 * close once the responses are sent.  The bytes of a request stay in
 * in (the connection's held input) until it is answered: a restart
 * hands them to the new process, whose reader takes them again.
 */
static int
http_step(struct http_state *s, const struct http_lopts *lo,
    struct proto_in *in, struct proto_out *out)
{
	size_t used;
	int a;

	switch (http_reader_feed(&s->rd, (const char *)in->data + s->fed,
	    in->len - s->fed, &used)) {
	case HTTP_RD_MORE:
		s->fed += used;
		if (s->rd.tables == NULL)	/* only blank lines */
			http_take(s, in);
		return 1;
	case HTTP_RD_CONTINUE:
		s->fed += used;
		if (!s->told)
			http_buf_str(&s->out, http_continue_line);
		return 0;
	case HTTP_RD_UPGRADE:
		s->fed += used;
		http_take(s, in);
		out->units++;
		return http_upgrade(s, lo);
	case HTTP_RD_REQUEST:
		s->fed += used;
		if ((a = http_answer(s, lo, out)) == 1)
			return 1;
		http_take(s, in);
		out->units++;
		if (a == -1)
			s->closing = 1;
		return s->left > 0 ? 1 : -a;
	case HTTP_RD_ERROR:
		http_refuse(s, s->rd.status);
		return -1;
	case HTTP_RD_CLOSED:
		break;
	}
	return -1;
}

/*
 * Serves requests from in while out has room, one at a time: a request
 * is answered before the next is read, so pipelined ones are answered
 * in order.  The reader takes the bytes of an unfinished request into
 * its own memory: out->partial tells the connection (request_timeout).
 * The responses are one piece of s->out, put last; a sized body's
 * pieces follow it, and end the call.
 */
static enum proto_verdict
http_input(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	struct http_state *s = state;
	int r = 0;

	s->st = out->st;
	if (s->ws != NULL)
		return http_ws_input(s, in, out);
	if (s->left > 0 && !http_body(s, out))
		return EO_PROTO_OK;	/* full: the body goes first */
	if (s->closing && s->left == 0)
		return EO_PROTO_CLOSE;
	while (r == 0) {
		if (out->len + s->out.len >= out->room) {
			out->full = 1;
			break;
		}
		r = http_step(s, opts, in, out);
	}
	out->partial = s->rd.tables != NULL && !s->have_ctl;
	if (s->out.failed) {
		s->why = "error: out of memory";
		return EO_PROTO_CLOSE;
	}
	if (s->out.len > 0)
		proto_put(out, s->out.p, s->out.len);
	if (s->ws != NULL)	/* 101 sent: what follows is WebSocket's */
		return http_ws_input(s, in, out);
	if (s->left > 0 && !http_body(s, out))
		return EO_PROTO_OK;
	/* Pipelined requests after a body: called again at once (full
	   with input left), as the socket takes what went before. */
	if (r == 1 && in->len > 0 && out->pause_ms == 0 && !s->closing &&
	    s->rd.tables == NULL)
		out->full = 1;
	return r == -1 || (s->closing && s->left == 0) ? EO_PROTO_CLOSE :
	    EO_PROTO_OK;
}

/* The rest of a sized body, as the socket takes it (chargen's way). */
static enum proto_verdict
http_produce(void *state, const void *opts, struct proto_out *out)
{
	struct http_state *s = state;

	(void)opts;
	s->st = out->st;
	if (s->ws != NULL)
		return http_ws_out(s, out) ? EO_PROTO_CLOSE : EO_PROTO_OK;
	if (s->left == 0 || !http_body(s, out))
		return EO_PROTO_OK;
	return s->closing ? EO_PROTO_CLOSE : EO_PROTO_OK;
}

/* The daemon goes away: a WebSocket says so (1001), counted then. */
static enum proto_verdict
http_going_away(void *state, const void *opts, struct proto_out *out)
{
	struct http_state *s = state;

	(void)opts;
	if (s->ws == NULL)
		return EO_PROTO_OK;
	s->st = out->st;
	ws_going_away(s->ws);
	(void)http_ws_out(s, out);
	if (!s->ws_closed && s->st != NULL) {
		stats_bump(&s->st->ws_closes[stats_ws_code(1001)], 1);
		s->ws_closed = 1;
	}
	return EO_PROTO_OK;
}

/*
 * Carried across a restart at any point of a request: its bytes are
 * still the connection's input (http_step()), a delay's end and a sized
 * body's count are numbers.  A WebSocket session only between messages
 * (ws_idle()): a new session is the same then.
 */
static int
http_carriable(const void *state)
{
	const struct http_state *s = state;

	if (s->ws != NULL)
		return ws_idle(s->ws) && s->ws_put == 0 && !s->ws_closed;
	return 1;
}

/*
 * The old process's bytes: the numbers kept, the reader made anew (it
 * reads the request under way again from the input); a WebSocket
 * session (its pointer is the old process's) as a new one.  Out of
 * memory for it, the connection closes at its next input.
 */
static void
http_carried(void *state, const void *opts)
{
	const struct http_lopts *lo = opts;
	struct http_state *s = state;
	struct http_state old = *s;

	memset(s, 0, sizeof(*s));
	http_init(s, opts);
	/* A request read whole was counted: it is counted again. */
	s->rd.served = old.rd.served - (old.rd.ready ? 1u : 0u);
	s->rd.done = old.rd.done;
	s->rd.status = old.rd.status;
	s->told = old.rd.tables != NULL && old.rd.continued;
	s->due_set = old.due_set;
	s->due = old.due;
	s->closing = old.closing;
	s->left = old.left;
	if (old.ws == NULL)
		return;
	s->rd.done = 1;		/* no more HTTP on this connection */
	s->ws = ws_session_new(lo->o.max_message_size, HTTP_WS_MARK);
	if (s->ws == NULL)
		s->why = "error: out of memory";
}

/* request_timeout ran out in the middle of a request: 408. */
static enum proto_verdict
http_expired(void *state, const void *opts, struct proto_out *out)
{
	struct http_state *s = state;

	(void)opts;
	http_respond_error(408, "request not complete within "
	    "request_timeout", &s->out);
	s->st = out->st;
	http_count(s, 408);
	if (!s->out.failed)
		proto_put(out, s->out.p, s->out.len);
	return EO_PROTO_CLOSE;
}

static const char *
http_close_why(const void *state, const void *opts)
{
	(void)opts;
	return ((const struct http_state *)state)->why;
}

const struct protocol proto_http = {
	.name = "http",
	.state_size = sizeof(struct http_state),
	.state_version = 3,
	.opts_parse = http_opts_parse_any,
	.opts_free = http_opts_free_any,
	.unit_timeout = http_unit_timeout,
	.unit_timeout_name = "request_timeout",
	.init = http_init,
	.fini = http_fini,
	.released = http_released,
	.expired = http_expired,
	.going_away = http_going_away,
	.wants_info = 1,
	.carriable = http_carriable,
	.carried = http_carried,
	.alpn = (const unsigned char *)"\x08http/1.1",
	.input = http_input,
	.produce = http_produce,
	/* EOF: a request cut short gets no answer (nothing to describe). */
	.eof = proto_drop_close,
	.close_why = http_close_why,
	.opts_print = http_opts_print_any,
};
