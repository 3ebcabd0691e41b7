/*
 * echo-oracled: echo (RFC 862) and oracle ("sphinx") service daemon.
 *
 * main() reads the command line and the configuration, then hands over
 * to the server.  It never forks: systemd, or the shell, supervises.
 * Exit codes follow sysexits(3): 0 stopped cleanly, 64 usage,
 * 78 configuration, 1 anything else.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "log.h"
#include "protocol.h"
#include "server.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: echo-oracled [-dfhtTV] [-c file]\n"
	    "  -c, --config FILE  configuration file (default %s)\n"
	    "  -t, --test         check the configuration and exit:\n"
	    "                     0 if valid, 78 if not\n"
	    "  -T, --test-print   check it, print the configuration in\n"
	    "                     effect, and exit as -t does\n"
	    "  -f, --foreground   accepted for habit: it never forks\n"
	    "  -d, --debug        log at debug level, whatever log_level says\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "protocols: %s\n"
	    "signals: HUP reloads the configuration, TERM and INT stop\n",
	    EO_DEFAULT_CONFIG, protocol_names());
}

/*
 * Prints every mistake; -t prints plain lines, as a compiler would,
 * but when systemd runs it (ExecReload=, ExecStartPre=) into the
 * journal, each line carries error priority, so that journalctl -p
 * warning shows why a reload or a start failed.
 */
static void
report(const struct cfg_diag *d, int test)
{
	const char *prio = log_to_journal() ? "<3>" : "";
	size_t i;

	for (i = 0; i < d->n; i++) {
		if (test)
			fprintf(stderr, "%s%s\n", prio, d->msgs[i]);
		else
			log_err("%s", d->msgs[i]);
	}
}

/*
 * A valid file's warnings (settings that do nothing where they are
 * set): -t prints them as it prints mistakes, with warning priority
 * under systemd; the daemon logs them.
 */
static void
report_warnings(const struct cfg_diag *d, int test)
{
	const char *prio = log_to_journal() ? "<4>" : "";
	size_t i;

	for (i = 0; i < d->nwarns; i++) {
		if (test)
			fprintf(stderr, "%s%s\n", prio, d->warns[i]);
		else
			log_warnx("%s", d->warns[i]);
	}
}

/* What the command line asks for. */
struct args {
	const char	*path;
	int		 test;		/* 1: -t, 2: -T */
	int		 debug;
};

/* Parses argv into a; -1 to go on, or the exit code. */
static int
parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "debug",	no_argument,		NULL, 'd' },
		{ "foreground",	no_argument,		NULL, 'f' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "test",	no_argument,		NULL, 't' },
		{ "test-print",	no_argument,		NULL, 'T' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL,		0,			NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:dfhtTV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			a->path = optarg;
			break;
		case 'd':
			a->debug = 1;
			break;
		case 'f':
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 't':
			a->test = a->test ? a->test : 1;
			break;
		case 'T':
			a->test = 2;
			break;
		case 'V':
			printf("echo-oracled %s\n", EO_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "echo-oracled: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct args a = { EO_DEFAULT_CONFIG, 0, 0 };
	struct cfg_diag d;
	struct server *srv;
	struct cfg *cfg;
	char err[512] = "";
	int code;

	/* Before anything opens a descriptor: 3.. are the restart's. */
	if (restart_arrange_fds() == -1) {
		fprintf(stderr, "echo-oracled: EO_HANDOVER_FDS is malformed\n");
		return EXIT_FAILURE;
	}
	restart_set_argv(argv);
	if ((code = parse_args(argc, argv, &a)) != -1)
		return code;
	log_init();
	cfg_diag_init(&d);
	if ((cfg = cfg_load_file(a.path, &d)) == NULL) {
		report(&d, a.test);
		if (!a.test)
			log_err("not started: %zu error%s in %s", d.total,
			    d.total == 1 ? "" : "s", a.path);
		cfg_diag_free(&d);
		return EX_CONFIG;
	}
	report_warnings(&d, a.test);
	cfg_diag_free(&d);
	if (a.test) {
		if (a.test == 2)
			cfg_print(cfg, stdout);
		else
			printf("%s: configuration is valid\n", a.path);
		cfg_unref(cfg);
		return fflush(stdout) == 0 ? EX_OK : EXIT_FAILURE;
	}
	log_set_level(a.debug ? EO_LOG_DEBUG : cfg->log_level);
	/* A client gone mid-write is an EPIPE to handle, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if ((srv = server_start(cfg, a.debug, err, sizeof(err), &code)) ==
	    NULL) {
		log_err("not started: %s", err);
		return code;
	}
	server_run(srv);
	return EX_OK;
}
