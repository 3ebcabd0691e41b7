/*
 * The read events of busy connections, in pages of their own.
 *
 * Why not malloc: a quiet connection gives its event back (conn_park.c),
 * but a freed malloc chunk between two live connections stays in the
 * process's memory: after 19,000 connections had echoed once and gone
 * quiet, RSS did not move.  Here events live in whole pages (31 to a
 * page, behind the page's header), and a page is unmapped when its last
 * event is freed, so memory a connection used while busy goes back to
 * the system once it is quiet.  One empty page is kept, so that a
 * connection at a page's edge going busy and quiet costs no system call.
 * Worker thread only.
 */
#include <sys/mman.h>

#include "conn_int.h"

#define EO_EVPAGE	4096u
#define EO_EVCELL	128u	/* sizeof(struct event) on 64-bit 2.1 */

struct conn_evpage {
	struct conn_evpage	*next;		/* in h->ev_pages */
	struct conn_evpage	*prev;
	void			*free;		/* free cells, linked */
	unsigned		 used;		/* cells given out */
};

#define EO_EVCELLS	((EO_EVPAGE - EO_EVCELL) / EO_EVCELL)

static struct conn_evpage *
conn_evpage_new(void)
{
	struct conn_evpage *pg;
	unsigned char *cell;
	unsigned i;

	pg = mmap(NULL, EO_EVPAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pg == MAP_FAILED)
		return NULL;
	pg->free = NULL;
	pg->used = 0;
	/* Cells start one cell in: the header takes the first. */
	for (i = EO_EVCELLS; i > 0; i--) {
		cell = (unsigned char *)pg + (size_t)i * EO_EVCELL;
		*(void **)cell = pg->free;
		pg->free = cell;
	}
	return pg;
}

static void
conn_evpage_link(struct conn_home *h, struct conn_evpage *pg)
{
	pg->prev = NULL;
	pg->next = h->ev_pages;
	if (h->ev_pages != NULL)
		h->ev_pages->prev = pg;
	h->ev_pages = pg;
}

static void
conn_evpage_unlink(struct conn_home *h, struct conn_evpage *pg)
{
	if (pg->prev != NULL)
		pg->prev->next = pg->next;
	else
		h->ev_pages = pg->next;
	if (pg->next != NULL)
		pg->next->prev = pg->prev;
}

/* Room for one struct event, to event_assign(); NULL if out of memory. */
struct event *
conn_ev_alloc(struct conn_home *h)
{
	struct conn_evpage *pg = h->ev_pages;
	void *cell;

	if (event_get_struct_event_size() > EO_EVCELL)
		return malloc(event_get_struct_event_size());
	if (pg == NULL) {
		if ((pg = h->ev_spare) != NULL)
			h->ev_spare = NULL;
		else if ((pg = conn_evpage_new()) == NULL)
			return NULL;
		conn_evpage_link(h, pg);
	}
	cell = pg->free;
	pg->free = *(void **)cell;
	pg->used++;
	if (pg->free == NULL)	/* full: no longer offered */
		conn_evpage_unlink(h, pg);
	return cell;
}

/* Gives back ev, deleted first (event_del), from conn_ev_alloc(). */
void
conn_ev_free(struct conn_home *h, struct event *ev)
{
	struct conn_evpage *pg;

	if (event_get_struct_event_size() > EO_EVCELL) {
		free(ev);
		return;
	}
	pg = (struct conn_evpage *)((uintptr_t)ev & ~(uintptr_t)
	    (EO_EVPAGE - 1));
	if (pg->free == NULL)	/* was full: offered again */
		conn_evpage_link(h, pg);
	*(void **)ev = pg->free;
	pg->free = ev;
	if (--pg->used > 0)
		return;
	conn_evpage_unlink(h, pg);
	if (h->ev_spare == NULL)
		h->ev_spare = pg;
	else
		munmap(pg, EO_EVPAGE);
}

/* After every connection is closed: every page is empty. */
void
conn_evpool_fini(struct conn_home *h)
{
	struct conn_evpage *pg;

	while ((pg = h->ev_pages) != NULL) {
		conn_evpage_unlink(h, pg);
		munmap(pg, EO_EVPAGE);
	}
	if (h->ev_spare != NULL)
		munmap(h->ev_spare, EO_EVPAGE);
	h->ev_spare = NULL;
}
