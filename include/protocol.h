/*
 * Protocols: one per listener, chosen by name from one table.
 *
 * A protocol sees evbuffers, never sockets, timers or threads.  The
 * connection hands it the input received so far; it removes whole units
 * (for the oracle a question, for echo any bytes) and appends replies.
 * What it leaves in the input is an unfinished unit, kept for the next
 * call.  The generic rules (timeouts, backpressure, half-close, flushing
 * before closing) are the connection's, in conn.c, once for all.
 *
 * Adding a protocol: one file in src/proto/ filling a struct protocol,
 * and one line in the table in src/protocol.c.
 */
#ifndef EO_PROTOCOL_H
#define EO_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct evbuffer;

/* One call's worth of work. */
struct proto_io {
	struct evbuffer	*in;		/* input; remove whole units */
	struct evbuffer	*out;		/* append replies */
	size_t		 out_room;	/* stop taking units once out has
					   this many bytes: the rest waits
					   for the client to read */
	unsigned	 units;		/* the protocol counts units done */
	uint64_t	*rng;		/* per-worker PRNG; proto_random() */
};

enum proto_verdict {
	EO_PROTO_OK,		/* keep serving */
	EO_PROTO_CLOSE		/* send what is in out, then close */
};

struct protocol {
	const char	*name;
	size_t		 state_size;	/* per-connection state, zeroed */

	/*
	 * Parses the listener's group named after the protocol (NULL if
	 * absent: defaults) into *opts.  Returns 0, or -1 with errors in d.
	 */
	int		(*opts_parse)(const config_setting_t *group,
			    void **opts, struct cfg_diag *d);
	void		(*opts_free)(void *opts);
	/* Seconds one unit may take to arrive; 0: no limit. */
	uint32_t	(*unit_timeout)(const void *opts);

	void		(*init)(void *state, const void *opts);
	/* Input arrived: take whole units from io->in. */
	enum proto_verdict (*input)(void *state, const void *opts,
			    struct proto_io *io);
	/*
	 * The client sent EOF and input() has taken every whole unit it
	 * could: io->in holds only an unfinished unit, if any.
	 */
	enum proto_verdict (*eof)(void *state, const void *opts,
			    struct proto_io *io);
};

/* The protocol called name, or NULL. */
const struct protocol *protocol_find(const char *name);
/* "echo, oracle": the known names, for messages. */
const char *protocol_names(void);

/* A uniform random number in [0, bound), bound > 0, from io's PRNG. */
uint32_t proto_random(struct proto_io *io, uint32_t bound);
/* Seeds a PRNG state from the kernel's entropy. */
void	proto_seed(uint64_t *rng);

extern const struct protocol proto_echo;
extern const struct protocol proto_oracle;

#endif
