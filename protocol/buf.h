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

struct pbuf {
	char *data;
	size_t len;
	size_t cap;
};

void pbuf_reserve(struct pbuf *b, size_t extra);
void pbuf_free(struct pbuf *b);
static inline void pbuf_reset(struct pbuf *b) { b->len = 0; }

void pbuf_add(struct pbuf *b, const void *p, size_t n);
void pbuf_adds(struct pbuf *b, const char *s);
void pbuf_addc(struct pbuf *b, char c);
void pbuf_add_u64(struct pbuf *b, uint64_t v);
void pbuf_add_i64(struct pbuf *b, int64_t v);
/* Appends s (n bytes of valid UTF-8) as a quoted, escaped JSON string. */
void pbuf_add_jstr(struct pbuf *b, const char *s, size_t n);
/* Appends raw JSON text that is known to be valid, dropping the
 * insignificant white space between tokens. */
void pbuf_add_json_compact(struct pbuf *b, const char *s, size_t n);

#endif
