/*
 * Protocols: one per listener, chosen by name from one table.
 *
 * A protocol sees bytes, never sockets, timers, threads or buffers.  The
 * connection hands it the input received so far, in one piece; it takes
 * whole units from the front (for the oracle a question, for echo any
 * bytes) and answers with pieces of output, iovecs that point into the
 * input or into its options.  What it leaves is an unfinished unit, kept
 * by the connection and handed back, longer, with the next input.
 *
 * Why bytes and iovecs rather than evbuffers: in the common case (a
 * whole unit arrives, the socket takes the reply) nothing is copied or
 * allocated; the connection writes the pieces with one sendmsg(2) and
 * copies only what the socket refuses.  The generic rules (timeouts,
 * backpressure, half-close, flushing before closing) are the
 * connection's, in conn.c, once for all.
 *
 * Adding a protocol: one file in src/proto/ filling a struct protocol,
 * and one line in the table in src/proto/protocol.c.
 */
#ifndef EO_PROTOCOL_H
#define EO_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "cfg_get.h"
#include "stats.h"

/*
 * Input not yet taken: a protocol advances data and len past units.
 * What a call leaves comes back whole at the front of the next call's
 * input (the connection's held input, which a restart carries).
 */
struct proto_in {
	const unsigned char	*data;
	size_t			 len;
};

/*
 * Facts about the connection, for a protocol that describes it (http):
 * filled by the connection when a protocol that sets wants_info asks
 * (proto_info()).  The strings live until the call returns or asks
 * again; a pointer that is NULL means "none".
 */
struct proto_conn_info {
	const char		*listener;	/* its name */
	const char		*client_addr;	/* the PROXY header's, if any */
	uint16_t		 client_port;
	const char		*proxy_addr;	/* NULL: no PROXY header */
	uint16_t		 proxy_port;
	int			 tls;		/* the rest only when set */
	const char		*tls_version;
	const char		*tls_cipher;
	const char		*tls_sni;	/* NULL: none sent */
	const char		*tls_alpn;	/* NULL: none agreed */
	const char		*cert_subject;	/* NULL: no client cert */
	const char		*cert_issuer;
	const char		*cert_serial;	/* hex */
	const char		*cert_not_after; /* ISO 8601, UTC */
};

/* Where the facts come from: get() fills them for src's connection. */
struct proto_info_src {
	const struct proto_conn_info *(*get)(const struct proto_info_src *src);
};

/*
 * The replies of one call, pieces in order.  A piece may point into the
 * input (sent or copied before the input moves) or into the options
 * (they outlive every connection using them).
 */
struct proto_out {
	struct iovec		*iov;
	unsigned		 niov;
	unsigned		 maxiov;
	size_t			 len;		/* bytes in iov */
	size_t			 room;		/* take no unit past this */
	int			 full;		/* stopped for room: the
						   units left wait for it */
	unsigned		 units;		/* units taken */
	uint64_t		*rng;		/* for proto_random() */
	/* wants_info: the facts, filled when asked (proto_info()): a few
	   hundred instructions, which a WebSocket message or a response
	   that describes nothing does not pay; NULL otherwise. */
	const struct proto_info_src *info;
	struct stats_slot	*st;		/* the listener's counters on
						   this worker, for a
						   protocol's own (http) */
	int			 partial;	/* set by a protocol that took
						   an unfinished unit into its
						   state: its unit_timeout runs */
	uint32_t		 pause_ms;	/* set: call again after this
						   long (a response's delay),
						   with the input left; none
						   is read meanwhile */
};

enum proto_verdict {
	EO_PROTO_OK,		/* keep serving */
	EO_PROTO_CLOSE		/* send the replies, then close */
};

struct protocol {
	const char	*name;
	size_t		 state_size;	/* per-connection state, zeroed */
	/*
	 * The state's layout, carried across a restart as plain bytes
	 * (handover.h): bump it whenever the state struct changes, so that
	 * a new binary refuses an old state instead of misreading it.
	 */
	uint32_t	 state_version;
	/*
	 * Served over HTTP by evhttp on the main thread (metrics), not by
	 * conn.c: the acceptor binds the listener's sockets to evhttp, and
	 * input() is never called on the workers.
	 */
	int		 http;

	/*
	 * Parses the listener's group named after the protocol (NULL if
	 * absent: defaults) into *opts.  Returns 0, or -1 with errors in d.
	 */
	int		(*opts_parse)(const config_setting_t *group,
			    void **opts, struct cfg_diag *d);
	void		(*opts_free)(void *opts);
	/* Seconds one unit may take to arrive; 0: no limit.  May be NULL. */
	uint32_t	(*unit_timeout)(const void *opts);
	/* Its setting's name, for the close reason ("question_timeout"). */
	const char	*unit_timeout_name;

