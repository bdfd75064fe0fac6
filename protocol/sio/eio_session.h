/*
 * eio_session.h - one Engine.IO v4 session as a state machine with no
 * sockets and no timers (eio_session_ prefix).
 *
 * The server edge owns the sockets: it tells the session what happened (a
 * polling GET or POST arrived, a WebSocket frame, a connection went away,
 * the time passed) and gets back a set of actions (EIO_ACT_*) to perform.
 * Time is a monotonic clock in milliseconds passed in by the caller; the
 * edge arms one timer for eio_session_deadline() and calls
 * eio_session_tick() when it fires.
 *
 * States:
 *
 *   OPENING ──open packet handed out──► OPEN ──WS with this sid──► UPGRADING
 *                                        ▲  ◄──probe failed/timeout──┘  │
 *                                        └───────────"5" on the probe───┘
 *   any ──eio_session_close()──► CLOSING ──queue flushed ("1" on polling)──► CLOSED
 *   any ──ping timeout, client close, bad packet, transport gone──► CLOSED
 *
 * The upgrade, as socket.io-client v4 does it with default options:
 *
 *   1. GET  ?EIO=4&transport=polling          -> 0{"sid":…,"upgrades":["websocket"],…}
 *   2. POST 40 / GET 40{"sid":…}              (Socket.IO CONNECT over polling)
 *   3. GET  (held: nothing to send yet)
 *   4. WebSocket ?EIO=4&transport=websocket&sid=…   eio_session_ws_attach
 *   5. client "2probe" on the WS -> server "3probe" on the WS, and the held
 *      GET of step 3 is released with "6" (noop) so the client can pause
 *      polling
 *   6. client "5" on the WS -> the WebSocket is the transport; what was
 *      queued goes out on it; polling requests with this sid now get 400.
 *
 * Outgoing queue: packets wait here until the transport takes them (a GET
 * response or WebSocket writes). It is bounded in packets and bytes
 * (eio_config); a message that would pass either bound closes the session
 * with reason EIO_CLOSE_QUEUE_FULL instead of being queued: a client that
 * does not read is cut, as Parley cuts a slow native client, rather than
 * losing messages silently. Control packets (ping, noop, close) are never
 * refused: at most one of each is outstanding.
 *
 * Ownership: queued data is either copied (eio_session_send) or shared with
 * a release callback (eio_session_send_ref: the fan-out's refcounted frame
 * is then not copied per session). Packets handed to the caller from
 * eio_session_on_post point into the caller's body buffer.
 */
#ifndef PARLEY_EIO_SESSION_H
#define PARLEY_EIO_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "eio.h"

enum eio_state {
	EIO_S_OPENING,
	EIO_S_OPEN,
	EIO_S_UPGRADING,
	EIO_S_CLOSING,
	EIO_S_CLOSED,
};

enum eio_transport {
	EIO_T_POLLING,
	EIO_T_WEBSOCKET,
};

/* Why a session closed; the names are the reference server's disconnect
 * reasons where it has one. */
#define EIO_CLOSE_REASONS(X) \
	X(EIO_CLOSE_NONE,            "") \
	X(EIO_CLOSE_CLIENT,          "transport close")       /* "1" from the client, or its socket closed */ \
	X(EIO_CLOSE_PING_TIMEOUT,    "ping timeout") \
	X(EIO_CLOSE_PARSE_ERROR,     "parse error") \
	X(EIO_CLOSE_TRANSPORT_ERROR, "transport error")       /* overlapping polls, a request dropped */ \
	X(EIO_CLOSE_QUEUE_FULL,      "queue full") \
	X(EIO_CLOSE_SERVER,          "forced close")          /* eio_session_close */ \
	X(EIO_CLOSE_TOO_LARGE,       "payload too large")

enum eio_close_reason {
#define EIO_X(name, s) name,
	EIO_CLOSE_REASONS(EIO_X)
#undef EIO_X
};

const char *eio_close_reason_str(enum eio_close_reason r);

