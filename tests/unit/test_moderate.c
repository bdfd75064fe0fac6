/*
 * test_moderate.c - storage/moderate.c: tombstones, erase jobs, bans, on a
 * real SQLite file with the real writer thread (like test_store.c), plus
 * the decoding of the moderation commands (protocol/decode.c).
 */
#define _GNU_SOURCE /* pipe2, memmem */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "store.h"
#include "store_int.h"

#define MAXM 256

struct ctx {
	char dir[64], path[128];
	int pipefd[2];
	size_t nm;
	uint64_t cookies[MAXM];
	int status[MAXM];
	size_t nerased, steps;
	int done;
	char erased_rooms[MAXM][16];
	uint64_t erased_seqs[MAXM];
	size_t nbans;
	char ban_user[8][32], ban_reason[8][64];
	int64_t ban_until[8];
};

static struct ctx C;

static void wake_cb(void *opaque)
{
	struct ctx *c = opaque;
	ssize_t n = write(c->pipefd[1], "x", 1);
	(void)n;
}

static void on_mod(void *opaque, uint64_t cookie, int status)
{
	struct ctx *c = opaque;
	ck_assert_uint_lt(c->nm, MAXM);
	c->cookies[c->nm] = cookie;
	c->status[c->nm++] = status;
}

static void on_erased(void *opaque, const struct store_erased *e)
{
	struct ctx *c = opaque;
	c->steps++;
	for (size_t i = 0; i < e->count && c->nerased < MAXM; i++) {
		snprintf(c->erased_rooms[c->nerased], 16, "%s", e->rooms[i]);
		c->erased_seqs[c->nerased++] = e->seqs[i];
	}
	if (e->done)
		c->done++;
}

static void on_page(void *opaque, struct store_page *page)
{
	(void)opaque;
	store_page_free(&page);
}

static const struct store_handlers H = { .page_done = on_page, .mod_done = on_mod,
					  .erased = on_erased };

static void setup(void)
{
	memset(&C, 0, sizeof(C));
	snprintf(C.dir, sizeof(C.dir), "/tmp/parley-mod-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(C.dir));
	snprintf(C.path, sizeof(C.path), "%s/parley.db", C.dir);
	ck_assert_int_eq(pipe2(C.pipefd, O_NONBLOCK | O_CLOEXEC), 0);
}

static void teardown(void)
{
	close(C.pipefd[0]);
	close(C.pipefd[1]);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", C.dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct store *open_ok(unsigned erase_rows)
{
	struct store_config cfg = { .path = C.path, .wake = wake_cb, .wake_opaque = &C,
				    .erase_step_rows = erase_rows };
	struct store *s = NULL;
	char err[256];
	ck_assert_msg(store_open(&cfg, &s, err, sizeof(err)) == 0, "store_open: %s", err);
	return s;
}

static void pump(struct store *s)
{
	struct pollfd p = { .fd = C.pipefd[0], .events = POLLIN };
	char buf[64];
	poll(&p, 1, 50);
	while (read(C.pipefd[0], buf, sizeof(buf)) > 0)
		;
	store_poll(s, &H, &C);
}

#define WAIT_UNTIL(s, cond, timeout_ms) ({                                        \
	int64_t dl_ = store__now_ms(CLOCK_MONOTONIC) + (timeout_ms);              \
	while (!(cond) && store__now_ms(CLOCK_MONOTONIC) < dl_)                   \
		pump(s);                                                          \
	(cond);                                                                   \
})

/* The status reported for cookie, waiting for it; -1 if none came. */
static int wait_status(struct store *s, uint64_t cookie)
{
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < C.nm; i++)
			if (C.cookies[i] == cookie)
				return C.status[i];
		pump(s);
	}
	return -1;
}

static void put(struct store *s, const char *room, const char *from, const char *data)
{
	ck_assert_int_eq(store_append(s, room, store__now_ms(CLOCK_REALTIME), from, data,
				      strlen(data), 0, NULL), 0);
}

