/*
 * systemd integration: see include/systemd.h.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "handover.h"
#include "peer.h"
#include "log.h"
#include "systemd.h"

#define EO_SD_BARRIER_USEC (5 * 1000000ULL) /* systemd read our messages */

void
systemd_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
systemd_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading the configuration\n"
	    "MONOTONIC_USEC=%llu", (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}

void
systemd_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping: finishing connections");
}

void
systemd_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}

uint64_t
systemd_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void
systemd_watchdog_ping(void)
{
	sd_notify(0, "WATCHDOG=1");
}

int
systemd_sockets(struct systemd_socket **out, char *err, size_t errlen)
{
	char **names = NULL;
	int i, n;

	*out = NULL;
	/* Unset: the variables are ours, not a child's to inherit. */
	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		snprintf(err, errlen, "socket activation: %s", strerror(-n));
		return -1;
	}
	if (n == 0)
		return 0;
	if ((*out = calloc((size_t)n, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "socket activation: out of memory");
		n = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		(*out)[i].fd = fd;
		snprintf((*out)[i].name, sizeof((*out)[i].name), "%s",
		    names != NULL && names[i] != NULL ? names[i] : "unknown");
		/* A connection or the state a previous process of ours
		   handed over: handover.h, checked when taken back. */
		if (strcmp((*out)[i].name, EO_HO_FD_CONN) == 0 ||
		    strcmp((*out)[i].name, EO_HO_FD_CARRIER) == 0 ||
		    strcmp((*out)[i].name, EO_HO_FD_STATE) == 0)
			continue;
		/* AF_UNIX would be served with peer "?" and no
		   per-source limit: TCP over IPv4 or IPv6 only. */
		if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0 &&
		    sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) <= 0) {
			snprintf(err, errlen, "socket activation: fd %d (%s) "
			    "is neither a listening TCP socket nor a UDP socket "
			    "(a UNIX socket, a FIFO?): use ListenStream= or "
			    "ListenDatagram= with a port or address:port", fd,
			    (*out)[i].name);
			free(*out);
			*out = NULL;
			n = -1;
			goto out;
		}
	}
out:
	if (names != NULL) {
		for (i = 0; names[i] != NULL; i++)
			free(names[i]);
		free(names);
	}
	return n;
}

/*
 * A name of sd that is no enabled listener, or (socket-only) a listener
 * without one.
 */
static int
systemd_match(const struct cfg *cfg, const struct systemd_socket *sd, int n,
    char *err, size_t errlen)
{
	size_t j;
	int i;

	for (i = 0; i < n; i++) {
		const struct cfg_listener *lc = cfg_find_listener(cfg,
		    sd[i].name);

		if (lc == NULL || !lc->enabled) {
			snprintf(err, errlen, "socket activation: systemd "
			    "passed a socket named \"%s\" but %s has no "
			    "%slistener of that name (FileDescriptorName= must "
			    "be a listener's name)", sd[i].name, cfg->path,
			    lc == NULL ? "" : "enabled ");
			return -1;
		}
	}
	for (j = 0; j < cfg->nlisteners; j++) {
		const struct cfg_listener *lc = &cfg->listeners[j];

		for (i = 0; i < n; i++)
			if (strcmp(sd[i].name, lc->name) == 0)
				break;
		if (!lc->enabled || i < n)
			continue;
		if (systemd_socket_only()) {
			systemd_socket_only_why(lc->name, err, errlen);
			return -1;
		}
		/* As nginx and HAProxy do with inherited sockets: the
		   plan binds the rest (the metrics port, say) itself. */
		log_info("socket activation: listener \"%s\" has no socket "
		    "from systemd: bound by the daemon itself", lc->name);
	}
	return 0;
}

int
systemd_socket_only(void)
{
	const char *s = getenv(EO_SOCKET_ONLY_ENV);

	return s != NULL && s[0] != '\0' && strcmp(s, "0") != 0;
}

void
systemd_socket_only_why(const char *name, char *err, size_t errlen)
{
	snprintf(err, errlen, "socket activation: listener \"%s\" has no "
	    "socket from systemd, and the socket-only drop-in "
	    "(echo-oracled-socket-only.conf, %s=1) lets the daemon open "
	    "none: add a socket unit with ListenStream= (ListenDatagram= "
	    "for UDP) and FileDescriptorName=%s, disable the listener, or "
	    "remove the drop-in", name, EO_SOCKET_ONLY_ENV, name);
}

/* Whether name is one of the hand-over's (handover.h), not systemd's. */
static int
systemd_ours(const char *name)
{
	return strncmp(name, EO_HO_FD_TCP, strlen(EO_HO_FD_TCP)) == 0 ||
	    strncmp(name, EO_HO_FD_UDP, strlen(EO_HO_FD_UDP)) == 0 ||
	    strncmp(name, EO_HO_FD_PARKED, strlen(EO_HO_FD_PARKED)) == 0 ||
	    strncmp(name, EO_HO_FD_EXTRA, strlen(EO_HO_FD_EXTRA)) == 0 ||
	    strcmp(name, EO_HO_FD_CONN) == 0 ||
	    strcmp(name, EO_HO_FD_CARRIER) == 0 ||
	    strcmp(name, EO_HO_FD_STATE) == 0;
}

