/*
 * ws.c - the lws protocol callback: WebSocket connections on /ws and the
 * small HTTP endpoints (/healthz, /metrics). Static files are an lws mount
 * (server.c).
 *
 * Upgrades are checked before they happen (HTTP_CONFIRM_UPGRADE): the
 * handshake itself (400 without a valid Sec-WebSocket-Key or the
 * Connection: Upgrade token, 426 for a version other than 13), path (404),
 * draining (503), Origin allowlist (403), connection limits (503 overall,
 * 429 per client address). Every refusal answers with a status: lws would
 * otherwise drop a bad handshake without a word, or upgrade it anyway.
 * Each check fails closed: a header that cannot be read whole (longer than
 * its buffer) is a refusal, never a skipped check.
 *
 * HTTP/2 is never spoken: ALPN offers only http/1.1 (server.c), and an
 * `Upgrade: h2c` request is answered here as HTTP/1.1, because lws 4.1
 * would switch protocols and its HTTP/2 path needs LWS_PRE bytes before
 * every body we write (a crash with our plain buffers).
 *
 * Inbound messages: lws hands us each frame, in pieces when a frame is
 * larger than its buffer. A message that arrives whole in one piece is
 * decoded straight from lws's buffer; anything else is reassembled in
 * conn->rx, bounded by max_message_size (past it: close 1009).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authn.h"
#include "cmd.h"
#include "conn.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "sio/sio_edge.h"
#include "store.h"
#include "util.h"
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

	conn_heard(c); /* any frame counts for the keep-alive (protocol.md §15) */
	if (c->close_code)
		return 0; /* closing: ignore what is still in flight */
	if (lws_frame_is_binary(wsi))
		return reject(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
	/* What the frame header declares counts at once: a frame announcing
	 * 2^62 bytes is refused on its first payload bytes, not after
	 * max_message_size of them have arrived. */
	if ((uint64_t)c->rx.len + len + lws_remaining_packet_payload(wsi) >
	    s->cfg->max_message_size)
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
	if (c->hangup == HANGUP_QUEUED)
		return 0; /* its peer is gone: hangup.c releases it, then we write */
	if (conn_flush(c) < 0)
		return -1;
	if (c->close_code) {
		if (c->q.count || lws_partial_buffered(wsi))
			return 0; /* drain first; lws calls again */
		if (c->close_sent)
			/* The close frame is out (lws wrote it and asked for
			 * this callback again): hang up now. The socket lingers
			 * (linger.c), so the frame is not lost to a reset. */
			return -1;
		c->close_sent = true;
		const char *why = "";
		switch (c->close_code) {
		case CLOSE_SLOW_CONSUMER: why = "slow consumer"; break;
		case LWS_CLOSE_STATUS_GOINGAWAY: why = "server going away"; break;
		case CLOSE_RATE_LIMITED: why = "rate limited"; break;
		case CLOSE_AUTH: why = c->close_text ? c->close_text : "authentication failed"; break;
		case CLOSE_BANNED: why = "banned"; break; /* the reason: close_msg */
		case LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE: why = "message too big"; break;
		case LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE: why = "binary frames are not supported"; break;
		case LWS_CLOSE_STATUS_INVALID_PAYLOAD: why = "invalid UTF-8"; break;
		}
		if (c->close_msg)
			why = c->close_msg; /* conn_close_msg: the API's reason */
		return close_with(c, wsi, c->close_code, why);
	}
	return 0;
}

/* ---- HTTP ---- */

/* Answers a plain HTTP/1.1 request (LWS_CALLBACK_HTTP). Only HTTP/1.1
 * reaches here (see the top of the file): lws_write() of an HTTP/2 body
 * would need LWS_PRE bytes of headroom before `body`. */
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

