/*
 * CIDR networks: parsing, with each error an operator may make and its
 * message; matching IPv4, IPv6 and IPv4-mapped client addresses; lists.
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "cidr.h"
#include "check_main.h"

/* Text, and either its canonical form or the error it must give. */
static const struct {
	const char	*text;
	const char	*canon;		/* NULL: an error */
	const char	*err;
} parses[] = {
	{ "10.0.0.0/8", "10.0.0.0/8", NULL },
	{ "10.1.2.3", "10.1.2.3/32", NULL },
	{ "10.1.2.3/32", "10.1.2.3/32", NULL },
	{ "0.0.0.0/0", "0.0.0.0/0", NULL },
	{ "192.168.1.128/25", "192.168.1.128/25", NULL },
	{ "::1", "::1/128", NULL },
	{ "::/0", "::/0", NULL },
	{ "2001:DB8::/32", "2001:db8::/32", NULL },
	{ "fe80::/10", "fe80::/10", NULL },
	{ "::ffff:10.0.0.0/104", "10.0.0.0/8", NULL },
	{ "::ffff:0:0/96", "0.0.0.0/0", NULL },
	{ "::ffff:10.1.2.3", "10.1.2.3/32", NULL },
	{ "::/80", "::/80", NULL },
	{ "::ffff:0:0/80", NULL, "did you mean ::/80?" },
	{ "", NULL, "not a network: \"\"" },
	{ "/8", NULL, "not a network: \"/8\"" },
	{ "10.0.0", NULL, "not a network: \"10.0.0\"" },
	{ "010.0.0.0/8", NULL, "not a network: \"010.0.0.0/8\"" },
	{ "256.0.0.0/8", NULL, "not a network" },
	{ "localhost", NULL, "not a network: \"localhost\"" },
	{ " 10.0.0.0/8", NULL, "not a network" },
	{ "fe80::1%eth0", NULL, "not a network" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/1280", NULL,
	  "not a network" },
	{ "10.0.0.0/", NULL, "bad prefix length in \"10.0.0.0/\"" },
	{ "10.0.0.0/08", NULL, "bad prefix length in \"10.0.0.0/08\"" },
	{ "10.0.0.0/-1", NULL, "bad prefix length" },
	{ "10.0.0.0/+8", NULL, "bad prefix length" },
	{ "10.0.0.0/8/8", NULL, "bad prefix length" },
	{ "10.0.0.0/8 ", NULL, "bad prefix length" },
	{ "10.0.0.0/1000", NULL, "bad prefix length" },
	{ "10.0.0.0/33", NULL, "prefix /33 too long for IPv4" },
	{ "10.0.0.0/999", NULL, "prefix /999 too long for IPv4" },
	{ "::/129", NULL, "prefix /129 too long for IPv6" },
	{ "10.0.0.1/8", NULL,
	  "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?" },
	{ "192.168.1.129/25", NULL, "did you mean 192.168.1.128/25?" },
	{ "10.0.0.0/0", NULL, "did you mean 0.0.0.0/0?" },
	{ "2001:db8::1/32", NULL, "did you mean 2001:db8::/32?" },
	{ "::1/0", NULL, "did you mean ::/0?" },
	{ "fec0::/9", NULL, "did you mean fe80::/9?" },
	{ "::ffff:10.0.0.1/104", NULL, "did you mean ::ffff:10.0.0.0/104?" },
};

