/*
 * A loaded configuration at run time: its references (the last one
 * frees it, on whichever thread lets it go) and what the runtime asks
 * of it.  See include/config.h.  Apart from the loader (config.c), so
 * that a connection that lets its configuration go reaches neither the
 * loader nor the reading kit.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "tls.h"

static void
cfg_free(struct cfg *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		if (l->proto != NULL && l->popts != NULL)
			l->proto->opts_free(l->popts);
		free(l->name);
		free(l->addrs);
		cidr_list_free(&l->proxy_from);
		cidr_list_free(&l->allow);
		cidr_list_free(&l->deny);
		tls_free(l->tls);
	}
	free(cfg->listeners);
	for (i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg->dropin_dir);
	free(cfg->path);
	free(cfg);
}

void
cfg_ref(struct cfg *cfg)
{
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void
cfg_unref(struct cfg *cfg)
{
	if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1,
	    memory_order_acq_rel) == 1)
		cfg_free(cfg);
}

int
cfg_listener_admits(const struct cfg_listener *l, const struct sockaddr *sa)
{
	if (cidr_list_match(&l->deny, sa))
		return 0;
	return l->allow.n == 0 || cidr_list_match(&l->allow, sa);
}

const struct cfg_listener *
cfg_find_listener(const struct cfg *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return &cfg->listeners[i];
	return NULL;
}
