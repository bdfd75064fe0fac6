/* room.c - rooms, two-way membership index, fan-out, history cache (room.h). */
#include "room.h"
#include "presence.h"   /* cluster/: clp_room_created */

#include <stdlib.h>
#include <string.h>

#include "catchup.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "server.h"
#include "util.h"

static int room_match(const void *entry, const void *key)
{
	const struct room *r = entry;
	const struct hmap_name *k = key;

	if (k->n != r->name_len)
		return 0;
	if (k->n <= ROOM_HEAD)
		return memcmp(k->s, r->name_head, k->n) == 0;
	return memcmp(k->s, r->name_head, ROOM_HEAD) == 0 &&
	       memcmp(k->s + ROOM_HEAD, r->name + ROOM_HEAD, k->n - ROOM_HEAD) == 0;
}

static int member_match(const void *entry, const void *key)
{
	return ((const struct member *)entry)->room == key;
}

/* ---- history cache: per-room ring of recent frames, one global byte
 * budget over all rings, rooms evicted least recently used first ---- */

/* What a cached frame pins: the struct, the header room and the payload. */
static size_t frame_cost(const struct frame *f)
{
	return sizeof(*f) + FRAME_HEADROOM + f->len;
}

static void lru_unlink(struct server *s, struct room *r)
{
	if (r->lru_prev)
		r->lru_prev->lru_next = r->lru_next;
	else if (s->cache_lru == r)
		s->cache_lru = r->lru_next;
	if (r->lru_next)
		r->lru_next->lru_prev = r->lru_prev;
	else if (s->cache_lru_tail == r)
		s->cache_lru_tail = r->lru_prev;
	r->lru_prev = r->lru_next = NULL;
}

/* Moves r to the front (most recently used). O(1). */
static void lru_touch(struct server *s, struct room *r)
{
	if (s->cache_lru == r)
		return;
	lru_unlink(s, r);
	r->lru_next = s->cache_lru;
	if (s->cache_lru)
		s->cache_lru->lru_prev = r;
	s->cache_lru = r;
	if (!s->cache_lru_tail)
		s->cache_lru_tail = r;
}

static void cache_drop_oldest(struct room *r)
{
	struct frame **slot = &r->tail[r->tail_head];

	r->srv->cache_bytes -= frame_cost(*slot);
	frame_unref(slot);
	r->tail_head = (r->tail_head + 1) % r->tail_cap;
	r->tail_first++;
	r->tail_count--;
}

/* Drops r's whole cache, ring included, and takes it off the LRU list. */
static void cache_clear(struct room *r)
{
	struct server *s = r->srv;

	while (r->tail_count)
		cache_drop_oldest(r);
	if (r->tail) {
		s->cache_bytes -= (uint64_t)r->tail_cap * sizeof(*r->tail);
		free(r->tail);
		r->tail = NULL;
		r->tail_cap = 0;
	}
	lru_unlink(s, r);
}

/* Back under the budget: other rooms' caches go first, least recently
 * used first; r (just added to) loses only its oldest frames, or all of
 * them if even one frame does not fit. */
static void cache_enforce(struct server *s, struct room *r)
{
	uint64_t budget = s->cfg->history_cache_bytes;

	while (s->cache_bytes > budget) {
		struct room *victim = s->cache_lru_tail;
		if (victim && victim != r) {
			cache_clear(victim);
			s->stats.cache_evictions++;
		} else if (r->tail_count > 1) {
			cache_drop_oldest(r);
		} else {
			cache_clear(r);
			s->stats.cache_evictions++;
			break;
		}
	}
}

struct room *room_find(struct server *s, const char *name, size_t len)
{
	struct hmap_name k = { name, len };
	return hmap_get(&s->rooms, hmap_hash_bytes(name, len), &k, room_match);
}

struct member *room_member(struct conn *c, struct room *r)
{
	/* the last one found first: a chat client publishes to one room
	 * over and over (the table's slots would be one more cache miss) */
	struct member *m = c->last_member;
	if (m && m->room == r)
		return m;
	m = hmap_get(&c->rooms, hmap_hash_ptr(r), r, member_match);
	if (m)
		c->last_member = m;
	return m;
}

static struct room *room_create(struct server *s, const char *name, size_t len)
{
	struct room *r = xcalloc_aligned(64, sizeof(*r));

