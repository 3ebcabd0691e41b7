/*
 * The integration harness: see harness.h.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "harness.h"

/* nobody: the unit's DynamicUser is as powerless, and needs no account
   made for the tests. */
#define EO_TEST_UID	65534
#define EO_TEST_GID	65534

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
eo_ms(int ms)
{
	const char *s = getenv("EO_TIMEOUT_SCALE");
	int k = s != NULL ? atoi(s) : 1;

	return ms * (k > 0 ? k : 1);
}

long
eo_mem(long kib)
{
#ifdef EO_SANITIZED
	return kib * 3;
#else
	return kib;
#endif
}

int
eo_root(void)
{
	return geteuid() == 0;
}

void
eo_share(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(chmod(path, S_ISDIR(st.st_mode) ? 0755 : 0644), 0);
}

void
eo_give(const char *path)
{
	if (eo_root())
		ck_assert_int_eq(chown(path, EO_TEST_UID, EO_TEST_GID), 0);
}

/* Whether the unprivileged user can execute path (asked by a child). */
static int
eo_nobody_can_run(const char *path)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == -1)
		return 0;
	if (pid == 0) {
		if (setgroups(0, NULL) == -1 || setgid(EO_TEST_GID) == -1 ||
		    setuid(EO_TEST_UID) == -1)
			_exit(2);
		_exit(access(path, X_OK) == 0 ? 0 : 1);
	}
	if (waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static char eo_bin_copy[64];

static void
eo_binary_remove(void)
{
	char dir[sizeof(eo_bin_copy)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", eo_bin_copy);
	unlink(eo_bin_copy);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		rmdir(dir);
	}
}

/*
 * A clone under /root (mode 0700) holds a binary nobody cannot reach:
 * copy it, once, to a folder nobody can, rather than open the clone's
 * folders to every user of the machine.
 */
const char *
eo_binary(void)
{
	char dir[] = "/tmp/eo-bin.XXXXXX";
	char buf[65536];
	ssize_t n;
	int in, out;

	if (eo_bin_copy[0] != '\0')
		return eo_bin_copy;
	if (!eo_root() || eo_nobody_can_run(EO_BINARY))
		return EO_BINARY;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(eo_bin_copy, sizeof(eo_bin_copy), "%s/echo-oracled", dir);
	ck_assert_int_ne(in = open(EO_BINARY, O_RDONLY | O_CLOEXEC), -1);
	ck_assert_int_ne(out = open(eo_bin_copy, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0755), -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
	atexit(eo_binary_remove);
	return eo_bin_copy;
}

/*
 * In the child, last before exec: the unit's powers, as setpriv(1)
 * gives them.  The bounding set goes first (that needs CAP_SETPCAP);
 * setuid() from root to another user then clears every capability
 * left.  The parent-death signal goes with the change of user: set it
 * again after.
 */
static void
eod_drop_privileges(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int cap, last = CAP_LAST_CAP;

	if (f != NULL) {
		if (fscanf(f, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	for (cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			_exit(126);
	if (setgroups(0, NULL) == -1 || setgid(EO_TEST_GID) == -1 ||
	    setuid(EO_TEST_UID) == -1)
		_exit(126);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Binds port on addr as the daemon would; 0 if it is free. */
static int
port_free(int family, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1, r;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &s->sin_addr);
		len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, addr, &s->sin6_addr);
		len = sizeof(*s);
	}
	if ((fd = socket(family, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	r = bind(fd, (struct sockaddr *)&ss, len);
	close(fd);
	return r;
}

int
eo_port(void)
{
	static unsigned n;
	int tries;

	/* 20000-31999: below ip_local_port_range's 32768, so no
	   connect() of ours is handed one; spread by pid across tests
	   running in parallel. */
	for (tries = 0; tries < 1000; tries++) {
		int port = 20000 + (int)(((unsigned)getpid() * 7919u +
		    n++ * 131u) % 12000u);

		if (port_free(AF_INET, "127.0.0.1", port) == 0 &&
		    port_free(AF_INET6, "::1", port) == 0)
			return port;
	}
	ck_abort_msg("no free port");
	return -1;
}

static void	write_file(const char *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

static void
write_file(const char *path, const char *fmt, va_list ap)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	vfprintf(f, fmt, ap);
	fclose(f);
}

void
eod_write_conf(struct eod *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	write_file(d->conf, fmt, ap);
	va_end(ap);
}

/* argv from a space-separated string, appended at *argc. */
static void
split_args(char *s, char **argv, int *argc, int max)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(s, " ", &save); tok != NULL && *argc < max - 1;
	    tok = strtok_r(NULL, " ", &save))
		argv[(*argc)++] = tok;
}

/* In the child: the sockets to fds 3.., and the variables naming them
   (LISTEN_PID: this process, which exec keeps). */
static void
pass_sockets(const struct eod_opts *o)
{
	int i, tmp[16];
	char v[32];

	ck_assert_int_le(o->nlisten, 16);
	/* Out of the way first: a socket may already sit on 3 or 4. */
	for (i = 0; i < o->nlisten; i++)
		tmp[i] = fcntl(o->listen_fds[i], F_DUPFD_CLOEXEC, 100);
	for (i = 0; i < o->nlisten; i++) {
		dup2(tmp[i], 3 + i);
		close(tmp[i]);
	}
	snprintf(v, sizeof(v), "%d", o->nlisten);
	setenv("LISTEN_FDS", v, 1);
	snprintf(v, sizeof(v), "%d", (int)getpid());
	setenv("LISTEN_PID", v, 1);
	if (o->listen_names != NULL)
		setenv("LISTEN_FDNAMES", o->listen_names, 1);
}

static void
eod_exec(struct eod *d, const struct eod_opts *o)
{
	char *argv[64], wrapper[512] = "", extra[512] = "";
	const char *w = getenv("EO_WRAPPER");
	int argc = 0, fd;

	/* Die with the test, whatever becomes of it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644)) != -1) {
		dup2(fd, STDERR_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	setenv("NOTIFY_SOCKET", d->notify, 1);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("JOURNAL_STREAM");
	if (o != NULL && o->journal) {
		struct stat st;
		char v[64];

		fstat(STDERR_FILENO, &st);
		snprintf(v, sizeof(v), "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", v, 1);
	}
	if (o != NULL && o->nlisten > 0)
		pass_sockets(o);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (o != NULL && o->watchdog_usec > 0) {
		char v[32];

		snprintf(v, sizeof(v), "%ld", o->watchdog_usec);
		setenv("WATCHDOG_USEC", v, 1);
		snprintf(v, sizeof(v), "%d", (int)getpid());
		setenv("WATCHDOG_PID", v, 1);
	}
	if (o != NULL && o->nofile > 0) {
		struct rlimit rl = { (rlim_t)o->nofile, (rlim_t)o->nofile };

		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (w != NULL && *w != '\0' && (o == NULL || !o->no_wrapper)) {
		snprintf(wrapper, sizeof(wrapper), "%s", w);
		split_args(wrapper, argv, &argc, 64);
	}
	argv[argc++] = (char *)(o != NULL && o->binary != NULL ? o->binary :
	    eo_binary());
	argv[argc++] = (char *)"-f";
	argv[argc++] = (char *)"-c";
	argv[argc++] = d->conf;
	if (o != NULL && o->args != NULL) {
		snprintf(extra, sizeof(extra), "%s", o->args);
		split_args(extra, argv, &argc, 64);
	}
	argv[argc] = NULL;
	if (eo_root() && (o == NULL || !o->root))
		eod_drop_privileges();
	execvp(argv[0], argv);
	_exit(127);
}

static struct eod *
eod_new(void)
{
	struct eod *d = calloc(1, sizeof(*d));
	struct sockaddr_un sun;

	ck_assert_ptr_nonnull(d);
	snprintf(d->dir, sizeof(d->dir), "/tmp/eo-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	chmod(d->dir, 0755);
	snprintf(d->conf, sizeof(d->conf), "%s/echo-oracled.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	snprintf(d->notify, sizeof(d->notify), "%s/notify", d->dir);
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(d->notify_fd, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", d->notify);
	ck_assert_int_eq(bind(d->notify_fd, (struct sockaddr *)&sun,
	    sizeof(sun)), 0);
	/* Sending to it takes write permission, as the unprivileged. */
	ck_assert_int_eq(chmod(d->notify, 0666), 0);
	return d;
}

static struct eod *eod_vstart(const struct eod_opts *, const char *,
		    va_list) __attribute__((format(printf, 2, 0)));

static struct eod *
eod_vstart(const struct eod_opts *o, const char *fmt, va_list ap)
{
	struct eod *d = eod_new();

	write_file(d->conf, fmt, ap);
	(void)eo_binary();	/* any copy made here, not in the child */
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0)
		eod_exec(d, o);
	if (o != NULL && o->expect_fail)
		return d;
	if (eod_wait_notify(d, "READY=1", eo_ms(10000)) == -1) {
		eod_log_dump(d);
		ck_abort_msg("the daemon did not get ready");
	}
	return d;
}

struct eod *
eod_start(const char *fmt, ...)
{
	struct eod *d;
	va_list ap;

	va_start(ap, fmt);
	d = eod_vstart(NULL, fmt, ap);
	va_end(ap);
	return d;
}

struct eod *
eod_start_opts(const struct eod_opts *o, const char *fmt, ...)
{
	struct eod *d;
	va_list ap;

	va_start(ap, fmt);
	d = eod_vstart(o, fmt, ap);
	va_end(ap);
	return d;
}

/* Whether the daemon has ended (reaping it). */
static int
eod_gone(struct eod *d)
{
	if (!d->ended && waitpid(d->pid, &d->status, WNOHANG) == d->pid)
		d->ended = 1;
	return d->ended;
}

static void
close_rights(struct cmsghdr *c)
{
	size_t i, k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fd;

	for (i = 0; i < k; i++) {
		memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
		close(fd);
	}
}

/* One notification and the PID of its sender, as the kernel tells it
   (SO_PASSCRED), not as the message says: systemd's check. */
static ssize_t
notify_recv(int fd, char *buf, size_t len, pid_t *from)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct ucred))];
	} cm;
	struct iovec iov = { buf, len };
	struct msghdr msg;
	struct cmsghdr *c;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	*from = 0;
	if ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) <= 0)
		return n;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred u;

			memcpy(&u, CMSG_DATA(c), sizeof(u));
			*from = u.pid;
		} else if (c->cmsg_type == SCM_RIGHTS)
			close_rights(c);	/* FDSTORE=1's: not kept */
	}
	return n;
}