	/* Sets up a connection's state (already zeroed).  May be NULL. */
	void		(*init)(void *state, const void *opts);
	/* Frees what the state holds, at the close.  May be NULL. */
	void		(*fini)(void *state);
	/* The pieces of the last input() are sent or copied: what they
	   pointed into may be freed.  May be NULL. */
	void		(*released)(void *state);
	/*
	 * The unit timeout ran out (an unfinished unit, out->partial): the
	 * last words before the close (http's 408).  Must return CLOSE.
	 * May be NULL: the connection just closes.
	 */
	enum proto_verdict (*expired)(void *state, const void *opts,
			    struct proto_out *out);
	/*
	 * The daemon stops or restarts: last words, such as a WebSocket's
	 * close 1001 (the connection then flushes and closes as for any
	 * protocol).  May be NULL: none.
	 */
	enum proto_verdict (*going_away)(void *state, const void *opts,
			    struct proto_out *out);
	/* out->info is set: the facts, when asked (http's description). */
	int		 wants_info;
	/*
	 * A state that holds pointers (buffers it allocated) is carried
	 * across a restart only when carriable() says so (http: idle
	 * between requests); the others are closed, after going_away().
	 * NULL: always carriable.  In the new process, carried() rebuilds
	 * from the old bytes what they pointed to (opts: the new ones).
	 */
	int		(*carriable)(const void *state);
	void		(*carried)(void *state, const void *opts);
	/* Its ALPN id in wire format ("\x08http/1.1"), agreed with a TLS
	   client that offers it.  NULL: none. */
	const unsigned char *alpn;
	/* Input arrived: take whole units while proto_room() allows. */
	enum proto_verdict (*input)(void *state, const void *opts,
			    struct proto_in *in, struct proto_out *out);
	/*
	 * The client sent EOF and input() has taken every whole unit: in
	 * holds only an unfinished unit, if any.  Must return CLOSE.
	 */
	enum proto_verdict (*eof)(void *state, const void *opts,
			    struct proto_in *in, struct proto_out *out);
	/*
	 * Called once, right after input() returned CLOSE: the rule that
	 * closed, in the config's words ("max_questions (10)"), a string in
	 * opts or static.  Asked only then, so that the path of every reply
	 * stays free of it.  May be NULL ("protocol closed").
	 */
	const char	*(*close_why)(const void *state, const void *opts);

	/*
	 * UDP: answers one datagram (in, inlen) with at most one, written
	 * to out (outcap bytes of room); returns its length, 0: no reply.
	 * NULL: the protocol serves TCP only.
	 */
	size_t		(*dgram)(const void *opts, const unsigned char *in,
			    size_t inlen, unsigned char *out, size_t outcap,
			    uint64_t *rng);
	/* Its reply can be bigger than the request: over UDP only with
	   allow_amplification = true. */
	int		 amplifies;

	/*
	 * Speaks first: called once when the connection starts, before
	 * any input, with room in out.  CLOSE: send out, then close, as
	 * daytime, time and qotd do (close_why() names the reason).  May
	 * be NULL: the client speaks first.
	 */
	enum proto_verdict (*greet)(void *state, const void *opts,
			    struct proto_out *out);
	/*
	 * Produces output while the socket has room, for as long as the
	 * connection serves (chargen): called after greet() and again
	 * each time the queued output has drained, with out->room bytes
	 * to fill.  Must put at least one piece when there is room.  May
	 * be NULL: output only answers input.
	 */
	enum proto_verdict (*produce)(void *state, const void *opts,
			    struct proto_out *out);
	/* Writes the options in effect as a libconfig group body, every
	   option with its value (-T).  NULL: the protocol has none. */
	void		(*opts_print)(const void *opts, FILE *f);
};

/*
 * Whether out can take one more unit of pieces (iovecs); if not, marks
 * it full, so that the connection waits for room before calling again.
 */
static inline int
proto_room(struct proto_out *out, unsigned pieces)
{
	if (out->len >= out->room || out->niov + pieces > out->maxiov) {
		out->full = 1;
		return 0;
	}
	return 1;
}

/* Appends a piece; proto_room() said there was room for it. */
static inline void
proto_put(struct proto_out *out, const void *p, size_t len)
{
	out->iov[out->niov].iov_base = (void *)(uintptr_t)p;
	out->iov[out->niov++].iov_len = len;
	out->len += len;
}

/* The connection's facts, filled now (wants_info), or NULL. */
static inline const struct proto_conn_info *
proto_info(const struct proto_out *out)
{
	return out->info != NULL ? out->info->get(out->info) : NULL;
}

/* Takes n bytes from the front of in. */
static inline void
proto_take(struct proto_in *in, size_t n)
{
	in->data += n;
	in->len -= n;
}

/* For protocols without options: refuses any key in their group. */
int	proto_no_opts_parse(const config_setting_t *group, void **opts,
	    struct cfg_diag *d);
void	proto_no_opts_free(void *opts);
/* For protocols that speak first and ask nothing: input is dropped,
   and the connection closes once what was said is sent. */
enum proto_verdict proto_drop_close(void *state, const void *opts,
	    struct proto_in *in, struct proto_out *out);
/* For protocols with no unit to finish at EOF: just close. */
enum proto_verdict proto_eof_close(void *state, const void *opts,
	    struct proto_in *in, struct proto_out *out);

/* The protocol called name, or NULL. */
const struct protocol *protocol_find(const char *name);
/* "echo, oracle": the known names, for messages. */
const char *protocol_names(void);

/* A uniform random number in [0, bound), bound > 0, from out's PRNG. */
uint32_t proto_random(struct proto_out *out, uint32_t bound);
/* The same from a PRNG state (a worker's, for dgram()). */
uint32_t proto_random_rng(uint64_t *rng, uint32_t bound);
/* Seeds a PRNG state from the kernel's entropy. */
void	proto_seed(uint64_t *rng);

extern const struct protocol proto_echo;
extern const struct protocol proto_oracle;
/* inetd's built-in services, RFC 863, 864, 867, 868 and 865. */
extern const struct protocol proto_discard;
extern const struct protocol proto_chargen;
extern const struct protocol proto_daytime;
extern const struct protocol proto_time;
extern const struct protocol proto_qotd;
extern const struct protocol proto_metrics;
/* HTTP/1.1 echo: a description of each request (http.h). */
extern const struct protocol proto_http;

#endif
