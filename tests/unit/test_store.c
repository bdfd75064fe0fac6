/*
 * test_store.c - storage module: a real SQLite file in a mkdtemp directory,
 * the real writer and reader threads. Completions are awaited by polling
 * store_poll() after the wake callback signals a pipe, in loops bounded by
 * time. Check's fork mode stays on: one process per test.
 */
#define _GNU_SOURCE /* pipe2 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h" /* store__debug_fail_writes, STORE__SCHEMA_VERSION */

/* ------------------------------------------------------------------ */
/* Fixture: a temporary directory, a wake pipe, recording handlers.    */

#define MAXT 4096
#define MAXP 64

struct ctx {
	char dir[64], path[128];
	int pipefd[2];
	unsigned wakes;               /* written by store threads: atomics */
	size_t nt;
	uint64_t tickets[MAXT];
	int oks[MAXT];
	size_t np;
	struct store_page *pages[MAXP];
};

static struct ctx C;

static void wake_cb(void *opaque)
{
	struct ctx *c = opaque;
	__atomic_fetch_add(&c->wakes, 1, __ATOMIC_RELAXED);
	ssize_t n = write(c->pipefd[1], "x", 1); /* full pipe: already awake */
	(void)n;
}

static void on_durable(void *opaque, uint64_t ticket, int ok)
{
	struct ctx *c = opaque;
	ck_assert_uint_lt(c->nt, MAXT);
	c->tickets[c->nt] = ticket;
	c->oks[c->nt++] = ok;
}

static void on_page(void *opaque, struct store_page *page)
{
	struct ctx *c = opaque;
	ck_assert_uint_lt(c->np, MAXP);
	c->pages[c->np++] = page;
}

static const struct store_handlers H = { .durable_done = on_durable, .page_done = on_page };

static void setup(void)
{
	memset(&C, 0, sizeof(C));
	snprintf(C.dir, sizeof(C.dir), "/tmp/parley-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(C.dir));
	snprintf(C.path, sizeof(C.path), "%s/parley.db", C.dir);
	ck_assert_int_eq(pipe2(C.pipefd, O_NONBLOCK | O_CLOEXEC), 0);
}

static void teardown(void)
{
	for (size_t i = 0; i < C.np; i++)
		store_page_free(&C.pages[i]);
	close(C.pipefd[0]);
	close(C.pipefd[1]);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", C.dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct store_config cfg_default(void)
{
	struct store_config cfg = { .path = C.path, .wake = wake_cb, .wake_opaque = &C };
	return cfg;
}

static struct store *open_ok(const struct store_config *cfg)
{
	struct store *s = NULL;
	char err[256];
	int rc = store_open(cfg, &s, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_open: %s", err);
	ck_assert_ptr_nonnull(s);
	return s;
}

static int64_t now_ms(void)
{
	return store__now_ms(CLOCK_MONOTONIC);
}

/* Waits for a wake (at most 50 ms), then polls the store once. */
static void pump(struct store *s)
{
	struct pollfd p = { .fd = C.pipefd[0], .events = POLLIN };
	char buf[64];
	poll(&p, 1, 50);
	while (read(C.pipefd[0], buf, sizeof(buf)) > 0)
		;
	store_poll(s, &H, &C);
}

/* Pumps until cond holds or timeout_ms passes; returns cond. */
#define WAIT_UNTIL(s, cond, timeout_ms) ({                              \
	int64_t dl_ = now_ms() + (timeout_ms);                          \
	while (!(cond) && now_ms() < dl_)                               \
		pump(s);                                                \
	(cond);                                                         \
})

static struct store_stats stats(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st;
}

static int append(struct store *s, const char *room, int64_t ts, const char *data,
		  uint64_t ticket, uint64_t *seq)
{
	return store_append(s, room, ts, "alice", data, strlen(data), ticket, seq);
}

static int64_t wall_ms(void)
{
	return store__now_ms(CLOCK_REALTIME);
}

/* Appends n messages "1" to room, stamped now, without tickets; each must be accepted. */
static void append_n(struct store *s, const char *room, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = append(s, room, wall_ms(), "1", 0, NULL);
		ck_assert_msg(rc == 0, "append %d of %d to %s: %d", i + 1, n, room, rc);
	}
}

/* A second connection on the same file, as a test would open it. */
static sqlite3 *db_open(void)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(C.path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s",
		      sql, sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t file_int(const char *sql)
{
	sqlite3 *db = db_open();
	int64_t v = db_int(db, sql);
	sqlite3_close(db);
	return v;
}

/* Takes the database's write lock from another connection: the store's
 * writer then blocks in its busy handler and, after a second, fails. */
static sqlite3 *lock_db(void)
{
	sqlite3 *db = db_open();
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void unlock_db(sqlite3 *db)
{
	ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Reads synchronously: submits, then pumps until the page arrives. */
static struct store_page *read_page(struct store *s, const char *room, uint64_t before,
				    uint64_t after, unsigned limit)
{
	static uint64_t cookie = 1000;
	size_t np = C.np;
	ck_assert_int_eq(store_read(s, room, before, after, limit, ++cookie), 0);
	ck_assert(WAIT_UNTIL(s, C.np > np, 15000));
	struct store_page *pg = C.pages[C.np - 1];
	ck_assert_uint_eq(pg->cookie, cookie);
	return pg;
}

static void assert_seqs(const struct store_page *pg, uint64_t first, uint64_t last, int more)
{
	ck_assert_int_eq(pg->ok, 1);
	ck_assert_uint_eq(pg->count, last >= first ? last - first + 1 : 0);
	for (size_t i = 0; i < pg->count; i++)
		ck_assert_uint_eq(pg->msgs[i].seq, first + i);
	ck_assert_int_eq(pg->more, more);
}

/* ------------------------------------------------------------------ */
/* Open, schema, seq                                                   */

START_TEST(open_creates_and_reopens)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	store_close(&s, &H, &C);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(file_int("PRAGMA user_version"), STORE__SCHEMA_VERSION);
	ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name IN ('rooms','messages')"), 2);
	ck_assert_int_eq(file_int("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode='wal'"), 1);
	s = open_ok(&cfg); /* an existing database opens as is */
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("PRAGMA user_version"), STORE__SCHEMA_VERSION);
}
END_TEST

START_TEST(open_migrates_empty_v0_file)
{
	/* An existing SQLite file at version 0 (no tables) is migrated. */
	sqlite3 *db = db_open();
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE unrelated(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("PRAGMA user_version"), STORE__SCHEMA_VERSION);
	ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name='unrelated'"), 1);
}
END_TEST

START_TEST(open_migrates_v1_file_and_skips_its_seqs)
{
	/* A version-1 file (no record of a clean shutdown) keeps its rows and
	 * gains the key column; its seqs skip ahead once, to be safe. */
	sqlite3 *db = db_open();
	ck_assert_int_eq(sqlite3_exec(db,
		"CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
		" last_seq INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE messages (room_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
		" ts INTEGER NOT NULL, sender TEXT NOT NULL, data TEXT NOT NULL,"
		" PRIMARY KEY (room_id, seq)) WITHOUT ROWID;"
		"INSERT INTO rooms (id, name, last_seq) VALUES (1, 'old', 0);"
		"INSERT INTO messages VALUES (1, 1, 0, 'a', '1'), (1, 2, 0, 'a', '2');"
		"PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	ck_assert_uint_eq(store_last_seq(s, "old"), 2 + 65536);
	uint64_t seq;
	int dup;
	ck_assert_int_eq(store_append_key(s, "old", wall_ms(), "a", "3", 1, "k", 1, 0, &seq, &dup), 0);
	ck_assert_uint_eq(seq, 2 + 65536 + 1);
	assert_seqs(read_page(s, "old", 3, 0, 10), 1, 2, 0);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("PRAGMA user_version"), STORE__SCHEMA_VERSION);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages WHERE key = CAST('k' AS BLOB)"), 1);
	/* and the next (clean) start skips nothing */
	s = open_ok(&cfg);
	ck_assert_uint_eq(store_last_seq(s, "old"), 2 + 65536 + 1);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(open_refuses_newer_schema)
{
	sqlite3 *db = db_open();
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store_config cfg = cfg_default();
	struct store *s = (struct store *)1;
	char err[256] = "";
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), -1);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err, "newer") && strstr(err, C.path), "err: %s", err);
}
END_TEST