/* Actions for the edge, as a bit set. When several are set, perform them
 * in this order. */
enum {
	EIO_ACT_HTTP_ERROR   = 1 << 0, /* answer this request with http_status and
					* eio_encode_http_error(http_err) */
	EIO_ACT_POST_OK      = 1 << 1, /* answer this POST 200 "ok" */
	EIO_ACT_HOLD         = 1 << 2, /* keep this GET open, no answer yet */
	EIO_ACT_POLL_RESPOND = 1 << 3, /* answer the held GET now with
					* eio_session_poll_body() */
	EIO_ACT_PROBE_WRITE  = 1 << 4, /* write "3probe" on the probing WebSocket */
	EIO_ACT_PROBE_CLOSE  = 1 << 5, /* close the probing WebSocket; the session
					* goes on over polling */
	EIO_ACT_WS_WRITABLE  = 1 << 6, /* ask for a writable callback on the
					* session's WebSocket, then write
					* eio_session_ws_next() frames */
	EIO_ACT_CLOSE        = 1 << 7, /* the session is CLOSED: tell the upper
					* layer (close_reason), close its
					* connections, free it at a safe point */
};

struct eio_config {
	uint32_t ping_interval_ms;      /* 25000 in the reference server */
	uint32_t ping_timeout_ms;       /* 20000 */
	uint32_t upgrade_timeout_ms;    /* 10000: a probe not finished by then is closed */
	size_t max_payload;             /* 1000000: a POST body, a WS frame, a GET body */
	size_t max_packets_per_payload; /* packets in one POST body */
	size_t queue_max_packets;       /* outgoing queue bounds */
	size_t queue_max_bytes;
};

/* The reference server's values and Parley's bounds. */
void eio_config_defaults(struct eio_config *cfg);

struct eio_qent;

struct eio_session {
	char sid[EIO_SID_LEN + 1];
	enum eio_state state;
	enum eio_transport transport;
	enum eio_close_reason close_reason;
	const struct eio_config *cfg;   /* not owned; outlives the session */

	/* heartbeat: a ping is due at next_ping; once sent, a pong is due
	 * by pong_deadline */
	bool awaiting_pong;
	bool ping_queued;               /* a ping waits in the queue */
	uint64_t next_ping, pong_deadline;

	/* polling */
	bool poll_held;                 /* a GET waits for an answer */
	bool post_active;               /* a POST body is being read */
	bool close_sent;                /* "1" went out on polling */
	uint64_t close_deadline;        /* CLOSING over polling: wait this long for a GET */

	/* upgrade */
	bool probing;                   /* a probe WebSocket is attached */
	bool probed;                    /* it has answered "3probe" */
	uint64_t upgrade_deadline;

	/* the last failed request */
	enum eio_http_err http_err;
	int http_status;

	/* outgoing queue */
	struct eio_qent *head, *tail;
	size_t q_packets, q_bytes;
	uint64_t q_peak_bytes;          /* for metrics */
};

/* Starts a session on transport t (the handshake request). sid is copied
 * (eio_sid_format). The open packet is queued first. Returns the actions:
 * for polling the handshake GET is the held request (POLL_RESPOND); for a
 * WebSocket, WS_WRITABLE. */
unsigned eio_session_init(struct eio_session *s, const struct eio_config *cfg,
			  const char *sid, enum eio_transport t, uint64_t now);
/* Drops the queue (releasing shared data). The session may then be freed. */
void eio_session_free(struct eio_session *s);

/* ---- polling ---- */

/* A GET with this sid arrived. HOLD, POLL_RESPOND, or HTTP_ERROR (a closed
 * session: code 1; after the upgrade: code 3; a second GET while one is
 * held: code 3 and the session closes, the held one gets "1"). */
unsigned eio_session_on_get(struct eio_session *s, uint64_t now);
/* The held GET's response body: queued packets joined with \x1e, as many as
 * fit in max_payload (at least one), or "6" when nothing is queued (a poll
 * released for an upgrade), ending with "1" when the session closes ("6"
 * alone when the client closed it).
 * Clears the hold. Returns CLOSE when this response closed the session. */
