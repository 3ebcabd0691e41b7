/*
 * The Prometheus endpoint's pure parts, apart from the server so that
 * they can be tested: label escaping and reading /proc/self/stat.  The
 * endpoint itself (evhttp, GET /metrics) is src/server/metrics.c, declared in
 * server_internal.h.
 */
#ifndef EO_METRICS_H
#define EO_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* What the process_* metrics need of /proc/self/stat. */
struct proc_stat {
	uint64_t	utime;		/* clock ticks */
	uint64_t	stime;
	uint64_t	starttime;	/* ticks after boot */
	uint64_t	vsize;		/* bytes */
	uint64_t	rss;		/* pages */
};

/*
 * Parses the text of /proc/self/stat.  The command name (field 2) may
 * hold spaces and parentheses: fields are counted from the last ')'.
 * Returns 0, or -1 if the text is not such a line.
 */
int	metrics_proc_stat(const char *text, struct proc_stat *ps);

/*
 * A label value as the text format wants it: backslash, double quote
 * and newline escaped.  Cut short (never mid-escape) to fit len.
 */
void	metrics_escape(const char *in, char *out, size_t len);

#endif
