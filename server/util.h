/* util.h - clocks, randomness; allocation that aborts on failure (xalloc.h). */
#ifndef PARLEY_UTIL_H
#define PARLEY_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "xalloc.h"   /* xmalloc, xcalloc, xrealloc, xstrndup */

int64_t util_now_ms(void);      /* wall clock, ms since the epoch */
uint64_t util_mono_us(void);    /* monotonic, microseconds */
/* Fills out with n random bytes (getrandom; falls back to /dev/urandom). */
void util_random(void *out, size_t n);
/* Writes 2*n lowercase hex digits of n random bytes and a NUL to out. */
void util_random_hex(char *out, size_t n);

#endif
