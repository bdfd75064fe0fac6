/*
 * tail.c - the log tail and the apply step of a cluster node.
 *
 * Its own connection loops XREAD BLOCK 1000 COUNT n over every shard's
 * stream, from this node's applied positions. Each entry is applied in
 * stream order: its shard offset must be the last applied + 1. One that is
 * not is either a re-append of an entry this node already has (offset <=
 * last: a restore after a Redis restart; skipped) or a gap: the entries in
 * between were trimmed away (this node was away longer than the log
 * window) or Redis lost them. A gap is never papered over: the node fails
 * closed (cluster__fail_closed) and must be resynchronised.
 *
 * Applying is store_apply (the message with the log's seq, and the
 * position, in one transaction), then the same cache and fan-out as a
 * single node (cmd_apply_message), then the answer to this node's own
 * publisher, which therefore never overtakes its own copy.
 *
 * Back-pressure: a new XREAD is sent only while the store's queue is less
 * than half full, so a slow disk slows the tail instead of growing memory.
 * After a read that brought entries, the next waits cluster_read_delay_us
 * (read_cb) so a busy log is read a few entries at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "conn.h"
#include "log.h"
#include "moderation.h"
#include "server.h"
#include "util.h"

static void tail_read(struct cluster *c);

/* The fields of one entry, pointing into hiredis's reply. */
struct entry {
	const char *id;
	size_t id_len;
	const char *room, *from, *data, *node, *key;
	size_t room_len, from_len, data_len, key_len;
	uint64_t seq, off, pid, except;
	int64_t ts;
	int has_off;
	/* a moderation entry (scripts.c, moderate): kind, room, seq, user,
	 * until, reason */
	char mkind;
	const char *mroom, *muser, *mreason;
	size_t mroom_len;
	uint64_t mseq;
	int64_t muntil;
};

static uint64_t num(const redisReply *v)
{
	uint64_t n = 0;
	for (size_t i = 0; i < v->len && v->str[i] >= '0' && v->str[i] <= '9'; i++)
		n = n * 10 + (uint64_t)(v->str[i] - '0');
	return n;
}

/* Reads entry e from [id, [f, v, ...]]. Returns 0, or -1 if malformed. */
static int parse_entry(const redisReply *r, struct entry *e)
{
	memset(e, 0, sizeof(*e));
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
		return -1;
	e->id = r->element[0]->str;
	e->id_len = r->element[0]->len;
	const redisReply *f = r->element[1];
	e->room = e->from = e->data = e->node = "";
	for (size_t i = 0; i + 1 < f->elements; i += 2) {
		const redisReply *k = f->element[i], *v = f->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
			return -1;
		switch (k->str[0]) {
		case 'r': e->room = v->str; e->room_len = v->len; break;
		case 's': e->seq = num(v); break;
		case 'o': e->off = num(v); e->has_off = 1; break;
		case 't': e->ts = (int64_t)num(v); break;
		case 'f': e->from = v->str; e->from_len = v->len; break;
		case 'd': e->data = v->str; e->data_len = v->len; break;
		case 'n': e->node = v->str; break;
		case 'x': e->pid = num(v); break;
		case 'e': e->except = num(v); break;
		case 'k': e->key = v->str; e->key_len = v->len; break;
		case 'm': e->mkind = v->len == 1 ? v->str[0] : '?'; break;
		case 'a': e->mroom = v->str; e->mroom_len = v->len; break;
		case 'q': e->mseq = num(v); break;
		case 'u': e->muser = v->str; break; /* hiredis ends strings with NUL */
		case 'w': e->muntil = (int64_t)num(v); break;
		case 'y': e->mreason = v->str; break;
		default: break;
		}
	}
	if (e->key_len > STORE_KEY_MAX)
		return -1;
	if (!e->has_off || e->id_len > STORE_POS_ID_MAX || strlen(e->id) != e->id_len ||
	    e->room_len > 128 || (e->seq && (!e->room_len || !e->data_len)))
		return -1;
	return 0;
}

/* Shard k's read position becomes e's id (checked to fit by parse_entry;
 * a memcpy, not snprintf: this runs for every entry). */
static void set_id(struct cshard *sh, const struct entry *e)
{
	memcpy(sh->id, e->id, e->id_len);
	sh->id[e->id_len] = '\0';
}

