/*
 * systemd integration through libsystemd: readiness, reload and stop
 * notifications, status text, the watchdog, socket activation.  Every
 * call is a no-op when the daemon does not run under systemd (no
 * NOTIFY_SOCKET, no LISTEN_FDS).  Main thread only.
 */
#ifndef EO_SYSTEMD_H
#define EO_SYSTEMD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A listening socket systemd passed us, named by FileDescriptorName=. */
struct systemd_socket {
	int		fd;
	char		name[256];
	struct cfg_addr	addr;		/* filled by systemd_adopt() */
};

/* READY=1 with a status line. */
void	systemd_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=, for Type=notify-reload. */
void	systemd_reloading(void);
void	systemd_stopping(void);
void	systemd_status(const char *fmt, ...) EO_PRINTF(1, 2);

/* The watchdog period in microseconds, 0 if none is set. */
uint64_t systemd_watchdog_usec(void);
void	systemd_watchdog_ping(void);

/*
 * The sockets passed by socket activation (checked to be listening
 * stream sockets).  Returns how many (0: not socket-activated), or -1
 * with the reason in err.  *out is malloc'd.
 */
int	systemd_sockets(struct systemd_socket **out, char *err,
	    size_t errlen);

/*
 * What a previous process of ours handed over (handover.h): the state,
 * the connections, and its own listening sockets (named eo-l-NAME or
 * eo-u-NAME, with their address).  -1 where there is none.
 */
struct systemd_inherited {
	int			 state_fd;
	int			*conns;
	size_t			 nconns;
	struct systemd_socket	*ours;
	size_t			 nours;
};

/*
 * The same, checked against cfg: every name must be an enabled listener.
 * An enabled listener without a socket is bound by the daemon itself,
 * unless systemd_socket_only(): then it is an error.  The hand-over's
 * descriptors go to inh instead.  The sockets come non-blocking and
 * close-on-exec, with their address.  Returns how many of systemd's,
 * or -1 with the reason in err (nothing to free then).
 */
int	systemd_adopt(const struct cfg *cfg, struct systemd_socket **out,
	    struct systemd_inherited *inh, char *err, size_t errlen);
/*
 * Whether the socket-only drop-in is in place: the environment variable
 * EO_SOCKET_ONLY_ENV is set (not to "" or "0").  Then the daemon has no
 * network of its own and binds no listener itself.
 */
#define EO_SOCKET_ONLY_ENV	"ECHO_ORACLED_SOCKET_ONLY"
int	systemd_socket_only(void);
/* The error for listener name, which has no socket from systemd. */
void	systemd_socket_only_why(const char *name, char *err, size_t errlen);
/* Closes what is left in inh (-1: taken) and frees it. */
void	systemd_inherited_free(struct systemd_inherited *inh);

/* Whether systemd (or a harness) listens to our notifications. */
int	systemd_notifying(void);
/*
 * The fd store (FileDescriptorStoreMax=): keeps n descriptors under
 * name, in batches of SCM_MAX_FD; -1 if a message failed (0 without
 * systemd, as every call here).  systemd ignores a descriptor it
 * already holds.
 */
int	systemd_store(const char *name, const int *fds, size_t n);
/*
 * Keeps one descriptor under name with FDPOLL=0: systemd must not drop
 * it when it reports a hangup (a socket whose peer is closed).
 */
int	systemd_store_nopoll(const char *name, int fd);
/* Waits (5 s at most) until systemd has read every notification sent
   so far; -1 if it did not say so in time. */
int	systemd_barrier(void);
/* Drops every stored descriptor named name. */
void	systemd_store_remove(const char *name);
/*
 * At SIGTERM: whether systemd stops us to restart us, so that the
 * connections go to the fd store rather than drain.  Asked over D-Bus:
 * our unit (GetUnitByPID) has a job pending, and its JobType is a
 * restart (ho_job_is_restart()).  No NOTIFY_SOCKET, no bus, no job,
 * any error: a stop.  job says what was found, for the log.
 */
int	systemd_restarting(char *job, size_t len);

#endif
