/*
 * SIGHUP and SIGUSR2's first step: the new file checked by a spawned
 * `echo-oracled -t`, then handed to srv->checked (server.c loads and
 * applies it: it orders the lifecycle), or the old configuration kept
 * with the reasons logged.
 *
 * Threads: main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "guard.h"
#include "listener.h"
#include "log.h"
#include "protocol.h"
#include "self_exe.h"
#include "server_internal.h"
#include "systemd.h"
#include "worker.h"

/* ---- SIGHUP ------------------------------------------------------- */

/*
 * libconfig can exit() the process (an @include it cannot read) or
 * block in open() for ever (a FIFO), and a huge file takes long to
 * check.  So a reload is first checked by `echo-oracled -t`, spawned
 * from our own binary while this process keeps accepting; only a file
 * it found valid is loaded here.  Spawned, not forked: a forked child
 * of this threaded process would run libconfig, malloc and stdio with
 * locks another thread may have held, and with our signal handlers,
 * which write to the event loop's socket shared with us.  -t exits 0
 * (valid) or EX_CONFIG, its messages one a line on stderr.
 */
#define EO_CHECK_SECONDS	10
#define EO_CHECK_OUT_MAX	(256 * 1024)	/* messages kept, at most */

void
reload_failed(struct server *srv, const char *why)
{
	char status[512];

	if (srv->check_restart) {
		srv->check_restart = 0;
		log_warnx("restart refused (%s): still serving as before",
		    why);
		return;
	}
	log_warnx("reload failed (%s): still running the previous "
	    "configuration of %s", why, srv->cfg->path);
	srv->reloads[0]++;
	/* Until a good reload, STATUS= says so first. */
	snprintf(srv->reload_failure, sizeof(srv->reload_failure), "%s",
	    why);
	stats_status_text(srv, status, sizeof(status));
	systemd_ready(status);
}

/* Ends the check: kills the child if need be, reaps it, frees. */
static int
reload_check_end(struct server *srv, int kill_it)
{
	int status = 0;

	if (kill_it)
		kill(srv->check_pid, SIGKILL);
	while (waitpid(srv->check_pid, &status, 0) == -1 && errno == EINTR)
		;
	event_free(srv->ev_check);
	event_free(srv->ev_check_late);
	srv->ev_check = srv->ev_check_late = NULL;
	close(srv->check_fd);
	srv->check_fd = -1;
	srv->check_pid = 0;
	return status;
}

/*
 * Logs the check's lines; returns how many mistakes they tell of: one
 * a line, and the N of the "N more errors not shown" line.
 */
static size_t
reload_log_lines(struct server *srv)
{
	char *line, *next, *more;
	size_t n = 0;

	srv->check_out[srv->check_len] = '\0';
	for (line = srv->check_out; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		else
			next = line + strlen(line);
		/* -t under systemd marks its lines for the journal. */
		if (strncmp(line, "<3>", 3) == 0)
			line += 3;
		if (*line == '\0')
			continue;
		log_err("%s", line);
		if ((more = strstr(line, " more error")) != NULL &&
		    strstr(more, " not shown") != NULL) {
			while (more > line && more[-1] >= '0' &&
			    more[-1] <= '9')
				more--;
			n += (size_t)strtoul(more, NULL, 10);
		} else
			n++;
	}
	return n;
}

/* The check is done: its verdict, or how it ended. */
static void
reload_verdict(struct server *srv, int status)
{
	char why[128];
	size_t n;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		srv->checked(srv);	/* SIGUSR2's: then the restart */
		return;
	}
	n = reload_log_lines(srv);
	if (WIFEXITED(status) && WEXITSTATUS(status) == EX_CONFIG)
		snprintf(why, sizeof(why), "%zu error%s, see the log", n,
		    n == 1 ? "" : "s");
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "the check was killed by signal "
		    "%d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(why, sizeof(why), "the check exited with status %d",
		    WEXITSTATUS(status));
	reload_failed(srv, why);
}

/*
 * A SIGHUP came while a check ran: the file may have been corrected
 * since that check read it, so check it again.  A SIGUSR2 that came
 * during a reload's check restarts now; its own check reads the file
 * afresh, which serves a SIGHUP as well.
 */
static void
reload_again(struct server *srv)
{
	if (srv->restart_again) {
		srv->restart_again = 0;
		srv->check_again = 0;
		log_info("restarting, for the SIGUSR2 that came during the "
		    "check");
		reload_restart(srv);
		return;
	}
	if (!srv->check_again)
		return;
	srv->check_again = 0;
	log_info("checking again, for the SIGHUP that came during the check");
	reload_run(srv);
}

