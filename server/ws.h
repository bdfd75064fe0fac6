/* ws.h - the lws protocol callback of parleyd. */
#ifndef PARLEY_WS_H
#define PARLEY_WS_H

#include <libwebsockets.h>

struct store_handlers;
extern const struct store_handlers server_store_handlers;

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len);

/* For the Socket.IO edge, which reuses the WebSocket side of a conn: */
struct conn;
struct server;
/* SERVER_WRITEABLE for c on wsi: flush, then the close frame when closing. */
int ws_writeable(struct conn *c, struct lws *wsi);
/* 1 if origin is in the comma-separated allowlist (the `origins` rule). */
int ws_origin_allowed(const char *list, const char *origin);
/* 1 if wsi came in on the Unix-socket listener. */
int ws_is_unix_peer(struct server *s, struct lws *wsi);
/* Counts a refused connection attempt under its HTTP status
 * (parley_rejected_total). */
void ws_count_refusal(struct server *s, unsigned int status);

#endif
