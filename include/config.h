/*
 * The configuration: a libconfig file read into plain structs and
 * validated whole.  A loaded struct cfg is complete and immutable; it is
 * reference-counted because connections keep the generation they started
 * under while a reload installs the next one.
 *
 * Errors are collected, not stopped at: one run reports every mistake,
 * each as "FILE:LINE: what is wrong".
 *
 * Nothing outside the config files (config.c, cfg_*.c) touches
 * libconfig, except protocol option parsers, which get their own group
 * and the cfg_get_* helpers below.
 */
#ifndef EO_CONFIG_H
#define EO_CONFIG_H

#include <libconfig.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "cidr.h"
#include "log.h"

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

void	cfg_diag_init(struct cfg_diag *d);
void	cfg_diag_free(struct cfg_diag *d);
/* Adds "FILE:LINE: message" for where (NULL: no position known). */
void	cfg_error(struct cfg_diag *d, const config_setting_t *where,
	    const char *fmt, ...) EO_PRINTF(3, 4);
/* Adds "FILE:LINE: warning: message": the file stays valid. */
void	cfg_warn(struct cfg_diag *d, const config_setting_t *where,
	    const char *fmt, ...) EO_PRINTF(3, 4);

/*
 * Helpers for option parsers.  Each returns 1 if key is present and
 * valid (*out set), 0 if absent (*out untouched), -1 after adding an
 * error naming the key, its line and the rule it broke.  Integers are
 * read from the text at full width (libconfig 1.5 wraps them to 32
 * bits) and quoted as written when out of range.
 */
int	cfg_get_uint(struct cfg_diag *d, const config_setting_t *group,
	    const char *key, uint32_t min, uint32_t max, uint32_t *out);
int	cfg_get_bool(struct cfg_diag *d, const config_setting_t *group,
	    const char *key, int *out);
int	cfg_get_string(struct cfg_diag *d, const config_setting_t *group,
	    const char *key, size_t maxlen, const char **out);
/* Errors for each member of group whose name is not in known (NULL-ended). */
int	cfg_check_keys(struct cfg_diag *d, const config_setting_t *group,
	    const char *const *known);
/* The same, but a member whose name skip() accepts is left alone. */
int	cfg_check_keys_skip(struct cfg_diag *d, const config_setting_t *group,
	    const char *const *known, int (*skip)(const char *name));

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

/*
 * Reads and validates path; NULL with d filled on any error.  Every
 * file (path and what it @includes) is opened without blocking and
 * must be a regular, readable file; EO_CFG_MAX_BYTES in all.
 */
struct cfg *cfg_load_file(const char *path, struct cfg_diag *d);
/* The same from memory (tests, fuzzing); name stands in for the path. */
struct cfg *cfg_load_string(const char *text, const char *name,
	    struct cfg_diag *d);

/*
 * Writes cfg in libconfig syntax, every setting resolved (defaults and
 * overrides), so that loading the output gives the same configuration:
 * what -T prints.  Protocol options come from their opts_print().
 */
void	cfg_print(const struct cfg *cfg, FILE *f);
/* s as a libconfig string literal, quoted and escaped: for opts_print(). */
void	cfg_print_string(FILE *f, const char *s);

/* Reference counting; any thread.  The last unref frees. */
void	cfg_ref(struct cfg *cfg);
void	cfg_unref(struct cfg *cfg);

/*
 * Whether the client sa may use listener l: not in deny, and in allow
 * when allow lists anything.  Any thread.
 */
int	cfg_listener_admits(const struct cfg_listener *l,
	    const struct sockaddr *sa);

/* The listener called name, or NULL. */
const struct cfg_listener *cfg_find_listener(const struct cfg *cfg,
	    const char *name);

#endif
