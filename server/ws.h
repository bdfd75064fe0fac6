/* ws.h - the lws protocol callback of parleyd. */
#ifndef PARLEY_WS_H
#define PARLEY_WS_H

#include <libwebsockets.h>

struct store_handlers;
extern const struct store_handlers server_store_handlers;

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len);

#endif
