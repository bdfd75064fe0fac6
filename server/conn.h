/*
 * conn.h - one WebSocket client connection.
 *
 * Lifetime: lws allocates struct conn as the connection's per-session data
 * (at its first 64-byte boundary: conn_of_pss);
 * conn_open() runs on ESTABLISHED and conn_release() on CLOSED, the only
 * place its rooms and queue are torn down. Nothing else frees a connection:
 * a fan-out that finds a reader too slow calls conn_close_later(), which
 * empties its queue and lets lws close it from its own callback.
 */
#ifndef PARLEY_CONN_H
#define PARLEY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <libwebsockets.h>

#include "buf.h"
#include "utf8.h"
#include "frame.h"
#include "hmap.h"
#include "metrics.h"
#include "netaddr.h"
#include "ratelimit.h"
#include "util.h"

struct server;

/* Close codes parleyd uses besides lws's own. */
#define CLOSE_SLOW_CONSUMER 4008
#define CLOSE_AUTH          4001
#define CLOSE_RATE_LIMITED  4029
#define CLOSE_BANNED        4003  /* moderation.c: the user is banned */
/* What speaks on a connection (struct conn.kind). */
#define CONN_NATIVE 0  /* the Parley protocol on /ws */
#define CONN_SIO    1  /* a Socket.IO session (server/sio/): frames are
			* rendered for it in conn_send/conn_send_reply; wsi
			* is its WebSocket, or NULL while it polls */
#define CONN_SIO_PORT 2 /* lws per-session data of a /socket.io/ request or
			 * WebSocket: not a client, sio points to the
			 * session it serves (or NULL) */

struct sio_conn;

/* Seconds a closing connection has to take its close frame. */
#define CLOSE_WAIT_S 30

/*
 * The first two cache lines (CONN_HOT bytes, 64-aligned: conn_of_pss,
 * sio_edge.c's allocation) hold what a fan-out delivery and the flush
 * after it read and write, and nothing else: in a chat of 10,000
 * connections each delivery finds its connection cold in the cache (the
 * kernel's send in between evicts it), and every further line it touches
 * is one more wait on memory, which was most of the loop's user time per
 * delivery. Line 0: the gates and the flush list; line 1: the queue.
 */
struct conn {
	/* ---- line 0 ---- */
	struct server *srv;
	struct conn *pnext, *pprev;    /* server->pending */
	/* catchup.c: joins with since, oldest first; only the head streams */
	struct catchup *cu_head;
	/* the Socket.IO session (server/sio/): a session's own, or the one a
	 * CONN_SIO_PORT serves (read first by each of its frames) */
	struct sio_conn *sio;
	/* live frames held in members' hold queues (they count toward the
	 * slow-consumer limit like the live frames in q, so at most
	 * send_queue_bytes, which is below 2^31) */
	uint32_t held_bytes;
	uint32_t held_msgs;
	int fd;                        /* the socket for direct sends; -1 with TLS */
	uint16_t close_code;           /* set: close with it at the next WRITEABLE */
	uint8_t kind;                  /* CONN_NATIVE, CONN_SIO, CONN_SIO_PORT */
	bool pending;                  /* on server->pending */
	uint8_t hangup;                /* hangup.c: HANGUP_NONE, _QUEUED, _RELEASED */
	bool rx_paused;                /* too many replies waiting: not reading commands */
	bool releasing;                /* queueing held frames: admitted already (room.c) */
	/* A Socket.IO session's gates for a fan-out delivery (server/sio/
	 * keeps them: fast_update in sio_edge.c): sio_fast, the frame's rendition can
	 * go straight to this WebSocket's queue; sio_marks, the session
	 * keeps recovery marks (ring_add per delivered seq). */
	bool sio_fast;
	bool sio_marks;
	/* ---- line 1 ---- */
	struct sendq q;
	struct lws *wsi;
	/* ---- line 2: what a frame in and the keep-alive sweep read ---- */
	struct conn *next, *prev;      /* server->conns */
	int64_t heard_ms;              /* monotonic ms of the client's last frame (keep-alive) */
	int64_t close_by_ms;           /* closing: cut off at this monotonic ms (0: not closing) */
	struct pbuf rx;                /* a fragmented message being reassembled */
	struct utf8_state rx_utf8;     /* validation of the message being received */
	bool ping_out;                 /* pinged since heard_ms */
	bool peer_closed;              /* the client sent a close frame */
	bool close_sent;               /* our close frame was handed to lws */
	bool authed;                   /* auth = token: a valid token was shown */
	/* ---- line 3: what a command reads ---- */
	struct member *last_member;    /* room.c: room_member's last answer, or NULL */
	uint16_t rate_strikes;
	struct bucket rate_cmds, rate_abuse, rate_joins, rate_history;
	/* ---- the rest ---- */
	struct bucket rate_names;
	uint8_t close_reason;          /* enum close_reason, for metrics and logs */
	bool counted_ip;               /* holds a count in server->per_ip */
	bool read_waiting;             /* on server->read_waiters */
	uint32_t name_len;
	char *name;                    /* display name, owned */
	struct hmap rooms;             /* struct member *, by room pointer */
	uint64_t serial;
	const char *close_text;        /* static reason sent with close_code */
	struct conn *anext, *aprev;    /* server->unauthed, oldest first */
	int64_t auth_deadline;         /* CLOCK_MONOTONIC ms: close with 4001 unless authed */
	struct token_claims *claims;   /* the token's claims, owned; NULL: none */
	ev_timer expiry_w;             /* authn.c: 4001 at the token's exp + token_grace */
	struct catchup *cu_tail;
	uint32_t ncatchup;
	struct conn *wnext, *wprev;    /* server->read_waiters */
	char session[17];
	char peer[NETADDR_MAX];        /* canonical client address (netaddr.h) */
	struct user_conns *user_entry;  /* users.c: the entry of its name */
	uint32_t user_idx;             /* in user_entry->v */
	char *close_msg;               /* owned reason for close_code, or NULL */
	/* hangup.c: the peer hung up and its close waits for its turn */
	int hangup_fd;                 /* fd + 1 in hangup's epoll set; 0: not in it */
	struct conn *hnext, *hprev;    /* server->hangup's queue */
};

