/*
 * utf8.h - incremental UTF-8 validation of a message that arrives in
 * pieces (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
 * Three bytes of state, so every connection can carry one.
 */
#ifndef PARLEY_UTF8_H
#define PARLEY_UTF8_H

#include <stddef.h>
#include <stdint.h>

struct utf8_state {
	uint8_t need;   /* continuation bytes still expected */
	uint8_t lo, hi; /* allowed range of the next continuation byte */
};

/* Validates the next n bytes. Returns 0, or -1 at the first invalid byte. */
int utf8_feed(struct utf8_state *st, const unsigned char *p, size_t n);
/* At the end of a message: -1 if a sequence is cut off. Resets st. */
int utf8_end(struct utf8_state *st);

#endif