/* The reason phrase of the statuses parleyd answers upgrades with. */
static const char *reason_phrase(unsigned int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

/*
 * Answers a request that asked for an upgrade (HTTP_CONFIRM_UPGRADE) with
 * a complete HTTP/1.1 response: status, one optional extra header, a text
 * body, and Connection: close (lws ends the connection after it: it has
 * not parsed the request's keep-alive yet). The status line is ours: at
 * this point lws has not noted the request's version and would write
 * HTTP/1.0. The caller returns 1 and lws completes the transaction.
 * Returns 0, or -1 when the response could not be written (hang up).
 */
static int upgrade_reply(struct lws *wsi, unsigned int status, const char *hname,
			 const char *hval, const char *type, const char *body, size_t n)
{
	unsigned char *buf = xmalloc(LWS_PRE + 1024 + n), *start = buf + LWS_PRE, *p = start,
		      *end = start + 1024;
	char clen[24];
	int rc = -1;

	snprintf(clen, sizeof(clen), "%zu", n);
	p += lws_snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %u %s\x0d\x0a", status,
			  reason_phrase(status));
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SERVER,
					 (const unsigned char *)"parley", 6, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)type, (int)strlen(type), &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (const unsigned char *)clen, (int)strlen(clen), &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p, end) ||
	    (hname && lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
						  (const unsigned char *)hval, (int)strlen(hval),
						  &p, end)) ||
	    lws_finalize_http_header(wsi, &p, end))
		goto out;
	memcpy(p, body, n);
	p += n;
	if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) == (int)(p - start))
		rc = 0;
out:
	free(buf);
	return rc;
}

static int is_admin(struct server *s, struct lws *wsi)
{
	return s->vhost_admin && lws_get_vhost(wsi) == s->vhost_admin;
}

/* The body of GET uri on this listener ("not found\n" for what is not
 * served here) and its *status. metrics: where /metrics is rendered. */
static const char *endpoint(struct server *s, struct lws *wsi, const char *uri,
			    unsigned int *status, struct pbuf *metrics)
{
	*status = HTTP_STATUS_OK;
	if (!strcmp(uri, "/metrics") && (is_admin(s, wsi) || s->cfg->public_metrics)) {
		metrics_render(s, metrics);
		pbuf_addc(metrics, '\0');
		return metrics->data;
	}
	if (strcmp(uri, "/healthz")) {
		*status = HTTP_STATUS_NOT_FOUND;
		return "not found\n";
	}
	*status = HTTP_STATUS_SERVICE_UNAVAILABLE;
	if (s->draining)
		return "draining\n";
	if (s->store) {
		struct store_stats st;
		store_get_stats(s->store, &st);
		if (st.failing)
			return "storage failing\n";
	}
	const char *why = cluster_unhealthy(s);
	if (why)
		return why;
	*status = HTTP_STATUS_OK;
	return "ok\n";
}

static const char *endpoint_type(const char *uri, unsigned int status)
{
	return status == HTTP_STATUS_OK && !strcmp(uri, "/metrics") ?
		"text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8";
}

