/*
 * schema.c - the database schema, its migrations, and loading the rooms.
 *
 * The schema version lives in PRAGMA user_version. migrations[i] takes a
 * database from version i to i+1; each runs in its own transaction together
 * with the user_version bump, so a crash mid-migration leaves the previous
 * version intact. A database newer than this code is refused rather than
 * guessed at.
 *
 * Version 1:
 *   rooms(id, name, last_seq)
 *     last_seq is written before retention deletes a room's messages and
 *     at clean shutdown (not per batch); a room's last seq is
 *     max(last_seq, max(messages.seq)), so seqs continue even when
 *     retention deleted every message of a room.
 *   messages(room_id, seq, ts, sender, data) PRIMARY KEY (room_id, seq)
 *     WITHOUT ROWID: every read is a range of one room's seqs (latest page,
 *     seq < before, seq > after) and every prune deletes a seq prefix. A
 *     clustered primary key makes each of those one contiguous b-tree range
 *     and avoids a second index (a rowid table would store (room_id, seq)
 *     twice and pay two look-ups per row). The SQLite docs favour WITHOUT
 *     ROWID for rows well under a page; chat messages mostly are, and large
 *     ones still work through overflow pages.
 *
 * Version 2:
 *   messages.key: the publish's idempotency key (BLOB, NULL if none), with
 *     a partial index on ts over keyed rows only, so start-up loads the
 *     keys of the last window without scanning the table (idem.c).
 *   rooms.hole_lo, rooms.hole_hi: the seqs an unclean start skipped
 *     (reserve.c), for count retention.
 *   meta(name, value): clean, seq_window, seq_base (reserve.c). A file
 *     migrated from version 1 is treated as not cleanly shut down (version
 *     1 did not record it), so its first start skips 65,536 seqs per room.
 *
 * Version 4 (replica.c, cluster replicas):
 *   messages.lpos: (shard << 40) | offset of the log entry the message came
 *     from (NULL on a single node), so a restore after a Redis restart
 *     finds the entries Redis lost by position. Not indexed: a restore
 *     finds them room by room from the newest row (cluster/restore.c), and
 *     the index (messages_lpos, created by this migration until
 *     2026-11-28) cost every applied row a second B-tree insert on every
 *     node; store__replica_load drops it from older files.
 *   cluster_pos(shard, offset, stream_id): each shard's last applied entry,
 *     written in the same transaction as its messages.
 *   cluster_meta(name, value): the cluster's shard count, Redis's run_id.
 *
 * Version 3 (moderate.c):
 *   bans(user, until_ms, reason), erase_jobs(id, user, room_id, seq,
 *   started_ms). Its SQL is idempotent and also runs at every open, so it
 *   does not depend on the order of other migrations.
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

extern const char store__mod_sql[]; /* moderate.c */

static const char *const migrations[STORE__SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE rooms ("
	"  id       INTEGER PRIMARY KEY,"
	"  name     TEXT NOT NULL UNIQUE,"
	"  last_seq INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE messages ("
	"  room_id INTEGER NOT NULL,"
	"  seq     INTEGER NOT NULL,"
	"  ts      INTEGER NOT NULL,"
	"  sender  TEXT NOT NULL,"
	"  data    TEXT NOT NULL,"
	"  PRIMARY KEY (room_id, seq)"
	") WITHOUT ROWID;",
	/* 1 -> 2 */
	"ALTER TABLE messages ADD COLUMN key BLOB;"
	"CREATE INDEX messages_keyed ON messages (ts) WHERE key IS NOT NULL;"
	"ALTER TABLE rooms ADD COLUMN hole_lo INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE rooms ADD COLUMN hole_hi INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE meta ("
	"  name  TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO meta (name, value) VALUES"
	"  ('clean', 0), ('seq_window', 65536), ('seq_base', 0);",
	/* 2 -> 3 */
	store__mod_sql,
	/* 3 -> 4 */
	"ALTER TABLE messages ADD COLUMN lpos INTEGER;"
	"CREATE TABLE cluster_pos ("
	"  shard     INTEGER PRIMARY KEY,"
	"  offset    INTEGER NOT NULL,"
	"  stream_id TEXT NOT NULL"
	");"
	"CREATE TABLE cluster_meta ("
	"  name  TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL"
	") WITHOUT ROWID;",
};

static int user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Brings db to STORE__SCHEMA_VERSION. Returns 0, or -1 with err set. */
int store__schema_migrate(sqlite3 *db, char *err, size_t errlen)
{
	int v = 0;
	if (user_version(db, &v) != SQLITE_OK) {
		snprintf(err, errlen, "reading schema version: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (v > STORE__SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "database schema version %d is newer than this parleyd "
			 "supports (%d)", v, STORE__SCHEMA_VERSION);
		return -1;
	}
	int fresh = v == 0;
	for (; v < STORE__SCHEMA_VERSION; v++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "migrating schema %d -> %d: %s",
				 v, v + 1, sqlite3_errmsg(db));
			if (!sqlite3_get_autocommit(db))
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	/* A new file has handed out no seq: nothing to skip at its start. */
	if (fresh && sqlite3_exec(db, "UPDATE meta SET value = 1 WHERE name = 'clean'",
				  NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "initialising meta: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Loads every room and its last seq into s->map and the writer's list.
 * Runs in store_open() before the threads start. Returns 0 or -1. */
int store__schema_load_rooms(struct store *s, char *err, size_t errlen)
{
	/* The max() with the messages is needed, not belt and braces:
	 * rooms.last_seq is written only before a prune and at clean
	 * shutdown, not with every batch (writer.c), so after a crash the
	 * messages hold the latest seqs. */
	static const char sql[] =
		"SELECT id, name, max(last_seq, coalesce("
		"  (SELECT max(seq) FROM messages m WHERE m.room_id = rooms.id), 0)),"
		" hole_lo, hole_hi FROM rooms";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (!name || store__map_get(&s->map, name))
			continue;
		struct store__room *r = store__room_new(name);
		r->w_id = sqlite3_column_int64(st, 0);
		r->last_seq = r->w_last_seq = r->c_last_seq =
			(uint64_t)sqlite3_column_int64(st, 2);
		r->w_hole_lo = (uint64_t)sqlite3_column_int64(st, 3);
		r->w_hole_hi = (uint64_t)sqlite3_column_int64(st, 4);
		r->w_listed = 1;
		r->w_dirty = 1; /* let the first sweep apply retention */
		r->w_next = s->w_rooms;
		s->w_rooms = r;
		store__map_put(&s->map, r);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	snprintf(err, errlen, "loading rooms: %s", sqlite3_errmsg(s->wdb));
	return -1;
}
