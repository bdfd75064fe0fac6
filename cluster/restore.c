/*
 * restore.c - after a Redis restart: no seq a client has seen is reused,
 * and every node ends with the same log.
 *
 * Redis with AOF `everysec` may come back without its last second of
 * writes: entries that nodes had applied (and clients had seen) are gone,
 * and the counters are behind, so the next publish would hand out an
 * offset and a seq that already mean another message. Every node notices
 * the restart on its own (Redis's run_id differs from the one its
 * positions belong to) and then:
 *
 *  1. begin script (atomic): the first node records, per shard, the
 *     offsets Redis came back with (parley:restored:<run_id>) and sets
 *     parley:hold for cluster_hold_ms: publishes fail with unavailable
 *     while it exists. Every restoring node extends it while it works.
 *  2. waits for its store queue to drain, then a thread reads from its own
 *     SQLite the entries it applied past those offsets (messages.lpos, found
 *     room by room: read_applied),
 *     with fillers for the offsets it has no row for (volatile or deleted
 *     messages: their content is gone with Redis).
 *  3. re-appends them in offset order with the restore script
 *     (scripts.c), which skips an offset Redis has already (another node
 *     restored it first: every node applied the same entry at an offset,
 *     so it does not matter whose copy wins) and raises the room's seq
 *     counter.
 *  4. records the new run_id as its own and accepts publishes again.
 *
 * A node that comes back after the hold ended (it was down during the
 * whole restore) and holds entries past the recorded offsets cannot know
 * whether someone else restored them or new publishes took their offsets:
 * it fails closed and must be resynchronised. docs/cluster.md states what
 * survives under which persistence setting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cluster_int.h"
#include "log.h"
#include "rurl.h"
#include "server.h"
#include "util.h"

/* KEYS: 1 parley:restored:<run_id>, 2 parley:off, 3 parley:hold.
 * ARGV: 1 now ms, 2 hold ms, 3 run_id. Returns {late, [field, value, ...]}. */
static const char begin_lua[] =
	"local first = redis.call('HSETNX', KEYS[1], 'at', ARGV[1])\n"
	"if first == 1 then\n"
	"  local offs = redis.call('HGETALL', KEYS[2])\n"
	"  for i = 1, #offs, 2 do redis.call('HSET', KEYS[1], 'o' .. offs[i], offs[i + 1]) end\n"
	"  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])\n"
	"end\n"
	"local late = 0\n"
	"if redis.call('EXISTS', KEYS[3]) == 0 then late = 1 end\n"
	"return {late, redis.call('HGETALL', KEYS[1])}\n";

static void finish(struct cluster *c)
{
	snprintf(c->known_run_id, sizeof(c->known_run_id), "%s", c->restore_run_id);
	store_meta_set(c->s->store, "run_id", c->known_run_id);
	c->restoring = 0;
	c->st.restoring = false;
	c->st.restores++;
	ev_timer_stop(c->s->loop, &c->restore_w);
	log_info("cluster_restored", "redis_run_id=%s entries=%zu", c->known_run_id, c->nrents);
	if (rconn_ready(c->cmd))
		cluster__cmd_usable(c);
}

static void free_rents(struct cluster *c)
{
	for (size_t i = 0; i < c->nrents; i++) {
		free(c->rents[i].room);
		free(c->rents[i].from);
		free(c->rents[i].data);
		free(c->rents[i].key);
		free(c->rents[i].mod);
	}
	free(c->rents);
	c->rents = NULL;
	c->nrents = 0;
}

/* ---- the thread: reads what this node applied past Redis's offsets ---- */

/* A growing array of entries. */
struct rlist {
	struct rentry *v;
	size_t n, cap;
};

static void push(struct rlist *l, const struct rentry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = *e;
}

static void rlist_free(struct rlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].room);
		free(l->v[i].from);
		free(l->v[i].data);
		free(l->v[i].key);
		free(l->v[i].mod);
	}
	free(l->v);
	*l = (struct rlist){ 0 };
}

static char *dup_col(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	return xstrndup(t ? t : "", t ? strlen(t) : 0);
}

