/* test_presence.c - presence batching (server/presence.c) with real rooms
 * and connections but no sockets: frames land in each connection's send
 * queue. Every change within a test step happens without running the loop,
 * so "within one window" is exact, not a matter of timing; the loop then
 * runs until the room's window closes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "frame.h"
#include "room.h"
#include "server.h"

static struct server srv;
static struct config cfg;

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	config_defaults(&cfg);
	cfg.presence_window_ms = 5;
	srv.cfg = &cfg;
	srv.loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(srv.loop);
}

static void teardown(void)
{
	hmap_free(&srv.rooms);
	pbuf_free(&srv.enc);
	ev_loop_destroy(srv.loop);
	config_free(&cfg);
}

static struct conn *new_conn(const char *name)
{
	struct conn *c = calloc(1, sizeof(*c));
	c->srv = &srv;
	conn_set_name(c, name, strlen(name));
	return c;
}

static void free_conn(struct conn *c)
{
	conn_leave_all(c);
	sendq_clear(&c->q);
	free(c->name);
	free(c);
}

static struct member *join(struct conn *c, const char *room, bool presence)
{
	return room_join(&srv, c, room, strlen(room), presence);
}

/* Runs the loop until room's presence window has closed. */
static void close_window(const char *room)
{
	struct room *r = room_find(&srv, room, strlen(room));
	for (int i = 0; r && r->nbatch && i < 10000; i++)
		ev_run(srv.loop, EVRUN_ONCE);
	ck_assert(!r || r->nbatch == 0);
}

/* Asserts c's queue holds exactly the frames given (NULL-terminated), and
 * empties it. */
static void expect_frames(struct conn *c, const char *const *want)
{
	uint32_t n = 0;
	while (want[n])
		n++;
	ck_assert_uint_eq(c->q.count, n);
	for (uint32_t i = 0; i < n; i++) {
		size_t len;
		const char *p = frame_payload(sendq_peek(&c->q, i), &len);
		ck_assert_msg(len == strlen(want[i]) && !memcmp(p, want[i], len),
			      "frame %u is %.*s, want %s", i, (int)len, p, want[i]);
		ck_assert_int_eq(sendq_is_reply(&c->q, i), 0); /* live: counts toward 4008 */
	}
	sendq_drop(&c->q, c->q.count);
}

static const char *const none[] = { NULL };

START_TEST(test_own_join_is_seen)
{
	struct conn *a = new_conn("alice");
	join(a, "r", true);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"alice\"],\"left\":[]}", NULL });
	free_conn(a);
}
END_TEST

START_TEST(test_changes_in_one_window_make_one_frame)
{
	struct conn *a = new_conn("alice"), *u[4];
	const char *names[4] = { "u1", "u2", "u3", "u4" };
	join(a, "r", true);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"alice\"],\"left\":[]}", NULL });
	for (int i = 0; i < 4; i++) {
		u[i] = new_conn(names[i]);
		join(u[i], "r", false);
	}
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"u1\",\"u2\",\"u3\",\"u4\"],\"left\":[]}", NULL });
	/* Members without presence get nothing. */
	for (int i = 0; i < 4; i++)
		expect_frames(u[i], none);
	/* Two leave in the next window: one frame. */
	conn_leave_all(u[1]);
	conn_leave_all(u[3]);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[],\"left\":[\"u2\",\"u4\"]}", NULL });
	for (int i = 0; i < 4; i++)
		free_conn(u[i]);
	free_conn(a);
}
END_TEST

START_TEST(test_join_and_leave_within_a_window_is_invisible)
{
	struct conn *a = new_conn("alice"), *b = new_conn("bob");
	join(a, "r", true);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"alice\"],\"left\":[]}", NULL });
	struct member *m = join(b, "r", true);
	room_leave(m);
	close_window("r");
	expect_frames(a, none); /* nothing remained: no frame at all */
	/* Leave and come back within a window: neither. */
	m = join(b, "r", false);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"bob\"],\"left\":[]}", NULL });
	room_leave(m);
	join(b, "r", false);
	close_window("r");
	expect_frames(a, none);
	free_conn(b);
	free_conn(a);
}
END_TEST

START_TEST(test_user_with_two_connections_is_one_member)
{
	struct conn *a = new_conn("alice"), *c1 = new_conn("carol"), *c2 = new_conn("carol");
	join(a, "r", true);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"alice\"],\"left\":[]}", NULL });
	join(c1, "r", false);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"carol\"],\"left\":[]}", NULL });
	join(c2, "r", false);
	close_window("r");
	expect_frames(a, none); /* second connection: not a new member */
	conn_leave_all(c1);
	close_window("r");
	expect_frames(a, none); /* carol still has one */
	conn_leave_all(c2);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[],\"left\":[\"carol\"]}", NULL });
	free_conn(c1);
	free_conn(c2);
	free_conn(a);
}
END_TEST

START_TEST(test_presence_off_and_on)
{
	struct conn *a = new_conn("alice"), *b = new_conn("bob");
	struct member *ma = join(a, "r", true);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[\"alice\"],\"left\":[]}", NULL });
	room_set_presence(ma, false);
	struct member *mb = join(b, "r", false);
	close_window("r");
	expect_frames(a, none);
	room_set_presence(ma, true);
	room_leave(mb);
	close_window("r");
	expect_frames(a, (const char *const[]){ "{\"type\":\"presence\",\"room\":\"r\",\"joined\":[],\"left\":[\"bob\"]}", NULL });
	free_conn(b);
	free_conn(a);
}
END_TEST

static Suite *presence_suite(void)
{
	Suite *s = suite_create("presence");
	TCase *tc = tcase_create("batching");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_own_join_is_seen);
	tcase_add_test(tc, test_changes_in_one_window_make_one_frame);
	tcase_add_test(tc, test_join_and_leave_within_a_window_is_invisible);
	tcase_add_test(tc, test_user_with_two_connections_is_one_member);
	tcase_add_test(tc, test_presence_off_and_on);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(presence_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
