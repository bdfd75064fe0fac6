/*
 * ws.c - the lws protocol callback: WebSocket connections on /ws and the
 * small HTTP endpoints (/healthz, /metrics). Static files are an lws mount
 * (server.c).
 *
 * Upgrades are checked before they happen (HTTP_CONFIRM_UPGRADE): path,
 * draining (503), Origin allowlist (403), connection limits (503 overall,
 * 429 per client address).
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
#include "metrics.h"
#include "server.h"
#include "sio/sio_edge.h"
#include "store.h"
#include "ws.h"

static int close_with(struct conn *c, struct lws *wsi, uint16_t code, const char *why)
{
	if (!c->close_code) {
		c->close_code = code;
		c->close_reason = (uint8_t)conn_reason_of(code);
	}
	lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)why, strlen(why));
	return -1;
}

/*
 * Bad input (binary, invalid UTF-8, too big) closes the connection, but not
 * by hanging up at once: the client is usually still sending the rest of
 * that message, and a socket closed with unread input is reset, which
 * destroys the close frame before the client reads it. So the close is
 * queued like any output (conn_close_later), the rest of the input is
 * read and ignored, and the client sees 1003/1007/1009 with a reason.
 */
static int reject(struct conn *c, uint16_t code)
{
	pbuf_free(&c->rx);
	c->rx_utf8.need = 0;
	conn_close_later(c, code);
	return 0;
}

