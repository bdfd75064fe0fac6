/*
 * frame.h - encoded server-to-client WebSocket frames, shared by reference,
 * and the bounded per-connection queue of them.
 *
 * A message published to a room is encoded once, framing included (server
 * frames are not masked, so the bytes are the same for every recipient), and
 * each recipient's queue holds a reference. The last frame_unref() frees it.
 */
#ifndef PARLEY_FRAME_H
#define PARLEY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADROOM 10 /* the largest RFC 6455 server frame header */

struct frame {
	uint32_t refs;
	uint32_t len;          /* wire bytes: header and payload */
	uint64_t seq;          /* a room message's seq; 0 for anything else */
	struct frame *sio;     /* its Socket.IO rendition (server/sio), built on
				* first need and shared by every Socket.IO
				* member; released with this frame */
	uint64_t sio_room;     /* in a rendition of a room message with a seq
				* (which seq then also holds): the room's key
				* in a session's recovery ring, so that each
				* member's mark is not parsed again */
	unsigned char *wire;   /* the header's first byte, inside buf */
	unsigned char buf[];   /* FRAME_HEADROOM + payload */
};
/* struct sendq tags its entries in bit 0 of the frame's address. */
_Static_assert(_Alignof(struct frame) >= 2, "sendq tags frame pointers in bit 0");

/* A text frame holding a copy of payload, with one reference (the
 * caller's). */
struct frame *frame_new_text(const char *payload, size_t len);
/* The same as a binary frame (Socket.IO attachments). */
struct frame *frame_new_binary(const void *payload, size_t len);

static inline struct frame *frame_ref(struct frame *f)
{
	f->refs++;
	return f;
}

/* Drops a reference and sets *fp to NULL; frees the frame on the last. */
void frame_unref(struct frame **fp);

/* The payload (JSON text) of a frame built by frame_new_text. */
static inline const char *frame_payload(const struct frame *f, size_t *len)
{
	size_t hlen = (size_t)(f->buf + FRAME_HEADROOM - f->wire);
	*len = f->len - hlen;
	return (const char *)f->buf + FRAME_HEADROOM;
}

/*
 * A FIFO of frame references. Each entry is either live (a room's message
 * or presence event, pushed by a fan-out) or a reply (an answer to the
 * client's own command, including the messages a catch-up replays). The
 * two kinds are counted apart: the slow-consumer limit applies to live
 * frames only, because a reader cannot fall behind its own requests; how
 * many replies may wait is bounded by whoever pushes them (conn.c stops
 * reading commands, the catch-up stops reading the store).
 */
#define SENDQ_INLINE 2 /* entries kept in the struct itself */

struct sendq {
	/* frame pointers, bit 0 set on a reply: malloc'd frames are at
	 * least 8-aligned, and a tag in the entry itself keeps push, peek
	 * and drop on one cache line per entry (no second array). The
	 * first SENDQ_INLINE entries live in inl (ring == inl): a fan-out
	 * member mostly has one frame queued, and a ring of its own would
	 * be one more cache miss per delivery. A sendq is never moved
	 * (ring may point into it). */
	uintptr_t *ring;
	uint32_t cap;          /* 0 or a power of two */
	uint32_t head;
	uint32_t count;        /* entries, both kinds */
	uint32_t rcount;       /* reply entries among them */
	size_t bytes;
	size_t rbytes;
	uintptr_t inl[SENDQ_INLINE];
};

#define SENDQ_REPLY ((uintptr_t)1)

/* Appends a new reference to f (the queue takes one); reply: counts it as
 * a reply. Never refuses: the caller checks its limits first. */
void sendq_push(struct sendq *q, struct frame *f, int reply);
static inline struct frame *sendq_peek(const struct sendq *q, uint32_t i)
{
	return (struct frame *)(q->ring[(q->head + i) & (q->cap - 1)] & ~SENDQ_REPLY);
}
/* 1 if the i-th entry is a reply. */
static inline int sendq_is_reply(const struct sendq *q, uint32_t i)
{
	return (int)(q->ring[(q->head + i) & (q->cap - 1)] & SENDQ_REPLY);
}
/* Live entries and their bytes. */
static inline uint32_t sendq_live(const struct sendq *q)
{
	return q->count - q->rcount;
}
static inline size_t sendq_live_bytes(const struct sendq *q)
{
	return q->bytes - q->rbytes;
}
/* Drops the first n entries (their references are released). */
void sendq_drop(struct sendq *q, uint32_t n);
void sendq_clear(struct sendq *q);

#endif
