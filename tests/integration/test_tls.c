/*
 * TLS listeners, end to end: the real binary, certificates made by
 * tls_certs.sh with the openssl command, an OpenSSL client written here
 * for byte-exact checks, and `openssl s_client` as the real client for
 * versions and client certificates.  Without the openssl command the
 * suite says so and exits 77 (skipped), unless EO_NO_SKIP is set.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"
#include "check_main.h"

static char certs[] = "/tmp/eo-it-tls-XXXXXX";

/* A TLS listener's config: name, protocol, port, extra settings, and
   extra settings in its tls group. */
#define TLS_CONF							\
	"listeners = ( { name = \"t\"; protocol = \"%s\"; port = %d; "	\
	"bind = \"127.0.0.1\"; %s\n"					\
	"  tls = { certificate = \"%s/server.pem\"; key = "		\
	"\"%s/server.key\"; %s }; } );\n"

static struct eod *
start_tls(const char *proto, int port, const char *extra,
    const char *tls_extra)
{
	return eod_start("log_level = \"debug\";\n" TLS_CONF, proto, port,
	    extra, certs, certs, tls_extra);
}

/* ---- a small OpenSSL client --------------------------------------- */

struct tcli {
	SSL_CTX	*ctx;
	SSL	*ssl;
	int	 fd;
};

/*
 * A TLS client on fd (connected; a PROXY header may have gone first),
 * at most TLS version max (0: any), with a client certificate NAME.pem
 * if cert is not NULL.  Returns 0 once the handshake is done, -1 if it
 * failed.
 */
