/*
 * writer.c - the writer thread: takes accepted messages off the bounded
 * queue and commits them in batches.
 *
 * A batch is written when the oldest queued message has waited
 * flush_interval_ms, when batch_max messages are queued, when a durable
 * message or a read is waiting (flush_req), or at shutdown. Everything
 * queued meanwhile goes into the same transaction, so under load the number
 * of transactions stays far below the number of messages.
 *
 * A batch whose transaction fails is rolled back and kept: the writer marks
 * the store failing (store_append then refuses new messages), reports its
 * durable tickets as failed, and retries the same batch with a backoff that
 * doubles from 10 ms to 1 s. The first commit that succeeds clears failing.
 * Only at shutdown does the writer give up, after STORE__CLOSE_RETRIES.
 *
 * A durable ticket is reported failed only when the writer gives up on
 * its batch (at shutdown, after the retries): until then the message may
 * still be committed, so its publisher is not told otherwise.
 *
 * A marker item (a duplicate durable publish, store_append_key) inserts
 * nothing; its ticket is reported with its batch.
 *
 * Durability: the connection runs synchronous=NORMAL in WAL mode, so a
 * commit survives a crash of the process but may not survive power loss
 * until the next checkpoint. A batch holding a durable message is committed
 * with synchronous=FULL instead (the WAL is fsynced before COMMIT returns).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static const struct {
	size_t off;
	const char *sql;
} stmts[] = {
#define S(field, sql) { offsetof(struct store, field), sql }
	S(st_begin, "BEGIN IMMEDIATE"),
	S(st_commit, "COMMIT"),
	S(st_rollback, "ROLLBACK"),
	/* OR IGNORE: a duplicate (room_id, seq) can only come from a second
	 * process writing the same file; retrying it could never succeed and
	 * would stall every later message behind it. */
	S(st_insert, "INSERT OR IGNORE INTO messages (room_id, seq, ts, sender, data, key, lpos)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
	S(st_room_ins, "INSERT INTO rooms (name) VALUES (?1) ON CONFLICT (name) DO NOTHING"),
	S(st_room_get, "SELECT id FROM rooms WHERE name = ?1"),
	S(st_room_seq, "UPDATE rooms SET last_seq = max(last_seq, ?2) WHERE id = ?1"),
	S(st_sync_full, "PRAGMA synchronous = FULL"),
	S(st_sync_normal, "PRAGMA synchronous = NORMAL"),
	S(st_min_seq, "SELECT min(seq) FROM messages WHERE room_id = ?1"),
	/* Age retention judges the oldest rows in seq order (seq and ts grow
	 * together), so pruning always removes a prefix of seqs. */
	S(st_age_max, "SELECT max(seq) FROM (SELECT seq, ts FROM messages"
		      " WHERE room_id = ?1 ORDER BY seq LIMIT ?2) WHERE ts < ?3"),
	S(st_prune, "DELETE FROM messages WHERE room_id = ?1 AND seq <= ?2"),
	S(st_meta_set, "UPDATE meta SET value = ?2 WHERE name = ?1"),
#undef S
};

#define STMT(s, i) ((sqlite3_stmt **)((char *)(s) + stmts[i].off))

/* Prepares every writer statement once. Returns 0 or -1 with err set. */
int store__writer_prepare(struct store *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		if (sqlite3_prepare_v3(s->wdb, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
				       STMT(s, i), NULL) != SQLITE_OK) {
			snprintf(err, errlen, "preparing \"%s\": %s", stmts[i].sql,
				 sqlite3_errmsg(s->wdb));
			return -1;
		}
	}
	return 0;
}

void store__writer_finalize(struct store *s)
{
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		sqlite3_finalize(*STMT(s, i));
		*STMT(s, i) = NULL;
	}
}

/* Runs a statement that returns no rows and resets it for the next use:
 * the return is sqlite3_step's (SQLITE_DONE on success). */
int store__step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

