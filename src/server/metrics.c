/*
 * The Prometheus endpoint: GET /metrics in the text exposition format
 * 0.0.4, served on the main thread.
 *
 * A metrics listener is a listener like the others (protocol =
 * "metrics", src/proto/metrics.c): its sockets come from the plan, so
 * bind lists, reloads and socket activation apply, and the acceptor
 * admits and counts its connections as every listener's (allow/deny at
 * accept, max_connections, per source), then gives them to
 * metrics_take() instead of a worker.  The request is parsed by
 * http_parser (Debian's libhttp-parser); a connection serves one
 * request and lives EO_METRICS_TIMEOUT seconds at most, so that a
 * client trickling bytes cannot hold it.  (evhttp could not do either:
 * its timeout is per read, and it accepts by itself, libevent #1471.)
 *
 * A scrape sums every thread's counter slots (include/stats.h) and reads
 * /proc/self: the workers never wait for it.
 *
 * Threads: main thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "server_internal.h"
#include "stats.h"

#define EO_METRICS_TIMEOUT	10	/* s: a whole scrape, request and
					   reply, from the accept */
#define EO_METRICS_HEADERS	8192	/* bytes of request */
#define EO_METRICS_TYPE		"text/plain; version=0.0.4; charset=utf-8"

/* ---- pure helpers -------------------------------------------------- */

int
metrics_proc_stat(const char *text, struct proc_stat *ps)
{
	const char *p = strrchr(text, ')');
	unsigned long long v[22];
	int i;

	if (p == NULL)
		return -1;
	/* After the name: state, then numbers; field 3 is state. */
	p++;
	while (*p == ' ')
		p++;
	if (*p == '\0' || *++p != ' ')
		return -1;
	for (i = 0; i < 22; i++) {
		char *end;

		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (end == p || errno != 0)
			return -1;
		p = end;
	}
	/* v[0] is field 4 (ppid): utime 14, stime 15, starttime 22,
	   vsize 23, rss 24. */
	ps->utime = v[10];
	ps->stime = v[11];
	ps->starttime = v[18];
	ps->vsize = v[19];
	ps->rss = v[20];
	return 0;
}

void
metrics_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in != '\0'; in++) {
		const char *rep = *in == '\\' ? "\\\\" : *in == '"' ? "\\\"" :
		    *in == '\n' ? "\\n" : NULL;
		size_t n = rep != NULL ? 2 : 1;

		if (o + n >= len)
			break;
		if (rep != NULL)
			memcpy(out + o, rep, 2);
		else
			out[o] = *in;
		o += n;
	}
	if (len > 0)
		out[o] = '\0';
}

/* ---- the exposition ------------------------------------------------ */

static void
m_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP echo_oracled_%s %s\n"
	    "# TYPE echo_oracled_%s %s\n", name, help, name, type);
}

/* One line per listener: name{listener,protocol[,label]} value. */
struct m_lis {
	char			 name[2 * EO_NAME_MAX + 1];
	const char		*proto;
	unsigned		 open;
	struct stats_sum	 sum;
};

static void
m_line(struct evbuffer *b, const char *name, const struct m_lis *l,
    const char *label, const char *value, uint64_t v)
{
	char extra[64] = "";

	if (label != NULL)
		snprintf(extra, sizeof(extra), ",%s=\"%s\"", label, value);
	evbuffer_add_printf(b, "echo_oracled_%s{listener=\"%s\",protocol="
	    "\"%s\"%s} %" PRIu64 "\n", name, l->name, l->proto, extra, v);
}

static void
m_reasons(struct evbuffer *b, const struct m_lis *ls, size_t n)
{
	size_t i;
	int r;

	m_head(b, "connections_refused_total", "counter", "Connections "
	    "closed as soon as accepted, by the limit that refused them.");
	for (i = 0; i < n; i++)
		for (r = 0; r < EO_NREFUSALS; r++)
			m_line(b, "connections_refused_total", &ls[i], "reason",
			    stats_refusal_name((enum stats_refusal)r),
			    ls[i].sum.refused[r]);
	m_head(b, "connections_closed_total", "counter", "Connections "
	    "served, then closed, by reason.");
	for (i = 0; i < n; i++)
		for (r = 0; r < EO_NCLOSES; r++)
			m_line(b, "connections_closed_total", &ls[i], "reason",
			    stats_close_name((enum stats_close)r),
			    ls[i].sum.closed[r]);
}

