/* users.c - user name -> connections index (users.h). */
#include "users.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "server.h"
#include "util.h"

struct name_key {
	const char *s;
	size_t n;
};

static int user_match(const void *entry, const void *key)
{
	const struct user_conns *u = entry;
	const struct name_key *k = key;
	return u->name_len == k->n && memcmp(u->name, k->s, k->n) == 0;
}

struct user_conns *users_find(struct server *s, const char *name, size_t len)
{
	struct name_key k = { name, len };
	return hmap_get(&s->by_user, hmap_hash_bytes(name, len), &k, user_match);
}

void users_add(struct server *s, struct conn *c)
{
	struct name_key k = { c->name, c->name_len };
	uint64_t h = hmap_hash_bytes(c->name, c->name_len);
	struct user_conns *u = hmap_get(&s->by_user, h, &k, user_match);

	if (!u) {
		u = xcalloc(1, sizeof(*u));
		u->name = xstrndup(c->name, c->name_len);
		u->name_len = c->name_len;
		hmap_put(&s->by_user, h, u);
	}
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 2;
		u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
	}
	c->user_idx = u->n;
	c->user_entry = u;
	u->v[u->n++] = c;
}

void users_remove(struct server *s, struct conn *c)
{
	struct user_conns *u = c->user_entry;

	if (!u)
		return;
	/* swap with the last: O(1) */
	struct conn *last = u->v[--u->n];
	u->v[c->user_idx] = last;
	last->user_idx = c->user_idx;
	c->user_entry = NULL;
	if (u->n == 0) {
		struct name_key k = { u->name, u->name_len };
		hmap_del(&s->by_user, hmap_hash_bytes(u->name, u->name_len), &k, user_match);
		free(u->name);
		free(u->v);
		free(u);
	}
}

void users_free(struct server *s)
{
	for (uint32_t i = 0; i < s->by_user.cap; i++) {
		struct user_conns *u = s->by_user.slots[i].entry;
		if (!s->by_user.slots[i].hash)
			continue;
		free(u->name);
		free(u->v);
		free(u);
	}
	hmap_free(&s->by_user);
}