/* Moves shard k's position past entry e (done applying it). */
static void applied(struct cluster *c, unsigned k, const struct entry *e)
{
	struct cshard *sh = &c->sh[k];

	sh->applied = e->off;
	set_id(sh, e);
	sh->lag_ms = (double)(util_now_ms() - e->ts);
	c->lag[k] = sh->lag_ms;
	c->st.applied++;
	c->applied_this_run++;
}

/* Applies moderation entry e of shard k (its offset is the next one): the
 * action goes to the store's queue first, then the position (a filler:
 * no row), so the writer commits the action no later than the position
 * and a kill -9 between them replays the entry (every action is
 * idempotent: a delete of a tombstone, the same ban, an unban, an erase
 * of what is left). Only-sender and not-found are decided here, against
 * this node's copy at this log position: the same answer on every node;
 * the origin node's caller hears its own node's. */
static int apply_mod(struct cluster *c, unsigned k, const struct entry *e)
{
	struct server *s = c->s;
	struct cluster_mod cm = {
		.kind = e->mkind, .room = e->mroom ? e->mroom : "", .room_len = e->mroom_len,
		.seq = e->mseq, .user = e->muser && e->muser[0] ? e->muser : NULL,
		.until = e->muntil, .reason = e->mreason && e->mreason[0] ? e->mreason : NULL,
	};
	struct cpend *p = NULL;
	if (e->pid > c->pid_base && !strcmp(e->node, c->node_id))
		p = cluster__pend_find(c, e->pid);
	if (p && !p->mod)
		p = NULL; /* cannot happen: ids are unique within a run */
	store_mod_unbounded(s->store, 1); /* bounded by the tail's back-pressure */
	int rc = moderation_apply(s, &cm, p ? &p->mc : NULL);
	store_mod_unbounded(s->store, 0);
	if (rc < 0) {
		cluster__fail_closed(c, "the store refused a moderation entry (queue full or "
				     "disk failing)");
		return -1;
	}
	if (p)
		cluster__pend_take_mod(c, p); /* moderation_apply copied its caller */
	/* Its fields go with the position (cluster_mods), for a restore:
	 * kind, room, seq, user, until, reason, each ended by NUL (none holds
	 * a NUL: names and rooms are checked, a reason is used as a C string). */
	struct pbuf b = { 0 };
	pbuf_addc(&b, e->mkind);
	pbuf_addc(&b, '\0');
	pbuf_add(&b, cm.room, cm.room_len);
	pbuf_addc(&b, '\0');
	pbuf_add_u64(&b, e->mseq);
	pbuf_addc(&b, '\0');
	pbuf_adds(&b, e->muser ? e->muser : "");
	pbuf_addc(&b, '\0');
	pbuf_add_i64(&b, e->muntil);
	pbuf_addc(&b, '\0');
	pbuf_adds(&b, e->mreason ? e->mreason : "");
	pbuf_addc(&b, '\0');
	struct store_apply_req a = {
		.room = "", .ts = e->ts, .from = "", .data = "", .shard = k, .offset = e->off,
		.id = e->id, .mod = b.data, .mod_len = b.len,
	};
	rc = store_apply(s->store, &a);
	pbuf_free(&b);
	if (rc != STORE_OK) {
		cluster__fail_closed(c, "store_apply refused an entry");
		return -1;
	}
	applied(c, k, e);
	return 0;
}

