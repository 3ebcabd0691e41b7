/*
 * Restarts, the new process's side: the descriptors moved into place
 * first thing in main() (restart_arrange_fds()), then the connections
 * the old process wrote out taken back onto the workers, or closed
 * cleanly when they cannot be carried (restart_import()).  The old
 * process's side, and why it is done this way, is restart.c.
 *
 * Threads: main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#include "clock.h"
#include "conn.h"
#include "handover.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "self_exe.h"
#include "server_internal.h"
#include "stats.h"
#include "systemd.h"
#include "worker.h"

#define EO_HANDOVER_ENV	"EO_HANDOVER_FDS"
#define EO_HO_TALLY_MAX	32	/* closing reasons logged apart */

/* ---- the new process: descriptors into place ---------------------- */

/* Parses EO_HANDOVER_FDS into a malloc'd array; -1 if malformed. */
static long
restart_fd_list(const char *s, int **out)
{
	long i, n = 1;
	const char *p;
	char *end;

	for (p = s; *p != '\0'; p++)
		n += *p == ',';
	if ((*out = calloc((size_t)n, sizeof(**out))) == NULL)
		return -1;
	for (i = 0, p = s; i < n; i++, p = end + 1) {
		long v = strtol(p, &end, 10);

		if (end == p || v < 3 || v > 1 << 30 ||
		    (*end != ',' && *end != '\0')) {
			free(*out);
			return -1;
		}
		(*out)[i] = (int)v;
	}
	return n;
}

int
restart_arrange_fds(void)
{
	const char *s = getenv(EO_HANDOVER_ENV);
	char v[32];
	int *fds, *tmp;
	long i, n;

	if (s == NULL)
		return 0;
	if ((n = restart_fd_list(s, &fds)) == -1 ||
	    (tmp = calloc((size_t)n, sizeof(*tmp))) == NULL)
		return -1;
	/* First above the target range, so that no dup2() below closes
	   one still to be moved; then down into 3..3+n-1. */
	for (i = 0; i < n; i++) {
		tmp[i] = fcntl(fds[i], F_DUPFD, (int)(3 + n));
		close(fds[i]);
	}
	for (i = 0; i < n; i++) {
		if (tmp[i] == -1 || dup2(tmp[i], (int)(3 + i)) == -1)
			open("/dev/null", O_RDONLY);	/* keeps the order */
		if (tmp[i] != -1)
			close(tmp[i]);
	}
	free(fds);
	free(tmp);
	unsetenv(EO_HANDOVER_ENV);
	snprintf(v, sizeof(v), "%ld", n);
	setenv("LISTEN_FDS", v, 1);
	snprintf(v, sizeof(v), "%ld", (long)getpid());
	setenv("LISTEN_PID", v, 1);
	return 0;
}

/* ---- the new process: taking connections back --------------------- */

/* Why connections of one listener were closed, and how many. */
struct restart_tally {
	char		 listener[EO_NAME_MAX + 1];
	const char	*why;
	unsigned	 n;
};

static void
restart_count(struct restart_tally *t, size_t *nt, const char *listener,
    const char *why)
{
	size_t i;

	for (i = 0; i < *nt; i++)
		if (t[i].why == why && strcmp(t[i].listener, listener) == 0)
			break;
	if (i == *nt) {
		if (*nt == EO_HO_TALLY_MAX)
			i = *nt - 1;	/* lumped with the last one */
		else {
			snprintf(t[i].listener, sizeof(t[i].listener), "%s",
			    listener);
			t[i].why = why;
			t[i].n = 0;
			(*nt)++;
		}
	}
	t[i].n++;
}

/*
 * A connection that cannot be carried, closed as a client expects: sent
 * all it was owed, then a FIN, and its input read and dropped until it
 * closes too.  Closing over unread input would reset it, and a reset
 * throws away what the client had not read yet.  Served on the main
 * thread's loop, as long as it makes progress (EO_LINGER_IDLE) and at
 * most EO_LINGER_MAX in all.
 */
#define EO_LINGER_IDLE	10	/* seconds without a byte either way */
#define EO_LINGER_MAX	60	/* seconds in all */

struct restart_linger {
	struct bufferevent	*bev;
	struct server		*srv;
	struct restart_linger	*prev, *next;
	time_t			 until;		/* mono_sec(): give up */
	int			 shut;		/* FIN sent */
	int			 eof;		/* the client's FIN read */
};

static void
restart_linger_free(struct restart_linger *lg)
{
	if (lg->prev != NULL)
		lg->prev->next = lg->next;
	else
		lg->srv->lingering = lg->next;
	if (lg->next != NULL)
		lg->next->prev = lg->prev;
	bufferevent_free(lg->bev);	/* closes the socket */
	free(lg);
}

