/*
 * daytime (RFC 867): at connect, one line with the date and time, then
 * close.  The RFC leaves the form free; ours is strftime(3)'s format
 * option (default "%A, %B %d, %Y %H:%M:%S-%Z", the RFC's example
 * shape), in the timezone option (default "UTC"), ended by CR LF.
 *
 * Why the zone is not TZ and localtime_r(3): glibc keeps one zone for
 * the whole process, set from the environment by tzset(3), and
 * setenv(3) while worker threads read the environment is a data race;
 * two listeners could not have two zones either.  So the zone's TZif
 * file (tzfile(5)) is read once, at load, into a table of transitions
 * and the POSIX TZ rule of its footer for the years after them; a
 * lookup is a binary search, and strftime(3) gets a struct tm that
 * carries its own offset and abbreviation (tm_gmtoff, tm_zone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define DAYTIME_FORMAT		"%A, %B %d, %Y %H:%M:%S-%Z"
#define DAYTIME_FORMAT_MAX	128	/* bytes of format */
#define DAYTIME_LINE_MAX	256	/* bytes of one reply, CR LF included */
#define TZ_DIR			"/usr/share/zoneinfo/"
#define TZ_NAME_MAX		64
#define TZ_FILE_MAX		(256 * 1024) /* the largest zone is ~4 KiB */
#define TZ_ABBR_MAX		8

struct tz_type {
	int32_t		 off;		/* seconds east of UTC */
	int		 isdst;
	char		 abbr[TZ_ABBR_MAX];
};

/* Mm.w.d/time of a POSIX TZ rule: a day of a month, a local time. */
struct tz_date {
	int		 mon;		/* 1..12 */
	int		 week;		/* 1..5, 5: the last */
	int		 wday;		/* 0: Sunday */
	int32_t		 secs;		/* local time of day, may be < 0 */
};

struct tz {
	int64_t		*when;		/* transitions, ascending */
	uint8_t		*idx;		/* the type from each transition */
	uint32_t	 n;
	struct tz_type	*types;
	uint32_t	 ntypes;
	/* The footer, for times past the last transition. */
	int		 has_rule;
	struct tz_type	 std, dst;
	int		 has_dst;
	struct tz_date	 start, end;
};

struct daytime_opts {
	char		 format[DAYTIME_FORMAT_MAX + 1];
	char		 zone[TZ_NAME_MAX + 1];	/* its name, for -T */
	struct tz	 tz;		/* n == 0, !has_rule: UTC */
};

struct daytime_state {
	char		 line[DAYTIME_LINE_MAX];
};

static const struct tz_type tz_utc = { 0, 0, "UTC" };

/* ---- POSIX TZ strings, as in a TZif footer ------------------------- */

/* "CET" or "<+0530>": the abbreviation; returns the rest, or NULL. */
static const char *
tz_parse_abbr(const char *s, char *abbr)
{
	size_t n = 0;

	if (*s == '<') {
		for (s++; *s != '\0' && *s != '>'; s++)
			if (n < TZ_ABBR_MAX - 1)
				abbr[n++] = *s;
		if (*s++ != '>')
			return NULL;
	} else
		for (; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z');
		    s++)
			if (n < TZ_ABBR_MAX - 1)
				abbr[n++] = *s;
	abbr[n] = '\0';
	return n > 0 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] in seconds; returns the rest, or NULL. */
static const char *
tz_parse_hms(const char *s, int32_t *secs)
{
	int32_t sign = 1, v = 0, part, i;

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	for (i = 0; i < 3; i++) {
		if (i > 0 && *s != ':')
			break;
		if (i > 0)
			s++;
		if (*s < '0' || *s > '9')
			return NULL;
		for (part = 0; *s >= '0' && *s <= '9' && part < 1000; s++)
			part = part * 10 + (*s - '0');
		v = v * 60 + part;
	}
	for (; i < 3; i++)
		v *= 60;
	*secs = sign * v;
	return s;
}

/* ",Mm.w.d[/time]"; returns the rest, or NULL (J and n forms too). */
static const char *
tz_parse_date(const char *s, struct tz_date *dt)
{
	if (s[0] != ',' || s[1] != 'M')
		return NULL;
	if (sscanf(s + 2, "%d.%d.%d", &dt->mon, &dt->week, &dt->wday) != 3 ||
	    dt->mon < 1 || dt->mon > 12 || dt->week < 1 || dt->week > 5 ||
	    dt->wday < 0 || dt->wday > 6)
		return NULL;
	s += strspn(s + 2, "0123456789.") + 2;
	dt->secs = 2 * 3600;
	if (*s == '/')
		s = tz_parse_hms(s + 1, &dt->secs);
	return s;
}

