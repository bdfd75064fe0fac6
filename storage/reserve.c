/*
 * reserve.c - a seq is never handed out twice, crash or not.
 *
 * The loop hands out a message's seq (and delivers it live) before the
 * writer commits it, so a crash loses the seqs handed out since the last
 * commit; a restart that continued from the committed seqs would hand
 * them out again to different messages. Instead:
 *
 *  - The table meta holds `clean` (1 only after a clean shutdown that
 *    committed every seq it handed out), `seq_window` and `seq_base`.
 *  - seq_window bounds how many seqs may have been handed out without
 *    being in the database, counting from the last commit that wrote it.
 *    The loop may hand out seqs only up to s->reserved (seqs this run, all
 *    rooms together); the writer moves the reservation ahead inside an
 *    ordinary batch, committed with an fsync (synchronous=FULL), well
 *    before the loop reaches it: once per reserve_step/2 seqs. It writes
 *    seq_window = reserved - committed, where committed counts the rows
 *    that transaction makes durable. Seqs handed out and not durable are
 *    then at most seq_window, whatever happens later, power loss included.
 *  - At an unclean start, every room's seq jumps: last = max(last,
 *    seq_base) + seq_window, and seq_base (the start of a room the store
 *    has never seen) grows by seq_window, for rooms whose every message
 *    was lost. This is written, with clean = 0 and the new run's window,
 *    in one fsynced transaction before the loop runs.
 *
 * On the hot path this costs one comparison under the lock store_append
 * already takes. If the writer falls so far behind that the reservation
 * runs out, store_append refuses with STORE_EOVERLOADED (never waits, never
 * reuses). Seqs skipped by a jump never exist; the room records the hole
 * so count retention does not count it (retention.c).
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

static int meta_get(sqlite3 *db, const char *name, uint64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_CORRUPT; /* the migration inserts every row */
	}
	sqlite3_finalize(st);
	return rc;
}

static int exec_u64(sqlite3 *db, const char *sql, uint64_t a, uint64_t b)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)a);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)b);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* At store_open, before the rooms are loaded: detects an unclean shutdown
 * and moves every seq past what it may have handed out, then reserves the
 * first seqs of this run. Blocks on one fsync. Returns 0 or -1. */
int store__reserve_start(struct store *s, char *err, size_t errlen)
{
	sqlite3 *db = s->wdb;
	uint64_t clean = 0, window = 0, base = 0;
	int rc;

	s->reserve_step = s->cfg.queue_max > 16384 ? s->cfg.queue_max : 16384;
	if ((rc = meta_get(db, "clean", &clean)) != SQLITE_OK ||
	    (rc = meta_get(db, "seq_window", &window)) != SQLITE_OK ||
	    (rc = meta_get(db, "seq_base", &base)) != SQLITE_OK)
		goto fail;
	sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	/* A replica's seqs come from the cluster log, never from here: a
	 * jump would make it skip real entries as duplicates (replica.c). */
	if (!clean && !s->cfg.replica) {
		/* rooms.last_seq first takes in the messages (it is not
		 * written per batch), then every room jumps. */
		if ((rc = sqlite3_exec(db,
			"UPDATE rooms SET last_seq = max(last_seq, coalesce("
			"  (SELECT max(seq) FROM messages m WHERE m.room_id = rooms.id), 0))",
			NULL, NULL, NULL)) != SQLITE_OK ||
		    (rc = exec_u64(db, "UPDATE rooms SET hole_lo = last_seq,"
				   " hole_hi = max(last_seq, ?1) + ?2,"
				   " last_seq = max(last_seq, ?1) + ?2", base, window)) != SQLITE_OK ||
		    (rc = exec_u64(db, "UPDATE meta SET value = ?1 + ?2 WHERE name = 'seq_base'",
				   base, window)) != SQLITE_OK)
			goto rollback;
		store__log("warn", "msg=store_unclean_start seq_skip=%llu "
			   "note=\"the last run did not shut down cleanly: every room's seq "
			   "skips ahead so no seq is handed out twice\"",
			   (unsigned long long)window);
		base += window;
	}
	if ((rc = exec_u64(db, "UPDATE meta SET value = ?1 WHERE name = 'seq_window'",
			   s->reserve_step, 0)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db, "UPDATE meta SET value = 0 WHERE name = 'clean'",
			       NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
		goto rollback;
	sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	s->seq_base = base;
	s->issued = 0;
	s->reserved = s->reserve_step;
	return 0;

rollback:
	snprintf(err, errlen, "reserving seqs: %s", sqlite3_errmsg(db));
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	return -1;
fail:
	snprintf(err, errlen, "reading seq reservation: %s", sqlite3_errstr(rc));
	return -1;
}

/* Writer thread, inside a batch's transaction: after it commits, up to
 * `reserved` seqs of this run may be handed out, and `committed` rows of
 * this run are in the database. Returns an SQLite code. */
int store__reserve_write(struct store *s, uint64_t reserved, uint64_t committed)
{
	sqlite3_bind_text(s->st_meta_set, 1, "seq_window", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->st_meta_set, 2, (sqlite3_int64)(reserved - committed));
	int rc = sqlite3_step(s->st_meta_set);
	sqlite3_reset(s->st_meta_set);
	sqlite3_clear_bindings(s->st_meta_set);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writer thread, at clean shutdown inside the last transaction: every seq
 * handed out is committed, so the next start need not skip any. */
int store__reserve_mark_clean(struct store *s)
{
	sqlite3_bind_text(s->st_meta_set, 1, "clean", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->st_meta_set, 2, 1);
	int rc = sqlite3_step(s->st_meta_set);
	sqlite3_reset(s->st_meta_set);
	sqlite3_clear_bindings(s->st_meta_set);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
