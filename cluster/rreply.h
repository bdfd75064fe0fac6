/*
 * rreply.h - hiredis reply objects built in a per-connection arena.
 *
 * hiredis 0.14's default reply functions make one malloc per object (an
 * XREAD entry of the log is about 25: one per field name and value) and
 * free them one by one after the callback. At 2,000 entries/s on every
 * node that was 20,000-25,000 instructions per one-entry reply, much of it
 * in malloc/free. These functions build the same redisReply objects (same
 * layout: hiredis itself reads ->type and ->element of a reply) bump-
 * allocated from an arena owned by the connection, and free the whole
 * reply at once when hiredis frees its root.
 *
 * Why it is safe: hiredis parses one reply at a time, hands it to the
 * callback and frees it before it parses the next (redisProcessCallbacks),
 * and the reader frees the root of a half-built reply on a protocol error
 * or when it is freed itself. So at most one reply lives in an arena at
 * any time, and freeing its root may release everything. A consumer must
 * not keep a reply after its callback (rconn.h already says so).
 */
#ifndef PARLEY_CLUSTER_RREPLY_H
#define PARLEY_CLUSTER_RREPLY_H

#include <hiredis/read.h>
#include <stddef.h>

struct rreply_arena;

struct rreply_arena *rreply_arena_new(void);
/* Frees *ap and sets it to NULL. No reader may still use it. */
void rreply_arena_free(struct rreply_arena **ap);
/* Makes reader r build its replies in a (before it has read anything). */
void rreply_attach(redisReader *r, struct rreply_arena *a);
/* Bytes held by a's chunks (for tests: it stays bounded). */
size_t rreply_arena_bytes(const struct rreply_arena *a);

#endif
