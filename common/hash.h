/*
 * hash.h - the keyed hash of every name a client chooses (room and user
 * names, addresses), shared by the loop's tables (server/hmap.c) and the
 * store's room map (storage/roommap.c).
 *
 * Why keyed: with an unkeyed hash (FNV-1a before) anyone can compute, off
 * line, thousands of room names that land in the same bucket, and every
 * join then walks all of them (hash flooding: O(n^2) for n names). With
 * SipHash under a random key drawn at start (as Redis does), colliding
 * names cannot be predicted from outside the process.
 *
 * SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012) is implemented here from the paper; hash_bytes() uses SipHash-1-3,
 * the variant Redis, Python and Rust use for their hash tables: a hash
 * table needs collision resistance against an attacker who never sees
 * the outputs, not a MAC's full margin.
 */
#ifndef PARLEY_HASH_H
#define PARLEY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_KEY_LEN 16

/* SipHash-c-d of p[0..n) under the 16-byte key, as in the paper (the key
 * and the message words read little-endian). */
uint64_t hash_siphash(const uint8_t key[HASH_KEY_LEN], int crounds, int drounds,
		      const void *p, size_t n);

/* Draws the process key from getrandom(). Call once at start, before any
 * table holds an entry and before other threads start. Returns 0, or -1
 * (errno set) if the kernel gave no randomness. Until then the key is all
 * zeros (unit tests). */
int hash_seed_random(void);
/* Sets the process key (tests). */
void hash_set_key(const uint8_t key[HASH_KEY_LEN]);

/* SipHash-1-3 of p[0..n) under the process key. */
uint64_t hash_bytes(const void *p, size_t n);

#endif
