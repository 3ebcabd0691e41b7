/*
 * What the two files of a worker share (worker.c: the worker as other
 * threads see it, its mailbox and accept set; worker_run.c: its own
 * thread), and nothing else includes.
 */
#ifndef EO_WORKER_INT_H
#define EO_WORKER_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>

#include "conn.h"
#include "handover.h"
#include "udp.h"
#include "worker.h"

enum wmsg_type {
	EO_WM_CONN,		/* adopt msg.ho */
	EO_WM_DRAIN,
	EO_WM_ABORT,
	EO_WM_STOP,
	EO_WM_UDP_SERVE,	/* serve msg.us under msg.lc, msg.guard,
				   msg.rate */
	EO_WM_UDP_PARK,
	EO_WM_UDP_CLOSE,
	EO_WM_FREEZE,		/* export msg.fz, wait to be thawed */
	EO_WM_RESUME		/* adopt msg.ho where msg.rec left it */
};

struct wmsg {
	enum wmsg_type		type;
	struct conn_handoff	ho;
	struct udp_sock		*us;
	const struct cfg_listener *lc;
	struct guard		*guard;
	struct udp_rate		*rate;
	struct worker_freeze	*fz;
	struct ho_conn		*rec;
};

struct worker_watched {
	int			 fd;
	void			*sock;		/* worker_watch()'s */
};

struct worker {
	unsigned		 id;
	pthread_t		 thread;
	struct event_base	*base;
	struct conn_home	 home;
	struct udp_home		 udp;
	struct event		*wake_ev;	/* on wake_fd */
	struct event		*tick_ev;	/* once a second: sweep */
	int			 wake_fd;	/* eventfd: mail arrived */
	int			 done_fd;	/* eventfd: main's, "drained" */
	int			 done_sent;
	uint64_t		 tick_due;	/* us: when tick_ev should run */

	pthread_mutex_t		 mtx;		/* guards the queue below */
	struct wmsg		*q;		/* ring of qcap messages */
	size_t			 qhead, qlen, qcap;
	struct wmsg		*batch;		/* the worker's copy */
	size_t			 batchcap;

	pthread_mutex_t		 accept_mtx;	/* held while accepting, and
						   by the main thread while it
						   changes what is accepted */
	int			 accept_fd;	/* epoll: listening sockets */
	struct event		*accept_ev;	/* on accept_fd */
	struct event		*resume_ev;	/* accept again after a pause */
	worker_accept_fn	 accept_fn;
	int			 loop_fd;	/* base's epoll set, or -1:
						   worker_direct_init() */
	int			 paused;	/* out of fds: not accepting */
	int			 resume_failed;	/* said so; trying again */
	struct timeval		 pause_tv;	/* the pause's length */
	struct worker_watched	*watched;	/* listening sockets
						   (loop_fd only) */
	size_t			 nwatched, watchcap;
};

/* Queues m for w and wakes it if its queue was empty (worker.c); -1 if
   out of memory.  worker_send(): control mail, retried until queued. */
int	worker_post(struct worker *w, const struct wmsg *m);
void	worker_send(struct worker *w, enum wmsg_type type);
/* worker.c, the accept set: at the start, before w's thread runs, where
   its sockets go (worker.c says why); after a pause. */
void	worker_direct_init(struct worker *w);
void	worker_accept_resume(struct worker *w);

#endif
