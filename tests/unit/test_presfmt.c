/* Unit tests of cluster/presfmt.c: the text other nodes read our presence
 * changes from (payloads and hash fields), fed bytes directly. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "presfmt.h"

struct seen {
	char room[8][64], user[8][64];
	size_t rl[8], ul[8];
	uint32_t count[8];
	int n;
};

static void collect(const char *room, size_t rl, const char *user, size_t ul, uint32_t count, void *ud)
{
	struct seen *s = ud;
	ck_assert_int_lt(s->n, 8);
	memcpy(s->room[s->n], room, rl);
	memcpy(s->user[s->n], user, ul);
	s->rl[s->n] = rl;
	s->ul[s->n] = ul;
	s->count[s->n] = count;
	s->n++;
}

START_TEST(round_trip_with_any_bytes_in_names)
{
	struct pbuf b = { 0 };
	struct seen s = { 0 };
	/* names holding the separators themselves, a NUL, and an empty user */
	presfmt_add(&b, "lobby", 5, "alice", 5, 2);
	presfmt_add(&b, "a 1:b", 5, "x:9 y", 5, 0);
	presfmt_add(&b, "n\0l", 3, "", 0, 4294967295u);
	ck_assert_int_eq(presfmt_parse(b.data, b.len, collect, &s), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert(s.rl[0] == 5 && !memcmp(s.room[0], "lobby", 5) && s.ul[0] == 5 &&
		  !memcmp(s.user[0], "alice", 5) && s.count[0] == 2);
	ck_assert(s.rl[1] == 5 && !memcmp(s.room[1], "a 1:b", 5) && !memcmp(s.user[1], "x:9 y", 5) &&
		  s.count[1] == 0);
	ck_assert(s.rl[2] == 3 && !memcmp(s.room[2], "n\0l", 3) && s.ul[2] == 0 &&
		  s.count[2] == 4294967295u);
	pbuf_free(&b);
}
END_TEST

START_TEST(empty_payload_is_no_entry)
{
	struct seen s = { 0 };
	ck_assert_int_eq(presfmt_parse("", 0, collect, &s), 0);
	ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(malformed_stops_after_the_good_entries)
{
	static const char *bad[] = {
		"X1 5:lobby5:alice",         /* garbage where a count starts */
		"1 5:lobby6:alice",          /* user shorter than its length */
		"1 9:lobby",                 /* room shorter than its length */
		"4294967296 1:r1:u",         /* count past 32 bits */
		"1 1:r99999999999:u",        /* length past 32 bits */
		"-1 1:r1:u",                 /* sign */
		"1 1:r1 u",                  /* wrong separator */
		"1 1:r",                     /* cut after the room */
		"1",                         /* cut after the count */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pbuf b = { 0 };
		struct seen s = { 0 };
		presfmt_add(&b, "ok", 2, "u", 1, 1);
		pbuf_adds(&b, bad[i]);
		ck_assert_msg(presfmt_parse(b.data, b.len, collect, &s) == -1, "accepted %s", bad[i]);
		ck_assert_msg(s.n == 1 && s.count[0] == 1, "entry before %s", bad[i]);
		pbuf_free(&b);
	}
}
END_TEST

START_TEST(fields)
{
	char f[32];
	const char *room, *user;
	size_t rl, ul;
	size_t n = presfmt_field(f, sizeof(f), "lobby", 5, "al:ce", 5);
	ck_assert_uint_eq(n, 12);
	ck_assert(!memcmp(f, "5:lobbyal:ce", 12));
	ck_assert_int_eq(presfmt_split(f, n, &room, &rl, &user, &ul), 0);
	ck_assert(rl == 5 && !memcmp(room, "lobby", 5) && ul == 5 && !memcmp(user, "al:ce", 5));
	/* exactly the buffer, and one byte over: refused, never truncated */
	ck_assert_uint_eq(presfmt_field(f, 12, "lobby", 5, "al:ce", 5), 12);
	ck_assert_uint_eq(presfmt_field(f, 11, "lobby", 5, "al:ce", 5), 0);
	/* the empty field (a node hash's marker) and bad ones do not split */
	ck_assert_int_eq(presfmt_split("", 0, &room, &rl, &user, &ul), -1);
	ck_assert_int_eq(presfmt_split("9:abc", 5, &room, &rl, &user, &ul), -1);
	ck_assert_int_eq(presfmt_split("x:abc", 5, &room, &rl, &user, &ul), -1);
	ck_assert_int_eq(presfmt_split("3:abc", 5, &room, &rl, &user, &ul), 0);
	ck_assert(rl == 3 && ul == 0);
}
END_TEST

static Suite *presfmt_suite(void)
{
	Suite *s = suite_create("presfmt");
	TCase *tc = tcase_create("presfmt");

	tcase_add_test(tc, round_trip_with_any_bytes_in_names);
	tcase_add_test(tc, empty_payload_is_no_entry);
	tcase_add_test(tc, malformed_stops_after_the_good_entries);
	tcase_add_test(tc, fields);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(presfmt_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