static void
m_oracle(struct evbuffer *b, const struct m_lis *ls, size_t n)
{
	size_t i;

	m_head(b, "oracle_questions_answered_total", "counter",
	    "Questions an oracle listener answered.");
	for (i = 0; i < n; i++)
		if (strcmp(ls[i].proto, "oracle") == 0)
			m_line(b, "oracle_questions_answered_total", &ls[i],
			    NULL, NULL, ls[i].sum.units);
	m_head(b, "oracle_errors_total", "counter", "Oracle clients closed "
	    "for a question too long or too slow to arrive.");
	for (i = 0; i < n; i++) {
		if (strcmp(ls[i].proto, "oracle") != 0)
			continue;
		m_line(b, "oracle_errors_total", &ls[i], "kind",
		    "max_question_length",
		    ls[i].sum.closed[EO_CLOSE_MAX_QUESTION_LENGTH]);
		m_line(b, "oracle_errors_total", &ls[i], "kind",
		    "question_timeout", ls[i].sum.closed[EO_CLOSE_UNIT_TIMEOUT]);
	}
}

/* The http listeners' requests by method and status class. */
static void
m_http(struct evbuffer *b, const struct m_lis *ls, size_t n)
{
	static const char *const methods[] = EO_HTTP_METHODS;
	size_t i;
	int m, k;

	m_head(b, "http_requests_total", "counter", "Requests an http "
	    "listener answered, by method and status class.");
	for (i = 0; i < n; i++) {
		if (strcmp(ls[i].proto, "http") != 0)
			continue;
		for (m = 0; m < EO_NHTTP_METHODS; m++)
			for (k = 0; k < EO_NHTTP_CLASSES; k++)
				evbuffer_add_printf(b, "echo_oracled_http_"
				    "requests_total{listener=\"%s\",protocol="
				    "\"http\",method=\"%s\",code=\"%dxx\"} %"
				    PRIu64 "\n", ls[i].name, methods[m], k + 1,
				    ls[i].sum.http[m][k]);
	}
}

/* Their WebSocket messages, and closes by the code sent. */
static void
m_websocket(struct evbuffer *b, const struct m_lis *ls, size_t n)
{
	static const int codes[] = EO_WS_CODES;
	char code[16];
	size_t i;
	int k;

	m_head(b, "websocket_messages_total", "counter", "WebSocket "
	    "messages an http listener echoed.");
	for (i = 0; i < n; i++)
		if (strcmp(ls[i].proto, "http") == 0)
			m_line(b, "websocket_messages_total", &ls[i], NULL,
			    NULL, ls[i].sum.ws_messages);
	m_head(b, "websocket_closes_total", "counter", "WebSocket sessions "
	    "ended, by the close code sent (other: none was).");
	for (i = 0; i < n; i++) {
		if (strcmp(ls[i].proto, "http") != 0)
			continue;
		for (k = 0; k < EO_NWS_CODES; k++) {
			if (k < EO_NWS_CODES - 1)
				snprintf(code, sizeof(code), "%d", codes[k]);
			else
				snprintf(code, sizeof(code), "other");
			m_line(b, "websocket_closes_total", &ls[i], "code",
			    code, ls[i].sum.ws_closes[k]);
		}
	}
}

static void
m_listeners(struct evbuffer *b, const struct m_lis *ls, size_t n)
{
	static const struct {
		const char	*name, *type, *help;
		size_t		 off;		/* in struct stats_sum */
	} plain[] = {
		{ "connections_accepted_total", "counter", "Connections "
		    "accepted and handed to a worker.",
		    offsetof(struct stats_sum, accepted) },
		{ "connections_evicted_total", "counter", "Quiet connections "
		    "closed to make room at max_connections (also in "
		    "connections_closed_total).",
		    offsetof(struct stats_sum, closed[EO_CLOSE_EVICTED]) },
		{ "received_bytes_total", "counter", "Bytes read from "
		    "clients.", offsetof(struct stats_sum, bytes_in) },
		{ "sent_bytes_total", "counter", "Bytes of replies sent or "
		    "queued to clients.", offsetof(struct stats_sum, bytes_out) },
	};
	size_t i, k;

	m_head(b, "connections", "gauge", "Connections open now.");
	for (i = 0; i < n; i++)
		m_line(b, "connections", &ls[i], NULL, NULL, ls[i].open);
	for (k = 0; k < sizeof(plain) / sizeof(plain[0]); k++) {
		m_head(b, plain[k].name, plain[k].type, plain[k].help);
		for (i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&ls[i].sum + plain[k].off,
			    sizeof(v));
			m_line(b, plain[k].name, &ls[i], NULL, NULL, v);
		}
	}
	m_reasons(b, ls, n);
	m_oracle(b, ls, n);
	m_http(b, ls, n);
	m_websocket(b, ls, n);
}

