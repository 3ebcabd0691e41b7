/*
 * Logging: see include/log.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int	log_level = EO_LOG_INFO;
static int		log_journal;	/* stderr is journald's stream */

static const struct {
	const char	*name;
	int		 level;
} log_levels[] = {
	{ "error",	EO_LOG_ERR },
	{ "warning",	EO_LOG_WARNING },
	{ "notice",	EO_LOG_NOTICE },
	{ "info",	EO_LOG_INFO },
	{ "debug",	EO_LOG_DEBUG },
};

/*
 * JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it is
 * only ours if stderr still is that stream (a child with redirected
 * stderr inherits the variable too).
 */
void
log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	log_journal = 0;
	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return;
	if (fstat(STDERR_FILENO, &st) == -1)
		return;
	log_journal = (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

int
log_to_journal(void)
{
	return log_journal;
}

void
log_set_level(int level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int
log_enabled(int level)
{
	return level <= atomic_load_explicit(&log_level,
	    memory_order_relaxed);
}

int
log_level_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(name, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -1;
}

const char *
log_level_name(int level)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return "?";
}

/*
 * Length of line once snprintf's result n, written at len, is counted:
 * n is what it wanted to write, so a truncation ends at the last byte
 * kept (room - 1: the NUL's place), and a failure (n < 0) or an empty
 * result adds nothing.  Counting anything else would send bytes that
 * were never written.
 */
static size_t
log_advance(size_t len, size_t room, int n)
{
	if (n <= 0)
		return len;
	if ((size_t)n >= room - len)
		return room - 1;
	return len + (size_t)n;
}

/* "<N>" under journald, else "timestamp level: "; returns its length. */
static size_t
log_prefix(char *line, size_t room, int level)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (log_journal)
		return log_advance(0, room, snprintf(line, room, "<%d>",
		    level));
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return log_advance(0, room, snprintf(line, room, "%s.%03ld %s: ",
	    stamp, ts.tv_nsec / 1000000, log_level_name(level)));
}

/*
 * A message may carry text from a configuration file or a peer: a line
 * break in it would start a second line, which journald reads with a
 * priority prefix of the attacker's choosing ("<0>").  Control bytes
 * become '?'; a tab stays.
 */
static void
log_defang(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			s[i] = '?';
}

static void	log_vwrite(int, const char *, const char *, va_list)
		    EO_PRINTF(3, 0);

static void
log_vwrite(int level, const char *errstr, const char *fmt, va_list ap)
{
	char line[2048];
	size_t len, start, room = sizeof(line) - 1;	/* one for '\n' */
	int n;

	if (!log_enabled(level))
		return;
	start = len = log_prefix(line, room, level);
	n = vsnprintf(line + len, room - len, fmt, ap);
	/* Unformattable (EILSEQ, EOVERFLOW): the format still says what. */
	if (n < 0)
		n = snprintf(line + len, room - len, "%s", fmt);
	len = log_advance(len, room, n);
	if (errstr != NULL && len < room - 1)
		len = log_advance(len, room, snprintf(line + len, room - len,
		    ": %s", errstr));
	log_defang(line + start, len - start);
	line[len++] = '\n';
	/* One write: lines from several threads stay whole. */
	if (write(STDERR_FILENO, line, len) == -1)
		return;		/* nowhere left to complain */
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite(EO_LOG_WARNING, strerror_r(saved, buf, sizeof(buf)), fmt,
	    ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(EO_LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}
