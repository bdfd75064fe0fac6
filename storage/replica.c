/*
 * replica.c - the store's side of a cluster node (docs/cluster.md).
 *
 * In a cluster every node is a full replica of the history: it applies the
 * Redis log's entries in order with the seqs the log assigned
 * (store_apply), and writes each shard's last applied position
 * (cluster_pos) in the same transaction as the entries' messages. After a
 * crash the database therefore holds exactly a prefix of each shard's
 * log, and the node resumes reading right after it. A volatile entry (seq
 * 0) has no row but still moves its shard's position.
 *
 * Positions and meta rows are loaded once at open into memory (loop
 * thread) and then moved by the loop as it applies; the writer only writes
 * them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static void *zalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p)
		abort();
	return p;
}

/* Queues a writer item (under wlock), unbounded (see store_apply). */
static void enqueue(struct store *s, struct store__item *it, int flush)
{
	pthread_mutex_lock(&s->wlock);
	if (s->q_tail)
		s->q_tail->next = it;
	else
		s->q_head = it;
	s->q_tail = it;
	s->q_len++;
	s->depth++;
	s->depth_bytes += it->from_len + it->data_len;
	if (flush)
		s->flush_req = 1;
	if (s->q_len == 1 || s->q_len == s->cfg.batch_max || flush)
		pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
}

int store__replica_load(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	/* Files made before 2026-11-28 have an index on messages.lpos: it
	 * made every applied row cost two B-tree inserts, for a restore that
	 * now finds the rows without it (schema.c, version 4). */
	if (sqlite3_exec(s->wdb, "DROP INDEX IF EXISTS messages_lpos", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "dropping messages_lpos: %s", sqlite3_errmsg(s->wdb));
		return -1;
	}
	if (!s->cfg.replica)
		return 0;
	s->pos = zalloc(STORE_SHARDS_MAX * sizeof(*s->pos));
	s->w_pos_it = zalloc(STORE_SHARDS_MAX * sizeof(*s->w_pos_it));
	s->w_pos_k = zalloc(STORE_SHARDS_MAX * sizeof(*s->w_pos_k));
	for (unsigned i = 0; i < STORE_SHARDS_MAX; i++)
		strcpy(s->pos[i].id, "0-0");
	if (sqlite3_prepare_v2(s->wdb, "SELECT shard, offset, stream_id FROM cluster_pos", -1,
			       &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t k = sqlite3_column_int64(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 2);
		if (k < 0 || k >= STORE_SHARDS_MAX || !id || strlen(id) > STORE_POS_ID_MAX)
			continue;
		s->pos[k].offset = (uint64_t)sqlite3_column_int64(st, 1);
		strcpy(s->pos[k].id, id);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	if (sqlite3_prepare_v2(s->wdb, "SELECT name, value FROM cluster_meta", -1, &st,
			       NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);
		if (!n || !v || strlen(n) >= 128 || strlen(v) >= 128)
			continue;
		struct store__meta *m = zalloc(sizeof(*m));
		strcpy(m->name, n);
		strcpy(m->value, v);
		m->next = s->meta;
		s->meta = m;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	/* History without any position: written by a single node (or a
	 * replica that never applied an entry, which has no messages). */
	if (sqlite3_prepare_v2(s->wdb, "SELECT EXISTS (SELECT 1 FROM messages) AND"
			       " NOT EXISTS (SELECT 1 FROM cluster_pos)", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW)
		s->unpositioned = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
fail:
	snprintf(err, errlen, "loading cluster positions: %s", sqlite3_errmsg(s->wdb));
	return -1;
}

int store__replica_prepare(struct store *s, char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(s->wdb, "INSERT INTO cluster_pos (shard, offset, stream_id)"
			       " VALUES (?1, ?2, ?3) ON CONFLICT (shard) DO UPDATE SET"
			       " offset = excluded.offset, stream_id = excluded.stream_id",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->st_pos_set, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->wdb, "INSERT INTO cluster_meta (name, value) VALUES (?1, ?2)"
			       " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->st_meta_put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->wdb, "INSERT OR REPLACE INTO cluster_mods (lpos, ts, entry)"
			       " VALUES (?1, ?2, ?3)", -1, SQLITE_PREPARE_PERSISTENT,
			       &s->st_cmod_ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->wdb, "DELETE FROM cluster_mods WHERE lpos >= ?1 AND lpos < ?2",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->st_cmod_prune, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "preparing cluster statements: %s", sqlite3_errmsg(s->wdb));
		return -1;
	}
	return 0;
}

void store__replica_finalize(struct store *s)
{
	sqlite3_finalize(s->st_pos_set);
	sqlite3_finalize(s->st_meta_put);
	sqlite3_finalize(s->st_cmod_ins);
	sqlite3_finalize(s->st_cmod_prune);
	s->st_pos_set = s->st_meta_put = s->st_cmod_ins = s->st_cmod_prune = NULL;
}

void store__replica_free(struct store *s)
{
	free(s->pos);
	free(s->w_pos_it);
	free(s->w_pos_k);
	s->pos = NULL;
	s->w_pos_it = NULL;
	s->w_pos_k = NULL;
	while (s->meta) {
		struct store__meta *m = s->meta;
		s->meta = m->next;
		free(m);
	}
}

/* Entries a restore may need are the last few of each shard (past what
 * Redis kept); older rows go when a new one comes (moderation is rare). */
#define CMOD_KEEP (1ull << 22)

/* A moderation entry's row, with its position (same transaction). */
static int mod_write(struct store *s, struct store__item *it)
{
	uint64_t base = (uint64_t)it->pos_shard << 40;
	sqlite3_stmt *st = s->st_cmod_ins;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)(base | it->pos_off));
	sqlite3_bind_int64(st, 2, it->ts);
	sqlite3_bind_blob(st, 3, it->data, (int)it->data_len, SQLITE_STATIC);
	int rc = store__step_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return rc;
	if (it->pos_off > CMOD_KEEP) {
		st = s->st_cmod_prune;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)base);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(base | (it->pos_off - CMOD_KEEP)));
		rc = store__step_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	return SQLITE_OK;
}

