/*
 * sio_edge.h - Socket.IO clients in parleyd (sio_ prefix): Engine.IO v4 at
 * /socket.io/ (HTTP long-polling, WebSocket, the upgrade between them) and
 * the Socket.IO v5 layer on it, wired to the command core. The codecs and
 * the Engine.IO session machine are protocol/sio/; docs/socketio.md is the
 * user's view.
 *
 * A session outlives its HTTP requests, so it is not lws per-session data:
 * struct sio_conn (heap) holds the session's struct conn (kind CONN_SIO),
 * which the core sees as an ordinary connection (rooms, rate limits,
 * connection limits). Its wsi is the session's WebSocket once it has one,
 * NULL while it polls. The lws per-session data of each /socket.io/ request
 * or WebSocket is a "port" (a struct conn of kind CONN_SIO_PORT pointing to
 * the session); ws.c hands the callbacks of ports to sio_port_callback.
 *
 * The seams with the core:
 *   - conn_send() hands every frame meant for a session to sio_conn_send(),
 *     which queues the frame's Socket.IO rendition: `42["message",{…}]` for
 *     a message, an ACK for a reply. The rendition is built once per frame
 *     and kept on it (frame->sio), so a fan-out to many Socket.IO members
 *     renders once, as the native frame is encoded once. On a WebSocket it
 *     goes through the conn's own queue and direct send(); while polling,
 *     the Engine.IO queue holds a reference (no copy per session).
 *   - Events become native command text ({"type":"join","id":…,…}) handed
 *     to cmd_handle(): one rule set, the same validation and rate limits.
 *     Socket.IO ack ids start at 0, the core's at 1: core id = ack id + 1.
 *   - CONNECT's {token} / {name} go through the native hello; a refusal is
 *     answered with CONNECT_ERROR.
 *   - conn_close_later() tells the session (sio_conn_closing), which closes
 *     its Engine.IO session the Engine.IO way.
 *
 * Lifetime (nothing freed mid-callback): a closed session leaves the sid
 * map at once and is freed from its own timer once no port refers to it.
 */
#ifndef PARLEY_SIO_EDGE_H
#define PARLEY_SIO_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

struct conn;
struct frame;
struct server;

/* Start-up (reads the sio_* settings) and shutdown (frees what is left,
 * after the lws context is gone and before the rooms are). */
void sio_edge_setup(struct server *s);
void sio_edge_teardown(struct server *s);
/* The /socket.io mount, followed by next (server.c's mount list). */
const struct lws_http_mount *sio_edge_mount(const struct lws_http_mount *next);

/* parley-sio-conformance (tests/sio/conformance.c): the sessions behave
 * like the public Socket.IO protocol test suite's server instead of
 * Parley (see sio_edge.c). Before server_run. */
void sio_edge_conformance(void);

/* 1 if uri (the request path, no query) is the Socket.IO endpoint. */
int sio_is_path(const char *uri);
/* 1 if this HTTP request (any method) is for /socket.io/. */
int sio_http_match(struct lws *wsi);

/* The Engine.IO checks of a WebSocket upgrade to /socket.io/ (EIO,
 * transport, sid; an upgrade of a polling session is attached here), after
 * the common ones (origin, limits). Returns 0 to accept, else what the
 * CONFIRM_UPGRADE callback must return (a 400 with Engine.IO's JSON error
 * body was written). */
int sio_confirm_upgrade(struct server *s, struct lws *wsi);
/* ESTABLISHED on a /socket.io/ WebSocket; port is its per-session data.
 * Returns what the callback must. */
int sio_ws_open(struct conn *port, struct server *s, struct lws *wsi, const char *peer);
/* LWS_CALLBACK_HTTP for /socket.io/. */
int sio_http(struct server *s, struct lws *wsi, struct conn *port, const char *peer);

/* The callbacks ws.c passes on for a port. */
static inline bool sio_port_reason(enum lws_callback_reasons r)
{
	return r == LWS_CALLBACK_RECEIVE || r == LWS_CALLBACK_SERVER_WRITEABLE ||
	       r == LWS_CALLBACK_WS_PEER_INITIATED_CLOSE || r == LWS_CALLBACK_CLOSED ||
	       r == LWS_CALLBACK_HTTP_BODY || r == LWS_CALLBACK_HTTP_BODY_COMPLETION ||
	       r == LWS_CALLBACK_HTTP_WRITEABLE || r == LWS_CALLBACK_CLOSED_HTTP;
}
int sio_port_callback(struct server *s, struct lws *wsi, enum lws_callback_reasons reason,
		      struct conn *port, void *in, size_t len);

struct pbuf;
/* Appends the parley_sio_* metrics (Prometheus text) to b. */
void sio_edge_metrics(struct pbuf *b);

/* conn_send() (live: a room's message or presence) and conn_send_reply()
 * (reply) for CONN_SIO: queues f's rendition (see above), with the same
 * limits. */
void sio_conn_send(struct conn *c, struct frame *f, bool reply);
/* For catchup.c's pump, on a session that is not on a WebSocket (polling,
 * or upgrading): whether the Engine.IO queue has room for more of a
 * replay, or of the live frames held behind it. It is filled to 512
 * packets / 2 MiB (half the Engine.IO defaults); the queue's bounds are
 * that plus the send queue limits, left to live frames of other rooms
 * and control packets. Returns 1 or 0; -1 when the session is on its
 * WebSocket, whose frames go through the conn's own queue (the native
 * rule applies). */
int sio_catchup_room(const struct conn *c);

/* conn_close_later() is closing c with code (before it sets close_code):
 * an authentication failure before CONNECT completed is told to the client
 * as CONNECT_ERROR; a polling session is closed the Engine.IO way. */
void sio_conn_closing(struct conn *c, uint16_t code);

#endif
