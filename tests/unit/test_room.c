/* test_room.c - the loop's room code without sockets (server/room.c,
 * server/presence.c): the history cache's global byte budget, freeing a
 * room whose members all left in one presence window, and the shared
 * encoder's no-nesting rule (server.h). Connections are bare structs: the
 * code under test never writes to a socket here. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "config.h"
#include "conn.h"
#include "frame.h"
#include "room.h"
#include "server.h"

static struct config cfg;
static struct server srv;

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&srv, 0, sizeof(srv));
	cfg.history_cache = 256;
	cfg.history_cache_bytes = 1u << 20;
	cfg.presence_window_ms = 100;
	srv.cfg = &cfg;
	srv.loop = ev_default_loop(0);
}

static struct conn *fake_conn(const char *name)
{
	struct conn *c = calloc(1, sizeof(*c));
	c->srv = &srv;
	c->name = strdup(name);
	c->name_len = (uint32_t)strlen(name);
	return c;
}

static void fake_conn_free(struct conn *c)
{
	free(c->name);
	free(c);
}

static struct frame *text_frame(size_t len)
{
	char *p = malloc(len);
	memset(p, 'x', len);
	struct frame *f = frame_new_text(p, len);
	free(p);
	return f;
}

/* Publishes n frames of len bytes into r's cache, seqs from *seq on. */
static void fill(struct room *r, uint64_t *seq, int n, size_t len)
{
	for (int i = 0; i < n; i++) {
		struct frame *f = text_frame(len);
		f->seq = ++*seq;
		room_cache_add(r, f->seq, f, cfg.history_cache);
		frame_unref(&f);
	}
}

START_TEST(budget_evicts_least_recently_used_room_first)
{
	struct conn *ca = fake_conn("a"), *cb = fake_conn("b"), *cc = fake_conn("c");
	struct member *ma = room_join(&srv, ca, "ra", 2, false);
	struct member *mb = room_join(&srv, cb, "rb", 2, false);
	struct member *mc = room_join(&srv, cc, "rc", 2, false);
	struct room *a = ma->room, *b = mb->room, *c = mc->room;
	uint64_t sa = 0, sb = 0, sc = 0;

	fill(a, &sa, 10, 40000);        /* ~400 KB each */
	fill(b, &sb, 10, 40000);
	ck_assert_uint_le(srv.cache_bytes, cfg.history_cache_bytes);
	ck_assert_uint_eq(srv.stats.cache_evictions, 0);
	/* a is read (a history page): b is now the least recently used */
	ck_assert(room_cache_covers(a, 1, 10));
	fill(c, &sc, 10, 40000);        /* 1.2 MB in all: one room must go */
	ck_assert_uint_le(srv.cache_bytes, cfg.history_cache_bytes);
	ck_assert_uint_eq(srv.stats.cache_evictions, 1);
	ck_assert_uint_eq(b->tail_count, 0);
	ck_assert(room_cache_covers(a, 1, 10));
	ck_assert(room_cache_covers(c, 1, 10));
	ck_assert_ptr_null(room_cache_get(b, 5));
	/* b caches again from its next message on */
	fill(b, &sb, 1, 100);
	ck_assert(room_cache_covers(b, 11, 11));
	ck_assert_uint_le(srv.cache_bytes, cfg.history_cache_bytes);

	room_leave(ma);
	room_leave(mb);
	room_leave(mc);
	ck_assert_uint_eq(srv.cache_bytes, 0);  /* the accounting is exact */
	ck_assert_ptr_null(srv.cache_lru);
	ck_assert_ptr_null(srv.cache_lru_tail);
	fake_conn_free(ca);
	fake_conn_free(cb);
	fake_conn_free(cc);
}
END_TEST

START_TEST(one_room_over_the_budget_keeps_its_newest_frames)
{
	struct conn *ca = fake_conn("a");
	struct member *m = room_join(&srv, ca, "big", 3, false);
	struct room *r = m->room;
	uint64_t seq = 0;

	cfg.history_cache_bytes = 100000;
	fill(r, &seq, 20, 40000);
	ck_assert_uint_le(srv.cache_bytes, cfg.history_cache_bytes);
	ck_assert_uint_eq(r->tail_count, 2);
	ck_assert(room_cache_covers(r, 19, 20));
	ck_assert(!room_cache_covers(r, 18, 20));
	/* one frame larger than the whole budget is not cached at all */
	fill(r, &seq, 1, 200000);
	ck_assert_uint_eq(srv.cache_bytes, 0);
	ck_assert(!room_cache_covers(r, 21, 21));
	room_leave(m);
	ck_assert_uint_eq(srv.cache_bytes, 0);
	fake_conn_free(ca);
}
END_TEST

/* At the budget exactly: everything stays; one byte less: the least
 * recently used room goes. */
