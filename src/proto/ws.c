/*
 * The WebSocket echo session.  wslay's event API pulls input through a
 * receive callback and pushes frames through a send callback; here the
 * first reads from the slice ws_feed() was given and the second appends
 * to an output buffer the connection drains, so nothing blocks and
 * nothing touches a socket.  wslay answers pings and closes itself and
 * enforces masking (1002), UTF-8 text (1007) and the message size (1009).
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "http_buf.h"
#include "http_req.h"
#include "http_resp.h"
#include "ws.h"

/* Input is handed to wslay in slices this big, so the replies to one
   read (a flood of pings) are bounded before the mark is checked. */
#define WS_SLICE	4096

struct ws_session {
	wslay_event_context_ptr	 ctx;
	const unsigned char	*in;	/* the slice being fed */
	size_t			 inlen;
	struct http_buf		 out;	/* frames to send, from head */
	size_t			 head;
	size_t			 mark;
	int			 broken; /* wslay failed: close now */
	int			 sent_1002; /* our own close, not wslay's */
	int			 unbounded; /* send past the mark (ws_msg_cb) */
	uint64_t		 messages; /* data messages echoed */
	uint64_t		 fed;	/* bytes wslay took */
	uint64_t		 framed; /* of them, in whole frames */
	uint64_t		 frame;	/* the frame being read, all of it */
	int			 msg_open; /* a fragmented message is open */
};

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void
ws_accept_key(const char *key, size_t keylen, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int mdlen = 0;

	/* Out of memory: an accept no client takes, never a crash. */
	memset(md, 0, sizeof(md));
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 &&
	    EVP_DigestUpdate(c, key, keylen) == 1 &&
	    EVP_DigestUpdate(c, ws_guid, sizeof(ws_guid) - 1) == 1)
		EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* A Sec-WebSocket-Key is base64 of 16 bytes: 22 symbols and "==". */
static int
ws_key_ok(const struct http_reader *r, const struct http_header *k)
{
	unsigned char raw[32];
	const char *v = http_at(r, k->value);

	if (k->value.len != 24 || v[22] != '=' || v[23] != '=')
		return 0;
	return EVP_DecodeBlock(raw, (const unsigned char *)v, 24) == 18;
}

int
ws_handshake(const struct http_reader *r, struct http_buf *out)
{
	const struct http_header *key = http_find_header(r, "Sec-WebSocket-Key");
	const struct http_header *ver = http_find_header(r,
	    "Sec-WebSocket-Version");
	char accept[WS_ACCEPT_LEN + 1];

	if (r->req.method != HTTP_GET || r->req.minor < 1 ||
	    !http_header_has_token(r, "Upgrade", "websocket") ||
	    !http_header_has_token(r, "Connection", "upgrade") || key == NULL ||
	    !ws_key_ok(r, key)) {
		http_respond_error(400, "not a WebSocket handshake", out);
		return 400;
	}
	if (ver == NULL || ver->value.len != 2 ||
	    memcmp(http_at(r, ver->value), "13", 2) != 0) {
		http_buf_str(out, "HTTP/1.1 426 Upgrade Required\r\n"
		    "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n");
		return 426;
	}
	ws_accept_key(http_at(r, key->value), key->value.len, accept);
	http_buf_printf(out, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	return out->failed ? 500 : 0;
}

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct ws_session *s = user;
	size_t n = len < s->inlen ? len : s->inlen;

	(void)flags;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	memcpy(buf, s->in, n);
	s->in += n;
	s->inlen -= n;
	s->fed += n;
	return (ssize_t)n;
}

/* Frames go to the output buffer until it holds mark bytes; the rest
   stay queued in wslay until ws_output_done() makes room. */
static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct ws_session *s = user;
	size_t held = s->out.len - s->head;

	(void)flags;
	if (held >= s->mark && !s->unbounded) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	http_buf_add(&s->out, data, len);
	if (s->out.failed) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* Moves queued frames into the output buffer, up to the mark. */
static void
ws_flush(struct ws_session *s)
{
	if (!s->broken && wslay_event_want_write(s->ctx) &&
	    wslay_event_send(s->ctx) != 0)
		s->broken = 1;
}

/*
 * A whole message: a data message goes back as it came (a ping's pong
 * is wslay's), and is sent at once, before wslay reads the next frame.
 * wslay sends control frames before queued data and nothing after a
 * close, so a close read in the same slice (the peer's, or wslay's own
 * 1002, 1007, 1009) would otherwise cut off the echoes and pongs owed
 * for what came before it.  This may pass the mark by what one slice
 * of input holds, plus the one message wslay already holds in memory.
 */
static void
ws_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct wslay_event_msg m = { arg->opcode, arg->msg, arg->msg_length };
	struct ws_session *s = user;

	if (arg->opcode == WSLAY_CONNECTION_CLOSE)
		return;
	if (!wslay_is_ctrl_frame(arg->opcode)) {
		s->msg_open = 0;
		if (wslay_event_queue_msg(ctx, &m) != 0) {
			s->broken = 1;
			return;
		}
		s->messages++;
	}
	s->unbounded = 1;
	ws_flush(s);
	s->unbounded = 0;
}

