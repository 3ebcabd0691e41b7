/*
 * The integration harness: the real echo-oracled binary, on loopback,
 * driven over real sockets.
 *
 * A daemon under test gets its own folder (config, log) and its own
 * NOTIFY_SOCKET, so the harness waits for READY=1 instead of sleeping,
 * and sees reloads finish.  Ports are picked free below the kernel's
 * ephemeral range, so no client connection can take them meanwhile.
 * The daemon dies with the test process (PR_SET_PDEATHSIG), whatever
 * the test does.
 *
 * EO_WRAPPER (say "valgrind --leak-check=full --error-exitcode=99")
 * runs the daemon under a tool; EO_TIMEOUT_SCALE stretches every wait.
 *
 * The daemon runs as it is deployed: without privileges.  Run by root
 * (as CI is), the harness starts it as nobody (65534), no supplementary
 * group, every capability dropped from the bounding set, as
 * `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
 * --bounding-set=-all` would; eo_run() does the same.  Run by another
 * user, it runs as that user.  The kernel treats the two apart (Linux
 * refuses SO_ATTACH_FILTER on TCP without CAP_NET_ADMIN, for one), so
 * a case passes as root and fails as the unit's user if it may.
 *
 * A case that needs root asks for it: eod_opts.root = 1, with a comment
 * saying why (a port below 1024 bound by the daemon itself), and skips
 * itself when eo_root() says the tests are not root.  A test's own
 * sockets are the test's: sending from a reserved port needs the test to
 * be root, not the daemon.  Files
 * the daemon reads must be readable by others (the harness's folder
 * and config are); a test that writes one with mode 0600 (a key, say)
 * makes it readable with eo_share(), one the daemon writes its own with
 * eo_give().  The binary itself may sit where nobody cannot reach it (a
 * clone under /root, mode 0700): eo_binary() then runs a copy of it from
 * a folder of its own under /tmp.
 */
#ifndef EO_HARNESS_H
#define EO_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct eod {
	pid_t		pid;
	char		dir[64];	/* its folder */
	char		conf[96];	/* its config file */
	char		log[96];	/* its stderr */
	char		notify[96];	/* its NOTIFY_SOCKET */
	int		notify_fd;
	pid_t		notify_pid;	/* sender of the last message
					   eod_wait_notify() matched */
	int		status;		/* from waitpid, once it has ended */
	int		ended;
};

/* Extra ways to start a daemon. */
struct eod_opts {
	long		nofile;		/* RLIMIT_NOFILE; 0: inherited */
	const char	*args;		/* extra arguments, space-separated */
	int		expect_fail;	/* it should exit, not get ready */
	int		no_wrapper;	/* not under EO_WRAPPER */
	int		journal;	/* JOURNAL_STREAM names its stderr */
	long		watchdog_usec;	/* WATCHDOG_USEC; 0: none */
	/* Socket activation as systemd does it: these listening sockets
	   become fds 3.., LISTEN_FDNAMES is names (':'-separated). */
	const int	*listen_fds;
	int		nlisten;
	const char	*listen_names;
	/* Another path to run the daemon from (a copy); NULL: the built
	   one. */
	const char	*binary;
	/* Runs as root, with every capability: only a case that needs it
	   (see above). */
	int		root;
};

/* Whether a case can have root (eod_opts.root): the tests run as root. */
int	eo_root(void);
/* Makes path (a file a test wrote for the daemon) readable by it. */
void	eo_share(const char *path);
/* Makes path the daemon's user's own, for a file the daemon writes. */
void	eo_give(const char *path);
/*
 * The daemon's binary as the unprivileged user can run it: EO_BINARY, or
 * (root only, when that user cannot reach EO_BINARY) a copy made once per
 * test process in a folder of its own, removed at exit.
 */
const char *eo_binary(void);

/* A listening socket on host:port, for socket activation tests. */
int	eo_listen(const char *host, int port);

/* Milliseconds, scaled by EO_TIMEOUT_SCALE. */
int	eo_ms(int ms);
/* A memory bound, scaled for a sanitizer build of the daemon. */
long	eo_mem(long kib);
/* A port free on 127.0.0.1 and ::1. */
int	eo_port(void);

