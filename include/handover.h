/*
 * The hand-over: what a restart carries from one process to the next.
 *
 * The descriptors travel the systemd way (LISTEN_FDS, LISTEN_FDNAMES):
 * our own listening sockets as "eo-l-NAME" (TCP) and "eo-u-NAME" (UDP),
 * systemd's under their own name ("eo-p-NAME" if parked), and one
 * "eo-carrier" socket whose queue holds every established connection and
 * this state, serialized into a sealed memfd (stored one by one, as a
 * fallback under systemd: "eo-conn" and "eo-state").  systemd promises no
 * order and merges duplicates, so a connection finds its record by its
 * 4-tuple, not by its position.
 *
 * The format, all integers little-endian:
 *
 *	"EOSTATE\0"  u32 format version  u32 connection count
 *	then per connection, u32 record length and the record:
 *	  str listener, str protocol, addr local, addr peer,
 *	  peer key (u8 family, 16 bytes), u16 client port,
 *	  u8 state, u8 flags, u64 in, u64 out, u32 acked,
 *	  u32 ages of start, progress and output (ms), i32 unit clock
 *	  (ms from now; lingering: the future), u32 protocol state
 *	  version, bytes protocol state, bytes held input, bytes queued
 *	  output
 *	str: u8 length and bytes; bytes: u32 length and bytes;
 *	addr: u8 family, 16 bytes of address, u16 port.
 *
 * A reader checks every length against what is left: a truncated or
 * corrupted blob is an error with a reason, never a read out of bounds.
 * The module knows bytes, not connections: conn.c fills and reads
 * struct ho_conn.
 */
#ifndef EO_HANDOVER_H
#define EO_HANDOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config-t.h"
#include "peer.h"

#define EO_HO_MAGIC	"EOSTATE"	/* and its NUL: 8 bytes */
#define EO_HO_VERSION	1
#define EO_HO_PROTO_MAX	31		/* a protocol's name */

/* The fd names; listening sockets add the listener's name. */
#define EO_HO_FD_STATE	"eo-state"
#define EO_HO_FD_CONN	"eo-conn"
/* One AF_UNIX socket whose queue holds the connections and the state in
   SCM_RIGHTS messages (restart.c says why); each message's one byte is
   EO_HO_TAG_STATE or EO_HO_TAG_CONN. */
#define EO_HO_FD_CARRIER "eo-carrier"
#define EO_HO_TAG_STATE	'S'
#define EO_HO_TAG_CONN	'C'
#define EO_HO_FD_BATCH	253		/* SCM_MAX_FD: fds in one message */
#define EO_HO_FD_TCP	"eo-l-"
#define EO_HO_FD_UDP	"eo-u-"
/* A socket from systemd that no listener serves (a reload parked it),
   before its FileDescriptorName=: it stays parked in the next process,
   whose configuration has no enabled listener of that name. */
#define EO_HO_FD_PARKED	"eo-p-"
/* A listening socket of ours beside an "eo-l-" one, in its SO_REUSEPORT
   group (one per worker, acceptor.c): the next process finds it its
   place by address, in the order listed. */
#define EO_HO_FD_EXTRA	"eo-x-"

/* One end of a connection, as getsockname(2) or getpeername(2) say. */
struct ho_addr {
	uint8_t		 family;	/* AF_INET, AF_INET6 */
	uint8_t		 addr[16];
	uint16_t	 port;
};

/* One connection's state; the byte fields point into a blob or copy. */
struct ho_conn {
	char		 listener[EO_NAME_MAX + 1];
	char		 proto[EO_HO_PROTO_MAX + 1];
	struct ho_addr	 local;
	struct ho_addr	 peer;
	struct peer_key	 client;	/* counted per source under it */
	uint16_t	 client_port;
	uint8_t		 state;		/* conn.c's enum conn_state */
	uint8_t		 flags;		/* conn.c's EO_CF_* */
	uint64_t	 in;
	uint64_t	 out;
	uint32_t	 acked;
	uint32_t	 age_start;
	uint32_t	 age_progress;
	uint32_t	 age_out;
	int32_t		 unit_in;	/* c_t_unit - now */
	uint32_t	 pstate_version;
	uint32_t	 pstate_len;
	const unsigned char *pstate;
	uint32_t	 held_len;
	const unsigned char *held;
	uint32_t	 queued_len;
	const unsigned char *queued;
};

/* A growing buffer; once an allocation failed, failed stays set. */
struct ho_buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
	int		 failed;
};

/* A blob being read; off only moves forward, never past len. */
struct ho_reader {
	const unsigned char *data;
	size_t		 len;
	size_t		 off;
};

void	ho_buf_free(struct ho_buf *b);
/* Appends n bytes; -1 (and b->failed) if out of memory. */
int	ho_buf_add(struct ho_buf *b, const void *p, size_t n);
/* The header for nconns records (they follow, appended as they come). */
int	ho_put_header(struct ho_buf *b, uint32_t nconns);
int	ho_put_conn(struct ho_buf *b, const struct ho_conn *c);

/*
 * Starts reading a blob: checks the magic and the version.  Returns
 * the connection count, or -1 with the reason in err.
 */
long	ho_read_header(struct ho_reader *r, const void *data, size_t len,
	    char *err, size_t errlen);
/* The next record into c (pointing into the blob); 0, or -1 with err. */
int	ho_read_conn(struct ho_reader *r, struct ho_conn *c, char *err,
	    size_t errlen);
/*
 * Reads a whole blob: every record valid and nothing after the last.
 * *out is malloc'd (records point into data); returns how many, or -1
 * with the reason in err.
 */
long	ho_parse(const void *data, size_t len, struct ho_conn **out,
	    char *err, size_t errlen);
/* A copy of c owning its bytes, freed with free(); NULL if no memory. */
struct ho_conn *ho_conn_dup(const struct ho_conn *c);

/* sa as a struct ho_addr; -1 if it is neither IPv4 nor IPv6. */
int	ho_addr_from(struct ho_addr *a, const struct sockaddr *sa);
int	ho_addr_equal(const struct ho_addr *a, const struct ho_addr *b);
/* A socket's two ends; -1 if either is unknown (not connected). */
int	ho_sock_ends(int fd, struct ho_addr *local, struct ho_addr *peer);

/*
 * Under systemd: whether a stop job of this type means the unit is
 * being restarted ("restart", "try-restart", "reload-or-restart"...),
 * so that the connections are handed to the next process rather than
 * drained.  NULL or anything unknown: a stop.
 */
int	ho_job_is_restart(const char *job_type);

/*
 * Descriptors over an AF_UNIX stream socket: n of them as messages of
 * one byte, tag, and at most EO_HO_FD_BATCH descriptors each, never
 * blocking; -1 if one was refused.  Receiving takes one message: its
 * descriptors (close-on-exec) into fds (max of them; more are closed)
 * and its tag; how many, or -1 at the end of the queue or on error.
 */
int	ho_send_fds(int sock, char tag, const int *fds, size_t n);
long	ho_recv_fds(int sock, char *tag, int *fds, size_t max);

#endif