static void
m_lag(struct evbuffer *b, const struct stats_sum *all)
{
	static const uint64_t bounds[EO_NLAG] = EO_LAG_BOUNDS;
	uint64_t cum = 0;
	int i;

	m_head(b, "worker_loop_lag_seconds", "histogram", "How late a "
	    "worker's once-a-second timer runs: time its event loop was busy "
	    "elsewhere.");
	for (i = 0; i < EO_NLAG; i++) {
		cum += all->lag[i];
		evbuffer_add_printf(b, "echo_oracled_worker_loop_lag_seconds_"
		    "bucket{le=\"%g\"} %" PRIu64 "\n", (double)bounds[i] / 1e6,
		    cum);
	}
	cum += all->lag[EO_NLAG];
	evbuffer_add_printf(b, "echo_oracled_worker_loop_lag_seconds_bucket"
	    "{le=\"+Inf\"} %" PRIu64 "\n"
	    "echo_oracled_worker_loop_lag_seconds_sum %.6f\n"
	    "echo_oracled_worker_loop_lag_seconds_count %" PRIu64 "\n", cum,
	    (double)all->lag_us / 1e6, cum);
}

static void
m_process_line(struct evbuffer *b, const char *name, const char *type,
    const char *help, double v)
{
	evbuffer_add_printf(b, "# HELP process_%s %s\n# TYPE process_%s %s\n"
	    "process_%s %.17g\n", name, help, name, type, name, v);
}

/* Reads a small /proc file whole; NULL-terminated, 0 or -1. */
static int
m_slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int
m_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* not the one reading the folder */
}

