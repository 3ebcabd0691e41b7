/*
 * listener: the per-listener and per-source limits, reference counting,
 * peer keys, binding.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "config.h"
#include "listener.h"
#include "check_main.h"

static struct cfg *
load(const char *text)
{
	struct cfg_diag d;
	struct cfg *cfg;

	cfg_diag_init(&d);
	cfg = cfg_load_string(text, "test.conf", &d);
	ck_assert_msg(cfg != NULL, "%s", d.n ? d.msgs[0] : "?");
	cfg_diag_free(&d);
	return cfg;
}

static void
key4(struct peer_key *k, const char *ip)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin.sin_addr);
	peer_key_from(k, (struct sockaddr *)&sin);
}

START_TEST(test_listener_cap)
{
	struct cfg *cfg = load("listeners = ( { name = \"e\"; protocol = "
	    "\"echo\"; port = 7; bind = \"::1\"; max_connections = 2; } );");
	struct listener *l = listener_new(&cfg->listeners[0]);
	struct peer_key k;
	int ps;

	key4(&k, "10.0.0.1");
	ck_assert_str_eq(listener_name(l), "e");
	ck_assert_int_eq(listener_admit(l, &k, &ps), EO_ADMIT_OK);
	ck_assert_int_eq(ps, 0);
	ck_assert_int_eq(listener_admit(l, &k, &ps), EO_ADMIT_OK);
	ck_assert_int_eq(listener_admit(l, &k, &ps), EO_ADMIT_LISTENER_FULL);
	ck_assert_uint_eq(listener_nconns(l), 2);
	listener_release(l, &k, 0);
	ck_assert_int_eq(listener_admit(l, &k, &ps), EO_ADMIT_OK);
	listener_release(l, &k, 0);
	listener_release(l, &k, 0);
	ck_assert_uint_eq(listener_nconns(l), 0);
	listener_unref(l);
	cfg_unref(cfg);
}
END_TEST

START_TEST(test_per_source)
{
	struct cfg *cfg = load("listeners = ( { name = \"e\"; protocol = "
	    "\"echo\"; port = 7; bind = \"::1\";"
	    " max_connections_per_source = 2; } );");
	struct listener *l = listener_new(&cfg->listeners[0]);
	struct peer_key a, b, v6;
	struct sockaddr_in6 sin6;
	int ps, i;

	key4(&a, "10.0.0.1");
	key4(&b, "10.0.0.2");
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &sin6.sin6_addr);
	peer_key_from(&v6, (struct sockaddr *)&sin6);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(listener_admit(l, &a, &ps), EO_ADMIT_OK);
		ck_assert_int_eq(ps, 1);
	}
	ck_assert_int_eq(listener_admit(l, &a, &ps), EO_ADMIT_SOURCE_FULL);
	ck_assert_int_eq(listener_admit(l, &b, &ps), EO_ADMIT_OK);
	/* ::ffff:10.0.0.1 is 10.0.0.1 (issue 30): full too. */
	ck_assert_int_eq(listener_admit(l, &v6, &ps), EO_ADMIT_SOURCE_FULL);
	listener_release(l, &a, 1);
	ck_assert_int_eq(listener_admit(l, &v6, &ps), EO_ADMIT_OK);
	ck_assert_int_eq(listener_admit(l, &a, &ps), EO_ADMIT_SOURCE_FULL);
	ck_assert_uint_eq(listener_nconns(l), 3);
	listener_release(l, &a, 1);
	listener_release(l, &b, 1);
	listener_release(l, &v6, 1);
	ck_assert_uint_eq(listener_nconns(l), 0);
	/* All released: the table is empty again, any source admitted. */
	ck_assert_int_eq(listener_admit(l, &a, &ps), EO_ADMIT_OK);
	ck_assert_int_eq(listener_admit(l, &a, &ps), EO_ADMIT_OK);
	listener_release(l, &a, 1);
	listener_release(l, &a, 1);
	listener_unref(l);
	cfg_unref(cfg);
}
END_TEST

