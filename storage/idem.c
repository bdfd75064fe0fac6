/*
 * idem.c - idempotency keys: a publish retried with the same key in the
 * same room within the window is not stored again (store_append_key).
 *
 * Owned by the loop thread. Keys live in one chained hash table keyed by
 * (room, key bytes), and on two lists in insertion order: their room's
 * (singly linked) and the store's (doubly linked). Insertion order is the
 * order of the messages' ts, so the oldest key overall is at the store's
 * head and is also the oldest of its room: expiry and the total bound
 * pop that head; the per-room bound pops the room's head and unlinks it
 * from the store's list. A lookup that finds an expired key that is not
 * yet at a head reports it absent; the key added next shadows it (the
 * chain is searched newest first) until it reaches a head.
 *
 * Memory: at most STORE__KEYS_PER_ROOM keys per room and STORE__KEYS_TOTAL
 * in all, about 100 bytes plus the key each. Past a bound the oldest key
 * is forgotten early: a retry of its publish would be stored again.
 *
 * Keys survive a restart through messages.key: store_open() loads the
 * keys of the rows stamped within the window (store__keys_load).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "store_int.h"
#include "xalloc.h"

/* Keys are chosen by clients: the keyed hash (common/hash.h), mixed with
 * the room's (itself keyed), so colliding keys cannot be computed off line. */
static uint64_t key_hash(const struct store__room *r, const void *key, size_t len)
{
	return hash_bytes(key, len) ^ (r->hash * 0x9e3779b97f4a7c15ull);
}

static void grow(struct store__keys *t)
{
	size_t nb = t->nb ? t->nb * 2 : 256;
	struct store__key **b = xcalloc(nb, sizeof(*b));
	/* Keeps each chain's order (newest first) so shadowing still holds. */
	for (size_t i = t->nb; i-- > 0;) {
		struct store__key *k = t->b[i], *next;
		for (; k; k = next) {
			next = k->h_next;
			struct store__key **pp = &b[k->hash & (nb - 1)];
			while (*pp)
				pp = &(*pp)->h_next;
			k->h_next = NULL;
			*pp = k;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

/* Unlinks and frees k, which is the head of its room's list. */
static void drop_head(struct store *s, struct store__key *k)
{
	struct store__keys *t = &s->keys;
	struct store__key **pp = &t->b[k->hash & (t->nb - 1)];
	while (*pp != k)
		pp = &(*pp)->h_next;
	*pp = k->h_next;
	struct store__room *r = k->room;
	r->k_head = k->r_next;
	if (!r->k_head)
		r->k_tail = NULL;
	r->k_count--;
	if (k->g_prev)
		k->g_prev->g_next = k->g_next;
	else
		t->g_head = k->g_next;
	if (k->g_next)
		k->g_next->g_prev = k->g_prev;
	else
		t->g_tail = k->g_prev;
	t->n--;
	free(k);
}

static void expire(struct store *s, int64_t now)
{
	while (s->keys.g_head && s->keys.g_head->ts < now - s->key_window_ms)
		drop_head(s, s->keys.g_head);
}

/* The room's live key (newest first), or NULL. now: wall clock ms. */
struct store__key *store__key_find(struct store *s, struct store__room *r,
				   const void *key, size_t len, int64_t now)
{
	expire(s, now);
	if (!s->keys.n)
		return NULL;
	uint64_t h = key_hash(r, key, len);
	for (struct store__key *k = s->keys.b[h & (s->keys.nb - 1)]; k; k = k->h_next)
		if (k->hash == h && k->room == r && k->len == len && !memcmp(k->key, key, len))
			return k->ts >= now - s->key_window_ms ? k : NULL;
	return NULL;
}

/* Remembers key for the message seq of room r, stamped ts. */
void store__key_add(struct store *s, struct store__room *r, const void *key, size_t len,
		    uint64_t seq, int64_t ts)
{
	struct store__keys *t = &s->keys;
	if (r->k_count >= STORE__KEYS_PER_ROOM)
		drop_head(s, r->k_head);
	if (t->n >= STORE__KEYS_TOTAL)
		drop_head(s, t->g_head);
	if (t->n >= t->nb)
		grow(t);
	struct store__key *k = xmalloc(sizeof(*k) + len);
	k->room = r;
	k->hash = key_hash(r, key, len);
	k->seq = seq;
	k->ts = ts;
	k->len = len;
	memcpy(k->key, key, len);
	struct store__key **slot = &t->b[k->hash & (t->nb - 1)];
	k->h_next = *slot; /* newest first */
	*slot = k;
	k->r_next = NULL;
	if (r->k_tail)
		r->k_tail->r_next = k;
	else
		r->k_head = k;
	r->k_tail = k;
	r->k_count++;
	k->g_next = NULL;
	k->g_prev = t->g_tail;
	if (t->g_tail)
		t->g_tail->g_next = k;
	else
		t->g_head = k;
	t->g_tail = k;
	t->n++;
}

/* At store_open, after the rooms: the keys of the rows of the last window,
 * oldest first. Returns 0 or -1 with err set. */
int store__keys_load(struct store *s, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT r.name, m.key, m.seq, m.ts FROM messages m JOIN rooms r ON r.id = m.room_id"
		" WHERE m.key IS NOT NULL AND m.ts >= ?1 ORDER BY m.ts, m.seq";
	sqlite3_stmt *st;
	int64_t since = store__now_ms(CLOCK_REALTIME) - s->key_window_ms;
	if (sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, since);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		struct store__room *r = name ? store__map_get(&s->map, name) : NULL;
		const void *key = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);
		if (!r || !key || len <= 0)
			continue;
		store__key_add(s, r, key, (size_t)len, (uint64_t)sqlite3_column_int64(st, 2),
			       sqlite3_column_int64(st, 3));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	snprintf(err, errlen, "loading idempotency keys: %s", sqlite3_errmsg(s->wdb));
	return -1;
}

void store__keys_free(struct store *s)
{
	struct store__key *k = s->keys.g_head, *next;
	for (; k; k = next) {
		next = k->g_next;
		free(k);
	}
	free(s->keys.b);
	memset(&s->keys, 0, sizeof(s->keys));
}