static void
m_process(struct evbuffer *b)
{
	static char self[1024];
	struct timespec real, boot;
	double tck = (double)sysconf(_SC_CLK_TCK);
	struct proc_stat ps;
	struct rlimit rl;
	int fds;

	if (m_slurp("/proc/self/stat", self, sizeof(self)) == 0 &&
	    metrics_proc_stat(self, &ps) == 0) {
		m_process_line(b, "cpu_seconds_total", "counter", "User and "
		    "system CPU time spent in seconds.",
		    (double)(ps.utime + ps.stime) / tck);
		m_process_line(b, "virtual_memory_bytes", "gauge", "Virtual "
		    "memory size in bytes.", (double)ps.vsize);
		m_process_line(b, "resident_memory_bytes", "gauge", "Resident "
		    "memory size in bytes.",
		    (double)ps.rss * (double)sysconf(_SC_PAGESIZE));
		/* starttime counts from boot: the clock that does too. */
		clock_gettime(CLOCK_REALTIME, &real);
		clock_gettime(CLOCK_BOOTTIME, &boot);
		m_process_line(b, "start_time_seconds", "gauge", "Start time "
		    "of the process since unix epoch in seconds.",
		    (double)(real.tv_sec - boot.tv_sec) +
		    (double)(real.tv_nsec - boot.tv_nsec) / 1e9 +
		    (double)ps.starttime / tck);
	}
	if ((fds = m_open_fds()) >= 0)
		m_process_line(b, "open_fds", "gauge", "Number of open file "
		    "descriptors.", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		m_process_line(b, "max_fds", "gauge", "Maximum number of open "
		    "file descriptors.", (double)rl.rlim_cur);
}

/* UDP, process totals: datagrams are counted per socket batch, not per
   listener. */
static void
m_udp(struct server *srv, struct evbuffer *b)
{
	const struct stats *st = &srv->stats;
	int r;

	m_head(b, "udp_datagrams_received_total", "counter", "Datagrams "
	    "received on the UDP listeners.");
	evbuffer_add_printf(b, "echo_oracled_udp_datagrams_received_total "
	    "%lu\n", stats_get(&st->udp_in));
	m_head(b, "udp_datagrams_sent_total", "counter", "Datagrams sent "
	    "in reply on the UDP listeners.");
	evbuffer_add_printf(b, "echo_oracled_udp_datagrams_sent_total %lu\n",
	    stats_get(&st->udp_out));
	m_head(b, "udp_datagrams_dropped_total", "counter", "Datagrams "
	    "received and not answered, by reason.");
	for (r = 0; r < EO_UDP_NDROPS; r++)
		evbuffer_add_printf(b, "echo_oracled_udp_datagrams_dropped_"
		    "total{reason=\"%s\"} %lu\n",
		    stats_udp_drop_name((enum stats_udp_drop)r),
		    stats_get(&st->udp_dropped[r]));
}

static void
m_daemon(struct server *srv, struct evbuffer *b, const struct stats_sum *all)
{
	char v[64];

	metrics_escape(EO_VERSION, v, sizeof(v));
	m_head(b, "build_info", "gauge", "Always 1; the version running.");
	evbuffer_add_printf(b, "echo_oracled_build_info{version=\"%s\"} 1\n",
	    v);
	m_head(b, "start_time_seconds", "gauge", "When the daemon started, "
	    "Unix time.");
	evbuffer_add_printf(b, "echo_oracled_start_time_seconds %lld\n",
	    (long long)srv->started);
	m_head(b, "reloads_total", "counter", "Reloads (SIGHUP), by result.");
	evbuffer_add_printf(b, "echo_oracled_reloads_total{result=\"failure\"} "
	    "%" PRIu64 "\necho_oracled_reloads_total{result=\"success\"} %"
	    PRIu64 "\n", srv->reloads[0], srv->reloads[1]);
	m_head(b, "last_reload_success_timestamp_seconds", "gauge", "When "
	    "the running configuration was loaded (start or reload), Unix "
	    "time.");
	evbuffer_add_printf(b, "echo_oracled_last_reload_success_timestamp_"
	    "seconds %lld\n", (long long)srv->reload_ok_at);
	m_lag(b, all);
	m_udp(srv, b);
}

static int
m_render(struct server *srv, struct evbuffer *b)
{
	struct m_lis *ls = calloc(srv->nlis + 1, sizeof(*ls));
	struct stats_sum all;
	size_t i, n = 0;

	if (ls == NULL)
		return -1;
	/* Not the UDP ones: no connections; their datagrams are in
	   m_udp(). */
	for (i = 0; i < srv->nlis; i++) {
		const struct cfg_listener *lc = listener_config(srv->lis[i]);

		if (lc->udp)
			continue;	/* UDP: m_udp(), process totals */
		metrics_escape(lc->name, ls[n].name, sizeof(ls[n].name));
		ls[n].proto = lc->proto->name;
		ls[n].open = listener_nconns(srv->lis[i]);
		stats_sum(listener_stats(srv->lis[i]), &ls[n++].sum);
	}
	memset(&all, 0, sizeof(all));
	stats_sum(srv->stats.all, &all);
	m_daemon(srv, b, &all);
	m_listeners(b, ls, n);
	m_process(b);
	free(ls);
	return 0;
}

/* ---- HTTP ------------------------------------------------------------ */

/*
 * One scrape's connection, on the main thread.  The acceptor admitted it
 * as every listener's (allow/deny, max_connections, per source) and
 * counted it; it lives EO_METRICS_TIMEOUT seconds at most, request and
 * reply together, and serves one request.
 */
struct mconn {
	TAILQ_ENTRY(mconn)	 entry;
	struct server		*srv;
	struct conn_handoff	 ho;		/* fd, listener, counts */
	struct bufferevent	*bev;
	struct event		*deadline;
	http_parser		 parser;
	size_t			 nread;		/* request bytes so far */
	char			 url[256];	/* the target, cut short */
	size_t			 urllen;
	int			 answered;	/* a reply is queued */
};

TAILQ_HEAD(mconn_list, mconn);

struct metrics {
	struct mconn_list	 conns;
};

/* Counts the close under reason, frees c and gives its counts back. */
static void
mconn_close(struct mconn *c, enum stats_close reason)
{
	struct server *srv = c->srv;
	struct stats_slot *one = stats_slot(listener_stats(c->ho.lis),
	    stats_acceptor());
	struct stats_slot *all = stats_slot(srv->stats.all,
	    stats_acceptor());

	stats_bump(&one->closed[reason], 1);
	stats_bump(&all->closed[reason], 1);
	TAILQ_REMOVE(&srv->metrics->conns, c, entry);
	bufferevent_free(c->bev);
	event_free(c->deadline);
	conn_handoff_release(&srv->stats, &c->ho);	/* closes the fd */
	free(c);
}

/* The reply, whole, then the close once it is sent (mconn_writecb). */
static void
mconn_reply(struct mconn *c, int code, const char *reason,
    const char *type, const char *extra, struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = body != NULL ? evbuffer_get_length(body) : 0;

	c->answered = 1;
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", code, reason,
	    type, len, extra != NULL ? extra : "");
	if (body != NULL)
		evbuffer_add_buffer(out, body);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* A plain-text reply: its status line, and text as its body. */
static void
mconn_text(struct mconn *c, int code, const char *reason,
    const char *extra, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b != NULL)
		evbuffer_add_printf(b, "%s\n", text);
	mconn_reply(c, code, reason, "text/plain", extra, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* A reply whose body is its status line's reason. */
static void
mconn_error(struct mconn *c, int code, const char *reason,
    const char *extra)
{
	mconn_text(c, code, reason, extra, reason);
}

/*
 * /healthz: the watchdog's rule, for a kubelet's liveness probe.  A
 * stuck worker's clients are stuck with it, and only a restart frees
 * them; the main thread answering proves nothing about the workers.
 */
static void
mconn_healthz(struct mconn *c)
{
	char why[80];
	long long idle;
	int i = stats_stuck_worker(c->srv, &idle);

	if (i < 0) {
		mconn_text(c, 200, "OK", NULL, "ok");
		return;
	}
	snprintf(why, sizeof(why), "worker %d is stuck (no loop turn for "
	    "%lld s)", i, idle);
	mconn_text(c, 503, "Service Unavailable", NULL, why);
}

/*
 * /readyz: 503 from the moment a stop begins (stop_delay included), so
 * that a balancer stops sending before the listeners close.
 */
static void
mconn_readyz(struct mconn *c)
{
	if (c->srv->unready || c->srv->stopping)
		mconn_text(c, 503, "Service Unavailable", NULL, "stopping");
	else
		mconn_text(c, 200, "OK", NULL, "ready");
}

/* GET /metrics: the exposition. */
static void
mconn_metrics(struct mconn *c)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || m_render(c->srv, b) == -1) {
		if (b != NULL)
			evbuffer_free(b);
		mconn_error(c, 503, "Out of memory", NULL);
		return;
	}
	mconn_reply(c, 200, "OK", EO_METRICS_TYPE, NULL, b);
	evbuffer_free(b);
}