START_TEST(open_fails_with_message)
{
	struct store_config cfg = cfg_default();
	struct store *s;
	char err[256] = "", path[200];

	/* Missing directory. */
	snprintf(path, sizeof(path), "%s/no/such/dir/parley.db", C.dir);
	cfg.path = path;
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "cannot open") && strstr(err, path), "err: %s", err);

	/* Not a database. */
	snprintf(path, sizeof(path), "%s/garbage.db", C.dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not an sqlite database ", f);
	fclose(f);
	err[0] = '\0';
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, path) != NULL, "err: %s", err);

	/* A directory where the file should be. */
	cfg.path = C.dir;
	err[0] = '\0';
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no message");

	/* No path. */
	cfg.path = NULL;
	ck_assert_int_eq(store_open(&cfg, &s, err, sizeof(err)), -1);
}
END_TEST

START_TEST(seq_continues_across_reopen)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	uint64_t seq = 0;
	ck_assert_uint_eq(store_last_seq(s, "a"), 0);
	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(append(s, "a", wall_ms(), "1", 0, &seq), 0);
		ck_assert_uint_eq(seq, (uint64_t)i);
	}
	ck_assert_int_eq(append(s, "b", wall_ms(), "2", 0, &seq), 0);
	ck_assert_uint_eq(seq, 1);
	ck_assert_uint_eq(store_last_seq(s, "a"), 3);
	ck_assert_uint_eq(store_last_seq(s, "b"), 1);
	ck_assert_uint_eq(store_last_seq(s, "nope"), 0);
	store_close(&s, &H, &C);

	s = open_ok(&cfg);
	ck_assert_uint_eq(store_last_seq(s, "a"), 3);
	ck_assert_uint_eq(store_last_seq(s, "b"), 1);
	ck_assert_int_eq(append(s, "a", wall_ms(), "3", 0, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT max(seq) FROM messages m JOIN rooms r ON r.id=m.room_id WHERE r.name='a'"), 4);
}
END_TEST

START_TEST(append_close_rows_present)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10000; /* only close commits */
	struct store *s = open_ok(&cfg);
	char data[64];
	for (int i = 1; i <= 100; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		ck_assert_int_eq(store_append(s, "room", 1700000000000 + i, "bob", data,
					      strlen(data), 0, NULL), 0);
	}
	ck_assert_uint_eq(stats(s).appended, 100);
	store_close(&s, &H, &C);

	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 100);
	ck_assert_int_eq(file_int("SELECT last_seq FROM rooms WHERE name='room'"), 100);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages WHERE seq=42 AND ts=1700000000042"
				  " AND sender='bob' AND data='{\"n\":42}'"), 1);
	/* The WAL was checkpointed into the main file and truncated. */
	char wal[200];
	struct stat st;
	snprintf(wal, sizeof(wal), "%s-wal", C.path);
	ck_assert(stat(wal, &st) != 0 || st.st_size == 0);
}
END_TEST

START_TEST(append_rejects_bad_arguments)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	ck_assert_int_eq(store_append(s, "", 0, "a", "1", 1, 0, NULL), STORE_EINVAL);
	ck_assert_int_eq(store_append(s, NULL, 0, "a", "1", 1, 0, NULL), STORE_EINVAL);
	ck_assert_int_eq(store_append(s, "r", 0, NULL, "1", 1, 0, NULL), STORE_EINVAL);
	ck_assert_int_eq(store_append(s, "r", 0, "a", NULL, 1, 0, NULL), STORE_EINVAL);
	ck_assert_int_eq(store_read(s, "r", 0, 0, 0, 1), STORE_EINVAL);
	ck_assert_int_eq(store_read(s, "", 0, 0, 10, 1), STORE_EINVAL);
	ck_assert_uint_eq(store_last_seq(s, "r"), 0); /* nothing consumed a seq */
	store_close(&s, &H, &C);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Writer: batching, queue bound, durable tickets                      */

START_TEST(batching_few_transactions)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	for (int i = 0; i < 5000; i++)
		ck_assert_int_eq(append(s, i % 2 ? "x" : "y", wall_ms(), "{\"a\":[1,2,3]}", 0, NULL), 0);
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 5000, 10000));
	struct store_stats st = stats(s);
	ck_assert_msg(st.commit_count >= 2 && st.commit_count <= 50,
		      "5000 messages took %llu transactions", (unsigned long long)st.commit_count);
	uint64_t sum = 0;
	for (int i = 0; i < 12; i++)
		sum += st.commit_ms_bucket[i];
	ck_assert_uint_eq(sum, st.commit_count);
	ck_assert(st.commit_ms_sum > 0);
	ck_assert_uint_eq(st.queue_depth, 0);
	ck_assert_uint_eq(st.queue_bytes, 0);
	ck_assert_int_eq(st.failing, 0);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 5000);
}
END_TEST