static int on_http(struct server *s, struct lws *wsi)
{
	char uri[64];
	struct pbuf m = { 0 };
	unsigned int status;

	/* Mounted at /healthz and /metrics (the admin listener has no
	 * mounts: everything comes here); `in` is what follows the
	 * mountpoint, so ask for the whole URI. A URI too long for uri[]
	 * is none of ours. */
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
		return text_reply(wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
	const char *body = endpoint(s, wsi, uri, &status, &m);
	int r = http_reply(wsi, status, endpoint_type(uri, status), body, strlen(body));
	pbuf_free(&m);
	return r;
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

/* Index of a refusal status in server_stats.rejected (metrics.c's order). */
static int rejected_index(unsigned int status)
{
	switch (status) {
	case 400: return 0;
	case 403: return 1;
	case 404: return 2;
	case 426: return 3;
	case 429: return 4;
	default: return 5; /* 503 */
	}
}

/* Refuses an upgrade with an HTTP status (counted by status for
 * parley_rejected_total), and an extra header when hname is set; returns
 * what the callback must. */
static int refuse_with(struct server *s, struct lws *wsi, unsigned int status,
		       const char *why, const char *hname, const char *hval)
{
	char body[160];

	s->stats.rejected[rejected_index(status)]++;
	log_info("refused", "status=%u reason=%s", status, log_q(why));
	int n = snprintf(body, sizeof(body), "%s\n", why);
	if (upgrade_reply(wsi, status, hname, hval, "text/plain; charset=utf-8", body,
			  (size_t)n) < 0)
		return -1;
	return 1;
}

static int refuse(struct server *s, struct lws *wsi, unsigned int status, const char *why)
{
	return refuse_with(s, wsi, status, why, NULL, NULL);
}

/* 1 if the comma-separated header value holds token (any case). */
static int has_token(const char *v, const char *token)
{
	size_t n = strlen(token);
	for (const char *p = v; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t m = strcspn(p, ",");
		size_t k = m;
		while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
			k--;
		if (k == n && !strncasecmp(p, token, n))
			return 1;
		p += m;
	}
	return 0;
}

/* 1 if key is a valid Sec-WebSocket-Key: base64 of 16 bytes (RFC 6455
 * 4.1), i.e. 22 base64 characters and "==". */
static int ws_key_valid(const char *key)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (strlen(key) != 24 || strcmp(key + 22, "=="))
		return 0;
	for (int i = 0; i < 22; i++)
		if (!key[i] || !strchr(b64, key[i]))
			return 0;
	/* the last character carries 2 bits: its low 4 bits must be 0 */
	return (strchr(b64, key[21]) - b64) % 16 == 0;
}

/*
 * Copies header h into buf (size n). Returns its length, 0 when absent,
 * or -1 when it does not fit: the caller refuses, it does not skip the
 * check.
 */
static int header(struct lws *wsi, enum lws_token_indexes h, char *buf, int n)
{
	int len = lws_hdr_total_length(wsi, h);

	buf[0] = '\0';
	if (len <= 0)
		return 0;
	if (len >= n || lws_hdr_copy(wsi, buf, n, h) != len)
		return -1;
	return len;
}

/* An `Upgrade: h2c` request is answered as HTTP/1.1 (see the top). */
static int answer_h2c(struct server *s, struct lws *wsi)
{
	char uri[64];
	struct pbuf m = { 0 };
	unsigned int status;

	if (header(wsi, WSI_TOKEN_GET_URI, uri, sizeof(uri)) <= 0 ||
	    (strcmp(uri, "/healthz") && strcmp(uri, "/metrics")))
		return refuse(s, wsi, HTTP_STATUS_BAD_REQUEST,
			      "HTTP/2 (Upgrade: h2c) is not supported: send the request without it");
	const char *body = endpoint(s, wsi, uri, &status, &m);
	int r = upgrade_reply(wsi, status, NULL, NULL, endpoint_type(uri, status), body,
			      strlen(body));
	pbuf_free(&m);
	return r < 0 ? -1 : 1;
}

static int confirm_upgrade(struct server *s, struct lws *wsi, const char *up)
{
	const struct config *cfg = s->cfg;
	char uri[32], addr[NETADDR_MAX], origin[256], val[128];
	int n;

	if (up && !strcasecmp(up, "h2c"))
		return answer_h2c(s, wsi);
	if (is_admin(s, wsi))
		return refuse(s, wsi, HTTP_STATUS_NOT_FOUND, "no WebSocket on the admin listener");
	/* The handshake itself (RFC 6455 4.2.1, 4.2.2, 4.4). */
	if (header(wsi, WSI_TOKEN_CONNECTION, val, sizeof(val)) <= 0 || !has_token(val, "upgrade"))
		return refuse(s, wsi, HTTP_STATUS_BAD_REQUEST, "Connection: Upgrade is required");
	if (header(wsi, WSI_TOKEN_KEY, val, sizeof(val)) <= 0 || !ws_key_valid(val))
		return refuse(s, wsi, HTTP_STATUS_BAD_REQUEST,
			      "Sec-WebSocket-Key is missing or not 16 bytes in base64");
	if (header(wsi, WSI_TOKEN_VERSION, val, sizeof(val)) <= 0 || strcmp(val, "13"))
		return refuse_with(s, wsi, 426, "only WebSocket version 13 is supported",
				   "Sec-WebSocket-Version:", "13");
	/* Socket.IO clients upgrade at /socket.io/ (server/sio/): the same
	 * checks below, then Engine.IO's own. */
	bool sio = header(wsi, WSI_TOKEN_GET_URI, uri, sizeof(uri)) > 0 && cfg->sio &&
		   sio_is_path(uri);
	if (!sio && (header(wsi, WSI_TOKEN_GET_URI, uri, sizeof(uri)) <= 0 || strcmp(uri, "/ws")))
		return refuse(s, wsi, HTTP_STATUS_NOT_FOUND, "WebSocket endpoint is /ws");
	if (s->draining)
		return refuse(s, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "server is shutting down");
	if (cfg->origins) {
		/* No Origin: not a browser, nothing to check. One too long
		 * to read is refused like a foreign one. */
		n = header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin));
		if (n < 0 || (n > 0 && !origin_allowed(cfg->origins, origin)))
			return refuse(s, wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed");
	}
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
	struct conn *c = conn_of_pss(user);
	char addr[NETADDR_MAX];

	/* The requests and WebSockets of Socket.IO sessions (server/sio/). */
	if (c && c->kind == CONN_SIO_PORT && sio_port_reason(reason))
		return sio_port_callback(s, wsi, reason, c, in, len);

	switch (reason) {
	case LWS_CALLBACK_WSI_CREATE:
		/* Every client socket, HTTP or WebSocket (for /metrics:
		 * counted, not listed from /proc). Listeners are not wsi
		 * created here; they are counted among the descriptors open
		 * at start. */
		if (s)
			s->client_sockets++;
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (s && s->client_sockets > 0)
			s->client_sockets--;
		return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return s->draining; /* draining: accept nothing new */
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(s, wsi, (const char *)in);
	case LWS_CALLBACK_ESTABLISHED:
		netaddr_client(wsi, &s->trusted, is_unix_peer(s, wsi), addr, sizeof(addr));
		if (is_sio(s, wsi))
			return sio_ws_open(c, s, wsi, addr);
		conn_open(c, s, wsi, addr);
		authn_conn_established(c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(c, wsi);
	case LWS_CALLBACK_RECEIVE_PONG:
		if (c && c->srv)
			conn_heard(c);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && c->srv)
			c->peer_closed = true;
		return 0;
	case LWS_CALLBACK_CLOSED:
		/* lws closes its descriptor after this; the socket itself
		 * lingers until the peer has read our last bytes (linger.h). */
		linger_start(&s->linger, lws_get_socket_fd(wsi));
		cmd_conn_gone(s, c);
		conn_release(c);
		return 0;
	case LWS_CALLBACK_HTTP:
		if (s->cfg->sio && sio_http_match(wsi)) {
			netaddr_client(wsi, &s->trusted, is_unix_peer(s, wsi), addr, sizeof(addr));
			return sio_http(s, wsi, c, addr);
		}
		return on_http(s, wsi);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (s && s->store)
			store_poll(s->store, &server_store_handlers, s);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- for the Socket.IO edge (server/sio/) ---- */

int ws_writeable(struct conn *c, struct lws *wsi)
{
	return on_writeable(c, wsi);
}

int ws_origin_allowed(const char *list, const char *origin)
{
	return origin_allowed(list, origin);
}

int ws_is_unix_peer(struct server *s, struct lws *wsi)
{
	return is_unix_peer(s, wsi);
}

void ws_count_refusal(struct server *s, unsigned int status)
{
	s->stats.rejected[rejected_index(status)]++;
}