/* Finds or creates the room's row. Returns SQLITE_OK or an error code. */
static int resolve_room(struct store *s, struct store__room *r)
{
	sqlite3_bind_text(s->st_room_ins, 1, r->name, -1, SQLITE_STATIC);
	int rc = store__step_reset(s->st_room_ins);
	sqlite3_clear_bindings(s->st_room_ins);
	if (rc != SQLITE_DONE)
		return rc;
	sqlite3_bind_text(s->st_room_get, 1, r->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s->st_room_get);
	if (rc == SQLITE_ROW) {
		r->w_id = sqlite3_column_int64(s->st_room_get, 0);
		r->w_new_id = 1;
		rc = SQLITE_OK;
	}
	sqlite3_reset(s->st_room_get);
	sqlite3_clear_bindings(s->st_room_get);
	return rc;
}

/* Writes the batch in one transaction; reserved != 0 also moves the seq
 * reservation (reserve.c) with `committed` rows of this run once it
 * commits. Returns SQLITE_OK, or an error code after rolling back (the
 * rooms' writer state is then as before). */
static int write_batch(struct store *s, struct store__item *batch, int durable,
		       uint64_t reserved, uint64_t committed)
{
	struct store__room *touched = NULL, *r;
	int rc;

	durable |= reserved != 0; /* the reservation must be on disk before use */
	if (durable)
		store__step_reset(s->st_sync_full);
	rc = store__step_reset(s->st_begin);
	if (rc != SQLITE_DONE)
		goto fail;
	for (struct store__item *it = batch; it; it = it->next) {
		if (it->marker)
			continue;
		if (it->kind == STORE__K_META || (it->kind == STORE__K_MESSAGE && it->pos_set)) {
			/* a replica's meta row now; its position once per shard,
			 * before the commit (store__replica_write_noted) */
			if (it->kind == STORE__K_META) {
				if ((rc = store__replica_write(s, it)) != SQLITE_OK)
					goto fail;
				continue;
			}
			store__replica_note(s, it);
			if (!it->seq) {
				/* a volatile entry moves the position only; a
				 * moderation entry (data) also keeps its row */
				if (it->data_len && (rc = store__replica_mod_write(s, it)) != SQLITE_OK)
					goto fail;
				continue;
			}
		} else if (it->kind != STORE__K_MESSAGE) { /* delete, ban, erase: moderate.c */
			if ((rc = store__mod_apply(s, it)) != SQLITE_OK)
				goto fail;
			continue;
		}
		r = it->room;
		if (!r->w_batch_seq) {
			r->w_tnext = touched;
			touched = r;
		}
		if (it->seq > r->w_batch_seq)
			r->w_batch_seq = it->seq;
		if (!r->w_id && (rc = resolve_room(s, r)) != SQLITE_OK)
			goto fail;
		sqlite3_stmt *st = s->st_insert;
		sqlite3_bind_int64(st, 1, r->w_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)it->seq);
		sqlite3_bind_int64(st, 3, it->ts);
		sqlite3_bind_text(st, 4, it->from, (int)it->from_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, it->data, (int)it->data_len, SQLITE_STATIC);
		if (it->key)
			sqlite3_bind_blob(st, 6, it->key, (int)it->key_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		if (it->pos_set)
			sqlite3_bind_int64(st, 7, (sqlite3_int64)(((uint64_t)it->pos_shard << 40) |
								  it->pos_off));
		else
			sqlite3_bind_null(st, 7);
		rc = store__step_reset(st);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	/* rooms.last_seq is not updated per batch: at start-up a room's last
	 * seq is max(rooms.last_seq, max(messages.seq)), so it only has to be
	 * current when messages are pruned (retention.c) and, for readers of
	 * the file, after a clean shutdown (store__writer_sync_seqs). That
	 * halves the writes of a batch spread over many rooms. */
	if (s->w_pos_n && (rc = store__replica_write_noted(s)) != SQLITE_OK)
		goto fail;
	if (reserved && (rc = store__reserve_write(s, reserved, committed)) != SQLITE_OK)
		goto fail;
	if (__atomic_load_n(&s->debug_fail, __ATOMIC_RELAXED)) {
		__atomic_fetch_sub(&s->debug_fail, 1, __ATOMIC_RELAXED);
		rc = SQLITE_IOERR;
		goto fail;
	}
	rc = store__step_reset(s->st_commit);
	if (rc != SQLITE_DONE)
		goto fail;

	pthread_mutex_lock(&s->wlock); /* c_last_seq: readers wait on it */
	if (reserved > s->reserved)
		s->reserved = reserved;
	for (r = touched; r; r = r->w_tnext) {
		if (r->w_batch_seq > r->w_last_seq)
			r->w_last_seq = r->c_last_seq = r->w_batch_seq;
		r->w_batch_seq = 0;
		r->w_new_id = 0;
		r->w_dirty = 1;
		if (!r->w_listed) {
			r->w_listed = 1;
			r->w_next = s->w_rooms;
			s->w_rooms = r;
		}
	}
	pthread_mutex_unlock(&s->wlock);
	if (durable)
		store__step_reset(s->st_sync_normal);
	return SQLITE_OK;

fail:
	/* Some errors (SQLITE_FULL, SQLITE_IOERR) roll back by themselves. */
	if (!sqlite3_get_autocommit(s->wdb))
		store__step_reset(s->st_rollback);
	if (s->w_pos_it)
		store__replica_forget(s);
	for (r = touched; r; r = r->w_tnext) {
		r->w_batch_seq = 0;
		if (r->w_new_id) /* the row was rolled back with the batch */
			r->w_id = r->w_new_id = 0;
	}
	if (durable)
		store__step_reset(s->st_sync_normal);
	return rc ? rc : SQLITE_ERROR;
}

/* Reports the batch's durable tickets in one post (so one wake-up at
 * most), and clears them so a retried batch does not report twice. ok=0
 * (the batch was given up): a marker whose seq its room committed in an
 * earlier batch still reports success. */
static void report_tickets(struct store *s, struct store__item *batch, int ok)
{
	size_t n = 0, i = 0;
	for (struct store__item *it = batch; it; it = it->next)
		n += it->ticket != 0;
	if (!n)
		return;
	struct store__ticket *t = malloc(n * sizeof(*t));
	if (!t)
		abort();
	for (struct store__item *it = batch; it; it = it->next) {
		if (it->ticket) {
			int done = ok || (it->marker && it->room && it->seq <= it->room->w_last_seq);
			t[i++] = (struct store__ticket){ it->ticket, done };
			it->ticket = 0;
		}
	}
	store__post_tickets(s, t, n);
	free(t);
}

static void free_batch(struct store__item *batch)
{
	while (batch) {
		struct store__item *next = batch->next;
		free(batch);
		batch = next;
	}
}

/* Sleeps ms on the monotonic clock (the queue cannot grow while failing,
 * so nothing needs to interrupt this). */
static void backoff_sleep(struct store *s, int ms)
{
	int64_t until = store__now_ms(CLOCK_MONOTONIC) + ms;
	struct timespec dl = store__deadline(until);
	pthread_mutex_lock(&s->wlock);
	while (store__now_ms(CLOCK_MONOTONIC) < until)
		pthread_cond_timedwait(&s->wcond, &s->wlock, &dl);
	pthread_mutex_unlock(&s->wlock);
}

/* Commits one batch, retrying until it succeeds (or, at shutdown, gives
 * up after STORE__CLOSE_RETRIES), then settles the accounting. */
static void commit_batch(struct store *s, struct store__item *batch, uint64_t n,
			 uint64_t rows, uint64_t bytes, int durable, uint64_t reserved,
			 uint64_t committed)
{
	int backoff = STORE__BACKOFF_MIN_MS, tries = 0, ok;
	for (;;) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = write_batch(s, batch, durable, reserved, committed);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rc == SQLITE_OK) {
			double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
				    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
			pthread_mutex_lock(&s->wlock);
			s->failing = 0;
			s->committed += rows;
			store__stats_commit(s, ms);
			pthread_mutex_unlock(&s->wlock);
			ok = 1;
			break;
		}
		pthread_mutex_lock(&s->wlock);
		s->failing = 1;
		s->write_errors++;
		int stopping = s->w_stop;
		pthread_cond_broadcast(&s->commit_cond); /* readers re-check failing */
		pthread_mutex_unlock(&s->wlock);
		/* No failure report yet: the retry may still commit it. */
		if (stopping && ++tries > STORE__CLOSE_RETRIES) {
			report_tickets(s, batch, 0);
			store__log("error", "msg=store_dropped rows=%llu err=\"%s\"",
				   (unsigned long long)n, sqlite3_errstr(rc));
			pthread_mutex_lock(&s->wlock);
			s->dropped += rows;
			pthread_mutex_unlock(&s->wlock);
			ok = 0;
			break;
		}
		backoff_sleep(s, backoff);
		backoff = backoff * 2 > STORE__BACKOFF_MAX_MS ? STORE__BACKOFF_MAX_MS : backoff * 2;
	}
	if (ok)
		report_tickets(s, batch, 1);
	store__mod_report(s, batch, ok);
	pthread_mutex_lock(&s->wlock);
	s->depth -= n;
	s->depth_bytes -= bytes;
	pthread_cond_broadcast(&s->commit_cond);
	pthread_mutex_unlock(&s->wlock);
	free_batch(batch);
}

