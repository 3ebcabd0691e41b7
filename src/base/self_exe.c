/*
 * The daemon's own path: see include/self_exe.h.  Here, at the bottom,
 * because the check of a reload and the re-exec of a restart both run
 * it, and neither should call the other to learn it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "self_exe.h"

/*
 * The binary to run as the check and to execute again on SIGUSR2: the
 * path we were started by, as given (argv[0]), made absolute without
 * following links, so that whatever file it names when the signal
 * comes runs: an upgrade by a link (update-alternatives, a "current"
 * link to versioned folders) runs the new version, as nginx's does.  A
 * relative path is joined to the folder the shell named ($PWD while it
 * is still "."), not to the one a link pointed to then; a bare name is
 * looked up in PATH, as the shell did.  It travels across a re-exec in
 * EO_EXE: the next process must not work it out again from a working
 * folder whose link may point elsewhere by then.  The last resort is
 * /proc/self/exe at start (valgrind answers that with our path).
 */
#define EO_EXE_ENV	"EO_EXE"

static char self_exe[4096] = "/proc/self/exe";

const char *
self_exe_path(void)
{
	return self_exe;
}

/* dir/name into out, dir made absolute first; -1 if it does not fit. */
static int
self_join(char *out, size_t len, const char *dir, size_t dirlen,
    const char *name)
{
	char *cwd = NULL;
	int n;

	if (dirlen == 0 || dir[0] != '/') {
		/* $PWD if it is ".": the folder as the operator named it. */
		if ((cwd = get_current_dir_name()) == NULL)
			return -1;
		n = snprintf(out, len, "%s/%.*s%s%s", cwd, (int)dirlen, dir,
		    dirlen > 0 ? "/" : "", name);
		free(cwd);
	} else
		n = snprintf(out, len, "%.*s/%s", (int)dirlen, dir, name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The first executable file called name in PATH, as execvp() finds it. */
static int
self_search_path(char *out, size_t len, const char *name)
{
	const char *p = getenv("PATH"), *end;
	struct stat st;

	if (p == NULL)
		p = "/usr/local/bin:/usr/bin:/bin";
	for (;; p = end + 1) {
		end = strchrnul(p, ':');
		if (self_join(out, len, p, (size_t)(end - p), name) == 0 &&
		    stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return 0;
		if (*end == '\0')
			return -1;
	}
}

void
self_exe_find(const char *argv0)
{
	const char *carried = getenv(EO_EXE_ENV);
	char path[sizeof(self_exe)];
	ssize_t n;
	int r = -1;

	if (carried != NULL && carried[0] == '/')
		r = snprintf(path, sizeof(path), "%s", carried) <
		    (int)sizeof(path) ? 0 : -1;
	else if (argv0 != NULL && argv0[0] == '/')
		r = snprintf(path, sizeof(path), "%s", argv0) <
		    (int)sizeof(path) ? 0 : -1;
	else if (argv0 != NULL && strchr(argv0, '/') != NULL) {
		while (strncmp(argv0, "./", 2) == 0)
			argv0 += 2;	/* the same file, a tidier log */
		r = self_join(path, sizeof(path), "", 0, argv0);
	}
	else if (argv0 != NULL && argv0[0] != '\0')
		r = self_search_path(path, sizeof(path), argv0);
	unsetenv(EO_EXE_ENV);
	if (r == 0) {
		memcpy(self_exe, path, sizeof(path));
		return;
	}
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0 || (size_t)n >= sizeof(path) - 1)
		return;		/* keep /proc/self/exe */
	path[n] = '\0';
	memcpy(self_exe, path, (size_t)n + 1);
}

int
self_exe_carry(int on)
{
	if (on)
		return setenv(EO_EXE_ENV, self_exe, 1);
	return unsetenv(EO_EXE_ENV);
}