/* The file's bytes (db and wal), to look for text that must be gone. */
static int file_has(const char *needle)
{
	const char *suffix[] = { "", "-wal" };
	int found = 0;
	for (int k = 0; k < 2; k++) {
		char p[160];
		snprintf(p, sizeof(p), "%s%s", C.path, suffix[k]);
		FILE *f = fopen(p, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fseek(f, 0, SEEK_SET);
		char *b = malloc((size_t)n + 1);
		ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		found |= memmem(b, (size_t)n, needle, strlen(needle)) != NULL;
		free(b);
	}
	return found;
}

/* ------------------------------------------------------------------ */

START_TEST(delete_statuses)
{
	struct store *s = open_ok(0);
	put(s, "r", "alice", "{\"t\":\"one\"}");
	put(s, "r", "bob", "{\"t\":\"two\"}");
	/* Still queued: the delete follows the message through the queue. */
	ck_assert_int_eq(store_delete(s, "r", 1, "alice", 1), 0);
	ck_assert_int_eq(wait_status(s, 1), STORE_MOD_OK);
	ck_assert_int_eq(store_delete(s, "r", 2, "alice", 2), 0);
	ck_assert_int_eq(wait_status(s, 2), STORE_MOD_NOT_OWNER);
	ck_assert_int_eq(store_delete(s, "r", 1, "alice", 3), 0);   /* a tombstone again: ok */
	ck_assert_int_eq(wait_status(s, 3), STORE_MOD_OK);
	ck_assert_int_eq(store_delete(s, "r", 2, NULL, 4), 0);      /* anyone's */
	ck_assert_int_eq(wait_status(s, 4), STORE_MOD_OK);
	/* Never handed out, unknown room, seq 0: refused at once. */
	ck_assert_int_eq(store_delete(s, "r", 3, NULL, 5), STORE_EINVAL);
	ck_assert_int_eq(store_delete(s, "nope", 1, NULL, 6), STORE_EINVAL);
	ck_assert_int_eq(store_delete(s, "r", 0, NULL, 7), STORE_EINVAL);
	struct store_stats st;
	store_get_stats(s, &st);
	ck_assert_uint_eq(st.deleted, 3);
	store_close(&s, &H, &C);
	ck_assert(!file_has("\"one\"") && !file_has("\"two\""));
	/* Moderation items are not message rows: the shutdown was clean. */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(C.path, &db), SQLITE_OK);
	sqlite3_stmt *q;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'clean'", -1,
					    &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(q, 0), 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
}
END_TEST

START_TEST(delete_reads_as_tombstone_and_pruned_is_not_found)
{
	struct store_config cfg = { .path = C.path, .wake = wake_cb, .wake_opaque = &C,
				    .retain_messages = 1 };
	struct store *s = NULL;
	char err[256];
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), 0);
	put(s, "r", "alice", "1");
	put(s, "r", "alice", "2");
	ck_assert_int_eq(store_delete(s, "r", 2, NULL, 1), 0);
	ck_assert_int_eq(wait_status(s, 1), STORE_MOD_OK);
	/* Retention removes seq 1 within a sweep; a delete of it is then not found. */
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(store_delete(s, "r", 1, NULL, 100 + (uint64_t)i), 0);
		int st = wait_status(s, 100 + (uint64_t)i);
		if (st == STORE_MOD_NOT_FOUND)
			break;
		ck_assert_int_eq(st, STORE_MOD_OK);
		ck_assert_int_lt(i, 99);
		usleep(50000);
	}
	store_close(&s, &H, &C);

	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(C.path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT seq, sender, data FROM messages", -1, &st,
					    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 1), "");
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), "");
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

START_TEST(erase_in_steps_reports_tombstones)
{
	struct store *s = open_ok(3); /* 3 rows per step: several steps */
	for (int i = 0; i < 5; i++) {
		put(s, "a", "eve", "\"eve-secret\"");
		put(s, "b", "bob", "\"bob-keeps\"");
		put(s, "b", "eve", "\"eve-secret\"");
	}
	ck_assert_int_eq(store_erase(s, "eve", 9), 0);
	ck_assert_int_eq(wait_status(s, 9), STORE_MOD_OK);
	ck_assert(WAIT_UNTIL(s, C.done == 1, 10000));
	ck_assert_uint_eq(C.nerased, 10);
	ck_assert_uint_ge(C.steps, 5); /* 15 rows, 3 per step */
	size_t in_a = 0;
	for (size_t i = 0; i < C.nerased; i++)
		in_a += !strcmp(C.erased_rooms[i], "a");
	ck_assert_uint_eq(in_a, 5);
	struct store_stats st;
	store_get_stats(s, &st);
	ck_assert_uint_eq(st.erase_jobs, 0);
	ck_assert_uint_eq(st.erase_erased, 10);
	ck_assert_uint_eq(st.erase_scanned, 15);
	ck_assert_uint_eq(st.erase_done, 1);
	/* The job's checkpoint truncated the WAL: the texts are in no file now. */
	ck_assert(!file_has("eve-secret"));
	store_close(&s, &H, &C);
	ck_assert(!file_has("eve-secret"));
	ck_assert(file_has("bob-keeps"));
}
END_TEST

