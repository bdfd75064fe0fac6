/* hmap.c - open-addressing hash table (hmap.h). */
#include "hmap.h"

#include <stdlib.h>

#include "hash.h"
#include "util.h"

/* Keyed SipHash (common/hash.h): names are chosen by clients, so their
 * slots must not be predictable (hash flooding). */
uint64_t hmap_hash_bytes(const void *p, size_t n)
{
	return hash_bytes(p, n) | 1;
}

uint64_t hmap_hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x | 1;
}

static void grow(struct hmap *m)
{
	struct hmap_slot *old = m->slots;
	uint32_t oldcap = m->cap;

	m->cap = oldcap ? oldcap * 2 : 4;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (uint32_t i = 0; i < oldcap; i++) {
		if (!old[i].hash)
			continue;
		uint32_t j = (uint32_t)old[i].hash & (m->cap - 1);
		while (m->slots[j].hash)
			j = (j + 1) & (m->cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *hmap_get(const struct hmap *m, uint64_t hash, const void *key, hmap_match_fn match)
{
	if (!m->cap)
		return NULL;
	for (uint32_t i = (uint32_t)hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].hash)
			return NULL;
		if (m->slots[i].hash == hash && match(m->slots[i].entry, key))
			return m->slots[i].entry;
	}
}

void hmap_put(struct hmap *m, uint64_t hash, void *entry)
{
	/* Keep the load factor at most 3/4 so probes stay short. */
	if ((m->len + 1) * 4 > m->cap * 3)
		grow(m);
	uint32_t i = (uint32_t)hash & (m->cap - 1);
	while (m->slots[i].hash)
		i = (i + 1) & (m->cap - 1);
	m->slots[i].hash = hash;
	m->slots[i].entry = entry;
	m->len++;
}

void *hmap_del(struct hmap *m, uint64_t hash, const void *key, hmap_match_fn match)
{
	if (!m->cap)
		return NULL;
	uint32_t mask = m->cap - 1, i = (uint32_t)hash & mask;
	for (;; i = (i + 1) & mask) {
		if (!m->slots[i].hash)
			return NULL;
		if (m->slots[i].hash == hash && match(m->slots[i].entry, key))
			break;
	}
	void *entry = m->slots[i].entry;

	/* Backward-shift: pull later entries of the probe run into the hole
	 * when their home slot is not between the hole and themselves. */
	uint32_t hole = i;
	for (uint32_t j = (i + 1) & mask; m->slots[j].hash; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)m->slots[j].hash & mask;
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole].hash = 0;
	m->slots[hole].entry = NULL;
	m->len--;
	if (m->len == 0) {
		/* An empty table gives its memory back: rooms and
		 * connections come and go. */
		hmap_free(m);
	}
	return entry;
}

void hmap_free(struct hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}