int store__replica_write(struct store *s, struct store__item *it)
{
	sqlite3_stmt *st;

	if (it->kind == STORE__K_META) {
		st = s->st_meta_put;
		sqlite3_bind_text(st, 1, it->from, (int)it->from_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, it->data, (int)it->data_len, SQLITE_STATIC);
	} else {
		st = s->st_pos_set;
		sqlite3_bind_int64(st, 1, it->pos_shard);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)it->pos_off);
		sqlite3_bind_text(st, 3, it->pos_id, -1, SQLITE_STATIC);
	}
	int rc = store__step_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A moderation entry's cluster_mods row (writer thread, in the batch's
 * transaction). Separate from the position, which is written once per
 * shard per batch (store__replica_note), while every moderation entry of
 * the batch needs its row. */
int store__replica_mod_write(struct store *s, struct store__item *it)
{
	return mod_write(s, it);
}

/* Remembers it (an entry with a position) as its shard's last in the
 * batch being written. Entries of a shard are queued in offset order, so
 * the last one noted is the furthest; its position, written once before
 * the batch commits (store__replica_write_noted), covers every entry
 * before it in the same transaction. One upsert per shard per batch
 * instead of one per entry: at 2,000 entries/s and 50 ms batches that is
 * 100 upserts less per batch. */
void store__replica_note(struct store *s, struct store__item *it)
{
	unsigned k = it->pos_shard;

	if (!s->w_pos_it[k])
		s->w_pos_k[s->w_pos_n++] = k;
	s->w_pos_it[k] = it;
}

/* Writes the noted positions (writer thread, inside the batch's
 * transaction) and forgets them. Returns SQLITE_OK or an error code. */
int store__replica_write_noted(struct store *s)
{
	int rc = SQLITE_OK;

	for (unsigned i = 0; i < s->w_pos_n && rc == SQLITE_OK; i++)
		rc = store__replica_write(s, s->w_pos_it[s->w_pos_k[i]]);
	store__replica_forget(s);
	return rc;
}

/* Forgets the noted positions (after writing them, or a rollback). */
void store__replica_forget(struct store *s)
{
	for (unsigned i = 0; i < s->w_pos_n; i++)
		s->w_pos_it[s->w_pos_k[i]] = NULL;
	s->w_pos_n = 0;
}

