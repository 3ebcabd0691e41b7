/*
 * The PROXY protocol, receiving side: HAProxy's doc/proxy-protocol.txt,
 * versions 1 (one text line) and 2 (binary), detected as the spec says.
 *
 * A load balancer that speaks it sends one header before the client's
 * bytes, naming the client's address and port.  proxy_parse() is pure: it
 * looks at the bytes received so far, always from the header's first
 * byte, and says whether they hold a whole header, need more, or can
 * never be one.  No allocation, no state between calls, no locale; any
 * thread.
 *
 * How a connection uses it (the phase before admission and protocol):
 *
 *	- append what each read brings to the connection's held bytes and
 *	  call proxy_parse() on all of them, from the start;
 *	- EO_PROXY_NEED_MORE: keep reading (bounded by a timeout: a header
 *	  never needs more than EO_PROXY_HEADER_MAX bytes, and the parser
 *	  says INVALID as soon as the bytes cannot be one);
 *	- EO_PROXY_DONE: drop r.header_len bytes; what follows is the
 *	  client's, for the protocol.  If r.family is AF_INET or AF_INET6,
 *	  r.src is the client and r.dst the address it connected to: admit,
 *	  count and log the client by r.src.  Otherwise (LOCAL, UNKNOWN,
 *	  UNSPEC, UNIX) keep the connection's own addresses, as the spec
 *	  says.  r.transport is what the client used: SOCK_DGRAM on a TCP
 *	  listener is the proxy's mistake, for the caller to refuse or not;
 *	- EO_PROXY_INVALID: close; r.reason says why, for the log line;
 *	- end of input or the timeout before DONE: a partial header, which
 *	  the spec says to refuse: close.
 *
 * The header must only be accepted from trusted proxies (the spec's
 * section 5): that check, on the connection's own peer address, comes
 * first and is the caller's (see cidr.h).
 */
#ifndef EO_PROXY_H
#define EO_PROXY_H

#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* The v1 line's limit, CR LF included (the spec's worst case). */
#define EO_PROXY_V1_MAX		107
/*
 * Our limit on a v2 header, TLVs included.  The format allows 16 + 65535
 * bytes; real senders need 16 + 216 (UNIX addresses) plus a few hundred
 * of TLVs (SSL, authority, unique id).  Refusing anything longer keeps
 * what a connection must hold before it knows its client small; it is
 * refused as soon as the length field arrives.
 */
#define EO_PROXY_HEADER_MAX	4096

enum proxy_verdict {
	EO_PROXY_NEED_MORE,	/* a prefix of a header: call again with more */
	EO_PROXY_DONE,		/* a whole header: see struct proxy_result */
	EO_PROXY_INVALID	/* never a header: close the connection */
};

enum proxy_command {
	EO_PROXY_CMD_LOCAL,	/* v2 LOCAL: the proxy's own connection
				   (a health check) */
	EO_PROXY_CMD_PROXY	/* relayed for a client (v1 always) */
};

/* An address from the header, usable as a struct sockaddr. */
union proxy_addr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

struct proxy_result {
	size_t			header_len;	/* bytes to drop, on DONE */
	int			version;	/* 1 or 2, on DONE */
	enum proxy_command	command;
	int			family;		/* AF_INET, AF_INET6: src and
						   dst are set; AF_UNSPEC:
						   use the socket's own */
	int			transport;	/* SOCK_STREAM, SOCK_DGRAM, or
						   0 (unspecified) */
	union proxy_addr	src;		/* the client */
	union proxy_addr	dst;		/* the address it reached */
	const char		*reason;	/* on INVALID: static text */
};

/*
 * Parses the header at the start of data[0..len).  Returns NEED_MORE,
 * DONE (r filled), or INVALID (r->reason set, e.g. "v1: leading zero in
 * port").  Reads no byte past len.  The answer only ever changes from
 * NEED_MORE: once DONE or INVALID, more bytes give the same result.
 */
enum proxy_verdict proxy_parse(const unsigned char *data, size_t len,
	    struct proxy_result *r);

#endif
