/*
 * tls: the tls group of a listener, every bad value with its line, and
 * the contexts a good one builds.  Certificates come from
 * tests/integration/tls_certs.sh (the openssl command): without it the
 * suite says so and exits 77, skipped, unless EO_NO_SKIP is set.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "stats.h"
#include "tls.h"
#include "check_main.h"

static char dir[] = "/tmp/eo-unit-tls-XXXXXX";

/* body with dir in place of each '@'. */
static void
subst(char *out, size_t len, const char *body)
{
	size_t n = 0;

	for (; *body != '\0' && n + sizeof(dir) < len; body++)
		if (*body == '@') {
			memcpy(out + n, dir, strlen(dir));
			n += strlen(dir);
		} else
			out[n++] = *body;
	out[n] = '\0';
}

/* A config whose listener's tls group is body, on line 3, with the
   certificate files' folder in place of each '@'. */
static struct cfg *
load_tls(const char *extra, const char *body, struct cfg_diag *d)
{
	char text[4096], group[2048];
	struct cfg *cfg;

	subst(group, sizeof(group), body);
	snprintf(text, sizeof(text), "listeners = (\n { name = \"t\"; "
	    "protocol = \"echo\"; port = 7; bind = \"127.0.0.1\";%s\n"
	    "  tls = { %s };\n } );\n", extra, group);
	cfg_diag_init(d);
	cfg = cfg_load_string(text, "test.conf", d);
	return cfg;
}

struct bad_case {
	const char	*extra;		/* listener settings before tls */
	const char	*tls;		/* the group's body */
	int		 line;
	const char	*words;
};

#define PAIR	"certificate = \"@/server.pem\"; key = \"@/server.key\"; "

static const struct bad_case bad_cases[] = {
	{ "", "key = \"@/server.key\";", 3, "certificate is missing" },
	{ "", "certificate = \"@/server.pem\";", 3, "key is missing" },
	{ "", PAIR "ciphers = \"ALL\";", 3, "unknown setting \"ciphers\"" },
	{ "", "certificate = 5; key = \"@/server.key\";", 3,
	  "certificate must be a string" },
	{ "", "certificate = \"\"; key = \"@/server.key\";", 3,
	  "certificate must name a file" },
	{ "", PAIR "min_version = \"1.1\";", 3,
	  "min_version \"1.1\" is refused: TLS 1.0 and 1.1 are deprecated" },
	{ "", PAIR "min_version = \"1.0\";", 3, "is refused" },
	{ "", PAIR "min_version = \"2\";", 3,
	  "min_version must be \"1.2\" or \"1.3\", not \"2\"" },
	{ "", PAIR "verify_client = \"yes\";", 3,
	  "verify_client must be \"none\", \"optional\" or \"required\"" },
	{ "", PAIR "verify_client = \"required\";", 3,
	  "verify_client = \"required\" needs client_ca" },
	{ "", PAIR "verify_client = \"optional\";", 3,
	  "verify_client = \"optional\" needs client_ca" },
	{ "", PAIR "client_ca = \"@/ca.pem\"; verify_client = \"none\";", 3,
	  "verify_client = \"none\" but client_ca is set" },
	{ "", "certificate = \"@/nope.pem\"; key = \"@/server.key\";", 3,
	  "certificate: cannot read \"/tmp/eo-unit-tls-" },
	{ "", "certificate = \"@\"; key = \"@/server.key\";", 3,
	  "is not a regular file" },
	{ "", "certificate = \"@/server.pem\"; key = \"@/other.key\";", 3,
	  "does not match certificate" },
	{ "", "certificate = \"@/server.key\"; key = \"@/server.key\";", 3,
	  "certificate \"/tmp/eo-unit-tls-" },
	{ "", "certificate = \"@/server.pem\"; key = \"@/ca.pem\";", 3,
	  "key \"/tmp/eo-unit-tls-" },
	{ "", "certificate = \"@/server.pem\"; key = \"@/encrypted.key\";", 3,
	  "key \"/tmp/eo-unit-tls-" },
	{ "", "certificate = \"@/server.pem\"; key = \"@/encrypted.key\";", 3,
	  "encrypted.key\": the key is encrypted: the daemon cannot ask for a "
	  "passphrase" },
	{ "", "certificate = \"@/server.key\"; key = \"@/server.pem\";", 3,
	  "server.key\": this file holds a private key, not a certificate" },
	{ "", "certificate = \"@/server.key\"; key = \"@/server.pem\";", 3,
	  "server.pem\": this file holds a certificate, not a private key" },
	{ "", PAIR "client_ca = \"@/missing.pem\";", 3,
	  "client_ca: cannot read" },
	{ "\n transport = \"udp\";", PAIR, 4, "tls is TCP only" },
	{ "\n tls_handshake_timeout = 0;", PAIR, 3,
	  "tls_handshake_timeout must be 1 to 86400, not 0" },
};