int store_apply(struct store *s, const struct store_apply_req *a)
{
	/* A volatile entry, or a restore's filler, may have no room. */
	if (!s || !s->pos || !a->room || (a->seq && !a->room[0]) || a->shard >= STORE_SHARDS_MAX ||
	    !a->id || strlen(a->id) > STORE_POS_ID_MAX || (a->seq && !a->from) ||
	    a->data_len > INT_MAX || (a->key && (!a->key_len || a->key_len > STORE_KEY_MAX)))
		return STORE_EINVAL;
	const char *from = a->seq ? a->from : "";
	size_t from_len = strlen(from), data_len = a->seq ? a->data_len : 0;
	const void *data = a->data;
	if (!a->seq && a->mod && a->mod_len) {
		data = a->mod; /* a moderation entry: no row, its fields in cluster_mods */
		data_len = a->mod_len;
	}
	size_t klen = a->seq && a->key ? a->key_len : 0;
	struct store__item *it = zalloc(sizeof(*it) + from_len + 1 + data_len + 1 + klen);
	struct store__room *r = NULL;

	if (a->seq) {
		r = store__map_get(&s->map, a->room);
		if (!r) {
			r = store__room_new(a->room);
			r->last_seq = 0;
			store__map_put(&s->map, r);
		}
	}
	it->room = r;
	it->kind = STORE__K_MESSAGE;
	it->seq = a->seq;
	it->ticket = a->ticket;
	store__item_fill(it, a->ts, from, from_len, data, data_len, a->key, klen);
	it->pos_set = 1;
	it->pos_shard = a->shard;
	it->pos_off = a->offset;
	strcpy(it->pos_id, a->id);
	/* The room pointer of a volatile entry stays NULL: the writer
	 * touches no room for it. */
	if (r && a->seq > r->last_seq)
		r->last_seq = a->seq;
	s->pos[a->shard].offset = a->offset;
	strcpy(s->pos[a->shard].id, a->id);
	s->appended += a->seq != 0;
	enqueue(s, it, a->ticket != 0);
	return STORE_OK;
}

void store_mod_unbounded(struct store *s, int on)
{
	s->mod_unbounded = on;
}

void store_position(struct store *s, unsigned shard, struct store_pos *out)
{
	if (!s->pos || shard >= STORE_SHARDS_MAX) {
		out->offset = 0;
		strcpy(out->id, "0-0");
		return;
	}
	*out = s->pos[shard];
}

const char *store_meta_get(struct store *s, const char *name)
{
	for (struct store__meta *m = s->meta; m; m = m->next)
		if (!strcmp(m->name, name))
			return m->value;
	return "";
}

int store_meta_set(struct store *s, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	struct store__meta *m;

	if (nl >= 128 || vl >= 128 || !nl)
		return STORE_EINVAL;
	for (m = s->meta; m && strcmp(m->name, name); m = m->next)
		;
	if (!m) {
		m = zalloc(sizeof(*m));
		strcpy(m->name, name);
		m->next = s->meta;
		s->meta = m;
	}
	strcpy(m->value, value);
	struct store__item *it = zalloc(sizeof(*it) + nl + 1 + vl + 1);
	it->kind = STORE__K_META;
	it->enq_ms = store__now_ms(CLOCK_MONOTONIC);
	it->from = it->buf;
	it->data = it->buf + nl + 1;
	it->from_len = nl;
	it->data_len = vl;
	memcpy(it->from, name, nl + 1);
	memcpy(it->data, value, vl + 1);
	enqueue(s, it, 1);
	return STORE_OK;
}

int store_sync_ticket(struct store *s, uint64_t ticket)
{
	struct store__item *it = zalloc(sizeof(*it) + 2);

	it->marker = 1;
	it->ticket = ticket;
	it->kind = STORE__K_MESSAGE;
	it->enq_ms = store__now_ms(CLOCK_MONOTONIC);
	it->from = it->data = it->buf;
	enqueue(s, it, 1);
	return STORE_OK;
}

int store_has_unpositioned_history(struct store *s)
{
	return s->unpositioned;
}

uint64_t store_queue_depth(struct store *s)
{
	pthread_mutex_lock(&s->wlock);
	uint64_t d = s->depth;
	pthread_mutex_unlock(&s->wlock);
	return d;
}