START_TEST(erase_job_resumes_after_reopen)
{
	struct store *s = open_ok(0);
	for (int i = 0; i < 10; i++)
		put(s, "r", "eve", "\"x\"");
	store_close(&s, &H, &C);
	/* A job left on disk (a process killed mid-job), cursor part-way. */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(C.path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO erase_jobs (user, room_id, seq, started_ms)"
				      " VALUES ('eve', 1, 4, 0)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_ok(0);
	ck_assert(WAIT_UNTIL(s, C.done == 1, 10000));
	ck_assert_uint_eq(C.nerased, 6); /* seqs 5..10: the cursor was at 4 */
	store_close(&s, &H, &C);
	ck_assert_int_eq(sqlite3_open(C.path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "SELECT count(*) FROM erase_jobs", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

static void got_ban(void *opaque, const char *user, int64_t until, const char *reason)
{
	struct ctx *c = opaque;
	ck_assert_uint_lt(c->nbans, 8);
	snprintf(c->ban_user[c->nbans], 32, "%s", user);
	snprintf(c->ban_reason[c->nbans], 64, "%s", reason);
	c->ban_until[c->nbans++] = until;
}

START_TEST(bans_persist_replace_lift_and_expire)
{
	int64_t now = store__now_ms(CLOCK_REALTIME);
	struct store *s = open_ok(0);
	ck_assert_int_eq(store_ban(s, "alice", now + 60000, "spam", 1), 0);
	ck_assert_int_eq(store_ban(s, "alice", now + 120000, "more spam", 2), 0); /* replaces */
	ck_assert_int_eq(store_ban(s, "bob", now + 60000, NULL, 3), 0);
	ck_assert_int_eq(store_ban(s, "carol", now + 500, "short", 4), 0);
	ck_assert_int_eq(store_unban(s, "bob", 5), 0);
	char long_reason[STORE_BAN_REASON_MAX + 2];
	memset(long_reason, 'x', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	ck_assert_int_eq(store_ban(s, "dave", now + 1000, long_reason, 6), STORE_EINVAL);
	for (uint64_t k = 1; k <= 5; k++)
		ck_assert_int_eq(wait_status(s, k), STORE_MOD_OK);
	store_close(&s, &H, &C);
	usleep(600000); /* carol's ban ends */
	s = open_ok(0);
	store_bans_each(s, got_ban, &C);
	ck_assert_uint_eq(C.nbans, 1);
	ck_assert_str_eq(C.ban_user[0], "alice");
	ck_assert_str_eq(C.ban_reason[0], "more spam");
	ck_assert_int_eq(C.ban_until[0], now + 120000);
	store_bans_each(s, got_ban, &C); /* handed over once */
	ck_assert_uint_eq(C.nbans, 1);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(moderation_items_count_against_the_queue)
{
	struct store_config cfg = { .path = C.path, .wake = wake_cb, .wake_opaque = &C,
				    .queue_max = 16 };
	struct store *s = NULL;
	char err[256];
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), 0);
	/* Hold the writer: it cannot take the write lock. */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(C.path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	/* 16 fit; the 17th is refused (overloaded, or failing once the
	 * writer's busy timeout ran out). */
	int rc = 0, i;
	for (i = 0; i < 64 && rc == 0; i++)
		rc = store_ban(s, "u", 1, NULL, 100 + (uint64_t)i);
	ck_assert(rc == STORE_EOVERLOADED || rc == STORE_EFAILING);
	ck_assert_int_le(i, 17);
	ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	store_close(&s, &H, &C);
}
END_TEST

/* ---- decoding ---- */

START_TEST(decode_moderation_commands)
{
	struct proto_cmd c;
	const char *ok_delete = "{\"type\":\"delete\",\"id\":1,\"room\":\"r\",\"seq\":7}";
	ck_assert_int_eq(proto_decode(ok_delete, strlen(ok_delete), &c), PROTO_OK);
	ck_assert_int_eq(c.type, PROTO_DELETE);
	ck_assert_uint_eq(c.seq, 7);
	const char *bad[] = {
		"{\"type\":\"delete\",\"id\":1,\"room\":\"r\"}",
		"{\"type\":\"delete\",\"id\":1,\"room\":\"r\",\"seq\":0}",
		"{\"type\":\"delete\",\"id\":1,\"room\":\"r\",\"seq\":\"7\"}",
		"{\"type\":\"ban\",\"id\":1,\"user\":\"a\"}",
		"{\"type\":\"ban\",\"id\":1,\"user\":\"a\",\"seconds\":315360001}",
		"{\"type\":\"ban\",\"id\":1,\"user\":\"a\",\"seconds\":5,\"reason\":7}",
		"{\"type\":\"ban\",\"id\":1,\"user\":\"a\",\"seconds\":5,\"reason\":\"a\\u0000b\"}",
		"{\"type\":\"erase\",\"id\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(proto_decode(bad[i], strlen(bad[i]), &c) == PROTO_EBAD_REQUEST, "%s", bad[i]);
	const char *badname = "{\"type\":\"erase\",\"id\":1,\"user\":\"\"}";
	ck_assert_int_eq(proto_decode(badname, strlen(badname), &c), PROTO_EBAD_NAME);
	char ban[400];
	snprintf(ban, sizeof(ban), "{\"type\":\"ban\",\"id\":2,\"user\":\"Zoë\",\"seconds\":315360000,"
		 "\"reason\":\"%0120d\"}", 0);
	ck_assert_int_eq(proto_decode(ban, strlen(ban), &c), PROTO_OK);
	ck_assert_int_eq(c.type, PROTO_BAN);
	ck_assert_uint_eq(c.name_len, 4);
	ck_assert_uint_eq(c.reason_len, 120);
	snprintf(ban, sizeof(ban), "{\"type\":\"ban\",\"id\":2,\"user\":\"a\",\"seconds\":5,"
		 "\"reason\":\"%0121d\"}", 0);
	ck_assert_int_eq(proto_decode(ban, strlen(ban), &c), PROTO_EBAD_REQUEST);
	const char *unban = "{\"type\":\"unban\",\"user\":\"bob\"}";
	ck_assert_int_eq(proto_decode(unban, strlen(unban), &c), PROTO_OK);
	ck_assert_int_eq(c.type, PROTO_UNBAN);
	ck_assert(c.reason == NULL);
}
END_TEST

START_TEST(encode_tombstone_and_deleted)
{
	struct pbuf b = { 0 };
	proto_enc_message(&b, "r", 1, 5, 123, "", 0, "", 0);
	pbuf_addc(&b, '\0');
	ck_assert_str_eq(b.data, "{\"type\":\"message\",\"room\":\"r\",\"seq\":5,\"deleted\":true}");
	pbuf_reset(&b);
	proto_enc_deleted(&b, "r", 1, 5);
	pbuf_addc(&b, '\0');
	ck_assert_str_eq(b.data, "{\"type\":\"deleted\",\"room\":\"r\",\"seq\":5}");
	pbuf_free(&b);
}
END_TEST

static Suite *suite(void)
{
	Suite *su = suite_create("moderate");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, delete_statuses);
	tcase_add_test(tc, delete_reads_as_tombstone_and_pruned_is_not_found);
	tcase_add_test(tc, erase_in_steps_reports_tombstones);
	tcase_add_test(tc, erase_job_resumes_after_reopen);
	tcase_add_test(tc, bans_persist_replace_lift_and_expire);
	tcase_add_test(tc, moderation_items_count_against_the_queue);
	suite_add_tcase(su, tc);
	TCase *tp = tcase_create("protocol");
	tcase_add_test(tp, decode_moderation_commands);
	tcase_add_test(tp, encode_tombstone_and_deleted);
	suite_add_tcase(su, tp);
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