/* Log order: shard, then offset. */
static int rentry_cmp(const void *a, const void *b)
{
	const struct rentry *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

#define LPOS_OFF(lpos) ((uint64_t)(lpos) & ((1ull << 40) - 1))

/* Reads the moderation entries (cluster_mods, keyed by lpos) and the
 * messages this node applied past Redis's offsets into l, in any order.
 *
 * Messages are found per room, newest first by the primary key, not by
 * messages.lpos: that column has no index (schema.c, version 4 note), as
 * one cost every applied row a second B-tree insert (and its pages in
 * every commit) on every node, for a restore that happens only after a
 * Redis restart. Within a room seq and offset grow together (the publish
 * script hands out both, and a restore re-appends at the same offsets),
 * so a room's rows past Redis's offset are its newest ones: the walk
 * stops at the first row at or below it, one row per room beyond those
 * wanted. Returns 0, or -1 on a database error. */
static int read_applied(struct cluster *c, sqlite3 *db, struct rlist *l)
{
	sqlite3_stmt *mods = NULL, *rooms = NULL, *msgs = NULL;
	int rc = -1, src;

	if (sqlite3_prepare_v2(db, "SELECT ts, lpos, entry FROM cluster_mods"
			       " WHERE lpos > ?1 AND lpos <= ?2", -1, &mods, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id, name FROM rooms", -1, &rooms, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT seq, ts, sender, data, lpos, key FROM messages"
			       " WHERE room_id = ?1 ORDER BY seq DESC", -1, &msgs, NULL) != SQLITE_OK)
		goto out;
	for (unsigned k = 0; k < c->k; k++) {
		uint64_t from = c->redis_off[k], to = c->restore_to[k];
		if (to <= from)
			continue;
		sqlite3_bind_int64(mods, 1, (sqlite3_int64)(((uint64_t)k << 40) | from));
		sqlite3_bind_int64(mods, 2, (sqlite3_int64)(((uint64_t)k << 40) | to));
		while ((src = sqlite3_step(mods)) == SQLITE_ROW) {
			int ml = sqlite3_column_bytes(mods, 2);
			struct rentry e = { .shard = k,
					    .offset = LPOS_OFF(sqlite3_column_int64(mods, 1)) };
			if (ml > 0) { /* a moderation entry: re-appended as it was */
				e.ts = sqlite3_column_int64(mods, 0);
				e.mod = xmalloc((size_t)ml);
				memcpy(e.mod, sqlite3_column_blob(mods, 2), (size_t)ml);
				e.mod_len = (size_t)ml;
			}
			push(l, &e);
		}
		sqlite3_reset(mods);
		if (src != SQLITE_DONE)
			goto out;
	}
	while ((src = sqlite3_step(rooms)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(rooms, 1);
		int nl = sqlite3_column_bytes(rooms, 1);
		if (!name || nl <= 0)
			continue;
		unsigned k = rurl_shard(name, (size_t)nl, c->k);
		uint64_t from = c->redis_off[k], to = c->restore_to[k];
		if (to <= from)
			continue;
		sqlite3_bind_int64(msgs, 1, sqlite3_column_int64(rooms, 0));
		int mrc;
		while ((mrc = sqlite3_step(msgs)) == SQLITE_ROW) {
			if (sqlite3_column_type(msgs, 4) == SQLITE_NULL)
				continue; /* written by a single node: not from the log */
			sqlite3_int64 lpos = sqlite3_column_int64(msgs, 4);
			uint64_t off = LPOS_OFF(lpos);
			if ((uint64_t)lpos >> 40 != k || off > to)
				continue; /* cannot happen: the room's shard, applied */
			if (off <= from)
				break; /* Redis has this one, and so every older one */
			struct rentry e = { .shard = k, .offset = off };
			const char *data = (const char *)sqlite3_column_text(msgs, 3);
			if (data && data[0]) { /* a tombstone's content is gone: a filler */
				e.room = xstrndup(name, (size_t)nl);
				e.seq = (uint64_t)sqlite3_column_int64(msgs, 0);
				e.ts = sqlite3_column_int64(msgs, 1);
				e.from = dup_col(msgs, 2);
				e.data = dup_col(msgs, 3);
				int kl = sqlite3_column_bytes(msgs, 5);
				if (kl > 0 && kl <= STORE_KEY_MAX) {
					e.key = xstrndup(sqlite3_column_blob(msgs, 5), (size_t)kl);
					e.key_len = (size_t)kl;
				}
			}
			push(l, &e);
		}
		sqlite3_reset(msgs);
		if (mrc != SQLITE_DONE && mrc != SQLITE_ROW)
			goto out;
	}
	if (src == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_finalize(mods);
	sqlite3_finalize(rooms);
	sqlite3_finalize(msgs);
	return rc;
}

static void *restore_main(void *arg)
{
	struct cluster *c = arg;
	sqlite3 *db = NULL;
	struct rlist got = { 0 }, out = { 0 };

	c->restore_err = 1;
	if (sqlite3_open_v2(c->db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, 5000);
	if (read_applied(c, db, &got) < 0)
		goto out;
	if (got.n > 1) /* qsort wants a non-NULL array even for 0 */
		qsort(got.v, got.n, sizeof(*got.v), rentry_cmp);
	/* Every offset from Redis's + 1 to this node's, in log order; no row
	 * (a volatile or deleted message): a filler keeps offsets contiguous. */
	size_t i = 0;
	for (unsigned k = 0; k < c->k; k++) {
		uint64_t from = c->redis_off[k], to = c->restore_to[k], next = from + 1;
		if (to <= from)
			continue;
		for (; i < got.n && got.v[i].shard == k; i++) {
			for (; next < got.v[i].offset; next++)
				push(&out, &(struct rentry){ .shard = k, .offset = next });
			push(&out, &got.v[i]);
			got.v[i] = (struct rentry){ 0 }; /* moved */
			next = out.v[out.n - 1].offset + 1;
		}
		for (; next <= to; next++)
			push(&out, &(struct rentry){ .shard = k, .offset = next });
	}
	c->rents = out.v;
	c->nrents = out.n;
	out = (struct rlist){ 0 };
	c->restore_err = 0;
out:
	rlist_free(&got);
	rlist_free(&out);
	if (db)
		sqlite3_close(db);
	ev_async_send(c->s->loop, &c->restore_async); /* thread-safe: wakes the loop */
	return NULL;
}

/* ---- the loop side ---- */

static void entry_cb(struct rconn *rc, redisReply *r, void *priv)
{
	struct cluster *c = rconn_ud(rc);

	(void)priv;
	if (!r || !c->restoring)
		return; /* lost: the next ready restarts the restore */
	if (r->type != REDIS_REPLY_INTEGER) {
		cluster__log_cmd_error(c, "restore", r);
		rconn_reset(rc, "restore");
		return;
	}
	if (r->integer == 1)
		c->st.restored_entries++;
	else if (r->integer < 0)
		log_error("cluster_restore_gap", "%s", "note=\"an entry could not be re-appended "
			  "contiguously; nodes that lack it will fail closed\"");
	if (++c->restore_acked == c->restore_sent) {
		free_rents(c);
		finish(c);
	}
}

/* The thread is done: re-append its entries, in order, pipelined. */
static void restore_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct cluster *c = w->data;
	char shard[16], off[24], seq[24], ts[24], maxlen[16], window[24];

	(void)loop, (void)revents;
	if (!c->restore_thread_live)
		return;
	pthread_join(c->restore_thread, NULL);
	c->restore_thread_live = 0;
	if (c->restore_err) {
		free_rents(c);
		cluster__fail_closed(c, "cannot read this node's database to restore after a Redis restart");
		return;
	}
	if (!rconn_ready(c->cmd)) {
		free_rents(c);
		return; /* the next ready begins again */
	}
	c->restore_sent = c->restore_acked = 0;
	snprintf(maxlen, sizeof(maxlen), "%u", c->s->cfg->cluster_log_window);
	snprintf(window, sizeof(window), "%llu",
		 (unsigned long long)c->s->cfg->idempotency_window * 1000);
	for (size_t i = 0; i < c->nrents; i++) {
		const struct rentry *e = &c->rents[i];
		snprintf(shard, sizeof(shard), "%u", e->shard);
		snprintf(off, sizeof(off), "%llu", (unsigned long long)e->offset);
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)e->seq);
		snprintf(ts, sizeof(ts), "%lld", (long long)e->ts);
		/* a moderation entry's six fields (kind, room, seq, user,
		 * until, reason), each ended by NUL: see tail.c */
		const char *mf[6] = { "", "", "", "", "", "" };
		for (size_t j = 0, f = 0; e->mod && j < e->mod_len && f < 6; f++) {
			mf[f] = e->mod + j;
			j += strnlen(e->mod + j, e->mod_len - j) + 1;
		}
		if (e->mod && e->mod[e->mod_len - 1] != '\0')
			mf[0] = ""; /* malformed (never written so): a filler */
		const char *argv[] = {
			"EVALSHA", c->sha_restore, "3", "parley:seq", "parley:off",
			c->stream_keys[e->shard], shard, off, e->room ? e->room : "", seq, ts,
			e->from ? e->from : "", e->data ? e->data : "", c->node_id,
			c->sh[e->shard].id, maxlen, e->key ? e->key : "", window,
			mf[0], mf[1], mf[2], mf[3], mf[4], mf[5],
		};
		size_t lens[24];
		for (int j = 0; j < 24; j++)
			lens[j] = strlen(argv[j]);
		lens[16] = e->key_len;
		if (rconn_command_argv(c->cmd, entry_cb, NULL, 24, argv, lens) < 0)
			break;
		c->restore_sent++;
	}
	if (c->restore_sent == 0) {
		free_rents(c);
		finish(c);
	}
}

/* While restoring: keeps the hold up, and starts the thread once the
 * store's queue has drained (everything applied is then on disk). */
static void restore_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cluster *c = w->data;
	char ms[24];

	(void)loop, (void)revents;
	if (!c->restoring || !rconn_ready(c->cmd))
		return;
	snprintf(ms, sizeof(ms), "%u", c->s->cfg->cluster_hold_ms);
	rconn_command(c->cmd, NULL, NULL, "SET parley:hold %s PX %s", c->restore_run_id, ms);
	if (c->restore_stage == 1 && !c->restore_thread_live &&
	    store_queue_depth(c->s->store) == 0) {
		c->restore_stage = 2;
		/* A restore cut short by a lost connection starts over: its
		 * entries are read again (the script skips what went through). */
		free_rents(c);
		/* The thread's ranges: a copy, the tail moves sh[] meanwhile. */
		for (unsigned k = 0; k < c->k; k++)
			c->restore_to[k] = c->sh[k].applied;
		if (pthread_create(&c->restore_thread, NULL, restore_main, c) == 0)
			c->restore_thread_live = 1;
		else
			cluster__fail_closed(c, "cannot start the restore thread");
	}
}