static int
tcli_start(struct tcli *t, int fd, int max, const char *cert)
{
	char path[128], key[128];
	struct timeval tv = { eo_ms(10000) / 1000, 0 };

	memset(t, 0, sizeof(*t));
	t->fd = fd;
	/* A daemon that never answers fails the case, not the timer. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t->ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(t->ctx);
	snprintf(path, sizeof(path), "%s/ca.pem", certs);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(t->ctx, path, NULL),
	    1);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	if (max != 0)
		SSL_CTX_set_max_proto_version(t->ctx, max);
	if (cert != NULL) {
		snprintf(path, sizeof(path), "%s/%s.pem", certs, cert);
		snprintf(key, sizeof(key), "%s/%s.key", certs,
		    strcmp(cert, "stranger") == 0 ? "junk" :
		    strcmp(cert, "padded") == 0 ? "client" : cert);
		/* The file's whole chain is sent, as it is. */
		ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(t->ctx,
		    path), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(t->ctx, key,
		    SSL_FILETYPE_PEM), 1);
	}
	t->ssl = SSL_new(t->ctx);
	SSL_set_fd(t->ssl, fd);
	SSL_set_tlsext_host_name(t->ssl, "localhost");
	if (SSL_connect(t->ssl) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static int
tcli_open(struct tcli *t, int port, int max, const char *cert)
{
	return tcli_start(t, tcp_open("127.0.0.1", port), max, cert);
}

static void
tcli_close(struct tcli *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	close(t->fd);
}

/* The server certificate's SHA-256, as bytes in out[32]. */
static void
tcli_peer_digest(struct tcli *t, unsigned char *out)
{
	X509 *x = SSL_get1_peer_certificate(t->ssl);
	unsigned n = 0;

	ck_assert_ptr_nonnull(x);
	X509_digest(x, EVP_sha256(), out, &n);
	ck_assert_uint_eq(n, 32);
	X509_free(x);
}

/* The same for a certificate file NAME.pem. */
static void
file_digest(const char *name, unsigned char *out)
{
	char path[128];
	FILE *f;
	X509 *x;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/%s.pem", certs, name);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_ptr_nonnull(x = PEM_read_X509(f, NULL, NULL, NULL));
	fclose(f);
	X509_digest(x, EVP_sha256(), out, &n);
	X509_free(x);
}

/* A SHA-256 as "AB:CD:...", as `openssl x509 -fingerprint` writes it. */
static void
digest_text(const unsigned char *md, char *out)
{
	int i;

	for (i = 0; i < 32; i++)
		sprintf(out + 3 * i, "%02X%s", md[i], i < 31 ? ":" : "");
}

/* Blocking request and answer: sends msg, reads exactly len back. */
static int
tcli_echo(struct tcli *t, const char *msg)
{
	char back[256];
	size_t len = strlen(msg), got = 0, n;

	if (SSL_write_ex(t->ssl, msg, len, &n) != 1)
		return -1;
	while (got < len && SSL_read_ex(t->ssl, back + got, len - got, &n))
		got += n;
	return got == len && memcmp(back, msg, len) == 0 ? 0 : -1;
}

/*
 * Bulk: sends in[0..inlen) while reading, then close_notify, then reads
 * until the server's close_notify or EOF; out gets what came back.
 * Non-blocking, one thread: an SSL is not to be shared by two.
 */
static size_t
tcli_bulk(struct tcli *t, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t cap)
{
	size_t sent = 0, got = 0, n;
	int shut = 0, end = 0, idle = 0;

	fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
	while (!end && idle < 100) {
		struct pollfd p = { t->fd, POLLIN, 0 };
		int progress = 0;

		if (sent < inlen) {
			size_t chunk = inlen - sent > 65536 ? 65536 :
			    inlen - sent;

			if (SSL_write_ex(t->ssl, in + sent, chunk, &n) == 1) {
				sent += n;
				progress = 1;
			}
			p.events |= POLLOUT;
		} else if (!shut) {
			/* The client's EOF: it will read what is owed. */
			if (SSL_shutdown(t->ssl) >= 0)
				shut = 1;
			progress = 1;
		}
		while (got < cap && SSL_read_ex(t->ssl, out + got, cap - got,
		    &n) == 1) {
			got += n;
			progress = 1;
		}
		switch (SSL_get_error(t->ssl, 0)) {
		case SSL_ERROR_ZERO_RETURN:
		case SSL_ERROR_SYSCALL:
		case SSL_ERROR_SSL:
			end = got >= inlen || shut;
			break;
		}
		ERR_clear_error();
		if (!progress && !end)
			idle += poll(&p, 1, eo_ms(100)) == 0;
		else
			idle = 0;
	}
	return got;
}

/* ---- the cases ---------------------------------------------------- */

static void
bulk_case(const char *proto, const char *extra, int version,
    const unsigned char *in, size_t inlen, const unsigned char *want,
    size_t wantlen)
{
	int port = eo_port();
	struct eod *d = start_tls(proto, port, extra, "");
	struct tcli t;
	unsigned char *out = malloc(wantlen + 1024);
	size_t got;

	ck_assert_int_eq(tcli_open(&t, port, version, NULL), 0);
	ck_assert_int_eq(SSL_version(t.ssl), version);
	got = tcli_bulk(&t, in, inlen, out, wantlen + 1024);
	ck_assert_uint_eq(got, wantlen);
	ck_assert_int_eq(memcmp(out, want, wantlen), 0);
	tcli_close(&t);
	free(out);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}

#define BULK	(6 << 20)

static void
echo_bulk(int version)
{
	unsigned char *buf = malloc(BULK);
	size_t i;

	for (i = 0; i < BULK; i++)
		buf[i] = (unsigned char)(i * 7 + i / 4093);
	bulk_case("echo", "", version, buf, BULK, buf, BULK);
	free(buf);
}

START_TEST(test_tls_echo_bulk_12)
{
	echo_bulk(TLS1_2_VERSION);
}
END_TEST

START_TEST(test_tls_echo_bulk_13)
{
	echo_bulk(TLS1_3_VERSION);
}
END_TEST

/* Questions by the megabyte, one answer configured: replies exact. */
static void
oracle_bulk(int version)
{
	size_t cap = 3 << 20, in = 0, out = 0;
	char *q = malloc(cap), *want = malloc(cap * 2);
	unsigned n = 0;

	while (in + 32 < cap) {
		int l = snprintf(q + in, 32, "Is %u odd?", n++);

		memcpy(want + out, q + in, (size_t)l);
		memcpy(want + out + l, " Yes.\r\n", 7);
		in += (size_t)l;
		out += (size_t)l + 7;
	}
	bulk_case("oracle", "oracle = { max_questions = 0; answers = "
	    "[\"Yes.\"]; };", version, (unsigned char *)q, in,
	    (unsigned char *)want, out);
	free(q);
	free(want);
}

START_TEST(test_tls_oracle_bulk_12)
{
	oracle_bulk(TLS1_2_VERSION);
}
END_TEST

START_TEST(test_tls_oracle_bulk_13)
{
	oracle_bulk(TLS1_3_VERSION);
}
END_TEST

/* Runs `openssl s_client` on port with args, stdin from /dev/null. */
static int
s_client(int port, const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "timeout 20 openssl s_client -connect "
	    "127.0.0.1:%d -CAfile %s/ca.pem -verify_return_error %s "
	    "</dev/null >/dev/null 2>&1", port, certs, args);
	return system(cmd);
}

