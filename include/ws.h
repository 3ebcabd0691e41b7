/*
 * WebSocket echo (RFC 6455) on wslay, which does no I/O: the connection
 * feeds the bytes it read and sends the bytes it is given.
 *
 * How a connection drives a session (phase B plumbing):
 *
 *   on HTTP_RD_UPGRADE  ws_handshake(&reader, &out): 0, send out (101)
 *                       and s = ws_session_new(max_message_size, mark);
 *                       otherwise send out (an error) and close
 *   per input           n = ws_feed(s, data, len); drain n bytes; stop
 *                       reading while !ws_wants_input(s) (backpressure:
 *                       output above mark, or the peer's close came)
 *   per output room     p = ws_output(s, &len); send; ws_output_done(s, n);
 *                       resume reading when ws_wants_input(s)
 *   after either        ws_finished(s): send what ws_output() still has,
 *                       then close the TCP connection
 *   at close            ws_session_free(s)
 *
 * Every text and binary message is echoed whole, as received; fragments
 * are reassembled up to max_message_size (beyond: close 1009); a ping
 * gets its pong; a close is answered with a close; text that is not
 * UTF-8 closes with 1007 and an unmasked frame with 1002.
 */
#ifndef EO_WS_H
#define EO_WS_H

#include <stddef.h>
#include <stdint.h>

#include "http-t.h"

#define WS_ACCEPT_LEN	28	/* base64 of a SHA-1 */

struct ws_session;

/* Sec-WebSocket-Accept for key (RFC 6455 4.2.2): 28 chars and a NUL. */
void	ws_accept_key(const char *key, size_t keylen,
	    char out[WS_ACCEPT_LEN + 1]);
/*
 * Checks r's request is a WebSocket opening handshake and writes the
 * answer into out: 101 and 0, or an error response (400; 426 with the
 * version we speak) and its status.
 */
int	ws_handshake(const struct http_reader *r, struct http_buf *out);

/* NULL when out of memory.  mark: output bytes above which input waits. */
struct ws_session *ws_session_new(uint32_t max_message_size, size_t mark);
void	ws_session_free(struct ws_session *s);
/* Takes bytes from data; returns how many (fewer under backpressure). */
size_t	ws_feed(struct ws_session *s, const void *data, size_t len);
int	ws_wants_input(const struct ws_session *s);
/* The bytes to send now (NULL, *len 0: none). */
const void *ws_output(struct ws_session *s, size_t *len);
void	ws_output_done(struct ws_session *s, size_t n);
/* The session is over (closed both ways, or broken): close once sent. */
int	ws_finished(const struct ws_session *s);
/* Queues a close 1001 (going away) after what is queued. */
void	ws_going_away(struct ws_session *s);
/* Between messages: no part of a frame or message read, nothing owed,
   no close sent or received.  Such a session holds no state that a new
   one would not have, so a restart may carry its connection. */
int	ws_idle(const struct ws_session *s);
/* Data messages echoed so far. */
uint64_t ws_messages(const struct ws_session *s);
/* The code of the close sent (1006: none was). */
int	ws_close_code(const struct ws_session *s);

#endif
