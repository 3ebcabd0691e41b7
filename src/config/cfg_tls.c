/*
 * Reading TLS's options: a listener's tls group, its files loaded and
 * checked into an SSL_CTX, printed for -T, and the certificate line a
 * reload logs when one changed.  See include/tls.h; the
 * context at run time is tls_ctx.c, the transport src/runtime/tls.c.
 *
 * Nothing here lowers OpenSSL's defaults: its security level, cipher
 * lists and session handling stay as Debian ships them.  The operator
 * may only raise the floor (min_version = "1.3") and ask for client
 * certificates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "config.h"
#include "log.h"
#include "tls.h"
#include "tls_int.h"

#define TLS_PATH_MAX	4096
/*
 * What a client may make the daemon parse: its Certificate message at
 * most this long (OpenSSL's default is 100 KiB, and parsing 250 junk
 * certificates costs 40 ms of CPU before the verdict), and at most
 * this many CA certificates between its own and a client_ca.
 */
#define TLS_MAX_CERT_LIST	(16 * 1024)
#define TLS_VERIFY_DEPTH	5

static const char *const tls_keys[] = { "certificate", "key", "client_ca",
	"verify_client", "min_version", NULL };
static const char *const verify_names[] = { "none", "optional",
	"required" };

/*
 * A key protected by a passphrase would make OpenSSL prompt on the
 * terminal, which a daemon has not: refuse it instead of hanging.
 */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/*
 * Files are opened here first, without blocking (a FIFO would hang -t
 * and the reload's check) and must be regular: OpenSSL's own messages
 * for a missing or unreadable file ("system library") say less.
 */
static int
tls_file_check(struct cfg_diag *d, const config_setting_t *s,
    const char *key, const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		cfg_error(d, s, "%s: cannot read \"%s\": %s", key, path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		cfg_error(d, s, "%s: \"%s\" is not a regular file", key, path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* OpenSSL refused what s names: its first reason, at s's line. */
static int
tls_ssl_error(struct cfg_diag *d, const config_setting_t *s,
    const char *what, const char *path)
{
	char why[256];
	unsigned long e = ERR_get_error();

	if (e != 0)
		tls_error_string(e, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "unknown error");
	ERR_clear_error();
	cfg_error(d, s, "%s \"%s\": %s", what, path, why);
	return -1;
}

/* What a PEM file holds, by its BEGIN lines (and the old Proc-Type). */
#define TLS_PEM_CERT		0x1
#define TLS_PEM_KEY		0x2
#define TLS_PEM_ENCRYPTED	0x4

static int
tls_pem_kinds(const char *path)
{
	char line[256];
	FILE *f;
	int k = 0;

	/* A regular file by now (tls_file_check): fopen cannot hang. */
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "-----BEGIN ", 11) == 0) {
			if (strstr(line, "CERTIFICATE-----") != NULL)
				k |= TLS_PEM_CERT;
			else if (strstr(line, "PRIVATE KEY-----") != NULL)
				k |= TLS_PEM_KEY;
			if (strstr(line, "ENCRYPTED PRIVATE KEY") != NULL)
				k |= TLS_PEM_ENCRYPTED;
		} else if (strncmp(line, "Proc-Type: 4,ENCRYPTED", 22) == 0)
			k |= TLS_PEM_ENCRYPTED;
	}
	fclose(f);
	return k;
}

/*
 * OpenSSL refused a file that should hold want (TLS_PEM_CERT or _KEY).
 * Its reasons for the usual mistakes say little ("no start line" for a
 * key given as the certificate, "interrupted or cancelled" for a key
 * under a passphrase): those are named, the rest is OpenSSL's.
 */
static int
tls_pem_error(struct cfg_diag *d, const config_setting_t *s,
    const char *what, const char *path, int want)
{
	int k = tls_pem_kinds(path);
	const char *why = NULL;

	if (want == TLS_PEM_KEY && (k & TLS_PEM_ENCRYPTED))
		why = "the key is encrypted: the daemon cannot ask for a "
		    "passphrase";
	else if (want == TLS_PEM_KEY && k == TLS_PEM_CERT)
		why = "this file holds a certificate, not a private key";
	else if (want == TLS_PEM_CERT && k == TLS_PEM_KEY)
		why = "this file holds a private key, not a certificate";
	if (why == NULL)
		return tls_ssl_error(d, s, what, path);
	ERR_clear_error();
	cfg_error(d, s, "%s \"%s\": %s", what, path, why);
	return -1;
}

/*
 * The certificate chain and its key; the key must match.  Both are
 * read even if the first is bad: one run names every mistake (the two
 * given the other way round).
 */
static int
tls_load_pair(struct cfg_diag *d, const config_setting_t *g,
    struct tls_ctx *t)
{
	const config_setting_t *sc = config_setting_get_member(g,
	    "certificate"), *sk = config_setting_get_member(g, "key");
	int bad;

