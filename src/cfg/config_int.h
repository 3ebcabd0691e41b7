/*
 * The reading kit's contract with the loader: cfg_diag.c (diagnostics),
 * cfg_source.c (the files and their text) and cfg_get.c here, and the
 * loader in src/config/ (config.c, cfg_listener.c, cfg_print.c).
 * Nothing else includes it: the rest of the daemon sees include/config.h.
 */
#ifndef EO_CONFIG_INT_H
#define EO_CONFIG_INT_H

#include <sys/stat.h>
#include <sys/types.h>

#include <stddef.h>

#include "config.h"

#define INCLUDE_DEPTH_MAX	10	/* libconfig 1.5's MAX_INCLUDE_DEPTH */

struct cfg_src {
	char		*name;		/* as libconfig names it; NULL: main */
	char		*path;		/* as opened, for messages */
	char		*text;		/* NUL-terminated */
	size_t		 len;
	size_t		*lines;		/* each line's offset, built on use */
	size_t		 nlines;
	dev_t		 dev;
	ino_t		 ino;
};

struct cfg_srcs {
	struct cfg_src	*v;
	size_t		 n;
	size_t		 bytes;		/* read so far, all files */
	const char	*incdir;	/* libconfig's include dir, or NULL */
	size_t		 chain[INCLUDE_DEPTH_MAX + 1]; /* being scanned */
	int		 depth;
};

/* cfg_diag.c */
void	cfg_diag_addf(struct cfg_diag *d, const char *file, long line,
	    const char *fmt, ...) EO_PRINTF(4, 5);
const char *cfg_diag_dir(const struct cfg_diag *d, const char *file);
void	cfg_diag_finish(struct cfg_diag *d);

/* cfg_source.c */
char	*cfg_file_slurp(struct cfg_srcs *S, const char *path, size_t *len,
	    struct stat *st, char *why, size_t whylen);
ssize_t	 cfg_srcs_add(struct cfg_srcs *S, const char *name, const char *path,
	    char *text, size_t len, const struct stat *st);
int	 cfg_scan_src(struct cfg_diag *d, struct cfg_srcs *S, size_t src);
/* The text libconfig calls file (NULL: the main one) in S, or NULL. */
struct cfg_src *cfg_srcs_find(struct cfg_srcs *S, const char *file);
void	 cfg_setting_path(const struct cfg_diag *d, const config_setting_t *s,
	    char *buf, size_t len);
void	 cfg_place_from(const struct cfg_diag *d, const config_setting_t *a,
	    const config_setting_t *b, char *buf, size_t len);
void	 cfg_syntax_error(struct cfg_diag *d, config_t *lc, size_t self);

/* config.c */
/* Makes a struct cfg of a parsed file: config.c's cfg_build(). */
typedef struct cfg *(*cfg_builder)(config_t *lc, const char *name,
    struct cfg_diag *d);
/*
 * Reads the file at path (or text, named name), its includes and
 * drop-ins, checked as cfg_source.c says, and hands what libconfig made
 * of it to build: its result, or NULL with the reasons in d.
 */
struct cfg *cfg_read_file(const char *path, struct cfg_diag *d,
	    cfg_builder build);
struct cfg *cfg_read_string(const char *text, const char *name,
	    struct cfg_diag *d, cfg_builder build);

#endif
