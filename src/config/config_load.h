/*
 * What the loader's files (config.c, cfg_listener.c) share, and
 * nothing else includes.
 */
#ifndef EO_CONFIG_LOAD_H
#define EO_CONFIG_LOAD_H

#include <stdint.h>

#include <libconfig.h>

#include "config.h"

/* Settings a listener inherits from the top level unless it sets them. */
struct cfg_defaults {
	int		backlog;
	uint32_t	max_per_source;
	uint32_t	idle_timeout;
	uint32_t	write_timeout;
	uint32_t	tls_timeout;
	/* The tls group's reader, tls_parse(): TLS's options are read on
	   TLS's side (cfg_tls.c, as HAProxy's cfgparse-ssl.c), and the
	   loader hands it over so that cfg_listener.c calls no sibling. */
	int		(*tls_parse)(struct cfg_diag *d,
			    const config_setting_t *lg,
			    const unsigned char *alpn, struct tls_ctx **out);
};

/* Defaults, documented in conf/echo-oracled.conf and README.md. */
#define DEF_MAX_CONNS		10000
#define DEF_EVICT_AFTER		1
#define DEF_SHUTDOWN_TIMEOUT	10
#define DEF_IDLE_TIMEOUT	300
#define DEF_WRITE_TIMEOUT	60
#define DEF_BACKLOG		4096
#define DEF_PROXY_TIMEOUT	3	/* the PROXY spec's minimum */
#define DEF_UDP_RATE		100	/* replies/s to one source */
#define DEF_UDP_RATE_TABLE	4096	/* sources the limit remembers */

#define MAX_TIMEOUT		86400	/* a day: bigger is surely a typo */
#define MAX_WORKERS		256
#define MAX_CONNS		1000000

/* Whether a is the wildcard (0.0.0.0 or ::). */
int	cfg_addr_is_any(const struct cfg_addr *a);
/* Reads listener lg under the defaults def into l: 0, or -1 after
   adding errors to d. */
int	cfg_parse_listener(struct cfg_diag *d, const config_setting_t *lg,
	    const struct cfg_defaults *def, struct cfg_listener *l);

#endif
