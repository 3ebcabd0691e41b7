/*
 * The reading kit (src/cfg/): what the loader and every option parser
 * (a protocol's, TLS's) use to read a libconfig group and report its
 * mistakes as "FILE:LINE: what is wrong" (cfg_diag.c), and the typed
 * getters (cfg_get.c).  A protocol's header includes this, not
 * config.h: the loader is a layer above the protocols.
 */
#ifndef EO_CFG_GET_H
#define EO_CFG_GET_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
/* s as a libconfig string literal, quoted and escaped: for opts_print(). */
void	cfg_print_string(FILE *f, const char *s);

#endif