static void begin_cb(struct rconn *rc, redisReply *r, void *priv)
{
	struct cluster *c = rconn_ud(rc);

	(void)priv;
	if (!r || !c->restoring)
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY) {
		cluster__log_cmd_error(c, "restore begin", r);
		rconn_reset(rc, "restore begin");
		return;
	}
	int late = r->element[0]->integer != 0;
	const redisReply *h = r->element[1];
	memset(c->redis_off, 0, c->k * sizeof(*c->redis_off));
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		const redisReply *f = h->element[i], *v = h->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || f->str[0] != 'o')
			continue;
		unsigned long k = strtoul(f->str + 1, NULL, 10);
		if (k < c->k)
			c->redis_off[k] = strtoull(v->str, NULL, 10);
	}
	int ahead = 0;
	for (unsigned k = 0; k < c->k; k++)
		ahead |= c->sh[k].applied > c->redis_off[k];
	log_warn("cluster_redis_restarted", "old_run_id=%s new_run_id=%s late=%d has_lost_entries=%d",
		 c->known_run_id, c->restore_run_id, late, ahead);
	if (!ahead) {
		finish(c);
		return;
	}
	if (late) {
		cluster__fail_closed(c, "Redis restarted and lost entries this node holds, and this node "
				     "came back after the restore window");
		return;
	}
	c->restore_stage = 1;
	restore_tick(c->s->loop, &c->restore_w, 0);
}

