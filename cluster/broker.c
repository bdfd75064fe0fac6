/*
 * broker.c - the Redis broker: a publish becomes one EVALSHA of the
 * publish script (scripts.c) on the command connection, and waits in the
 * pending table until this node applies its entry (tail.c), which answers
 * the caller through cmd_publish_done.
 *
 * The pending table is bounded (cluster_pending_max: past it, overloaded)
 * and every entry has a deadline (cluster_timeout_ms): a publish whose
 * entry was not applied by then fails with unavailable. Its message may
 * still appear later (the script may have run): that is why clients retry
 * with the same idempotency key (docs/cluster.md).
 *
 * An entry names its pending publish by id (field 'x'), so the apply finds
 * it whether the script's reply came first or not; the reply matters only
 * for a duplicate key, which appends nothing and waits for the first
 * entry's offset to be applied here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "util.h"

static int pend_match(const void *entry, const void *key)
{
	return ((const struct cpend *)entry)->id == *(const uint64_t *)key;
}

static uint64_t pid_hash(uint64_t id)
{
	return hmap_hash_bytes(&id, sizeof(id));
}

struct cpend *cluster__pend_find(struct cluster *c, uint64_t id)
{
	return hmap_get(&c->pend, pid_hash(id), &id, pend_match);
}

/* Takes p out of the table and the list, and frees it. */
static void pend_drop(struct cluster *c, struct cpend *p)
{
	hmap_del(&c->pend, pid_hash(p->id), &p->id, pend_match);
	if (p->prev)
		p->prev->next = p->next;
	else
		c->p_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->p_tail = p->prev;
	c->npend--;
	c->ndup -= p->dup;
	c->st.pending = c->npend;
	free(p);
}

/* Answers p's caller and forgets p. */
void cluster__pend_finish(struct cluster *c, struct cpend *p, enum proto_err e, uint64_t seq,
			bool dup)
{
	struct pub_waiter w = p->w;
	struct moderation_caller mc = p->mc;
	int mod = p->mod;

	pend_drop(c, p);
	if (e == PROTO_EUNAVAILABLE)
		c->st.unavailable++;
	if (mod) {
		/* only failures come here: a success is answered by the
		 * apply's own commit (cluster__pend_take_mod) */
		mc.done(c->s, mc.a, mc.b, e,
			e == PROTO_EUNAVAILABLE ? "the cluster log is unreachable; the action may "
			"still be applied: check, or repeat it (it is idempotent)" : NULL, NULL);
		return;
	}
	cmd_publish_done(c->s, &w, e, seq, dup);
}

/* A moderation pending whose entry is being applied: forgets it and
 * returns its caller, which the apply's commit answers. */
struct moderation_caller cluster__pend_take_mod(struct cluster *c, struct cpend *p)
{
	struct moderation_caller mc = p->mc;

	pend_drop(c, p);
	return mc;
}

/* The script's reply (hiredis's; valid during the call only). */
static void script_reply(struct cluster *c, redisReply *r, uint64_t id)
{
	struct cpend *p = cluster__pend_find(c, id);

	if (!p)
		return; /* applied already, or timed out */
	if (!r) {
		cluster__pend_finish(c, p, PROTO_EUNAVAILABLE, 0, false);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		if (!strncmp(r->str, "NOSCRIPT", 8)) {
			/* Redis restarted or flushed its script cache between our
			 * SCRIPT LOAD and now: reload, and let the caller retry. */
			c->cmd_ready = 0;
			rconn_reset(c->cmd, "NOSCRIPT");
		} else if (strncmp(r->str, "HOLD", 4)) {
			cluster__log_cmd_error(c, "publish", r);
		}
		cluster__pend_finish(c, p, PROTO_EUNAVAILABLE, 0, false);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		cluster__log_cmd_error(c, "publish", r);
		cluster__pend_finish(c, p, PROTO_EINTERNAL, 0, false);
		return;
	}
	p->replied = 1;
	p->dup = r->element[0]->integer == 0;
	c->ndup += p->dup;
	p->seq = (uint64_t)r->element[1]->integer;
	p->offset = (uint64_t)r->element[2]->integer;
	if (p->dup && c->sh[p->shard].applied >= p->offset)
		cluster__pend_finish(c, p, PROTO_OK, p->seq, true);
	/* else: the apply of our entry (or of the first one's offset) answers */
}