void
restart_linger_end(struct server *srv)
{
	while (srv->lingering != NULL)
		restart_linger_free(srv->lingering);
}

/* Owed bytes all sent: the FIN; or, the client's read too, the end. */
static void
restart_linger_writecb(struct bufferevent *bev, void *arg)
{
	struct restart_linger *lg = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (lg->eof) {
		restart_linger_free(lg);
		return;
	}
	if (!lg->shut) {
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		lg->shut = 1;
	}
}

static void
restart_linger_readcb(struct bufferevent *bev, void *arg)
{
	struct restart_linger *lg = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	if (mono_sec() >= lg->until)
		restart_linger_free(lg);
}

static void
restart_linger_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct restart_linger *lg = arg;

	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		lg->eof = 1;	/* half-closed: it may still read */
		bufferevent_disable(bev, EV_READ);
		return;
	}
	restart_linger_free(lg);	/* done, reset, or idle too long */
}

/* Starts closing fd so, what rec says it was owed first; -1: no memory
   (fd untouched). */
static int
restart_linger(struct server *srv, int fd, const struct ho_conn *rec)
{
	struct timeval idle = { EO_LINGER_IDLE, 0 };
	struct restart_linger *lg = calloc(1, sizeof(*lg));

	if (lg == NULL || (lg->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(lg);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	lg->srv = srv;
	lg->until = mono_sec() + EO_LINGER_MAX;
	if (rec != NULL && rec->queued_len > 0 &&
	    bufferevent_write(lg->bev, rec->queued, rec->queued_len) == -1) {
		bufferevent_setfd(lg->bev, -1);	/* fd stays the caller's */
		bufferevent_free(lg->bev);
		free(lg);
		return -1;
	}
	if ((lg->next = srv->lingering) != NULL)
		lg->next->prev = lg;
	srv->lingering = lg;
	bufferevent_setcb(lg->bev, restart_linger_readcb,
	    restart_linger_writecb, restart_linger_eventcb, lg);
	bufferevent_set_timeouts(lg->bev, &idle, &idle);
	bufferevent_enable(lg->bev, EV_READ | EV_WRITE);
	restart_linger_writecb(lg->bev, lg);	/* nothing owed: the FIN */
	return 0;
}

/*
 * Closes a connection that cannot be carried, cleanly if memory allows
 * (restart_linger()); else what it was owed sent if the socket takes
 * it at once, the client told EOF, what it sent meanwhile read first.
 */
static void
restart_close(struct server *srv, int fd, const struct ho_conn *rec)
{
	char buf[4096];
	int i;

	if (restart_linger(srv, fd, rec) == 0)
		return;
	if (rec != NULL && rec->queued_len > 0)
		(void)send(fd, rec->queued, rec->queued_len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	for (i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
	    i++)
		;
	close(fd);
}

static struct listener *
restart_listener(struct server *srv, const char *name)
{
	size_t i;

	for (i = 0; i < srv->nlis; i++)
		if (strcmp(listener_name(srv->lis[i]), name) == 0)
			return srv->lis[i];
	return NULL;
}

/* Admits rec under l and gives it to a worker; NULL, or why not. */
static const char *
restart_carry(struct server *srv, struct listener *l, int fd,
    const struct ho_conn *rec)
{
	const struct cfg_listener *lc = listener_config(l);
	struct conn_handoff ho;
	struct ho_conn *copy;
	struct worker *w;
	int per_source;
	const char *why;

	if ((why = conn_import_refusal(lc, rec)) != NULL ||
	    (why = conn_import_admit(l, rec, &per_source)) != NULL)
		return why;
	memset(&ho, 0, sizeof(ho));
	ho.fd = fd;
	ho.lis = l;
	ho.lc = lc;
	ho.peer = rec->client;
	ho.port = rec->client_port;
	ho.per_source = (uint8_t)per_source;
	cfg_ref(lc->cfg);
	stats_add(&srv->stats.conns, 1);
	w = srv->workers[srv->rr++ % srv->nworkers];
	if ((copy = ho_conn_dup(rec)) == NULL ||
	    worker_resume(w, &ho, copy) == -1) {
		free(copy);
		/* Gives the counts back and closes fd. */
		conn_handoff_release(&srv->stats, &ho);
		return "out of memory";
	}
	return NULL;
}

/* One inherited connection: carried, or closed and counted why. */
static int
restart_take(struct server *srv, int fd, const struct ho_conn *recs,
    long nrecs, unsigned char *used, struct restart_tally *t, size_t *nt)
{
	struct ho_addr local, peer;
	struct listener *l;
	const char *why;
	long i;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (ho_sock_ends(fd, &local, &peer) == -1) {
		close(fd);	/* the client is gone */
		return 0;
	}
	for (i = 0; i < nrecs; i++)
		if (!used[i] && ho_addr_equal(&local, &recs[i].local) &&
		    ho_addr_equal(&peer, &recs[i].peer))
			break;
	if (i == nrecs) {
		restart_count(t, nt, "?", "no saved state");
		restart_close(srv, fd, NULL);
		return 0;
	}
	used[i] = 1;
	if ((l = restart_listener(srv, recs[i].listener)) == NULL)
		why = "no such listener";
	else if ((why = restart_carry(srv, l, fd, &recs[i])) == NULL)
		return 1;
	restart_count(t, nt, recs[i].listener, why);
	if (strcmp(why, "out of memory") != 0)	/* else already closed */
		restart_close(srv, fd, &recs[i]);
	return 0;
}

/* The whole state blob from fd, parsed; -1 with the reason in err. */
static long
restart_read(int fd, unsigned char **blob, struct ho_conn **recs,
    char *err, size_t errlen)
{
	struct stat st;
	size_t off = 0;
	ssize_t r;

	*blob = NULL;
	if (fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    (*blob = malloc((size_t)st.st_size)) == NULL) {
		snprintf(err, errlen, "cannot read it: %s", strerror(errno));
		return -1;
	}
	while (off < (size_t)st.st_size && (r = pread(fd, *blob + off,
	    (size_t)st.st_size - off, (off_t)off)) > 0)
		off += (size_t)r;
	return ho_parse(*blob, off, recs, err, errlen);
}

/*
 * Also the records no descriptor came with: under systemd, those the
 * fd store dropped (it takes the message and keeps no more than
 * FileDescriptorStoreMax=); the old process's exit closed them.
 */
static void
restart_report(const struct restart_tally *t, size_t nt, size_t carried,
    const unsigned char *used, long nrecs)
{
	size_t i;
	long k, lost = 0;

	for (i = 0; i < nt; i++)
		log_warnx("restart: %u connection%s of listener \"%s\" "
		    "closed: %s", t[i].n, t[i].n == 1 ? "" : "s",
		    t[i].listener, t[i].why);
	for (k = 0; k < nrecs; k++)
		lost += !used[k];
	if (lost > 0)
		log_warnx("restart: %ld connection%s lost: saved, but not "
		    "handed over (FileDescriptorStoreMax= too small?)", lost,
		    lost == 1 ? "" : "s");
	log_notice("restart: %zu connection%s carried over", carried,
	    carried == 1 ? "" : "s");
}

/* The file that runs now, as the kernel says (valgrind: ours). */
static void
restart_log_running(void)
{
	char file[4096];
	ssize_t n = readlink("/proc/self/exe", file, sizeof(file) - 1);

	if (n <= 0 || (size_t)n >= sizeof(file) - 1)
		snprintf(file, sizeof(file), "?");
	else
		file[n] = '\0';
	log_notice("restart: running %s, started as %s", file,
	    self_exe_path());
}

void
restart_import(struct server *srv, struct systemd_inherited *inh)
{
	struct restart_tally t[EO_HO_TALLY_MAX];
	struct ho_conn *recs = NULL;
	unsigned char *blob = NULL, *used = NULL;
	size_t i, nt = 0, carried = 0;
	char err[256] = "no saved state";
	long n = -1;

	if (inh->nconns == 0 && inh->state_fd == -1)
		return;
	restart_log_running();
	/* Ours now: a stored connection must not outlive the service, nor
	   come back after a later crash. */
	systemd_store_remove(EO_HO_FD_CONN);
	systemd_store_remove(EO_HO_FD_STATE);
	systemd_store_remove(EO_HO_FD_CARRIER);
	if (inh->state_fd != -1)
		n = restart_read(inh->state_fd, &blob, &recs, err, sizeof(err));
	if (n >= 0 && (used = calloc((size_t)n + 1, 1)) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		n = -1;
	}
	if (n < 0)
		log_warnx("restart: the saved state is unusable (%s): closing "
		    "the %zu connection%s handed over", err, inh->nconns,
		    inh->nconns == 1 ? "" : "s");
	for (i = 0; i < inh->nconns; i++) {
		if (n < 0)
			restart_close(srv, inh->conns[i], NULL);
		else
			carried += (size_t)restart_take(srv, inh->conns[i],
			    recs, n, used, t, &nt);
		inh->conns[i] = -1;
	}
	if (n >= 0)
		restart_report(t, nt, carried, used, n);
	free(used);
	free(recs);
	free(blob);
}
