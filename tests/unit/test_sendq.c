/* test_sendq.c - shared frames and the per-connection send queue ring
 * (server/frame.c): framing, reference counts, FIFO order across wrap and
 * growth, live/reply accounting, shrinking when idle. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static struct frame *numbered(unsigned i, size_t pad)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "{\"n\":%u,\"p\":\"", i);
	memset(buf + n, 'x', pad);
	memcpy(buf + n + pad, "\"}", 3);
	return frame_new_text(buf, (size_t)n + pad + 2);
}

static unsigned number_of(const struct frame *f)
{
	size_t len;
	const char *p = frame_payload(f, &len);
	unsigned v = 0;
	ck_assert_int_eq(sscanf(p, "{\"n\":%u", &v), 1);
	return v;
}

START_TEST(test_frame_headers)
{
	size_t lens[] = { 0, 125, 126, 65535, 65536, 70000 };
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		char *payload = malloc(lens[k] + 1);
		memset(payload, 'a', lens[k]);
		struct frame *f = frame_new_text(payload, lens[k]);
		size_t hlen = lens[k] < 126 ? 2 : lens[k] < 65536 ? 4 : 10;
		ck_assert_uint_eq(f->len, hlen + lens[k]);
		ck_assert_uint_eq(f->wire[0], 0x81);
		if (hlen == 2)
			ck_assert_uint_eq(f->wire[1], lens[k]);
		else if (hlen == 4)
			ck_assert_uint_eq(((size_t)f->wire[2] << 8) | f->wire[3], lens[k]);
		else
			ck_assert_uint_eq(((size_t)f->wire[7] << 16) | ((size_t)f->wire[8] << 8) | f->wire[9],
					  lens[k]);
		size_t plen;
		ck_assert_ptr_eq(frame_payload(f, &plen), (const char *)f->wire + hlen);
		ck_assert_uint_eq(plen, lens[k]);
		frame_unref(&f);
		ck_assert_ptr_null(f);
		free(payload);
	}
}
END_TEST

START_TEST(test_fifo_across_wrap_and_growth)
{
	/* Push and drop in uneven steps so head walks around the ring many
	 * times, and the ring grows while head is not at 0 (the copy must
	 * keep the order). Every third entry is a reply: the reply mark
	 * lives in the entry itself and must follow it through wraps,
	 * growth and the shrink of an empty ring. */
	struct sendq q = { 0 };
	unsigned next_in = 0, next_out = 0;
	size_t bytes = 0, rbytes = 0;
	uint32_t rcount = 0;
	unsigned seed = 7;

	for (int round = 0; round < 2000; round++) {
		unsigned push = (unsigned)(rand_r(&seed) % 9), drop = (unsigned)(rand_r(&seed) % 9);
		for (unsigned i = 0; i < push; i++) {
			int reply = next_in % 3 == 0;
			struct frame *f = numbered(next_in++, 3);
			sendq_push(&q, f, reply);
			bytes += f->len;
			if (reply) {
				rcount++;
				rbytes += f->len;
			}
			ck_assert_uint_eq(f->refs, 2); /* ours and the queue's */
			frame_unref(&f);
		}
		ck_assert(q.cap == 0 || (q.cap & (q.cap - 1)) == 0);
		ck_assert_uint_le(q.count, q.cap);
		for (uint32_t i = 0; i < q.count; i++) {
			ck_assert_uint_eq(number_of(sendq_peek(&q, i)), next_out + i);
			ck_assert_int_eq(sendq_is_reply(&q, i), (next_out + i) % 3 == 0);
		}
		if (drop > q.count)
			drop = q.count;
		for (unsigned i = 0; i < drop; i++) {
			bytes -= sendq_peek(&q, i)->len;
			if (sendq_is_reply(&q, i)) {
				rcount--;
				rbytes -= sendq_peek(&q, i)->len;
			}
		}
		sendq_drop(&q, drop);
		next_out += drop;
		ck_assert_uint_eq(q.count, next_in - next_out);
		ck_assert_uint_eq(q.bytes, bytes);
		ck_assert_uint_eq(q.rcount, rcount);
		ck_assert_uint_eq(q.rbytes, rbytes);
	}
	sendq_clear(&q);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_ptr_null(q.ring);
}
END_TEST

START_TEST(test_growth_when_head_is_in_the_middle)
{
	struct sendq q = { 0 };
	for (unsigned i = 0; i < 4; i++) {
		struct frame *f = numbered(i, 0);
		sendq_push(&q, f, 0);
		frame_unref(&f);
	}
	ck_assert_uint_eq(q.cap, 4);
	sendq_drop(&q, 3); /* head at 3 */
	for (unsigned i = 4; i < 9; i++) {
		struct frame *f = numbered(i, 0);
		sendq_push(&q, f, i % 2); /* wraps, then grows to 8 */
		frame_unref(&f);
	}
	ck_assert_uint_eq(q.cap, 8);
	ck_assert_uint_eq(q.count, 6);
	for (uint32_t i = 0; i < q.count; i++) {
		ck_assert_uint_eq(number_of(sendq_peek(&q, i)), 3 + i);
		ck_assert_int_eq(sendq_is_reply(&q, i), (3 + i) % 2 && i > 0);
	}
	sendq_clear(&q);
}
END_TEST

