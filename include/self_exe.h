/*
 * The binary a reload runs as its check and a restart (SIGUSR2) runs
 * again.  Main thread; self_exe_find() first thing in main().
 */
#ifndef EO_SELF_EXE_H
#define EO_SELF_EXE_H

/* Finds it from argv[0] as the daemon was started by (or as a previous
   process of ours carried it in EO_EXE). */
void	self_exe_find(const char *argv0);
/* That binary's path: absolute, links not followed. */
const char *self_exe_path(void);
/* Puts the path in EO_EXE for a re-exec (on), or takes it out: 0, or -1
   with errno as setenv() left it. */
int	self_exe_carry(int on);

#endif