#define CONN_HOT 128
#if UINTPTR_MAX == UINT64_MAX /* (the layout above is for 64-bit pointers) */
_Static_assert(offsetof(struct conn, q) == 64, "struct conn: the queue opens line 1");
_Static_assert(offsetof(struct conn, next) == CONN_HOT, "struct conn: hot fields in two lines");
_Static_assert(offsetof(struct conn, last_member) == CONN_HOT + 64, "struct conn: a frame in, one line");
_Static_assert(offsetof(struct conn, rate_names) <= CONN_HOT + 128, "struct conn: a command, one line");
#endif

/* lws's per-session data holds a struct conn at its first 64-byte
 * boundary (server.c asks for CONN_PSS_SIZE bytes). */
#define CONN_PSS_SIZE (sizeof(struct conn) + 63)
static inline struct conn *conn_of_pss(void *user)
{
	return (struct conn *)(((uintptr_t)user + 63) & ~(uintptr_t)63);
}

/* peer: the client address (netaddr_client). */
void conn_open(struct conn *c, struct server *s, struct lws *wsi, const char *peer);
/* The same for a connection of another kind, without the welcome (a
 * Socket.IO client gets it after its CONNECT: conn_send_welcome). wsi
 * NULL: no socket of its own (a Socket.IO polling session). */
void conn_open_kind(struct conn *c, struct server *s, struct lws *wsi, const char *peer,
		    uint8_t kind);
void conn_send_welcome(struct conn *c);
/* Open connections from a client address. */
uint32_t conn_count_ip(struct server *s, const char *addr);
void conn_release(struct conn *c);
/* The live connection with this serial, or NULL (it closed): how a reply
 * that outlives a callback (durable publish, read from disk) finds its
 * connection again. */
struct conn *conn_by_serial(struct server *s, uint64_t serial);
/* Shutdown, after the last connection closed: frees the connection
 * indexes (per-address counts, by serial). */
void conn_teardown(struct server *s);

/*
 * A connection that is about to have something to flush will have lws
 * asked whether it holds an unsent tail (flush_queue:
 * lws_partial_buffered), which reads a line of lws's own connection state:
 * cold by then, one wait on memory per delivery. Asked when the
 * connection joins the flush list (in a fan-out: while the next members'
 * lines are on their way, room_fanout), the line is in the cache when the
 * flush asks again (a separate pass over a block of members measured no
 * better). The answer is not used:
 * lws's state can change before the flush. lws's API, not its struct
 * layout: nothing here depends on lws internals.
 */
static inline void conn_warm(const struct conn *c)
{
	if (c->wsi) {
		int held = lws_partial_buffered(c->wsi);
		(void)held;
	}
}

/* Queues a reference to a live frame (a room's message or presence event).
 * If the connection's live frames (queued and held) would pass the send
 * queue limits, it is closed with 4008 instead (the caller carries on
 * either way). */
void conn_send(struct conn *c, struct frame *f);
/* 1 if one more live frame of len bytes stays within the limits. */
int conn_live_fits(const struct conn *c, size_t len);
/* Queues a reference to a reply (or a replayed message). Replies never
 * close the connection; when more than the send queue limits of them
 * wait, the connection stops reading commands until half have gone out. */
void conn_send_reply(struct conn *c, struct frame *f);
/* The queueing half of conn_send and conn_send_reply, for a frame already
 * in the connection's own wire form (a Socket.IO session's WebSocket
 * queues its renditions with these): the same limits and actions. The
 * caller has checked that the connection is not closing. */
void conn_queue_live(struct conn *c, struct frame *f);
void conn_queue_reply(struct conn *c, struct frame *f);
/* Queues a copy of the JSON text, as a reply. */
void conn_send_text(struct conn *c, const char *text, size_t len);
/* Writes queued frames until the queue is empty or the socket is full.
 * Returns -1 if the connection must close. */
int conn_flush(struct conn *c);
/* Closes with code at the next WRITEABLE (after the queued output, except
 * for a slow consumer, whose queue is dropped). */
void conn_close_later(struct conn *c, uint16_t code);
/* conn_close_later with a reason of its own (copied, at most 123 bytes,
 * cut on a character): the HTTP API's disconnect, bans. */
void conn_close_msg(struct conn *c, uint16_t code, const char *reason, size_t len);
/* The close reason (metrics label) of a close code. */
int conn_reason_of(uint16_t code);
/* Removes c from every room (a safe point only: not inside a fan-out). */
void conn_leave_all(struct conn *c);
/* The client sent something (a frame or a pong): it is alive. */
static inline void conn_heard(struct conn *c)
{
	c->heard_ms = (int64_t)(util_mono_us() / 1000);
	c->ping_out = false;
}
/* Keep-alive, called about twice a second for every connection: pings one
 * quiet for ping_interval, hangs up one quiet for ping_timeout. */
void conn_keepalive(struct conn *c, int64_t now_ms);
/* Sets the display name (copied). */
void conn_set_name(struct conn *c, const char *name, size_t len);

#endif
