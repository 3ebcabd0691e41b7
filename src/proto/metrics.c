/*
 * metrics: the Prometheus endpoint as a protocol-table entry, so that a
 * listener with protocol = "metrics" is configured, bound, reloaded and
 * socket-activated like every other.  Its connections speak HTTP and are
 * served by evhttp on the main thread (src/server/metrics.c): the acceptor
 * binds the listener's sockets to evhttp instead of handing connections
 * to the workers (listen_sock_serve() in src/server/acceptor.c).  No options.
 *
 * input() and eof() exist because conn.c calls them unconditionally; a
 * metrics connection never reaches a worker, and one that did would be
 * closed at once rather than served bytes.
 */
#include "protocol.h"

static const char *
metrics_close_why(const void *state, const void *opts)
{
	(void)state;
	(void)opts;
	return "protocol error: metrics is served by evhttp";
}

const struct protocol proto_metrics = {
	.name = "metrics",
	.state_size = 0,
	.http = 1,
	.opts_parse = proto_no_opts_parse,
	.opts_free = proto_no_opts_free,
	.unit_timeout = NULL,
	.unit_timeout_name = NULL,
	.init = NULL,
	.input = proto_drop_close,
	.eof = proto_drop_close,
	.close_why = metrics_close_why,
};
