/*
 * sio_edge.h - Socket.IO clients in parleyd (sio_ prefix): the Engine.IO v4
 * WebSocket transport at /socket.io/ and the Socket.IO v5 layer on it,
 * wired to the command core. The codecs and the Engine.IO session machine
 * are protocol/sio/; docs/socketio.md is the user's view.
 *
 * A Socket.IO WebSocket is a struct conn of kind CONN_SIO (conn.h): the
 * core sees an ordinary connection. The seams:
 *   - conn_send() hands every frame meant for it to sio_conn_send(), which
 *     queues the frame's Socket.IO rendition: `42["message",{…}]` for a
 *     message, an ACK for a reply. The rendition is built once per frame
 *     and kept on it (frame->sio), so a fan-out to many Socket.IO members
 *     renders once, as the native frame is encoded once.
 *   - Events become native command text ({"type":"join","id":…,…}) handed
 *     to cmd_handle(): one rule set, the same validation and rate limits.
 *     Socket.IO ack ids start at 0, the core's at 1: core id = ack id + 1.
 *   - CONNECT's {token} / {name} go through the native hello; a refusal is
 *     answered with CONNECT_ERROR.
 *
 * Not here yet: HTTP long-polling (and so the upgrade from it) and
 * connection state recovery: see docs/socketio.md, "Status".
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

/* Start-up (reads the sio_* settings) and shutdown. */
void sio_edge_setup(struct server *s);
void sio_edge_teardown(void);

/* 1 if uri (the request path, no query) is the Socket.IO endpoint. */
int sio_is_path(const char *uri);
/* The Engine.IO checks of a WebSocket upgrade to /socket.io/ (EIO,
 * transport, sid), after the common ones (origin, limits). Returns 0 to
 * accept, else what the CONFIRM_UPGRADE callback must return (a 400 with
 * Engine.IO's JSON error body was written). */
int sio_confirm_upgrade(struct server *s, struct lws *wsi);
/* ESTABLISHED on a /socket.io/ WebSocket: opens c as a CONN_SIO
 * connection and sends the Engine.IO open packet. */
void sio_ws_open(struct conn *c, struct server *s, struct lws *wsi, const char *peer);

/* A piece of a WebSocket message on a CONN_SIO connection (ws.c's RECEIVE). */
int sio_conn_receive(struct conn *c, struct lws *wsi, const char *in, size_t len);
/* conn_send() for CONN_SIO: queues f's rendition (see above). */
void sio_conn_send(struct conn *c, struct frame *f);
/* conn_close_later() is closing c with code (before it sets close_code):
 * an authentication failure before CONNECT completed is told to the client
 * as CONNECT_ERROR. */
void sio_conn_closing(struct conn *c, uint16_t code);
/* conn_release(): frees the Socket.IO state. */
void sio_conn_release(struct conn *c);

#endif