static int on_receive(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
	struct server *s = c->srv;
	int first = lws_is_first_fragment(wsi);
	int done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (c->kind == CONN_SIO)
		return sio_conn_receive(c, wsi, in, len);
	if (c->close_code)
		return 0; /* closing: ignore what is still in flight */
	if (lws_frame_is_binary(wsi))
		return reject(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
	if (c->rx.len + len > s->cfg->max_message_size)
		return reject(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
	if (utf8_feed(&c->rx_utf8, (const unsigned char *)in, len) < 0 ||
	    (done && utf8_end(&c->rx_utf8) < 0))
		return reject(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD);
	if (first && done && !c->rx.len) {
		cmd_handle(c, in, len); /* whole: straight from lws's buffer */
		return 0;
	}
	pbuf_add(&c->rx, in, len);
	if (done) {
		cmd_handle(c, c->rx.data, c->rx.len);
		pbuf_reset(&c->rx);
		if (c->rx.cap > 16384)
			pbuf_free(&c->rx); /* don't keep a big buffer per connection */
	}
	return 0;
}

static int on_writeable(struct conn *c, struct lws *wsi)
{
	if (conn_flush(c) < 0)
		return -1;
	if (c->close_code) {
		if (c->q.count || lws_partial_buffered(wsi))
			return 0; /* drain first; lws calls again */
		const char *why = "";
		switch (c->close_code) {
		case CLOSE_SLOW_CONSUMER: why = "slow consumer"; break;
		case LWS_CLOSE_STATUS_GOINGAWAY: why = "server going away"; break;
		case CLOSE_RATE_LIMITED: why = "rate limited"; break;
		case CLOSE_AUTH: why = c->close_text ? c->close_text : "authentication failed"; break;
		case LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE: why = "message too big"; break;
		case LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE: why = "binary frames are not supported"; break;
		case LWS_CLOSE_STATUS_INVALID_PAYLOAD: why = "invalid UTF-8"; break;
		}
		return close_with(c, wsi, c->close_code, why);
	}
	return 0;
}

/* ---- HTTP ---- */

static int http_reply(struct lws *wsi, unsigned int status, const char *type,
		      const char *body, size_t n)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	/* Raw HTTP/1 body: lws buffers what the socket does not take. */
	if (lws_write(wsi, (unsigned char *)body, n, LWS_WRITE_HTTP_FINAL) != (int)n)
		return 1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int text_reply(struct lws *wsi, unsigned int status, const char *body)
{
	return http_reply(wsi, status, "text/plain; charset=utf-8", body, strlen(body));
}

static int on_http(struct server *s, struct lws *wsi, const char *path)
{
	char uri[64];

	/* Mounted at /healthz and /metrics; `in` is what follows the
	 * mountpoint, so ask for the whole URI. */
	(void)path;
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
		return text_reply(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
	if (!strcmp(uri, "/metrics")) {
		struct pbuf b = { 0 };
		metrics_render(s, &b);
		int r = http_reply(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
				   b.data, b.len);
		pbuf_free(&b);
		return r;
	}
	if (strcmp(uri, "/healthz"))
		return text_reply(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
	if (s->draining)
		return text_reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "draining\n");
	if (s->store) {
		struct store_stats st;
		store_get_stats(s->store, &st);
		if (st.failing)
			return text_reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "storage failing\n");
	}
	return text_reply(wsi, HTTP_STATUS_OK, "ok\n");
}

/* 1 if origin is in the comma-separated list. */
static int origin_allowed(const char *list, const char *origin)
{
	size_t n = strlen(origin);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t m = strcspn(p, ", ");
		if (m == n && !memcmp(p, origin, n))
			return 1;
		p += m;
	}
	return 0;
}

static int is_unix_peer(struct server *s, struct lws *wsi)
{
	return s->vhost_unix && lws_get_vhost(wsi) == s->vhost_unix;
}

/* Refuses an upgrade with an HTTP status (counted by status for
 * parley_rejected_total); returns what the callback must. */
static int refuse(struct server *s, struct lws *wsi, unsigned int status, const char *why)
{
	int i = status == 403 ? 0 : status == 404 ? 1 : status == 429 ? 2 : 3;

	s->stats.rejected[i]++;
	log_info("refused", "status=%u reason=%s", status, log_q(why));
	if (lws_return_http_status(wsi, status, why))
		return -1;
	return 1;
}

static int confirm_upgrade(struct server *s, struct lws *wsi)
{
	const struct config *cfg = s->cfg;
	char uri[32], addr[64], origin[256];

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
		uri[0] = '\0';
	/* Socket.IO clients upgrade at /socket.io/ (server/sio/): the same
	 * checks below, then Engine.IO's own. */
	bool sio = cfg->sio && sio_is_path(uri);
	if (strcmp(uri, "/ws") && !sio)
		return refuse(s, wsi, HTTP_STATUS_NOT_FOUND, "WebSocket endpoint is /ws");
	if (s->draining)
		return refuse(s, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "server is shutting down");
	if (cfg->origins && lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0 &&
	    !origin_allowed(cfg->origins, origin))
		return refuse(s, wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed");
	if (cfg->max_connections && s->nconns >= cfg->max_connections)
		return refuse(s, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "too many connections");
	if (cfg->max_connections_per_ip) {
		netaddr_client(wsi, &s->trusted, is_unix_peer(s, wsi), addr, sizeof(addr));
		if (conn_count_ip(s, addr) >= cfg->max_connections_per_ip)
			return refuse(s, wsi, 429, "too many connections from this address");
	}
	return sio ? sio_confirm_upgrade(s, wsi) : 0;
}

/* 1 if this established WebSocket came in at /socket.io/. */
static int is_sio(struct server *s, struct lws *wsi)
{
	char uri[32];

	return s->cfg->sio && lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 &&
	       sio_is_path(uri);
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		void *in, size_t len)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	struct conn *c = user;
	char addr[64];

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return s->draining; /* draining: accept nothing new */
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(s, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		netaddr_client(wsi, &s->trusted, is_unix_peer(s, wsi), addr, sizeof(addr));
		if (is_sio(s, wsi))
			sio_ws_open(c, s, wsi, addr);
		else
			conn_open(c, s, wsi, addr);
		cmd_conn_established(c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && c->srv)
			c->peer_closed = true;
		return 0;
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
