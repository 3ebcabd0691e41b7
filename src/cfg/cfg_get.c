/*
 * The typed getters: a setting read with its type and range checked,
 * or an error naming it, and a string written back as libconfig reads
 * it (for -T).  The small kit the loader, the protocols' and
 * TLS's option parsers share; it calls only diagnostics (cfg_diag.c),
 * so that a protocol's parser never calls back into the loader.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

/* ---- typed getters ------------------------------------------------ */

#define NAME_GUESS_MAX	64	/* longer names get no guess */

/* Letter case aside: libconfig's names are case-sensitive, typing is not. */
static int
name_same(char x, char y)
{
	return tolower((unsigned char)x) == tolower((unsigned char)y);
}

/*
 * Edits from a to b: a byte inserted, deleted, changed, or two
 * neighbours swapped (the commonest typo, "prot" for "port").
 * SIZE_MAX if either is longer than NAME_GUESS_MAX.
 */
static size_t
name_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, v;
	size_t rows[3][NAME_GUESS_MAX + 1];	/* rows i-2, i-1, i */
	size_t *pp, *p, *r;

	if (la > NAME_GUESS_MAX || lb > NAME_GUESS_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		rows[0][j] = j;
	for (i = 1; i <= la; i++) {
		r = rows[i % 3];
		p = rows[(i + 2) % 3];
		pp = rows[(i + 1) % 3];
		r[0] = i;
		for (j = 1; j <= lb; j++) {
			v = p[j - 1] + !name_same(a[i - 1], b[j - 1]);
			v = p[j] + 1 < v ? p[j] + 1 : v;
			v = r[j - 1] + 1 < v ? r[j - 1] + 1 : v;
			if (i > 1 && j > 1 && name_same(a[i - 1], b[j - 2]) &&
			    name_same(a[i - 2], b[j - 1]) && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			r[j] = v;
		}
	}
	return rows[la % 3][lb];
}

/*
 * The known name that name is likely a typo of: one edit away, or one
 * for every four letters up to three; the nearest, the first on a tie.
 * NULL if none is that close: a far guess misleads more than none.
 */
static const char *
name_guess(const char *name, const char *const *known)
{
	size_t max = strlen(name) / 4, best = SIZE_MAX, dist;
	const char *guess = NULL;

	max = max < 1 ? 1 : max > 3 ? 3 : max;
	for (; *known != NULL; known++)
		if ((dist = name_distance(name, *known)) <= max &&
		    dist < best) {
			best = dist;
			guess = *known;
		}
	return guess;
}

int
cfg_check_keys_skip(struct cfg_diag *d, const config_setting_t *group,
    const char *const *known, int (*skip)(const char *name))
{
	int i, n = config_setting_length(group), bad = 0;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group,
		    (unsigned)i);
		const char *name = config_setting_name(s), *guess;
		const char *const *k;

		if (name != NULL && skip != NULL && skip(name))
			continue;
		for (k = known; *k != NULL; k++)
			if (name != NULL && strcmp(name, *k) == 0)
				break;
		if (*k == NULL && name != NULL &&
		    (guess = name_guess(name, known)) != NULL) {
			cfg_error(d, s, "unknown setting \"%s\" (did you mean "
			    "\"%s\"?)", name, guess);
			bad = 1;
		} else if (*k == NULL) {
			cfg_error(d, s, "unknown setting \"%s\"",
			    name ? name : "?");
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

int
cfg_check_keys(struct cfg_diag *d, const config_setting_t *group,
    const char *const *known)
{
	return cfg_check_keys_skip(d, group, known, NULL);
}

int
cfg_get_uint(struct cfg_diag *d, const config_setting_t *group,
    const char *key, uint32_t min, uint32_t max, uint32_t *out)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	long long v;
	int type;

	if (s == NULL)
		return 0;
	type = config_setting_type(s);
	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		cfg_error(d, s, "%s must be an integer", key);
		return -1;
	}
	/* The scan refused every integer libconfig would read wrongly. */
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max) {
		cfg_error(d, s, "%s must be %u to %u, not %lld", key, min, max,
		    v);
		return -1;
	}
	*out = (uint32_t)v;
	return 1;
}

int
cfg_get_bool(struct cfg_diag *d, const config_setting_t *group,
    const char *key, int *out)
{
	const config_setting_t *s = config_setting_get_member(group, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		cfg_error(d, s, "%s must be true or false", key);
		return -1;
	}
	*out = config_setting_get_bool(s);
	return 1;
}

int
cfg_get_string(struct cfg_diag *d, const config_setting_t *group,
    const char *key, size_t maxlen, const char **out)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	const char *v;

	if (s == NULL)
		return 0;
	if ((v = config_setting_get_string(s)) == NULL) {
		cfg_error(d, s, "%s must be a string", key);
		return -1;
	}
	if (strlen(v) > maxlen) {
		cfg_error(d, s, "%s must be at most %zu bytes", key, maxlen);
		return -1;
	}
	*out = v;
	return 1;
}

/* Only escapes libconfig 1.5's scanner reads back (\xHH included). */
void
cfg_print_string(FILE *f, const char *s)
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