static void
reload_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	char buf[4096];
	ssize_t n;
	size_t room;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		room = EO_CHECK_OUT_MAX - srv->check_len;
		if ((size_t)n > room)
			n = (ssize_t)room;	/* the rest is dropped */
		memcpy(srv->check_out + srv->check_len, buf, (size_t)n);
		srv->check_len += (size_t)n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	reload_verdict(srv, reload_check_end(srv, 0));
	reload_again(srv);
}

static void
reload_latecb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	char why[128];

	(void)fd;
	(void)what;
	reload_check_end(srv, 1);
	snprintf(why, sizeof(why), "the check did not finish in %d s, "
	    "killed", EO_CHECK_SECONDS);
	reload_failed(srv, why);
	reload_again(srv);
}

/*
 * `echo-oracled -t -c PATH`, its stdout and stderr into fd; every other
 * descriptor of ours is close-on-exec.  Default signal handling and
 * an empty mask: ours are libevent's.
 */
static int
reload_spawn(struct server *srv, int fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t none, all;
	char *argv[] = { "echo-oracled", "-t", "-c", srv->cfg->path, NULL };
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		return r;
	if ((r = posix_spawnattr_init(&sa)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return r;
	}
	if ((r = posix_spawn_file_actions_adddup2(&fa, fd, 1)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&fa, fd, 2)) == 0 &&
	    (r = posix_spawnattr_setsigmask(&sa, &none)) == 0 &&
	    (r = posix_spawnattr_setsigdefault(&sa, &all)) == 0 &&
	    (r = posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF)) == 0)
		r = posix_spawn(&srv->check_pid, self_exe_path(), &fa, &sa, argv,
		    environ);
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		srv->check_pid = 0;
	return r;
}

/* The check, its pipe, and the events that watch them. */
static int
reload_check_start(struct server *srv)
{
	struct timeval late = { EO_CHECK_SECONDS, 0 };
	int fds[2], r;

	if (srv->check_out == NULL &&
	    (srv->check_out = malloc(EO_CHECK_OUT_MAX + 1)) == NULL)
		return -1;
	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	r = reload_spawn(srv, fds[1]);
	close(fds[1]);
	if (r != 0) {
		close(fds[0]);
		errno = r;
		return -1;
	}
	srv->check_fd = fds[0];
	srv->check_len = 0;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	srv->ev_check = event_new(srv->base, fds[0], EV_READ | EV_PERSIST,
	    reload_readcb, srv);
	srv->ev_check_late = evtimer_new(srv->base, reload_latecb, srv);
	if (srv->ev_check == NULL || srv->ev_check_late == NULL ||
	    event_add(srv->ev_check, NULL) == -1 ||
	    event_add(srv->ev_check_late, &late) == -1) {
		reload_cancel(srv);
		return -1;
	}
	return 0;
}

void
reload_run(struct server *srv)
{
	if (srv->stopping)
		return;
	if (srv->check_pid != 0) {
		if (!srv->check_again)
			log_notice("SIGHUP while the previous one is being "
			    "checked: will check again once it ends");
		srv->check_again = 1;
		return;
	}
	systemd_reloading();
	log_info("reloading %s", srv->cfg->path);
	if (reload_check_start(srv) == -1) {
		log_warn("cannot run %s -t", self_exe_path());
		reload_failed(srv, "cannot start checking the file");
	}
}

/*
 * SIGUSR2: the same check, on the running configuration's file, then
 * the restart.  One check at a time: a restart asked during a reload's
 * check follows it, as a SIGHUP during a check is checked after it.
 * Not lost: a SIGHUP sent just after a SIGUSR2 may be handled first
 * (libevent runs signals read together by number, SIGHUP's first).
 */
void
reload_restart(struct server *srv)
{
	if (srv->stopping)
		return;
	if (srv->check_pid != 0 && srv->check_restart) {
		log_notice("SIGUSR2 while the restart's check runs: one "
		    "restart");
		return;
	}
	if (srv->check_pid != 0) {
		if (!srv->restart_again)
			log_notice("SIGUSR2 while a configuration is being "
			    "checked: the restart follows once it ends");
		srv->restart_again = 1;
		return;
	}
	srv->check_restart = 1;
	log_info("restart in place asked: checking %s with %s -t",
	    srv->cfg->path, self_exe_path());
	if (reload_check_start(srv) == -1) {
		log_warn("cannot run %s -t", self_exe_path());
		reload_failed(srv, "cannot start checking the file");
	}
}

void
reload_cancel(struct server *srv)
{
	srv->check_again = 0;
	srv->restart_again = 0;
	srv->check_restart = 0;
	if (srv->check_pid == 0)
		return;
	reload_check_end(srv, 1);
}
