/*
 * A listener's http = { ... } options: read, checked and printed on the
 * config side of the protocol.
 */
#ifndef EO_HTTP_OPTS_H
#define EO_HTTP_OPTS_H

#include <stdio.h>

#include "cfg_get.h"
#include "http-t.h"

/* Defaults into o; then the group's settings (group may be NULL).
   0, or -1 with every mistake added to d as FILE:LINE: message. */
int	http_opts_parse(const config_setting_t *group, struct http_opts *o,
	    struct cfg_diag *d);
/* The options in libconfig syntax, every one resolved (for -T). */
void	http_opts_print(const struct http_opts *o, FILE *f);

#endif
