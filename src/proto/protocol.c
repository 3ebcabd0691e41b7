/*
 * The protocol table: the one place that names every protocol.  It
 * calls down into them; what they share (the PRNG, the no-option
 * parser, the closing end-of-input handlers) is in proto_kit.c, so that
 * no protocol calls back up into the table.
 */
#include <stdio.h>
#include <string.h>

#include "protocol.h"

static const struct protocol *const protocols[] = {
	&proto_echo,
	&proto_oracle,
	&proto_discard,
	&proto_chargen,
	&proto_daytime,
	&proto_time,
	&proto_qotd,
	&proto_metrics,
	&proto_http,
};

#define NPROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

const struct protocol *
protocol_find(const char *name)
{
	size_t i;

	for (i = 0; i < NPROTOCOLS; i++)
		if (strcmp(protocols[i]->name, name) == 0)
			return protocols[i];
	return NULL;
}

const char *
protocol_names(void)
{
	static char names[128];
	size_t i, len = 0;

	if (names[0] != '\0')
		return names;
	for (i = 0; i < NPROTOCOLS && len < sizeof(names); i++) {
		int n = snprintf(names + len, sizeof(names) - len, "%s%s",
		    i > 0 ? ", " : "", protocols[i]->name);
		if (n > 0)
			len += (size_t)n;
	}
	return names;
}