unsigned eio_session_poll_body(struct eio_session *s, struct pbuf *out);

/* A POST with this sid starts (before its body is read): 0, or HTTP_ERROR
 * as for GET (a second POST at once: code 3, the session closes). */
unsigned eio_session_post_begin(struct eio_session *s, uint64_t now);
/* The whole POST body (writable: decoded in place). Message packets are
 * stored in msgs (room for max) and counted in *nmsgs; they point into
 * body. Returns POST_OK plus what the packets caused, or, for a body
 * that is too large (status 413) or does not decode (400, code 3),
 * HTTP_ERROR|CLOSE; then no message is delivered. */
unsigned eio_session_on_post(struct eio_session *s, char *body, size_t n, uint64_t now,
			     struct eio_packet *msgs, size_t max, size_t *nmsgs);

/* The client side of a held GET or a POST went away before the answer
 * (the reference: "poll connection closed prematurely"): CLOSE. */
unsigned eio_session_on_http_gone(struct eio_session *s);

/* ---- the session's WebSocket ---- */

/* A frame on the session's WebSocket (opened on it, or upgraded). A
 * message packet is stored in *msg and *have_msg set; ping, a bad packet or
 * a frame over max_payload closes. */
unsigned eio_session_on_ws_frame(struct eio_session *s, bool binary, const uint8_t *p,
				 size_t n, uint64_t now, struct eio_packet *msg, bool *have_msg);
/* Appends the next queued packet as one frame to out (a text frame's
 * "type+data", or a binary frame's bytes: *binary says which). Returns 1
 * when a frame was appended, 0 when the queue is empty, -1 when the
 * session was closing and is now flushed: close the WebSocket. */
int eio_session_ws_next(struct eio_session *s, struct pbuf *out, bool *binary);
/* The session's WebSocket closed: CLOSE. */
unsigned eio_session_on_ws_gone(struct eio_session *s);

/* ---- the upgrade ---- */

/* A WebSocket upgrade with this sid. 0 (it becomes the probe), or
 * PROBE_CLOSE with http_err set when the session is not a polling one in
 * OPEN state (closed: code 1; already upgraded or upgrading: code 3). */
unsigned eio_session_ws_attach(struct eio_session *s, uint64_t now);
/* A frame on the probe: "2probe" -> PROBE_WRITE (and the held GET is
 * released with a noop); "5" -> the WebSocket is now the transport;
 * anything else -> PROBE_CLOSE, the session stays on polling. */
unsigned eio_session_on_probe_frame(struct eio_session *s, bool binary, const uint8_t *p,
				    size_t n, uint64_t now);
/* The probe closed before "5": the session stays on polling. */
unsigned eio_session_on_probe_gone(struct eio_session *s);

/* ---- sending, closing, time ---- */

/* Queues a message packet (p->type must be EIO_MESSAGE) with a copy of its
 * data. Returns POLL_RESPOND / WS_WRITABLE / 0 (waits for the next GET),
 * CLOSE when the queue is full, 0 when the session is closing or closed
 * (the packet is dropped). */
unsigned eio_session_send(struct eio_session *s, const struct eio_packet *p);
/* The same without a copy: p->data stays valid until unref(ref) is called,
 * which happens exactly once on every path, refusals included. */
unsigned eio_session_send_ref(struct eio_session *s, const struct eio_packet *p,
			      void (*unref)(void *ref), void *ref);

/* Server-side close: what is queued is still delivered, then "1" over
 * polling (on the held GET, or the next one within ping_interval) or the
 * WebSocket is closed. */
unsigned eio_session_close(struct eio_session *s, uint64_t now);

/* Runs the clock: pings, the pong deadline, the upgrade timeout, a closing
 * session's wait for its last GET. */
unsigned eio_session_tick(struct eio_session *s, uint64_t now);
/* When eio_session_tick next has something to do (UINT64_MAX: never). */
uint64_t eio_session_deadline(const struct eio_session *s);

#endif
