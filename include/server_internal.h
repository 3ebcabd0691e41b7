/*
 * What the server's files share, and nothing else includes: the state
 * of the main thread (struct server) and of one listening socket
 * (struct listen_sock).  server.c runs the lifecycle and applies a
 * configuration with plan.c, acceptor.c accepts, reload.c checks a new
 * file, status.c pulls the counters and reports.  Where a file here
 * would call a sibling sideways, the one above sets a hook in struct
 * server (checked, take_http).  Main thread only.
 */
#ifndef EO_SERVER_INTERNAL_H
#define EO_SERVER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "config.h"
#include "fd_spare.h"
#include "signals.h"
#include "stats.h"

struct event;
struct event_base;
struct evconnlistener;
struct conn_handoff;
struct metrics;
struct guard;
struct listener;
struct udp_sock;
struct worker;

/* A worker's way into a listening socket: the descriptor it accepts
   from, ls->fd or one of ls->extra, its own (own 1) or shared. */
struct listen_tap {
	struct listen_sock	*ls;
	int			 fd;
	int			 own;
};

/* One listening socket, ours or systemd's. */
struct listen_sock {
	struct server		*srv;
	struct listener		*lis;		/* serving it; NULL: parked */
	struct evconnlistener	*evl;
	struct cfg_addr		 addr;
	int			 fd;
	int			 backlog;
	unsigned char		 planned;	/* in the plan being made */
	unsigned char		 fresh;		/* opened for that plan */
	unsigned char		 parked;	/* systemd's, SYNs dropped */
	unsigned char		 held;		/* how new clients are held
						   off: EO_HELD_*, acceptor.c */
	int			 held_backlog;	/* its backlog before a park
						   shrank it */
	char			*sd_name;	/* passed by systemd under
						   this name; NULL: ours */
	unsigned char		 dgram;		/* UDP: us and w, no evl */
	struct udp_sock		*us;		/* the worker's record */
	struct worker		*w;		/* ... the worker serving it */
	int			*extra;		/* ours, TCP, two workers or
						   more: one socket more on
						   addr per worker but the
						   first, in fd's SO_REUSEPORT
						   group (acceptor.c) */
	unsigned		 nextra;
	int			 steered;	/* fd's group has our steering
						   (listener_steer()) */
	struct listen_tap	*taps;		/* TCP: one per worker */
};

/* A run of refusals for one reason: logged when it starts and ends. */
struct burst {
	unsigned long		 seen;		/* counter at the last tick */
	unsigned long		 start;		/* counter when it began */
	time_t			 began;
	int			 active;
};

struct server {
	struct event_base	*base;
	struct cfg		*cfg;		/* the running generation */
	struct stats		 stats;
	int			 debug;		/* -d: log_level stays debug */

	struct worker		**workers;
	unsigned		 nworkers;
	unsigned		 rr;		/* where the next pick starts */
	pthread_mutex_t		 acc_mtx;	/* admission and the pick,
						   one client at a time
						   (acceptor.c) */

	struct listener		**lis;		/* enabled, by cfg order */
	size_t			 nlis;
	struct listen_sock	**socks;	/* all, parked included */
	size_t			 nsocks;

	struct event		*ev_sig[EO_NSIGNALS]; /* server.c's list */
	struct event		*ev_tick;	/* 1 s: bursts, status */
	struct event		*ev_resume;	/* after EMFILE */
	struct event		*ev_grace;	/* shutdown grace is over */
	struct event		*ev_done;	/* on done_fd */
	struct event		*ev_watchdog;
	struct event		*ev_check;	/* the reload check's pipe */
	struct event		*ev_check_late;	/* ... its time limit */
	pid_t			 check_pid;	/* checking a reload; 0: no */
	int			 check_fd;
	char			*check_out;	/* what it wrote so far */
	size_t			 check_len;
	int			 check_again;	/* SIGHUP during the check */
	int			 check_restart;	/* the check is SIGUSR2's */
	int			 restart_again;	/* SIGUSR2 during a reload's
						   check */
	void			(*checked)(struct server *srv); /* the check
						   passed: load and apply
						   (server.c) */
	char			**stored;	/* names in systemd's fd
						   store: our listeners' */
	size_t			 nstored;
	struct restart_linger	*lingering;	/* closing what a restart
						   could not carry */
	int			 done_fd;	/* workers: "drained" */
	unsigned		 ndrained;
	struct fd_spare		 spare;		/* given up at EMFILE */
	int			 stopping;	/* draining: not accepting */
	int			 unready;	/* a stop began (stop_delay
						   included): /readyz 503 */
	const char		*stop_why;	/* the signal's name */
	struct event		*ev_delay;	/* stop_delay is over */
	struct cfgwatch		*watch;		/* watch_config's watcher */
	struct cfg		*watch_cfg;	/* the config it watches (a
						   reference) */
	struct event		*ev_watch;	/* 1 s: follow srv->cfg */
	int			 paused;	/* accepting paused (EMFILE) */

