/*
 * The server: the main thread's event loop, the listening sockets, the
 * workers.  It applies a configuration at start and on SIGHUP (keeping
 * unchanged sockets open across the swap), accepts connections and hands
 * them to workers, enforces the global limits, talks to systemd, and on
 * SIGTERM/SIGINT stops accepting, lets connections finish within the
 * grace time and returns.
 */
#ifndef EO_SERVER_H
#define EO_SERVER_H

#include <stddef.h>

struct cfg;
struct server;

/*
 * Binds (or takes from systemd) every listener of cfg, starts the
 * workers.  Takes over the caller's reference to cfg.  debug keeps the
 * log level at debug across reloads (-d).  On failure returns NULL, err
 * says why and *exit_code is 78 (the configuration does not match what
 * systemd passed) or 1 (anything else).
 */
struct server *server_start(struct cfg *cfg, int debug, char *err,
	    size_t errlen, int *exit_code);
/* Runs until stopped by a signal; then frees everything. */
void	server_run(struct server *srv);

/* The command line a restart in place (SIGUSR2) execs again, and the
   file it runs: the one argv[0] names at the time (self_exe.h). */
void	restart_set_argv(char **argv);
/*
 * First thing in main(): after a restart in place, moves the inherited
 * descriptors to 3.. and sets LISTEN_FDS and LISTEN_PID, as systemd
 * would have.  -1 if the list the old process left is malformed.
 */
int	restart_arrange_fds(void);

#endif
