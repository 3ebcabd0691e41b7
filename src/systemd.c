/*
 * systemd integration: see include/systemd.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

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
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "socket activation: fd %d (%s) "
			    "is not a listening TCP socket: use ListenStream=",
			    fd, (*out)[i].name);
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