	uint64_t		 watchdog_usec;
	unsigned long		*beats;		/* workers' last heartbeat */
	time_t			*beat_at;	/* when it last moved */

	struct metrics		*metrics;	/* metrics listeners' open
						   connections */
	int			(*take_http)(struct server *srv,
				    const struct conn_handoff *ho);
						/* serves an http listener's
						   connection on this thread:
						   metrics_take, set by
						   metrics_init(); -1: not
						   taken */
	time_t			 started;	/* wall clock */
	uint64_t		 reloads[2];	/* failed, succeeded */
	time_t			 reload_ok_at;	/* the last good config */

	unsigned		 status_conns;
	char			 reload_failure[200]; /* why the last reload
						   failed; "": it did not */
	struct burst		 bursts[EO_NREFUSALS + 1]; /* + evictions */
	/* Under stats.note_mtx: any accepting thread writes them. */
	char			 refused_by[EO_NREFUSALS][EO_NAME_MAX + 1];
	unsigned		 refused_limit[EO_NREFUSALS];
	struct guard		*guard;		/* the UDP listeners' */
	struct burst		 udp_bursts[EO_UDP_NDROPS];
	unsigned		 udp_rr;	/* the next UDP socket's worker */
};


/* acceptor.c: listening sockets and accepting from them. */
struct listen_sock *listen_sock_new(struct server *srv, int fd,
	    const struct cfg_addr *addr, int backlog, const char *sd_name,
	    char *err, size_t errlen);
struct listen_sock *listen_sock_open(struct server *srv,
	    const struct cfg_addr *addr, int backlog, char *err,
	    size_t errlen);
/* A UDP socket on addr, given to a worker (there must be one). */
struct listen_sock *listen_sock_open_udp(struct server *srv,
	    const struct cfg_addr *addr, char *err, size_t errlen);
void	listen_sock_free(struct listen_sock *ls);
/* Serves what is queued on these sockets of ours, then frees them. */
void	listen_sock_retire(struct listen_sock **v, size_t n);
/* Serves what is queued and closes, keeping ls to be reopened. */
void	listen_sock_close(struct listen_sock *ls);
/* Binds ls's address again after listen_sock_close(); -1: err says. */
int	listen_sock_reopen(struct listen_sock *ls, char *err,
	    size_t errlen);
/* ls's backlog, its extra sockets' too; 0 or -1 (errno). */
int	listen_sock_backlog(struct listen_sock *ls, int backlog);
/* A socket of ls's group handed over by a previous process (restart.c:
   EO_HO_FD_EXTRA), in the order they joined; -1: out of memory. */
int	listen_sock_adopt_extra(struct listen_sock *ls, int fd);
/* systemd's socket, no listener: its queue served, new SYNs dropped. */
void	listen_sock_park(struct listen_sock *ls);
/* Served again: SYNs let through. */
void	listen_sock_unpark(struct listen_sock *ls);
void	acceptor_set_accepting(struct server *srv, int on);
/* Lets ls's clients in: the workers accept them (the main thread for
   an http listener's, or with no worker). */
void	listen_sock_enable(struct listen_sock *ls);
/*
 * on: takes every worker's accept lock (main thread), so that no
 * worker accepts while the caller changes what admission reads (a
 * socket's listener, a listener's config, srv->cfg); 0: gives them back.
 */
void	acceptor_lock(struct server *srv, int on);
/* The EMFILE pause is over. */
void	acceptor_resumecb(int fd, short what, void *arg);

/* admission.c: the rules for one accepted client, on any accepting
   thread. */
