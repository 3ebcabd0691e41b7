/*
 * systemd integration: see include/systemd.h.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "listener.h"
#include "systemd.h"

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

/* A name of sd that is no enabled listener, or a listener without one. */
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
			    "passed a socket named \"%s\" but %s has no %s "
			    "listener of that name (FileDescriptorName= must "
			    "be a listener's name)", sd[i].name, cfg->path,
			    lc == NULL ? "" : "enabled");
			return -1;
		}
	}
	for (j = 0; j < cfg->nlisteners; j++) {
		const struct cfg_listener *lc = &cfg->listeners[j];

		for (i = 0; i < n; i++)
			if (strcmp(sd[i].name, lc->name) == 0)
				break;
		if (lc->enabled && i == n) {
			snprintf(err, errlen, "socket activation: listener "
			    "\"%s\" has no socket from systemd: add a "
			    "ListenStream= (ListenDatagram= for UDP) with "
			    "FileDescriptorName=%s, or "
			    "disable the listener", lc->name, lc->name);
			return -1;
		}
	}
	return 0;
}

int
systemd_adopt(const struct cfg *cfg, struct systemd_socket **out,
    char *err, size_t errlen)
{
	struct systemd_socket *sd;
	int i, n = systemd_sockets(&sd, err, errlen);

	*out = NULL;
	if (n <= 0)
		return n;
	if (systemd_match(cfg, sd, n, err, errlen) == -1) {
		for (i = 0; i < n; i++)
			close(sd[i].fd);
		free(sd);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct cfg_addr *a = &sd[i].addr;
		int fl = fcntl(sd[i].fd, F_GETFL);

		a->len = sizeof(a->ss);
		if (getsockname(sd[i].fd, (struct sockaddr *)&a->ss, &a->len) ==
		    -1)
			a->len = 0;
		peer_format((struct sockaddr *)&a->ss, a->text, sizeof(a->text));
		/* libevent's accept loop needs a non-blocking socket. */
		fcntl(sd[i].fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(sd[i].fd, F_SETFD, FD_CLOEXEC);
	}
	*out = sd;
	return n;
}