void
eod_notify_pids(struct eod *d)
{
	int one = 1;

	ck_assert_int_eq(setsockopt(d->notify_fd, SOL_SOCKET, SO_PASSCRED,
	    &one, sizeof(one)), 0);
	d->notify_pid = 0;
}

int
eod_wait_notify(struct eod *d, const char *what, int ms)
{
	long end = now_ms() + ms;
	char buf[4096];
	pid_t from;

	for (;;) {
		struct pollfd p = { d->notify_fd, POLLIN, 0 };
		long left = end - now_ms();
		ssize_t n;

		if (left <= 0 || eod_gone(d))
			return -1;
		if (poll(&p, 1, left > 200 ? 200 : (int)left) <= 0)
			continue;
		if ((n = notify_recv(d->notify_fd, buf, sizeof(buf) - 1,
		    &from)) <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, what) != NULL) {
			d->notify_pid = from;
			return 0;
		}
	}
}

int
eod_reload(struct eod *d)
{
	char buf[4096];
	long end;

	/* Forget older notices. */
	while (recv(d->notify_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	ck_assert_int_eq(kill(d->pid, SIGHUP), 0);
	ck_assert_int_eq(eod_wait_notify(d, "RELOADING=1", eo_ms(10000)), 0);
	end = now_ms() + eo_ms(10000);
	while (now_ms() < end) {
		struct pollfd p = { d->notify_fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		if ((n = recv(d->notify_fd, buf, sizeof(buf) - 1, 0)) <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, "READY=1") != NULL)
			return strstr(buf, "Reload failed") != NULL;
	}
	ck_abort_msg("the daemon did not finish reloading");
	return -1;
}

void
eod_signal(struct eod *d, int sig)
{
	if (!eod_gone(d))
		kill(d->pid, sig);
}

int
eod_running(struct eod *d)
{
	return !eod_gone(d);
}

int
eod_wait_exit(struct eod *d, int ms)
{
	long end = now_ms() + ms;

	while (!eod_gone(d)) {
		if (now_ms() > end)
			return -1;
		usleep(10000);
	}
	return WIFEXITED(d->status) ? WEXITSTATUS(d->status) : -1;
}

int
eod_stop_sig(struct eod *d, int sig, int ms)
{
	int code;

	if (!eod_gone(d))
		kill(d->pid, sig);
	if ((code = eod_wait_exit(d, ms)) == -1 && !d->ended) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &d->status, 0);
		d->ended = 1;
		return -1;
	}
	return code;
}

