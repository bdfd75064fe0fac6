/*
 * buf.h - a growable byte buffer for building outgoing JSON text.
 *
 * Encoders append to a struct pbuf; the caller owns the buffer and reuses it
 * (pbuf_reset) so the hot path allocates only when a message is bigger than
 * any before it. Allocation failure aborts (see STYLE: bounded queues make
 * that the simpler policy).
 */
#ifndef PARLEY_PROTO_BUF_H
#define PARLEY_PROTO_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pbuf {
	char *data;
	size_t len;
	size_t cap;
};

void pbuf_reserve(struct pbuf *b, size_t extra);
void pbuf_free(struct pbuf *b);
static inline void pbuf_reset(struct pbuf *b) { b->len = 0; }

/* pbuf_add, pbuf_adds and pbuf_addc are inline: the encoders call them
 * several times per frame, mostly with a literal, whose copy the compiler
 * then does in place instead of calling memcpy (the growth stays out of
 * line, in pbuf_reserve). */
static inline void pbuf_add(struct pbuf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n)
		pbuf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}
static inline void pbuf_adds(struct pbuf *b, const char *s)
{
	pbuf_add(b, s, strlen(s));
}
static inline void pbuf_addc(struct pbuf *b, char c)
{
	if (b->cap == b->len)
		pbuf_reserve(b, 1);
	b->data[b->len++] = c;
}
void pbuf_add_u64(struct pbuf *b, uint64_t v);
void pbuf_add_i64(struct pbuf *b, int64_t v);
/* Appends s (n bytes of valid UTF-8) as a quoted, escaped JSON string. */
void pbuf_add_jstr(struct pbuf *b, const char *s, size_t n);
/* Appends raw JSON text that is known to be valid, dropping the
 * insignificant white space between tokens. */
void pbuf_add_json_compact(struct pbuf *b, const char *s, size_t n);

#endif
