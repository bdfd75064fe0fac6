/* hash.c - SipHash and the process key (hash.h). */
#include "hash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static uint8_t process_key[HASH_KEY_LEN];

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

#define SIPROUND                                                        \
	do {                                                            \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                  \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                  \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
	} while (0)

uint64_t hash_siphash(const uint8_t key[HASH_KEY_LEN], int crounds, int drounds,
		      const void *p, size_t n)
{
	const uint8_t *in = p;
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	/* "somepseudorandomlygeneratedbytes" */
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	size_t whole = n & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(in + i);
		v3 ^= m;
		for (int r = 0; r < crounds; r++)
			SIPROUND;
		v0 ^= m;
	}
	/* The last word: the 0-7 remaining bytes, and the length mod 256 in
	 * its top byte. */
	uint64_t m = (uint64_t)(n & 0xff) << 56;
	for (size_t i = 0; i < (n & 7); i++)
		m |= (uint64_t)in[whole + i] << (8 * i);
	v3 ^= m;
	for (int r = 0; r < crounds; r++)
		SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	for (int r = 0; r < drounds; r++)
		SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

int hash_seed_random(void)
{
	uint8_t k[HASH_KEY_LEN];
	size_t got = 0;

	while (got < sizeof(k)) {
		ssize_t n = getrandom(k + got, sizeof(k) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	hash_set_key(k);
	return 0;
}

void hash_set_key(const uint8_t key[HASH_KEY_LEN])
{
	memcpy(process_key, key, HASH_KEY_LEN);
}

uint64_t hash_bytes(const void *p, size_t n)
{
	return hash_siphash(process_key, 1, 3, p, n);
}
