/*
 * Listeners at run time: one struct listener per configured listener
 * name, holding what outlives a reload: its connection counters and the
 * per-source table.  Connections keep a reference, so a listener removed
 * by a reload lives on (without sockets) until its last connection ends.
 *
 * Also the socket helpers: binding a listening socket the way the
 * daemon wants it (SO_REUSEADDR, IPV6_V6ONLY, non-blocking, CLOEXEC).
 *
 * listener_new, _set_config and _admit run on the main thread;
 * listener_release and the reference counting on any thread.
 */
#ifndef EO_LISTENER_H
#define EO_LISTENER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "peer.h"

struct cfg_addr;
struct cfg_listener;
struct listener;
struct stats_lis;

/* Why a connection was not admitted. */
enum listener_admit {
	EO_ADMIT_OK,
	EO_ADMIT_LISTENER_FULL,		/* the listener's max_connections */
	EO_ADMIT_SOURCE_FULL		/* max_connections_per_source */
};

struct listener *listener_new(const struct cfg_listener *lc);
/* The settings new connections get; lc->cfg must outlive the call. */
void	listener_set_config(struct listener *l,
	    const struct cfg_listener *lc);
const struct cfg_listener *listener_config(const struct listener *l);
const char *listener_name(const struct listener *l);
/* Its counters, one slot per thread (stats.h); any thread. */
struct stats_lis *listener_stats(const struct listener *l);
unsigned listener_nconns(const struct listener *l);
/*
 * The UDP reply rate limit's table, one for all the listener's sockets
 * (and so its workers), sized by its config's udp_rate_table: made
 * again when that changes (the old one kept if memory runs out), NULL
 * without a limit or any memory.  Main thread; the listener keeps its
 * reference.
 */
struct udp_rate *listener_udp_rate(struct listener *l);

void	listener_ref(struct listener *l);
void	listener_unref(struct listener *l);

/*
 * Counts a new connection from peer against the listener's limits.
 * On EO_ADMIT_OK the caller owns one count, given back with
 * listener_release(); *per_source says whether the source was counted.
 */
enum listener_admit listener_admit(struct listener *l,
	    const struct peer_key *peer, int *per_source);
/*
 * Counts a connection already admitted against max connections from
 * peer: for a client known only after admission (from a PROXY header).
 * 0, or -1 at the limit.  Given back by listener_release(.., 1).  Any
 * thread.
 */
int	listener_admit_source(struct listener *l, const struct peer_key *peer,
	    unsigned max);
void	listener_release(struct listener *l, const struct peer_key *peer,
	    int per_source);

/*
 * A listening socket on a: returns the fd, or -1 with the failing call
 * and its reason written to err.  No SO_REUSEPORT: with it, any process
 * of our uid could bind the port beside us and take a share of our
 * clients, silently.  So a wildcard and a specific address of one port
 * listen together only for the moment a reload moves between them
 * (plan.c, listener_share_port()).
 */
int	listener_bind(const struct cfg_addr *a, int backlog, char *err,
	    size_t errlen);
/*
 * The same in two steps, for a move: the socket made first, bound
 * beside the old one or, failing that, once it has closed (then only
 * bind() and listen() fall between).  listener_listen() leaves fd open
 * on error.
 */
int	listener_socket(const struct cfg_addr *a, char *err, size_t errlen);
int	listener_listen(int fd, const struct cfg_addr *a, int backlog,
	    char *err, size_t errlen);
/*
 * SO_REUSEPORT on fd (on: 1) or off (0); 0 or -1.  Set on both sides,
 * a move binds the new address beside the old one.  Linux remembers
 * that the port was shared while a socket stays bound to it, so until
 * then another process of our uid could still bind beside us: the unit
 * runs under a user of its own.
 */
int	listener_share_port(int fd, int on);
/*
 * fd's SO_REUSEPORT group (fd in it) gives each new client to one of
 * its first n sockets, at random: 0, or -1 (errno).  A socket that
 * joins later sits past them and is given none, so that another
 * process of our uid binding the port with SO_REUSEPORT takes no share
 * of our clients; and a socket of ours about to close is steered past
 * before its queue is served.  The index is the order the sockets
 * joined in; closing one moves the last into its place.  Classic BPF:
 * no privilege needed.
 */
int	listener_steer(int fd, unsigned n);

#endif
