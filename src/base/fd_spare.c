/*
 * The spare descriptor (include/fd_spare.h).
 *
 * Out of descriptors, accept() fails and the clients stay queued.  The
 * acceptor closes the spare, accepts one client into its place, closes
 * that, and opens the spare again.  But every worker accepts, each on
 * its own thread: between the close and the accept another worker's
 * accept() can take the freed place for a client it serves.  The drain
 * then finds nothing (EMFILE, or EAGAIN if that was the last client),
 * the spare cannot be opened again (the table is full), and it stays
 * lost: every later exhaustion leaves its clients hanging in the
 * backlog, refused by no one and logged by no one.  So whoever makes a
 * descriptor while the spare is missing must give the spare back first:
 * it opens the spare again if it can, and if it cannot, the descriptor
 * it holds is the spare's place; it refuses its client and puts the
 * spare in that place.  Each accept pays one load of a word that only
 * changes while out of descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fd_spare.h"

int
fd_spare_init(struct fd_spare *s)
{
	s->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	s->wanted = s->fd != -1;
	return s->wanted ? 0 : -1;
}

void
fd_spare_free(struct fd_spare *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

void
fd_spare_give(struct fd_spare *s)
{
	int fd = __atomic_exchange_n(&s->fd, -1, __ATOMIC_ACQ_REL);

	if (fd != -1)
		close(fd);
}

/* 0 if one is held now; else open()'s errno. */
static int
fd_spare_open(struct fd_spare *s)
{
	int fd;

	if (__atomic_load_n(&s->fd, __ATOMIC_ACQUIRE) != -1)
		return 0;
	if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		return errno;
	/* Two threads may both put one back: one is enough. */
	if ((fd = __atomic_exchange_n(&s->fd, fd, __ATOMIC_ACQ_REL)) != -1)
		close(fd);
	return 0;
}

void
fd_spare_put(struct fd_spare *s)
{
	if (__atomic_load_n(&s->wanted, __ATOMIC_RELAXED))
		(void)fd_spare_open(s);
}

int
fd_spare_missing(struct fd_spare *s)
{
	int err;

	if (__atomic_load_n(&s->fd, __ATOMIC_RELAXED) != -1 ||
	    !__atomic_load_n(&s->wanted, __ATOMIC_RELAXED) ||
	    (err = fd_spare_open(s)) == 0)
		return 0;
	if (err == EMFILE || err == ENFILE)
		return -1;
	/* No client is refused for a spare that cannot be had: short of
	   memory, this client is served; /dev/null gone, the daemon goes
	   on without a spare. */
	if (err != ENOMEM)
		__atomic_store_n(&s->wanted, 0, __ATOMIC_RELAXED);
	return 0;
}
