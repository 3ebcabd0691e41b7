/*
 * Logging to stderr: one line per call, written with a single write(2),
 * so lines from different threads never interleave.
 *
 * Under journald (JOURNAL_STREAM names our stderr, as sd-daemon(3)
 * describes) a line is "<N>message": journald adds time and priority.
 * Otherwise it is "2026-11-23T17:16:00.123 warning: message".
 */
#ifndef EO_LOG_H
#define EO_LOG_H


/* syslog(3) priorities, as journald reads them. */
enum eo_log_level {
	EO_LOG_ERR = 3,
	EO_LOG_WARNING = 4,
	EO_LOG_NOTICE = 5,
	EO_LOG_INFO = 6,
	EO_LOG_DEBUG = 7
};

#define EO_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Looks at JOURNAL_STREAM once; call before threads start. */
void	log_init(void);
/* Whether log_init() found stderr to be journald's stream. */
int	log_to_journal(void);

/* The most verbose level written; any thread, any time (reload). */
void	log_set_level(int level);

/* "debug", "info", "notice", "warning", "error" to a level, or -1. */
int	log_level_from_name(const char *name);
const char *log_level_name(int level);

/* True if a message at this level would be written. */
int	log_enabled(int level);

void	log_msg(int level, const char *fmt, ...) EO_PRINTF(2, 3);
/* As log_msg at warning, with ": strerror(errno)" appended. */
void	log_warn(const char *fmt, ...) EO_PRINTF(1, 2);
void	log_warnx(const char *fmt, ...) EO_PRINTF(1, 2);

#define log_err(...)	log_msg(EO_LOG_ERR, __VA_ARGS__)
#define log_notice(...)	log_msg(EO_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(EO_LOG_INFO, __VA_ARGS__)
/* Formats nothing unless debug is on: per-connection detail is cheap. */
#define log_debug(...) do {						\
	if (log_enabled(EO_LOG_DEBUG))					\
		log_msg(EO_LOG_DEBUG, __VA_ARGS__);			\
} while (0)

#endif