struct conn_handoff;
struct sockaddr;
/* The listener name a socket is logged under. */
const char *listen_sock_owner(const struct listen_sock *ls);
/*
 * Every rule that decides, for client fd accepted from ls by self (NULL:
 * the main thread): 0, admitted (*ho made, *to its worker: self if own,
 * the worker accepted from a socket of its own, else the pick), or -1,
 * refused and counted.  Under srv->acc_mtx.
 */
int	acceptor_admit(struct listen_sock *ls, struct worker *self, int own,
	    int fd, const struct sockaddr *sa, struct conn_handoff *ho,
	    struct worker **to);
/* Counts an accepted (refused 0) or refused client, in self's slot. */
void	acceptor_count(struct server *srv, struct listen_sock *ls,
	    struct worker *self, int refused, enum stats_refusal why);
/* A client closed as soon as accepted, before it counted as open. */
void	acceptor_turn_away(struct server *srv, struct listen_sock *ls,
	    struct worker *self, int fd, enum stats_refusal why,
	    unsigned limit);
/* An admitted http (metrics) client, served on the main thread. */
void	acceptor_http(struct server *srv, struct listen_sock *ls,
	    const struct conn_handoff *ho);

/* plan.c: configurations applied at start and on SIGHUP. */
int	plan_apply(struct server *srv, struct cfg *cfg, char *err,
	    size_t errlen);
/* reload.c.  SIGHUP: checks the file in a child process, applies it if
   valid. */
void	reload_run(struct server *srv);
/* Stop: kills a check under way. */
void	reload_cancel(struct server *srv);
/* SIGUSR2: checks the file as reload_run() does, then restart_exec(). */
void	reload_restart(struct server *srv);
/* The reload (or the restart) is refused for why: logged, STATUS= says
   so, the running configuration stays. */
void	reload_failed(struct server *srv, const char *why);

/* restart.c, restart_import.c: restarts that carry every connection
   (handover.h). */
struct systemd_inherited;
/* Hands everything over to the binary again, execed in place; returns
   only if that failed, serving on as before. */
void	restart_exec(struct server *srv);
/* At start, after the first plan: takes back inh's connections. */
void	restart_import(struct server *srv, struct systemd_inherited *inh);
/* Closes at once the connections a restart could not carry that are
   still being closed cleanly (server_free()). */
void	restart_linger_end(struct server *srv);
/*
 * Under systemd, after each plan: our own listening sockets into the
 * fd store (eo-l-NAME, eo-u-NAME), so that after a crash systemd still
 * holds them and clients queue until we are back; those of listeners
 * that are gone taken out.
 */
void	restart_store_listeners(struct server *srv);
/* Remembers name as in the fd store, once; -1 if out of memory. */
int	restart_stored_name(struct server *srv, const char *name);
/* A real stop: our listening sockets out of the store, first. */
void	restart_store_forget(struct server *srv);
/*
 * SIGTERM for a restart (systemd_restarting()): every connection and
 * the state into the fd store, then exit 0 without draining.  Returns
 * only if that failed: the caller then stops as usual.
 */
void	restart_to_store(struct server *srv);

/* metrics.c: the Prometheus endpoint, main thread.  metrics_init()
   makes it srv->take_http, which the acceptor calls. */
int	metrics_init(struct server *srv);
/* Closes the open scrapes (counted as shutdown) and frees the rest. */
void	metrics_fini(struct server *srv);
/*
 * Serves ho, admitted and counted by the acceptor, on the main thread:
 * one request, EO_METRICS_TIMEOUT seconds at most.  Takes ho's socket
 * and counts, given back when it closes; -1 (out of memory): nothing
 * taken.
 */
int	metrics_take(struct server *srv, const struct conn_handoff *ho);

/* status.c: burst lines, STATUS=, the SIGUSR1 dump, the watchdog. */
void	stats_status_text(struct server *srv, char *buf, size_t len);
/* SIGUSR1: one line with every counter, per listener too. */
void	stats_dump(struct server *srv);
void	stats_status(struct server *srv, int force);
void	stats_tickcb(int fd, short what, void *arg);
void	stats_watchdogcb(int fd, short what, void *arg);
/*
 * The watchdog's rule (stats_beat_stuck()) over every worker: the
 * first stuck one, with the seconds it has not turned in *idle, or -1.
 */
int	stats_stuck_worker(struct server *srv, long long *idle);

#endif
