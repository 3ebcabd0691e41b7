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

#include "config-t.h"
#include "log.h"

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