/* The request's path is exactly p. */
static int
mconn_path_is(const struct mconn *c, const struct http_parser_url *u,
    const char *p)
{
	size_t n = strlen(p);

	return u->field_data[UF_PATH].len == n &&
	    memcmp(c->url + u->field_data[UF_PATH].off, p, n) == 0;
}

static int
mconn_on_url(http_parser *p, const char *at, size_t len)
{
	struct mconn *c = p->data;
	size_t room = sizeof(c->url) - 1 - c->urllen;

	/* A longer target is no path of ours: cut, it answers 404. */
	if (len > room)
		len = room;
	memcpy(c->url + c->urllen, at, len);
	c->urllen += len;
	c->url[c->urllen] = '\0';
	return 0;
}

/* The request is whole: GET /metrics, /healthz or /readyz; 405, 404. */
static int
mconn_on_complete(http_parser *p)
{
	struct mconn *c = p->data;
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (c->answered)
		return 1;
	if (p->method != HTTP_GET) {
		mconn_error(c, 405, "Method Not Allowed", "Allow: GET\r\n");
		return 1;
	}
	if (http_parser_parse_url(c->url, c->urllen, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH)))
		mconn_error(c, 404, "Not Found", NULL);
	else if (mconn_path_is(c, &u, "/metrics"))
		mconn_metrics(c);
	else if (mconn_path_is(c, &u, "/healthz"))
		mconn_healthz(c);
	else if (mconn_path_is(c, &u, "/readyz"))
		mconn_readyz(c);
	else
		mconn_error(c, 404, "Not Found", NULL);
	return 1;		/* one request per connection */
}