START_TEST(flush_interval_commits_without_close)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 20;
	struct store *s = open_ok(&cfg);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, NULL), 0);
	/* Visible to another connection within a few flush intervals. */
	sqlite3 *db = db_open();
	int64_t dl = now_ms() + 3000;
	while (db_int(db, "SELECT count(*) FROM messages") == 0 && now_ms() < dl)
		usleep(5000);
	ck_assert_int_eq(db_int(db, "SELECT count(*) FROM messages"), 1);
	sqlite3_close(db);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(batch_max_splits_transactions)
{
	struct store_config cfg = cfg_default();
	cfg.batch_max = 10;
	cfg.flush_interval_ms = 10000;
	struct store *s = open_ok(&cfg);
	append_n(s, "r", 100);
	/* Full batches commit without waiting for the (long) interval. */
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 100, 5000));
	ck_assert_uint_ge(stats(s).commit_count, 10);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(queue_bound_messages)
{
	struct store_config cfg = cfg_default();
	cfg.queue_max = 4;
	struct store *s = open_ok(&cfg);
	sqlite3 *lock = lock_db();
	uint64_t seq;
	for (int i = 1; i <= 4; i++)
		ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, &seq), 0);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, &seq), STORE_EOVERLOADED);
	ck_assert_int_eq(append(s, "other", wall_ms(), "1", 0, &seq), STORE_EOVERLOADED);
	struct store_stats st = stats(s);
	ck_assert_uint_eq(st.overloaded, 2);
	ck_assert_uint_eq(st.queue_depth, 4);
	ck_assert_uint_eq(st.appended, 4);
	ck_assert_uint_eq(store_last_seq(s, "r"), 4);   /* refusals consume no seq */
	ck_assert_uint_eq(store_last_seq(s, "other"), 0);
	unlock_db(lock);
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 4, 10000));
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_eq(seq, 5);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 5);
	ck_assert_int_eq(file_int("SELECT max(seq) - min(seq) + 1 FROM messages"), 5);
}
END_TEST

START_TEST(queue_bound_bytes)
{
	struct store_config cfg = cfg_default();
	cfg.queue_max_bytes = 100;
	cfg.flush_interval_ms = 10000;
	struct store *s = open_ok(&cfg);
	char big[61];
	memset(big, '7', 60);
	big[60] = '\0';
	/* "alice" (5) + 60 = 65 bytes fit; a second one would make 130. */
	ck_assert_int_eq(append(s, "r", wall_ms(), big, 0, NULL), 0);
	ck_assert_int_eq(append(s, "r", wall_ms(), big, 0, NULL), STORE_EOVERLOADED);
	ck_assert_uint_eq(stats(s).queue_bytes, 65);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, NULL), 0); /* small still fits */
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 2);
}
END_TEST

START_TEST(durable_reported_after_commit)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10000; /* durable must not wait for this */
	struct store *s = open_ok(&cfg);
	ck_assert_int_eq(append(s, "r", wall_ms(), "\"plain\"", 0, NULL), 0);
	ck_assert_int_eq(append(s, "r", wall_ms(), "\"durable\"", 77, NULL), 0);
	int64_t t0 = now_ms();
	ck_assert(WAIT_UNTIL(s, C.nt == 1, 5000));
	ck_assert_int_lt(now_ms() - t0, 3000);
	ck_assert_uint_eq(C.tickets[0], 77);
	ck_assert_int_eq(C.oks[0], 1);
	/* Committed: another connection sees both rows right now. */
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 2);
	store_close(&s, &H, &C);
	ck_assert_uint_eq(C.nt, 1);
}
END_TEST

START_TEST(durable_pending_reported_at_close)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10000;
	struct store *s = open_ok(&cfg);
	for (uint64_t t = 1; t <= 50; t++)
		ck_assert_int_eq(append(s, "r", wall_ms(), "1", t, NULL), 0);
	store_close(&s, &H, &C); /* no poll before: close reports them all */
	ck_assert_uint_eq(C.nt, 50);
	for (size_t i = 0; i < C.nt; i++)
		ck_assert_int_eq(C.oks[i], 1);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 50);
}
END_TEST

START_TEST(wakes_are_coalesced)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	for (uint64_t t = 1; t <= 500; t++)
		ck_assert_int_eq(append(s, "r", wall_ms(), "1", t, NULL), 0);
	ck_assert(WAIT_UNTIL(s, C.nt == 500, 10000));
	unsigned wakes = __atomic_load_n(&C.wakes, __ATOMIC_RELAXED);
	struct store_stats st = stats(s);
	/* At most one wake per committed batch, not one per message. */
	ck_assert_msg(wakes <= st.commit_count && wakes < 500, "wakes=%u commits=%llu", wakes,
		      (unsigned long long)st.commit_count);
	for (size_t i = 0; i < C.nt; i++) {
		ck_assert_uint_eq(C.tickets[i], i + 1); /* in order */
		ck_assert_int_eq(C.oks[i], 1);
	}
	store_close(&s, &H, &C);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reads                                                               */

