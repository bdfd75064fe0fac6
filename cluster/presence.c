/*
 * presence.c - presence across the nodes of a cluster (presence.h has the
 * design: a hash per node, a change stream, a replica per node here).
 *
 * Two Redis connections of our own: `cmd` writes this node's state
 * (HSET/HDEL of its hash, XADD of changes, the heartbeat) and `tail` reads
 * the change stream (XREAD BLOCK, one command at a time) after loading the
 * others' hashes. Local changes are coalesced per (room, user) and written
 * once a window (presence_window_ms), so a mass leave is one XADD.
 */
#include "presence.h"
#include "presfmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "config.h"
#include "log.h"
#include "rconn.h"
#include "room.h"
#include "rurl.h"
#include "server.h"
#include "util.h"

#define KEY_NODES "parley:pres:nodes"
#define KEY_LOG "parley:pres:log"
#define KEY_NODE_PREFIX "parley:pres:n:"
#define LOG_MAXLEN "100000"
#define XREAD_BLOCK_MS 1000
#define XREAD_COUNT "1000"

/* A user's connections in one room of a remote node. */
struct rentry {
	uint32_t count;
	uint32_t len;
	char name[];      /* NUL-terminated; one allocation with the entry: a node
			   * holds one per member of every other node, so this is
			   * per-connection memory of the whole cluster */
};

struct rroom {
	char *name;
	size_t len;
	struct hmap users;           /* struct rentry *, by name */
};

struct rnode {
	char *id;
	size_t len;
	struct hmap rooms;           /* struct rroom *, by name */
	uint64_t members;            /* sum of its counts */
	double deadline;             /* ev_now past which it is dead */
	double last_heard;
};

/* A local change not yet written: the latest count of (room, user). */
struct dirty {
	char *key;                   /* "<roomlen>:<room><user>", the hash field */
	size_t key_len;
	uint32_t count;
};

struct clp_counters {
	uint64_t expired;            /* remote nodes dropped for silence */
	uint64_t left;               /* remote nodes dropped by their D entry */
	uint64_t writes;             /* XADDs of ours (U and F) */
};

struct clp {
	struct server *s;
	struct rconn *cmd, *tail;
	char node_id[256];
	size_t node_len;
	char hash_key[300];
	double ttl;
	ev_timer hb_w, expire_w, flush_w;
	struct hmap nodes;           /* struct rnode *, by id */
	struct hmap dirty;           /* struct dirty *, by key */
	char last_id[64];            /* stream position of the tail */
	enum { T_IDLE, T_LOADING, T_TAILING } tail_state;
	unsigned load_pending;       /* HGETALL/PTTL replies still due */
	int draining;
	struct pbuf buf;
	struct clp_counters n;
};

static int name_match_node(const void *e, const void *k)
{
	const struct rnode *n = e;
	return hmap_name_eq(k, n->id, n->len);
}

static int name_match_room(const void *e, const void *k)
{
	const struct rroom *r = e;
	return hmap_name_eq(k, r->name, r->len);
}

static int name_match_entry(const void *e, const void *k)
{
	const struct rentry *u = e;
	return hmap_name_eq(k, u->name, u->len);
}

static int name_match_dirty(const void *e, const void *k)
{
	const struct dirty *d = e;
	return hmap_name_eq(k, d->key, d->key_len);
}

/* ---- the replica of remote nodes ---- */

static struct rnode *node_get(struct clp *p, const char *id, size_t len, int create)
{
	struct hmap_name k = { id, len };
	uint64_t h = hmap_hash_bytes(id, len);
	struct rnode *n = hmap_get(&p->nodes, h, &k, name_match_node);

	if (!n && create) {
		n = xcalloc(1, sizeof(*n));
		n->id = xstrndup(id, len);
		n->len = len;
		n->deadline = ev_now(p->s->loop) + p->ttl;
		n->last_heard = ev_now(p->s->loop);
		hmap_put(&p->nodes, h, n);
		log_info("cluster_presence_node", "node=%s event=seen", log_q(n->id));
	}
	return n;
}

static uint32_t entry_count(const struct rnode *n, const char *room, size_t rl, const char *user,
			    size_t ul)
{
	struct hmap_name rk = { room, rl }, uk = { user, ul };
	struct rroom *rr = hmap_get(&n->rooms, hmap_hash_bytes(room, rl), &rk, name_match_room);
	if (!rr)
		return 0;
	struct rentry *e = hmap_get(&rr->users, hmap_hash_bytes(user, ul), &uk, name_match_entry);
	return e ? e->count : 0;
}

/* The user's connections in the room on every remote node together. */
static uint32_t remote_total(struct clp *p, const char *room, size_t rl, const char *user, size_t ul)
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < p->nodes.cap; i++)
		if (p->nodes.slots[i].hash)
			t += entry_count(p->nodes.slots[i].entry, room, rl, user, ul);
	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* Sets node n's count of (room, user) and tells the local room, if there
 * is one here (its window batches the event). */