START_TEST(test_bad)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct cfg_diag d;
	char where[64];
	size_t i;
	int found = 0;

	ck_assert_ptr_null(load_tls(bc->extra, bc->tls, &d));
	snprintf(where, sizeof(where), "test.conf:%d: ", bc->line);
	for (i = 0; i < d.n; i++)
		if (strncmp(d.msgs[i], where, strlen(where)) == 0 &&
		    strstr(d.msgs[i], bc->words) != NULL)
			found = 1;
	if (!found)
		for (i = 0; i < d.n; i++)
			fprintf(stderr, "case %d got: %s\n", _i, d.msgs[i]);
	ck_assert_msg(found, "case %d: no \"%s%s\"", _i, where, bc->words);
	cfg_diag_free(&d);
}
END_TEST

/*
 * A key file its reader may not open is named as such.  Root reads any
 * file, and CI runs as root: the load runs in a child that drops to
 * nobody (65534) first, the folder opened to it and the key not.
 */
static int
unreadable_key_as(uid_t uid)
{
	struct cfg_diag d;
	int ok;

	if (uid != geteuid() && (setgroups(0, NULL) == -1 ||
	    setgid(uid) == -1 || setuid(uid) == -1))
		return 2;
	if (access(dir, X_OK) == -1)
		return 3;
	if (load_tls("", PAIR, &d) != NULL)
		return 4;
	ok = d.n >= 1 && strstr(d.msgs[0], "key: cannot read") != NULL &&
	    strstr(d.msgs[0], "Permission denied") != NULL;
	if (!ok && d.n >= 1)
		fprintf(stderr, "test_unreadable_key got: %s\n", d.msgs[0]);
	cfg_diag_free(&d);
	return ok ? 0 : 5;
}

START_TEST(test_unreadable_key)
{
	uid_t uid = geteuid() == 0 ? 65534 : geteuid();
	char key[128];
	pid_t pid;
	int st;

	snprintf(key, sizeof(key), "%s/server.key", dir);
	ck_assert_int_eq(chmod(key, 0), 0);
	ck_assert_int_eq(chmod(dir, 0711), 0);
	if ((pid = fork()) == 0)
		_exit(unreadable_key_as(uid));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	chmod(key, 0600);
	chmod(dir, 0700);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "child (uid %u) status %d", (unsigned)uid, st);
}
END_TEST

/*
 * Every mistake in one run, inside a group too: a bad setting does not
 * hide that the certificate and the key were given the other way round.
 */
START_TEST(test_every_mistake_in_group)
{
	static const char *const want[] = {
		"verify_client must be",
		"server.key\": this file holds a private key, not a certificate",
		"server.pem\": this file holds a certificate, not a private key",
	};
	struct cfg_diag d;
	size_t i, j;

	ck_assert_ptr_null(load_tls("", "certificate = \"@/server.key\"; "
	    "key = \"@/server.pem\"; verify_client = \"yes\";", &d));
	for (i = 0; i < d.n; i++)
		fprintf(stderr, "test_every_mistake_in_group: %s\n", d.msgs[i]);
	for (j = 0; j < sizeof(want) / sizeof(want[0]); j++) {
		for (i = 0; i < d.n; i++)
			if (strstr(d.msgs[i], want[j]) != NULL)
				break;
		ck_assert_msg(i < d.n, "no \"%s\"", want[j]);
	}
	cfg_diag_free(&d);
}
END_TEST

/* Defaults: TLS 1.2 up, no client certificates, 5 s to shake hands;
   client_ca alone means required. */