int
eod_stop(struct eod *d)
{
	int code = eod_stop_sig(d, SIGTERM, eo_ms(20000));

	if (code != 0)
		eod_log_dump(d);
	return code;
}

void
eod_free(struct eod *d)
{
	char path[512];
	DIR *dir;
	struct dirent *e;

	if (!eod_gone(d)) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &d->status, 0);
	}
	close(d->notify_fd);
	if ((dir = opendir(d->dir)) != NULL) {
		while ((e = readdir(dir)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
			unlink(path);
		}
		closedir(dir);
	}
	rmdir(d->dir);
	free(d);
}

int
eod_log_count(struct eod *d, const char *needle)
{
	char line[4096];
	FILE *f = fopen(d->log, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

int
eod_log_has(struct eod *d, const char *needle)
{
	return eod_log_count(d, needle) > 0;
}

int
eod_log_wait(struct eod *d, const char *needle, int ms)
{
	long end = now_ms() + ms;

	while (!eod_log_has(d, needle)) {
		if (now_ms() > end)
			return -1;
		usleep(20000);
	}
	return 0;
}

void
eod_log_dump(struct eod *d)
{
	char line[4096];
	FILE *f = fopen(d->log, "r");

	if (f == NULL)
		return;
	fprintf(stderr, "---- %s ----\n", d->log);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fprintf(stderr, "----\n");
	fclose(f);
}

long
eod_rss_kb(struct eod *d)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int
eod_nfds(struct eod *d)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* Whether the daemon holds socket inode ino. */
static int
eod_holds(struct eod *d, unsigned long ino)
{
	char dpath[64], path[384], want[64], link[64];
	struct dirent *e;
	ssize_t n;
	DIR *dir;
	int found = 0;

	snprintf(dpath, sizeof(dpath), "/proc/%d/fd", (int)d->pid);
	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	if ((dir = opendir(dpath)) == NULL)
		return 0;
	while (!found && (e = readdir(dir)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dpath, e->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(dir);
	return found;
}

static int
cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a,
	    y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

int
eod_listening(struct eod *d, int port, unsigned long *ino, int max)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned lport, st;
	unsigned long i;
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x "
		    "%*u %*u %lu", &lport, &st, &i) == 3 && (int)lport == port &&
		    st == 0x0a && n < max && eod_holds(d, i))
			ino[n++] = i;
	fclose(f);
	qsort(ino, (size_t)n, sizeof(*ino), cmp_ulong);
	return n;
}

long
eod_cpu_ms(struct eod *d)
{
	char path[64], buf[1024], *p;
	unsigned long utime, stime;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "(comm)": state is field 3, utime 14, stime 15. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
	    &stime) != 2)
		return -1;
	return (long)((utime + stime) * 1000 / (unsigned long)sysconf(
	    _SC_CLK_TCK));
}