/* Applies one entry of shard k. Returns 0, or -1 after failing closed. */
static int apply_entry(struct cluster *c, unsigned k, const struct entry *e)
{
	struct server *s = c->s;
	struct cshard *sh = &c->sh[k];

	if (e->off <= sh->applied) {
		/* Already applied: a restore re-appended it. Move the read
		 * position past it (not stored: re-reading it is harmless). */
		set_id(sh, e);
		c->st.skipped++;
		return 0;
	}
	if (e->off != sh->applied + 1) {
		char why[200];
		snprintf(why, sizeof(why), "shard %u: next entry has offset %llu, last applied %llu",
			 k, (unsigned long long)e->off, (unsigned long long)sh->applied);
		cluster__fail_closed(c, why);
		return -1;
	}
	if (e->mkind)
		return apply_mod(c, k, e);
	uint64_t seq = e->seq;
	if (seq && e->room_len && seq <= store_last_seq(s->store, e->room)) {
		/* The log can only repeat a seq if it was given two messages
		 * under one seq; never deliver a second one. */
		log_error("cluster_seq_repeat", "room=%s seq=%llu", log_q(e->room),
			  (unsigned long long)seq);
		seq = 0;
	}
	struct cpend *p = NULL;
	/* Ours, from this run: pids start at a clock-based base each run, so
	 * an entry a previous run of this node published is not taken for a
	 * pending publish (or a connection) of this one. */
	int mine = e->pid > c->pid_base && !strcmp(e->node, c->node_id);
	if (mine)
		p = cluster__pend_find(c, e->pid);
	uint64_t ticket = p && p->w.kind == PUB_W_CONN ? p->w.ticket : 0;
	struct store_apply_req a = {
		.room = e->room_len ? e->room : "", .seq = seq, .ts = e->ts,
		.from = e->from, .data = e->data, .data_len = e->data_len,
		.key = e->key_len ? e->key : NULL, .key_len = e->key_len,
		.ticket = seq ? ticket : 0, .shard = k, .offset = e->off, .id = e->id,
	};
	if (store_apply(s->store, &a) != STORE_OK) {
		cluster__fail_closed(c, "store_apply refused an entry");
		return -1;
	}
	/* A filler (restore of a lost volatile or deleted entry) or a
	 * repeated seq moves the position only. */
	if (e->room_len && (seq || !e->seq)) {
		/* echo:false holds on the origin node even for a publish that
		 * timed out (its pending entry is gone, the entry says who) */
		struct conn *except = mine && e->except ? conn_by_serial(s, e->except) : NULL;
		cmd_apply_message(s, e->room, e->room_len, seq, e->ts, e->from, e->from_len,
				  e->data, e->data_len, except);
	}
	applied(c, k, e);
	if (p)
		cluster__pend_finish(c, p, PROTO_OK, seq, false);
	return 0;
}

/* Shard number of "parley:log:<k>", or -1. */
static int stream_shard(const struct cluster *c, const redisReply *name)
{
	if (name->type != REDIS_REPLY_STRING || name->len < 12 ||
	    memcmp(name->str, "parley:log:", 11))
		return -1;
	uint64_t k = 0;
	for (size_t i = 11; i < name->len; i++) {
		if (name->str[i] < '0' || name->str[i] > '9')
			return -1;
		k = k * 10 + (uint64_t)(name->str[i] - '0');
	}
	return k < c->k ? (int)k : -1;
}

static void read_cb(struct rconn *rc, redisReply *r, void *priv)
{
	struct cluster *c = rconn_ud(rc);

	(void)priv;
	c->reading = 0;
	if (!r)
		return; /* lost: tail_ready resumes */
	if (r->type == REDIS_REPLY_ERROR) {
		cluster__log_cmd_error(c, "XREAD", r);
		rconn_reset(rc, "XREAD error");
		return;
	}
	int coalesce = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		double lag = 0;
		/* Entries arrived: pause before the next read so that it
		 * brings several, unless a shard filled its COUNT (a backlog:
		 * read on at once). */
		coalesce = c->s->cfg->cluster_read_delay_us > 0;
		for (size_t i = 0; i < r->elements && !c->failed; i++) {
			const redisReply *st = r->element[i];
			if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
				continue;
			int k = stream_shard(c, st->element[0]);
			const redisReply *ents = st->element[1];
			if (k < 0 || ents->type != REDIS_REPLY_ARRAY)
				continue;
			if (ents->elements >= c->s->cfg->cluster_read_count)
				coalesce = 0;
			for (size_t j = 0; j < ents->elements && !c->failed; j++) {
				struct entry e;
				if (parse_entry(ents->element[j], &e) < 0) {
					cluster__fail_closed(c, "malformed log entry");
					break;
				}
				if (apply_entry(c, (unsigned)k, &e) < 0)
					break;
			}
			cluster__pending_offsets(c, (unsigned)k);
		}
		for (unsigned k = 0; k < c->k; k++)
			if (c->lag[k] > lag)
				lag = c->lag[k];
		c->st.lag_ms_max = lag;
	}
	/* NIL: BLOCK timed out with nothing new */
	if (coalesce && !c->failed) {
		/* At 2,000 entries/s a read per entry costs each node and
		 * Redis a round trip per entry (command, reply, two wake-ups);
		 * a pause of about an entry's interval lets the next read take
		 * what came meanwhile in one go, for at most the pause added
		 * to delivery latency. An entry arriving while idle is still
		 * read at once (the XREAD BLOCK in flight returns with it). */
		if (!ev_is_active(&c->tail_w)) {
			ev_timer_set(&c->tail_w, c->s->cfg->cluster_read_delay_us / 1e6, 0);
			ev_timer_start(c->s->loop, &c->tail_w);
		}
		return;
	}
	tail_read(c);
}