	bad = tls_file_check(d, sc, "certificate", t->cert) == -1;
	bad |= tls_file_check(d, sk, "key", t->key) == -1;
	if (bad)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(t->ctx, t->cert) != 1)
		bad = tls_pem_error(d, sc, "certificate", t->cert,
		    TLS_PEM_CERT) == -1;
	/* Without a certificate loaded, the key is only read. */
	if (SSL_CTX_use_PrivateKey_file(t->ctx, t->key, SSL_FILETYPE_PEM) == 1 &&
	    (bad || SSL_CTX_check_private_key(t->ctx) == 1))
		return bad ? -1 : 0;
	/* OpenSSL says "key values mismatch": say which files. */
	if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
		ERR_clear_error();
		cfg_error(d, sk, "key \"%s\" does not match certificate "
		    "\"%s\"", t->key, t->cert);
		return -1;
	}
	return tls_pem_error(d, sk, "key", t->key, TLS_PEM_KEY);
}

/* client_ca: whom client certificates must be signed by. */
static int
tls_load_ca(struct cfg_diag *d, const config_setting_t *g,
    struct tls_ctx *t)
{
	const config_setting_t *s = config_setting_get_member(g, "client_ca");
	STACK_OF(X509_NAME) *names;
	int mode = SSL_VERIFY_PEER;

	if (tls_file_check(d, s, "client_ca", t->ca) == -1)
		return -1;
	if (SSL_CTX_load_verify_locations(t->ctx, t->ca, NULL) != 1)
		return tls_ssl_error(d, s, "client_ca", t->ca);
	/* The CA names sent with the request: clients pick a matching
	   certificate by them. */
	if ((names = SSL_load_client_CA_file(t->ca)) == NULL)
		return tls_ssl_error(d, s, "client_ca", t->ca);
	SSL_CTX_set_client_CA_list(t->ctx, names);
	SSL_CTX_set_max_cert_list(t->ctx, TLS_MAX_CERT_LIST);
	SSL_CTX_set_verify_depth(t->ctx, TLS_VERIFY_DEPTH);
	if (t->verify == EO_TLS_VERIFY_REQUIRED)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(t->ctx, mode, NULL);
	return 0;
}