void
eo_raise_nofile(void)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int
eo_run(const char *args, char *out, size_t outlen)
{
	char cmd[1024];
	size_t len = 0;
	FILE *p;
	int st;

	if (eo_root())
		snprintf(cmd, sizeof(cmd), "setpriv --reuid=%d --regid=%d "
		    "--clear-groups --inh-caps=-all --bounding-set=-all "
		    "%s %s 2>&1", EO_TEST_UID, EO_TEST_GID, eo_binary(), args);
	else
		snprintf(cmd, sizeof(cmd), "%s %s 2>&1", EO_BINARY, args);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	while (len + 1 < outlen && fgets(out + len, (int)(outlen - len), p))
		len += strlen(out + len);
	out[len] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
eo_listen(const char *host, int port)
{
	struct addrinfo hints, *res;
	char serv[16];
	int fd, on = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	snprintf(serv, sizeof(serv), "%d", port);
	ck_assert_int_eq(getaddrinfo(host, serv, &hints, &res), 0);
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	ck_assert_int_eq(bind(fd, res->ai_addr, res->ai_addrlen), 0);
	ck_assert_int_eq(listen(fd, 128), 0);
	freeaddrinfo(res);
	return fd;
}

/* rcvbuf (0: the default) is set before connecting: the window the
   daemon sees is small from the first byte. */
static int
tcp_connect_buf(const char *src, const char *host, int port, int rcvbuf)
{
	struct addrinfo hints, *res, *from = NULL;
	char serv[16];
	int fd;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%d", port);
	if (getaddrinfo(host, serv, &hints, &res) != 0)
		return -1;
	if (src != NULL && getaddrinfo(src, NULL, &hints, &from) != 0) {
		freeaddrinfo(res);
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd != -1 && from != NULL && bind(fd, from->ai_addr,
	    from->ai_addrlen) == -1) {
		close(fd);
		fd = -1;
	}
	if (fd != -1 && rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF,
	    &rcvbuf, sizeof(rcvbuf)) == -1) {
		close(fd);
		fd = -1;
	}
	if (fd != -1 && connect(fd, res->ai_addr, res->ai_addrlen) == -1) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (from != NULL)
		freeaddrinfo(from);
	return fd;
}