/* Appends "$<n>\r\n<s>\r\n" to buf at len (room checked by the caller);
 * returns the new length. */
static size_t resp_bulk(char *buf, size_t len, const char *s, size_t n)
{
	char digits[24];
	int i = 0;
	size_t v = n;

	do /* not sprintf: this runs for every id of every read */
		digits[i++] = (char)('0' + v % 10);
	while ((v /= 10));
	buf[len++] = '$';
	while (i)
		buf[len++] = digits[--i];
	buf[len++] = '\r';
	buf[len++] = '\n';
	memcpy(buf + len, s, n);
	memcpy(buf + len + n, "\r\n", 2);
	return len + n + 2;
}

/* Formats the part of the tail's XREAD that never changes, once: XREAD
 * COUNT n BLOCK 1000 STREAMS and the K stream names. A read then only
 * appends the K ids (tail_read): formatting the whole command from an
 * argv each time was about 8,000 instructions a read, and at 200
 * entries/s a read per entry. The buffer has room for K ids of at most
 * STORE_POS_ID_MAX bytes. */
static void xread_head(struct cluster *c)
{
	char count[16];
	snprintf(count, sizeof(count), "%u", c->s->cfg->cluster_read_count);
	const char *fixed[] = { "XREAD", "COUNT", count, "BLOCK", "1000", "STREAMS" };
	size_t cap = 64 + sizeof(count);
	for (unsigned k = 0; k < c->k; k++)
		cap += 2 * 32 + strlen(c->stream_keys[k]) + STORE_POS_ID_MAX;
	c->xr_buf = xmalloc(cap);
	c->xr_cap = cap;
	size_t len = (size_t)sprintf(c->xr_buf, "*%u\r\n", 6 + 2 * c->k);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		len = resp_bulk(c->xr_buf, len, fixed[i], strlen(fixed[i]));
	for (unsigned k = 0; k < c->k; k++)
		len = resp_bulk(c->xr_buf, len, c->stream_keys[k], strlen(c->stream_keys[k]));
	c->xr_head = len;
}

static void tail_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	tail_read(w->data);
}

/* Sends the next XREAD, unless one is in flight, the store is behind (then
 * in 20 ms), or the node failed closed. */
static void tail_read(struct cluster *c)
{
	struct server *s = c->s;

	if (c->reading || c->failed || !c->tail || !rconn_ready(c->tail))
		return;
	if (store_queue_depth(s->store) > s->cfg->store_queue_messages / 2) {
		if (!ev_is_active(&c->tail_w)) {
			ev_timer_set(&c->tail_w, 0.02, 0);
			ev_timer_start(s->loop, &c->tail_w);
		}
		return;
	}
	if (!c->xr_head)
		xread_head(c);
	/* the head, then each shard's id as a bulk string */
	size_t len = c->xr_head;
	for (unsigned k = 0; k < c->k; k++)
		len = resp_bulk(c->xr_buf, len, c->sh[k].id, strlen(c->sh[k].id));
	if (rconn_command_resp(c->tail, read_cb, NULL, c->xr_buf, len) == 0)
		c->reading = 1;
}

void cluster__tail_ready(struct rconn *rc, void *ud)
{
	struct cluster *c = ud;

	(void)rc;
	c->st.tail_connected = true;
	tail_read(c);
}

void cluster__tail_down(struct rconn *rc, void *ud, int was_ready, const char *why)
{
	struct cluster *c = ud;

	(void)rc;
	c->reading = 0;
	c->st.tail_connected = false;
	if (was_ready)
		log_warn("cluster_tail_lost", "error=%s", log_q(why));
}

void cluster__tail_init(struct cluster *c)
{
	ev_timer_init(&c->tail_w, tail_timer_cb, 0, 0);
	c->tail_w.data = c;
	for (unsigned k = 0; k < c->k; k++) {
		struct store_pos pos;
		store_position(c->s->store, k, &pos);
		c->sh[k].applied = pos.offset;
		snprintf(c->sh[k].id, sizeof(c->sh[k].id), "%s", pos.id);
	}
}

void cluster__tail_stop(struct cluster *c)
{
	ev_timer_stop(c->s->loop, &c->tail_w);
	free(c->xr_buf);
	c->xr_buf = NULL;
	c->xr_head = c->xr_cap = 0;
}
