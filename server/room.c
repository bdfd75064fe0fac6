/* room.c - rooms, two-way membership index, fan-out, history cache (room.h). */
#include "room.h"

#include <stdlib.h>
#include <string.h>

#include "catchup.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "server.h"
#include "util.h"

struct name_key {
	const char *s;
	size_t n;
};

static int room_match(const void *entry, const void *key)
{
	const struct room *r = entry;
	const struct name_key *k = key;
	return r->name_len == k->n && memcmp(r->name, k->s, k->n) == 0;
}

static int member_match(const void *entry, const void *key)
{
	return ((const struct member *)entry)->room == key;
}

struct room *room_find(struct server *s, const char *name, size_t len)
{
	struct name_key k = { name, len };
	return hmap_get(&s->rooms, hmap_hash_bytes(name, len), &k, room_match);
}

struct member *room_member(struct conn *c, struct room *r)
{
	return hmap_get(&c->rooms, hmap_hash_ptr(r), r, member_match);
}

static struct room *room_create(struct server *s, const char *name, size_t len)
{
	struct room *r = xcalloc(1, sizeof(*r));

	r->srv = s;
	r->name = xstrndup(name, len);
	r->name_len = len;
	r->hash = hmap_hash_bytes(name, len);
	hmap_put(&s->rooms, r->hash, r);
	return r;
}

static void room_free(struct room *r)
{
	struct name_key k = { r->name, r->name_len };

	hmap_del(&r->srv->rooms, r->hash, &k, room_match);
	presence_free(r);
	for (uint32_t i = 0; i < r->tail_count; i++)
		frame_unref(&r->tail[(r->tail_head + i) % r->tail_cap]);
	free(r->tail);
	free(r->members);
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
	}
	m->room = r;
	m->conn = c;
	m->idx = r->nmembers;
	r->members[r->nmembers++] = m;
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
	/* Swap the last member into the hole. */
	struct member *last = r->members[--r->nmembers];
	r->members[m->idx] = last;
	last->idx = m->idx;
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

void room_fanout(struct room *r, struct frame *f, struct conn *except)
{
	/* member_send() never frees a connection or changes membership (a
	 * slow reader is only marked), so walking the array is safe. */
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct member *m = r->members[i];
		if (m->conn != except)
			member_send(m, f);
	}
	r->srv->stats.delivered += r->nmembers - (except ? 1 : 0);
}

void room_cache_add(struct room *r, uint64_t seq, struct frame *f, uint32_t max)
{
	if (!max)
		return;
	if (r->tail_count && seq != r->tail_first + r->tail_count) {
		/* Not contiguous (cannot happen with one writer of seqs):
		 * start over rather than serve a page with a hole. */
		for (uint32_t i = 0; i < r->tail_count; i++)
			frame_unref(&r->tail[(r->tail_head + i) % r->tail_cap]);
		r->tail_count = 0;
	}
	if (!r->tail) {
		r->tail_cap = max;
		r->tail = xcalloc(max, sizeof(*r->tail));
	}
	if (r->tail_count == 0) {
		r->tail_head = 0;
		r->tail_first = seq;
	}
	if (r->tail_count == r->tail_cap) {
		frame_unref(&r->tail[r->tail_head]);
		r->tail_head = (r->tail_head + 1) % r->tail_cap;
		r->tail_first++;
		r->tail_count--;
	}
	r->tail[(r->tail_head + r->tail_count) % r->tail_cap] = frame_ref(f);
	r->tail_count++;
}

int room_cache_covers(struct room *r, uint64_t lo, uint64_t hi)
{
	return r->tail_count && lo >= r->tail_first && hi < r->tail_first + r->tail_count;
}

struct frame *room_cache_get(struct room *r, uint64_t seq)
{
	if (!r->tail_count || seq < r->tail_first || seq >= r->tail_first + r->tail_count)
		return NULL;
	return r->tail[(r->tail_head + (seq - r->tail_first)) % r->tail_cap];
}