START_TEST(test_tls_11_refused)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "", "");

	ck_assert_int_ne(s_client(port, "-tls1_1"), 0);
	ck_assert_int_eq(eod_log_wait(d, "TLS handshake failed: ", eo_ms(5000)),
	    0);
	ck_assert_int_eq(s_client(port, "-tls1_2"), 0);
	ck_assert_int_eq(s_client(port, "-tls1_3"), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

START_TEST(test_tls_13_only)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "", "min_version = \"1.3\";");

	ck_assert_int_ne(s_client(port, "-tls1_2"), 0);
	ck_assert_int_eq(s_client(port, "-tls1_3"), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Mutual TLS: a valid client certificate is served and named in the
   log; none, or an expired one, fails the handshake, counted. */
START_TEST(test_tls_mutual)
{
	int port = eo_port();
	struct eod *d;
	struct tcli t;
	char arg[256];

	snprintf(arg, sizeof(arg), "client_ca = \"%s/ca.pem\";", certs);
	d = start_tls("echo", port, "", arg);
	snprintf(arg, sizeof(arg), "-cert %s/client.pem -key %s/client.key",
	    certs, certs);
	ck_assert_int_eq(s_client(port, arg), 0);
	ck_assert_int_eq(eod_log_wait(d, "client O=eo tests,CN=eo client",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(tcli_open(&t, port, 0, "client"), 0);
	ck_assert_int_eq(tcli_echo(&t, "mutual\n"), 0);
	tcli_close(&t);

	s_client(port, "");
	ck_assert_int_eq(eod_log_wait(d, "TLS handshake failed: peer did not "
	    "return a certificate", eo_ms(5000)), 0);
	snprintf(arg, sizeof(arg), "-cert %s/expired.pem -key %s/expired.key",
	    certs, certs);
	s_client(port, arg);
	ck_assert_int_eq(eod_log_wait(d, "TLS handshake failed: certificate "
	    "verify failed", eo_ms(5000)), 0);
	/* And the C client sees no echo without a certificate. */
	if (tcli_open(&t, port, 0, NULL) == 0)
		ck_assert_int_ne(tcli_echo(&t, "nope\n"), 0);
	tcli_close(&t);
	ck_assert_int_eq(eod_log_wait(d, "TLS handshake failed or timed out",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Plaintext on a TLS port: closed, counted, OpenSSL's reason logged. */
START_TEST(test_tls_plaintext_closed)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "", "");
	int fd = tcp_open("127.0.0.1", port);
	static const char get[] = "GET / HTTP/1.0\r\n\r\n";
	char buf[256];
	int eof;

	ck_assert_int_eq(send_all(fd, get, sizeof(get) - 1), 0);
	recv_all(fd, buf, sizeof(buf), eo_ms(5000), &eof);
	ck_assert_int_ne(eof, 0);		/* closed, not left hanging */
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "closed: TLS handshake failed: "
	    "http request", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_log_wait(d, "refusing connections: listener t: "
	    "TLS handshake failed or timed out", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Issue 31: SIGUSR1's refusal breakdown had no slot for failed TLS
 * handshakes, so its parts did not add up to the refused total.
 */
START_TEST(test_sigusr1_counts_tls_refusals)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "", "");
	int fd = tcp_open("127.0.0.1", port);
	static const char get[] = "GET / HTTP/1.0\r\n\r\n";

	ck_assert_int_eq(send_all(fd, get, sizeof(get) - 1), 0);
	ck_assert_int_ne(wait_eof(fd, eo_ms(5000)), 0);
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "closed: TLS handshake failed",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(kill(d->pid, SIGUSR1), 0);
	ck_assert_int_eq(eod_log_wait(d, "1 refused (max_connections 0, "
	    "listener max_connections 0, max_connections_per_source 0, out "
	    "of file descriptors 0, shutting down or out of memory 0, not in "
	    "proxy_from 0, denied by allow/deny 0, bad PROXY header 0, TLS "
	    "handshake failed or timed out 1)", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A client silent after connect: closed at tls_handshake_timeout. */
START_TEST(test_tls_handshake_timeout)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "tls_handshake_timeout = 1;",
	    "");
	int fd = tcp_open("127.0.0.1", port);

	ck_assert_int_ne(wait_eof(fd, eo_ms(6000)), 0);
	close(fd);
	ck_assert_int_eq(eod_log_wait(d, "closed: tls_handshake_timeout "
	    "(1 s)", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* Replaces certs/to.{pem,key} by certs/from.{pem,key}. */
static void
copy_pair(const char *from, const char *to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp %s/%s.pem %s/%s.pem && cp %s/%s.key "
	    "%s/%s.key", certs, from, certs, to, certs, from, certs, to);
	ck_assert_int_eq(system(cmd), 0);
}

/*
 * Rotation: new files under the same names, SIGHUP with the config
 * unchanged.  New clients get the new certificate, an established one
 * keeps working on the old; a key that does not match keeps the last
 * good pair.
 */
START_TEST(test_tls_rotation_by_sighup)
{
	int port = eo_port();
	unsigned char one[32], two[32], seen[32];
	struct eod *d;
	struct tcli old, t;
	char cmd[256], hex[97], line[160];

	copy_pair("server", "live");
	d = eod_start("log_level = \"debug\";\nlisteners = ( { name = \"t\"; "
	    "protocol = \"echo\"; port = %d; bind = \"127.0.0.1\";\n  tls = "
	    "{ certificate = \"%s/live.pem\"; key = \"%s/live.key\"; }; } "
	    ");\n", port, certs, certs);
	file_digest("server", one);
	file_digest("server2", two);
	ck_assert_int_eq(tcli_open(&old, port, 0, NULL), 0);
	tcli_peer_digest(&old, seen);
	ck_assert_int_eq(memcmp(seen, one, 32), 0);

	copy_pair("server2", "live");
	ck_assert_int_eq(eod_reload(d), 0);
	/* The log names the new certificate and says until when. */
	digest_text(two, hex);
	snprintf(line, sizeof(line), "listener t: new certificate: SHA-256 %s, "
	    "valid until 20", hex);
	ck_assert_int_eq(eod_log_wait(d, line, eo_ms(5000)), 0);
	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	tcli_peer_digest(&t, seen);
	ck_assert_int_eq(memcmp(seen, two, 32), 0);
	tcli_close(&t);
	ck_assert_int_eq(tcli_echo(&old, "still here\n"), 0);

	/* A key that is not the certificate's: refused, old pair kept. */
	snprintf(cmd, sizeof(cmd), "cp %s/other.key %s/live.key", certs,
	    certs);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(eod_reload(d), 1);
	ck_assert_int_eq(eod_log_wait(d, "live.key\" does not match "
	    "certificate", eo_ms(5000)), 0);
	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	tcli_peer_digest(&t, seen);
	ck_assert_int_eq(memcmp(seen, two, 32), 0);
	ck_assert_int_eq(tcli_echo(&t, "new\n"), 0);
	tcli_close(&t);
	ck_assert_int_eq(tcli_echo(&old, "and still\n"), 0);
	tcli_close(&old);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A restart in place (SIGUSR2) cannot carry a TLS session: the client
 * gets close_notify, not a reset, the log counts it, and the listener
 * itself is carried: a new client is served by the new process.
 */
START_TEST(test_tls_restart_closes_cleanly)
{
	int port = eo_port();
	struct eod *d;
	struct tcli old, t;
	char c;
	size_t n;

	d = start_tls("echo", port, "", "");
	ck_assert_int_eq(tcli_open(&old, port, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&old, "before\n"), 0);
	eod_signal(d, SIGUSR2);
	ck_assert_int_eq(eod_log_wait(d, "restart: 1 connection closed: TLS or "
	    "http state cannot be carried", eo_ms(10000)), 0);
	/* The server's close_notify: a clean end, not an error. */
	ck_assert_int_eq(SSL_read_ex(old.ssl, &c, 1, &n), 0);
	ck_assert_int_eq(SSL_get_error(old.ssl, 0), SSL_ERROR_ZERO_RETURN);
	tcli_close(&old);
	ck_assert_int_eq(eod_log_wait(d, "carried over", eo_ms(10000)), 0);
	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&t, "after\n"), 0);
	tcli_close(&t);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* -t: exit 78 (EX_CONFIG) with FILE:LINE and the reason. */
START_TEST(test_tls_check_bad_files)
{
	static const struct {
		const char *cert, *key, *words;
	} cases[] = {
		{ "server.pem", "other.key", "does not match certificate" },
		{ "missing.pem", "server.key", "cannot read" },
		{ "", "server.key", "is not a regular file" },
		{ "server.pem", "ca.pem", "key \"" },
	};
	char conf[128], args[256], out[4096], where[160];
	size_t i;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/check.conf", certs);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_ptr_nonnull(f = fopen(conf, "w"));
		fprintf(f, "listeners = ( { name = \"t\"; protocol = \"echo\"; "
		    "port = 7; bind = \"127.0.0.1\";\n  tls = {\n"
		    "    certificate = \"%s/%s\";\n    key = \"%s/%s\"; }; } "
		    ");\n", certs, cases[i].cert, certs, cases[i].key);
		fclose(f);
		snprintf(args, sizeof(args), "-t -c %s", conf);
		ck_assert_int_eq(eo_run(args, out, sizeof(out)), 78);
		/* The certificate on line 3, the key on line 4. */
		snprintf(where, sizeof(where), "%s:%d: ", conf,
		    strstr(cases[i].words, "key") != NULL ||
		    strstr(cases[i].words, "match") != NULL ? 4 : 3);
		ck_assert_msg(strstr(out, where) != NULL &&
		    strstr(out, cases[i].words) != NULL, "case %zu: %s", i,
		    out);
	}
}
END_TEST

/*
 * PROXY then TLS: the header read to its last byte and no further (it
 * comes in two pieces here), the ClientHello left to OpenSSL, and the
 * client named by the header in the log.
 */
START_TEST(test_tls_after_proxy_header)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "proxy_protocol = true; "
	    "proxy_from = [\"127.0.0.1\"];", "");
	static const char hdr[] = "PROXY TCP4 192.0.2.7 127.0.0.1 5555 7\r\n";
	struct tcli t;
	int fd = tcp_open("127.0.0.1", port);

	ck_assert_int_eq(send_all(fd, hdr, 11), 0);
	usleep(100 * 1000);	/* two reads, not readiness */
	ck_assert_int_eq(send_all(fd, hdr + 11, sizeof(hdr) - 12), 0);
	ck_assert_int_eq(tcli_start(&t, fd, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&t, "through a balancer\n"), 0);
	tcli_close(&t);
	ck_assert_int_eq(eod_log_wait(d, "accepted from 192.0.2.7:5555",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* A protocol that speaks first does so once the handshake is done. */
START_TEST(test_tls_greeting_after_handshake)
{
	int port = eo_port();
	struct eod *d = start_tls("qotd", port, "", "");
	struct tcli t;
	char buf[1024];
	size_t n, got = 0;

	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	while (got < sizeof(buf) && SSL_read_ex(t.ssl, buf + got,
	    sizeof(buf) - got, &n) == 1)
		got += n;
	ck_assert_uint_gt(got, 0);
	ck_assert_int_eq(SSL_get_error(t.ssl, 0), SSL_ERROR_ZERO_RETURN);
	tcli_close(&t);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * The client's last bytes and its close_notify in one TCP segment:
 * OpenSSL reports the close while the bytes are still libevent's, not
 * yet handed over.  Every byte is still echoed, then the server's
 * close_notify ends the stream.
 */
START_TEST(test_tls_data_with_close_notify)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "", "");
	static const char msg[] = "the last words\n";
	char back[64];
	size_t n, got = 0;
	struct tcli t;
	int on = 1, off = 0, round;

	for (round = 0; round < 20; round++) {
		got = 0;
		ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
		/* Corked: the record and the alert leave together. */
		setsockopt(t.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
		ck_assert_int_eq(SSL_write_ex(t.ssl, msg, sizeof(msg) - 1, &n),
		    1);
		ck_assert_int_ge(SSL_shutdown(t.ssl), 0);
		setsockopt(t.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		setsockopt(t.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
		while (got < sizeof(back) && SSL_read_ex(t.ssl, back + got,
		    sizeof(back) - got, &n) == 1)
			got += n;
		ck_assert_int_eq(SSL_get_error(t.ssl, 0),
		    SSL_ERROR_ZERO_RETURN);
		ck_assert_uint_eq(got, sizeof(msg) - 1);
		ck_assert_int_eq(memcmp(back, msg, got), 0);
		tcli_close(&t);
	}
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * Backpressure over TLS: a client that sends and never reads stops
 * being read once replies wait, memory stays bounded, and
 * write_timeout closes it.
 */
START_TEST(test_tls_client_never_reads)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "write_timeout = 2;", "");
	static unsigned char junk[16384];
	size_t n, sent = 0;
	struct tcli t;
	int stuck = 0;
	long rss0, rss;

	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	rss0 = eod_rss_kb(d);
	fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK);
	/* Until the daemon's reading and both sockets' buffers are full. */
	while (stuck < 5 && sent < (256u << 20)) {
		struct pollfd p = { t.fd, POLLOUT, 0 };
		int r = SSL_write_ex(t.ssl, junk, sizeof(junk), &n);

		if (r == 1) {
			sent += n;
			stuck = 0;
			continue;
		}
		r = SSL_get_error(t.ssl, r);
		ERR_clear_error();
		/* A slow run (valgrind) may reach write_timeout first: the
		   daemon closed it, as the log checked below must say. */
		if (r == SSL_ERROR_SYSCALL || r == SSL_ERROR_SSL)
			break;
		ck_assert_int_eq(r, SSL_ERROR_WANT_WRITE);
		stuck += poll(&p, 1, eo_ms(100)) == 0;
	}
	ck_assert_uint_lt(sent, 256u << 20);
	rss = eod_rss_kb(d);
	fprintf(stderr, "TLS non-reader: sent %zu bytes; daemon RSS %ld -> "
	    "%ld KiB\n", sent, rss0, rss);
	/*
	 * Growth: the queue's bound and OpenSSL's buffers, with slack for
	 * malloc.  Not under ASan or valgrind: their quarantines keep freed
	 * blocks out of reuse (256 MB, 20 MB), and OpenSSL's record buffers
	 * are freed and allocated again all the time.
	 */
#ifndef EO_SANITIZED
	if (getenv("EO_WRAPPER") == NULL)
		ck_assert_int_lt(rss - rss0, 2 * 1024);
#endif
	ck_assert_int_eq(eod_log_wait(d, "closed: write_timeout (2 s)",
	    eo_ms(10000)), 0);
	tcli_close(&t);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* ---- how the daemon ends a session ------------------------------- */

/*
 * Reads until the stream ends; the bytes into buf.  Returns 1 if it
 * ended with the server's close_notify, 0 with a bare EOF or an error
 * ("unexpected eof while reading" to an OpenSSL 3 client).
 */
static int
tcli_read_end(struct tcli *t, char *buf, size_t cap, size_t *got)
{
	size_t n;
	int e;

	*got = 0;
	while (SSL_read_ex(t->ssl, buf + *got, cap - *got, &n) == 1)
		if ((*got += n) == cap)
			*got = 0;	/* bulk: only the end matters */
	e = SSL_get_error(t->ssl, 0);
	ERR_clear_error();
	return e == SSL_ERROR_ZERO_RETURN &&
	    (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

/* A client served once, then quiet: idle_timeout ends it with
   close_notify. */
START_TEST(test_tls_idle_timeout_sends_close_notify)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "idle_timeout = 1;", "");
	struct tcli t;
	char buf[256];
	size_t got;

	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&t, "then quiet\n"), 0);
	ck_assert_int_eq(tcli_read_end(&t, buf, sizeof(buf), &got), 1);
	ck_assert_uint_eq(got, 0);
	tcli_close(&t);
	ck_assert_int_eq(eod_log_wait(d, "closed: idle_timeout (1 s)",
	    eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* SIGTERM with a quiet client: closed at once, with close_notify. */
START_TEST(test_tls_shutdown_sends_close_notify)
{
	int port = eo_port();
	struct eod *d = start_tls("echo", port, "", "");
	struct tcli t;
	char buf[256];
	size_t got;

	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&t, "before the stop\n"), 0);
	eod_signal(d, SIGTERM);
	ck_assert_int_eq(tcli_read_end(&t, buf, sizeof(buf), &got), 1);
	tcli_close(&t);
	ck_assert_int_eq(eod_wait_exit(d, eo_ms(10000)), 0);
	ck_assert_int_eq(eod_log_has(d, "closed: shutdown"), 1);
	eod_free(d);
}
END_TEST

/* At max_connections a new client evicts the quiet one, which gets
   close_notify.  One worker: each evicts among its own. */
START_TEST(test_tls_eviction_sends_close_notify)
{
	int port = eo_port();
	struct eod *d = eod_start("log_level = \"debug\";\nworkers = 1;\n"
	    "max_connections = 1;\nevict_after = 1;\n" TLS_CONF, "echo", port, "", certs, certs,
	    "");
	struct tcli old, t;
	char buf[256];
	size_t got;

	ck_assert_int_eq(tcli_open(&old, port, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&old, "soon quiet\n"), 0);
	usleep((useconds_t)eo_ms(1500) * 1000);
	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	ck_assert_int_eq(tcli_echo(&t, "newcomer\n"), 0);
	ck_assert_int_eq(tcli_read_end(&old, buf, sizeof(buf), &got), 1);
	tcli_close(&old);
	tcli_close(&t);
	ck_assert_int_eq(eod_log_wait(d, "closed: evicted", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A client that stops reading: write_timeout ends it.  When it reads
 * again, what was in flight arrives, then close_notify: the end is the
 * daemon's rule, not a cut connection.  write_timeout scales with the
 * client's waits (EO_TIMEOUT_SCALE): the client calls itself stuck
 * after 5 quiet polls, and must do so before write_timeout and the
 * linger after it (2 s) have closed the socket under its writes.
 */
START_TEST(test_tls_write_timeout_sends_close_notify)
{
	int port = eo_port(), wt = eo_ms(1000) / 1000;
	char conf[64], ending[64], closed[64];
	struct eod *d;
	static unsigned char junk[16384];
	static char buf[65536];
	size_t n, got, sent = 0;
	struct tcli t;
	int stuck = 0;

	snprintf(conf, sizeof(conf), "write_timeout = %d;", wt);
	snprintf(ending, sizeof(ending), "ending: write_timeout (%d s)", wt);
	snprintf(closed, sizeof(closed), "closed: write_timeout (%d s)", wt);
	d = start_tls("echo", port, conf, "");

	ck_assert_int_eq(tcli_start(&t, tcp_open_rcvbuf("127.0.0.1", port,
	    4096), 0, NULL), 0);
	fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK);
	while (stuck < 5 && sent < (64u << 20)) {
		struct pollfd p = { t.fd, POLLOUT, 0 };

		if (SSL_write_ex(t.ssl, junk, sizeof(junk), &n) == 1) {
			sent += n;
			stuck = 0;
			continue;
		}
		ck_assert_int_eq(SSL_get_error(t.ssl, 0), SSL_ERROR_WANT_WRITE);
		stuck += poll(&p, 1, eo_ms(100)) == 0;
	}
	/* write_timeout runs out; then the client reads. */
	ck_assert_int_eq(eod_log_wait(d, ending, eo_ms(10000)), 0);
	fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) & ~O_NONBLOCK);
	ck_assert_int_eq(tcli_read_end(&t, buf, sizeof(buf), &got), 1);
	tcli_close(&t);
	ck_assert_int_eq(eod_log_wait(d, closed, eo_ms(5000)), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A client that ends with a FIN and no close_notify is one that sent
 * EOF: the oracle still says that its question was unfinished, the
 * session ends with close_notify, and nothing is logged as an error.
 */
START_TEST(test_tls_eof_without_close_notify)
{
	int port = eo_port();
	struct eod *d = start_tls("oracle", port, "", "");
	static const char want[] = "error: unfinished question: questions "
	    "end with '?'\r\n";
	struct tcli t;
	char buf[256];
	size_t n, got;

	ck_assert_int_eq(tcli_open(&t, port, 0, NULL), 0);
	ck_assert_int_eq(SSL_write_ex(t.ssl, "Will it rain", 12, &n), 1);
	ck_assert_int_eq(shutdown(t.fd, SHUT_WR), 0);
	ck_assert_int_eq(tcli_read_end(&t, buf, sizeof(buf), &got), 1);
	ck_assert_uint_eq(got, sizeof(want) - 1);
	ck_assert_int_eq(memcmp(buf, want, got), 0);
	tcli_close(&t);
	ck_assert_int_eq(eod_log_wait(d, "closed: ", eo_ms(5000)), 0);
	ck_assert_int_eq(eod_log_has(d, "closed: error"), 0);
	ck_assert_int_eq(eod_log_has(d, "unexpected eof"), 0);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/* ---- what a client's certificate chain may cost ------------------- */

/* A mutual-TLS echo listener; extra settings for its tls group. */
static struct eod *
start_mutual(int port)
{
	char arg[256];

	snprintf(arg, sizeof(arg), "client_ca = \"%s/ca.pem\";", certs);
	return start_tls("echo", port, "", arg);
}

/*
 * A client no CA vouches for, sending its self-signed leaf and 249
 * unrelated certificates (94 KB): refused before the daemon parses
 * them, at the cost of a plain failed handshake (1.0 to 1.3 ms of CPU on
 * a quiet machine; parsed, the chain cost 48 ms).  The bound, 10 ms
 * each, leaves room for a machine busy with other work (CI saw 3.5 ms
 * beside another test run) and still fails a parsed chain.
 */
START_TEST(test_tls_junk_chain_cheap)
{
	int port = eo_port(), i, n = 40;
	struct eod *d = start_mutual(port);
	struct tcli t;
	long cpu0, cpu;

	ck_assert_int_eq(tcli_open(&t, port, 0, "client"), 0);
	ck_assert_int_eq(tcli_echo(&t, "valid\n"), 0);
	tcli_close(&t);
	cpu0 = eod_cpu_ms(d);
	for (i = 0; i < n; i++) {
		if (tcli_open(&t, port, 0, "stranger") == 0)
			ck_assert_int_ne(tcli_echo(&t, "nope\n"), 0);
		tcli_close(&t);
	}
	ck_assert_int_eq(eod_log_wait(d, "TLS handshake failed: excessive "
	    "message size", eo_ms(5000)), 0);
	cpu = eod_cpu_ms(d) - cpu0;
	fprintf(stderr, "junk chain: %d failed handshakes, daemon CPU %ld ms "
	    "(%.2f ms each)\n", n, cpu, (double)cpu / n);
	/*
	 * Under a wrapper (valgrind: 20-50 times slower) a CPU bound means
	 * nothing: what still does is that every chain was refused for its
	 * size, so none was parsed or verified.  The bound holds on the
	 * plain and sanitized builds.
	 */
	if (getenv("EO_WRAPPER") == NULL)
		ck_assert_int_le(cpu, 10 * n);
	/* A client may see the alert before the line is written. */
	for (i = 0; i < eo_ms(5000) / 20 && eod_log_count(d, "closed: TLS "
	    "handshake failed: excessive message size") < n; i++)
		usleep(20 * 1000);
	ck_assert_int_eq(eod_log_count(d, "closed: TLS handshake failed: "
	    "excessive message size"), n);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

/*
 * A valid client certificate padded with 30 unrelated ones: served,
 * and its idle connection holds no more than a plain mutual-TLS one
 * may (48 KiB), whatever came with the certificate.
 */
START_TEST(test_tls_idle_chain_memory)
{
	enum { N = 64 };
	int port = eo_port(), i;
	struct eod *d = start_mutual(port);
	static struct tcli t[N];
	long rss0, rss;

	ck_assert_int_eq(tcli_open(&t[0], port, 0, "padded"), 0);
	ck_assert_int_eq(tcli_echo(&t[0], "warm\n"), 0);
	tcli_close(&t[0]);
	rss0 = eod_rss_kb(d);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(tcli_open(&t[i], port, 0, "padded"), 0);
		ck_assert_int_eq(tcli_echo(&t[i], "idle now\n"), 0);
	}
	usleep(200 * 1000);
	rss = eod_rss_kb(d);
	fprintf(stderr, "padded chain: %d idle connections, daemon RSS %ld -> "
	    "%ld KiB (%ld KiB each)\n", N, rss0, rss, (rss - rss0) / N);
	/* Not under ASan or valgrind: their quarantines keep the freed
	   chains out of reuse (as in test_tls_client_never_reads). */
#ifndef EO_SANITIZED
	if (getenv("EO_WRAPPER") == NULL)
		ck_assert_int_le(rss - rss0, N * eo_mem(48));
#endif
	for (i = 0; i < N; i++)
		tcli_close(&t[i]);
	ck_assert_int_eq(eod_stop(d), 0);
	eod_free(d);
}
END_TEST

static int
make_certs(void)
{
	char cmd[512];

	if (system("openssl version >/dev/null 2>&1") != 0)
		return -1;
	if (mkdtemp(certs) == NULL)
		return -1;
	/* Read by the daemon, which runs as another user (harness.h). */
	snprintf(cmd, sizeof(cmd), "sh %s/tests/integration/tls_certs.sh %s "
	    "&& chmod -R a+rX %s", EO_SOURCE_DIR, certs, certs);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");
	char cmd[128];
	int r;

	if (make_certs() == -1) {
		fprintf(stderr, "skipped: the openssl command is missing or "
		    "failed to make the test certificates\n");
		return getenv("EO_NO_SKIP") != NULL ? 1 : 77;
	}
	tcase_set_timeout(tc, eo_ms(120));
	tcase_add_test(tc, test_tls_echo_bulk_12);
	tcase_add_test(tc, test_tls_echo_bulk_13);
	tcase_add_test(tc, test_tls_oracle_bulk_12);
	tcase_add_test(tc, test_tls_oracle_bulk_13);
	tcase_add_test(tc, test_tls_11_refused);
	tcase_add_test(tc, test_tls_13_only);
	tcase_add_test(tc, test_tls_mutual);
	tcase_add_test(tc, test_tls_plaintext_closed);
	tcase_add_test(tc, test_sigusr1_counts_tls_refusals);
	tcase_add_test(tc, test_tls_handshake_timeout);
	tcase_add_test(tc, test_tls_rotation_by_sighup);
	tcase_add_test(tc, test_tls_restart_closes_cleanly);
	tcase_add_test(tc, test_tls_check_bad_files);
	tcase_add_test(tc, test_tls_after_proxy_header);
	tcase_add_test(tc, test_tls_greeting_after_handshake);
	tcase_add_test(tc, test_tls_data_with_close_notify);
	tcase_add_test(tc, test_tls_client_never_reads);
	suite_add_tcase(s, tc);
	/* How sessions end: CK_RUN_CASE=ends runs these alone. */
	tc = tcase_create("ends");
	tcase_set_timeout(tc, eo_ms(120));
	tcase_add_test(tc, test_tls_idle_timeout_sends_close_notify);
	tcase_add_test(tc, test_tls_shutdown_sends_close_notify);
	tcase_add_test(tc, test_tls_eviction_sends_close_notify);
	tcase_add_test(tc, test_tls_write_timeout_sends_close_notify);
	tcase_add_test(tc, test_tls_eof_without_close_notify);
	suite_add_tcase(s, tc);
	/* What a client's chain costs: CK_RUN_CASE=chain. */
	tc = tcase_create("chain");
	tcase_set_timeout(tc, eo_ms(120));
	tcase_add_test(tc, test_tls_junk_chain_cheap);
	tcase_add_test(tc, test_tls_idle_chain_memory);
	suite_add_tcase(s, tc);
	r = check_run(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", certs);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", certs);
	return r;
}
