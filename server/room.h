/*
 * room.h - rooms, membership and fan-out.
 *
 * Membership is indexed both ways: a room keeps a dense array of its
 * members (fan-out walks it), each member knows its index (so removal is a
 * swap with the last, O(1)), and a connection keeps a hash of its members by
 * room. Join, leave and disconnect cost O(1) per room, never O(members).
 * A room exists while it has members; the last leave frees it.
 */
#ifndef PARLEY_ROOM_H
#define PARLEY_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "buf.h"
#include "hmap.h"

struct conn;
struct frame;
struct server;
struct ruser;

struct member {
	struct room *room;
	struct conn *conn;
	struct ruser *user;     /* the room's entry for the conn's name */
	uint32_t idx;           /* in room->members */
	bool presence;          /* receives the room's presence events */
	bool lagging;           /* its catch-up waits for this node to apply its since (catchup.h) */
	/* join with since, catch-up in progress (catchup.h): live frames, and
	 * the replies to publishes in this room, wait here until the replay
	 * and the join reply are queued. */
	struct sendq *hold;
	uint32_t ncatchup;      /* this member's catch-ups not finished */
};

#define ROOM_HEAD 16 /* bytes of the name kept in the first line */

/* The first cache line (64-aligned) holds what a publish's lookup and
 * fan-out read: a room's own name is compared from name_head, without
 * loading the name, for names of up to ROOM_HEAD bytes (room_match). */
struct room {
	uint64_t hash;
	char *name;
	size_t name_len;
	char name_head[ROOM_HEAD]; /* the name's first bytes, zero-padded */
	/* members[i]'s connection, bit 0 set while that member holds frames
	 * (member.hold): a fan-out reads these, not the members (room_slot) */
	uintptr_t *mconn;
	uint32_t nmembers, cap;
	struct server *srv;
	struct member **members;
	uint32_t npresence;     /* members with presence on */
	uint64_t published;     /* messages fanned out here (feed.c's rate) */
	uint64_t published_mark; /* published at the feed's previous sample */

	/* presence.c: users in the room and the pending batch */
	struct hmap users;      /* struct ruser *, by name */
	uint32_t nusers;        /* users with at least one connection */
	uint32_t remote_only;   /* users present only on other nodes (cluster) */
	struct ruser **batch;
	uint32_t nbatch, batch_cap;
	ev_timer presence_timer;   /* closes the batch window */

	/* recent messages (history cache): frames of seqs tail_first.. */
	struct frame **tail;
	uint32_t tail_cap, tail_head, tail_count;
	uint64_t tail_first;
	struct room *lru_prev, *lru_next;  /* server's cache_lru, while tail != NULL */
};

struct room *room_find(struct server *s, const char *name, size_t len);
/* The member of c in r, or NULL. */
struct member *room_member(struct conn *c, struct room *r);
/* Adds c to the room called name (creating it). c must not be a member. */
struct member *room_join(struct server *s, struct conn *c, const char *name,
			 size_t len, bool presence);
/* Removes the member and frees it (and the room, if it was the last). */
void room_leave(struct member *m);
void room_set_presence(struct member *m, bool on);
/* Queues live frame f for the member (held back while it catches up). */
void member_send(struct member *m, struct frame *f);
/* Queues reply f (e.g. to a publish in this room): held back behind the
 * member's held live frames while it catches up, so it cannot overtake
 * the publisher's own copy of its message. */
void member_send_reply(struct member *m, struct frame *f);
/* Ends a replay: queues the held frames with seq > after_seq (and every
 * volatile one, and the replies) and frees the hold queue. */
void member_release_hold(struct member *m, uint64_t after_seq);
/* The same, one frame at a time, for a connection whose queue cannot take
 * the whole hold at once (a Socket.IO session, catchup.c): queues the
 * first held frame. Returns 1 while frames are still held, 0 once the hold
 * is empty and freed (live frames then go straight to the connection). */
int member_release_one(struct member *m, uint64_t after_seq);
/* Queues f for every member except `except` (may be NULL). */
void room_fanout(struct room *r, struct frame *f, struct conn *except);
/* Call after m->hold was set or cleared: the fan-out's copy of it. */
void room_slot(struct member *m);

/* History cache: keeps a reference to the frame of message seq, at most
 * max per room, and at most history_cache_bytes for all rooms together:
 * past it, the least recently used rooms' caches are dropped (their
 * history is then read from disk). */
void room_cache_add(struct room *r, uint64_t seq, struct frame *f, uint32_t max);
/* 1 if every seq in [lo, hi] is cached (and marks the cache as used). */
int room_cache_covers(struct room *r, uint64_t lo, uint64_t hi);
/* The cached frame of seq, or NULL. */
struct frame *room_cache_get(struct room *r, uint64_t seq);
/* Replaces the cached frame of seq (if cached) by f (a tombstone). */
void room_cache_set(struct room *r, uint64_t seq, struct frame *f);

/* ---- presence.c ---- */
struct ruser {
	char *name;
	uint32_t name_len;
	uint32_t conns;         /* the user's connections in the room */
	uint32_t remote;        /* its connections on other nodes (cluster/presence.c) */
	bool in_batch;          /* on room->batch */
	bool was_present;       /* conns > 0 when the batch window opened */
};
struct ruser *presence_add(struct room *r, const char *name, size_t len);
void presence_remove(struct room *r, struct ruser *u);
/* Sets the user's connections on other nodes (cluster/presence.c); a
 * change of its cluster-wide presence goes into the window's batch, unless
 * quiet (seeding a room just created). */
void presence_remote(struct room *r, const char *name, size_t len, uint32_t remote, bool quiet);
/* Appends [{"user":..,"conns":N},...] to the server's encoder buffer. */
void presence_list(struct room *r, struct pbuf *b);
/* Distinct users present in the room, here or on other nodes. */
static inline uint32_t presence_users(const struct room *r)
{
	return r->nusers + r->remote_only;
}
/* Frees every user entry and cancels the window timer. */
void presence_free(struct room *r);

#endif
