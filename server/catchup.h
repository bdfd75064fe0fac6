/*
 * catchup.h - join with since: the replay of missed messages, streamed to
 * the connection as its socket drains.
 *
 * A join with since makes the connection a member at once (nothing
 * published from then on can be missed) and holds the member's live frames
 * in its hold queue (room.h). The catch-up then queues the messages
 * (since, last] a few at a time: whenever the connection's queue has
 * drained, it adds messages from the room's cache, or reads the next chunk
 * from disk and queues its rows as the socket takes them. Then the join
 * reply, then the held live frames. So a replay of any length never needs
 * more memory than a chunk and the send queue's worth of frames, and it
 * never counts toward the slow-consumer limit (replayed frames are
 * replies, frame.h).
 *
 * In a cluster a client may come with a since this node has not applied
 * yet (it saw the message on another node, which then died): the catch-up
 * waits, its member held (but for the stored messages applied meanwhile,
 * which the answer's range covers: room.c), until the node has applied up to since or
 * cluster_timeout_ms has passed (then recovered:false, as for a since that
 * was never handed out), instead of telling the client its copy is stale.
 *
 * One catch-up streams at a time per connection; the others (a client
 * that re-joins many rooms) wait in a FIFO, their members held. A
 * connection holds at most CATCHUP_MAX_FACTOR * max_rooms of them.
 */
#ifndef PARLEY_CATCHUP_H
#define PARLEY_CATCHUP_H

#include <stdint.h>

struct conn;
struct member;
struct server;
struct store_page;

#define CATCHUP_CHUNK 100        /* messages per read from disk */
#define CATCHUP_MAX_FACTOR 2     /* catch-ups waiting per connection, per max_rooms */

/* Starts (or queues) the catch-up of m for a join with id: every message
 * with seq > since up to the room's latest now, then the join reply. */
void catchup_start(struct conn *c, struct member *m, uint64_t id, uint64_t since);
/* 1 if c may queue one more catch-up. */
int catchup_room_for_one(const struct conn *c);
/* Queues what the head catch-up can queue now. Returns 1 if it queued
 * anything. Safe to call at any time (does nothing while closing). */
int catchup_pump(struct conn *c);
/* A disk read of a catch-up finished (takes page). */
void catchup_page(struct server *s, uint64_t serial, uint64_t cookie, struct store_page *page);
/* The member is leaving: its catch-ups still answer the join, without it. */
void catchup_member_gone(struct member *m);
/* Frees every catch-up of a closing connection. */
void catchup_free_all(struct conn *c);
/* A read slot may be free: retries catch-ups that found the read queue full. */
void catchup_kick_waiters(struct server *s);
/* Pumps the connections whose catch-up waits for the node to apply its
 * since (s->lag_poke set: a message was applied, or the tick came); at a
 * safe point, outside any fan-out. Drops the ones that wait no more. */
void catchup_lag_pump(struct server *s);
/* Frees the list (teardown). */
void catchup_lag_free(struct server *s);

#endif