static void set_count(struct clp *p, struct rnode *n, const char *room, size_t rl, const char *user,
		      size_t ul, uint32_t count)
{
	struct hmap_name rk = { room, rl }, uk = { user, ul };
	uint64_t rh = hmap_hash_bytes(room, rl), uh = hmap_hash_bytes(user, ul);
	struct rroom *rr = hmap_get(&n->rooms, rh, &rk, name_match_room);
	struct rentry *e = rr ? hmap_get(&rr->users, uh, &uk, name_match_entry) : NULL;
	uint32_t old = e ? e->count : 0;

	if (old == count)
		return;
	if (count) {
		if (!rr) {
			rr = xcalloc(1, sizeof(*rr));
			rr->name = xstrndup(room, rl);
			rr->len = rl;
			hmap_put(&n->rooms, rh, rr);
		}
		if (!e) {
			e = xmalloc(sizeof(*e) + ul + 1);
			memcpy(e->name, user, ul);
			e->name[ul] = '\0';
			e->len = (uint32_t)ul;
			hmap_put(&rr->users, uh, e);
		}
		e->count = count;
	} else {
		hmap_del(&rr->users, uh, &uk, name_match_entry);
		free(e);
		if (rr->users.len == 0) {
			/* no empty rooms left behind (STYLE: like Redis's channels) */
			hmap_del(&n->rooms, rh, &rk, name_match_room);
			hmap_free(&rr->users);
			free(rr->name);
			free(rr);
		}
	}
	n->members += (uint64_t)count - old;
	struct room *r = room_find(p->s, room, rl);
	if (r)
		presence_remote(r, user, ul, remote_total(p, room, rl, user, ul), false);
}

/* Every (room, user, count) of n, copied out so that n may change while
 * the caller walks them. */
struct entry_list {
	struct { char *room, *user; size_t rl, ul; uint32_t count; } *v;
	size_t n, cap;
};

static void list_add(struct entry_list *l, const char *room, size_t rl, const char *user, size_t ul,
		     uint32_t count)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].room = xstrndup(room, rl);
	l->v[l->n].rl = rl;
	l->v[l->n].user = xstrndup(user, ul);
	l->v[l->n].ul = ul;
	l->v[l->n].count = count;
	l->n++;
}

static void list_free(struct entry_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].room);
		free(l->v[i].user);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void node_entries(const struct rnode *n, struct entry_list *l)
{
	for (uint32_t i = 0; i < n->rooms.cap; i++) {
		if (!n->rooms.slots[i].hash)
			continue;
		const struct rroom *rr = n->rooms.slots[i].entry;
		for (uint32_t j = 0; j < rr->users.cap; j++)
			if (rr->users.slots[j].hash) {
				const struct rentry *e = rr->users.slots[j].entry;
				list_add(l, rr->name, rr->len, e->name, e->len, e->count);
			}
	}
}

/* Replaces n's state by list (absolute): entries missing from it go to 0. */
static void node_replace(struct clp *p, struct rnode *n, const struct entry_list *list)
{
	struct entry_list old = { 0 };

	node_entries(n, &old);
	for (size_t i = 0; i < old.n; i++) {
		int kept = 0;
		for (size_t j = 0; j < list->n && !kept; j++)
			kept = list->v[j].rl == old.v[i].rl && list->v[j].ul == old.v[i].ul &&
			       !memcmp(list->v[j].room, old.v[i].room, old.v[i].rl) &&
			       !memcmp(list->v[j].user, old.v[i].user, old.v[i].ul);
		if (!kept)
			set_count(p, n, old.v[i].room, old.v[i].rl, old.v[i].user, old.v[i].ul, 0);
	}
	list_free(&old);
	for (size_t j = 0; j < list->n; j++)
		set_count(p, n, list->v[j].room, list->v[j].rl, list->v[j].user, list->v[j].ul,
			  list->v[j].count);
}

/* Its members leave (batched like any leave), then the node is forgotten. */
static void node_drop(struct clp *p, struct rnode *n, const char *why)
{
	struct entry_list none = { 0 };
	struct hmap_name k = { n->id, n->len };

	log_info("cluster_presence_node", "node=%s event=%s members=%llu", log_q(n->id), why,
		 (unsigned long long)n->members);
	node_replace(p, n, &none);
	hmap_del(&p->nodes, hmap_hash_bytes(n->id, n->len), &k, name_match_node);
	hmap_free(&n->rooms);
	free(n->id);
	free(n);
}

/* ---- payloads and fields: presfmt.c ---- */

static void list_entry(const char *room, size_t rl, const char *user, size_t ul, uint32_t count,
		       void *ud)
{
	list_add(ud, room, rl, user, ul, count);
}

/* ---- writing this node's state ---- */

