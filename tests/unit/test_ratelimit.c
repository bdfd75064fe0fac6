/* test_ratelimit.c - the token bucket (server/ratelimit.h): full at first,
 * burst then refusal, refill by elapsed time, cap at the burst, fractional
 * per-minute rates, and the 32-bit millisecond clock wrapping. */
#include <check.h>
#include <stdlib.h>

#include "ratelimit.h"

static int take_n(struct bucket *b, float rate, float burst, uint32_t now, int n)
{
	int got = 0;
	for (int i = 0; i < n; i++)
		got += bucket_take(b, rate, burst, now);
	return got;
}

START_TEST(test_starts_full_and_refuses_past_the_burst)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(take_n(&b, 20, 40, 1000, 40), 40);
	ck_assert_int_eq(bucket_take(&b, 20, 40, 1000), 0);
	ck_assert_int_eq(bucket_take(&b, 20, 40, 1000), 0);
}
END_TEST

START_TEST(test_refills_with_time_and_caps_at_burst)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(take_n(&b, 20, 40, 0, 40), 40);
	/* 20 per second: one token per 50 ms. */
	ck_assert_int_eq(bucket_take(&b, 20, 40, 49), 0);
	ck_assert_int_eq(bucket_take(&b, 20, 40, 60), 1);  /* 1.2 tokens */
	ck_assert_int_eq(bucket_take(&b, 20, 40, 60), 0);  /* 0.2 left */
	ck_assert_int_eq(take_n(&b, 20, 40, 560, 100), 10); /* 0.2 + 10 */
	/* A long pause refills to the burst, not beyond. */
	ck_assert_int_eq(take_n(&b, 20, 40, 3600550, 100), 40);
}
END_TEST

START_TEST(test_per_minute_rate)
{
	/* rate_names: 10 per minute, burst 10. */
	struct bucket b = { 0 };
	float rate = 10.0f / 60.0f;
	ck_assert_int_eq(take_n(&b, rate, 10, 0, 20), 10);
	ck_assert_int_eq(bucket_take(&b, rate, 10, 5999), 0);
	ck_assert_int_eq(bucket_take(&b, rate, 10, 6001), 1);
	ck_assert_int_eq(bucket_take(&b, rate, 10, 6001), 0);
}
END_TEST

START_TEST(test_clock_wraps)
{
	struct bucket b = { 0 };
	uint32_t t = UINT32_MAX - 20;
	ck_assert_int_eq(take_n(&b, 100, 5, t, 10), 5);
	/* 30 ms later, across the wrap: 3 tokens at 100/s. */
	ck_assert_int_eq(take_n(&b, 100, 5, t + 30, 10), 3);
}
END_TEST

START_TEST(test_burst_below_one_never_gives)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(take_n(&b, 1000, 0.5f, 0, 3), 0);
	ck_assert_int_eq(take_n(&b, 1000, 0.5f, 100000, 3), 0);
}
END_TEST

static Suite *bucket_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_starts_full_and_refuses_past_the_burst);
	tcase_add_test(tc, test_refills_with_time_and_caps_at_burst);
	tcase_add_test(tc, test_per_minute_rate);
	tcase_add_test(tc, test_clock_wraps);
	tcase_add_test(tc, test_burst_below_one_never_gives);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bucket_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
