/*
 * moderate.c - forgetting on request: tombstones (delete), erase jobs
 * (every message of a user), and the ban table. Writer thread, except the
 * store_* entry points, which run on the loop thread.
 *
 * A tombstone is a message row whose sender and data are the empty string
 * (a stored message's data is JSON text, never empty). Its seq and ts stay:
 * seqs are contiguous per room, and age retention relies on ts growing with
 * seq. The old bytes do not stay in the file: the writer connection runs
 * with PRAGMA secure_delete = ON, so SQLite zeroes the space a shrunken or
 * deleted cell leaves in its page, and freed pages. The WAL still holds the
 * old page images until a checkpoint; an erase job ends with
 * wal_checkpoint(TRUNCATE), after which the texts are in neither file.
 *
 * delete, ban, unban and the start of an erase are queue items (kind != 0)
 * that travel with the messages: they commit in the writer's next batch,
 * in order after everything accepted before them, and report through
 * mod_done once committed.
 *
 * An erase job walks messages in primary key order, (room_id, seq), from a
 * cursor kept in erase_jobs: each step is one transaction that looks at
 * erase_step_rows rows at most, tombstones the user's, and moves the
 * cursor. The writer runs steps between batches (like retention), so a
 * large erase never holds messages up for more than one step, and a
 * process killed mid-job resumes from the last committed cursor. Messages
 * the user publishes in a room the job has already passed are not
 * erased: ban the user first.
 *
 * Schema (order-independent of other migrations: IF NOT EXISTS, and run
 * again at every open):
 *   bans(user PRIMARY KEY, until_ms, reason)
 *   erase_jobs(id, user, room_id, seq, started_ms)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

const char store__mod_sql[] =
	"CREATE TABLE IF NOT EXISTS bans ("
	"  user     TEXT PRIMARY KEY,"
	"  until_ms INTEGER NOT NULL,"
	"  reason   TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS erase_jobs ("
	"  id         INTEGER PRIMARY KEY,"
	"  user       TEXT NOT NULL,"
	"  room_id    INTEGER NOT NULL DEFAULT 0,"
	"  seq        INTEGER NOT NULL DEFAULT 0,"
	"  started_ms INTEGER NOT NULL"
	");"
	/* A cluster replica's applied moderation entries (replica.c), by log
	 * position, so that a restore after a Redis restart can re-append
	 * them like messages. entry: the entry's fields (cluster/tail.c). */
	"CREATE TABLE IF NOT EXISTS cluster_mods ("
	"  lpos  INTEGER PRIMARY KEY,"
	"  ts    INTEGER NOT NULL,"
	"  entry BLOB NOT NULL"
	");";

static const struct {
	size_t off;
	const char *sql;
} stmts[] = {
#define S(field, sql) { offsetof(struct store, field), sql }
	S(st_del, "UPDATE messages SET sender = '', data = ''"
		  " WHERE room_id = ?1 AND seq = ?2 AND data <> ''"),
	S(st_del_own, "UPDATE messages SET sender = '', data = ''"
		      " WHERE room_id = ?1 AND seq = ?2 AND data <> '' AND sender = ?3"),
	S(st_del_look, "SELECT data = '' FROM messages WHERE room_id = ?1 AND seq = ?2"),
	S(st_ban_set, "INSERT INTO bans (user, until_ms, reason) VALUES (?1, ?2, ?3)"
		      " ON CONFLICT (user) DO UPDATE SET until_ms = excluded.until_ms,"
		      " reason = excluded.reason"),
	S(st_ban_del, "DELETE FROM bans WHERE user = ?1"),
	S(st_job_ins, "INSERT INTO erase_jobs (user, started_ms) VALUES (?1, ?2)"),
	S(st_job_scan, "SELECT room_id, seq, sender = ?3 AND data <> '' FROM messages"
		       " WHERE (room_id, seq) > (?1, ?2) ORDER BY room_id, seq LIMIT ?4"),
	S(st_job_upd, "UPDATE erase_jobs SET room_id = ?2, seq = ?3 WHERE id = ?1"),
	S(st_job_del, "DELETE FROM erase_jobs WHERE id = ?1"),
	S(st_room_name, "SELECT name FROM rooms WHERE id = ?1"),
#undef S
};

#define STMT(s, i) ((sqlite3_stmt **)((char *)(s) + stmts[i].off))

static void *xmalloc0(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		abort();
	return p;
}