static void cmd_reply_check(struct rconn *rc, redisReply *r, void *priv)
{
	(void)rc;
	if (r && r->type == REDIS_REPLY_ERROR)
		log_warn("cluster_presence", "command=%s error=%s", (const char *)priv, log_q(r->str));
}

static void xadd(struct clp *p, const char *kind, const char *payload, size_t n)
{
	const char *argv[] = { "XADD", KEY_LOG, "MAXLEN", "~", LOG_MAXLEN, "*", "n", p->node_id, "k",
			       kind, "d", payload };
	size_t lens[] = { 4, strlen(KEY_LOG), 6, 1, strlen(LOG_MAXLEN), 1, 1, p->node_len, 1,
			  strlen(kind), 1, n };
	rconn_command_argv(p->cmd, cmd_reply_check, "XADD", 12, argv, lens);
}

/* HSET or HDEL of many fields in one command. */
struct argv_build {
	const char **v;
	size_t *len;
	int n, cap;
};

static void argv_push(struct argv_build *a, const char *s, size_t n)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, (size_t)a->cap * sizeof(*a->v));
		a->len = xrealloc(a->len, (size_t)a->cap * sizeof(*a->len));
	}
	a->v[a->n] = s;
	a->len[a->n] = n;
	a->n++;
}

static void argv_free(struct argv_build *a)
{
	free(a->v);
	free(a->len);
	memset(a, 0, sizeof(*a));
}

/* The whole local state: every user with connections in every room here. */
static void publish_full(struct clp *p)
{
	struct server *s = p->s;
	struct argv_build hset = { 0 };
	struct entry_list fields = { 0 }; /* field strings and counts, kept alive for argv */
	char tmp[1024];
	char counts[32];

	pbuf_reset(&p->buf);
	for (uint32_t i = 0; i < s->rooms.cap; i++) {
		if (!s->rooms.slots[i].hash)
			continue;
		struct room *r = s->rooms.slots[i].entry;
		for (uint32_t j = 0; j < r->users.cap; j++) {
			if (!r->users.slots[j].hash)
				continue;
			struct ruser *u = r->users.slots[j].entry;
			if (!u->conns)
				continue;
			presfmt_add(&p->buf, r->name, r->name_len, u->name, u->name_len, u->conns);
			size_t fl = presfmt_field(tmp, sizeof(tmp), r->name, r->name_len, u->name, u->name_len);
			snprintf(counts, sizeof(counts), "%u", u->conns);
			if (fl)
				list_add(&fields, tmp, fl, counts, strlen(counts), u->conns);
		}
	}
	const char *del[] = { "DEL", p->hash_key };
	rconn_command_argv(p->cmd, cmd_reply_check, "DEL", 2, del, NULL);
	argv_push(&hset, "HSET", 4);
	argv_push(&hset, p->hash_key, strlen(p->hash_key));
	/* the empty field keeps the hash (and its TTL) alive with no members */
	argv_push(&hset, "", 0);
	argv_push(&hset, p->node_id, p->node_len);
	for (size_t i = 0; i < fields.n; i++) {
		argv_push(&hset, fields.v[i].room, fields.v[i].rl);
		argv_push(&hset, fields.v[i].user, fields.v[i].ul);
	}
	rconn_command_argv(p->cmd, cmd_reply_check, "HSET", hset.n, hset.v, hset.len);
	char ttl_ms[32];
	snprintf(ttl_ms, sizeof(ttl_ms), "%llu", (unsigned long long)(p->ttl * 1000));
	const char *px[] = { "PEXPIRE", p->hash_key, ttl_ms };
	rconn_command_argv(p->cmd, cmd_reply_check, "PEXPIRE", 3, px, NULL);
	const char *sadd[] = { "SADD", KEY_NODES, p->node_id };
	rconn_command_argv(p->cmd, cmd_reply_check, "SADD", 3, sadd, NULL);
	xadd(p, "F", p->buf.data ? p->buf.data : "", p->buf.len);
	p->n.writes++;
	argv_free(&hset);
	list_free(&fields);
}

static void dirty_clear(struct clp *p)
{
	for (uint32_t i = 0; i < p->dirty.cap; i++)
		if (p->dirty.slots[i].hash) {
			struct dirty *d = p->dirty.slots[i].entry;
			free(d->key);
			free(d);
		}
	hmap_free(&p->dirty);
}