/*
 * A frame begins: its size on the wire, so that ws_idle() can tell
 * whether wslay holds part of a frame.  A client frame is masked (4
 * key bytes) and its length in the shortest form (wslay refuses the
 * others), so the size follows from the payload's length.
 */
static void
ws_frame_start_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct ws_session *s = user;
	uint64_t n = arg->payload_length;

	(void)ctx;
	s->frame = 2 + 4 + (n < 126 ? 0u : n < 65536 ? 2u : 8u) + n;
	if (arg->opcode == WSLAY_TEXT_FRAME ||
	    arg->opcode == WSLAY_BINARY_FRAME)
		s->msg_open = 1;
}

static void
ws_frame_end_cb(wslay_event_context_ptr ctx, void *user)
{
	struct ws_session *s = user;

	(void)ctx;
	s->framed += s->frame;
	s->frame = 0;
}

struct ws_session *
ws_session_new(uint32_t max_message_size, size_t mark)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.on_frame_recv_start_callback = ws_frame_start_cb,
		.on_frame_recv_end_callback = ws_frame_end_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};
	struct ws_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->mark = mark != 0 ? mark : 1;
	if (wslay_event_context_server_init(&s->ctx, &cbs, s) != 0) {
		free(s);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(s->ctx, max_message_size);
	return s;
}

void
ws_session_free(struct ws_session *s)
{
	if (s == NULL)
		return;
	wslay_event_context_free(s->ctx);
	http_buf_free(&s->out);
	free(s);
}

int
ws_wants_input(const struct ws_session *s)
{
	return !s->broken && wslay_event_want_read(s->ctx) &&
	    s->out.len - s->head < s->mark &&
	    wslay_event_get_queued_msg_count(s->ctx) == 0;
}

/*
 * wslay_event_recv() failed.  Out of memory is the end.  Otherwise its
 * frame layer refused a frame (a fragmented control frame, one longer
 * than 125 bytes) and queued a close without a status code; RFC 6455
 * 7.4.1 says 1002, so that close is replaced by ours and nothing more is
 * sent (what was waiting is dropped, as after any close).
 */
static void
ws_recv_failed(struct ws_session *s)
{
	static const unsigned char close_1002[] = { 0x88, 0x02, 0x03, 0xea };

	if (s->out.failed) {
		s->broken = 1;
		return;
	}
	wslay_event_shutdown_read(s->ctx);
	wslay_event_shutdown_write(s->ctx);
	http_buf_add(&s->out, close_1002, sizeof(close_1002));
	s->sent_1002 = 1;
	if (s->out.failed)
		s->broken = 1;
}

size_t
ws_feed(struct ws_session *s, const void *data, size_t len)
{
	size_t taken = 0;

	while (taken < len && ws_wants_input(s)) {
		size_t n = len - taken < WS_SLICE ? len - taken : WS_SLICE;

		s->in = (const unsigned char *)data + taken;
		s->inlen = n;
		if (wslay_event_recv(s->ctx) != 0)
			ws_recv_failed(s);
		taken += n - s->inlen;
		s->inlen = 0;
		ws_flush(s);
	}
	/* After the peer's close, whatever follows is not read (RFC 6455
	   5.5.1): taken and dropped, so the connection can drain to EOF. */
	if (!s->broken && !wslay_event_want_read(s->ctx))
		taken = len;
	return taken;
}

const void *
ws_output(struct ws_session *s, size_t *len)
{
	ws_flush(s);
	*len = s->out.len - s->head;
	return *len != 0 ? s->out.p + s->head : NULL;
}

void
ws_output_done(struct ws_session *s, size_t n)
{
	s->head += n;
	/* Drained: an idle session keeps no output memory. */
	if (s->head >= s->out.len) {
		http_buf_free(&s->out);
		s->head = 0;
	}
	ws_flush(s);
}

int
ws_finished(const struct ws_session *s)
{
	return s->broken || (!wslay_event_want_read(s->ctx) &&
	    !wslay_event_want_write(s->ctx));
}

int
ws_idle(const struct ws_session *s)
{
	return !s->broken && s->fed == s->framed && !s->msg_open &&
	    wslay_event_want_read(s->ctx) &&
	    !wslay_event_get_close_sent(s->ctx) &&
	    !wslay_event_want_write(s->ctx) && s->out.len == s->head;
}

uint64_t
ws_messages(const struct ws_session *s)
{
	return s->messages;
}

int
ws_close_code(const struct ws_session *s)
{
	if (s->sent_1002)
		return 1002;
	return wslay_event_get_close_sent(s->ctx) ?
	    (int)wslay_event_get_status_code_sent(s->ctx) : 1006;
}

void
ws_going_away(struct ws_session *s)
{
	if (!s->broken && !wslay_event_get_close_sent(s->ctx) &&
	    wslay_event_queue_close(s->ctx, 1001, NULL, 0) != 0)
		s->broken = 1;
}