/* Connections keep a listener a reload removed. */
START_TEST(test_refs)
{
	struct cfg *cfg = load("listeners = ( { name = \"e\"; protocol = "
	    "\"echo\"; port = 7; bind = \"::1\"; } );");
	struct listener *l = listener_new(&cfg->listeners[0]);
	struct peer_key k;
	int ps;

	key4(&k, "10.0.0.1");
	ck_assert_int_eq(listener_admit(l, &k, &ps), EO_ADMIT_OK);
	listener_unref(l);		/* the server lets go */
	ck_assert_uint_eq(listener_nconns(l), 1);
	listener_release(l, &k, 0);	/* the last connection frees it */
	cfg_unref(cfg);
}
END_TEST

START_TEST(test_peer_format)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	char buf[80];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(1234);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	peer_format((struct sockaddr *)&sin, buf, sizeof(buf));
	ck_assert_str_eq(buf, "127.0.0.1:1234");
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(7);
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	peer_format((struct sockaddr *)&sin6, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::1]:7");
}
END_TEST

/* Binding: a port in use says which call failed and why. */
START_TEST(test_bind)
{
	struct cfg *cfg = load("listeners = ( { name = \"e\"; protocol = "
	    "\"echo\"; port = 7; bind = \"127.0.0.1\"; } );");
	struct cfg_addr a = cfg->listeners[0].addrs[0];
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	socklen_t len = sizeof(*sin);
	char err[256];
	int fd, fd2;

	sin->sin_port = 0;	/* any free port, for the test */
	fd = listener_bind(&a, 16, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	snprintf(a.text, sizeof(a.text), "127.0.0.1:%u", ntohs(sin->sin_port));
	fd2 = listener_bind(&a, 16, err, sizeof(err));
	ck_assert_int_eq(fd2, -1);
	ck_assert_msg(strstr(err, "bind 127.0.0.1:") != NULL &&
	    strstr(err, "Address already in use") != NULL, "%s", err);
	close(fd);
	cfg_unref(cfg);
}
END_TEST

/*
 * Review of the reload changes #1: every listening socket got
 * SO_REUSEPORT, so another process of our uid with SO_REUSEPORT could
 * bind our port and silently take a share of our clients.  It must get
 * EADDRINUSE, on a specific address and on the wildcard of its port.
 */
START_TEST(test_bind_reuseport_hijack_refused)
{
	struct cfg *cfg = load("listeners = ( { name = \"e\"; protocol = "
	    "\"echo\"; port = 7; bind = \"127.0.0.1\"; } );");
	struct cfg_addr a = cfg->listeners[0].addrs[0];
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in wild;
	socklen_t len = sizeof(*sin);
	char err[256];
	int fd, other, on = 1;

	sin->sin_port = 0;
	fd = listener_bind(&a, 16, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	other = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)), 0);
	ck_assert_int_eq(setsockopt(other, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)), 0);
	errno = 0;
	ck_assert_int_eq(bind(other, (struct sockaddr *)sin, sizeof(*sin)),
	    -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	memset(&wild, 0, sizeof(wild));
	wild.sin_family = AF_INET;
	wild.sin_port = sin->sin_port;
	errno = 0;
	ck_assert_int_eq(bind(other, (struct sockaddr *)&wild,
	    sizeof(wild)), -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	close(other);
	close(fd);
	cfg_unref(cfg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("listener");
	TCase *tc = tcase_create("listener");

	tcase_add_test(tc, test_listener_cap);
	tcase_add_test(tc, test_per_source);
	tcase_add_test(tc, test_refs);
	tcase_add_test(tc, test_peer_format);
	tcase_add_test(tc, test_bind);
	tcase_add_test(tc, test_bind_reuseport_hijack_refused);
	suite_add_tcase(s, tc);
	return check_run(s);
}