/*
 * Writes the config (printf-style) and starts the daemon on it; returns
 * once it has sent READY=1 (the test fails if it does not in time).
 */
struct eod *eod_start(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
struct eod *eod_start_opts(const struct eod_opts *o, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Rewrites the config file. */
void	eod_write_conf(struct eod *d, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* SIGHUP, then waits for READY=1; 0 if it reloaded, 1 if it refused. */
int	eod_reload(struct eod *d);
/* Waits for a notify datagram containing what; 0 or -1 on timeout. */
int	eod_wait_notify(struct eod *d, const char *what, int ms);
/* From now on, notify_pid is the sender of what eod_wait_notify()
   matched (SO_PASSCRED: the kernel's word); 0 until then. */
void	eod_notify_pids(struct eod *d);
/* Sends sig, without waiting for anything. */
void	eod_signal(struct eod *d, int sig);
/* Whether it is still running (it has not exited). */
int	eod_running(struct eod *d);
/* Sends sig and waits for the exit; returns the exit code, or -1
   (killed or timed out). */
int	eod_stop_sig(struct eod *d, int sig, int ms);
int	eod_stop(struct eod *d);
/* Waits for the daemon to exit by itself; exit code or -1. */
int	eod_wait_exit(struct eod *d, int ms);
/* Removes the folder (the daemon must have ended). */
void	eod_free(struct eod *d);

/* How many lines of the log contain needle; whether one does. */
int	eod_log_count(struct eod *d, const char *needle);
int	eod_log_has(struct eod *d, const char *needle);
/* Waits until it does; 0, or -1 on timeout. */
int	eod_log_wait(struct eod *d, const char *needle, int ms);
void	eod_log_dump(struct eod *d);
/* Resident memory in KiB, open descriptors, CPU time used (ms). */
long	eod_rss_kb(struct eod *d);
int	eod_nfds(struct eod *d);
/* The daemon's TCP sockets listening on IPv4 port (socket inodes, found
   in /proc/net/tcp and among its descriptors), in ino[0..max), sorted;
   how many, or -1. */
int	eod_listening(struct eod *d, int port, unsigned long *ino, int max);
long	eod_cpu_ms(struct eod *d);
/* Raises this process's descriptor limit to its hard limit. */
void	eo_raise_nofile(void);

/* Runs the binary with args (without privileges, as eod_start); its exit
   code, stdout+stderr in out. */
int	eo_run(const char *args, char *out, size_t outlen);

/* A connected TCP socket to host:port (blocking), or -1. */
int	tcp_connect(const char *host, int port);
/* The same from the local address src ("127.0.0.2"), or -1. */
int	tcp_connect_from(const char *src, const char *host, int port);
/* The same, failing the test on error. */
int	tcp_open(const char *host, int port);
/* The same, with SO_RCVBUF set to rcvbuf before connecting. */
int	tcp_open_rcvbuf(const char *host, int port, int rcvbuf);
int	send_all(int fd, const void *buf, size_t len);
/* Reads until len bytes, EOF or timeout; the bytes read. */
size_t	recv_n(int fd, void *buf, size_t len, int ms);
/* One recv(2) once readable: the bytes read; 0 on EOF, error or
   timeout. */
size_t	recv_some(int fd, void *buf, size_t len, int ms);
/* Reads until EOF (or timeout, or cap); the bytes read; *eof says how
   it ended: 1 EOF, 0 timeout or cap, -1 error such as a reset. */
size_t	recv_all(int fd, void *buf, size_t cap, int ms, int *eof);
/* Sends msg and checks that exactly it comes back (the test fails else). */
void	eo_expect_echo(int fd, const char *msg);
/* Waits for EOF, discarding input: 1 EOF, 0 timeout, -1 reset. */
int	wait_eof(int fd, int ms);
/* Whether fd's peer is still there (no EOF, no reset) after ms. */
int	still_open(int fd, int ms);

#endif
