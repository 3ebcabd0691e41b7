/*
 * The Prometheus endpoint: GET /metrics in the text exposition format
 * 0.0.4, served by evhttp on the main thread.
 *
 * A metrics listener is a listener like the others (protocol =
 * "metrics", src/proto/metrics.c): its sockets come from the plan, so
 * bind lists, reloads and socket activation apply; the acceptor binds
 * them to the one evhttp made here (listen_sock_serve()).  evhttp
 * accepts those connections itself, so the acceptor's admission
 * (max_connections, per source) does not count them: keep the listener
 * on loopback, as the shipped config does.
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "server_internal.h"
#include "stats.h"

#define EO_METRICS_TIMEOUT	10	/* s: a scrape's request, or idle */
#define EO_METRICS_HEADERS	8192	/* bytes of request headers */
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
			evbuffer_add_printf(b, "echo_oracled_connections_refused"
			    "_total{listener=\"%s\",protocol=\"%s\",reason="
			    "\"%s\"} %" PRIu64 "\n", ls[i].name, ls[i].proto,
			    stats_refusal_name((enum stats_refusal)r),
			    ls[i].sum.refused[r]);
	m_head(b, "connections_closed_total", "counter", "Connections "
	    "served, then closed, by reason.");
	for (i = 0; i < n; i++)
		for (r = 0; r < EO_NCLOSES; r++)
			evbuffer_add_printf(b, "echo_oracled_connections_closed"
			    "_total{listener=\"%s\",protocol=\"%s\",reason="
			    "\"%s\"} %" PRIu64 "\n", ls[i].name, ls[i].proto,
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
	/* Not the metrics listeners: evhttp, not the acceptor, takes
	   their connections, so their counters would stay 0.  Nor the UDP
	   ones: no connections; their datagrams are in m_udp(). */
	for (i = 0; i < srv->nlis; i++) {
		const struct cfg_listener *lc = listener_config(srv->lis[i]);

		if (lc->proto->http || lc->udp)
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

/* Every request: GET /metrics, or 405 for another method, 404 elsewhere. */
/* Same family and port, and the same address or a wildcard socket. */
static int
metrics_sock_is(const struct listen_sock *ls, const struct sockaddr *sa)
{
	const struct sockaddr *la = (const struct sockaddr *)&ls->addr.ss;

	if (la->sa_family != sa->sa_family)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)la;
		const struct sockaddr_in *y = (const void *)sa;

		return x->sin_port == y->sin_port && (x->sin_addr.s_addr ==
		    htonl(INADDR_ANY) || x->sin_addr.s_addr == y->sin_addr.s_addr);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)la;
		const struct sockaddr_in6 *y = (const void *)sa;

		return x->sin6_port == y->sin6_port &&
		    (IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
		    IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr));
	}
	return 0;
}

/*
 * Whether the client of req may scrape: allow and deny of the metrics
 * listener it came in on.  One evhttp serves every metrics listener, so
 * the listener is found by the connection's local address.  A scrape is
 * rare: two system calls per request are no cost.
 */
static int
metrics_admits(struct server *srv, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	evutil_socket_t fd;
	size_t i;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (fd = bufferevent_getfd(bev)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&local, &llen) == -1 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) == -1)
		return 0;
	for (i = 0; i < srv->nsocks; i++) {
		struct listen_sock *ls = srv->socks[i];

		if (ls->bound != NULL && ls->lis != NULL &&
		    metrics_sock_is(ls, (struct sockaddr *)&local))
			return cfg_listener_admits(listener_config(ls->lis),
			    (struct sockaddr *)&peer);
	}
	return 0;
}

static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b;

	if (!metrics_admits(srv, req)) {
		evhttp_send_error(req, 403, "Forbidden");
		return;
	}
	/* evhttp_send_error() would drop the Allow header 405 requires. */
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(h, "Allow", "GET");
		evhttp_add_header(h, "Content-Type", "text/plain");
		if ((b = evbuffer_new()) != NULL)
			evbuffer_add_printf(b, "only GET /metrics\n");
		evhttp_send_reply(req, HTTP_BADMETHOD, "Method Not Allowed", b);
		if (b != NULL)
			evbuffer_free(b);
		return;
	}
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if ((b = evbuffer_new()) == NULL || m_render(srv, b) == -1) {
		if (b != NULL)
			evbuffer_free(b);
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	evhttp_add_header(h, "Content-Type", EO_METRICS_TYPE);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

int
metrics_init(struct server *srv)
{
	if ((srv->http = evhttp_new(srv->base)) == NULL)
		return -1;
	/* Every method reaches metrics_request(), which answers 405:
	   evhttp itself would answer 501 to those it was not told of. */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(srv->http, metrics_request, srv);
	evhttp_set_timeout(srv->http, EO_METRICS_TIMEOUT);
	evhttp_set_max_headers_size(srv->http, EO_METRICS_HEADERS);
	evhttp_set_max_body_size(srv->http, 0);
	return 0;
}

void
metrics_fini(struct server *srv)
{
	if (srv->http != NULL)
		evhttp_free(srv->http);
	srv->http = NULL;
}

struct evhttp_bound_socket *
metrics_bind(struct server *srv, struct evconnlistener *evl)
{
	return evhttp_bind_listener(srv->http, evl);
}

void
metrics_unbind(struct server *srv, struct evhttp_bound_socket *b)
{
	evhttp_del_accept_socket(srv->http, b);
}
