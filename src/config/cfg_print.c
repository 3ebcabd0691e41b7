/*
 * The configuration in effect, as -T prints it: libconfig syntax that
 * loads back to the same configuration.
 */
#include <netdb.h>
#include <stdio.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "protocol.h"
#include "tls.h"

/* An address as bind = [...] takes it: no port, no brackets. */
static void
print_addr(FILE *f, const struct cfg_addr *a)
{
	char host[NI_MAXHOST];

	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	cfg_print_string(f, host);
}

/* key = ["10.0.0.0/8", ...]; nothing for an empty list (absent). */
static void
print_cidrs(FILE *f, const char *key, const struct cidr_list *cl)
{
	char net[EO_CIDR_TEXT_MAX];
	size_t i;

	if (cl->n == 0)
		return;
	fprintf(f, "\n    %s = [", key);
	for (i = 0; i < cl->n; i++) {
		cidr_format(&cl->nets[i], net, sizeof(net));
		fprintf(f, "%s\"%s\"", i ? ", " : "", net);
	}
	fputs("];", f);
}

static void
print_access(FILE *f, const struct cfg_listener *l)
{
	fprintf(f, "\n    proxy_protocol = %s;", l->proxy_protocol ? "true" :
	    "false");
	if (l->proxy_protocol)
		fprintf(f, " proxy_timeout = %u;", l->proxy_timeout);
	print_cidrs(f, "proxy_from", &l->proxy_from);
	print_cidrs(f, "allow", &l->allow);
	print_cidrs(f, "deny", &l->deny);
}

static void
print_listener(FILE *f, const struct cfg_listener *l)
{
	size_t i;

	fputs("  { name = ", f);
	cfg_print_string(f, l->name);
	fprintf(f, "; protocol = \"%s\"; enabled = %s; port = %u;\n"
	    "    bind = [", l->proto->name, l->enabled ? "true" : "false",
	    l->port);
	for (i = 0; i < l->naddrs; i++) {
		fputs(i ? ", " : "", f);
		print_addr(f, &l->addrs[i]);
	}
	fputs("];", f);
	/* What is in effect: no setting this kind of listener ignores. */
	if (!l->udp)
		fprintf(f, "\n    backlog = %d; socket_per_worker = %s;"
		    " max_connections = %u;\n    max_connections_per_source"
		    " = %u; idle_timeout = %u; write_timeout = %u;",
		    l->backlog, l->socket_per_worker ? "true" : "false",
		    l->max_conns, l->max_per_source, l->idle_timeout,
		    l->write_timeout);
	print_access(f, l);
	fprintf(f, "\n    transport = \"%s\";", l->udp ? "udp" : "tcp");
	if (l->udp)
		fprintf(f, " allow_amplification = %s;\n    udp_rate_limit = "
		    "%u; udp_rate_table = %u;", l->allow_amp ? "true" : "false",
		    l->udp_rate, l->udp_rate_table);
	if (l->tls != NULL) {
		fprintf(f, "\n    tls_handshake_timeout = %u;\n    ",
		    l->tls_timeout);
		tls_print(l->tls, f);
	}
	if (l->proto->opts_print != NULL) {
		fprintf(f, "\n    %s = { ", l->proto->name);
		l->proto->opts_print(l->popts, f);
		fputs("};", f);
	}
	fputs(" }", f);
}

void
cfg_print(const struct cfg *cfg, FILE *f)
{
	size_t i;

	fprintf(f, "# The configuration in effect, from %s: defaults and\n"
	    "# overrides resolved into each listener, protocol options"
	    " included.\n", cfg->path);
	fprintf(f, "workers = %u;\nmax_connections = %u;\nevict_after = %u;\n"
	    "shutdown_timeout = %u;\nstop_delay = %u;\nwatch_config = %s;\n"
	    "log_level = \"%s\";\nlisteners = (\n",
	    cfg->workers, cfg->max_conns, cfg->evict_after,
	    cfg->shutdown_timeout, cfg->stop_delay,
	    cfg->watch_config ? "true" : "false",
	    log_level_name(cfg->log_level));
	for (i = 0; i < cfg->nlisteners; i++) {
		print_listener(f, &cfg->listeners[i]);
		fputs(i + 1 < cfg->nlisteners ? ",\n" : "\n", f);
	}
	fputs(");\n", f);
}