START_TEST(budget_boundary_is_inclusive)
{
	struct conn *ca = fake_conn("a"), *cb = fake_conn("b");
	struct member *ma = room_join(&srv, ca, "ra", 2, false);
	struct member *mb = room_join(&srv, cb, "rb", 2, false);
	uint64_t sa = 0, sb = 0;

	cfg.history_cache_bytes = UINT32_MAX;
	fill(ma->room, &sa, 3, 1000);
	fill(mb->room, &sb, 3, 1000);
	uint64_t need = srv.cache_bytes;
	room_leave(ma);
	room_leave(mb);
	ck_assert_uint_eq(srv.cache_bytes, 0);

	for (int less = 0; less <= 1; less++) {
		cfg.history_cache_bytes = (uint32_t)(need - (uint64_t)less);
		srv.stats.cache_evictions = 0;
		ma = room_join(&srv, ca, "ra", 2, false);
		mb = room_join(&srv, cb, "rb", 2, false);
		sa = sb = 0;
		fill(ma->room, &sa, 3, 1000);
		fill(mb->room, &sb, 3, 1000);
		ck_assert_uint_le(srv.cache_bytes, cfg.history_cache_bytes);
		ck_assert_uint_eq(srv.stats.cache_evictions, (uint64_t)less);
		ck_assert_uint_eq(ma->room->tail_count, less ? 0 : 3);
		ck_assert_uint_eq(mb->room->tail_count, 3);
		room_leave(ma);
		room_leave(mb);
	}
	fake_conn_free(ca);
	fake_conn_free(cb);
}
END_TEST

START_TEST(budget_zero_caches_nothing)
{
	struct conn *ca = fake_conn("a");
	struct member *m = room_join(&srv, ca, "r", 1, false);
	uint64_t seq = 0;

	cfg.history_cache_bytes = 0;
	fill(m->room, &seq, 3, 10);
	ck_assert_uint_eq(srv.cache_bytes, 0);
	ck_assert(!room_cache_covers(m->room, 3, 3));
	room_leave(m);
	fake_conn_free(ca);
}
END_TEST

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Mass leave: 50,000 users leave one room inside one presence window, so
 * the last leave frees a presence table still holding all 50,000 entries.
 * The old loop rescanned the table from slot 0 for every entry (about 3e9
 * slot visits here, seconds); one pass takes milliseconds.
 */
START_TEST(room_of_50000_users_freed_in_one_pass)
{
	enum { N = 50000 };
	static struct conn *conns[N];
	static struct member *members[N];
	char name[32];

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user-%d", i);
		conns[i] = fake_conn(name);
		members[i] = room_join(&srv, conns[i], "crowd", 5, false);
	}
	ck_assert_uint_eq(members[0]->room->nusers, N);
	double t0 = now_s();
	for (int i = 0; i < N; i++)
		room_leave(members[i]);
	double took = now_s() - t0;
	ck_assert_ptr_null(room_find(&srv, "crowd", 5));
	ck_assert_msg(took < 1.0, "50,000 leaves took %.2f s", took);
	for (int i = 0; i < N; i++)
		fake_conn_free(conns[i]);
}
END_TEST

/*
 * The fan-out reads each member's connection from the room's own array
 * (room.mconn), with bit 0 marking a member that holds frames behind a
 * catch-up: every member but the sender gets the frame, a holding member
 * in its hold, and the array follows a leave's swap and a hold let go.
 * More members than the fan-out prefetches ahead.
 */
START_TEST(fanout_follows_the_members_array)
{
	enum { N = 20 };
	struct conn *conns[N];
	struct member *members[N];
	char name[32];

	cfg.send_queue_messages = 100;
	cfg.send_queue_bytes = 1u << 20;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user-%d", i);
		conns[i] = fake_conn(name);
		conns[i]->fd = -1;
		members[i] = room_join(&srv, conns[i], "r", 1, false);
	}
	struct room *r = members[0]->room;
	members[3]->hold = calloc(1, sizeof(*members[3]->hold));
	room_slot(members[3]);

	struct frame *f = text_frame(10);
	room_fanout(r, f, conns[5]);
	for (int i = 0; i < N; i++) {
		uint32_t want = i == 5 || i == 3 ? 0 : 1;
		ck_assert_msg(conns[i]->q.count == want, "member %d has %u queued", i,
			      conns[i]->q.count);
		if (want)
			ck_assert_ptr_eq(sendq_peek(&conns[i]->q, 0), f);
	}
	ck_assert_uint_eq(members[3]->hold->count, 1);
	ck_assert_uint_eq(conns[3]->held_msgs, 1);
	ck_assert_uint_eq(srv.stats.delivered, N - 1);

	/* the last member moves into the leaver's slot */
	room_leave(members[0]);
	room_fanout(r, f, NULL);
	ck_assert_uint_eq(conns[0]->q.count, 1);
	ck_assert_uint_eq(conns[N - 1]->q.count, 2);
	ck_assert_uint_eq(members[3]->hold->count, 2);

	/* the hold let go: its frames, then the next fan-out, go to the queue */
	member_release_hold(members[3], 0);
	ck_assert_ptr_null(members[3]->hold);
	ck_assert_uint_eq(conns[3]->q.count, 2);
	ck_assert_uint_eq(conns[3]->held_msgs, 0);
	room_fanout(r, f, NULL);
	ck_assert_uint_eq(conns[3]->q.count, 3);
	ck_assert_uint_eq(conns[N - 1]->q.count, 3);

	for (int i = 1; i < N; i++)
		room_leave(members[i]);
	ck_assert_ptr_null(room_find(&srv, "r", 1));
	for (int i = 0; i < N; i++) {
		sendq_clear(&conns[i]->q);
		free(conns[i]->rooms.slots);
		fake_conn_free(conns[i]);
	}
	ck_assert_uint_eq(f->refs, 1);
	frame_unref(&f);
}
END_TEST