/* Network, client address, whether it matches. */
static const struct {
	const char	*net;
	const char	*client;
	int		 match;
} matches[] = {
	{ "10.0.0.0/8", "10.255.1.2", 1 },
	{ "10.0.0.0/8", "10.0.0.0", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
	{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
	{ "10.0.0.0/8", "::10.1.2.3", 0 },	/* IPv4-compatible: IPv6 */
	{ "10.0.0.0/8", "a00::", 0 },
	{ "192.168.1.128/25", "192.168.1.128", 1 },
	{ "192.168.1.128/25", "192.168.1.255", 1 },
	{ "192.168.1.128/25", "192.168.1.127", 0 },
	{ "172.16.0.0/12", "172.31.255.255", 1 },
	{ "172.16.0.0/12", "172.32.0.0", 0 },
	{ "0.0.0.0/0", "1.2.3.4", 1 },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", 1 },
	{ "0.0.0.0/0", "::1", 0 },
	{ "10.1.2.3", "10.1.2.3", 1 },
	{ "10.1.2.3", "10.1.2.4", 0 },
	{ "::/0", "::1", 1 },
	{ "::/0", "2001:db8::1", 1 },
	{ "::/0", "1.2.3.4", 0 },
	{ "::/0", "::ffff:1.2.3.4", 0 },	/* that is an IPv4 client */
	{ "::1", "::1", 1 },
	{ "::1", "::2", 0 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::", 0 },
	{ "fe80::/10", "febf::1", 1 },
	{ "fe80::/10", "fec0::1", 0 },
	{ "fe80::/10", "fe7f::1", 0 },
	{ "2001:db8::1/128", "2001:db8::1", 1 },
	{ "2001:db8::1/128", "2001:db8::", 0 },
	{ "::ffff:10.0.0.0/104", "10.9.9.9", 1 },
	{ "::ffff:10.0.0.0/104", "::ffff:10.9.9.9", 1 },
	{ "::ffff:10.0.0.0/104", "11.9.9.9", 0 },
	{ "::/80", "::ffff:10.9.9.9", 0 },	/* that is an IPv4 client */
	{ "::/80", "::1", 1 },
};

/* A client address as accept(2) would give it. */
static const struct sockaddr *
client(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
		s6->sin6_port = htons(40000);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
		s4->sin_port = htons(40000);
	}
	return (const struct sockaddr *)ss;
}

START_TEST(test_parse)
{
	char err[128], text[EO_CIDR_TEXT_MAX];
	struct cidr net;
	int rc;

	err[0] = '\0';
	rc = cidr_parse(parses[_i].text, &net, err, sizeof(err));
	if (parses[_i].canon != NULL) {
		ck_assert_msg(rc == 0, "%s: %s", parses[_i].text, err);
		cidr_format(&net, text, sizeof(text));
		ck_assert_str_eq(text, parses[_i].canon);
	} else {
		ck_assert_msg(rc == -1, "%s: accepted", parses[_i].text);
		ck_assert_msg(strstr(err, parses[_i].err) != NULL,
		    "%s: \"%s\", not \"%s\"", parses[_i].text, err,
		    parses[_i].err);
	}
}
END_TEST

START_TEST(test_match)
{
	struct sockaddr_storage ss;
	struct cidr net;
	char err[128];

	ck_assert_int_eq(cidr_parse(matches[_i].net, &net, err, sizeof(err)),
	    0);
	ck_assert_msg(cidr_match(&net, client(matches[_i].client, &ss)) ==
	    matches[_i].match, "%s in %s: not %d", matches[_i].client,
	    matches[_i].net, matches[_i].match);
}
END_TEST

/* A list matches what any of its networks matches; an error keeps it. */
START_TEST(test_list)
{
	static const char *const nets[] = {
		"10.0.0.0/8", "192.168.0.0/16", "::1", "fd00::/8",
	};
	struct cidr_list l = { NULL, 0 };
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	char err[128];
	size_t i;

	ck_assert_int_eq(cidr_list_match(&l, client("10.0.0.1", &ss)), 0);
	for (i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
		ck_assert_int_eq(cidr_list_add(&l, nets[i], err, sizeof(err)),
		    0);
	ck_assert_int_eq(cidr_list_add(&l, "10.0.0.1/8", err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err,
	    "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?");
	ck_assert_uint_eq(l.n, 4);
	ck_assert_int_eq(cidr_list_match(&l, client("10.0.0.1", &ss)), 1);
	ck_assert_int_eq(cidr_list_match(&l, client("192.168.9.9", &ss)), 1);
	ck_assert_int_eq(cidr_list_match(&l, client("::ffff:192.168.9.9",
	    &ss)), 1);
	ck_assert_int_eq(cidr_list_match(&l, client("192.169.0.1", &ss)), 0);
	ck_assert_int_eq(cidr_list_match(&l, client("::1", &ss)), 1);
	ck_assert_int_eq(cidr_list_match(&l, client("fdff::1", &ss)), 1);
	ck_assert_int_eq(cidr_list_match(&l, client("fe00::1", &ss)), 0);
	ck_assert_int_eq(cidr_list_match(&l, client("127.0.0.1", &ss)), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(cidr_list_match(&l, (struct sockaddr *)&sun), 0);
	ck_assert_int_eq(cidr_match(&l.nets[0], (struct sockaddr *)&sun), 0);
	cidr_list_free(&l);
	ck_assert_ptr_null(l.nets);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(cidr_list_match(&l, client("10.0.0.1", &ss)), 0);
}
END_TEST

static void
flip(uint8_t *addr, unsigned bit)
{
	addr[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
}

/* Every prefix length of both families: the boundary addresses. */
START_TEST(test_every_prefix)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct cidr net;
	char text[64], err[128];
	unsigned p;

	for (p = 0; p <= 32; p++) {
		unsigned long long last = 0xffffffffULL >> p;

		snprintf(text, sizeof(text), "0.0.0.0/%u", p);
		ck_assert_int_eq(cidr_parse(text, &net, err, sizeof(err)), 0);
		client("0.0.0.0", &ss);
		s4->sin_addr.s_addr = htonl((uint32_t)last);
		ck_assert_msg(cidr_match(&net, (struct sockaddr *)s4), "%s",
		    text);
		s4->sin_addr.s_addr = htonl((uint32_t)(last + 1));
		ck_assert_msg(cidr_match(&net, (struct sockaddr *)s4) ==
		    (p == 0), "%s", text);
	}
	for (p = 1; p <= 128; p++) {
		snprintf(text, sizeof(text), "8000::/%u", p);
		ck_assert_int_eq(cidr_parse(text, &net, err, sizeof(err)), 0);
		client("8000::", &ss);
		ck_assert_msg(cidr_match(&net, (struct sockaddr *)s6), "%s",
		    text);
		if (p < 128) {
			/* The last host bit flipped stays inside... */
			flip(s6->sin6_addr.s6_addr, 127);
			ck_assert_msg(cidr_match(&net, (struct sockaddr *)s6),
			    "%s", text);
			flip(s6->sin6_addr.s6_addr, 127);
		}
		/* ...the last network bit flipped is outside. */
		flip(s6->sin6_addr.s6_addr, p - 1);
		ck_assert_msg(!cidr_match(&net, (struct sockaddr *)s6), "%s",
		    text);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc = tcase_create("cidr");

	tcase_add_loop_test(tc, test_parse, 0,
	    (int)(sizeof(parses) / sizeof(parses[0])));
	tcase_add_loop_test(tc, test_match, 0,
	    (int)(sizeof(matches) / sizeof(matches[0])));
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_every_prefix);
	suite_add_tcase(s, tc);
	return check_run(s);
}