	r->srv = s;
	r->name = xstrndup(name, len);
	r->name_len = len;
	memcpy(r->name_head, name, len < ROOM_HEAD ? len : ROOM_HEAD);
	r->hash = hmap_hash_bytes(name, len);
	hmap_put(&s->rooms, r->hash, r);
	clp_room_created(r); /* cluster: the users present on other nodes */
	return r;
}

static void room_free(struct room *r)
{
	struct hmap_name k = { r->name, r->name_len };

	hmap_del(&r->srv->rooms, r->hash, &k, room_match);
	presence_free(r);
	cache_clear(r);
	free(r->members);
	free(r->mconn);
	free(r->name);
	free(r);
}

struct member *room_join(struct server *s, struct conn *c, const char *name,
			 size_t len, bool presence)
{
	struct room *r = room_find(s, name, len);
	struct member *m = xcalloc(1, sizeof(*m));

	if (!r)
		r = room_create(s, name, len);
	if (r->nmembers == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4;
		r->members = xrealloc(r->members, r->cap * sizeof(*r->members));
		r->mconn = xrealloc(r->mconn, r->cap * sizeof(*r->mconn));
	}
	m->room = r;
	m->conn = c;
	m->idx = r->nmembers;
	r->members[r->nmembers++] = m;
	room_slot(m);
	hmap_put(&c->rooms, hmap_hash_ptr(r), m);
	m->user = presence_add(r, c->name, c->name_len);
	room_set_presence(m, presence);
	return m;
}

void room_leave(struct member *m)
{
	struct room *r = m->room;
	struct conn *c = m->conn;

	room_set_presence(m, false);
	hmap_del(&c->rooms, hmap_hash_ptr(r), r, member_match);
	if (c->last_member == m)
		c->last_member = NULL;
	/* Swap the last member into the hole. */
	struct member *last = r->members[--r->nmembers];
	r->members[m->idx] = last;
	last->idx = m->idx;
	room_slot(last);
	presence_remove(r, m->user);
	if (m->ncatchup)
		catchup_member_gone(m);
	if (m->hold) {
		c->held_msgs -= sendq_live(m->hold);
		c->held_bytes -= sendq_live_bytes(m->hold);
		sendq_clear(m->hold);
		free(m->hold);
	}
	free(m);
	if (r->nmembers == 0)
		room_free(r); /* nobody is left to receive its presence batch */
}

void room_set_presence(struct member *m, bool on)
{
	if (m->presence == on)
		return;
	m->presence = on;
	if (on)
		m->room->npresence++;
	else
		m->room->npresence--;
}

void member_send(struct member *m, struct frame *f)
{
	struct conn *c = m->conn;

	if (!m->hold) {
		conn_send(c, f);
		return;
	}
	if (c->close_code)
		return;
	/* Waiting for this node to apply the client's since (catchup.h): a
	 * stored message applied meanwhile is in the range the join's answer
	 * covers, whichever it is (replayed up to the latest seq at the end of
	 * the wait, or recovered:false at that seq), and would be skipped when
	 * the hold is let go; not held, it cannot fill the hold during a long
	 * wait in a busy room. (With a second catch-up of the same member, its
	 * end decides what is skipped: held as usual.) */
	if (m->lagging && f->seq && m->ncatchup == 1)
		return;
	/* Held live frames count toward the slow-consumer limit like the
	 * live frames in the queue: a reader that does not read while it
	 * catches up falls behind the live stream all the same. */
	if (!conn_live_fits(c, f->len)) {
		conn_close_later(c, CLOSE_SLOW_CONSUMER);
		return;
	}
	sendq_push(m->hold, f, 0);
	c->held_msgs++;
	c->held_bytes += f->len;
}

void member_send_reply(struct member *m, struct frame *f)
{
	if (!m->hold)
		conn_send_reply(m->conn, f);
	else if (!m->conn->close_code)
		sendq_push(m->hold, f, 1);
}

void member_release_hold(struct member *m, uint64_t after_seq)
{
	struct sendq *h = m->hold;
	struct conn *c = m->conn;

	if (!h)
		return;
	m->hold = NULL;
	room_slot(m);
	c->held_msgs -= sendq_live(h);
	c->held_bytes -= sendq_live_bytes(h);
	for (uint32_t i = 0; i < h->count; i++) {
		struct frame *f = sendq_peek(h, i);
		if (sendq_is_reply(h, i))
			conn_send_reply(c, f);
		else if (!f->seq || f->seq > after_seq)
			conn_send(c, f);
	}
	sendq_clear(h);
	free(h);
}