/* Names are compared from the room's first line up to ROOM_HEAD bytes
 * and from the name itself after that: names that differ only past the
 * head, only in its last byte, or in length are different rooms. */
START_TEST(room_names_around_the_head)
{
	static const char *names[] = {
		"abcdefghijklmno",                   /* 15 */
		"abcdefghijklmnop",                  /* 16 = ROOM_HEAD */
		"abcdefghijklmnoq",                  /* 16, the last head byte differs */
		"abcdefghijklmnopq",                 /* 17 */
		"abcdefghijklmnopr",                 /* 17, only past the head */
		"abcdefghijklmnop-and-a-long-tail-x",
		"abcdefghijklmnop-and-a-long-tail-y",
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	struct conn *c = fake_conn("u");
	struct member *m[N];

	for (int i = 0; i < N; i++)
		m[i] = room_join(&srv, c, names[i], strlen(names[i]), false);
	for (int i = 0; i < N; i++) {
		struct room *r = room_find(&srv, names[i], strlen(names[i]));
		ck_assert_ptr_eq(r, m[i]->room);
		ck_assert_str_eq(r->name, names[i]);
		/* the member found for each room (room_member keeps its last
		 * answer: it must not hand it out for another room) */
		ck_assert_ptr_eq(room_member(c, r), m[i]);
		ck_assert_ptr_eq(room_member(c, m[(i + 1) % N]->room), m[(i + 1) % N]);
	}
	ck_assert_ptr_null(room_find(&srv, "abcdefghijklmnopqr", 18));
	ck_assert_ptr_null(room_find(&srv, "abcdefghijklmn", 14));
	/* A member that left is not found again: its room is freed, and a
	 * new room (at that address, if malloc hands it out again) has no
	 * member of c's, whatever c's last answer was. */
	struct room *r1 = m[1]->room;
	ck_assert_ptr_eq(room_member(c, r1), m[1]);
	room_leave(m[1]);
	ck_assert_ptr_null(c->last_member);
	struct conn *d = fake_conn("v");
	struct member *dm = room_join(&srv, d, "fresh", 5, false);
	ck_assert_ptr_null(room_member(c, dm->room));
	room_leave(dm);
	free(d->rooms.slots);
	fake_conn_free(d);
	for (int i = 0; i < N; i++)
		if (i != 1)
			room_leave(m[i]);
	ck_assert_ptr_null(c->last_member);
	ck_assert_uint_eq(c->rooms.len, 0);
	free(c->rooms.slots);
	fake_conn_free(c);
}
END_TEST

START_TEST(encoder_sequential_use_is_fine)
{
	struct pbuf *b = server_enc_begin(&srv);
	pbuf_adds(b, "one");
	server_enc_end(&srv);
	b = server_enc_begin(&srv);
	ck_assert_uint_eq(b->len, 0);   /* reset by begin */
	server_enc_end(&srv);
	pbuf_free(&srv.enc);
}
END_TEST

/* Nesting aborts (SIGABRT) instead of corrupting the outer frame. */
START_TEST(encoder_nested_use_aborts)
{
	server_enc_begin(&srv);
	server_enc_begin(&srv);
}
END_TEST

static Suite *room_suite(void)
{
	Suite *s = suite_create("room");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, budget_evicts_least_recently_used_room_first);
	tcase_add_test(tc, one_room_over_the_budget_keeps_its_newest_frames);
	tcase_add_test(tc, budget_boundary_is_inclusive);
	tcase_add_test(tc, budget_zero_caches_nothing);
	tcase_add_test(tc, room_of_50000_users_freed_in_one_pass);
	tcase_add_test(tc, fanout_follows_the_members_array);
	tcase_add_test(tc, room_names_around_the_head);
	tcase_add_test(tc, encoder_sequential_use_is_fine);
	tcase_add_test_raise_signal(tc, encoder_nested_use_aborts, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(room_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
