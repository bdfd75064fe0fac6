/*
 * ws.c - the lws protocol callback: WebSocket connections on /ws and the
 * small HTTP endpoints (/healthz). Static files are an lws mount (server.c).
 *
 * Inbound messages: lws hands us each frame, in pieces when a frame is
 * larger than its buffer. A message that arrives whole in one piece is
 * decoded straight from lws's buffer; anything else is reassembled in
 * conn->rx, bounded by max_message_size (past it: close 1009).
 */
#include <string.h>

#include "cmd.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "ws.h"

static int close_with(struct lws *wsi, enum lws_close_status code, const char *why)
{
	lws_close_reason(wsi, code, (unsigned char *)why, strlen(why));
	return -1;
}

static void count_close(struct server *s, uint16_t code)
{
	static const uint16_t codes[6] = { 1000, 1001, 1003, 1007, 1009, 4008 };
	for (int i = 0; i < 6; i++)
		if (codes[i] == code)
			s->stats.close_by_code[i]++;
}

static int on_receive(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
	struct server *s = c->srv;
	int first = lws_is_first_fragment(wsi);
	int done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (c->close_code)
		return 0; /* closing: ignore what is still in flight */
	if (lws_frame_is_binary(wsi)) {
		count_close(s, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
		return close_with(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				  "binary frames are not supported");
	}
	if (first && done && !c->rx.len) {
		if (len > s->cfg->max_message_size)
			goto too_big;
		cmd_handle(c, in, len);
		return 0;
	}
	if (c->rx.len + len > s->cfg->max_message_size)
		goto too_big;
	pbuf_add(&c->rx, in, len);
	if (done) {
		cmd_handle(c, c->rx.data, c->rx.len);
		pbuf_reset(&c->rx);
		if (c->rx.cap > 16384)
			pbuf_free(&c->rx); /* don't keep a big buffer per connection */
	}
	return 0;
too_big:
	count_close(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
	return close_with(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
}

static int on_writeable(struct conn *c, struct lws *wsi)
{
	if (conn_flush(c) < 0)
		return -1;
	if (c->close_code) {
		if (c->q.count || lws_partial_buffered(wsi))
			return 0; /* drain first; lws calls again */
		count_close(c->srv, c->close_code);
		return close_with(wsi, (enum lws_close_status)c->close_code,
				  c->close_code == CLOSE_SLOW_CONSUMER ? "slow consumer" :
				  "server going away");
	}
	return 0;
}

static int http_reply(struct lws *wsi, unsigned int status, const char *body)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;
	size_t n = strlen(body);

	if (lws_add_http_common_headers(wsi, status, "text/plain; charset=utf-8",
					(lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	memcpy(p, body, n);
	if (lws_write(wsi, p, n, LWS_WRITE_HTTP_FINAL) != (int)n)
		return 1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_http(struct server *s, struct lws *wsi, const char *path)
{
	/* mounted at /healthz */
	if (path && *path && strcmp(path, "/") && strcmp(path, "/healthz"))
		return http_reply(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
	if (s->draining)
		return http_reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "draining\n");
	if (s->store) {
		struct store_stats st;
		store_get_stats(s->store, &st);
		if (st.failing)
			return http_reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
					  "storage failing\n");
	}
	return http_reply(wsi, HTTP_STATUS_OK, "ok\n");
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	struct conn *c = user;
	char uri[32];

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return s->draining; /* draining: accept nothing new */
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* WebSocket upgrades only on /ws */
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 ||
		    strcmp(uri, "/ws") || s->draining)
			return 1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		conn_open(c, s, wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(c, wsi);
	case LWS_CALLBACK_CLOSED:
		cmd_conn_gone(s, c);
		conn_release(c);
		return 0;
	case LWS_CALLBACK_HTTP:
		return on_http(s, wsi, in);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (s && s->store)
			store_poll(s->store, &server_store_handlers, s);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
