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

#include "http.h"
#include "protocol.h"

/* A listener's options, and the host name its descriptions give. */
struct http_lopts {
	struct http_opts o;
	char		 host[256];
};

struct http_state {
	struct http_reader rd;
	struct http_buf	 out;		/* this call's responses */
	const char	*why;		/* the rule that closed, static */
};

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
}

static void
http_released(void *state)
{
	http_buf_free(&((struct http_state *)state)->out);
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
}

/* Answers the complete request; 0, or -1 when the connection must end. */
static int
http_answer(struct http_state *s, const struct http_lopts *lo,
    const struct proto_out *out)
{
	struct http_conn_info ci;
	struct http_controls ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.status = 200;
	http_info(lo, out->info, &ci);
	if (http_respond(&s->rd, &ci, &ctl, &s->out) == -1) {
		s->why = "error: out of memory";
		return -1;
	}
	http_reader_next(&s->rd);
	if (s->rd.done) {
		s->why = s->rd.opts->max_requests != 0 &&
		    s->rd.served >= s->rd.opts->max_requests ?
		    "max_requests" : "Connection: close";
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
	s->why = status == 413 ? "max_body_size" : status == 431 ?
	    "max_header_size" : "bad request";
}

/*
 * Serves requests from in while out has room, one at a time: a request
 * is answered before the next is read, so pipelined ones are answered
 * in order.  The reader takes the bytes of an unfinished request into
 * its own memory: out->partial tells the connection (request_timeout).
 */
static enum proto_verdict
http_input(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	struct http_state *s = state;
	const struct http_lopts *lo = opts;
	enum proto_verdict v = EO_PROTO_OK;
	size_t used;

	for (;;) {
		if (s->out.len >= out->room) {
			out->full = 1;
			break;
		}
		switch (http_reader_feed(&s->rd, (const char *)in->data,
		    in->len, &used)) {
		case HTTP_RD_MORE:
			proto_take(in, used);
			goto done;
		case HTTP_RD_CONTINUE:
			proto_take(in, used);
			http_buf_str(&s->out, http_continue_line);
			continue;
		case HTTP_RD_REQUEST:
		case HTTP_RD_UPGRADE:
			proto_take(in, used);
			out->units++;
			if (http_answer(s, lo, out) == -1) {
				v = EO_PROTO_CLOSE;
				goto done;
			}
			continue;
		case HTTP_RD_ERROR:
			http_refuse(s, s->rd.status);
			v = EO_PROTO_CLOSE;
			goto done;
		case HTTP_RD_CLOSED:
			v = EO_PROTO_CLOSE;
			goto done;
		}
	}
done:
	out->partial = s->rd.tables != NULL;
	if (s->out.failed) {
		http_buf_free(&s->out);
		s->why = "error: out of memory";
		return EO_PROTO_CLOSE;
	}
	if (s->out.len > 0)
		proto_put(out, s->out.p, s->out.len);
	return v;
}

/* EOF: a request cut short gets no answer (nothing to describe). */
static enum proto_verdict
http_eof(void *state, const void *opts, struct proto_in *in,
    struct proto_out *out)
{
	(void)state;
	(void)opts;
	(void)out;
	proto_take(in, in->len);
	return EO_PROTO_CLOSE;
}

/* request_timeout ran out in the middle of a request: 408. */
static enum proto_verdict
http_expired(void *state, const void *opts, struct proto_out *out)
{
	struct http_state *s = state;

	(void)opts;
	http_respond_error(408, "request not complete within "
	    "request_timeout", &s->out);
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
	.state_version = 1,
	.opts_parse = http_opts_parse_any,
	.opts_free = http_opts_free_any,
	.unit_timeout = http_unit_timeout,
	.unit_timeout_name = "request_timeout",
	.init = http_init,
	.fini = http_fini,
	.released = http_released,
	.expired = http_expired,
	.wants_info = 1,
	.no_carry = 1,
	.input = http_input,
	.eof = http_eof,
	.close_why = http_close_why,
	.opts_print = http_opts_print_any,
};