/* A request with a body: a scrape has none. */
static int
mconn_on_headers(http_parser *p)
{
	struct mconn *c = p->data;

	if ((p->flags & F_CHUNKED) || (p->content_length > 0 &&
	    p->content_length != ULLONG_MAX)) {
		mconn_error(c, 413, "Payload Too Large", NULL);
		return -1;	/* http_parser: an error, stop */
	}
	return 0;
}

static const http_parser_settings mconn_settings = {
	.on_url = mconn_on_url,
	.on_headers_complete = mconn_on_headers,
	.on_message_complete = mconn_on_complete,
};

static void
mconn_readcb(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[2048];
	size_t n;
	int k;

	while (!c->answered && (k = evbuffer_remove(in, buf,
	    sizeof(buf))) > 0) {
		n = (size_t)k;
		/* Bounded: a request larger than any scrape's is refused. */
		if ((c->nread += n) > EO_METRICS_HEADERS) {
			mconn_error(c, 431, "Request Header Fields Too Large",
			    NULL);
			break;
		}
		if (http_parser_execute(&c->parser, &mconn_settings, buf,
		    n) != n && !c->answered)
			mconn_error(c, 400, "Bad Request", NULL);
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

/* The reply is sent: the connection is done. */
static void
mconn_writecb(struct bufferevent *bev, void *arg)
{
	struct mconn *c = arg;

	if (c->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		mconn_close(c, EO_CLOSE_PROTOCOL_CLOSED);
}

static void
mconn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct mconn *c = arg;

	(void)bev;
	/* A client that half-closes after its request still gets the
	   reply: only an error ends a connection that has one queued. */
	if ((what & BEV_EVENT_EOF) && c->answered)
		return;
	mconn_close(c, (what & BEV_EVENT_EOF) ? EO_CLOSE_CLIENT_EOF :
	    EO_CLOSE_CLIENT_RESET);
}

/* EO_METRICS_TIMEOUT after the accept, whatever came or went since. */
static void
mconn_deadlinecb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mconn_close(arg, EO_CLOSE_IDLE_TIMEOUT);
}

int
metrics_take(struct server *srv, const struct conn_handoff *ho)
{
	struct timeval tv = { EO_METRICS_TIMEOUT, 0 };
	struct mconn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	c->srv = srv;
	c->ho = *ho;
	/* Not BEV_OPT_CLOSE_ON_FREE: conn_handoff_release() closes it. */
	c->bev = bufferevent_socket_new(srv->base, ho->fd, 0);
	c->deadline = evtimer_new(srv->base, mconn_deadlinecb, c);
	if (c->bev == NULL || c->deadline == NULL ||
	    evtimer_add(c->deadline, &tv) == -1 ||
	    bufferevent_enable(c->bev, EV_READ) == -1) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return -1;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	bufferevent_setcb(c->bev, mconn_readcb, mconn_writecb, mconn_eventcb,
	    c);
	TAILQ_INSERT_TAIL(&srv->metrics->conns, c, entry);
	return 0;
}

int
metrics_init(struct server *srv)
{
	if ((srv->metrics = calloc(1, sizeof(*srv->metrics))) == NULL)
		return -1;
	TAILQ_INIT(&srv->metrics->conns);
	/* The acceptor hands http connections on without naming this
	   file: a reporter sits beside it, not below it. */
	srv->take_http = metrics_take;
	return 0;
}

void
metrics_fini(struct server *srv)
{
	struct mconn *c;

	if (srv->metrics == NULL)
		return;
	while ((c = TAILQ_FIRST(&srv->metrics->conns)) != NULL)
		mconn_close(c, EO_CLOSE_SHUTDOWN);
	free(srv->metrics);
	srv->metrics = NULL;
}
