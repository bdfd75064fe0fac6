/* test_hmap.c - the open-addressing hash map (server/hmap.c): lookups
 * across probe runs, backward-shift deletion, growth, wrap-around. Hashes
 * are chosen by hand so collisions and runs that wrap past the last slot
 * happen on purpose, and every state is checked against a plain array. */
#include <check.h>
#include <stdlib.h>

#include "hmap.h"

struct item {
	uint64_t key;
	uint64_t hash;
};

static int item_match(const void *entry, const void *key)
{
	return ((const struct item *)entry)->key == *(const uint64_t *)key;
}

/* Every item in `in` is found, every one not in it is not, and the table
 * holds exactly len entries; and no empty slot sits inside an item's probe
 * run (what backward shift guarantees). */
static void check_table(struct hmap *m, struct item *items, const int *in, int n)
{
	uint32_t len = 0;
	for (int i = 0; i < n; i++) {
		void *e = hmap_get(m, items[i].hash, &items[i].key, item_match);
		if (in[i]) {
			ck_assert_ptr_eq(e, &items[i]);
			len++;
		} else {
			ck_assert_ptr_null(e);
		}
	}
	ck_assert_uint_eq(m->len, len);
	for (uint32_t s = 0; s < m->cap; s++) {
		if (!m->slots[s].hash)
			continue;
		uint32_t home = (uint32_t)m->slots[s].hash & (m->cap - 1);
		for (uint32_t j = home; j != s; j = (j + 1) & (m->cap - 1))
			ck_assert_msg(m->slots[j].hash != 0, "hole in a probe run at %u (home %u, entry at %u)",
				      j, home, s);
	}
}

START_TEST(test_put_get_del_collisions)
{
	/* All eight hash to slot 1 of an 16-slot table: one long run. */
	struct item items[8];
	int in[8] = { 0 };
	struct hmap m = { 0 };

	for (int i = 0; i < 8; i++) {
		items[i].key = (uint64_t)i;
		items[i].hash = ((uint64_t)(i + 1) << 32) | 1;
		hmap_put(&m, items[i].hash, &items[i]);
		in[i] = 1;
	}
	ck_assert_uint_eq(m.cap, 16);
	check_table(&m, items, in, 8);
	/* Delete from the middle of the run, then the head, then the tail. */
	int order[8] = { 3, 0, 7, 5, 1, 6, 2, 4 };
	for (int k = 0; k < 8; k++) {
		int i = order[k];
		ck_assert_ptr_eq(hmap_del(&m, items[i].hash, &items[i].key, item_match), &items[i]);
		ck_assert_ptr_null(hmap_del(&m, items[i].hash, &items[i].key, item_match));
		in[i] = 0;
		if (m.cap)
			check_table(&m, items, in, 8);
	}
	/* The last delete gave the memory back. */
	ck_assert_uint_eq(m.cap, 0);
	ck_assert_ptr_null(m.slots);
}
END_TEST

START_TEST(test_backward_shift_across_the_end)
{
	/* A run that starts in the last slots of the table and wraps to slot 0,
	 * mixed with entries whose home is slot 0: deleting the first of the
	 * run must pull the wrapped ones back, but not an entry already home. */
	struct hmap m = { 0 };
	struct item items[6];
	int in[6];

	for (int i = 0; i < 6; i++) {
		items[i].key = (uint64_t)(100 + i);
		in[i] = 1;
	}
	/* cap grows to 8 for up to 6 entries (load <= 3/4). */
	items[0].hash = (1ull << 40) | 7; /* home 7 */
	items[1].hash = (2ull << 40) | 7; /* home 7 -> 0 */
	items[2].hash = (3ull << 40) | 1; /* home 1 */
	items[3].hash = (4ull << 40) | 7; /* home 7 -> 2 */
	items[4].hash = (5ull << 40) | 3; /* home 3 */
	items[5].hash = (6ull << 40) | 1; /* home 1 -> 4 */
	for (int i = 0; i < 6; i++)
		hmap_put(&m, items[i].hash, &items[i]);
	ck_assert_uint_eq(m.cap, 8);
	check_table(&m, items, in, 6);
	/* Slots 7 and 0 both hold entries whose home is 7 (the run wraps). */
	struct item *at7 = m.slots[7].entry, *at0 = m.slots[0].entry;
	ck_assert_uint_eq(at7->hash & 7, 7);
	ck_assert_uint_eq(at0->hash & 7, 7);

	ck_assert_ptr_eq(hmap_del(&m, at7->hash, &at7->key, item_match), at7);
	in[at7 - items] = 0;
	check_table(&m, items, in, 6);
	ck_assert_ptr_eq(m.slots[7].entry, at0); /* shifted back across the end */
	ck_assert_uint_eq(m.slots[1].hash & 7, 1); /* already home: stays */

	ck_assert_ptr_eq(hmap_del(&m, items[2].hash, &items[2].key, item_match), &items[2]);
	in[2] = 0;
	check_table(&m, items, in, 6);
	hmap_free(&m);
}
END_TEST

START_TEST(test_churn_against_a_model)
{
	/* Random puts and deletes with few distinct low bits (many
	 * collisions), checked against a membership array after each step. */
	enum { N = 512 };
	static struct item items[N];
	static int in[N];
	struct hmap m = { 0 };
	unsigned seed = 12345;

	for (int i = 0; i < N; i++) {
		items[i].key = (uint64_t)i;
		items[i].hash = ((uint64_t)i << 20) | (uint64_t)((i % 13) * 2 + 1);
		in[i] = 0;
	}
	for (int step = 0; step < 6000; step++) {
		int i = (int)(rand_r(&seed) % N);
		if (in[i]) {
			ck_assert_ptr_eq(hmap_del(&m, items[i].hash, &items[i].key, item_match), &items[i]);
			in[i] = 0;
		} else {
			ck_assert_ptr_null(hmap_get(&m, items[i].hash, &items[i].key, item_match));
			hmap_put(&m, items[i].hash, &items[i]);
			in[i] = 1;
		}
		if (step % 301 == 0)
			check_table(&m, items, in, N);
		ck_assert(m.cap == 0 || m.len * 4 <= m.cap * 3);
	}
	check_table(&m, items, in, N);
	hmap_free(&m);
}
END_TEST

START_TEST(test_hashes_are_never_zero)
{
	/* 0 marks an empty slot. */
	ck_assert_uint_ne(hmap_hash_bytes("", 0), 0);
	ck_assert_uint_eq(hmap_hash_bytes("a", 1) & 1, 1);
	ck_assert_uint_eq(hmap_hash_ptr(NULL) & 1, 1);
	ck_assert_uint_ne(hmap_hash_bytes("lobby", 5), hmap_hash_bytes("lobbz", 5));
}
END_TEST

static Suite *hmap_suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_put_get_del_collisions);
	tcase_add_test(tc, test_backward_shift_across_the_end);
	tcase_add_test(tc, test_churn_against_a_model);
	tcase_add_test(tc, test_hashes_are_never_zero);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hmap_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