int
tcp_connect(const char *host, int port)
{
	return tcp_connect_buf(NULL, host, port, 0);
}

int
tcp_connect_from(const char *src, const char *host, int port)
{
	return tcp_connect_buf(src, host, port, 0);
}

int
tcp_open_rcvbuf(const char *host, int port, int rcvbuf)
{
	int fd = tcp_connect_buf(NULL, host, port, rcvbuf);

	ck_assert_msg(fd != -1, "connect %s:%d: %s", host, port,
	    strerror(errno));
	return fd;
}

int
tcp_open(const char *host, int port)
{
	int fd = tcp_connect(host, port);

	ck_assert_msg(fd >= 0, "connect %s %d: %s", host, port,
	    strerror(errno));
	return fd;
}

int
send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Waits up to ms for fd to be readable: 1, 0 on timeout. */
static int
readable(int fd, long end)
{
	struct pollfd p = { fd, POLLIN, 0 };
	long left = end - now_ms();

	if (left < 0)
		left = 0;
	return poll(&p, 1, (int)left) > 0;
}

size_t
recv_n(int fd, void *buf, size_t len, int ms)
{
	long end = now_ms() + ms;
	size_t got = 0;

	while (got < len && readable(fd, end)) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

size_t
recv_some(int fd, void *buf, size_t len, int ms)
{
	ssize_t n;

	if (!readable(fd, now_ms() + ms))
		return 0;
	n = recv(fd, buf, len, 0);
	return n > 0 ? (size_t)n : 0;
}

size_t
recv_all(int fd, void *buf, size_t cap, int ms, int *eof)
{
	long end = now_ms() + ms;
	size_t got = 0;

	*eof = 0;
	while (got < cap && readable(fd, end)) {
		ssize_t n = recv(fd, (char *)buf + got, cap - got, 0);

		if (n == 0) {
			*eof = 1;
			break;
		}
		if (n < 0) {
			*eof = -1;
			break;
		}
		got += (size_t)n;
	}
	return got;
}

void
eo_expect_echo(int fd, const char *msg)
{
	char buf[256];
	size_t len = strlen(msg);

	ck_assert_uint_lt(len, sizeof(buf));
	ck_assert_int_eq(send_all(fd, msg, len), 0);
	ck_assert_uint_eq(recv_n(fd, buf, len, eo_ms(5000)), len);
	ck_assert_int_eq(memcmp(buf, msg, len), 0);
}

int
wait_eof(int fd, int ms)
{
	long end = now_ms() + ms;
	char buf[4096];

	while (readable(fd, end)) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0)
			return 1;
		if (n < 0)
			return -1;
	}
	return 0;
}

int
still_open(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;

	if (poll(&p, 1, ms) == 0)
		return 1;
	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}