static void script_cb(struct rconn *rc, redisReply *r, void *priv)
{
	struct cluster *c = rconn_ud(rc);

	script_reply(c, r, (uint64_t)(uintptr_t)priv);
}

/* Sends a script call for pending entry pe (which it takes: freed if the
 * command cannot be queued) and tracks pe until apply or its deadline. */
static enum proto_err send_script(struct cluster *c, struct cpend *pe, int argc,
				  const char **argv, const size_t *lens)
{
	if (rconn_command_argv(c->cmd, script_cb, (void *)(uintptr_t)pe->id, argc, argv, lens) < 0) {
		free(pe);
		c->st.unavailable++;
		return PROTO_EUNAVAILABLE;
	}
	hmap_put(&c->pend, pid_hash(pe->id), pe);
	pe->prev = c->p_tail;
	if (c->p_tail)
		c->p_tail->next = pe;
	else
		c->p_head = pe;
	c->p_tail = pe;
	c->npend++;
	c->st.pending = c->npend;
	return PROTO_OK;
}

enum proto_err cluster_publish(struct server *s, const struct pub_req *p)
{
	struct cluster *c = s->cluster;
	char floor[24], shard[16], ts[24], pid[24], maxlen[16], window[24], idem[512];
	char okey[24];

	if (c->failed || !c->cmd_ready || !rconn_ready(c->cmd) || c->restoring) {
		c->st.unavailable++;
		return PROTO_EUNAVAILABLE;
	}
	if (c->npend >= s->cfg->cluster_pending_max)
		return PROTO_EOVERLOADED;
	if (p->persist) {
		struct store_stats st;
		store_get_stats(s->store, &st);
		if (st.failing)
			return PROTO_ESTORAGE_FAILED;
	}
	int64_t now = util_now_ms();
	uint64_t last = p->persist ? store_last_seq(s->store, p->room) : 0;
	/* The size limit, with this node's idea of the next seq (the log's
	 * may be a digit longer after a jump; the apply never refuses). */
	struct pbuf *enc = server_enc_begin(s);
	proto_enc_message(enc, p->room, p->room_len, p->persist ? last + 1 : 0, now, p->from,
			  p->from_len, p->data, p->data_len);
	size_t len = enc->len;
	server_enc_end(s);
	if (len > s->cfg->max_message_size)
		return PROTO_ETOO_LARGE;

	unsigned k = rurl_shard(p->room, p->room_len, c->k);
	struct cpend *pe = xcalloc(1, sizeof(*pe));
	pe->id = ++c->next_pid;
	if (p->waiter)
		pe->w = *p->waiter;
	pe->deadline = ev_now(s->loop) + s->cfg->cluster_timeout_ms / 1000.0;
	pe->shard = k;

	snprintf(floor, sizeof(floor), "%llu", (unsigned long long)last);
	snprintf(shard, sizeof(shard), "%u", k);
	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	snprintf(pid, sizeof(pid), "%llu", (unsigned long long)pe->id);
	snprintf(maxlen, sizeof(maxlen), "%u", s->cfg->cluster_log_window);
	snprintf(window, sizeof(window), "%llu", (unsigned long long)s->cfg->idempotency_window * 1000);
	size_t ilen = 0;
	if (p->key) {
		/* room and key are bounded (128 and 64 bytes) */
		ilen = (size_t)snprintf(idem, sizeof(idem), "parley:idem:%.*s:", (int)p->room_len,
					p->room);
		memcpy(idem + ilen, p->key, p->key_len);
		ilen += p->key_len;
	} else {
		ilen = (size_t)snprintf(idem, sizeof(idem), "parley:idem:-");
	}
	snprintf(okey, sizeof(okey), "%s", p->persist ? "1" : "0");
	char except[24];
	snprintf(except, sizeof(except), "%llu",
		 (unsigned long long)(p->waiter ? p->waiter->except : 0));
	const char *argv[22] = {
		"EVALSHA", c->sha_pub, "5", "parley:seq", "parley:off", c->stream_keys[k], idem,
		"parley:hold", p->room, okey, floor, shard, ts, p->from, p->data, c->node_id, pid,
		maxlen, p->key ? "1" : "0", window, p->key ? p->key : "", except,
	};
	size_t lens[22];
	for (int i = 0; i < 22; i++)
		lens[i] = i == 6 || i == 8 || i == 13 || i == 14 || i == 20 ? 0 : strlen(argv[i]);
	lens[6] = ilen;             /* the key is bytes, not a C string */
	lens[8] = p->room_len;
	lens[13] = p->from_len;
	lens[14] = p->data_len;     /* s->data is not NUL-terminated */
	lens[20] = p->key ? p->key_len : 0;
	return send_script(c, pe, 22, argv, lens);
}

