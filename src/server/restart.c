/*
 * Restarts that keep every connection: the old process writes its
 * connections out (handover.h), here, and the new one takes them back
 * (restart_import.c).
 *
 * SIGUSR2, without systemd: once `-t` has passed (reload.c runs it as
 * for SIGHUP), accepting stops (the listening sockets stay open, so
 * clients queue in their backlog), each worker writes out its own
 * connections and stays frozen, the state goes into a sealed memfd,
 * and the process execs whatever file the path it was started by names
 * now (self_exe_find(): an upgrade may have moved a link), with its
 * own argv: the same PID, so systemd and pid files keep tracking it.
 *
 * The state and the connections travel in flight in one socket's queue
 * (restart_carrier()), however many there are; that socket and the
 * listening sockets travel the systemd way, as LISTEN_FDS from 3 on,
 * but it is the new process that moves them there
 * (restart_arrange_fds(), first thing in main()), from the numbers the
 * old one lists in EO_HANDOVER_FDS.  Moving them before exec would
 * overwrite whatever holds 3.. now (the event loop's own descriptors):
 * an exec that then failed could not go back to serving.  This way a
 * failed exec only has to close the carrier, set close-on-exec again
 * and thaw the workers.
 *
 * Under systemd, `systemctl restart` sends SIGTERM as a stop does;
 * server.c asks systemd which it is (systemd_restarting()).  For a
 * restart the same frozen export goes to systemd's fd store instead of
 * an exec, and the process exits without draining; systemd passes it
 * all to the next process, which takes it back here as after SIGUSR2.
 * Our own listening sockets live in the store from the start, so that
 * a crash does not refuse clients; a real stop takes them out first.
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

static char **restart_argv;

void
restart_set_argv(char **argv)
{
	restart_argv = argv;
	self_exe_find(argv[0]);
}

/* ---- the old process: freeze, write out, exec --------------------- */

static void
restart_thaw(struct server *srv, struct worker_freeze *fz)
{
	unsigned i;

	for (i = 0; i < srv->nworkers; i++) {
		sem_post(&fz[i].thaw);
		while (sem_wait(&fz[i].done) == -1)
			;
		ho_buf_free(&fz[i].buf);
		free(fz[i].fds);
		sem_destroy(&fz[i].done);
		sem_destroy(&fz[i].thaw);
	}
	free(fz);
}

/* Every worker frozen, its connections written out; NULL: no memory. */
static struct worker_freeze *
restart_freeze(struct server *srv)
{
	struct worker_freeze *fz = calloc(srv->nworkers, sizeof(*fz));
	unsigned i, closed = 0;

	if (fz == NULL)
		return NULL;
	for (i = 0; i < srv->nworkers; i++) {
		sem_init(&fz[i].done, 0, 0);
		sem_init(&fz[i].thaw, 0, 0);
		worker_freeze(srv->workers[i], &fz[i]);
	}
	for (i = 0; i < srv->nworkers; i++) {
		while (sem_wait(&fz[i].done) == -1)
			;
		closed += fz[i].nclosed;
	}
	if (closed > 0)
		log_warnx("restart: %u connection%s closed: TLS or http "
		    "state cannot be carried", closed, closed == 1 ? "" : "s");
	return fz;
}

