/*
 * HTTP/1.1 echo: the parts that do no I/O.  A connection feeds bytes in
 * and gets back whole requests, response bytes and numbers (a delay to
 * arm a timer for, a body size to produce); it never hands these modules
 * a socket, a timer or a thread.
 *
 * How a connection drives them (phase B plumbing):
 *
 *   at accept     http_reader_init(&r, opts)
 *   per input     n = http_reader_feed(&r, data, len); take n bytes off
 *                 the input buffer, then by the return value:
 *                   HTTP_RD_MORE      wait for more input
 *                   HTTP_RD_CONTINUE  send http_continue_line, feed again
 *                   HTTP_RD_REQUEST   http_controls_get(), then (after
 *                                     ctl.delay_ms on a timer, if any)
 *                                     http_respond(); http_reader_next();
 *                                     feed the rest of the input again
 *                   HTTP_RD_UPGRADE   ws_handshake_check(); send its 101
 *                                     and hand the rest to a ws_session
 *                   HTTP_RD_ERROR     http_respond_error(r.status), close
 *                                     once it is flushed
 *                   HTTP_RD_CLOSED    ignore input; close when flushed
 *                 Serve one request at a time: stop feeding while a
 *                 response (or its delay) is pending, so pipelined
 *                 requests wait in the input buffer (bounded by the
 *                 connection's read limit), answered in order.
 *   per room      http_body_fill() while a sized body (echo_size) has
 *                 bytes left: the connection's produce() step.
 *   per timer     request_timeout: a request not complete in time gets
 *                 408 and a close; the delay timer calls http_respond().
 *   at close      http_reader_free(&r)
 *
 * Memory: between requests a reader holds nothing but itself (under 200
 * bytes): its arena and its header and parameter tables are allocated
 * when a request begins and freed by http_reader_next().  During one it
 * holds at most max_header_size (twice, with the decoded query) +
 * max_body_size bytes, and 2.6 KB of tables; the connection keeps the
 * request's bytes as received as its input until it is answered (so
 * that a restart can hand them to the new process to read again).
 */
#ifndef EO_HTTP_H
#define EO_HTTP_H

#include "http-t.h"
#include "http_buf.h"
#include "http_ctl.h"
#include "http_opts.h"
#include "http_req.h"
#include "http_resp.h"

#endif
