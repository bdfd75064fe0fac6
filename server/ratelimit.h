/*
 * ratelimit.h - token buckets for per-connection command limits.
 * A bucket holds up to `burst` tokens and refills at `rate` per second.
 */
#ifndef PARLEY_RATELIMIT_H
#define PARLEY_RATELIMIT_H

#include <stdint.h>

struct bucket {
	float tokens;
	uint32_t last_ms;   /* monotonic ms of the last refill (wraps: fine) */
	uint8_t init;
};

/* Takes one token; returns 1 if there was one. per_s is the refill per
 * second (a fraction for per-minute limits). */
static inline int bucket_take(struct bucket *b, float per_s, float burst, uint32_t now_ms)
{
	if (!b->init) {
		b->init = 1;
		b->tokens = burst;
		b->last_ms = now_ms;
	}
	uint32_t dt = now_ms - b->last_ms;
	b->last_ms = now_ms;
	b->tokens += (float)dt * per_s / 1000.0f;
	if (b->tokens > burst)
		b->tokens = burst;
	if (b->tokens < 1.0f)
		return 0;
	b->tokens -= 1.0f;
	return 1;
}

#endif
