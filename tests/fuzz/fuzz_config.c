/*
 * libFuzzer: the configuration loader.  Any text must give either a
 * complete configuration and no message, or no configuration and at
 * least one message, each naming the file; never a crash or a leak.
 * A loaded listener's protocol must take a question.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
try_listener(const struct cfg_listener *l)
{
	static const unsigned char q[] = "Is it?";
	struct iovec iov[8];
	uint64_t state[4] = { 0 }, rng = 1;
	struct proto_in in = { q, 6 };
	struct proto_out out = { iov, 0, 8, 0, (size_t)-1, 0, 0, &rng, NULL, NULL,
	    0, 0 };

	if (l->proto->init != NULL)
		l->proto->init(state, l->popts);
	(void)l->proto->input(state, l->popts, &in, &out);
	if (out.len == 0 && l->proto == &proto_echo)
		abort();
	(void)l->proto->eof(state, l->popts, &in, &out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct cfg_diag d;
	struct cfg *cfg;
	size_t i;

	/* @include and include_dir would read whatever files they name:
	   the loader's own code is what is fuzzed here. */
	if (text == NULL || memmem(data, size, "@include", 8) != NULL ||
	    memmem(data, size, "include_dir", 11) != NULL) {
		free(text);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	cfg_diag_init(&d);
	cfg = cfg_load_string(text, "fuzz.conf", &d);
	if (cfg != NULL) {
		if (d.n != 0 || cfg->nlisteners == 0)
			abort();
		for (i = 0; i < cfg->nlisteners; i++)
			try_listener(&cfg->listeners[i]);
		cfg_unref(cfg);
	} else {
		if (d.n == 0)
			abort();
		for (i = 0; i < d.n; i++)
			if (strncmp(d.msgs[i], "fuzz.conf", 9) != 0)
				abort();
	}
	cfg_diag_free(&d);
	free(text);
	return 0;
}
