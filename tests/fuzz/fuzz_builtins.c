/*
 * libFuzzer: what the built-in services read from files at load.  The
 * first byte chooses:
 *
 *	'z'  the rest is a TZif file (daytime's timezone): parsed, then
 *	     looked up and formatted at instants across 1900 to 2200; a
 *	     lookup must give an abbreviation that is a C string and a line
 *	     that fits, whatever the file claims.
 *	'r'  the rest is a POSIX TZ rule, as in a TZif footer.
 *	'q'  the rest is a quotes_file: each quote kept must be CR LF
 *	     ended, at most 512 bytes, without a bare LF.
 *
 * daytime.c and qotd.c are compiled in, as in the unit test, so that
 * their file parsers are reached without a file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/proto/daytime.c"
#include "../../src/proto/qotd.c"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_lookups(struct daytime_opts *o)
{
	char line[DAYTIME_LINE_MAX];
	int64_t t;

	for (t = -2208988800LL; t < 7258118400LL; t += 86400LL * 331 + 7) {
		const struct tz_type *ty = tz_lookup(&o->tz, t);
		size_t n;

		if (strnlen(ty->abbr, TZ_ABBR_MAX) == TZ_ABBR_MAX)
			abort();
		n = daytime_line(o, (time_t)t, line, sizeof(line));
		if (n > 0 && (n >= sizeof(line) || line[n] != '\0' ||
		    memcmp(line + n - 2, "\r\n", 2) != 0))
			abort();
	}
}

static void
fuzz_tzif(const uint8_t *data, size_t len)
{
	struct daytime_opts *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return;
	snprintf(o->format, sizeof(o->format), "%s", "%c %z %Z");
	if (tz_parse(&o->tz, data, len) == NULL)
		fuzz_lookups(o);
	daytime_opts_free(o);
}

static void
fuzz_rule(const uint8_t *data, size_t len)
{
	struct daytime_opts *o = calloc(1, sizeof(*o));
	char *rule = malloc(len + 1);

	if (o != NULL && rule != NULL) {
		memcpy(rule, data, len);
		rule[len] = '\0';
		snprintf(o->format, sizeof(o->format), "%s", "%F %T %z %Z");
		if (tz_parse_rule(&o->tz, rule) == 0)
			fuzz_lookups(o);
	}
	free(rule);
	daytime_opts_free(o);
}

static void
fuzz_quotes(const uint8_t *data, size_t len)
{
	struct qotd_opts *o = calloc(1, sizeof(*o));
	struct cfg_diag d;
	uint32_t i;

	if (o == NULL)
		return;
	cfg_diag_init(&d);
	if (memchr(data, '\0', len) == NULL &&
	    qotd_split(o, (const char *)data, len, "fuzz", NULL, &d) == 0)
		for (i = 0; i < o->n; i++) {
			const char *q = o->quotes[i];
			size_t n = o->lens[i], j;

			if (n < 2 || n > QOTD_MAX || q[n - 2] != '\r' ||
			    q[n - 1] != '\n')
				abort();
			for (j = 0; j < n; j++)
				if (q[j] == '\n' && (j == 0 || q[j - 1] != '\r'))
					abort();
		}
	cfg_diag_free(&d);
	qotd_opts_free(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len == 0)
		return 0;
	if (data[0] == 'z')
		fuzz_tzif(data + 1, len - 1);
	else if (data[0] == 'r')
		fuzz_rule(data + 1, len - 1);
	else if (data[0] == 'q')
		fuzz_quotes(data + 1, len - 1);
	return 0;
}