int member_release_one(struct member *m, uint64_t after_seq)
{
	struct sendq *h = m->hold;
	struct conn *c = m->conn;

	if (!h)
		return 0;
	if (h->count) {
		struct frame *f = sendq_peek(h, 0);
		bool reply = sendq_is_reply(h, 0);
		if (!reply) {
			c->held_msgs--;
			c->held_bytes -= f->len;
		}
		/* (the queue takes its own reference before the drop) */
		if (reply) {
			conn_send_reply(c, f);
		} else if (!f->seq || f->seq > after_seq) {
			c->releasing = true; /* admitted when it was held */
			conn_send(c, f);
			c->releasing = false;
		}
		sendq_drop(h, 1);
	}
	if (h->count)
		return 1;
	m->hold = NULL;
	room_slot(m);
	sendq_clear(h);
	free(h);
	return 0;
}

void room_slot(struct member *m)
{
	m->room->mconn[m->idx] = (uintptr_t)m->conn | (m->hold ? 1 : 0);
}

/* How many connections ahead a fan-out asks the memory for. */
#define FANOUT_AHEAD 8

static inline void fanout_prefetch(const struct room *r, uint32_t i)
{
	const char *c = (const char *)(r->mconn[i] & ~(uintptr_t)1);
	/* its two hot lines (conn.h): the gates, then the queue */
	__builtin_prefetch(c, 1);
	__builtin_prefetch(c + 64, 1);
}

void room_fanout(struct room *r, struct frame *f, struct conn *except)
{
	uint32_t n = r->nmembers;

	/* Each member's connection is cold in the cache by now (the sends
	 * of the last fan-out went through the kernel in between): its
	 * lines are asked for FANOUT_AHEAD members early, so that their
	 * waits overlap instead of adding up, and the members themselves
	 * are not read at all (mconn) unless one holds frames.
	 * member_send() never frees a connection or changes membership (a
	 * slow reader is only marked), so walking the array is safe. */
	for (uint32_t i = 0; i < n && i < FANOUT_AHEAD; i++)
		fanout_prefetch(r, i);
	for (uint32_t i = 0; i < n; i++) {
		uintptr_t v = r->mconn[i];
		struct conn *c = (struct conn *)(v & ~(uintptr_t)1);
		if (i + FANOUT_AHEAD < n)
			fanout_prefetch(r, i + FANOUT_AHEAD);
		if (c == except)
			continue;
		if (v & 1)
			member_send(r->members[i], f);
		else
			conn_send(c, f);
	}
	r->srv->stats.delivered += n - (except ? 1 : 0);
}

void room_cache_add(struct room *r, uint64_t seq, struct frame *f, uint32_t max)
{
	struct server *s = r->srv;

	if (!max)
		return;
	if (r->tail_count && seq != r->tail_first + r->tail_count) {
		/* Not contiguous (cannot happen with one writer of seqs):
		 * start over rather than serve a page with a hole. */
		while (r->tail_count)
			cache_drop_oldest(r);
	}
	if (!r->tail) {
		r->tail_cap = max;
		r->tail = xcalloc(max, sizeof(*r->tail));
		s->cache_bytes += (uint64_t)max * sizeof(*r->tail);
	}
	if (r->tail_count == 0) {
		r->tail_head = 0;
		r->tail_first = seq;
	}
	if (r->tail_count == r->tail_cap)
		cache_drop_oldest(r);
	r->tail[(r->tail_head + r->tail_count) % r->tail_cap] = frame_ref(f);
	r->tail_count++;
	s->cache_bytes += frame_cost(f);
	lru_touch(s, r);
	cache_enforce(s, r);
}

int room_cache_covers(struct room *r, uint64_t lo, uint64_t hi)
{
	if (!(r->tail_count && lo >= r->tail_first && hi < r->tail_first + r->tail_count))
		return 0;
	lru_touch(r->srv, r);
	return 1;
}

struct frame *room_cache_get(struct room *r, uint64_t seq)
{
	if (!r->tail_count || seq < r->tail_first || seq >= r->tail_first + r->tail_count)
		return NULL;
	return r->tail[(r->tail_head + (seq - r->tail_first)) % r->tail_cap];
}

void room_cache_set(struct room *r, uint64_t seq, struct frame *f)
{
	if (!room_cache_get(r, seq))
		return;
	struct frame **slot = &r->tail[(r->tail_head + (seq - r->tail_first)) % r->tail_cap];
	frame_unref(slot);
	*slot = frame_ref(f);
}
