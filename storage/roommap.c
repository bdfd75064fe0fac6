/*
 * roommap.c - room name -> struct store__room, owned by the loop thread.
 *
 * Chained hash table (keyed SipHash, common/hash.h: room names are chosen
 * by clients) that doubles when the load passes 1. Chaining keeps each room at a fixed address, which the write queue relies on: a
 * queued message points at its room while the loop may grow the table.
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "store_int.h"
#include "xalloc.h"

static uint64_t hash_name(const char *s)
{
	return hash_bytes(s, strlen(s));
}

/* Returns the room, or NULL if the store has never seen it. */
struct store__room *store__map_get(struct store__map *m, const char *name)
{
	if (!m->nb)
		return NULL;
	uint64_t h = hash_name(name);
	for (struct store__room *r = m->b[h & (m->nb - 1)]; r; r = r->h_next)
		if (r->hash == h && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

/* A new room, not yet in any map. The caller owns it. */
struct store__room *store__room_new(const char *name)
{
	size_t len = strlen(name);
	struct store__room *r = xcalloc(1, sizeof(*r) + len + 1);
	memcpy(r->name, name, len + 1);
	r->hash = hash_name(name);
	return r;
}

static void grow(struct store__map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct store__room **b = xcalloc(nb, sizeof(*b));
	for (size_t i = 0; i < m->nb; i++) {
		struct store__room *r = m->b[i], *next;
		for (; r; r = next) {
			next = r->h_next;
			r->h_next = b[r->hash & (nb - 1)];
			b[r->hash & (nb - 1)] = r;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

/* Adds r (not already present); the map owns it from now on. */
void store__map_put(struct store__map *m, struct store__room *r)
{
	if (m->n >= m->nb)
		grow(m);
	struct store__room **slot = &m->b[r->hash & (m->nb - 1)];
	r->h_next = *slot;
	*slot = r;
	m->n++;
}

/* Frees every room and the table. */
void store__map_free(struct store__map *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct store__room *r = m->b[i], *next;
		for (; r; r = next) {
			next = r->h_next;
			free(r);
		}
	}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}