/* Writes the coalesced local changes: one HSET, one HDEL, one XADD U. */
static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct clp *p = w->data;
	struct argv_build hset = { 0 }, hdel = { 0 };
	struct entry_list cnt = { 0 };

	(void)loop, (void)revents;
	if (p->draining || !rconn_ready(p->cmd) || p->dirty.len == 0)
		return; /* on reconnect publish_full writes everything */
	pbuf_reset(&p->buf);
	argv_push(&hset, "HSET", 4);
	argv_push(&hset, p->hash_key, strlen(p->hash_key));
	argv_push(&hdel, "HDEL", 4);
	argv_push(&hdel, p->hash_key, strlen(p->hash_key));
	for (uint32_t i = 0; i < p->dirty.cap; i++) {
		if (!p->dirty.slots[i].hash)
			continue;
		struct dirty *d = p->dirty.slots[i].entry;
		const char *room, *user;
		size_t rl, ul;
		if (presfmt_split(d->key, d->key_len, &room, &rl, &user, &ul) < 0)
			continue;
		presfmt_add(&p->buf, room, rl, user, ul, d->count);
		if (d->count) {
			char c[16];
			snprintf(c, sizeof(c), "%u", d->count);
			list_add(&cnt, c, strlen(c), "", 0, 0); /* keeps the text alive */
			argv_push(&hset, d->key, d->key_len);
			argv_push(&hset, cnt.v[cnt.n - 1].room, cnt.v[cnt.n - 1].rl);
		} else {
			argv_push(&hdel, d->key, d->key_len);
		}
	}
	if (hset.n > 2)
		rconn_command_argv(p->cmd, cmd_reply_check, "HSET", hset.n, hset.v, hset.len);
	if (hdel.n > 2)
		rconn_command_argv(p->cmd, cmd_reply_check, "HDEL", hdel.n, hdel.v, hdel.len);
	xadd(p, "U", p->buf.data, p->buf.len);
	p->n.writes++;
	argv_free(&hset);
	argv_free(&hdel);
	list_free(&cnt);
	dirty_clear(p);
}

void clp_local_changed(struct room *r, struct ruser *u)
{
	struct clp *p = r->srv->clp;
	char tmp[1024];

	if (!p || p->draining)
		return;
	size_t fl = presfmt_field(tmp, sizeof(tmp), r->name, r->name_len, u->name, u->name_len);
	if (!fl)
		return;
	struct hmap_name k = { tmp, fl };
	uint64_t h = hmap_hash_bytes(tmp, fl);
	struct dirty *d = hmap_get(&p->dirty, h, &k, name_match_dirty);
	if (!d) {
		d = xcalloc(1, sizeof(*d));
		d->key = xstrndup(tmp, fl);
		d->key_len = fl;
		hmap_put(&p->dirty, h, d);
	}
	d->count = u->conns;
	if (!ev_is_active(&p->flush_w)) {
		ev_timer_set(&p->flush_w, r->srv->cfg->presence_window_ms / 2000.0, 0);
		ev_timer_start(r->srv->loop, &p->flush_w);
	}
}

void clp_room_created(struct room *r)
{
	struct clp *p = r->srv->clp;

	if (!p)
		return;
	for (uint32_t i = 0; i < p->nodes.cap; i++) {
		if (!p->nodes.slots[i].hash)
			continue;
		struct rnode *n = p->nodes.slots[i].entry;
		struct hmap_name rk = { r->name, r->name_len };
		struct rroom *rr = hmap_get(&n->rooms, r->hash, &rk, name_match_room);
		if (!rr)
			continue;
		for (uint32_t j = 0; j < rr->users.cap; j++)
			if (rr->users.slots[j].hash) {
				struct rentry *e = rr->users.slots[j].entry;
				presence_remote(r, e->name, e->len,
						remote_total(p, r->name, r->name_len, e->name, e->len), true);
			}
	}
}

static void pexpire_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct clp *p = priv;
	(void)rc;
	/* 0: our hash is gone (Redis restarted empty, or it expired while we
	 * could not reach Redis): write it again, whole */
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && !p->draining)
		publish_full(p);
}

static void hb_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct clp *p = w->data;
	char ttl_ms[32];

	(void)loop, (void)revents;
	if (p->draining || !rconn_ready(p->cmd))
		return;
	snprintf(ttl_ms, sizeof(ttl_ms), "%llu", (unsigned long long)(p->ttl * 1000));
	const char *px[] = { "PEXPIRE", p->hash_key, ttl_ms };
	rconn_command_argv(p->cmd, pexpire_reply, p, 3, px, NULL);
	xadd(p, "H", "", 0);
}

static void cmd_ready(struct rconn *rc, void *ud)
{
	struct clp *p = ud;
	(void)rc;
	if (p->draining)
		return;
	/* Whatever changed while Redis was away: the whole state, which
	 * replaces ours at every other node. */
	dirty_clear(p);
	publish_full(p);
}

static void cmd_down(struct rconn *rc, void *ud, int was_ready, const char *why)
{
	(void)rc, (void)ud;
	if (was_ready)
		log_warn("cluster_presence", "connection=cmd event=down why=%s", log_q(why));
}

/* ---- reading the others ---- */

static void xread(struct clp *p);