/* The address, non-blocking, close-on-exec: ready to listen on. */
static void
systemd_prepare(struct systemd_socket *s)
{
	struct cfg_addr *a = &s->addr;
	int fl = fcntl(s->fd, F_GETFL);

	a->len = sizeof(a->ss);
	if (getsockname(s->fd, (struct sockaddr *)&a->ss, &a->len) == -1)
		a->len = 0;
	peer_format((struct sockaddr *)&a->ss, a->text, sizeof(a->text));
	/* libevent's accept loop needs a non-blocking socket. */
	fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(s->fd, F_SETFD, FD_CLOEXEC);
}

/* One more inherited connection; -1 if out of memory (fd closed). */
static int
systemd_add_conn(struct systemd_inherited *inh, size_t *cap, int fd)
{
	int *v;

	if (inh->nconns == *cap) {
		if ((v = reallocarray(inh->conns, *cap * 2 + 16,
		    sizeof(*v))) == NULL) {
			close(fd);
			return -1;
		}
		inh->conns = v;
		*cap = *cap * 2 + 16;
	}
	inh->conns[inh->nconns++] = fd;
	return 0;
}

/* The carrier's queue (handover.h), to its end; then it is closed. */
static void
systemd_uncarry(int carrier, struct systemd_inherited *inh, size_t *cap)
{
	int fds[EO_HO_FD_BATCH];
	long i, k;
	char tag;

	while ((k = ho_recv_fds(carrier, &tag, fds, EO_HO_FD_BATCH)) >= 0)
		for (i = 0; i < k; i++) {
			if (tag == EO_HO_TAG_STATE && inh->state_fd == -1)
				inh->state_fd = fds[i];
			else if (tag == EO_HO_TAG_CONN)
				(void)systemd_add_conn(inh, cap, fds[i]);
			else
				close(fds[i]);
		}
	close(carrier);
}

/* Moves the hand-over's descriptors from sd[0..*n) into inh. */
static int
systemd_split(struct systemd_socket *sd, int *n, struct systemd_inherited *inh)
{
	size_t cap = (size_t)*n;
	int i, kept = 0;

	inh->conns = calloc(cap, sizeof(*inh->conns));
	inh->ours = calloc((size_t)*n, sizeof(*inh->ours));
	if (inh->conns == NULL || inh->ours == NULL)
		return -1;
	for (i = 0; i < *n; i++) {
		fcntl(sd[i].fd, F_SETFD, FD_CLOEXEC);
		if (!systemd_ours(sd[i].name))
			sd[kept++] = sd[i];
		else if (strcmp(sd[i].name, EO_HO_FD_CONN) == 0)
			(void)systemd_add_conn(inh, &cap, sd[i].fd);
		else if (strcmp(sd[i].name, EO_HO_FD_CARRIER) == 0)
			systemd_uncarry(sd[i].fd, inh, &cap);
		else if (strcmp(sd[i].name, EO_HO_FD_STATE) != 0)
			inh->ours[inh->nours++] = sd[i];
		else if (inh->state_fd == -1)
			inh->state_fd = sd[i].fd;
		else
			close(sd[i].fd);	/* one state is enough */
	}
	*n = kept;
	return 0;
}

void
systemd_inherited_free(struct systemd_inherited *inh)
{
	size_t i;

	for (i = 0; i < inh->nconns; i++)
		if (inh->conns[i] != -1)
			close(inh->conns[i]);
	for (i = 0; i < inh->nours; i++)
		if (inh->ours[i].fd != -1)
			close(inh->ours[i].fd);
	if (inh->state_fd != -1)
		close(inh->state_fd);
	free(inh->conns);
	free(inh->ours);
	memset(inh, 0, sizeof(*inh));
	inh->state_fd = -1;
}

int
systemd_adopt(const struct cfg *cfg, struct systemd_socket **out,
    struct systemd_inherited *inh, char *err, size_t errlen)
{
	struct systemd_socket *sd;
	size_t j;
	int i, n = systemd_sockets(&sd, err, errlen);

	*out = NULL;
	memset(inh, 0, sizeof(*inh));
	inh->state_fd = -1;
	if (n <= 0)
		return n;
	if (systemd_split(sd, &n, inh) == -1) {
		snprintf(err, errlen, "socket activation: out of memory");
		goto fail;
	}
	/* Only the hand-over's: not socket-activated. */
	if (n == 0) {
		free(sd);
		sd = NULL;
	} else if (systemd_match(cfg, sd, n, err, errlen) == -1)
		goto fail;
	for (i = 0; i < n; i++)
		systemd_prepare(&sd[i]);
	for (j = 0; j < inh->nours; j++)
		systemd_prepare(&inh->ours[j]);
	*out = sd;
	return n;
fail:
	for (i = 0; i < n; i++)
		close(sd[i].fd);
	free(sd);
	systemd_inherited_free(inh);
	return -1;
}