/* Writes every room's last seq into rooms.last_seq (at shutdown), and,
 * if every seq handed out is committed, marks the shutdown clean. */
void store__writer_sync_seqs(struct store *s)
{
	if (store__step_reset(s->st_begin) != SQLITE_DONE)
		return;
	for (struct store__room *r = s->w_rooms; r; r = r->w_next) {
		if (!r->w_id || !r->w_last_seq)
			continue;
		sqlite3_bind_int64(s->st_room_seq, 1, r->w_id);
		sqlite3_bind_int64(s->st_room_seq, 2, (sqlite3_int64)r->w_last_seq);
		if (store__step_reset(s->st_room_seq) != SQLITE_DONE) {
			store__step_reset(s->st_rollback);
			return;
		}
	}
	pthread_mutex_lock(&s->wlock);
	int all = !s->dropped && s->committed == s->issued;
	pthread_mutex_unlock(&s->wlock);
	if (all && store__reserve_mark_clean(s) != SQLITE_OK) {
		store__step_reset(s->st_rollback);
		return;
	}
	if (store__step_reset(s->st_commit) != SQLITE_DONE)
		store__step_reset(s->st_rollback);
}

enum action { ACT_WRITE, ACT_PRUNE, ACT_ERASE, ACT_EXIT };

/* Waits (holding wlock) until there is something to do. Batches come
 * first, but after a batch a pending retention step gets its turn, so a
 * writer that is never idle still prunes. */
