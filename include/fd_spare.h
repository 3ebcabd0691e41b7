/*
 * The spare descriptor (src/base/fd_spare.c): one descriptor held back
 * so that, out of descriptors, the daemon can still accept a waiting
 * client to close it (a clean "no" rather than a client left hanging in
 * the backlog).  Any thread may use it; see fd_spare.c for the race it
 * has to survive.
 */
#ifndef EO_FD_SPARE_H
#define EO_FD_SPARE_H

struct fd_spare {
	int	fd;		/* -1: given up, or lost */
	int	wanted;		/* keep one (0: none could be had) */
};

/* Opens it (0), or says it cannot be had (-1, errno): the daemon then
   runs without one, and fd_spare_missing() never asks for one. */
int	fd_spare_init(struct fd_spare *);
void	fd_spare_free(struct fd_spare *);
/* Closes it, so that the next descriptor made takes its place. */
void	fd_spare_give(struct fd_spare *);
/* Opens one again if none is held (two threads may: one is kept). */
void	fd_spare_put(struct fd_spare *);
/* After a descriptor was made (an accept): 0 if the spare is held or
   could be had again; -1 if it is missing and the table is full, so
   that the one just made is the spare's place: the caller closes it
   (the client is refused) and calls fd_spare_put(). */
int	fd_spare_missing(struct fd_spare *);

#endif
