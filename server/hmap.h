/*
 * hmap.h - an open-addressing hash table of pointers.
 *
 * Entries are the caller's structs; the table stores a pointer and the
 * entry's hash. Linear probing with backward-shift deletion (no tombstones),
 * so a table that churns (rooms come and go) never degrades. An empty table
 * allocates nothing: a connection in no room costs 16 bytes here.
 *
 * Keys are compared by a match function the caller passes, so one table
 * type serves string keys (rooms by name) and pointer keys (a connection's
 * memberships by room).
 */
#ifndef PARLEY_HMAP_H
#define PARLEY_HMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct hmap_slot {
	uint64_t hash;   /* 0 marks an empty slot (real hashes are forced odd) */
	void *entry;
};

struct hmap {
	struct hmap_slot *slots;
	uint32_t cap;    /* 0 or a power of two */
	uint32_t len;
};

/* 1 if entry has the key. */
typedef int (*hmap_match_fn)(const void *entry, const void *key);

uint64_t hmap_hash_bytes(const void *p, size_t n);

/* The key of a table of named entries (rooms by name, a room's users by
 * name): match functions compare it with hmap_name_eq(). */
struct hmap_name {
	const char *s;
	size_t n;
};
static inline int hmap_name_eq(const void *key, const char *name, size_t len)
{
	const struct hmap_name *k = key;
	return k->n == len && memcmp(k->s, name, len) == 0;
}
uint64_t hmap_hash_ptr(const void *p);

void *hmap_get(const struct hmap *m, uint64_t hash, const void *key, hmap_match_fn match);
/* Inserts entry, which must not be in the table yet. */
void hmap_put(struct hmap *m, uint64_t hash, void *entry);
/* Removes and returns the entry with the key, or NULL. */
void *hmap_del(struct hmap *m, uint64_t hash, const void *key, hmap_match_fn match);
void hmap_free(struct hmap *m);

/* Iteration: for (uint32_t i = 0; i < m->cap; i++) if (m->slots[i].hash) ...
 * The table must not change during an iteration. */

#endif