static enum action next_action(struct store *s, enum action last)
{
	int retention = s->cfg.retain_messages || s->cfg.retain_seconds;
	for (;;) {
		int64_t now = store__now_ms(CLOCK_MONOTONIC), deadline = INT64_MAX;
		if (retention && !s->w_stop && last == ACT_WRITE &&
		    (s->sweep_active || now >= s->next_sweep_ms))
			return ACT_PRUNE;
		if (!s->q_len && s->flush_req && !s->w_stop &&
		    s->reserved - s->issued <= s->reserve_step / 2)
			return ACT_WRITE; /* an appender was refused: reserve now */
		/* Erase steps take turns with batches too (moderate.c). */
		int erase = (s->w_jobs || s->ckpt_pending) && !s->w_stop &&
			    now >= s->erase_after_ms;
		if (erase && last == ACT_WRITE)
			return ACT_ERASE;
		if (s->q_len) {
			int64_t due = s->q_head->enq_ms + s->cfg.flush_interval_ms;
			if (s->w_stop || s->flush_req || s->q_len >= s->cfg.batch_max || now >= due)
				return ACT_WRITE;
			deadline = due;
		} else if (s->w_stop) {
			return ACT_EXIT;
		}
		if (erase)
			return ACT_ERASE;
		if ((s->w_jobs || s->ckpt_pending) && !s->w_stop && s->erase_after_ms < deadline)
			deadline = s->erase_after_ms;
		if (retention && !s->w_stop) {
			if (s->sweep_active || now >= s->next_sweep_ms)
				return ACT_PRUNE;
			if (s->next_sweep_ms < deadline)
				deadline = s->next_sweep_ms;
		}
		if (deadline == INT64_MAX) {
			pthread_cond_wait(&s->wcond, &s->wlock);
		} else {
			struct timespec dl = store__deadline(deadline);
			pthread_cond_timedwait(&s->wcond, &s->wlock, &dl);
		}
	}
}