START_TEST(test_defaults_and_print)
{
	struct cfg_diag d;
	struct cfg *cfg, *back;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	cfg = load_tls("", PAIR "client_ca = \"@/ca.pem\";", &d);
	ck_assert_ptr_nonnull(cfg);
	cfg_diag_free(&d);
	ck_assert_ptr_nonnull(cfg->listeners[0].tls);
	ck_assert_uint_eq(cfg->listeners[0].tls_timeout, 5);
	f = open_memstream(&out, &len);
	cfg_print(cfg, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(out, "tls_handshake_timeout = 5;"));
	ck_assert_ptr_nonnull(strstr(out, "verify_client = \"required\"; "
	    "min_version = \"1.2\";"));
	/* -T's output loads back to the same. */
	cfg_diag_init(&d);
	back = cfg_load_string(out, "printed.conf", &d);
	ck_assert_ptr_nonnull(back);
	ck_assert_ptr_nonnull(back->listeners[0].tls);
	cfg_diag_free(&d);
	cfg_unref(back);
	cfg_unref(cfg);
	free(out);
}
END_TEST

/* The global setting is the listeners' default; theirs overrides it. */
START_TEST(test_timeout_global)
{
	struct cfg_diag d;
	struct cfg *cfg;

	cfg_diag_init(&d);
	cfg = cfg_load_string("tls_handshake_timeout = 9;\nlisteners = (\n"
	    " { name = \"a\"; protocol = \"echo\"; port = 7; bind = "
	    "\"127.0.0.1\"; },\n { name = \"b\"; protocol = \"echo\"; "
	    "port = 8; bind = \"127.0.0.1\"; tls_handshake_timeout = 2; }"
	    ");\n", "test.conf", &d);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->listeners[0].tls);
	ck_assert_uint_eq(cfg->listeners[0].tls_timeout, 9);
	ck_assert_uint_eq(cfg->listeners[1].tls_timeout, 2);
	cfg_unref(cfg);
	cfg_diag_free(&d);
}
END_TEST

/* The metrics endpoint is served by evhttp: a tls group there would
   be silently plaintext, so it is an error. */
START_TEST(test_metrics_refused)
{
	struct cfg_diag d;
	char text[1024];

	snprintf(text, sizeof(text), "listeners = (\n { name = \"m\"; "
	    "protocol = \"metrics\"; port = 9; bind = \"127.0.0.1\";\n"
	    "  tls = { certificate = \"%s/server.pem\"; key = "
	    "\"%s/server.key\"; }; } );\n", dir, dir);
	cfg_diag_init(&d);
	ck_assert_ptr_null(cfg_load_string(text, "test.conf", &d));
	ck_assert_uint_ge(d.n, 1);
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "test.conf:3: "));
	ck_assert_ptr_nonnull(strstr(d.msgs[0], "does not serve TLS"));
	cfg_diag_free(&d);
}
END_TEST

/* conn.c's words for TLS closes are counted under their own reasons. */
START_TEST(test_close_reasons_counted)
{
	ck_assert_int_eq(stats_close_reason("TLS handshake failed: http "
	    "request"), EO_CLOSE_TLS_HANDSHAKE);
	ck_assert_int_eq(stats_close_reason("tls_handshake_timeout (5 s)"),
	    EO_CLOSE_TLS_TIMEOUT);
	ck_assert_str_eq(stats_close_name(EO_CLOSE_TLS_HANDSHAKE),
	    "tls_handshake_failed");
	ck_assert_str_eq(stats_close_name(EO_CLOSE_TLS_TIMEOUT),
	    "tls_handshake_timeout");
	ck_assert_str_eq(stats_refusal_name(EO_REFUSED_TLS), "tls_handshake");
	/* An error after the handshake is an error, not a refusal. */
	ck_assert_int_eq(stats_close_reason("error: TLS: bad record mac"),
	    EO_CLOSE_ERROR);
}
END_TEST

static int
make_certs(void)
{
	char cmd[512];

	if (system("openssl version >/dev/null 2>&1") != 0)
		return -1;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "sh %s/tests/integration/tls_certs.sh %s",
	    EO_SOURCE_DIR, dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("config");
	char cmd[128];
	int r;

	if (make_certs() == -1) {
		fprintf(stderr, "skipped: the openssl command is missing or "
		    "failed to make the test certificates\n");
		return getenv("EO_NO_SKIP") != NULL ? 1 : 77;
	}
	tcase_add_loop_test(tc, test_bad, 0,
	    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_unreadable_key);
	tcase_add_test(tc, test_every_mistake_in_group);
	tcase_add_test(tc, test_defaults_and_print);
	tcase_add_test(tc, test_timeout_global);
	tcase_add_test(tc, test_metrics_refused);
	tcase_add_test(tc, test_close_reasons_counted);
	suite_add_tcase(s, tc);
	r = check_run(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return r;
}