START_TEST(read_modes_and_more)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	char data[32];
	for (int i = 1; i <= 10; i++) {
		snprintf(data, sizeof(data), "[%d]", i);
		ck_assert_int_eq(store_append(s, "r", 1000 + i, i % 2 ? "ann" : "ben", data,
					      strlen(data), 0, NULL), 0);
	}
	ck_assert_int_eq(append(s, "other", 1, "0", 0, NULL), 0);

	struct store_page *pg = read_page(s, "r", 0, 0, 3);   /* latest */
	assert_seqs(pg, 8, 10, 1);
	ck_assert_str_eq(pg->msgs[0].from, "ben");
	ck_assert_str_eq(pg->msgs[0].data, "[8]");
	ck_assert_uint_eq(pg->msgs[0].data_len, 3);
	ck_assert_int_eq(pg->msgs[0].ts, 1008);
	ck_assert_str_eq(pg->msgs[2].data, "[10]");
	assert_seqs(read_page(s, "r", 0, 0, 10), 1, 10, 0);
	assert_seqs(read_page(s, "r", 0, 0, 100), 1, 10, 0);
	assert_seqs(read_page(s, "r", 5, 0, 2), 3, 4, 1);    /* seq < before */
	assert_seqs(read_page(s, "r", 3, 0, 5), 1, 2, 0);
	assert_seqs(read_page(s, "r", 3, 0, 2), 1, 2, 0);
	assert_seqs(read_page(s, "r", 1, 0, 5), 1, 0, 0);    /* nothing older */
	assert_seqs(read_page(s, "r", 0, 7, 2), 8, 9, 1);    /* seq > after */
	assert_seqs(read_page(s, "r", 0, 8, 5), 9, 10, 0);
	assert_seqs(read_page(s, "r", 0, 8, 2), 9, 10, 0);
	assert_seqs(read_page(s, "r", 99, 8, 2), 9, 10, 0);  /* after wins */
	assert_seqs(read_page(s, "r", 0, 10, 5), 1, 0, 0);
	assert_seqs(read_page(s, "nobody", 0, 0, 5), 1, 0, 0);
	assert_seqs(read_page(s, "other", 0, 0, 5), 1, 1, 0);
	ck_assert_uint_eq(stats(s).reads, C.np);
	ck_assert_uint_eq(stats(s).read_errors, 0);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(read_sees_every_earlier_append)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10000; /* the read must not wait for this */
	struct store *s = open_ok(&cfg);
	for (int round = 1; round <= 5; round++) {
		append_n(s, "r", 7);
		int64_t t0 = now_ms();
		struct store_page *pg = read_page(s, "r", 0, 0, 100);
		ck_assert_int_lt(now_ms() - t0, 3000);
		assert_seqs(pg, 1, (uint64_t)round * 7, 0);
		/* and the after mode used for replay */
		assert_seqs(read_page(s, "r", 0, (uint64_t)round * 7 - 2, 100),
			    (uint64_t)round * 7 - 1, (uint64_t)round * 7, 0);
	}
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(read_queue_bound)
{
	struct store_config cfg = cfg_default();
	cfg.read_queue_max = 2;
	struct store *s = open_ok(&cfg);
	sqlite3 *lock = lock_db();
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, NULL), 0);
	/* The reader waits for that append to commit; reads pile up. */
	int accepted = 0, refused = 0;
	for (int i = 0; i < 6; i++) {
		int rc = store_read(s, "r", 0, 0, 10, (uint64_t)i + 1);
		if (rc == 0)
			accepted++;
		else if (rc == STORE_EOVERLOADED)
			refused++;
	}
	ck_assert_int_ge(refused, 1);
	ck_assert_int_le(accepted, 3); /* two queued + at most one in the reader */
	unlock_db(lock);
	ck_assert(WAIT_UNTIL(s, C.np == (size_t)accepted, 15000));
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(read_pending_reported_at_close)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10000;
	struct store *s = open_ok(&cfg);
	append_n(s, "r", 5);
	for (uint64_t c = 1; c <= 3; c++)
		ck_assert_int_eq(store_read(s, "r", 0, 0, 10, c), 0);
	store_close(&s, &H, &C);
	ck_assert_uint_eq(C.np, 3);
	for (size_t i = 0; i < C.np; i++)
		if (C.pages[i]->ok)
			assert_seqs(C.pages[i], 1, 5, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Retention                                                           */

START_TEST(retention_by_count)
{
	struct store_config cfg = cfg_default();
	cfg.retain_messages = 10;
	struct store *s = open_ok(&cfg);
	append_n(s, "a", 50);
	append_n(s, "b", 5);
	ck_assert(WAIT_UNTIL(s, stats(s).pruned == 40, 10000));
	assert_seqs(read_page(s, "a", 0, 0, 100), 41, 50, 0);
	assert_seqs(read_page(s, "b", 0, 0, 100), 1, 5, 0);
	store_close(&s, &H, &C);

	s = open_ok(&cfg);
	ck_assert_uint_eq(store_last_seq(s, "a"), 50);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(retention_in_chunks)
{
	struct store_config cfg = cfg_default();
	cfg.retain_messages = 1;
	struct store *s = open_ok(&cfg);
	/* 10000 rows to prune take three STORE__PRUNE_CHUNK transactions. */
	append_n(s, "a", 10001);
	ck_assert(WAIT_UNTIL(s, stats(s).pruned == 10000, 20000));
	assert_seqs(read_page(s, "a", 0, 0, 100), 10001, 10001, 0);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(retention_by_age)
{
	struct store_config cfg = cfg_default();
	cfg.retain_seconds = 60;
	struct store *s = open_ok(&cfg);
	int64_t old = wall_ms() - 3600 * 1000;
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(append(s, "a", old + i, "1", 0, NULL), 0);
	append_n(s, "a", 5);
	for (int i = 0; i < 3; i++) /* a room whose every message expires */
		ck_assert_int_eq(append(s, "c", old, "1", 0, NULL), 0);
	ck_assert(WAIT_UNTIL(s, stats(s).pruned == 23, 10000));
	assert_seqs(read_page(s, "a", 0, 0, 100), 21, 25, 0);
	assert_seqs(read_page(s, "c", 0, 0, 100), 1, 0, 0);
	store_close(&s, &H, &C);

	/* seqs continue although room c has no message left */
	s = open_ok(&cfg);
	uint64_t seq;
	ck_assert_uint_eq(store_last_seq(s, "c"), 3);
	ck_assert_int_eq(append(s, "c", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(retention_keeps_seq_without_clean_close)
{
	/* rooms.last_seq is written before a prune, not at every batch: a
	 * crash after the prune must not restart the room's seqs. */
	struct store_config cfg = cfg_default();
	cfg.retain_seconds = 60;
	pid_t pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		struct store *s = open_ok(&cfg);
		int64_t old = wall_ms() - 3600 * 1000;
		for (int i = 0; i < 3; i++)
			if (append(s, "c", old, "1", 0, NULL) != 0)
				_exit(1);
		_exit(WAIT_UNTIL(s, stats(s).pruned == 3, 10000) ? 0 : 2); /* no close: a crash */
	}
	int st;
	ck_assert(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct store *s = open_ok(&cfg);
	/* Not restarted: past 3, and (the close was unclean) past what the
	 * run could have handed out (reserve.c). */
	ck_assert_uint_gt(store_last_seq(s, "c"), 3);
	store_close(&s, &H, &C);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Failing disk                                                        */

START_TEST(failing_while_locked_then_recovers)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10;
	struct store *s = open_ok(&cfg);
	ck_assert_int_eq(append(s, "r", wall_ms(), "\"before\"", 0, NULL), 0);
	ck_assert_int_eq(append(s, "calm", wall_ms(), "\"other room\"", 0, NULL), 0);
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 2, 5000));

	sqlite3 *lock = lock_db();
	ck_assert_int_eq(append(s, "r", wall_ms(), "\"kept\"", 9, NULL), 0);
	/* The writer's busy handler gives up after ~1 s: failing. The
	 * durable ticket is not reported: the retry may still commit it. */
	ck_assert(WAIT_UNTIL(s, stats(s).failing == 1, 10000));
	ck_assert_uint_eq(C.nt, 0);
	struct store_stats st = stats(s);
	ck_assert_int_eq(st.failing, 1);
	ck_assert_uint_ge(st.write_errors, 1);
	ck_assert_uint_eq(st.queue_depth, 1); /* the failed batch is kept */
	ck_assert_int_eq(append(s, "r", wall_ms(), "\"refused\"", 0, NULL), STORE_EFAILING);
	ck_assert_uint_eq(stats(s).refused_failing, 1);
	ck_assert_uint_eq(store_last_seq(s, "r"), 2);
	/* A read cannot see the kept message yet: it answers ok=0, bounded. */
	int64_t t0 = now_ms();
	struct store_page *pg = read_page(s, "r", 0, 0, 10);
	ck_assert_int_eq(pg->ok, 0);
	ck_assert_uint_eq(pg->count, 0);
	ck_assert_int_lt(now_ms() - t0, 5000);
	/* A room with nothing unwritten still reads (the watermark is per room). */
	assert_seqs(read_page(s, "calm", 0, 0, 10), 1, 1, 0);
	ck_assert_int_eq(stats(s).failing, 1);

	unlock_db(lock);
	ck_assert(WAIT_UNTIL(s, stats(s).failing == 0 && stats(s).committed == 3, 10000));
	ck_assert(WAIT_UNTIL(s, C.nt == 1, 5000)); /* reported once committed */
	ck_assert_uint_eq(C.tickets[0], 9);
	ck_assert_int_eq(C.oks[0], 1);
	uint64_t seq;
	ck_assert_int_eq(append(s, "r", wall_ms(), "\"after\"", 0, &seq), 0);
	ck_assert_uint_eq(seq, 3);
	assert_seqs(read_page(s, "r", 0, 0, 10), 1, 3, 0);
	ck_assert_uint_eq(C.nt, 1); /* the ticket was not reported twice */
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages WHERE data='\"kept\"'"), 1);
}
END_TEST

START_TEST(io_errors_retried_then_recover)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10000;
	cfg.batch_max = 5; /* the 5th append starts the (failing) batch */
	struct store *s = open_ok(&cfg);
	store__debug_fail_writes(s, 3);
	append_n(s, "r", 5);
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 5, 10000));
	struct store_stats st = stats(s);
	ck_assert_uint_eq(st.write_errors, 3);
	ck_assert_int_eq(st.failing, 0);
	ck_assert_uint_eq(st.queue_depth, 0);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, NULL), 0);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 6);
	ck_assert_int_eq(file_int("SELECT max(seq) FROM messages"), 6);
}
END_TEST