void *store__writer_main(void *arg)
{
	struct store *s = arg;

	store__thread_background();
	s->next_sweep_ms = store__now_ms(CLOCK_MONOTONIC) + STORE__SWEEP_MS;
	enum action a = ACT_PRUNE;
	pthread_mutex_lock(&s->wlock);
	for (;;) {
		a = next_action(s, a);
		if (a == ACT_EXIT) {
			pthread_mutex_unlock(&s->wlock);
			store__writer_sync_seqs(s);
			pthread_mutex_lock(&s->wlock);
			break;
		}
		if (a == ACT_ERASE) {
			pthread_mutex_unlock(&s->wlock);
			uint64_t failed = s->erase_failures;
			store__erase_step(s);
			/* A failed step waits a second before the next try. */
			if (s->erase_failures != failed)
				s->erase_after_ms = store__now_ms(CLOCK_MONOTONIC) + 1000;
			pthread_mutex_lock(&s->wlock);
			continue;
		}
		if (a == ACT_PRUNE) {
			pthread_mutex_unlock(&s->wlock);
			store__retention_sweep_due(s, store__now_ms(CLOCK_MONOTONIC));
			store__retention_step(s);
			pthread_mutex_lock(&s->wlock);
			continue;
		}
		/* Take up to batch_max messages; they stay counted in depth
		 * until committed, so the queue bound covers them too. (No
		 * message: a batch that only moves the reservation.) */
		struct store__item *batch = s->q_head, *last = NULL;
		uint64_t n = 0, rows = 0, bytes = 0, reserved = 0;
		int durable = 0;
		for (struct store__item *it = batch; it && n < s->cfg.batch_max; it = it->next) {
			last = it;
			n++;
			rows += !it->marker && it->kind == STORE__K_MESSAGE &&
				(it->seq || !it->pos_set); /* message rows only */
			bytes += it->from_len + it->data_len;
			durable |= it->ticket != 0;
		}
		/* Move the seq reservation ahead once half of it is used. */
		if (s->reserved - s->issued <= s->reserve_step / 2)
			reserved = s->issued + s->reserve_step;
		uint64_t committed = s->committed + rows;
		if (last) {
			s->q_head = last->next;
			last->next = NULL;
		}
		if (!s->q_head)
			s->q_tail = NULL;
		s->q_len -= n;
		if (!s->q_len)
			s->flush_req = 0;
		pthread_mutex_unlock(&s->wlock);
		commit_batch(s, batch, n, rows, bytes, durable, reserved, committed);
		pthread_mutex_lock(&s->wlock);
	}
	s->w_exited = 1;
	pthread_cond_broadcast(&s->commit_cond);
	pthread_mutex_unlock(&s->wlock);
	return NULL;
}