static void apply_stream_entry(struct clp *p, const redisReply *fields)
{
	const char *node = NULL, *kind = NULL, *data = "";
	size_t nl = 0, dl = 0;

	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
			continue;
		if (k->str[0] == 'n')
			node = v->str, nl = v->len;
		else if (k->str[0] == 'k')
			kind = v->str;
		else if (k->str[0] == 'd')
			data = v->str, dl = v->len;
	}
	if (!node || !kind || (nl == p->node_len && !memcmp(node, p->node_id, nl)))
		return; /* ours, or not a presence entry */
	if (kind[0] == 'D') {
		struct rnode *n = node_get(p, node, nl, 0);
		if (n) {
			node_drop(p, n, "left");
			p->n.left++;
		}
		return;
	}
	struct rnode *n = node_get(p, node, nl, 1);
	n->deadline = ev_now(p->s->loop) + p->ttl;
	n->last_heard = ev_now(p->s->loop);
	if (kind[0] == 'H')
		return;
	struct entry_list l = { 0 };
	if (presfmt_parse(data, dl, list_entry, &l) < 0)
		log_warn("cluster_presence", "node=%s error=\"malformed entry\"", log_q(n->id));
	if (kind[0] == 'F')
		node_replace(p, n, &l);
	else
		for (size_t i = 0; i < l.n; i++)
			set_count(p, n, l.v[i].room, l.v[i].rl, l.v[i].user, l.v[i].ul, l.v[i].count);
	list_free(&l);
}

static void xread_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct clp *p = priv;

	(void)rc;
	/* NULL: lost; rconn answers every command in flight with NULL when
	 * the connection goes, so no reply from before a reconnect can come
	 * later (tail_down handles the loss) */
	if (!r || p->tail_state != T_TAILING)
		return;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
		const redisReply *stream = r->element[0];
		if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2) {
			const redisReply *entries = stream->element[1];
			for (size_t i = 0; i < entries->elements; i++) {
				const redisReply *e = entries->element[i];
				if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
				    e->element[0]->type != REDIS_REPLY_STRING)
					continue;
				snprintf(p->last_id, sizeof(p->last_id), "%s", e->element[0]->str);
				if (e->element[1]->type == REDIS_REPLY_ARRAY)
					apply_stream_entry(p, e->element[1]);
			}
		}
	} else if (r->type == REDIS_REPLY_ERROR) {
		log_warn("cluster_presence", "command=XREAD error=%s", log_q(r->str));
		rconn_reset(rc, "XREAD failed");
		return;
	}
	xread(p); /* nil: the block timed out; go on */
}

static void xread(struct clp *p)
{
	char block[16];
	snprintf(block, sizeof(block), "%d", XREAD_BLOCK_MS);
	const char *argv[] = { "XREAD", "COUNT", XREAD_COUNT, "BLOCK", block, "STREAMS", KEY_LOG,
			       p->last_id };
	rconn_command_argv(p->tail, xread_reply, p, 8, argv, NULL);
}

/* All HGETALL/PTTL replies in: start tailing. A node we knew whose hash is
 * not there is not dropped now: after Redis lost its data, every node's
 * hash is missing until that node's next heartbeat rewrites it (within a
 * third of the TTL), and dropping them would show their members leaving
 * and joining again. Its deadline stands: unheard, it expires as usual. */
static void load_done(struct clp *p)
{
	p->tail_state = T_TAILING;
	log_info("cluster_presence", "event=loaded nodes=%u from=%s", p->nodes.len, p->last_id);
	xread(p);
}

/* One node's load: HGETALL then PTTL, answered in that order. Both
 * callbacks hold it; the last one frees it. */
struct load_ctx {
	struct clp *p;
	int refs;
	char *id;
	size_t len;
	struct entry_list entries;
	int have_hash;
};

static void load_unref(struct load_ctx *lc)
{
	if (--lc->refs > 0)
		return;
	list_free(&lc->entries);
	free(lc->id);
	free(lc);
}

static void load_step_done(struct clp *p)
{
	if (--p->load_pending == 0)
		load_done(p);
}

static void hgetall_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct load_ctx *lc = priv;
	(void)rc;
	if (r && r->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			const redisReply *f = r->element[i], *v = r->element[i + 1];
			const char *room, *user;
			size_t rl, ul;
			if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			lc->have_hash = 1;
			if (f->len == 0 || presfmt_split(f->str, f->len, &room, &rl, &user, &ul) < 0)
				continue; /* the empty field: the marker */
			unsigned long c = strtoul(v->str, NULL, 10);
			if (c > 0 && c <= UINT32_MAX)
				list_add(&lc->entries, room, rl, user, ul, (uint32_t)c);
		}
	load_unref(lc);
}

