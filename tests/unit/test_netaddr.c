/* test_netaddr.c - listen addresses (admin_listen) and trusted-proxy lists
 * (server/netaddr.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

static int parse(const char *text, struct listen_addr *la)
{
	char err[128];
	return netaddr_parse_listen(text, la, err, sizeof(err));
}

START_TEST(listen_host_port)
{
	struct listen_addr la;

	ck_assert_int_eq(parse("127.0.0.1:9180", &la), 0);
	ck_assert_str_eq(la.host, "127.0.0.1");
	ck_assert_uint_eq(la.port, 9180);
	ck_assert_int_eq(la.off, 0);
	ck_assert_str_eq(la.path, "");
	ck_assert_int_eq(parse("localhost:0", &la), 0);
	ck_assert_uint_eq(la.port, 0);
	ck_assert_int_eq(parse("0.0.0.0:65535", &la), 0);
	ck_assert_uint_eq(la.port, 65535);
}
END_TEST

START_TEST(listen_ipv6)
{
	struct listen_addr la;

	ck_assert_int_eq(parse("[::1]:9180", &la), 0);
	ck_assert_str_eq(la.host, "::1");
	ck_assert_uint_eq(la.port, 9180);
	ck_assert_int_eq(parse("[2001:db8::1]:1", &la), 0);
	ck_assert_str_eq(la.host, "2001:db8::1");
	/* bare IPv6 is ambiguous: which colon starts the port? */
	ck_assert_int_eq(parse("::1:9180", &la), -1);
	ck_assert_int_eq(parse("[::1]9180", &la), -1);
	ck_assert_int_eq(parse("[::1]", &la), -1);
	ck_assert_int_eq(parse("[]:9180", &la), -1);
}
END_TEST

START_TEST(listen_unix_and_off)
{
	struct listen_addr la;
	char path[200];

	ck_assert_int_eq(parse("off", &la), 0);
	ck_assert_int_eq(la.off, 1);
	ck_assert_int_eq(parse("unix:/run/parley/admin.sock", &la), 0);
	ck_assert_str_eq(la.path, "/run/parley/admin.sock");
	ck_assert_str_eq(la.host, "");
	ck_assert_int_eq(parse("unix:relative.sock", &la), -1);
	ck_assert_int_eq(parse("unix:", &la), -1);
	/* sun_path holds 108 bytes with its NUL: 107 characters at most */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	memcpy(path + 107, "", 1);
	char text[220] = "unix:";
	strcat(text, path);
	ck_assert_int_eq(parse(text, &la), 0);
	path[107] = 'a';
	path[108] = '\0';
	strcpy(text, "unix:");
	strcat(text, path);
	ck_assert_int_eq(parse(text, &la), -1);
}
END_TEST

START_TEST(listen_bad)
{
	struct listen_addr la;
	static const char *const bad[] = { "", "9180", "localhost", "host:", ":9180",
		"host:65536", "host:99999", "host:-1", "host:12a", "host:+80", "host: 80",
		"host:000000", "Off", "unix" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i], &la) == -1, "'%s' should be refused", bad[i]);
}
END_TEST

START_TEST(netlist_matches_every_spelling)
{
	struct netlist l = { 0 };
	char err[128];

	ck_assert_int_eq(netlist_parse(&l, "2001:db8::/32, 10.0.0.0/8", err, sizeof(err)), 0);
	ck_assert_int_eq(netlist_contains(&l, "2001:0db8:0000:0000:0000:0000:0000:0001"), 1);
	ck_assert_int_eq(netlist_contains(&l, "::ffff:10.1.2.3"), 1);
	ck_assert_int_eq(netlist_contains(&l, "0000:0000:0000:0000:0000:ffff:10.1.2.3"), 1);
	ck_assert_int_eq(netlist_contains(&l, "11.0.0.1"), 0);
	netlist_free(&l);
}
END_TEST

static Suite *netaddr_suite(void)
{
	Suite *s = suite_create("netaddr");
	TCase *tc = tcase_create("listen");

	tcase_add_test(tc, listen_host_port);
	tcase_add_test(tc, listen_ipv6);
	tcase_add_test(tc, listen_unix_and_off);
	tcase_add_test(tc, listen_bad);
	tcase_add_test(tc, netlist_matches_every_spelling);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(netaddr_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