START_TEST(new_room_rolled_back_then_retried)
{
	/* A room created inside a failed batch must be created again. */
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10;
	struct store *s = open_ok(&cfg);
	store__debug_fail_writes(s, 1);
	ck_assert_int_eq(append(s, "fresh", wall_ms(), "1", 0, NULL), 0);
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 1, 10000));
	ck_assert_uint_eq(stats(s).write_errors, 1);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id"
				  " WHERE r.name = 'fresh'"), 1);
}
END_TEST

START_TEST(close_gives_up_on_dead_disk)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	store__debug_fail_writes(s, 1000);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 5, NULL), 0);
	int64_t t0 = now_ms();
	struct store_stats st;
	store_get_stats(s, &st);
	store_close(&s, &H, &C); /* bounded, reports the ticket as failed */
	ck_assert_int_lt(now_ms() - t0, 10000);
	ck_assert_uint_eq(C.nt, 1);
	ck_assert_int_eq(C.oks[0], 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A seq is never handed out twice (reserve.c)                         */

/* In a child (so it can die without closing, like kill -9): appends n
 * messages to room, durable every `every` (0: none), waits for the
 * durable ones, appends `extra` more (not committed with a long flush
 * interval), then dies. Returns the last seq handed out. */
static uint64_t crash_after(const struct store_config *cfg, const char *room, int n, int every,
			    int extra)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		struct store *s = open_ok(cfg);
		uint64_t seq = 0;
		size_t want = 0;
		for (int i = 1; i <= n; i++) {
			uint64_t ticket = every && i % every == 0 ? (uint64_t)i : 0;
			if (append(s, room, wall_ms(), "1", ticket, &seq) != 0)
				_exit(1);
			want += ticket != 0;
		}
		if (!WAIT_UNTIL(s, C.nt == want, 10000))
			_exit(2);
		for (int i = 0; i < extra; i++)
			if (append(s, room, wall_ms(), "1", 0, &seq) != 0)
				_exit(1);
		if (write(fds[1], &seq, sizeof(seq)) != sizeof(seq))
			_exit(3);
		_exit(0); /* no store_close: a crash */
	}
	close(fds[1]);
	uint64_t last = 0;
	ck_assert_int_eq(read(fds[0], &last, sizeof(last)), sizeof(last));
	close(fds[0]);
	int st;
	ck_assert(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return last;
}