static void pttl_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct load_ctx *lc = priv;
	struct clp *p = lc->p;

	if (r && p->tail_state == T_LOADING) {
		long long pttl = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
		if (lc->have_hash && pttl > 0) {
			struct rnode *n = node_get(p, lc->id, lc->len, 1);
			n->deadline = ev_now(p->s->loop) + (double)pttl / 1000.0;
			node_replace(p, n, &lc->entries);
		} else if (!lc->have_hash) {
			/* expired or never written: forget it in the set too */
			const char *srem[] = { "SREM", KEY_NODES, lc->id };
			size_t lens[] = { 4, strlen(KEY_NODES), lc->len };
			rconn_command_argv(rc, NULL, NULL, 3, srem, lens);
		}
		load_step_done(p);
	}
	load_unref(lc);
}

static void smembers_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct clp *p = priv;

	if (!r || p->tail_state != T_LOADING)
		return;
	p->load_pending = 1; /* until every command below is sent */
	if (r->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < r->elements; i++) {
			const redisReply *id = r->element[i];
			if (id->type != REDIS_REPLY_STRING ||
			    (id->len == p->node_len && !memcmp(id->str, p->node_id, id->len)))
				continue;
			char key[300];
			int kl = snprintf(key, sizeof(key), KEY_NODE_PREFIX "%.*s", (int)id->len, id->str);
			if (kl < 0 || (size_t)kl >= sizeof(key))
				continue;
			struct load_ctx *lc = xcalloc(1, sizeof(*lc));
			lc->p = p;
			lc->refs = 2;
			lc->id = xstrndup(id->str, id->len);
			lc->len = id->len;
			const char *hg[] = { "HGETALL", key }, *pt[] = { "PTTL", key };
			if (rconn_command_argv(rc, hgetall_reply, lc, 2, hg, NULL) < 0)
				lc->refs--;
			if (rconn_command_argv(rc, pttl_reply, lc, 2, pt, NULL) < 0) {
				/* not sent: the connection is going, and its
				 * down callback restarts the load */
				load_unref(lc);
				continue;
			}
			p->load_pending++;
		}
	load_step_done(p);
}

static void lastid_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct clp *p = priv;

	if (!r || p->tail_state != T_LOADING)
		return;
	/* XREVRANGE + - COUNT 1: the newest entry, or none ("0-0") */
	snprintf(p->last_id, sizeof(p->last_id), "0-0");
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
		snprintf(p->last_id, sizeof(p->last_id), "%s", r->element[0]->element[0]->str);
	const char *sm[] = { "SMEMBERS", KEY_NODES };
	rconn_command_argv(rc, smembers_reply, p, 2, sm, NULL);
}

static void tail_ready(struct rconn *rc, void *ud)
{
	struct clp *p = ud;

	p->tail_state = T_LOADING;
	const char *xr[] = { "XREVRANGE", KEY_LOG, "+", "-", "COUNT", "1" };
	rconn_command_argv(rc, lastid_reply, p, 6, xr, NULL);
}

static void tail_down(struct rconn *rc, void *ud, int was_ready, const char *why)
{
	struct clp *p = ud;
	(void)rc;
	p->tail_state = T_IDLE; /* expiry frozen until the reload */
	if (was_ready)
		log_warn("cluster_presence", "connection=tail event=down why=%s", log_q(why));
}

/* Once a second: remote nodes not heard within the TTL are dead. Only
 * while our tail is live: when it is not, silence is ours, not theirs. */
static void expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct clp *p = w->data;
	int again = 1;

	(void)revents;
	if (p->tail_state != T_TAILING)
		return;
	while (again) {
		again = 0;
		for (uint32_t i = 0; i < p->nodes.cap; i++) {
			if (!p->nodes.slots[i].hash)
				continue;
			struct rnode *n = p->nodes.slots[i].entry;
			if (ev_now(loop) > n->deadline) {
				node_drop(p, n, "expired");
				p->n.expired++;
				again = 1;
				break;
			}
		}
	}
}

/* ---- start, stop, what the dashboard shows ---- */