START_TEST(test_live_and_reply_accounting)
{
	struct sendq q = { 0 };
	struct frame *live = numbered(1, 100), *reply = numbered(2, 1000);

	sendq_push(&q, live, 0);
	sendq_push(&q, reply, 1);
	sendq_push(&q, live, 0);
	sendq_push(&q, reply, 1);
	ck_assert_uint_eq(q.count, 4);
	ck_assert_uint_eq(q.rcount, 2);
	ck_assert_uint_eq(sendq_live(&q), 2);
	ck_assert_uint_eq(q.rbytes, 2 * reply->len);
	ck_assert_uint_eq(sendq_live_bytes(&q), 2 * live->len);
	ck_assert_uint_eq(live->refs, 3);
	sendq_drop(&q, 1); /* a live one */
	ck_assert_uint_eq(sendq_live(&q), 1);
	ck_assert_uint_eq(q.rcount, 2);
	sendq_drop(&q, 1); /* a reply */
	ck_assert_uint_eq(q.rcount, 1);
	ck_assert_uint_eq(q.rbytes, reply->len);
	sendq_drop(&q, 5); /* more than there is */
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.rcount, 0);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_uint_eq(q.rbytes, 0);
	ck_assert_uint_eq(live->refs, 1);
	ck_assert_uint_eq(reply->refs, 1);
	frame_unref(&live);
	frame_unref(&reply);
	sendq_clear(&q);
}
END_TEST

START_TEST(test_big_ring_given_back_when_empty)
{
	struct sendq q = { 0 };
	struct frame *f = numbered(0, 0);
	for (int i = 0; i < 100; i++)
		sendq_push(&q, f, 0);
	ck_assert_uint_eq(q.cap, 128);
	sendq_drop(&q, 99);
	ck_assert_uint_eq(q.cap, 128); /* not empty yet */
	sendq_drop(&q, 1);
	ck_assert_uint_eq(q.cap, 0);
	ck_assert_ptr_null(q.ring);
	for (int i = 0; i < 10; i++)
		sendq_push(&q, f, 0);
	sendq_drop(&q, 10);
	ck_assert_uint_eq(q.cap, 16); /* small rings are kept */
	ck_assert_uint_eq(f->refs, 1);
	sendq_clear(&q);
	frame_unref(&f);
}
END_TEST

/* The first SENDQ_INLINE entries live in the struct (no allocation for a
 * connection that mostly has one frame queued): FIFO order and the
 * accounting across a wrap inside them, the move to a ring of its own
 * (with head in the middle), the ring given back, and inline again. */
START_TEST(test_inline_entries_then_a_ring)
{
	struct sendq q = { 0 };
	struct frame *f[8];
	for (unsigned i = 0; i < 8; i++)
		f[i] = numbered(i, i);

	sendq_push(&q, f[0], 0);
	ck_assert_ptr_eq(q.ring, q.inl);
	ck_assert_uint_eq(q.cap, SENDQ_INLINE);
	sendq_push(&q, f[1], 1);
	ck_assert_ptr_eq(q.ring, q.inl);
	sendq_drop(&q, 1);
	/* head is at 1: the next push wraps inside the inline entries */
	sendq_push(&q, f[2], 0);
	ck_assert_ptr_eq(q.ring, q.inl);
	ck_assert_uint_eq(q.count, 2);
	ck_assert_uint_eq(number_of(sendq_peek(&q, 0)), 1);
	ck_assert_int_eq(sendq_is_reply(&q, 0), 1);
	ck_assert_uint_eq(number_of(sendq_peek(&q, 1)), 2);
	/* one more: a ring of its own, the order kept */
	sendq_push(&q, f[3], 1);
	ck_assert_ptr_ne(q.ring, q.inl);
	ck_assert_uint_eq(q.cap, 2 * SENDQ_INLINE);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_uint_eq(number_of(sendq_peek(&q, i)), i + 1);
	ck_assert_int_eq(sendq_is_reply(&q, 2), 1);
	ck_assert_uint_eq(q.rcount, 2);
	ck_assert_uint_eq(q.rbytes, f[1]->len + f[3]->len);
	ck_assert_uint_eq(q.bytes, f[1]->len + f[2]->len + f[3]->len);
	/* clearing a queue on its own ring, then inline again */
	sendq_clear(&q);
	ck_assert_ptr_null(q.ring);
	ck_assert_uint_eq(q.count + q.rcount + q.bytes + q.rbytes, 0);
	sendq_push(&q, f[4], 0);
	ck_assert_ptr_eq(q.ring, q.inl);
	/* clearing an inline queue frees nothing (ASan: no bad free) */
	sendq_clear(&q);
	ck_assert_ptr_null(q.ring);
	ck_assert_uint_eq(q.cap, 0);
	for (unsigned i = 0; i < 8; i++) {
		ck_assert_uint_eq(f[i]->refs, 1); /* every queue reference dropped */
		frame_unref(&f[i]);
	}
}
END_TEST

static Suite *sendq_suite(void)
{
	Suite *s = suite_create("sendq");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_frame_headers);
	tcase_add_test(tc, test_fifo_across_wrap_and_growth);
	tcase_add_test(tc, test_growth_when_head_is_in_the_middle);
	tcase_add_test(tc, test_live_and_reply_accounting);
	tcase_add_test(tc, test_big_ring_given_back_when_empty);
	tcase_add_test(tc, test_inline_entries_then_a_ring);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sendq_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
