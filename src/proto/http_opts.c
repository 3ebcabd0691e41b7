/*
 * A listener's http = { ... } group: defaults, then what the group sets,
 * each checked for type and range with the cfg kit so every mistake is
 * reported as FILE:LINE at once.  The defaults are safe on a public
 * port: a client can make the daemon wait 10 s and send 10 MiB at most.
 */
#include <string.h>

#include "http_opts.h"

#define HTTP_DEF_MAX_DELAY	10000		/* ms */
#define HTTP_DEF_MAX_RESPONSE	(10u << 20)
#define HTTP_DEF_MAX_HEADER	8192		/* nginx's header buffer */
#define HTTP_DEF_MAX_BODY	(1u << 20)	/* nginx's client_max_body_size */
#define HTTP_DEF_TIMEOUT	30		/* s */
#define HTTP_DEF_MAX_REQUESTS	1000		/* nginx's keepalive_requests */
#define HTTP_DEF_MAX_MESSAGE	(1u << 20)

static void
http_opts_defaults(struct http_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->format = HTTP_FMT_JSON;
	o->controls = 1;
	o->max_delay = HTTP_DEF_MAX_DELAY;
	o->max_response_size = HTTP_DEF_MAX_RESPONSE;
	o->max_header_size = HTTP_DEF_MAX_HEADER;
	o->max_body_size = HTTP_DEF_MAX_BODY;
	o->request_timeout = HTTP_DEF_TIMEOUT;
	o->max_requests = HTTP_DEF_MAX_REQUESTS;
	o->max_message_size = HTTP_DEF_MAX_MESSAGE;
}

static int
http_opts_format(const config_setting_t *group, struct http_opts *o,
    struct cfg_diag *d)
{
	const char *f;
	int got = cfg_get_string(d, group, "format", 8, &f);

	if (got <= 0)
		return got;
	if (strcmp(f, "json") == 0)
		o->format = HTTP_FMT_JSON;
	else if (strcmp(f, "text") == 0)
		o->format = HTTP_FMT_TEXT;
	else {
		cfg_error(d, config_setting_get_member(group, "format"),
		    "format must be \"json\" or \"text\", not \"%s\"", f);
		return -1;
	}
	return 1;
}

int
http_opts_parse(const config_setting_t *group, struct http_opts *o,
    struct cfg_diag *d)
{
	static const char *const known[] = { "format", "controls",
	    "max_delay", "max_response_size", "max_header_size",
	    "max_body_size", "request_timeout", "max_requests",
	    "max_message_size", NULL };
	uint32_t resp = HTTP_DEF_MAX_RESPONSE;
	int bad = 0;

	http_opts_defaults(o);
	if (group == NULL)
		return 0;
	if (!config_setting_is_group(group)) {
		cfg_error(d, group, "http must be a group: http = { ... };");
		return -1;
	}
	bad |= cfg_check_keys(d, group, known) < 0;
	bad |= http_opts_format(group, o, d) < 0;
	bad |= cfg_get_bool(d, group, "controls", &o->controls) < 0;
	bad |= cfg_get_uint(d, group, "max_delay", 0, 600000,
	    &o->max_delay) < 0;
	bad |= cfg_get_uint(d, group, "max_response_size", 0, UINT32_MAX,
	    &resp) < 0;
	bad |= cfg_get_uint(d, group, "max_header_size", 256, 1u << 20,
	    &o->max_header_size) < 0;
	bad |= cfg_get_uint(d, group, "max_body_size", 0, 64u << 20,
	    &o->max_body_size) < 0;
	bad |= cfg_get_uint(d, group, "request_timeout", 0, 86400,
	    &o->request_timeout) < 0;
	bad |= cfg_get_uint(d, group, "max_requests", 0, UINT32_MAX,
	    &o->max_requests) < 0;
	bad |= cfg_get_uint(d, group, "max_message_size", 1, 64u << 20,
	    &o->max_message_size) < 0;
	o->max_response_size = resp;
	return bad ? -1 : 0;
}

void
http_opts_print(const struct http_opts *o, FILE *f)
{
	fprintf(f, "format = \"%s\"; controls = %s; max_delay = %u;\n"
	    "      max_response_size = %llu; max_header_size = %u;\n"
	    "      max_body_size = %u; request_timeout = %u; "
	    "max_requests = %u;\n      max_message_size = %u; ",
	    o->format == HTTP_FMT_TEXT ? "text" : "json",
	    o->controls ? "true" : "false", o->max_delay,
	    (unsigned long long)o->max_response_size, o->max_header_size,
	    o->max_body_size, o->request_timeout, o->max_requests,
	    o->max_message_size);
}