enum proto_err cluster_moderate(struct server *s, const struct cluster_mod *m,
				const struct moderation_caller *caller)
{
	struct cluster *c = s->cluster;
	char shard[16], ts[24], pid[24], maxlen[16], kind[2] = { m->kind, 0 }, seq[24], until[24];

	if (c->failed || !c->cmd_ready || !rconn_ready(c->cmd) || c->restoring) {
		c->st.unavailable++;
		return PROTO_EUNAVAILABLE;
	}
	if (c->npend >= s->cfg->cluster_pending_max)
		return PROTO_EOVERLOADED;
	/* A delete is ordered with its room's messages (the message it
	 * deletes is before it in the same stream); the user-wide actions
	 * all go to shard 0, so they are ordered among themselves (a ban
	 * then an unban apply in that order everywhere). */
	unsigned k = m->kind == 'd' ? rurl_shard(m->room, m->room_len, c->k) : 0;
	struct cpend *pe = xcalloc(1, sizeof(*pe));
	pe->id = ++c->next_pid;
	pe->mod = 1;
	pe->mc = *caller;
	pe->deadline = ev_now(s->loop) + s->cfg->cluster_timeout_ms / 1000.0;
	pe->shard = k;

	snprintf(shard, sizeof(shard), "%u", k);
	snprintf(ts, sizeof(ts), "%lld", (long long)util_now_ms());
	snprintf(pid, sizeof(pid), "%llu", (unsigned long long)pe->id);
	snprintf(maxlen, sizeof(maxlen), "%u", s->cfg->cluster_log_window);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)m->seq);
	snprintf(until, sizeof(until), "%lld", (long long)m->until);
	const char *argv[17] = {
		"EVALSHA", c->sha_mod, "3", "parley:off", c->stream_keys[k], "parley:hold",
		shard, ts, c->node_id, pid, maxlen, kind, m->room ? m->room : "", seq,
		m->user ? m->user : "", until, m->reason ? m->reason : "",
	};
	size_t lens[17];
	for (int i = 0; i < 17; i++)
		lens[i] = strlen(argv[i]);
	lens[12] = m->room ? m->room_len : 0; /* a protocol room is not NUL-terminated */
	return send_script(c, pe, 17, argv, lens);
}

/* Duplicates waiting for shard's offset: answered once it is applied. */
void cluster__pending_offsets(struct cluster *c, unsigned shard)
{
	struct cpend *p = c->p_head, *next;

	if (!c->ndup)
		return;
	for (; p; p = next) {
		next = p->next;
		if (p->dup && p->shard == shard && p->offset <= c->sh[shard].applied)
			cluster__pend_finish(c, p, PROTO_OK, p->seq, true);
	}
}

void cluster__pending_fail_all(struct cluster *c, enum proto_err e)
{
	while (c->p_head)
		cluster__pend_finish(c, c->p_head, e, 0, false);
}

/* Fails publishes past their deadline, oldest first. */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cluster *c = w->data;
	ev_tstamp now = ev_now(loop);

	(void)revents;
	while (c->p_head && c->p_head->deadline <= now) {
		c->st.timeouts++;
		cluster__pend_finish(c, c->p_head, PROTO_EUNAVAILABLE, 0, false);
	}
}

void cluster__broker_init(struct cluster *c)
{
	ev_timer_init(&c->sweep_w, sweep_cb, 0.05, 0.05);
	c->sweep_w.data = c;
	ev_timer_start(c->s->loop, &c->sweep_w);
}

void cluster__broker_stop(struct cluster *c)
{
	ev_timer_stop(c->s->loop, &c->sweep_w);
	cluster__pending_fail_all(c, PROTO_EUNAVAILABLE);
	hmap_free(&c->pend);
}