/* The workers' records behind one header, in a sealed memfd; or -1. */
static int
restart_state(struct server *srv, struct worker_freeze *fz)
{
	struct ho_buf b;
	size_t n = 0, off, len;
	unsigned i;
	ssize_t w;
	int fd;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < srv->nworkers; i++) {
		if (fz[i].failed)
			return -1;
		n += fz[i].nfds;
	}
	ho_put_header(&b, (uint32_t)n);
	for (i = 0; i < srv->nworkers; i++)
		ho_buf_add(&b, fz[i].buf.data, fz[i].buf.len);
	if (b.failed || (fd = memfd_create(EO_HO_FD_STATE, MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1) {
		ho_buf_free(&b);
		return -1;
	}
	len = b.len;
	for (off = 0; off < len; off += (size_t)w)
		if ((w = write(fd, b.data + off, len - off)) <= 0)
			break;
	ho_buf_free(&b);
	/* Sealed: the new process reads exactly what was written. */
	if (off < len || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One more descriptor to hand over: its number and name listed. */
static void
restart_list_one(struct ho_buf *fds, struct ho_buf *names, int fd,
    const char *prefix, const char *name)
{
	char num[16];

	snprintf(num, sizeof(num), "%s%d", fds->len ? "," : "", fd);
	ho_buf_add(fds, num, strlen(num));
	if (names->len > 0)
		ho_buf_add(names, ":", 1);
	ho_buf_add(names, prefix, strlen(prefix));
	ho_buf_add(names, name, strlen(name));
}

/*
 * What goes before a listening socket's name: none for systemd's, so
 * that the next process matches it with its listener as at start; but
 * one that a reload parked names no enabled listener, and the next
 * process would refuse the name and exit: it goes as parked.
 */
static const char *
restart_sock_prefix(const struct listen_sock *ls)
{
	if (ls->sd_name != NULL)
		return ls->lis == NULL ? EO_HO_FD_PARKED : "";
	return ls->dgram ? EO_HO_FD_UDP : EO_HO_FD_TCP;
}

/*
 * Lists every descriptor to hand over: the listening sockets, systemd's
 * under their own name, and the carrier, whose queue holds the state
 * and the connections: how many connections there are must not grow
 * the environment (LISTEN_FDNAMES past 128 KiB, MAX_ARG_STRLEN, fails
 * the exec with E2BIG).  on sets close-on-exec off, off sets it back.
 */
static int
restart_list(struct server *srv, int carrier, int on, struct ho_buf *fds,
    struct ho_buf *names)
{
	size_t i;
	unsigned k;

	for (i = 0; i < srv->nsocks; i++) {
		struct listen_sock *ls = srv->socks[i];

		if (ls->fd == -1)
			continue;
		fcntl(ls->fd, F_SETFD, on ? 0 : FD_CLOEXEC);
		restart_list_one(fds, names, ls->fd, restart_sock_prefix(ls),
		    ls->sd_name != NULL ? ls->sd_name : listen_sock_owner(ls));
		for (k = 0; k < ls->nextra; k++) {
			fcntl(ls->extra[k], F_SETFD, on ? 0 : FD_CLOEXEC);
			restart_list_one(fds, names, ls->extra[k],
			    EO_HO_FD_EXTRA, listen_sock_owner(ls));
		}
	}
	fcntl(carrier, F_SETFD, on ? 0 : FD_CLOEXEC);
	restart_list_one(fds, names, carrier, "", EO_HO_FD_CARRIER);
	ho_buf_add(fds, "", 1);
	ho_buf_add(names, "", 1);
	return fds->failed || names->failed ? -1 : 0;
}

/*
 * The state and fz's connections, in flight: sent over a socketpair in
 * SCM_RIGHTS messages, they are kept alive by the kernel in the
 * receiving end's queue, whose descriptor is returned (or -1).  One
 * descriptor carries them all, through an exec's environment
 * (EO_HANDOVER_FDS) or systemd's fd store: systemd 252 compares every
 * descriptor it is given with each one it holds, so storing n
 * connections one by one costs n^2 (measured under tests/systemd: 0.9
 * s for 1,100 connections, 4.1 s for 2,300; some 80 s for 10,000).
 * The next process reads them back (systemd.c).
 */
static int
restart_carrier(struct server *srv, struct worker_freeze *fz)
{
	unsigned i;
	int sv[2], state, big = 1 << 30;

	if ((state = restart_state(srv, fz)) == -1)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		close(state);
		return -1;
	}
	/* Each message of 253 descriptors costs about 750 bytes of the
	   send buffer: the default (208 KiB) holds some 70,000.  As much
	   as the kernel allows (net.core.wmem_max). */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (ho_send_fds(sv[0], EO_HO_TAG_STATE, &state, 1) == -1)
		goto fail;
	for (i = 0; i < srv->nworkers; i++)
		if (ho_send_fds(sv[0], EO_HO_TAG_CONN, fz[i].fds,
		    fz[i].nfds) == -1)
			goto fail;
	close(state);
	close(sv[0]);
	return sv[1];
fail:
	close(state);
	close(sv[0]);
	close(sv[1]);
	return -1;
}

/* Which file the exec is about to run: the path may be a link. */
static void
restart_log_exe(size_t n)
{
	char *file = realpath(self_exe_path(), NULL);

	log_notice("restart: handing %zu connection%s over to a new %s%s%s%s",
	    n, n == 1 ? "" : "s", self_exe_path(), file != NULL &&
	    strcmp(file, self_exe_path()) != 0 ? " (the file " : "",
	    file != NULL && strcmp(file, self_exe_path()) != 0 ? file : "",
	    file != NULL && strcmp(file, self_exe_path()) != 0 ? ")" : "");
	free(file);
}

/* Execs with fz's connections; returns only if that failed. */
static void
restart_handover(struct server *srv, struct worker_freeze *fz)
{
	struct ho_buf fds, names;
	sigset_t mask;
	size_t n = 0;
	unsigned i;
	int carrier;

	memset(&fds, 0, sizeof(fds));
	memset(&names, 0, sizeof(names));
	if ((carrier = restart_carrier(srv, fz)) == -1) {
		log_warn("restart: cannot put the state and the connections "
		    "in flight");
		return;
	}
	for (i = 0; i < srv->nworkers; i++)
		n += fz[i].nfds;
	if (restart_list(srv, carrier, 1, &fds, &names) == 0) {
		restart_log_exe(n);
		self_exe_carry(1);
		setenv(EO_HANDOVER_ENV, (char *)fds.data, 1);
		setenv("LISTEN_FDNAMES", (char *)names.data, 1);
		/* Blocked across the exec, as the mask is: one that came
		   before the new process handles it (a second SIGUSR2, a
		   SIGHUP) would kill it with every connection, by its
		   default action.  Pending, it is delivered there. */
		signals_mask(SIG_BLOCK, &mask);
		execv(self_exe_path(), restart_argv);
		log_warn("restart: cannot execute %s", self_exe_path());
		pthread_sigmask(SIG_SETMASK, &mask, NULL);
		self_exe_carry(0);
		unsetenv(EO_HANDOVER_ENV);
		unsetenv("LISTEN_FDNAMES");
	} else
		log_warnx("restart: out of memory");
	restart_list(srv, carrier, 0, &fds, &names);
	ho_buf_free(&fds);
	ho_buf_free(&names);
	/* The copies in flight go with it; the workers keep theirs. */
	close(carrier);
}

void
restart_exec(struct server *srv)
{
	struct worker_freeze *fz;

	if (srv->stopping || restart_argv == NULL)
		return;
	/* The sockets stay open: clients wait in their queues. */
	acceptor_set_accepting(srv, 0);
	if ((fz = restart_freeze(srv)) == NULL)
		log_warnx("restart: out of memory");
	else {
		restart_handover(srv, fz);
		restart_thaw(srv, fz);
	}
	log_warnx("restart failed: still serving, the configuration "
	    "applied as by a reload");
	if (!srv->paused)
		acceptor_set_accepting(srv, 1);
}

/* ---- under systemd: the fd store ---------------------------------- */

void
restart_store_forget(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->nstored; i++) {
		systemd_store_remove(srv->stored[i]);
		free(srv->stored[i]);
	}
	free(srv->stored);
	srv->stored = NULL;
	srv->nstored = 0;
}

/* Remembers name as in systemd's fd store, once. */
int
restart_stored_name(struct server *srv, const char *name)
{
	char **v;
	size_t i;

	for (i = 0; i < srv->nstored; i++)
		if (strcmp(srv->stored[i], name) == 0)
			return 0;
	if ((v = reallocarray(srv->stored, srv->nstored + 1,
	    sizeof(*v))) == NULL)
		return -1;
	srv->stored = v;
	if ((v[srv->nstored] = strdup(name)) == NULL)
		return -1;
	srv->nstored++;
	return 0;
}

/* Listener l's own sockets into the store (extra: those beside them in
   their groups, acceptor.c, as eo-x-NAME); the name kept to remove. */
static void
restart_store_one(struct server *srv, struct listener *l, int *fds,
    int extra)
{
	const struct cfg_listener *lc = listener_config(l);
	char name[EO_NAME_MAX + 8];
	size_t i, n = 0;
	unsigned k;

	for (i = 0; i < srv->nsocks; i++) {
		const struct listen_sock *ls = srv->socks[i];

		if (ls->lis != l || ls->sd_name != NULL || ls->fd == -1)
			continue;
		if (!extra)
			fds[n++] = ls->fd;
		for (k = 0; extra && k < ls->nextra; k++)
			fds[n++] = ls->extra[k];
	}
	if (n == 0)
		return;
	snprintf(name, sizeof(name), "%s%s", extra ? EO_HO_FD_EXTRA :
	    lc->udp ? EO_HO_FD_UDP : EO_HO_FD_TCP, lc->name);
	if (restart_stored_name(srv, name) == -1)
		return;		/* could not be taken out later */
	if (systemd_store(name, fds, n) == -1)
		log_warnx("listener %s: systemd did not take its sockets "
		    "into the fd store: clients are refused while the "
		    "daemon restarts after a crash", lc->name);
}

void
restart_store_listeners(struct server *srv)
{
	size_t i, n = 1;
	int *fds;

	if (!systemd_notifying())
		return;
	/* Removed and stored again: a moved socket must not stay. */
	restart_store_forget(srv);
	for (i = 0; i < srv->nsocks; i++)
		n += 1 + srv->socks[i]->nextra;
	if ((fds = calloc(n, sizeof(*fds))) == NULL)
		return;
	for (i = 0; i < srv->nlis; i++) {
		restart_store_one(srv, srv->lis[i], fds, 0);
		restart_store_one(srv, srv->lis[i], fds, 1);
	}
	free(fds);
}

/* The carrier into the store (FDPOLL=0: its peer is closed, which
   systemd would otherwise take for a hangup and drop it); or -1. */
static int
restart_store_carried(struct server *srv, struct worker_freeze *fz)
{
	int carrier = restart_carrier(srv, fz);

	if (carrier == -1)
		return -1;
	if (systemd_store_nopoll(EO_HO_FD_CARRIER, carrier) == -1) {
		close(carrier);
		return -1;
	}
	close(carrier);
	return 0;
}

/*
 * Stored one by one, each connection adds "eo-conn:" to the next
 * process's LISTEN_FDNAMES: past 128 KiB (MAX_ARG_STRLEN) systemd could
 * not start it (E2BIG).  At most this many, then; the rest of the room
 * is the sockets' names.
 */
#define EO_HO_STORE_ONE_MAX	(96 * 1024 / sizeof(EO_HO_FD_CONN))

/*
 * Every worker's connections and the state into the store; or -1.  In
 * flight over one socket if the kernel takes them so, else one by one
 * (slow with many, but they get there) if their names leave the next
 * process an environment it can be started with.
 */
static int
restart_store_conns(struct server *srv, struct worker_freeze *fz)
{
	size_t n = 0;
	unsigned i;
	int state, e;

	if (restart_store_carried(srv, fz) == 0)
		return 0;
	e = errno;
	for (i = 0; i < srv->nworkers; i++)
		n += fz[i].nfds;
	if (n > EO_HO_STORE_ONE_MAX) {
		log_warnx("restart: cannot send the connections over a socket "
		    "(%s), and %zu stored one by one would be more names than "
		    "the next process can be started with", strerror(e), n);
		return -1;
	}
	log_warnx("restart: cannot send the connections over a socket "
	    "(%s): storing them one by one", strerror(e));
	if ((state = restart_state(srv, fz)) == -1)
		return -1;
	for (i = 0; i < srv->nworkers; i++)
		if (systemd_store(EO_HO_FD_CONN, fz[i].fds, fz[i].nfds) == -1)
			break;
	if (i < srv->nworkers || systemd_store(EO_HO_FD_STATE, &state,
	    1) == -1) {
		close(state);
		systemd_store_remove(EO_HO_FD_CONN);
		systemd_store_remove(EO_HO_FD_STATE);
		return -1;
	}
	close(state);
	return 0;
}

void
restart_to_store(struct server *srv)
{
	struct worker_freeze *fz;
	size_t i, n = 0;

	acceptor_set_accepting(srv, 0);
	if ((fz = restart_freeze(srv)) == NULL) {
		log_warnx("restart: out of memory: draining instead");
		return;
	}
	for (i = 0; i < srv->nworkers; i++)
		n += fz[i].nfds;
	if (restart_store_conns(srv, fz) == 0) {
		log_notice("restart: %zu connection%s and the state handed to "
		    "systemd's fd store; exiting without draining", n,
		    n == 1 ? "" : "s");
		systemd_stopping();
		/* systemd may see the exit before it has read the store's
		   messages, and would drop what it had not read: wait until
		   it has (bounded). */
		if (systemd_barrier() == -1)
			log_warnx("restart: systemd did not confirm the fd "
			    "store in time; exiting anyway");
		/* The workers stay frozen: nothing may touch a connection
		   now that the next process owns it. */
		_exit(0);
	}
	log_warnx("restart: systemd did not take the connections into its "
	    "fd store (FileDescriptorStoreMax=?): draining instead");
	restart_thaw(srv, fz);
	if (!srv->paused)
		acceptor_set_accepting(srv, 1);
}