/* ---- restarts: the fd store and the restart-or-stop question ------ */

#define EO_SD_BUS_USEC	(2 * 1000000ULL) /* the whole question: a stop
					   must not hang on it */

int
systemd_notifying(void)
{
	return getenv("NOTIFY_SOCKET") != NULL;
}

int
systemd_store(const char *name, const int *fds, size_t n)
{
	char msg[EO_NAME_MAX + 64];
	size_t i, k;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	for (i = 0; i < n; i += k) {
		k = n - i < EO_HO_FD_BATCH ? n - i : EO_HO_FD_BATCH;
		if (sd_pid_notify_with_fds(0, 0, msg, fds + i,
		    (unsigned)k) <= 0)
			return -1;
	}
	return 0;
}

int
systemd_store_nopoll(const char *name, int fd)
{
	char msg[EO_NAME_MAX + 64];

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
	return sd_pid_notify_with_fds(0, 0, msg, &fd, 1) > 0 ? 0 : -1;
}

int
systemd_barrier(void)
{
	/* Every message sent before is read once this returns >= 0. */
	return sd_notify_barrier(0, EO_SD_BARRIER_USEC) >= 0 ? 0 : -1;
}

void
systemd_store_remove(const char *name)
{
	sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

/* A string of the reply m of type "o" or "s", copied to buf. */
static int
systemd_bus_path(sd_bus_message *m, const char *type, char *buf, size_t len)
{
	const char *s;

	if (sd_bus_message_read(m, type, &s) < 0)
		return -1;
	snprintf(buf, len, "%s", s);
	return 0;
}

static uint64_t
systemd_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The next call may take what is left until deadline; -1: nothing. */
static int
systemd_bus_budget(sd_bus *bus, uint64_t deadline)
{
	uint64_t now = systemd_now_usec();

	if (now >= deadline)
		return -1;
	return sd_bus_set_method_call_timeout(bus, deadline - now) < 0 ?
	    -1 : 0;
}

/*
 * Connected and authenticated by deadline, or -1.  sd-bus's calls wait
 * for that without a bound of ours (its own is far longer than a stop
 * may take), so that a bus that accepts and never answers would hang
 * SIGTERM.
 */
static int
systemd_bus_ready(sd_bus *bus, uint64_t deadline)
{
	uint64_t now;
	int r;

	while ((r = sd_bus_is_ready(bus)) == 0) {
		if ((now = systemd_now_usec()) >= deadline ||
		    (r = sd_bus_process(bus, NULL)) < 0)
			return -1;
		if (r == 0 && sd_bus_wait(bus, deadline - now) < 0)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

/* The type of the job pending on our unit ("restart"...), or -1. */
static int
systemd_job_type(sd_bus *bus, uint64_t deadline, char *buf, size_t len)
{
	static const char *const sd1 = "org.freedesktop.systemd1";
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL;
	char unit[512], job[512], *type = NULL;
	const char *path;
	uint32_t id = 0;
	int r = -1;

	if (systemd_bus_budget(bus, deadline) == -1 ||
	    sd_bus_call_method(bus, sd1, "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", "GetUnitByPID", &e, &m, "u",
	    (uint32_t)getpid()) < 0 ||
	    systemd_bus_path(m, "o", unit, sizeof(unit)) == -1)
		goto out;
	m = sd_bus_message_unref(m);
	if (systemd_bus_budget(bus, deadline) == -1 ||
	    sd_bus_get_property(bus, sd1, unit, "org.freedesktop.systemd1.Unit",
	    "Job", &e, &m, "(uo)") < 0 ||
	    sd_bus_message_read(m, "(uo)", &id, &path) < 0 || id == 0)
		goto out;
	snprintf(job, sizeof(job), "%s", path);
	if (systemd_bus_budget(bus, deadline) == -1 ||
	    sd_bus_get_property_string(bus, sd1, job,
	    "org.freedesktop.systemd1.Job", "JobType", &e, &type) < 0)
		goto out;
	snprintf(buf, len, "%s", type);
	r = 0;
out:
	free(type);
	sd_bus_message_unref(m);
	sd_bus_error_free(&e);
	return r;
}

int
systemd_restarting(char *job, size_t len)
{
	uint64_t deadline = systemd_now_usec() + EO_SD_BUS_USEC;
	sd_bus *bus = NULL;
	int r;

	snprintf(job, len, "none");
	if (!systemd_notifying() || sd_bus_open_system(&bus) < 0)
		return 0;
	r = systemd_bus_ready(bus, deadline) == 0 &&
	    systemd_job_type(bus, deadline, job, len) == 0 &&
	    ho_job_is_restart(job);
	/* Not flushed: only replies were wanted, and a flush to a bus
	   that does not read would wait without a bound. */
	sd_bus_close_unref(bus);
	return r;
}