static char *xstrdup0(const char *p)
{
	size_t n = strlen(p);
	char *d = xmalloc0(n + 1);
	memcpy(d, p, n);
	return d;
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* ------------------------------------------------------------ open/close */

/* The moderation tables, created if missing. Runs at every open, after the
 * versioned migrations (the SQL is idempotent). */
int store__mod_schema(sqlite3 *db, char *err, size_t errlen)
{
	if (sqlite3_exec(db, store__mod_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    /* Deleted content is overwritten, not just unlinked: see top. */
	    sqlite3_exec(db, "PRAGMA secure_delete = ON", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "moderation tables: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Loads the unfinished erase jobs and the bans still running; drops the
 * ended bans. Runs in store_open() before the threads start. */
int store__mod_load(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t now = store__now_ms(CLOCK_REALTIME);
	int rc;

	if (sqlite3_prepare_v2(s->wdb, "DELETE FROM bans WHERE until_ms <= ?1", -1, &st,
			       NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;

	if (sqlite3_prepare_v2(s->wdb, "SELECT user, until_ms, reason FROM bans"
			       " ORDER BY until_ms DESC LIMIT ?1", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int(st, 1, STORE_BANS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store__ban *b = xmalloc0(sizeof(*b));
		b->user = xstrdup0((const char *)sqlite3_column_text(st, 0));
		b->until = sqlite3_column_int64(st, 1);
		b->reason = xstrdup0((const char *)sqlite3_column_text(st, 2));
		b->next = s->bans;
		s->bans = b;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;

	if (sqlite3_prepare_v2(s->wdb, "SELECT id, user, room_id, seq FROM erase_jobs"
			       " ORDER BY id DESC", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *user = (const char *)sqlite3_column_text(st, 1);
		size_t n = user ? strlen(user) : 0;
		struct store__job *j = xmalloc0(sizeof(*j) + n + 1);
		j->id = sqlite3_column_int64(st, 0);
		memcpy(j->user, user ? user : "", n);
		j->room_id = sqlite3_column_int64(st, 2);
		j->seq = sqlite3_column_int64(st, 3);
		j->next = s->w_jobs; /* DESC + push: oldest first */
		s->w_jobs = j;
		s->erase_jobs++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		st = NULL;
		goto fail;
	}
	if (s->w_jobs)
		store__log("info", "msg=erase_resume jobs=%llu", (unsigned long long)s->erase_jobs);
	return 0;
fail:
	snprintf(err, errlen, "loading bans and erase jobs: %s", sqlite3_errmsg(s->wdb));
	sqlite3_finalize(st);
	return -1;
}

int store__mod_prepare(struct store *s, char *err, size_t errlen)
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

void store__mod_finalize(struct store *s)
{
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		sqlite3_finalize(*STMT(s, i));
		*STMT(s, i) = NULL;
	}
}

static void free_erased(struct store__erased_post *e)
{
	for (size_t i = 0; i < e->ev.count; i++)
		free(e->rooms[i]);
	free(e->rooms);
	free(e->seqs);
	free(e->user);
	free(e);
}

/* Frees what the threads left (they are stopped). */
void store__mod_free(struct store *s)
{
	while (s->w_jobs) {
		struct store__job *j = s->w_jobs;
		s->w_jobs = j->next;
		free(j);
	}
	while (s->bans) {
		struct store__ban *b = s->bans;
		s->bans = b->next;
		free(b->user);
		free(b->reason);
		free(b);
	}
	while (s->c_erased) {
		struct store__erased_post *e = s->c_erased;
		s->c_erased = e->next;
		free_erased(e);
	}
	free(s->c_mods);
	s->c_mods = NULL;
}

void store_bans_each(struct store *s, void (*fn)(void *, const char *, int64_t, const char *),
		     void *opaque)
{
	while (s->bans) {
		struct store__ban *b = s->bans;
		s->bans = b->next;
		fn(opaque, b->user, b->until, b->reason);
		free(b->user);
		free(b->reason);
		free(b);
	}
}

/* ------------------------------------------------------------ loop side */

/* Queues a moderation item, like store_append does a message. */
static int enqueue(struct store *s, int kind, struct store__room *room, uint64_t seq,
		   const char *from, const char *data, int64_t ts, uint64_t cookie)
{
	size_t from_len = strlen(from), data_len = data ? strlen(data) : 0;
	uint64_t bytes = from_len + data_len;
	struct store__item *it = xmalloc0(sizeof(*it) + from_len + 1 + data_len + 1);

	it->kind = kind;
	it->room = room;
	it->seq = seq;
	it->ts = ts;
	it->cookie = cookie;
	it->enq_ms = store__now_ms(CLOCK_MONOTONIC);
	it->from_len = from_len;
	it->data_len = data_len;
	it->from = it->buf;
	it->data = it->buf + from_len + 1;
	memcpy(it->from, from, from_len + 1);
	if (data_len)
		memcpy(it->data, data, data_len);
	it->data[data_len] = '\0';

	pthread_mutex_lock(&s->wlock);
	int rc = STORE_OK;
	if (s->failing)
		rc = STORE_EFAILING;
	else if (s->mod_unbounded)
		rc = STORE_OK;
	else if (s->depth + 1 > s->cfg.queue_max ||
		 s->depth_bytes + bytes > s->cfg.queue_max_bytes)
		rc = STORE_EOVERLOADED;
	if (rc != STORE_OK) {
		pthread_mutex_unlock(&s->wlock);
		free(it);
		return rc;
	}
	if (s->q_tail)
		s->q_tail->next = it;
	else
		s->q_head = it;
	s->q_tail = it;
	s->q_len++;
	s->depth++;
	s->depth_bytes += bytes;
	/* Someone waits for the answer: commit now, not at the interval. */
	s->flush_req = 1;
	pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
	return STORE_OK;
}

int store_delete(struct store *s, const char *room, uint64_t seq,
		 const char *only_sender, uint64_t cookie)
{
	if (!s || !room || !seq || seq > (uint64_t)INT64_MAX)
		return STORE_EINVAL;
	struct store__room *r = store__map_get(&s->map, room);
	if (!r || seq > r->last_seq)
		return STORE_EINVAL; /* never handed out: nothing to delete */
	return enqueue(s, STORE__K_DELETE, r, seq, only_sender ? only_sender : "", NULL, 0,
		       cookie);
}

int store_erase(struct store *s, const char *user, uint64_t cookie)
{
	if (!s || !user || !user[0])
		return STORE_EINVAL;
	return enqueue(s, STORE__K_ERASE, NULL, 0, user, NULL,
		       store__now_ms(CLOCK_REALTIME), cookie);
}

int store_ban(struct store *s, const char *user, int64_t until_ms, const char *reason,
	      uint64_t cookie)
{
	if (!s || !user || !user[0] || (reason && strlen(reason) > STORE_BAN_REASON_MAX))
		return STORE_EINVAL;
	return enqueue(s, STORE__K_BAN, NULL, 0, user, reason ? reason : "", until_ms, cookie);
}

int store_unban(struct store *s, const char *user, uint64_t cookie)
{
	if (!s || !user || !user[0])
		return STORE_EINVAL;
	return enqueue(s, STORE__K_UNBAN, NULL, 0, user, NULL, 0, cookie);
}

/* ---------------------------------------------------------- writer side */

static int apply_delete(struct store *s, struct store__item *it)
{
	struct store__room *r = it->room;
	int own = it->from_len > 0, rc;

	if (!r->w_id) { /* no row of this room was ever committed */
		it->status = STORE_MOD_NOT_FOUND;
		return SQLITE_OK;
	}
	sqlite3_stmt *st = own ? s->st_del_own : s->st_del;
	sqlite3_bind_int64(st, 1, r->w_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)it->seq);
	if (own)
		sqlite3_bind_text(st, 3, it->from, (int)it->from_len, SQLITE_STATIC);
	if ((rc = step_reset(st)) != SQLITE_DONE)
		return rc;
	if (sqlite3_changes(s->wdb) == 1) {
		it->status = STORE_MOD_OK;
		return SQLITE_OK;
	}
	/* Nothing changed: no such row, already a tombstone, or not ours. */
	sqlite3_bind_int64(s->st_del_look, 1, r->w_id);
	sqlite3_bind_int64(s->st_del_look, 2, (sqlite3_int64)it->seq);
	rc = sqlite3_step(s->st_del_look);
	if (rc == SQLITE_ROW) {
		it->status = sqlite3_column_int(s->st_del_look, 0) ? STORE_MOD_OK
								    : STORE_MOD_NOT_OWNER;
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		it->status = STORE_MOD_NOT_FOUND;
		rc = SQLITE_OK;
	}
	sqlite3_reset(s->st_del_look);
	sqlite3_clear_bindings(s->st_del_look);
	return rc;
}

int store__mod_apply(struct store *s, struct store__item *it)
{
	sqlite3_stmt *st;
	int rc;

	it->status = STORE_MOD_OK;
	switch (it->kind) {
	case STORE__K_DELETE:
		return apply_delete(s, it);
	case STORE__K_ERASE:
		st = s->st_job_ins;
		sqlite3_bind_text(st, 1, it->from, (int)it->from_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, it->ts);
		if ((rc = step_reset(st)) != SQLITE_DONE)
			return rc;
		it->job = sqlite3_last_insert_rowid(s->wdb);
		return SQLITE_OK;
	case STORE__K_BAN:
		st = s->st_ban_set;
		sqlite3_bind_text(st, 1, it->from, (int)it->from_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, it->ts);
		sqlite3_bind_text(st, 3, it->data, (int)it->data_len, SQLITE_STATIC);
		rc = step_reset(st);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	case STORE__K_UNBAN:
		st = s->st_ban_del;
		sqlite3_bind_text(st, 1, it->from, (int)it->from_len, SQLITE_STATIC);
		rc = step_reset(st);
		return rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	return SQLITE_OK;
}

void store__mod_report(struct store *s, struct store__item *batch, int ok)
{
	size_t n = 0, i = 0;
	uint64_t deleted = 0;

	for (struct store__item *it = batch; it; it = it->next)
		n += it->kind != STORE__K_MESSAGE && it->kind != STORE__K_META;
	if (!n)
		return;
	struct store__ticket *t = xmalloc0(n * sizeof(*t));
	for (struct store__item *it = batch; it; it = it->next) {
		if (it->kind == STORE__K_MESSAGE || it->kind == STORE__K_META)
			continue;
		int status = ok ? it->status : STORE_MOD_FAILED;
		t[i++] = (struct store__ticket){ it->cookie, status };
		if (!ok)
			continue;
		if (it->kind == STORE__K_DELETE && status == STORE_MOD_OK)
			deleted++;
		if (it->kind == STORE__K_ERASE) {
			/* The job exists on disk: start walking. */
			struct store__job *j = xmalloc0(sizeof(*j) + it->from_len + 1);
			j->id = it->job;
			memcpy(j->user, it->from, it->from_len);
			struct store__job **pp = &s->w_jobs;
			while (*pp)
				pp = &(*pp)->next;
			*pp = j;
			pthread_mutex_lock(&s->wlock);
			s->erase_jobs++;
			pthread_mutex_unlock(&s->wlock);
			store__log("info", "msg=erase_start job=%lld", (long long)j->id);
		}
	}
	if (deleted) {
		pthread_mutex_lock(&s->wlock);
		s->deleted += deleted;
		pthread_mutex_unlock(&s->wlock);
	}
	store__post_mods(s, t, n);
	free(t);
}

/* The name of room row id, or NULL (owned by the caller). */
static char *room_name(struct store *s, int64_t id)
{
	char *name = NULL;
	sqlite3_bind_int64(s->st_room_name, 1, id);
	if (sqlite3_step(s->st_room_name) == SQLITE_ROW)
		name = xstrdup0((const char *)sqlite3_column_text(s->st_room_name, 0));
	sqlite3_reset(s->st_room_name);
	sqlite3_clear_bindings(s->st_room_name);
	return name;
}

/* Folds the WAL (old page images) into the file and truncates it: after
 * an erase, the erased texts are then in neither file. A reader in the
 * middle of a query can make it fail (busy): the writer tries again at its
 * next turn (ckpt_pending), a second later. Returns 1 if done. */
static int truncate_wal(struct store *s)
{
	int logn = -1, ckpt = -1;
	int rc = sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logn, &ckpt);
	if (rc == SQLITE_OK) {
		/* Only now is a job finished, as the metrics tell it. */
		pthread_mutex_lock(&s->wlock);
		s->erase_jobs -= (uint64_t)s->ckpt_pending;
		s->erase_done += (uint64_t)s->ckpt_pending;
		pthread_mutex_unlock(&s->wlock);
		s->ckpt_pending = 0;
		store__log("info", "msg=erase_checkpoint wal=truncated");
		return 1;
	}
	s->erase_failures++; /* the writer waits a second before the next try */
	store__log("warn", "msg=erase_checkpoint err=\"%s\" (retrying)", sqlite3_errstr(rc));
	return 0;
}

/*
 * One step of the oldest job: look at up to STORE__ERASE_SCAN rows after
 * its cursor, tombstone the user's, move the cursor (or end the job), in
 * one transaction. Then report the tombstones to the loop. A failed step
 * is rolled back and retried at the next turn.
 */
int store__erase_step(struct store *s)
{
	struct store__job *j = s->w_jobs;
	int64_t (*hits)[2] = NULL;
	size_t nhits = 0, scanned = 0;
	int64_t last_room = 0, last_seq = 0;
	int rc, done;

	if (!j) {
		if (s->ckpt_pending)
			truncate_wal(s);
		return s->ckpt_pending;
	}
	if ((rc = step_reset(s->st_begin)) != SQLITE_DONE)
		goto fail;
	sqlite3_stmt *st = s->st_job_scan;
	sqlite3_bind_int64(st, 1, j->room_id);
	sqlite3_bind_int64(st, 2, j->seq);
	sqlite3_bind_text(st, 3, j->user, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)s->cfg.erase_step_rows);
	/* Collect first, update after: no writes under a running scan. */
	hits = xmalloc0(s->cfg.erase_step_rows * sizeof(*hits));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		last_room = sqlite3_column_int64(st, 0);
		last_seq = sqlite3_column_int64(st, 1);
		scanned++;
		if (sqlite3_column_int(st, 2)) {
			hits[nhits][0] = last_room;
			hits[nhits][1] = last_seq;
			nhits++;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		goto fail;
	for (size_t i = 0; i < nhits; i++) {
		sqlite3_bind_int64(s->st_del, 1, hits[i][0]);
		sqlite3_bind_int64(s->st_del, 2, hits[i][1]);
		if ((rc = step_reset(s->st_del)) != SQLITE_DONE)
			goto fail;
	}
	done = scanned < s->cfg.erase_step_rows;
	if (done) {
		sqlite3_bind_int64(s->st_job_del, 1, j->id);
		rc = step_reset(s->st_job_del);
	} else {
		sqlite3_bind_int64(s->st_job_upd, 1, j->id);
		sqlite3_bind_int64(s->st_job_upd, 2, last_room);
		sqlite3_bind_int64(s->st_job_upd, 3, last_seq);
		rc = step_reset(s->st_job_upd);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	/* The rooms' names for the loop, read inside the transaction. */
	struct store__erased_post *e = xmalloc0(sizeof(*e));
	e->rooms = xmalloc0(nhits * sizeof(char *));
	e->seqs = xmalloc0(nhits * sizeof(uint64_t));
	int64_t cur_id = 0;
	char *cur = NULL;
	for (size_t i = 0; i < nhits; i++) {
		if (!cur || hits[i][0] != cur_id) {
			cur_id = hits[i][0];
			cur = room_name(s, cur_id);
			if (!cur)
				cur = xstrdup0("");
		} else {
			cur = xstrdup0(cur);
		}
		e->rooms[i] = cur;
		e->seqs[i] = (uint64_t)hits[i][1];
	}
	if ((rc = step_reset(s->st_commit)) != SQLITE_DONE) {
		e->ev.count = nhits;
		free_erased(e);
		goto fail;
	}
	free(hits);
	e->user = xstrdup0(j->user);
	e->ev.job = (uint64_t)j->id;
	e->ev.done = done;
	e->ev.count = nhits;
	j->room_id = last_room;
	j->seq = last_seq;
	pthread_mutex_lock(&s->wlock);
	s->erase_scanned += scanned;
	s->erase_erased += nhits;
	pthread_mutex_unlock(&s->wlock);
	if (done) {
		s->w_jobs = j->next;
		store__log("info", "msg=erase_done job=%lld", (long long)j->id);
		free(j);
		/* The old page images are still in the WAL: fold and truncate.
		 * The job counts as running until that is done. */
		s->ckpt_pending++;
		truncate_wal(s);
	}
	store__post_erased(s, e);
	return s->w_jobs != NULL || s->ckpt_pending;

fail:
	free(hits);
	if (!sqlite3_get_autocommit(s->wdb))
		step_reset(s->st_rollback);
	s->erase_failures++;
	store__log("warn", "msg=erase_step_failed job=%lld err=\"%s\"", (long long)j->id,
		   sqlite3_errstr(rc));
	return 1;
}