START_TEST(seq_not_reused_after_crash)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 60000; /* only the durable ones reach the disk */
	/* 2500 handed out, 2000 committed (up to the last durable one),
	 * then a room whose every message is lost. */
	uint64_t a = crash_after(&cfg, "a", 2000, 1000, 500);
	ck_assert_uint_eq(a, 2500);
	ck_assert_int_eq(file_int("SELECT max(seq) FROM messages"), 2000);
	uint64_t m = crash_after(&cfg, "lost", 5, 0, 0);
	ck_assert_uint_ge(m, 5);
	ck_assert_int_eq(file_int("SELECT count(*) FROM rooms WHERE name = 'lost'"), 0);

	struct store *s = open_ok(&cfg);
	uint64_t seq;
	ck_assert_int_eq(append(s, "a", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_gt(seq, a);
	ck_assert_int_eq(append(s, "lost", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_gt(seq, m);
	uint64_t a2 = store_last_seq(s, "a"), l2 = store_last_seq(s, "lost");
	store_close(&s, &H, &C);

	/* A clean shutdown skips nothing at the next start. */
	s = open_ok(&cfg);
	ck_assert_uint_eq(store_last_seq(s, "a"), a2);
	ck_assert_uint_eq(store_last_seq(s, "lost"), l2);
	ck_assert_int_eq(append(s, "a", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_eq(seq, a2 + 1);
	store_close(&s, &H, &C);
	/* History keeps its rows below the hole. */
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id"
				  " WHERE r.name = 'a'"), 2000 + 2);
}
END_TEST

/* ---- replica (replica.c): log entries with their seqs and positions ---- */

static void apply1(struct store *s, unsigned shard, uint64_t off, const char *room, uint64_t seq,
		   uint64_t ticket)
{
	char id[32];
	snprintf(id, sizeof(id), "1000-%llu", (unsigned long long)off);
	struct store_apply_req a = { .room = room, .seq = seq, .ts = wall_ms(), .from = "bob",
				     .data = "{}", .data_len = 2, .ticket = ticket, .shard = shard,
				     .offset = off, .id = id };
	ck_assert_int_eq(store_apply(s, &a), STORE_OK);
}

/* A child applies entry 4 of shard 3 with a long flush interval and
 * exits without closing (a crash before the commit). Returns its status. */
static int fork_and_crash_after_apply(const struct store_config *cfg0)
{
	struct store_config cfg = *cfg0;
	cfg.flush_interval_ms = 60000;
	pid_t pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		struct store *s = open_ok(&cfg);
		apply1(s, 3, 4, "r", 7, 0);
		_exit(store_last_seq(s, "r") == 7 ? 0 : 1);
	}
	int st;
	ck_assert(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(replica_positions_with_messages)
{
	struct store_config cfg = cfg_default();
	cfg.replica = 1;
	struct store *s = open_ok(&cfg);
	struct store_pos pos;
	store_position(s, 3, &pos);
	ck_assert_uint_eq(pos.offset, 0);
	ck_assert_str_eq(pos.id, "0-0");
	ck_assert_int_eq(store_has_unpositioned_history(s), 0);
	apply1(s, 3, 1, "r", 5, 0);          /* seqs come from the log, not from 1 */
	apply1(s, 3, 2, "", 0, 0);           /* a volatile entry: the position only */
	apply1(s, 3, 3, "r", 6, 77);         /* durable */
	ck_assert_uint_eq(store_last_seq(s, "r"), 6);
	ck_assert(WAIT_UNTIL(s, C.nt == 1, 5000));
	ck_assert_uint_eq(C.tickets[0], 77);
	ck_assert_int_eq(C.oks[0], 1);
	/* the position is committed with (not before, not after) its message */
	ck_assert_int_eq(file_int("SELECT offset FROM cluster_pos WHERE shard = 3"), 3);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 2);
	ck_assert_int_eq(file_int("SELECT lpos FROM messages WHERE seq = 6"), (3LL << 40) | 3);
	ck_assert_int_eq(store_meta_set(s, "run_id", "abc"), STORE_OK);
	store_close(&s, &H, &C);

	/* a crash after more applies: the database holds a prefix, positions included */
	ck_assert(fork_and_crash_after_apply(&cfg) == 0);
	s = open_ok(&cfg);
	store_position(s, 3, &pos);
	ck_assert_uint_eq(pos.offset, 3);      /* the uncommitted 4th entry is not there */
	ck_assert_str_eq(pos.id, "1000-3");
	ck_assert_str_eq(store_meta_get(s, "run_id"), "abc");
	/* a replica never jumps seqs after an unclean start */
	ck_assert_uint_eq(store_last_seq(s, "r"), 6);
	store_close(&s, &H, &C);

	/* single-node history without positions is recognised */
	ck_assert_int_eq(file_int("DELETE FROM cluster_pos RETURNING 0"), 0);
	s = open_ok(&cfg);
	ck_assert_int_eq(store_has_unpositioned_history(s), 1);
	store_close(&s, &H, &C);
}
END_TEST

/* messages.lpos has no index: a file made before 2026-11-28 has one
 * (messages_lpos, every applied row paid a second B-tree insert for it);
 * it is dropped at open, single node or replica, and its rows stay. */
START_TEST(replica_lpos_index_dropped)
{
	struct store_config cfg = cfg_default();
	cfg.replica = 1;
	struct store *s = open_ok(&cfg);
	apply1(s, 2, 1, "r", 1, 0);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name = 'messages_lpos'"), 0);
	/* an older file's index */
	sqlite3 *db = db_open();
	ck_assert_int_eq(sqlite3_exec(db, "CREATE INDEX messages_lpos ON messages (lpos)"
				      " WHERE lpos IS NOT NULL", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name = 'messages_lpos'"), 1);
	s = open_ok(&cfg);
	ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name = 'messages_lpos'"), 0);
	apply1(s, 2, 2, "r", 2, 0); /* the prepared insert still works */
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages WHERE lpos IS NOT NULL"), 2);
	/* a single node drops it too */
	db = db_open();
	ck_assert_int_eq(sqlite3_exec(db, "CREATE INDEX messages_lpos ON messages (lpos)"
				      " WHERE lpos IS NOT NULL", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.replica = 0;
	s = open_ok(&cfg);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM sqlite_master WHERE name = 'messages_lpos'"), 0);
}
END_TEST

/* The position row is written once per shard per batch (the batch's last
 * entry of that shard), still in the batch's transaction: after a batch of
 * interleaved shards, and after that batch failed twice and was retried,
 * each shard's row is its last entry and every message is there once. */
START_TEST(replica_positions_once_per_batch)
{
	struct store_config cfg = cfg_default();
	cfg.replica = 1;
	cfg.flush_interval_ms = 10000;
	cfg.batch_max = 9; /* the 9th apply starts the batch */
	struct store *s = open_ok(&cfg);
	store__debug_fail_writes(s, 2);
	uint64_t seq = 0;
	static const char ent[] = "b\0\0" "0\0mallory\0" "1\0why\0";
	for (uint64_t off = 1; off <= 3; off++) {
		apply1(s, 0, off, "a", ++seq, 0);
		apply1(s, 7, off, "b", seq, 0);
		if (off != 2) {
			apply1(s, 1023, off, "c", seq, 0);
			continue;
		}
		/* a moderation entry, not its shard's last in the batch: its
		 * row is written even though its position is not */
		struct store_apply_req a = { .room = "", .ts = 5, .from = "", .data = "",
					     .shard = 1023, .offset = 2, .id = "1000-2",
					     .mod = ent, .mod_len = sizeof(ent) - 1 };
		ck_assert_int_eq(store_apply(s, &a), STORE_OK);
	}
	ck_assert(WAIT_UNTIL(s, stats(s).committed == 8, 10000));
	ck_assert_uint_eq(stats(s).write_errors, 2);
	/* one more batch moves only shard 7's row */
	apply1(s, 7, 4, "b", 4, 5);
	ck_assert(WAIT_UNTIL(s, C.nt == 1, 5000));
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_pos"), 3);
	ck_assert_int_eq(file_int("SELECT offset FROM cluster_pos WHERE shard = 0"), 3);
	ck_assert_int_eq(file_int("SELECT offset FROM cluster_pos WHERE shard = 7"), 4);
	ck_assert_int_eq(file_int("SELECT offset FROM cluster_pos WHERE shard = 1023"), 3);
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_pos WHERE stream_id ="
				  " '1000-' || offset"), 3);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 9);
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_mods WHERE lpos = (1023 << 40) | 2"), 1);
	s = open_ok(&cfg);
	struct store_pos pos;
	store_position(s, 1023, &pos);
	ck_assert_uint_eq(pos.offset, 3);
	ck_assert_str_eq(pos.id, "1000-3");
	store_close(&s, &H, &C);
}
END_TEST

/* A cluster's moderation entry: no message row, its fields kept in
 * cluster_mods by log position with the position itself (a restore after a
 * Redis restart re-appends it); old rows pruned; and the apply's
 * moderation calls are not refused for queue_max. */
START_TEST(replica_moderation_entries)
{
	struct store_config cfg = cfg_default();
	cfg.replica = 1;
	cfg.queue_max = 1;
	cfg.flush_interval_ms = 60000;
	struct store *s = open_ok(&cfg);
	static const char ent[] = "b\0\0" "0\0mallory\0" "123\0why\0";
	struct store_apply_req a = { .room = "", .ts = 5, .from = "", .data = "", .shard = 2,
				     .offset = 1, .id = "9-1", .mod = ent, .mod_len = sizeof(ent) - 1 };
	ck_assert_int_eq(store_apply(s, &a), STORE_OK);
	/* the queue holds one item: a moderation call is refused, unless
	 * a cluster's apply makes it */
	ck_assert_int_eq(store_ban(s, "mallory", wall_ms() + 60000, "why", 1), STORE_EOVERLOADED);
	store_mod_unbounded(s, 1);
	ck_assert_int_eq(store_ban(s, "mallory", wall_ms() + 60000, "why", 1), STORE_OK);
	store_mod_unbounded(s, 0);
	/* far ahead: rows 2^22 offsets behind go */
	a.offset = (1ull << 22) + 2;
	a.id = "9-2";
	ck_assert_int_eq(store_apply(s, &a), STORE_OK);
	a.shard = 3; /* another shard's rows stay */
	a.offset = 1;
	a.id = "9-3";
	ck_assert_int_eq(store_apply(s, &a), STORE_OK);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 0);
	ck_assert_int_eq(file_int("SELECT offset FROM cluster_pos WHERE shard = 2"), (1LL << 22) + 2);
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_mods"), 2);
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_mods WHERE lpos = (2 << 40) | 1"), 0);
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_mods WHERE lpos = (3 << 40) | 1"
				  " AND ts = 5 AND length(entry) = 21"), 1);
	/* the bytes as given: b, "", 0, mallory, 123, why, each ended by NUL */
	ck_assert_int_eq(file_int("SELECT count(*) FROM cluster_mods WHERE hex(entry) ="
				  " '62000030006D616C6C6F7279003132330077687900'"), 2);
	ck_assert_int_eq(file_int("SELECT count(*) FROM bans WHERE user = 'mallory'"), 1);
}
END_TEST

START_TEST(seq_not_reused_after_two_crashes)
{
	/* The second run crashes before committing anything at all. */
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 60000;
	uint64_t a = crash_after(&cfg, "a", 10, 5, 3);
	uint64_t b = crash_after(&cfg, "a", 0, 0, 10);
	ck_assert_uint_gt(b, a);
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	ck_assert_int_eq(append(s, "a", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_gt(seq, b);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(seq_reservation_exhausted_refuses_then_recovers)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, &seq), 0);
	/* As if the writer had fallen a whole reservation behind. */
	pthread_mutex_lock(&s->wlock);
	s->reserved = s->issued;
	pthread_mutex_unlock(&s->wlock);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, &seq), STORE_EOVERLOADED);
	ck_assert_uint_eq(stats(s).reserve_refused, 1);
	ck_assert_uint_eq(store_last_seq(s, "r"), 1); /* no seq consumed */
	/* The writer reserves again without a message to carry it. */
	int rc = -1;
	for (int64_t dl = now_ms() + 5000; rc != 0 && now_ms() < dl; pump(s))
		rc = append(s, "r", wall_ms(), "1", 0, &seq);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(seq, 2);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(retention_by_count_skips_the_hole)
{
	/* Count retention counts rows, not seqs: after a jump it keeps
	 * retain_messages rows across the hole. */
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10;
	cfg.retain_messages = 5;
	crash_after(&cfg, "h", 3, 1, 0);
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	append_n(s, "h", 3); /* 6 rows: one is due */
	ck_assert_int_eq(append(s, "h", wall_ms(), "1", 0, &seq), 0);
	ck_assert_uint_gt(seq, 1000);
	ck_assert(WAIT_UNTIL(s, stats(s).pruned >= 2, 5000));
	usleep(1500 * 1000); /* one more sweep: nothing else is due */
	pump(s);
	ck_assert_uint_eq(stats(s).pruned, 2);
	store_close(&s, &H, &C);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 5);
	ck_assert_int_eq(file_int("SELECT min(seq) FROM messages"), 3);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Idempotency keys (idem.c)                                           */