void cluster__restore_begin(struct cluster *c)
{
	char now[24], hold[24], key[96];
	const char *run_id = rconn_run_id(c->cmd);

	if (c->restore_thread_live)
		return; /* the one in progress goes on; its async restarts sending */
	c->restoring = 1;
	c->st.restoring = true;
	c->st.publishing = false;
	c->restore_stage = 0;
	snprintf(c->restore_run_id, sizeof(c->restore_run_id), "%s", run_id);
	snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
	snprintf(hold, sizeof(hold), "%u", c->s->cfg->cluster_hold_ms);
	snprintf(key, sizeof(key), "parley:restored:%s", run_id);
	const char *argv[] = { "EVAL", begin_lua, "3", key, "parley:off", "parley:hold", now, hold,
			       run_id };
	if (rconn_command_argv(c->cmd, begin_cb, NULL, 9, argv, NULL) < 0)
		return;
	if (!ev_is_active(&c->restore_w)) {
		double t = c->s->cfg->cluster_hold_ms / 3000.0;
		ev_timer_set(&c->restore_w, t < 0.02 ? 0.02 : t, t < 0.02 ? 0.02 : t);
		ev_timer_start(c->s->loop, &c->restore_w);
	}
}

void cluster__restore_init(struct cluster *c)
{
	c->redis_off = xcalloc(c->k, sizeof(*c->redis_off));
	c->restore_to = xcalloc(c->k, sizeof(*c->restore_to));
	ev_async_init(&c->restore_async, restore_async_cb);
	c->restore_async.data = c;
	ev_async_start(c->s->loop, &c->restore_async);
	ev_timer_init(&c->restore_w, restore_tick, 0, 0);
	c->restore_w.data = c;
}

void cluster__restore_stop(struct cluster *c)
{
	if (c->restore_thread_live) {
		pthread_join(c->restore_thread, NULL);
		c->restore_thread_live = 0;
	}
	free_rents(c);
	ev_async_stop(c->s->loop, &c->restore_async);
	ev_timer_stop(c->s->loop, &c->restore_w);
	free(c->redis_off);
	free(c->restore_to);
	c->redis_off = c->restore_to = NULL;
}
