/* frame.c - shared encoded frames and the per-connection queue (frame.h). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static struct frame *frame_new_op(const void *payload, size_t len, unsigned char op)
{
	struct frame *f = xmalloc(sizeof(*f) + FRAME_HEADROOM + len);
	unsigned char *p = f->buf + FRAME_HEADROOM;
	size_t hlen;

	memcpy(p, payload, len);
	if (len < 126) {
		hlen = 2;
		p[-1] = (unsigned char)len;
	} else if (len < 65536) {
		hlen = 4;
		p[-3] = 126;
		p[-2] = (unsigned char)(len >> 8);
		p[-1] = (unsigned char)len;
	} else {
		hlen = 10;
		p[-9] = 127;
		for (int i = 0; i < 8; i++)
			p[-1 - i] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	f->wire = p - hlen;
	f->wire[0] = op; /* FIN + opcode */
	f->len = (uint32_t)(hlen + len);
	f->refs = 1;
	f->seq = 0;
	f->sio = NULL;
	f->sio_room = 0;
	return f;
}

struct frame *frame_new_text(const char *payload, size_t len)
{
	return frame_new_op(payload, len, 0x81);
}

struct frame *frame_new_binary(const void *payload, size_t len)
{
	return frame_new_op(payload, len, 0x82);
}

void frame_unref(struct frame **fp)
{
	struct frame *f = *fp;

	*fp = NULL;
	if (f && --f->refs == 0) {
		frame_unref(&f->sio);
		free(f);
	}
}

void sendq_push(struct sendq *q, struct frame *f, int reply)
{
	if (q->count == q->cap) {
		if (!q->cap) {
			q->ring = q->inl;
			q->cap = SENDQ_INLINE;
		} else {
			uint32_t ncap = q->cap * 2;
			uintptr_t *r = xmalloc(ncap * sizeof(*r));
			for (uint32_t i = 0; i < q->count; i++)
				r[i] = q->ring[(q->head + i) & (q->cap - 1)];
			if (q->ring != q->inl)
				free(q->ring);
			q->ring = r;
			q->cap = ncap;
			q->head = 0;
		}
	}
	q->ring[(q->head + q->count) & (q->cap - 1)] =
		(uintptr_t)frame_ref(f) | (reply ? SENDQ_REPLY : 0);
	q->count++;
	q->bytes += f->len;
	if (reply) {
		q->rcount++;
		q->rbytes += f->len;
	}
}

void sendq_drop(struct sendq *q, uint32_t n)
{
	while (n-- && q->count) {
		uintptr_t e = q->ring[q->head];
		struct frame *f = (struct frame *)(e & ~SENDQ_REPLY);
		q->bytes -= f->len;
		if (e & SENDQ_REPLY) {
			q->rcount--;
			q->rbytes -= f->len;
		}
		frame_unref(&f);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	if (q->count == 0) {
		q->head = 0;
		if (q->cap > 64) {
			/* A burst grew the ring; an idle connection gives it back. */
			free(q->ring); /* (never inl: cap > SENDQ_INLINE) */
			q->ring = NULL;
			q->cap = 0;
		}
	}
}

void sendq_clear(struct sendq *q)
{
	sendq_drop(q, q->count);
	if (q->ring != q->inl)
		free(q->ring);
	q->ring = NULL;
	q->cap = q->head = 0;
}