/* The loaded certificate's fingerprint and end, for the reload's log. */
static void
tls_remember(struct tls_ctx *t)
{
	X509 *x = SSL_CTX_get0_certificate(t->ctx);
	unsigned n = 0;
	struct tm tm;

	if (x == NULL)
		return;
	X509_digest(x, EVP_sha256(), t->sha256, &n);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		strftime(t->until, sizeof(t->until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(t->until, sizeof(t->until), "?");
}

/* The context from the settings read into t. */
static int
tls_build(struct cfg_diag *d, const config_setting_t *g, struct tls_ctx *t)
{
	static const unsigned char sid[] = "echo-oracled";
	int bad;

	ERR_clear_error();
	if ((t->ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return tls_ssl_error(d, g, "tls", "context");
	SSL_CTX_set_default_passwd_cb(t->ctx, tls_no_passphrase);
	SSL_CTX_set_min_proto_version(t->ctx, t->min13 ? TLS1_3_VERSION :
	    TLS1_2_VERSION);
	/* An idle connection gives its record buffers back, as a plain
	   one holds no buffer memory at all. */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	/* A client's FIN without close_notify is its EOF, as on
	   plaintext: truncation means nothing to echo or the oracle.
	   OpenSSL 3 makes it an error ("unexpected eof while reading")
	   that libevent 2.1's dirty-shutdown flag does not recognise. */
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Resumed sessions of a verifying context need one (OpenSSL
	   refuses them otherwise); sessions never cross contexts. */
	SSL_CTX_set_session_id_context(t->ctx, sid, sizeof(sid) - 1);
	bad = tls_load_pair(d, g, t) == -1;
	if (!bad)
		tls_remember(t);
	if (t->ca != NULL)
		bad |= tls_load_ca(d, g, t) == -1;
	return bad ? -1 : 0;
}

static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const unsigned char *wire = arg;
	unsigned char *sel;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, wire, (unsigned)wire[0] + 1u,
	    in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

void
tls_set_alpn(struct tls_ctx *t, const unsigned char *wire)
{
	SSL_CTX_set_alpn_select_cb(t->ctx, tls_alpn_select, (void *)wire);
}

/* A path setting, copied: 0 absent, 1 set, -1 error added. */
static int
tls_get_path(struct cfg_diag *d, const config_setting_t *g, const char *key,
    char **out)
{
	const char *v = NULL;
	int r;

	if ((r = cfg_get_string(d, g, key, TLS_PATH_MAX, &v)) <= 0)
		return r;
	if (*v == '\0') {
		cfg_error(d, config_setting_get_member(g, key),
		    "%s must name a file", key);
		return -1;
	}
	if ((*out = strdup(v)) == NULL) {
		cfg_error(d, config_setting_get_member(g, key),
		    "out of memory");
		return -1;
	}
	return 1;
}

/*
 * min_version.  TLS 1.0 and 1.1 are refused by name: RFC 8996
 * deprecates them, and OpenSSL 3's default security level would refuse
 * their handshakes anyway, so accepting the setting would be a lie.
 */
static int
tls_get_version(struct cfg_diag *d, const config_setting_t *g,
    struct tls_ctx *t)
{
	const config_setting_t *s = config_setting_get_member(g,
	    "min_version");
	const char *v = NULL;
	int r;

	if ((r = cfg_get_string(d, g, "min_version", 16, &v)) <= 0)
		return r;
	if (strcmp(v, "1.3") == 0 || strcmp(v, "1.2") == 0) {
		t->min13 = v[2] == '3';
		return 1;
	}
	if (strcmp(v, "1.0") == 0 || strcmp(v, "1.1") == 0)
		cfg_error(d, s, "min_version \"%s\" is refused: TLS 1.0 and "
		    "1.1 are deprecated (RFC 8996) and OpenSSL's security "
		    "level forbids them; use \"1.2\" or \"1.3\"", v);
	else
		cfg_error(d, s, "min_version must be \"1.2\" or \"1.3\", not "
		    "\"%s\"", v);
	return -1;
}

/* verify_client: "required" by default once client_ca is given. */
static int
tls_get_verify(struct cfg_diag *d, const config_setting_t *g,
    struct tls_ctx *t)
{
	const config_setting_t *s = config_setting_get_member(g,
	    "verify_client");
	const char *v = NULL;
	int r, i;

	t->verify = t->ca != NULL ? EO_TLS_VERIFY_REQUIRED :
	    EO_TLS_VERIFY_NONE;
	if ((r = cfg_get_string(d, g, "verify_client", 16, &v)) <= 0)
		return r;
	for (i = 0; i < 3; i++)
		if (strcmp(v, verify_names[i]) == 0)
			break;
	if (i == 3) {
		cfg_error(d, s, "verify_client must be \"none\", \"optional\" "
		    "or \"required\", not \"%s\"", v);
		return -1;
	}
	t->verify = i;
	if (i != EO_TLS_VERIFY_NONE && t->ca == NULL) {
		cfg_error(d, s, "verify_client = \"%s\" needs client_ca: the "
		    "CA file client certificates are checked against", v);
		return -1;
	}
	if (i == EO_TLS_VERIFY_NONE && t->ca != NULL) {
		cfg_error(d, s, "verify_client = \"none\" but client_ca is "
		    "set: say \"optional\" or \"required\", or drop client_ca");
		return -1;
	}
	return 1;
}

/* The settings, each checked. */
static int
tls_settings(struct cfg_diag *d, const config_setting_t *g,
    struct tls_ctx *t)
{
	int bad = 0, r;

	bad |= cfg_check_keys(d, g, tls_keys) < 0;
	if ((r = tls_get_path(d, g, "certificate", &t->cert)) == 0)
		cfg_error(d, g, "tls: certificate is missing (a PEM file: the "
		    "server's certificate, then its chain)");
	bad |= r <= 0;
	if ((r = tls_get_path(d, g, "key", &t->key)) == 0)
		cfg_error(d, g, "tls: key is missing (a PEM file)");
	bad |= r <= 0;
	bad |= tls_get_path(d, g, "client_ca", &t->ca) < 0;
	bad |= tls_get_verify(d, g, t) < 0;
	bad |= tls_get_version(d, g, t) < 0;
	return bad ? -1 : 0;
}

int
tls_parse(struct cfg_diag *d, const config_setting_t *lg,
    const unsigned char *alpn, struct tls_ctx **out)
{
	const config_setting_t *g = config_setting_get_member(lg, "tls");
	struct tls_ctx *t;
	int bad;

	*out = NULL;
	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g)) {
		cfg_error(d, g, "tls must be a group: tls = { certificate = "
		    "\"...\"; key = \"...\"; };");
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		cfg_error(d, g, "out of memory");
		return -1;
	}
	/* The files are read whenever both are named, even if another
	   setting is bad: one run shows every mistake. */
	bad = tls_settings(d, g, t) == -1;
	if (t->cert != NULL && t->key != NULL)
		bad |= tls_build(d, g, t) == -1;
	if (bad) {
		tls_free(t);
		return -1;
	}
	if (alpn != NULL)
		tls_set_alpn(t, alpn);
	*out = t;
	return 1;
}

void
tls_print(const struct tls_ctx *t, FILE *f)
{
	fputs("tls = { certificate = ", f);
	cfg_print_string(f, t->cert);
	fputs("; key = ", f);
	cfg_print_string(f, t->key);
	if (t->ca != NULL) {
		fputs(";\n      client_ca = ", f);
		cfg_print_string(f, t->ca);
	}
	fprintf(f, "; verify_client = \"%s\"; min_version = \"%s\"; };",
	    verify_names[t->verify], t->min13 ? "1.3" : "1.2");
}

void
tls_log_change(const char *listener, const struct tls_ctx *was,
    const struct tls_ctx *t)
{
	char hex[3 * 32];
	int i;

	if (was != NULL && memcmp(was->sha256, t->sha256, 32) == 0)
		return;
	for (i = 0; i < 32; i++)
		snprintf(hex + 3 * i, sizeof(hex) - 3 * (size_t)i, "%02X%s",
		    t->sha256[i], i < 31 ? ":" : "");
	log_info("listener %s: new certificate: SHA-256 %s, valid until %s",
	    listener, hex, t->until);
}
