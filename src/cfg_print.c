/*
 * The configuration in effect, as -T prints it: libconfig syntax that
 * loads back to the same configuration.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "protocol.h"

static void
print_string(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* A libconfig value as libconfig syntax, members in their order. */
static void
print_value(FILE *f, const config_setting_t *s)
{
	const char *open = "", *close = "";
	int i, n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		fprintf(f, "%lld", config_setting_get_int64(s));
		return;
	case CONFIG_TYPE_FLOAT:
		fprintf(f, "%.17g", config_setting_get_float(s));
		return;
	case CONFIG_TYPE_BOOL:
		fputs(config_setting_get_bool(s) ? "true" : "false", f);
		return;
	case CONFIG_TYPE_STRING:
		print_string(f, config_setting_get_string(s));
		return;
	case CONFIG_TYPE_GROUP:
		open = "{ ", close = "}";
		break;
	case CONFIG_TYPE_ARRAY:
		open = "[", close = "]";
		break;
	case CONFIG_TYPE_LIST:
		open = "(", close = ")";
		break;
	}
	fputs(open, f);
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);

		if (config_setting_name(e) != NULL)
			fprintf(f, "%s = ", config_setting_name(e));
		print_value(f, e);
		fputs(config_setting_is_group(s) ? "; " : i + 1 < n ? ", " : "",
		    f);
	}
	fputs(close, f);
}

/* The protocol's group as written, kept for cfg_print(); NULL: none. */
char *
cfg_group_text(const config_setting_t *g)
{
	char *text = NULL;
	size_t len;
	FILE *f;

	if (g == NULL || (f = open_memstream(&text, &len)) == NULL)
		return NULL;
	print_value(f, g);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* An address as bind = [...] takes it: no port, no brackets. */
static void
print_addr(FILE *f, const struct cfg_addr *a)
{
	char host[NI_MAXHOST];

	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	print_string(f, host);
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
	fprintf(f, "\n    proxy_protocol = %s; proxy_timeout = %u;",
	    l->proxy_protocol ? "true" : "false", l->proxy_timeout);
	print_cidrs(f, "proxy_from", &l->proxy_from);
	print_cidrs(f, "allow", &l->allow);
	print_cidrs(f, "deny", &l->deny);
}

static void
print_listener(FILE *f, const struct cfg_listener *l)
{
	size_t i;

	fputs("  { name = ", f);
	print_string(f, l->name);
	fprintf(f, "; protocol = \"%s\"; enabled = %s; port = %u;\n"
	    "    bind = [", l->proto->name, l->enabled ? "true" : "false",
	    l->port);
	for (i = 0; i < l->naddrs; i++) {
		fputs(i ? ", " : "", f);
		print_addr(f, &l->addrs[i]);
	}
	fprintf(f, "];\n    backlog = %d; max_connections = %u;"
	    " max_connections_per_source = %u;\n"
	    "    idle_timeout = %u; write_timeout = %u;", l->backlog,
	    l->max_conns, l->max_per_source, l->idle_timeout,
	    l->write_timeout);
	print_access(f, l);
	fprintf(f, "\n    transport = \"%s\"; allow_amplification = %s;"
	    " udp_rate_limit = %u; udp_rate_table = %u;", l->udp ? "udp" :
	    "tcp", l->allow_amp ? "true" : "false", l->udp_rate,
	    l->udp_rate_table);
	if (l->popts_text != NULL)
		fprintf(f, "\n    %s = %s;", l->proto->name, l->popts_text);
	fputs(" }", f);
}

void
cfg_print(const struct cfg *cfg, FILE *f)
{
	size_t i;

	fprintf(f, "# The configuration in effect, from %s: defaults and\n"
	    "# overrides resolved into each listener.  Protocol options are\n"
	    "# as written; those not written have their defaults.\n",
	    cfg->path);
	fprintf(f, "workers = %u;\nmax_connections = %u;\nevict_after = %u;\n"
	    "shutdown_timeout = %u;\nlog_level = \"%s\";\nlisteners = (\n",
	    cfg->workers, cfg->max_conns, cfg->evict_after,
	    cfg->shutdown_timeout, log_level_name(cfg->log_level));
	for (i = 0; i < cfg->nlisteners; i++) {
		print_listener(f, &cfg->listeners[i]);
		fputs(i + 1 < cfg->nlisteners ? ",\n" : "\n", f);
	}
	fputs(");\n", f);
}