static int read_password(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(out, (int)cap, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int clp_start(struct server *s)
{
	const struct config *cfg = s->cfg;
	struct rurl_addr addr;
	char why[256], password[256] = "";

	if (!cfg->cluster)
		return 0;
	if (rurl_parse(cfg->cluster, &addr, why, sizeof(why)) < 0 ||
	    rurl_resolve(&addr, why, sizeof(why)) < 0) {
		log_error("cluster_presence", "error=%s", log_q(why));
		return -1;
	}
	/* rediss://: through the node's TLS relay (cluster/tlsrelay.h) */
	if (cluster_route(s, &addr) < 0) {
		log_error("cluster_presence", "error=%s", log_q("no TLS relay for rediss://"));
		return -1;
	}
	if (cfg->cluster_password_file &&
	    read_password(cfg->cluster_password_file, password, sizeof(password)) < 0) {
		log_error("cluster_presence", "password_file=%s error=%s",
			  log_q(cfg->cluster_password_file), log_q(strerror(errno)));
		return -1;
	}
	if (!password[0])
		snprintf(password, sizeof(password), "%s", addr.password);

	struct clp *p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->ttl = cfg->cluster_presence_ttl;
	const struct cluster_stats *st = cluster_stats(s);
	if (st && st->node_id) {
		/* the broker's (cluster/node.c): one name per node everywhere */
		snprintf(p->node_id, sizeof(p->node_id), "%s", st->node_id);
	} else if (cfg->node_id) {
		snprintf(p->node_id, sizeof(p->node_id), "%s", cfg->node_id);
	} else {
		char host[200] = "localhost";
		gethostname(host, sizeof(host) - 1);
		snprintf(p->node_id, sizeof(p->node_id), "%s:%u", host, cfg->port);
	}
	p->node_len = strlen(p->node_id);
	snprintf(p->hash_key, sizeof(p->hash_key), KEY_NODE_PREFIX "%s", p->node_id);
	snprintf(p->last_id, sizeof(p->last_id), "$");
	s->clp = p;

	ev_timer_init(&p->hb_w, hb_cb, p->ttl / 3, p->ttl / 3);
	p->hb_w.data = p;
	ev_timer_start(s->loop, &p->hb_w);
	ev_timer_init(&p->expire_w, expire_cb, 0.5, 0.5);
	p->expire_w.data = p;
	ev_timer_start(s->loop, &p->expire_w);
	ev_init(&p->flush_w, flush_cb);
	p->flush_w.data = p;

	struct rconn_opts o = { .connect_timeout = cfg->cluster_timeout_ms / 1000.0,
				.cmd_timeout = cfg->cluster_timeout_ms / 1000.0 };
	static const struct rconn_cbs cmd_cbs = { .ready = cmd_ready, .down = cmd_down };
	static const struct rconn_cbs tail_cbs = { .ready = tail_ready, .down = tail_down };
	char name[300];
	snprintf(name, sizeof(name), "parley-presence:%s", p->node_id);
	p->cmd = rconn_new(s->loop, &addr, password, name, &o, &cmd_cbs, p);
	snprintf(name, sizeof(name), "parley-presence-tail:%s", p->node_id);
	p->tail = rconn_new(s->loop, &addr, password, name, &o, &tail_cbs, p);
	rconn_set_cmd_timeout(p->tail, XREAD_BLOCK_MS / 1000.0 + o.cmd_timeout);
	log_info("cluster_presence", "node=%s ttl_s=%.0f", log_q(p->node_id), p->ttl);
	return 0;
}

void clp_drain(struct server *s)
{
	struct clp *p = s->clp;

	if (!p || p->draining)
		return;
	/* The others drop our members now rather than after the TTL; they
	 * are leaving anyway (the drain closes them). */
	if (rconn_ready(p->cmd)) {
		xadd(p, "D", "", 0);
		const char *del[] = { "DEL", p->hash_key };
		rconn_command_argv(p->cmd, NULL, NULL, 2, del, NULL);
		const char *srem[] = { "SREM", KEY_NODES, p->node_id };
		rconn_command_argv(p->cmd, NULL, NULL, 3, srem, NULL);
	}
	p->draining = 1;
}

void clp_stop(struct server *s)
{
	struct clp *p = s->clp;

	if (!p)
		return;
	ev_timer_stop(s->loop, &p->hb_w);
	ev_timer_stop(s->loop, &p->expire_w);
	ev_timer_stop(s->loop, &p->flush_w);
	rconn_free(&p->cmd);
	rconn_free(&p->tail);
	for (uint32_t i = 0; i < p->nodes.cap; i++) {
		if (!p->nodes.slots[i].hash)
			continue;
		struct rnode *n = p->nodes.slots[i].entry;
		for (uint32_t j = 0; j < n->rooms.cap; j++) {
			if (!n->rooms.slots[j].hash)
				continue;
			struct rroom *rr = n->rooms.slots[j].entry;
			for (uint32_t k = 0; k < rr->users.cap; k++)
				if (rr->users.slots[k].hash) {
					free(rr->users.slots[k].entry);
				}
			hmap_free(&rr->users);
			free(rr->name);
			free(rr);
		}
		hmap_free(&n->rooms);
		free(n->id);
		free(n);
	}
	hmap_free(&p->nodes);
	dirty_clear(p);
	pbuf_free(&p->buf);
	free(p);
	s->clp = NULL;
}

unsigned clp_nodes(struct server *s, void (*fn)(const struct clp_node_info *ni, void *ud), void *ud)
{
	struct clp *p = s->clp;
	struct clp_node_info ni;
	uint64_t mine = 0;
	unsigned n = 1;

	if (!p)
		return 0;
	for (uint32_t i = 0; i < s->rooms.cap; i++)
		if (s->rooms.slots[i].hash)
			mine += ((struct room *)s->rooms.slots[i].entry)->nmembers;
	ni.id = p->node_id;
	ni.alive = 1;
	ni.members = mine;
	ni.last_heard_s = 0;
	fn(&ni, ud);
	for (uint32_t i = 0; i < p->nodes.cap; i++) {
		if (!p->nodes.slots[i].hash)
			continue;
		struct rnode *rn = p->nodes.slots[i].entry;
		ni.id = rn->id;
		ni.alive = ev_now(s->loop) <= rn->deadline;
		ni.members = rn->members;
		ni.last_heard_s = ev_now(s->loop) - rn->last_heard;
		fn(&ni, ud);
		n++;
	}
	return n;
}

int clp_connected(struct server *s)
{
	return s->clp && s->clp->tail_state == T_TAILING;
}

struct feed_ctx {
	struct pbuf *b;
	int n;
};

static void feed_node(const struct clp_node_info *ni, void *ud)
{
	struct feed_ctx *fc = ud;
	char num[32];

	if (fc->n++)
		pbuf_addc(fc->b, ',');
	pbuf_adds(fc->b, "{\"id\":");
	pbuf_add_jstr(fc->b, ni->id, strlen(ni->id));
	pbuf_adds(fc->b, fc->n == 1 ? ",\"self\":true" : ",\"self\":false");
	pbuf_adds(fc->b, ni->alive ? ",\"alive\":true" : ",\"alive\":false");
	pbuf_adds(fc->b, ",\"members\":");
	pbuf_add_u64(fc->b, ni->members);
	snprintf(num, sizeof(num), "%.1f", ni->last_heard_s);
	pbuf_adds(fc->b, ",\"last_heard_s\":");
	pbuf_adds(fc->b, num);
	pbuf_addc(fc->b, '}');
}

void clp_feed_json(struct server *s, struct pbuf *b)
{
	const struct cluster_stats *st = cluster_stats(s);
	struct feed_ctx fc = { b, 0 };
	char num[32];

	if (!s->cfg->cluster) {
		pbuf_adds(b, "null");
		return;
	}
	pbuf_adds(b, "{\"node_id\":");
	const char *id = st && st->node_id ? st->node_id : s->clp ? s->clp->node_id : "";
	pbuf_add_jstr(b, id, strlen(id));
	pbuf_adds(b, st && st->redis_connected ? ",\"redis_connected\":true" : ",\"redis_connected\":false");
	pbuf_adds(b, st && st->publishing ? ",\"publishing\":true" : ",\"publishing\":false");
	pbuf_adds(b, clp_connected(s) ? ",\"presence_connected\":true" : ",\"presence_connected\":false");
	/* the Redis lag: now - the entry's time at its apply, per log shard */
	snprintf(num, sizeof(num), "%.2f", st ? st->lag_ms_max : 0.0);
	pbuf_adds(b, ",\"lag_ms_max\":");
	pbuf_adds(b, num);
	pbuf_adds(b, ",\"lag_ms\":[");
	for (unsigned i = 0; st && st->lag_ms && i < st->shards; i++) {
		if (i)
			pbuf_addc(b, ',');
		snprintf(num, sizeof(num), "%.2f", st->lag_ms[i]);
		pbuf_adds(b, num);
	}
	pbuf_adds(b, "],\"nodes\":[");
	clp_nodes(s, feed_node, &fc);
	pbuf_adds(b, "]}");
}

static void metric(struct pbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	metrics_head(b, name, type, help);
	pbuf_adds(b, name);
	pbuf_addc(b, ' ');
	pbuf_add_u64(b, v);
	pbuf_addc(b, '\n');
}

void clp_metrics(struct server *s, struct pbuf *b)
{
	struct clp *p = s->clp;
	uint64_t alive = 0, members = 0;

	if (!p)
		return;
	for (uint32_t i = 0; i < p->nodes.cap; i++) {
		if (!p->nodes.slots[i].hash)
			continue;
		const struct rnode *n = p->nodes.slots[i].entry;
		alive += ev_now(s->loop) <= n->deadline;
		members += n->members;
	}
	metric(b, "parley_cluster_presence_connected", "gauge",
	       "1 while the presence tail is live (0: remote presence frozen).", clp_connected(s));
	metric(b, "parley_cluster_presence_nodes", "gauge", "Other nodes heard within cluster_presence_ttl.",
	       alive);
	metric(b, "parley_cluster_presence_remote_members", "gauge",
	       "Room memberships held by the other nodes (their connections x rooms).", members);
	metric(b, "parley_cluster_presence_expired_total", "counter",
	       "Other nodes dropped after cluster_presence_ttl without a heartbeat.", p->n.expired);
	metric(b, "parley_cluster_presence_left_total", "counter",
	       "Other nodes dropped at once because they shut down cleanly.", p->n.left);
	metric(b, "parley_cluster_presence_writes_total", "counter",
	       "Presence change entries this node wrote to Redis.", p->n.writes);
}
