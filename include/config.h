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
 * and the reading kit (cfg_get.h, the layer below the protocols).
 *
 * The types are config-t.h's: a header that needs only them (the
 * hand-over's names) includes that, not the loader and libconfig.
 */
#ifndef EO_CONFIG_H
#define EO_CONFIG_H

#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "cfg_get.h"
#include "config-t.h"

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