static int append_key(struct store *s, const char *room, int64_t ts, const char *key,
		      uint64_t ticket, uint64_t *seq, int *dup)
{
	return store_append_key(s, room, ts, "alice", "1", 1, key, strlen(key), ticket, seq, dup);
}

START_TEST(key_duplicate_within_window)
{
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 60000;
	cfg.key_window_ms = 10000;
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	int dup;
	int64_t t0 = wall_ms();
	ck_assert_int_eq(append_key(s, "r", t0, "k1", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	ck_assert_uint_eq(seq, 1);
	/* Not yet committed: pending, same seq, nothing new queued. */
	ck_assert_int_eq(append_key(s, "r", t0 + 1, "k1", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_DUP_PENDING);
	ck_assert_uint_eq(seq, 1);
	ck_assert_uint_eq(store_last_seq(s, "r"), 1);
	ck_assert_uint_eq(stats(s).queue_depth, 1);
	/* A durable retry waits for the commit, which it asks for. */
	ck_assert_int_eq(append_key(s, "r", t0 + 2, "k1", 42, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_DUP_PENDING);
	ck_assert(WAIT_UNTIL(s, C.nt == 1, 5000));
	ck_assert_uint_eq(C.tickets[0], 42);
	ck_assert_int_eq(C.oks[0], 1);
	ck_assert_int_eq(file_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(append_key(s, "r", t0 + 3, "k1", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_DUP_COMMITTED);
	/* Keys are per room; other keys are other messages; 64 bytes fit. */
	ck_assert_int_eq(append_key(s, "other", t0 + 4, "k1", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	ck_assert_uint_eq(seq, 1);
	char k64[65];
	memset(k64, 'x', 64);
	k64[64] = '\0';
	ck_assert_int_eq(append_key(s, "r", t0 + 5, k64, 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	ck_assert_uint_eq(seq, 2);
	ck_assert_int_eq(store_append_key(s, "r", t0, "a", "1", 1, k64, 65, 0, &seq, &dup),
			 STORE_EINVAL);
	ck_assert_int_eq(store_append_key(s, "r", t0, "a", "1", 1, k64, 0, 0, &seq, &dup),
			 STORE_EINVAL);
	/* After the window the key is new again. */
	ck_assert_int_eq(append_key(s, "r", t0 + 10001, "k1", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	ck_assert_uint_eq(seq, 3);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(key_survives_restart_and_crash)
{
	struct store_config cfg = cfg_default();
	cfg.key_window_ms = 60000;
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	int dup;
	ck_assert_int_eq(append_key(s, "r", wall_ms(), "clean", 0, &seq, &dup), 0);
	store_close(&s, &H, &C);
	/* A crashed run: the durable one is committed, then the process dies. */
	pid_t pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		struct store *c = open_ok(&cfg);
		uint64_t sq;
		int d;
		if (append_key(c, "r", wall_ms(), "crash", 5, &sq, &d) != 0 || sq != 2)
			_exit(1);
		_exit(WAIT_UNTIL(c, C.nt == 1, 10000) ? 0 : 2);
	}
	int st;
	ck_assert(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s = open_ok(&cfg);
	ck_assert_int_eq(append_key(s, "r", wall_ms(), "clean", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_DUP_COMMITTED);
	ck_assert_uint_eq(seq, 1);
	ck_assert_int_eq(append_key(s, "r", wall_ms(), "crash", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_DUP_COMMITTED);
	ck_assert_uint_eq(seq, 2);
	/* Loaded keys expire by their message's ts. */
	ck_assert_int_eq(append_key(s, "r", wall_ms() + 61000, "clean", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	ck_assert_uint_gt(seq, 2);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(key_of_refused_append_is_not_remembered)
{
	/* "The first failed": a refused append leaves no key behind, so the
	 * retry is stored once the disk is back. */
	struct store_config cfg = cfg_default();
	cfg.flush_interval_ms = 10;
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	int dup;
	store__debug_fail_writes(s, 1000000);
	ck_assert_int_eq(append(s, "r", wall_ms(), "1", 0, NULL), 0);
	ck_assert(WAIT_UNTIL(s, stats(s).failing == 1, 5000));
	ck_assert_int_eq(append_key(s, "r", wall_ms(), "kf", 0, &seq, &dup), STORE_EFAILING);
	store__debug_fail_writes(s, 0);
	ck_assert(WAIT_UNTIL(s, stats(s).failing == 0, 5000));
	ck_assert_int_eq(append_key(s, "r", wall_ms(), "kf", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	ck_assert_uint_eq(seq, 2);
	store_close(&s, &H, &C);
}
END_TEST

START_TEST(key_bound_per_room_forgets_oldest)
{
	struct store_config cfg = cfg_default();
	struct store *s = open_ok(&cfg);
	uint64_t seq;
	int dup;
	char key[32];
	int64_t t0 = wall_ms();
	for (int i = 0; i <= STORE__KEYS_PER_ROOM; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(append_key(s, "r", t0, key, 0, &seq, &dup), 0);
		ck_assert_int_eq(dup, STORE_NEW);
	}
	/* k0 was forgotten (stored again), k1 is still known. */
	ck_assert_int_eq(append_key(s, "r", t0, "k1", 0, &seq, &dup), 0);
	ck_assert_int_ne(dup, STORE_NEW);
	ck_assert_uint_eq(seq, 2);
	ck_assert_int_eq(append_key(s, "r", t0, "k0", 0, &seq, &dup), 0);
	ck_assert_int_eq(dup, STORE_NEW);
	store_close(&s, &H, &C);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *store_suite(void)
{
	Suite *su = suite_create("store");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
		{ "open", open_creates_and_reopens },
		{ "open", open_migrates_empty_v0_file },
		{ "open", open_migrates_v1_file_and_skips_its_seqs },
		{ "open", open_refuses_newer_schema },
		{ "open", open_fails_with_message },
		{ "seq", seq_continues_across_reopen },
		{ "seq", append_close_rows_present },
		{ "seq", append_rejects_bad_arguments },
		{ "writer", batching_few_transactions },
		{ "writer", flush_interval_commits_without_close },
		{ "writer", batch_max_splits_transactions },
		{ "writer", queue_bound_messages },
		{ "writer", queue_bound_bytes },
		{ "writer", durable_reported_after_commit },
		{ "writer", durable_pending_reported_at_close },
		{ "writer", wakes_are_coalesced },
		{ "reader", read_modes_and_more },
		{ "reader", read_sees_every_earlier_append },
		{ "reader", read_queue_bound },
		{ "reader", read_pending_reported_at_close },
		{ "retention", retention_by_count },
		{ "retention", retention_in_chunks },
		{ "retention", retention_by_age },
		{ "retention", retention_keeps_seq_without_clean_close },
		{ "failing", failing_while_locked_then_recovers },
		{ "failing", io_errors_retried_then_recover },
		{ "failing", new_room_rolled_back_then_retried },
		{ "failing", close_gives_up_on_dead_disk },
		{ "seqsafe", seq_not_reused_after_crash },
		{ "seqsafe", seq_not_reused_after_two_crashes },
		{ "seqsafe", seq_reservation_exhausted_refuses_then_recovers },
		{ "seqsafe", retention_by_count_skips_the_hole },
		{ "keys", key_duplicate_within_window },
		{ "keys", key_survives_restart_and_crash },
		{ "keys", key_bound_per_room_forgets_oldest },
		{ "keys", key_of_refused_append_is_not_remembered },
		{ "replica", replica_positions_with_messages },
		{ "replica", replica_lpos_index_dropped },
		{ "replica", replica_moderation_entries },
		{ "replica_batch", replica_positions_once_per_batch },
	};
	TCase *tc = NULL;
	const char *cur = NULL;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!cur || strcmp(cur, cases[i].name) != 0) {
			cur = cases[i].name;
			tc = tcase_create(cur);
			tcase_add_checked_fixture(tc, setup, teardown);
			tcase_set_timeout(tc, 60);
			suite_add_tcase(su, tc);
		}
		tcase_add_test(tc, cases[i].t);
	}
	return su;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