/* The footer's rule, "CET-1CEST,M3.5.0,M10.5.0/3"; -1 if not understood. */
static int
tz_parse_rule(struct tz *tz, const char *s)
{
	int32_t off;

	if ((s = tz_parse_abbr(s, tz->std.abbr)) == NULL ||
	    (s = tz_parse_hms(s, &off)) == NULL)
		return -1;
	tz->std.off = -off;		/* POSIX counts west of UTC */
	tz->has_rule = 1;
	if (*s == '\0')
		return 0;
	if ((s = tz_parse_abbr(s, tz->dst.abbr)) == NULL)
		return -1;
	tz->dst.off = tz->std.off + 3600;
	tz->dst.isdst = 1;
	if (*s != ',' && *s != '\0') {
		if ((s = tz_parse_hms(s, &off)) == NULL)
			return -1;
		tz->dst.off = -off;
	}
	if ((s = tz_parse_date(s, &tz->start)) == NULL ||
	    (s = tz_parse_date(s, &tz->end)) == NULL || *s != '\0')
		return -1;
	tz->has_dst = 1;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
tz_days(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* When dt happens in year y, UTC, for a clock off seconds east. */
static int64_t
tz_when(const struct tz_date *dt, int64_t y, int32_t off)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int64_t first = tz_days(y, dt->mon, 1), day;
	int len = mdays[dt->mon - 1], wd;

	if (dt->mon == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		len = 29;
	wd = (int)(((first + 4) % 7 + 7) % 7);	/* 1970-01-01: Thursday */
	day = (dt->wday - wd + 7) % 7 + 7 * (dt->week - 1);
	while (day >= len)
		day -= 7;
	return (first + day) * 86400 + dt->secs - off;
}

static const struct tz_type *
tz_by_rule(const struct tz *tz, int64_t t)
{
	int64_t y, start, end;
	struct tm tm;
	time_t tt = (time_t)(t + tz->std.off);

	if (!tz->has_dst || gmtime_r(&tt, &tm) == NULL)
		return &tz->std;
	y = (int64_t)tm.tm_year + 1900;
	start = tz_when(&tz->start, y, tz->std.off);
	end = tz_when(&tz->end, y, tz->dst.off);
	if (start < end)
		return t >= start && t < end ? &tz->dst : &tz->std;
	/* Southern hemisphere: summer spans the new year. */
	return t >= end && t < start ? &tz->std : &tz->dst;
}

/* The offset and abbreviation in force at t. */
static const struct tz_type *
tz_lookup(const struct tz *tz, int64_t t)
{
	uint32_t lo = 0, hi = tz->n;

	if (tz->n == 0 || t >= tz->when[tz->n - 1]) {
		if (tz->has_rule)
			return tz_by_rule(tz, t);
		if (tz->n == 0)
			return tz->ntypes > 0 ? &tz->types[0] : &tz_utc;
	}
	if (t < tz->when[0])
		return &tz->types[0];
	while (hi - lo > 1) {		/* when[lo] <= t < when[hi] */
		uint32_t mid = lo + (hi - lo) / 2;

		if (tz->when[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return &tz->types[tz->idx[lo]];
}

/* ---- TZif files (tzfile(5)) ---------------------------------------- */

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
tz_free(struct tz *tz)
{
	free(tz->when);
	free(tz->idx);
	free(tz->types);
	memset(tz, 0, sizeof(*tz));
}

/* The version 2+ block at p (len bytes to the end); NULL or the error. */
static const char *
tz_parse_v2(struct tz *tz, const unsigned char *p, size_t len)
{
	uint32_t isut, isstd, leap, timecnt, typecnt, charcnt, i;
	const unsigned char *types, *chars;
	size_t need;

	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return "not a TZif file";
	isut = be32(p + 20), isstd = be32(p + 24), leap = be32(p + 28);
	timecnt = be32(p + 32), typecnt = be32(p + 36), charcnt = be32(p + 40);
	if (leap != 0)
		return "zones with leap seconds (right/...) are not supported";
	if (typecnt == 0 || typecnt > 256 || timecnt > 65536 || charcnt > 256)
		return "corrupt TZif counts";
	need = 44 + (size_t)timecnt * 9 + (size_t)typecnt * 6 + charcnt +
	    isstd + isut;
	if (len < need)
		return "truncated TZif file";
	tz->when = calloc(timecnt + 1, sizeof(*tz->when));
	tz->idx = calloc(timecnt + 1, 1);
	tz->types = calloc(typecnt, sizeof(*tz->types));
	if (tz->when == NULL || tz->idx == NULL || tz->types == NULL)
		return "out of memory";
	p += 44;
	for (i = 0; i < timecnt; i++, p += 8)
		tz->when[i] = (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
	for (i = 0; i < timecnt; i++)
		if ((tz->idx[i] = p[i]) >= typecnt)
			return "corrupt TZif transition";
	types = p + timecnt;
	chars = types + (size_t)typecnt * 6;
	for (i = 0; i < typecnt; i++) {
		const unsigned char *t = types + (size_t)i * 6;

		if (t[5] >= charcnt)
			return "corrupt TZif abbreviation";
		tz->types[i].off = (int32_t)be32(t);
		tz->types[i].isdst = t[4];
		snprintf(tz->types[i].abbr, TZ_ABBR_MAX, "%.*s",
		    (int)strnlen((const char *)chars + t[5], charcnt - t[5]),
		    chars + t[5]);
	}
	tz->n = timecnt;
	tz->ntypes = typecnt;
	return NULL;
}

/* The footer after the v2 block: "\nTZ\n"; NULL or the error. */
static const char *
tz_parse_footer(struct tz *tz, const unsigned char *p, size_t len)
{
	char rule[128];
	const unsigned char *nl;

	if (len < 2 || p[0] != '\n' ||
	    (nl = memchr(p + 1, '\n', len - 1)) == NULL)
		return NULL;		/* none: the last type rules on */
	if (nl - p - 1 == 0)
		return NULL;
	if ((size_t)(nl - p - 1) >= sizeof(rule))
		return "TZ rule too long";
	memcpy(rule, p + 1, (size_t)(nl - p - 1));
	rule[nl - p - 1] = '\0';
	if (tz_parse_rule(tz, rule) == -1)
		return "TZ rule not understood";
	return NULL;
}

/* The whole file; NULL or the error. */
static const char *
tz_parse(struct tz *tz, const unsigned char *p, size_t len)
{
	uint32_t isut, isstd, leap, timecnt, typecnt, charcnt;
	size_t v1;
	const char *err;

	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return "not a TZif file";
	if (p[4] < '2')
		return "TZif version 1 files are not supported";
	isut = be32(p + 20), isstd = be32(p + 24), leap = be32(p + 28);
	timecnt = be32(p + 32), typecnt = be32(p + 36), charcnt = be32(p + 40);
	v1 = 44 + (size_t)timecnt * 5 + (size_t)typecnt * 6 + charcnt +
	    (size_t)leap * 8 + isstd + isut;
	if (len < v1)
		return "truncated TZif file";
	if ((err = tz_parse_v2(tz, p + v1, len - v1)) != NULL)
		return err;
	v1 += 44 + (size_t)tz->n * 9 + (size_t)tz->ntypes * 6 +
	    be32(p + v1 + 40) + be32(p + v1 + 24) + be32(p + v1 + 20);
	return tz_parse_footer(tz, p + v1, len - v1);
}

/*
 * Reads /usr/share/zoneinfo/name; NULL or the error.  A regular file
 * of bounded size only, opened without blocking (a FIFO would hang the
 * load).
 */
static const char *
tz_load(struct tz *tz, const char *name)
{
	char path[sizeof(TZ_DIR) + TZ_NAME_MAX];
	unsigned char *buf;
	struct stat st;
	const char *err = NULL;
	ssize_t n;
	int fd;

	if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL ||
	    strlen(name) > TZ_NAME_MAX || strspn(name, "ABCDEFGHIJKLMNOPQRSTUV"
	    "WXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != strlen(name))
		return "not a zone name such as \"Europe/Paris\"";
	snprintf(path, sizeof(path), "%s%s", TZ_DIR, name);
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		return errno == ENOENT ? "no such zone in " TZ_DIR :
		    "cannot open its file in " TZ_DIR;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > TZ_FILE_MAX) {
		close(fd);
		return "not a zone file (a regular file of at most 256 KiB)";
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		err = "out of memory";
	else if ((n = read(fd, buf, (size_t)st.st_size + 1)) != st.st_size)
		err = "cannot read its file";
	else
		err = tz_parse(tz, buf, (size_t)n);
	free(buf);
	close(fd);
	if (err != NULL)
		tz_free(tz);
	return err;
}

/* ---- the protocol -------------------------------------------------- */

/* The line for t, CR LF ended, in buf; its length (0: too long). */
static size_t
daytime_line(const struct daytime_opts *o, time_t t, char *buf, size_t cap)
{
	const struct tz_type *ty = tz_lookup(&o->tz, (int64_t)t);
	time_t local = t + ty->off;
	struct tm tm;
	size_t n;

	if (gmtime_r(&local, &tm) == NULL)
		return 0;
	/* strftime's %z and %Z read these, not the process's zone. */
	tm.tm_gmtoff = ty->off;
	tm.tm_zone = ty->abbr;
	tm.tm_isdst = ty->isdst;
	/* The format is the operator's, checked at load. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = cap < 3 ? 0 : strftime(buf, cap - 2, o->format, &tm);
#pragma GCC diagnostic pop
	if (n == 0)
		return 0;
	memcpy(buf + n, "\r\n\0", 3);	/* strftime left room for it */
	return n + 2;
}

static void
daytime_opts_free(void *vopts)
{
	struct daytime_opts *o = vopts;

	if (o == NULL)
		return;
	tz_free(&o->tz);
	free(o);
}

/* The format gives a non-empty line that fits, for a sample time. */
static int
daytime_check_format(struct daytime_opts *o, const config_setting_t *g,
    struct cfg_diag *d)
{
	char line[DAYTIME_LINE_MAX];

	if (strpbrk(o->format, "\r\n") != NULL) {
		cfg_error(d, config_setting_get_member(g, "format"),
		    "format must be one line");
		return -1;
	}
	/* A long day and month name, two digit everything. */
	if (daytime_line(o, (time_t)1726999199, line, sizeof(line)) <= 2) {
		cfg_error(d, config_setting_get_member(g, "format"),
		    "format must give a non-empty line of at most %d bytes",
		    DAYTIME_LINE_MAX - 2);
		return -1;
	}
	return 0;
}

static int
daytime_opts_parse(const config_setting_t *group, void **optsp,
    struct cfg_diag *d)
{
	static const char *const known[] = { "format", "timezone", NULL };
	struct daytime_opts *o;
	const char *format = DAYTIME_FORMAT, *zone = "UTC", *err;
	int bad = 0;

	*optsp = NULL;
	if (group != NULL) {
		bad |= cfg_check_keys(d, group, known) < 0;
		bad |= cfg_get_string(d, group, "format", DAYTIME_FORMAT_MAX,
		    &format) < 0;
		bad |= cfg_get_string(d, group, "timezone", TZ_NAME_MAX,
		    &zone) < 0;
	}
	if (bad)
		return -1;
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		cfg_error(d, group, "out of memory");
		return -1;
	}
	snprintf(o->format, sizeof(o->format), "%s", format);
	snprintf(o->zone, sizeof(o->zone), "%s", zone);
	if (strcmp(zone, "UTC") != 0 && (err = tz_load(&o->tz, zone)) != NULL) {
		cfg_error(d, group != NULL ? config_setting_get_member(group,
		    "timezone") : NULL, "timezone \"%s\": %s", zone, err);
		bad = 1;
	} else if (daytime_check_format(o, group, d) == -1)
		bad = 1;
	if (bad) {
		daytime_opts_free(o);
		return -1;
	}
	*optsp = o;
	return 0;
}

static void
daytime_opts_print(const void *vopts, FILE *f)
{
	const struct daytime_opts *o = vopts;

	fputs("format = ", f);
	cfg_print_string(f, o->format);
	fputs("; timezone = ", f);
	cfg_print_string(f, o->zone);
	fputs("; ", f);
}

static time_t
daytime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static enum proto_verdict
daytime_greet(void *vstate, const void *opts, struct proto_out *out)
{
	struct daytime_state *st = vstate;
	size_t n = daytime_line(opts, daytime_now(), st->line,
	    sizeof(st->line));

	if (n > 0 && proto_room(out, 1))
		proto_put(out, st->line, n);
	return EO_PROTO_CLOSE;
}

static const char *
daytime_close_why(const void *state, const void *opts)
{
	(void)state;
	(void)opts;
	return "daytime sent";
}

/* Any datagram, even empty, gets the line (RFC 867). */
static size_t
daytime_dgram(const void *opts, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap, uint64_t *rng)
{
	(void)in;
	(void)inlen;
	(void)rng;
	return daytime_line(opts, daytime_now(), (char *)out, outcap);
}

const struct protocol proto_daytime = {
	.name = "daytime",
	.state_size = sizeof(struct daytime_state),
	.state_version = 1,
	.opts_parse = daytime_opts_parse,
	.opts_free = daytime_opts_free,
	.input = proto_drop_close,
	.eof = proto_drop_close,
	.close_why = daytime_close_why,
	.greet = daytime_greet,
	.dgram = daytime_dgram,
	.amplifies = 1,
	.opts_print = daytime_opts_print,
};
