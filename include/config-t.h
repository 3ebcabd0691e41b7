/*
 * The configuration's types only, no functions (HAProxy's -t.h
 * convention): the limits on names and addresses, the diagnostics, a
 * loaded struct cfg and its listeners.  config.h is the contract of the
 * functions that fill and read them.  Includes nothing of the daemon's
 * but cidr.h's types.
 */
#ifndef EO_CONFIG_T_H
#define EO_CONFIG_T_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"

struct protocol;
struct tls_ctx;
struct cfg_srcs;
struct cfg_diag_pos;

#define EO_NAME_MAX		63	/* listener names; also fd names */
#define EO_ADDR_TEXT_MAX	80	/* "[v6%scope]:port" and NUL */
#define EO_CFG_MAX_BYTES	(16 << 20) /* all files of a config together */
#define EO_CFG_MAX_ERRORS	50	/* shown; then one "N more" line */

/*
 * What went wrong, one message per mistake: identical messages once,
 * sorted by file and line, at most EO_CFG_MAX_ERRORS of them and then
 * one line saying how many more there were (a compiler's -fmax-errors).
 */
struct cfg_diag {
	char		**msgs;
	size_t		  n;
	size_t		  cap;
	size_t		  total;	/* distinct mistakes, shown or not */
	const char	 *file;		/* for settings libconfig can't place */
	char		  context[EO_NAME_MAX + 16]; /* "listener \"x\": " */
	/* The rest is the config files': where each message points, for
	   sorting. */
	struct cfg_diag_pos *pos;
	char		**files;
	size_t		  nfiles;
	size_t		  dropped;	/* past the memory cap, counted only */
	struct cfg_srcs	 *srcs;		/* the text being loaded */
	/* Warnings: valid settings that do nothing where they are set.
	   "FILE:LINE: warning: ...", in the order found, capped as the
	   errors are; kept whether or not the file is valid. */
	char		**warns;
	size_t		  nwarns;
	size_t		  warns_total;	/* shown or not */
};

/* One address a listener binds. */
struct cfg_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 text[EO_ADDR_TEXT_MAX]; /* "[::1]:7070" */
};

/* One listener: a named port speaking one protocol. */
struct cfg_listener {
	struct cfg		*cfg;		/* the generation holding it */
	char			*name;
	const struct protocol	*proto;
	void			*popts;		/* the protocol's options */
	int			 enabled;
	uint16_t		 port;
	int			 backlog;
	int			 socket_per_worker; /* TCP: one listening
						   socket per worker, the
						   kernel placing clients */
	uint32_t		 max_conns;	/* this listener's cap; 0: none */
	uint32_t		 max_per_source; /* per client address; 0: none */
	uint32_t		 idle_timeout;	/* s without progress; 0: none */
	uint32_t		 write_timeout;	/* s without output progress */
	uint32_t		 unit_timeout;	/* s for one unit (question) */
	int			 proxy_protocol; /* a PROXY header first */
	uint32_t		 proxy_timeout;	/* s for the whole header */
	struct cidr_list	 proxy_from;	/* who may send one */
	struct cidr_list	 allow;		/* empty: everyone */
	struct cidr_list	 deny;		/* checked before allow */
	struct cfg_addr		*addrs;
	size_t			 naddrs;
	int			 line;		/* where it is defined */
	int			 udp;		/* transport = "udp" */
	int			 allow_amp;	/* allow_amplification */
	uint32_t		 udp_rate;	/* replies/s per source; 0: any */
	uint32_t		 udp_rate_table; /* sources remembered */
	struct tls_ctx		*tls;		/* NULL: plaintext */
	uint32_t		 tls_timeout;	/* s for the TLS handshake */
};

struct cfg {
	atomic_uint		 refs;
	char			*path;
	uint32_t		 workers;	/* 0: one per CPU */
	uint32_t		 max_conns;	/* across all listeners */
	uint32_t		 evict_after;	/* s; 0: refuse when full */
	uint32_t		 shutdown_timeout; /* s of grace at stop */
	uint32_t		 stop_delay;	/* s still accepting at stop */
	int			 watch_config;	/* reload when a file changes */
	char			**files;	/* every file read, main first */
	size_t			 nfiles;
	char			*dropin_dir;	/* include_dir as read; NULL */
	int			 log_level;
	struct cfg_listener	*listeners;
	size_t			 nlisteners;
};

#endif
