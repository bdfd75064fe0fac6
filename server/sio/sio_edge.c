#define _GNU_SOURCE /* memmem */
/*
 * sio_edge.c - Socket.IO clients: Engine.IO sessions over HTTP long-polling
 * and WebSocket, and the Socket.IO layer on them (sio_edge.h). Runs on the
 * loop thread only, like the rest of the core.
 */
#include "sio_edge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "catchup.h"
#include "cmd.h"
#include "authn.h"
#include "cmd_int.h"
#include "conn.h"
#include "eio.h"
#include "eio_session.h"
#include "frame.h"
#include "jscan.h"
#include "linger.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "room.h"
#include "sio.h"
#include "store.h"
#include "util.h"
#include "ws.h"

/* The persisted messages queued to a session, newest last: where a
 * reconnecting client's offset says it stopped reading (recovery). */
#define SIO_RING 256
struct sio_mark {
	uint64_t room;              /* room_hash() of the room's name */
	uint64_t seq;
};
struct sio_ring {
	struct sio_mark *m;         /* [SIO_RING], allocated at the first message */
	uint32_t head, count;
	uint64_t total;             /* ever recorded: > SIO_RING means wrapped */
};

/* One Engine.IO session and its Socket.IO state. */
struct sio_conn {
	struct conn conn;           /* the core's client (kind CONN_SIO) */
	/* On the line after conn's (64-aligned: sess_new): what each frame
	 * in (on_ws_receive, timer_arm) and out (sio_conn_send, emit_as)
	 * reads of the session itself, so that a frame costs one cache
	 * line here instead of one per field spread over the struct. */
	_Alignas(64) bool dead;     /* closed: freed once no port refers to it */
	bool connected;             /* CONNECT to "/" was accepted */
	bool timer_on;
	bool registered;            /* in the sid map */
	bool connecting;            /* inside CONNECT: errors become CONNECT_ERROR */
	bool connect_due;           /* they have: the timer answers CONNECT */
	uint32_t recovering;        /* recovery joins still to answer */
	struct conn *c;             /* &conn */
	struct server *s;
	struct conn *ws_port;       /* the WebSocket that is the transport */
	uint64_t timer_at;          /* mono ms the running timer is set for */
	struct conn *probe_port;
	struct eio_session eio;
	struct sio_decoder dec;
	/* the rest: set-up, recovery, teardown */
	struct sio_conn *next, *prev; /* every session, for teardown */
	ev_timer timer;             /* eio_session_deadline, connect deadline, free */
	bool connect_error_sent;
	bool probe_reply;           /* "3probe" to write on the probe */
	bool probe_kill;            /* close the probe at its next WRITEABLE */
	uint64_t connect_deadline;  /* mono ms: close unless connected by then */
	/* connection state recovery (see "recovery" below) */
	char pid[17];               /* "": recovery off, or not connected */
	bool client_disconnect;     /* the client left (41): nothing to recover */
	bool recovery_failed;       /* one of them could not recover */
	char old_pid[17];
	struct sio_ring ring;
	uint8_t nsps;               /* conformance: 1 "/", 2 "/custom" connected */
	/* the requests and WebSockets serving the session, and their ports */
	struct lws *ws_wsi, *poll_wsi, *post_wsi, *probe_wsi;
	struct conn *poll_port, *post_port;
};

static struct eio_config ecfg;
static size_t catch_fill_packets, catch_fill_bytes; /* sio_catchup_room */
static uint32_t connect_timeout_ms;
static bool conformance;            /* parley-sio-conformance (sio_edge_conformance) */
static bool recovery;
/* for /metrics (sio_edge_metrics) */
static struct {
	uint64_t sessions_total[2];     /* by enum eio_transport at the handshake */
	uint64_t upgrades;
	uint64_t closes[16];            /* by enum eio_close_reason */
	uint64_t recovered[2];          /* reconnects with a pid: false, true */
} st;
static uint64_t recovery_window_ms;
static struct hmap by_sid;          /* struct sio_conn *, by eio.sid */
static struct sio_conn *all;
static uint32_t nsessions;          /* in `all`: for sio_max_sessions */
/* Scratch: renditions and Engine.IO packets (out), a rendition's JSON
 * (rjson) and attachment bytes (bytes), synthesised commands (cmd),
 * wrapped binary events (wrap), a polling response (body). cmd lives
 * across cmd_handle(), whose replies are rendered with out, rjson and
 * bytes. */
static struct pbuf out, rjson, cmd, wrap, bytes, body;
static struct eio_packet *post_msgs; /* [ecfg.max_packets_per_payload] */

static uint64_t now_ms(void)
{
	return util_mono_us() / 1000;
}

static int sid_match(const void *entry, const void *key)
{
	return !strcmp(((const struct sio_conn *)entry)->eio.sid, key);
}

static struct sio_conn *find(const char *sid)
{
	return hmap_get(&by_sid, hmap_hash_bytes(sid, strlen(sid)), sid, sid_match);
}

void sio_edge_setup(struct server *s)
{
	const struct config *cfg = s->cfg;

	eio_config_defaults(&ecfg);
	ecfg.ping_interval_ms = cfg->sio_ping_interval;
	ecfg.ping_timeout_ms = cfg->sio_ping_timeout;
	ecfg.max_payload = cfg->sio_max_payload;
	/* The polling queue is a replay's slice (catch_fill_*: what the
	 * catch-up, and the release of the live frames held behind it, put
	 * in at a time) plus the live frames a slow reader may have waiting
	 * (send_queue_messages / send_queue_bytes, at least the other half of
	 * the Engine.IO defaults): a polling client falls as far behind as a
	 * WebSocket one before it is cut, whatever an operator sets, even
	 * while it catches up (docs/socketio.md, Bounds). */
	catch_fill_packets = ecfg.queue_max_packets / 2;
	catch_fill_bytes = ecfg.queue_max_bytes / 2;
	ecfg.queue_max_packets = catch_fill_packets +
		(cfg->send_queue_messages > catch_fill_packets ? cfg->send_queue_messages
								: catch_fill_packets);
	ecfg.queue_max_bytes = catch_fill_bytes +
		(cfg->send_queue_bytes > catch_fill_bytes ? cfg->send_queue_bytes : catch_fill_bytes);
	connect_timeout_ms = cfg->sio_connect_timeout;
	recovery = cfg->sio_recovery != 0;
	recovery_window_ms = (uint64_t)cfg->sio_recovery_window * 1000;
	post_msgs = xcalloc(ecfg.max_packets_per_payload, sizeof(*post_msgs));
}

int sio_is_path(const char *uri)
{
	return !strcmp(uri, "/socket.io/") || !strcmp(uri, "/socket.io");
}

int sio_http_match(struct lws *wsi)
{
	static const enum lws_token_indexes methods[] = {
		WSI_TOKEN_GET_URI, WSI_TOKEN_POST_URI, WSI_TOKEN_OPTIONS_URI, WSI_TOKEN_PUT_URI,
		WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI, WSI_TOKEN_HEAD_URI,
	};
	char uri[32];

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (lws_hdr_total_length(wsi, methods[i]) > 0)
			return lws_hdr_copy(wsi, uri, sizeof(uri), methods[i]) > 0 && sio_is_path(uri);
	return 0;
}

const struct lws_http_mount *sio_edge_mount(const struct lws_http_mount *next)
{
	static struct lws_http_mount m;

	memset(&m, 0, sizeof(m));
	m.mount_next = next;
	m.mountpoint = "/socket.io";
	m.mountpoint_len = 10;
	m.origin = "parley"; /* ws.c's callback, which passes it on here */
	m.origin_protocol = LWSMPRO_CALLBACK;
	return &m;
}

/* ---- HTTP answers ---- */

/* Writes a whole response: status, CORS for an allowed Origin, body.
 * Returns what the callback must (-1: close the connection). */
static int respond(struct server *s, struct lws *wsi, unsigned status, const char *type,
		   const char *data, size_t n, bool preflight)
{
	unsigned char hb[LWS_PRE + 1024], *start = hb + LWS_PRE, *p = start,
		      *end = hb + sizeof(hb) - 1;
	char origin[256];
	int on = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

	if (on > 0 && (on >= (int)sizeof(origin) ||
		       lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) != on ||
		       (s->cfg->origins && !ws_origin_allowed(s->cfg->origins, origin))))
		on = 0; /* not allowed: no CORS headers (the request was refused) */
	if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if (on > 0 &&
	    (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
					 (const unsigned char *)origin, on, &p, end) ||
	     lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-credentials:",
					 (const unsigned char *)"true", 4, &p, end) ||
	     lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
					 (const unsigned char *)"Origin", 6, &p, end)))
		return -1;
	if (preflight &&
	    (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
					 (const unsigned char *)"GET, POST, OPTIONS", 18, &p, end) ||
	     lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-headers:",
					 (const unsigned char *)"content-type", 12, &p, end)))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	/* Raw HTTP/1 body: lws keeps what the socket does not take. */
	if (lws_write(wsi, (unsigned char *)(uintptr_t)data, n, LWS_WRITE_HTTP_FINAL) != (int)n)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond_error(struct server *s, struct lws *wsi, unsigned status,
			 enum eio_http_err e, const char *msg)
{
	struct pbuf b = { 0 };

	eio_encode_http_error(&b, e, msg);
	int r = respond(s, wsi, status ? status : (unsigned)eio_http_status(e), "application/json",
			b.data, b.len, false);
	pbuf_free(&b);
	return r;
}

/* The same as the answer to a WebSocket upgrade (no CORS there). */
static int upgrade_error(struct server *s, struct lws *wsi, unsigned status, enum eio_http_err e,
			 const char *msg)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;
	struct pbuf b = { 0 };
	int r = 1;

	eio_encode_http_error(&b, e, msg);
	if (lws_add_http_common_headers(wsi, status ? status : (unsigned)eio_http_status(e),
					"application/json", (lws_filepos_t)b.len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end) ||
	    lws_write(wsi, (unsigned char *)b.data, b.len, LWS_WRITE_HTTP_FINAL) != (int)b.len)
		r = -1;
	else if (lws_http_transaction_completed(wsi))
		r = -1;
	pbuf_free(&b);
	ws_count_refusal(s, status ? status : (unsigned)eio_http_status(e));
	log_info("refused", "status=%d reason=%s", status ? (int)status : eio_http_status(e),
		 log_q(msg ? msg : eio_http_message(e)));
	return r;
}

/* ---- output ---- */

static void timer_arm(struct sio_conn *sc);
static void apply(struct sio_conn *sc, unsigned act);

static void frame_release(void *ref)
{
	struct frame *f = ref;
	frame_unref(&f);
}

/*
 * Sends one frame (a text frame holding "4…", or a binary attachment): on
 * the session's WebSocket through the conn's queue, with conn_send()'s
 * and conn_send_reply()'s rules (a live frame past the send queue limits
 * closes it as a slow consumer; replies pause reading); while polling
 * through the Engine.IO queue, which takes a reference and has bounds of
 * its own (past them the session closes: "queue full").
 */
/*
 * The session's gates in its conn's hot line (conn.h): conn_send() hands a
 * member's frame's rendition straight to the WebSocket's queue when
 * sio_fast says everything sio_conn_send() and emit_as() test would let it
 * (connected, no recovery joins pending, not dead, the WebSocket is the
 * transport) and the frame needs no recovery mark (sio_marks) and has no
 * attachments; otherwise it calls sio_conn_send(). Called wherever one of
 * those changes; a session starts with sio_fast false (the slow path,
 * which is always right).
 */
static void fast_update(struct sio_conn *sc)
{
	struct conn *c = &sc->conn;

	c->sio_fast = sc->connected && !sc->recovering && !sc->dead &&
		      sc->eio.transport == EIO_T_WEBSOCKET && c->wsi;
	c->sio_marks = sc->pid[0] != '\0';
}

static void emit_as(struct sio_conn *sc, struct frame *f, bool reply)
{
	struct conn *c = &sc->conn; /* (sc->c, without loading it) */

	if (sc->dead || c->close_code)
		return;
	if (sc->eio.transport == EIO_T_WEBSOCKET && c->wsi) {
		if (reply)
			conn_queue_reply(c, f);
		else
			conn_queue_live(c, f);
		return;
	}
	size_t n;
	const char *p = frame_payload(f, &n);
	bool binary = (f->wire[0] & 0x0f) == 0x2;
	struct eio_packet pk = { EIO_MESSAGE, binary, (const uint8_t *)p + (binary ? 0 : 1),
				 binary ? n : n - 1 };
	apply(sc, eio_session_send_ref(&sc->eio, &pk, frame_release, frame_ref(f)));
}

/* Our own packets (CONNECT answers, Engine.IO control) count as replies. */
static void emit(struct sio_conn *sc, struct frame *f)
{
	emit_as(sc, f, true);
}

/* Queues one Socket.IO packet text (without the Engine.IO "4"). */
static void queue_sio(struct sio_conn *sc, const char *p, size_t n)
{
	pbuf_reset(&out);
	pbuf_addc(&out, '4');
	pbuf_add(&out, p, n);
	struct frame *f = frame_new_text(out.data, out.len);
	emit(sc, f);
	frame_unref(&f);
}

/* Moves what the Engine.IO session queued to the WebSocket's queue, in
 * order; closes the WebSocket when the session is done. */
static void drain(struct sio_conn *sc)
{
	struct conn *c = sc->c;
	bool binary;
	int r;

	if (!c->wsi)
		return;
	for (;;) {
		pbuf_reset(&out);
		r = eio_session_ws_next(&sc->eio, &out, &binary);
		if (r <= 0)
			break;
		struct frame *f = binary ? frame_new_binary(out.data, out.len)
					 : frame_new_text(out.data, out.len);
		emit_as(sc, f, true);
		frame_unref(&f);
	}
	if (r < 0)
		conn_close_later(c, LWS_CLOSE_STATUS_NORMAL);
}

static uint8_t reason_of(enum eio_close_reason why)
{
	switch (why) {
	case EIO_CLOSE_CLIENT: return CLOSE_R_CLIENT;
	case EIO_CLOSE_PING_TIMEOUT: return CLOSE_R_HANGUP;
	case EIO_CLOSE_QUEUE_FULL: return CLOSE_R_SLOW_CONSUMER;
	case EIO_CLOSE_TOO_LARGE: return CLOSE_R_TOO_BIG;
	case EIO_CLOSE_SERVER: return CLOSE_R_GOING_AWAY;
	default: return CLOSE_R_ERROR;
	}
}

/* The Engine.IO session is CLOSED: out of the sid map, the connection
 * closes (a WebSocket after its queue), the requests and probe still
 * attached are answered or closed; freed from the timer once no port is
 * left. */
static void sess_dead(struct sio_conn *sc)
{
	struct conn *c = sc->c;

	if (sc->dead)
		return;
	sc->dead = true;
	fast_update(sc);
	st.closes[sc->eio.close_reason < 16 ? sc->eio.close_reason : 0]++;
	if (sc->registered) {
		hmap_del(&by_sid, hmap_hash_bytes(sc->eio.sid, strlen(sc->eio.sid)), sc->eio.sid,
			 sid_match);
		sc->registered = false;
	}
	log_info("sio_close", "session=%s sid=%s reason=%s", c->session, sc->eio.sid,
		 log_q(eio_close_reason_str(sc->eio.close_reason)));
	if (!c->close_code) {
		enum eio_close_reason why = sc->eio.close_reason;
		conn_close_later(c, why == EIO_CLOSE_TOO_LARGE ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
							       : LWS_CLOSE_STATUS_NORMAL);
		c->close_reason = reason_of(why);
	}
	if (sc->poll_wsi)
		lws_callback_on_writable(sc->poll_wsi); /* "1" or "6" (poll_body) */
	if (sc->probe_wsi) {
		sc->probe_kill = true;
		lws_callback_on_writable(sc->probe_wsi);
	}
	timer_arm(sc);
}

/* A protocol error or a client's disconnect: the reference server closes
 * the connection. */
static void close_session(struct sio_conn *sc, enum eio_close_reason why)
{
	struct conn *c = sc->c;

	if (c->close_code || sc->dead)
		return;
	log_info("sio_close", "session=%s sid=%s reason=%s", c->session, sc->eio.sid,
		 log_q(eio_close_reason_str(why)));
	conn_close_later(c, why == EIO_CLOSE_TOO_LARGE ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
						       : LWS_CLOSE_STATUS_NORMAL);
	c->close_reason = reason_of(why);
}

/* Performs the session's actions (EIO_ACT_*) that are not answers to the
 * request being handled (the callers write those themselves). */
static void apply(struct sio_conn *sc, unsigned act)
{
	if ((act & EIO_ACT_POLL_RESPOND) && sc->poll_wsi)
		lws_callback_on_writable(sc->poll_wsi);
	if ((act & EIO_ACT_PROBE_WRITE) && sc->probe_wsi) {
		sc->probe_reply = true;
		lws_callback_on_writable(sc->probe_wsi);
	}
	if ((act & EIO_ACT_PROBE_CLOSE) && sc->probe_wsi) {
		sc->probe_kill = true;
		lws_callback_on_writable(sc->probe_wsi);
	}
	if (act & EIO_ACT_WS_WRITABLE)
		drain(sc);
	if (act & EIO_ACT_CLOSE)
		sess_dead(sc);
	timer_arm(sc);
}

static void connect_error(struct sio_conn *sc, const char *msg, size_t msg_len, const char *code,
			  size_t code_len)
{
	struct pbuf b = { 0 };

	sc->connect_error_sent = true;
	pbuf_addc(&b, '4');
	pbuf_adds(&b, "{\"message\":");
	pbuf_add_jstr(&b, msg, msg_len);
	pbuf_adds(&b, ",\"data\":{\"code\":");
	pbuf_add_jstr(&b, code, code_len);
	pbuf_adds(&b, "}}");
	queue_sio(sc, b.data, b.len);
	pbuf_free(&b);
}

/* While CONNECT runs the native hello, its error frame
 * {"type":"error","error":{"code":…,"message":…}} becomes CONNECT_ERROR. */
static void connect_error_from(struct sio_conn *sc, const char *p, size_t n)
{
	struct jtop top, etop;
	size_t pos;
	const char *why;
	char code[64], msg[256];
	size_t code_n = 0, msg_n = 0;
	const struct jval *e;

	strcpy(code, "internal");
	strcpy(msg, "refused");
	code_n = strlen(code);
	msg_n = strlen(msg);
	if (jscan_object(p, n, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &top, &pos, &why) == JSCAN_OK &&
	    (e = jscan_get(&top, "error")) && e->type == JT_OBJECT &&
	    jscan_object(e->p, e->n, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &etop, &pos, &why) == JSCAN_OK) {
		const struct jval *cv = jscan_get(&etop, "code"), *mv = jscan_get(&etop, "message");
		if (cv && cv->type == JT_STRING && jscan_string(cv, code, sizeof(code), &code_n) < 0)
			code_n = 0;
		if (mv && mv->type == JT_STRING && jscan_string(mv, msg, sizeof(msg), &msg_n) < 0)
			msg_n = 0;
	}
	connect_error(sc, msg, msg_n, code, code_n);
}

/* A persisted room message's room and seq, from its native text
 * ({"type":"message","room":"…","seq":N,…}; room names need no escapes).
 * Returns 0 for anything else (volatile messages have no seq). */
static int message_pos(const char *p, size_t n, const char **room, size_t *room_n,
		       uint64_t *seq)
{
	static const char head[] = "{\"type\":\"message\",\"room\":\"";
	const size_t hl = sizeof(head) - 1;
	const char *end = p + n, *q, *d;

	if (n <= hl || memcmp(p, head, hl))
		return 0;
	*room = p + hl;
	q = memchr(*room, '"', (size_t)(end - *room));
	if (!q || memchr(*room, '\\', (size_t)(q - *room)) || end - q < 9 ||
	    memcmp(q, "\",\"seq\":", 8))
		return 0;
	*room_n = (size_t)(q - *room);
	*seq = 0;
	for (d = q + 8; d < end && *d >= '0' && *d <= '9'; d++)
		*seq = *seq * 10 + (uint64_t)(*d - '0');
	return *seq != 0;
}

/* FNV-1a: rooms in a recovery ring (not a hash table: no flooding). */
static uint64_t room_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
	return h;
}

static void ring_add(struct sio_ring *r, uint64_t room, uint64_t seq)
{
	if (!r->m)
		r->m = xcalloc(SIO_RING, sizeof(*r->m));
	r->m[(r->head + r->count) % SIO_RING] = (struct sio_mark){ room, seq };
	if (r->count < SIO_RING)
		r->count++;
	else
		r->head = (r->head + 1) % SIO_RING;
	r->total++;
}

/* Where render() writes a rendition's JSON: straight into out, after the
 * Engine.IO "4" and the Socket.IO header, when plain; otherwise into rjson,
 * for sio_encode_auto to look for attachments in. */
static struct pbuf *render_begin(bool plain, enum sio_type type, bool has_id, uint64_t id)
{
	if (!plain) {
		pbuf_reset(&rjson);
		return &rjson;
	}
	pbuf_reset(&out);
	pbuf_addc(&out, '4');
	sio_enc_header(&out, type, "/", 1, has_id, id, 0);
	return &out;
}

/*
 * The Socket.IO rendition of a native frame, or NULL when it has none.
 * Native frames all begin {"type":"<t>", so no JSON is re-encoded:
 *   {"type":"reply","id":N,<rest>      -> 43<N-1>[{<rest>]
 *   {"type":"error","error":<obj>}     -> 42["error",<obj>]
 *   {"type":"<t>",<rest>               -> 42["<t>",{<rest>]
 * Data holding $base64 wrappers goes as BINARY_EVENT / BINARY_ACK with its
 * attachments (sio_encode_auto), chained as binary frames on the text.
 */
static struct frame *render(const char *p, size_t n)
{
	static const char head[] = "{\"type\":\"";
	const size_t hl = sizeof(head) - 1;
	struct sio_att att[SIO_ATTACH_MAX_DEF];
	enum sio_type type = SIO_EVENT;
	bool has_id = false;
	uint64_t id = 0, mark_seq = 0, mark_room = 0;
	struct pbuf *js;

	if (n < hl + 2 || memcmp(p, head, hl) || p[n - 1] != '}')
		return NULL;
	const char *t = p + hl, *q = memchr(t, '"', n - hl);
	if (!q || q + 1 >= p + n)
		return NULL;
	size_t tn = (size_t)(q - t);
	const char *rest = q + 1; /* ',' or '}' */
	const char *end = p + n;
	/* No '$' in the native text, so no "$base64" wrapper in the
	 * rendition's JSON either (what render adds holds none): the packet
	 * is written straight into out, header first, with no second copy
	 * of the JSON and no search for attachments. */
	bool plain = !memchr(p, '$', n);

	if (tn == 5 && !memcmp(t, "reply", 5)) {
		static const char idk[] = ",\"id\":";
		if ((size_t)(end - rest) < sizeof(idk) || memcmp(rest, idk, sizeof(idk) - 1))
			return NULL;
		const char *d = rest + sizeof(idk) - 1;
		while (d < end && *d >= '0' && *d <= '9')
			id = id * 10 + (uint64_t)(*d++ - '0');
		if (id == 0 || d >= end || *d != ',')
			return NULL;
		type = SIO_ACK;
		has_id = true;
		id -= 1;
		js = render_begin(plain, type, has_id, id);
		pbuf_adds(js, "[{");
		pbuf_add(js, d + 1, (size_t)(end - d - 1));
		pbuf_addc(js, ']');
	} else if (tn == 5 && !memcmp(t, "error", 5)) {
		static const char ek[] = ",\"error\":";
		if ((size_t)(end - rest) < sizeof(ek) || memcmp(rest, ek, sizeof(ek) - 1))
			return NULL;
		const char *o = rest + sizeof(ek) - 1;
		js = render_begin(plain, type, has_id, id);
		pbuf_adds(js, "[\"error\",");
		pbuf_add(js, o, (size_t)(end - 1 - o));
		pbuf_addc(js, ']');
	} else {
		const char *room;
		size_t room_n;
		uint64_t seq;
		js = render_begin(plain, type, has_id, id);
		pbuf_addc(js, '[');
		pbuf_add(js, t - 1, tn + 2);
		pbuf_adds(js, ",{");
		if (*rest == ',')
			pbuf_add(js, rest + 1, (size_t)(end - rest - 1));
		else
			pbuf_addc(js, '}');
		if (recovery && message_pos(p, n, &room, &room_n, &seq)) {
			mark_seq = seq;
			mark_room = room_hash(room, room_n);
			/* The offset a recovering client sends back: "seq:room". */
			pbuf_adds(js, ",\"");
			pbuf_add_u64(js, seq);
			pbuf_addc(js, ':');
			pbuf_add(js, room, room_n);
			pbuf_addc(js, '"');
		}
		pbuf_addc(js, ']');
	}
	size_t na = 0;
	if (!plain) {
		pbuf_reset(&out);
		pbuf_reset(&bytes);
		pbuf_addc(&out, '4');
		na = sio_encode_auto(&out, type, "/", 1, has_id, id, rjson.data, rjson.len, &bytes,
				     att, SIO_ATTACH_MAX_DEF);
	}
	struct frame *f = frame_new_text(out.data, out.len);
	f->seq = mark_seq; /* the recovery mark, for every member */
	f->sio_room = mark_room;
	struct frame **link = &f->sio;
	for (size_t i = 0; i < na; i++) {
		*link = frame_new_binary(att[i].p, att[i].n);
		link = &(*link)->sio;
	}
	return f;
}


static void run_command(struct conn *c, const char *text, size_t n);

/* ---- recovery ----
 *
 * socket.io-client >= 4.6 sends back the pid of the CONNECT answer and the
 * offset of the last event it got ("seq:room" on each persisted message)
 * when it reconnects. A session that ends without the client leaving (a
 * network cut, a ping timeout, the server closing it) is kept here for
 * sio_recovery_window: its user, rooms and the ring of messages it was
 * sent. The reconnect re-joins each room with since = the last message of
 * that room the client got (from the offset's place in the ring), so the
 * catch-up brings exactly what it missed, once and in order; only when
 * every room recovered does the answer carry the same pid
 * (socket.recovered === true). Kept in memory: after a restart, false.
 */

#define SIO_SAVED_MAX 10000

struct saved_room {
	char *name;
	uint64_t hash;
	uint64_t last_seq;          /* the room's latest seq when the session ended */
	bool presence;
};

struct sio_saved {
	char pid[17];
	uint64_t expires;           /* mono ms */
	char *user;
	uint32_t nrooms;
	struct saved_room *rooms;
	struct sio_ring ring;
	struct sio_saved *next, *prev; /* oldest first (one window: expiry order) */
};

static struct hmap saved_by_pid;
static struct sio_saved *saved_head, *saved_tail;
static uint32_t nsaved;

static int pid_match(const void *entry, const void *key)
{
	return !strcmp(((const struct sio_saved *)entry)->pid, key);
}

static void saved_unlink(struct sio_saved *e)
{
	hmap_del(&saved_by_pid, hmap_hash_bytes(e->pid, strlen(e->pid)), e->pid, pid_match);
	if (e->prev)
		e->prev->next = e->next;
	else
		saved_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		saved_tail = e->prev;
	nsaved--;
}

static void saved_free(struct sio_saved *e)
{
	for (uint32_t i = 0; i < e->nrooms; i++)
		free(e->rooms[i].name);
	free(e->rooms);
	free(e->ring.m);
	free(e->user);
	free(e);
}

static void saved_expire(uint64_t now)
{
	while (saved_head && (saved_head->expires <= now || nsaved > SIO_SAVED_MAX)) {
		struct sio_saved *e = saved_head;
		saved_unlink(e);
		saved_free(e);
	}
}

/* The session is ending (its rooms are still joined): keep it. */
static void save_session(struct sio_conn *sc)
{
	struct conn *c = sc->c;
	struct sio_saved *e, *old;
	uint64_t now = now_ms();

	/* One saved state per pid. A polling session closed by the drain
	 * comes here twice (sio_saved is logged twice): a second entry under
	 * the same key made saved_unlink() delete the other one's slot, and
	 * the teardown then read a freed entry (ASan, test_nginx_nodes). */
	old = hmap_get(&saved_by_pid, hmap_hash_bytes(sc->pid, strlen(sc->pid)), sc->pid, pid_match);
	if (old) {
		saved_unlink(old);
		saved_free(old);
	}
	e = xcalloc(1, sizeof(*e));
	memcpy(e->pid, sc->pid, sizeof(e->pid));
	e->expires = now + recovery_window_ms;
	e->user = xstrndup(c->name, c->name_len);
	e->rooms = xcalloc(c->rooms.len ? c->rooms.len : 1, sizeof(*e->rooms));
	for (uint32_t i = 0; i < c->rooms.cap; i++) {
		struct member *m = c->rooms.slots[i].entry;
		if (!c->rooms.slots[i].hash)
			continue;
		struct saved_room *r = &e->rooms[e->nrooms++];
		r->name = xstrndup(m->room->name, m->room->name_len);
		r->hash = room_hash(m->room->name, m->room->name_len);
		r->last_seq = store_last_seq(sc->s->store, r->name);
		r->presence = m->presence;
	}
	e->ring = sc->ring; /* moves over */
	memset(&sc->ring, 0, sizeof(sc->ring));
	e->prev = saved_tail;
	if (saved_tail)
		saved_tail->next = e;
	else
		saved_head = e;
	saved_tail = e;
	nsaved++;
	hmap_put(&saved_by_pid, hmap_hash_bytes(e->pid, strlen(e->pid)), e);
	saved_expire(now);
	log_info("sio_saved", "session=%s pid=%s rooms=%u", c->session, e->pid, e->nrooms);
}

/* The saved session with this pid, taken out of the table. user NULL: the
 * client named nobody (a guest, auth = none): any saved user goes. */
static struct sio_saved *saved_take(const char *pid, const char *user)
{
	struct sio_saved *e;

	saved_expire(now_ms());
	e = hmap_get(&saved_by_pid, hmap_hash_bytes(pid, strlen(pid)), pid, pid_match);
	if (!e)
		return NULL;
	saved_unlink(e);
	if (user && strcmp(e->user, user)) {
		/* Another user's session: its rooms are not this one's. */
		saved_free(e);
		return NULL;
	}
	return e;
}

static void finish_connect(struct sio_conn *sc);

/* Re-joins the saved rooms from where the client stopped reading. Returns 0
 * when the joins are under way (finish_connect answers CONNECT once all
 * have), -1 when the offset is not in the ring (nothing recoverable). */
static int restore(struct sio_conn *sc, struct sio_saved *e, const char *offset, size_t off_n)
{
	const struct sio_ring *r = &e->ring;
	long pos = -1;

	if (offset) {
		const char *colon = memchr(offset, ':', off_n);
		uint64_t seq = 0;
		if (!colon || colon == offset)
			return -1;
		for (const char *d = offset; d < colon; d++) {
			if (*d < '0' || *d > '9')
				return -1;
			seq = seq * 10 + (uint64_t)(*d - '0');
		}
		uint64_t h = room_hash(colon + 1, (size_t)(offset + off_n - colon - 1));
		for (long i = (long)r->count - 1; i >= 0 && pos < 0; i--) {
			const struct sio_mark *m = &r->m[(r->head + (uint32_t)i) % SIO_RING];
			if (m->room == h && m->seq == seq)
				pos = i;
		}
		if (pos < 0)
			return -1;
	} else if (r->total > SIO_RING) {
		return -1; /* it got nothing, and the start is gone */
	}
	memcpy(sc->old_pid, e->pid, sizeof(sc->old_pid));
	sc->recovering = e->nrooms + 1; /* + 1: not finished inside the loop */
	fast_update(sc);
	for (uint32_t k = 0; k < e->nrooms && !sc->c->close_code; k++) {
		const struct saved_room *sr = &e->rooms[k];
		uint64_t since = sr->last_seq;
		for (uint32_t i = (uint32_t)(pos + 1); i < r->count; i++) {
			const struct sio_mark *m = &r->m[(r->head + i) % SIO_RING];
			if (m->room == sr->hash) {
				since = m->seq - 1; /* the first one it did not get */
				break;
			}
		}
		pbuf_reset(&cmd);
		pbuf_adds(&cmd, "{\"type\":\"join\",\"id\":");
		pbuf_add_u64(&cmd, k + 1);
		pbuf_adds(&cmd, ",\"room\":");
		pbuf_add_jstr(&cmd, sr->name, strlen(sr->name));
		pbuf_adds(&cmd, ",\"since\":");
		pbuf_add_u64(&cmd, since);
		pbuf_adds(&cmd, sr->presence ? ",\"presence\":true}" : "}");
		run_command(sc->c, cmd.data, cmd.len);
	}
	if (--sc->recovering == 0) {
		fast_update(sc);
		finish_connect(sc);
	}
	return 0;
}

/* The answer to a recovery join: it recovered, or it did not. The last
 * one may come from inside the core's reply encoder (a catch-up that read
 * from disk finishes from catchup.c), where finish_connect cannot encode
 * the welcome: the session's timer answers CONNECT (connect_due). */
static void recovery_reply(struct sio_conn *sc, const char *p, size_t n)
{
	if (!memmem(p, n, "\"ok\":true", 9) || memmem(p, n, "\"recovered\":false", 17))
		sc->recovery_failed = true;
	if (--sc->recovering == 0) {
		fast_update(sc);
		sc->connect_due = true;
		timer_arm(sc);
	}
}

/* CONNECT's answer: 40{"sid":…[,"pid":…]}, then welcome. */
static void finish_connect(struct sio_conn *sc)
{
	struct conn *c = sc->c;
	bool recovered = sc->old_pid[0] && !sc->recovery_failed;

	if (sc->old_pid[0])
		st.recovered[recovered]++;
	if (recovery) {
		if (recovered) {
			memcpy(sc->pid, sc->old_pid, sizeof(sc->pid));
		} else {
			util_random_hex(sc->pid, 8);
		}
	}
	fast_update(sc);
	pbuf_reset(&cmd);
	pbuf_adds(&cmd, "0{\"sid\":\"");
	pbuf_adds(&cmd, c->session);
	if (sc->pid[0]) {
		pbuf_adds(&cmd, "\",\"pid\":\"");
		pbuf_adds(&cmd, sc->pid);
	}
	pbuf_adds(&cmd, "\"}");
	queue_sio(sc, cmd.data, cmd.len);
	log_info("sio_connect", "session=%s sid=%s user=%s recovered=%s", c->session, sc->eio.sid,
		 log_q(c->name), recovered ? "true" : "false");
	conn_send_welcome(c);
}

/*
 * What sio_conn_send does before it can emit: a session not connected yet,
 * an answer to a recovery join, a frame with no rendition yet. Returns 1
 * when the frame was taken here. Not inlined: it holds render() and the
 * CONNECT path, whose stack frame every member of a fan-out would set up.
 */
static __attribute__((noinline)) int send_prepare(struct sio_conn *sc, struct frame *f)
{
	size_t n;
	const char *p = frame_payload(f, &n);

	if (!sc->connected) {
		/* Before CONNECT only the core's answers to the hello that
		 * CONNECT ran can come: refusals become CONNECT_ERROR. */
		if (sc->connecting && !sc->connect_error_sent && n > 16 &&
		    !memcmp(p, "{\"type\":\"error\"", 15))
			connect_error_from(sc, p, n);
		return 1;
	}
	if (sc->recovering && n > 16 && !memcmp(p, "{\"type\":\"reply\",", 16)) {
		recovery_reply(sc, p, n); /* a recovery join's answer: ours */
		return 1;
	}
	if (!f->sio)
		f->sio = render(p, n);
	return 0;
}

/* A session's conn is its first member: the session is at the same
 * address, found without loading c->sio (a cache line of its own, once
 * per member of every fan-out). */
_Static_assert(offsetof(struct sio_conn, conn) == 0, "struct conn opens struct sio_conn");

void sio_conn_send(struct conn *c, struct frame *f, bool reply)
{
	struct sio_conn *sc = (struct sio_conn *)c;

	/* one test for the usual case: a member of a fan-out whose frame is
	 * rendered already */
	if ((!sc->connected || sc->recovering || !f->sio) && send_prepare(sc, f))
		return;
	/* its mark, found once by render() */
	if (f->sio && f->sio->seq && sc->pid[0])
		ring_add(&sc->ring, f->sio->sio_room, f->sio->seq);
	/* the text, then its attachments (chained on it) */
	for (struct frame *g = f->sio; g && !c->close_code && !sc->dead; g = g->sio)
		emit_as(sc, g, reply);
}

int sio_catchup_room(const struct conn *c)
{
	const struct sio_conn *sc = c->sio;
	const struct eio_session *e = &sc->eio;

	if (e->transport == EIO_T_WEBSOCKET && c->wsi)
		return -1;
	return e->q_packets == 0 ||
	       (e->q_packets < catch_fill_packets && e->q_bytes < catch_fill_bytes);
}

void sio_conn_closing(struct conn *c, uint16_t code)
{
	struct sio_conn *sc = c->sio;
	const char *why = c->close_text ? c->close_text : "authentication failed";

	if (code == CLOSE_AUTH && !sc->connected && !sc->connect_error_sent)
		connect_error(sc, why, strlen(why), "unauthenticated", 15);
	/* A session that did not end by the client's choice can be
	 * recovered (the reference's recoverable reasons). */
	if (recovery && sc->pid[0] && !sc->client_disconnect && !sc->recovering &&
	    code != CLOSE_AUTH && code != CLOSE_RATE_LIMITED)
		save_session(sc);
	/* Over polling: what is queued, then "1" on the next GET. (A
	 * WebSocket gets its close frame from conn_close_later.) */
	if (sc->eio.transport == EIO_T_POLLING && !sc->dead) {
		uint64_t now = now_ms();
		unsigned act = eio_session_close(&sc->eio, now);
		/* Shutting down: no waiting a pingInterval for a GET that may
		 * not come (drain_timeout is shorter): the session ends now
		 * (a held GET still gets "1"; a later one, code 1). */
		if (code == LWS_CLOSE_STATUS_GOINGAWAY && !sc->eio.poll_held)
			act |= eio_session_tick(&sc->eio, now + ecfg.ping_interval_ms);
		apply(sc, act);
	}
}

/* ---- time ---- */

static void sess_free(struct sio_conn *sc);

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sio_conn *sc = w->data;
	struct conn *c = sc->c;
	uint64_t now = now_ms();

	(void)loop;
	(void)revents;
	sc->timer_on = false;
	if (sc->dead) {
		if (!sc->ws_port && !sc->poll_port && !sc->post_port && !sc->probe_port)
			sess_free(sc);
		return;
	}
	if (sc->connect_due && !c->close_code) {
		sc->connect_due = false;
		finish_connect(sc);
	}
	if (!sc->connected && sc->connect_deadline && now >= sc->connect_deadline &&
	    !c->close_code) {
		/* The reference server's connectTimeout. */
		log_info("sio_close", "session=%s sid=%s reason=\"connect timeout\"", c->session,
			 sc->eio.sid);
		sc->connect_deadline = 0;
		conn_close_later(c, LWS_CLOSE_STATUS_NORMAL);
		c->close_reason = CLOSE_R_HANGUP;
	}
	apply(sc, eio_session_tick(&sc->eio, now));
}

/*
 * Sets the session's timer for its next deadline. Called after every
 * packet in and out, and the deadline mostly stays where it was (the next
 * ping, or the pong's): a timer already running for that time or an
 * earlier one is left alone (no clock read, no ev_timer_stop/start pair
 * per message). Firing early is harmless: timer_cb's tick acts on what is
 * due only, and its apply() arms the timer again for the later deadline.
 */
static void timer_arm(struct sio_conn *sc)
{
	struct ev_loop *loop = sc->s->loop;
	uint64_t at = eio_session_deadline(&sc->eio), now;

	if (!sc->dead && !sc->connect_due && sc->timer_on && at >= sc->timer_at &&
	    (sc->connected || !sc->connect_deadline || sc->connect_deadline >= sc->timer_at))
		return;
	now = now_ms();
	if (sc->dead || sc->connect_due)
		at = now;
	else if (!sc->connected && sc->connect_deadline && sc->connect_deadline < at)
		at = sc->connect_deadline;
	if (sc->timer_on) {
		ev_timer_stop(loop, &sc->timer);
		sc->timer_on = false;
	}
	if (at == UINT64_MAX)
		return;
	ev_timer_set(&sc->timer, at > now ? (double)(at - now) / 1000.0 : 0.0, 0.0);
	ev_timer_start(loop, &sc->timer);
	sc->timer_on = true;
	sc->timer_at = at;
}

/* ---- sessions ---- */

static struct sio_conn *sess_new(struct server *s, struct lws *wsi, const char *peer,
				 enum eio_transport t)
{
	/* its conn's hot lines on line boundaries (conn.h) */
	struct sio_conn *sc = xcalloc_aligned(64, sizeof(*sc));
	struct sio_limits lim = {
		.max_attachments = SIO_ATTACH_MAX_DEF,
		.max_binary_bytes = ecfg.max_payload,
		.max_depth = PROTO_DEPTH_MAX,
		.max_keys = PROTO_KEYS_MAX,
		.lazy_events = !conformance, /* on_event validates them */
	};
	uint8_t rnd[15];
	char sid[EIO_SID_LEN + 1];
	uint64_t now = now_ms();

	sc->c = &sc->conn;
	sc->s = s;
	/* wsi for conn_open_kind's socket, and for authn_conn_established's
	 * ?token=; a polling session then has none. */
	conn_open_kind(sc->c, s, wsi, peer, CONN_SIO);
	sc->c->sio = sc;
	sio_decoder_init(&sc->dec, &lim);
	ev_timer_init(&sc->timer, timer_cb, 0.0, 0.0);
	sc->timer.data = sc;
	sc->connect_deadline = now + connect_timeout_ms;
	do {
		util_random(rnd, sizeof(rnd));
		eio_sid_format(rnd, sid);
	} while (find(sid));
	sc->next = all;
	if (all)
		all->prev = sc;
	all = sc;
	nsessions++;
	unsigned act = eio_session_init(&sc->eio, &ecfg, sid, t, now);
	st.sessions_total[t == EIO_T_WEBSOCKET]++;
	hmap_put(&by_sid, hmap_hash_bytes(sc->eio.sid, strlen(sc->eio.sid)), sc);
	sc->registered = true;
	if (t == EIO_T_WEBSOCKET) {
		sc->ws_wsi = wsi;
		apply(sc, act);
	}
	authn_conn_established(sc->c);
	if (t == EIO_T_POLLING) {
		sc->c->wsi = NULL;
		sc->c->fd = -1;
	}
	fast_update(sc);
	timer_arm(sc);
	return sc;
}

static void sess_free(struct sio_conn *sc)
{
	struct server *s = sc->s;
	struct conn *c = sc->c;

	if (sc->registered)
		hmap_del(&by_sid, hmap_hash_bytes(sc->eio.sid, strlen(sc->eio.sid)), sc->eio.sid,
			 sid_match);
	if (sc->timer_on && s->loop)
		ev_timer_stop(s->loop, &sc->timer);
	c->wsi = NULL;
	fast_update(sc);
	cmd_conn_gone(s, c);
	conn_release(c);
	eio_session_free(&sc->eio);
	sio_decoder_free(&sc->dec);
	free(sc->ring.m);
	nsessions--;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		all = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	free(sc);
}

void sio_edge_teardown(struct server *s)
{
	(void)s;
	/* lws is gone (every port saw CLOSED); the rooms are not yet. */
	while (all) {
		all->ws_port = all->poll_port = all->post_port = all->probe_port = NULL;
		all->timer_on = false; /* the loop is destroyed */
		sess_free(all);
	}
	hmap_free(&by_sid);
	while (saved_head) {
		struct sio_saved *e = saved_head;
		saved_unlink(e);
		saved_free(e);
	}
	hmap_free(&saved_by_pid);
	free(post_msgs);
	post_msgs = NULL;
	pbuf_free(&out);
	pbuf_free(&cmd);
	pbuf_free(&wrap);
	pbuf_free(&rjson);
	pbuf_free(&bytes);
	pbuf_free(&body);
}

/* A port no longer serves its session (its request was answered, or its
 * socket closed). */
static void detach(struct conn *port)
{
	struct sio_conn *sc = port->sio;

	if (!sc)
		return;
	if (sc->ws_port == port) {
		sc->ws_port = NULL;
		sc->ws_wsi = NULL;
		sc->c->wsi = NULL;
		sc->c->fd = -1;
		fast_update(sc);
		sendq_clear(&sc->c->q);
	}
	if (sc->poll_port == port) {
		sc->poll_port = NULL;
		sc->poll_wsi = NULL;
	}
	if (sc->post_port == port) {
		sc->post_port = NULL;
		sc->post_wsi = NULL;
	}
	if (sc->probe_port == port) {
		sc->probe_port = NULL;
		sc->probe_wsi = NULL;
	}
	port->sio = NULL;
	if (sc->dead)
		timer_arm(sc);
}

/* ---- Socket.IO packets in ---- */

static bool is_root(const struct sio_packet *p)
{
	return p->nsp_len == 1 && p->nsp[0] == '/';
}

/* Runs native command text for c (the same decoder, rules and rate limits
 * as a /ws client's frame). */
static void run_command(struct conn *c, const char *text, size_t n)
{
	cmd_handle(c, text, n);
}

static void on_connect(struct sio_conn *sc, const struct sio_packet *p)
{
	struct conn *c = sc->c;
	struct server *s = c->srv;
	struct jtop top;
	size_t pos;
	const char *why;
	const struct jval *tok = NULL, *name = NULL, *pidv = NULL, *offv = NULL;

	if (p->data && jscan_object(p->data, p->data_len, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &top,
				    &pos, &why) == JSCAN_OK) {
		tok = jscan_get(&top, "token");
		name = jscan_get(&top, "name");
		pidv = jscan_get(&top, "pid");
		offv = jscan_get(&top, "offset");
	}
	sc->connecting = true;
	if (tok || (name && !s->auth)) {
		/* The native hello: the same token check, the same name rules. */
		pbuf_reset(&cmd);
		pbuf_adds(&cmd, tok ? "{\"type\":\"hello\",\"token\":" : "{\"type\":\"hello\",\"name\":");
		pbuf_add(&cmd, tok ? tok->p : name->p, tok ? tok->n : name->n);
		pbuf_addc(&cmd, '}');
		run_command(c, cmd.data, cmd.len);
	}
	sc->connecting = false;
	if (c->close_code || sc->connect_error_sent)
		return;
	if (!c->authed) {
		static const char m[] = "this server needs a token: connect with auth {token}";
		connect_error(sc, m, sizeof(m) - 1, "unauthenticated", 15);
		return;
	}
	sc->connected = true;
	fast_update(sc);
	char pid[17], off[256];
	size_t pid_n = 0, off_n = 0;
	if (recovery && pidv && pidv->type == JT_STRING &&
	    jscan_string(pidv, pid, sizeof(pid), &pid_n) == 0 && pid_n == 16) {
		/* With auth = token the user is the token's; without, a client
		 * that names nobody gets its session's name back (names are
		 * free there anyway; the pid is the secret). */
		bool guest = !tok && !name && !s->auth;
		struct sio_saved *e = saved_take(pid, guest ? NULL : c->name);
		if (e && guest)
			conn_set_name(c, e->user, strlen(e->user)); /* no rooms yet */
		bool have_off = offv && offv->type == JT_STRING &&
				jscan_string(offv, off, sizeof(off), &off_n) == 0;
		if (e && offv && !have_off) {
			saved_free(e); /* an offset that is not ours: nothing to match */
			e = NULL;
		}
		if (e) {
			int r = restore(sc, e, have_off ? off : NULL, off_n);
			saved_free(e);
			if (r == 0)
				return; /* finish_connect answers */
		}
	}
	finish_connect(sc);
}

/* Whether "type" or "id" (with their quotes) occur anywhere in a[0..n):
 * one pass over the quotes looks for both. */
static bool maybe_own_keys(const char *a, size_t n)
{
	const char *q = a, *e = a + n;
	bool maybe = false;

	while (!maybe && (q = memchr(q, '"', (size_t)(e - q))) != NULL) {
		size_t left = (size_t)(e - q);
		maybe = (left >= 6 && q[1] == 't' && !memcmp(q, "\"type\"", 6)) ||
			(left >= 4 && q[1] == 'i' && !memcmp(q, "\"id\"", 4));
		q++;
	}
	return maybe;
}

/* An EVENT's argument object must not carry the command's own keys. */
static int own_keys(const char *a, size_t n)
{
	struct jtop top;
	size_t pos;
	const char *why;

	/* The usual case, neither "type" nor "id" anywhere: no scan. */
	if (!maybe_own_keys(a, n))
		return 0;
	if (jscan_object(a, n, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &top, &pos, &why) != JSCAN_OK)
		return 0; /* cmd_handle reports it */
	return jscan_get(&top, "type") || jscan_get(&top, "id");
}

/* {"type":<event>[,"id":N][,<the argument's members>]} into cmd. */
static void build_command(const struct jval *name, uint64_t id, const struct jval *arg)
{
	pbuf_reset(&cmd);
	pbuf_adds(&cmd, "{\"type\":");
	pbuf_add(&cmd, name->p, name->n);
	if (id) {
		pbuf_adds(&cmd, ",\"id\":");
		pbuf_add_u64(&cmd, id);
	}
	if (arg) {
		const char *m = arg->p + 1, *e = arg->p + arg->n - 1; /* inside the braces */
		while (m < e && (*m == ' ' || *m == '\t' || *m == '\n' || *m == '\r'))
			m++;
		if (m < e) {
			pbuf_addc(&cmd, ',');
			pbuf_add(&cmd, m, (size_t)(e - m));
		}
	}
	pbuf_addc(&cmd, '}');
}

/* A packet the decoder refused: the reference server closes the
 * connection on an invalid packet. */
static void bad_packet(struct sio_conn *sc, enum sio_err e)
{
	log_info("sio_bad_packet", "session=%s sid=%s error=%s", sc->c->session, sc->eio.sid,
		 log_q(sio_strerror(e)));
	close_session(sc, EIO_CLOSE_PARSE_ERROR);
}

static void on_event(struct sio_conn *sc, const struct sio_packet *p);

/*
 * An unchecked EVENT (sio.h, lazy_events): the command built from it goes
 * to the core with the JSON scan's bounds narrowed to what the Socket.IO
 * check would have allowed (the argument sits one level deeper in the
 * event's array than its members in the command, and the command adds
 * "type" and "id" to its keys), so that scan accepting the command means
 * the event was valid JSON within the Socket.IO bounds: one pass instead
 * of two. Whatever that scan refuses, and anything unusual, takes the
 * full check and the ordinary path, exactly as before: close on an
 * invalid packet, the edge's or the core's error reply on a valid one.
 */
static void lazy_event(struct sio_conn *sc, const struct sio_packet *p)
{
	struct conn *c = sc->c;
	const struct sio_limits *lim = &sc->dec.lim;
	uint64_t id = p->has_id ? p->id + 1 : 0;
	unsigned extra = id ? 2 : 1;

	/* The argument holding "type" or "id" is a duplicate key in the
	 * command, or an "id" where none was written: refused by the scan
	 * (no_id), and answered below as before. */
	if (lim->max_depth >= 2) {
		unsigned depth = lim->max_depth - 1 < PROTO_DEPTH_MAX ? lim->max_depth - 1
								       : PROTO_DEPTH_MAX;
		unsigned keys = lim->max_keys < PROTO_KEYS_MAX - extra ? lim->max_keys + extra
								       : PROTO_KEYS_MAX;
		build_command(&p->event, id, &p->arg);
		if (cmd.len <= c->srv->cfg->max_message_size &&
		    cmd_handle_bounded(c, cmd.data, cmd.len, depth, keys, id == 0) == 0) {
			if (cmd.cap > 65536)
				pbuf_free(&cmd);
			return;
		}
	}
	struct sio_packet q = *p;
	enum sio_err e = sio_check(&q, lim);
	if (e != SIO_OK) {
		bad_packet(sc, e);
		return;
	}
	on_event(sc, &q);
}

static void on_event(struct sio_conn *sc, const struct sio_packet *p)
{
	struct conn *c = sc->c;
	const char *a = p->data;
	size_t an = p->data_len;
	struct jval it[2];
	uint64_t id = p->has_id ? p->id + 1 : 0;

	if (p->attachments) {
		/* Buffers become {"$base64":…} wrappers: what is stored and
		 * what native clients see (docs/socketio.md, "Binary data"). */
		pbuf_reset(&wrap);
		if (sio_bin_wrap(&wrap, p->data, p->data_len, p->att, p->attachments) < 0) {
			close_session(sc, EIO_CLOSE_PARSE_ERROR);
			return;
		}
		a = wrap.data;
		an = wrap.len;
	}
	size_t items = sio_array_first(a, an, it, 2);
	const struct jval *arg = items >= 2 ? &it[1] : NULL;

	if (it[0].type != JT_STRING) {
		cmd__fail(c, id, PROTO_EUNKNOWN_TYPE, "event names are strings");
		return;
	}
	if (arg && arg->type != JT_OBJECT) {
		cmd__fail(c, id, PROTO_EBAD_REQUEST, "the event's argument must be an object");
		return;
	}
	if (arg && own_keys(arg->p, arg->n)) {
		cmd__fail(c, id, PROTO_EBAD_REQUEST, "the argument must not hold type or id");
		return;
	}
	build_command(&it[0], id, arg);
	if (cmd.len > c->srv->cfg->max_message_size) {
		cmd__fail(c, id, PROTO_ETOO_LARGE, NULL);
		return;
	}
	run_command(c, cmd.data, cmd.len);
	if (cmd.cap > 65536)
		pbuf_free(&cmd);
}

/* ---- parley-sio-conformance: the public protocol test suite's server ----
 *
 * Namespaces "/" and "/custom"; on connection it emits "auth" with the
 * handshake's auth; "message" comes back as "message-back" and
 * "message-with-ack" is acked with its arguments, attachments included.
 * No Parley: no hello, no welcome, no commands. */

void sio_edge_conformance(void)
{
	conformance = true;
}

static unsigned nsp_bit(const struct sio_packet *p)
{
	if (is_root(p))
		return 1;
	if (p->nsp_len == 7 && !memcmp(p->nsp, "/custom", 7))
		return 2;
	return 0;
}

/* Sends header + json, then the packet's attachments as binary messages. */
static void conf_send(struct sio_conn *sc, enum sio_type type, const struct sio_packet *p,
		      bool has_id, uint64_t id, const char *json, size_t n)
{
	struct pbuf b = { 0 };

	pbuf_addc(&b, '4');
	sio_enc_header(&b, type, p->nsp, p->nsp_len, has_id, id, p->attachments);
	pbuf_add(&b, json, n);
	struct frame *f = frame_new_text(b.data, b.len);
	emit(sc, f);
	frame_unref(&f);
	for (unsigned i = 0; i < p->attachments; i++) {
		f = frame_new_binary(p->att[i].p, p->att[i].n);
		emit(sc, f);
		frame_unref(&f);
	}
	pbuf_free(&b);
}

static void conformance_packet(struct sio_conn *sc, const struct sio_packet *p)
{
	struct conn *c = sc->c;
	unsigned bit = nsp_bit(p);
	struct pbuf b = { 0 };

	switch (p->type) {
	case SIO_CONNECT:
		if (!bit) {
			sio_enc_connect_error(&b, p->nsp, p->nsp_len, "Invalid namespace");
			queue_sio(sc, b.data, b.len);
		} else if (!(sc->nsps & bit)) {
			sc->nsps |= (uint8_t)bit;
			sc->connected = true;
			fast_update(sc);
			sio_enc_connect(&b, p->nsp, p->nsp_len, c->session);
			queue_sio(sc, b.data, b.len);
			pbuf_reset(&b);
			sio_enc_event_open(&b, p->nsp, p->nsp_len, false, 0, 0, "auth", 4);
			pbuf_addc(&b, ',');
			if (p->data)
				pbuf_add(&b, p->data, p->data_len);
			else
				pbuf_adds(&b, "{}");
			pbuf_addc(&b, ']');
			queue_sio(sc, b.data, b.len);
		}
		break;
	case SIO_DISCONNECT:
		if (!(sc->nsps & bit)) {
			close_session(sc, EIO_CLOSE_PARSE_ERROR);
			break;
		}
		sc->nsps &= (uint8_t)~bit;
		if (!sc->nsps) {
			sc->client_disconnect = true;
			conn_close_later(c, LWS_CLOSE_STATUS_NORMAL);
			c->close_reason = CLOSE_R_CLIENT;
		}
		break;
	case SIO_EVENT:
	case SIO_BINARY_EVENT: {
		if (!(sc->nsps & bit)) {
			close_session(sc, EIO_CLOSE_PARSE_ERROR);
			break;
		}
		const char *e = p->data + p->data_len;
		const char *rest = p->event.p + p->event.n; /* after the event name */
		bool back = p->event.type == JT_STRING && p->event.n == 9 &&
			    !memcmp(p->event.p, "\"message\"", 9);
		bool with_ack = p->event.type == JT_STRING && p->event.n == 18 &&
				!memcmp(p->event.p, "\"message-with-ack\"", 18);
		if (back) {
			pbuf_adds(&b, "[\"message-back\"");
			pbuf_add(&b, rest, (size_t)(e - rest));
			conf_send(sc, SIO_EVENT, p, false, 0, b.data, b.len);
		} else if (with_ack && p->has_id) {
			while (rest < e && (*rest == ' ' || *rest == '\t' || *rest == '\n' || *rest == '\r'))
				rest++;
			if (rest < e && *rest == ',')
				rest++;
			pbuf_addc(&b, '[');
			pbuf_add(&b, rest, (size_t)(e - rest));
			conf_send(sc, SIO_ACK, p, true, p->id, b.data, b.len);
		}
		break;
	}
	case SIO_ACK:
	case SIO_BINARY_ACK:
		if (!(sc->nsps & bit))
			close_session(sc, EIO_CLOSE_PARSE_ERROR);
		break;
	default:
		close_session(sc, EIO_CLOSE_PARSE_ERROR);
		break;
	}
	pbuf_free(&b);
}

static void on_packet(struct sio_conn *sc, const struct sio_packet *p)
{
	if (conformance) {
		conformance_packet(sc, p);
		return;
	}
	struct conn *c = sc->c;

	switch (p->type) {
	case SIO_CONNECT:
		if (!is_root(p)) {
			pbuf_reset(&cmd);
			sio_enc_connect_error(&cmd, p->nsp, p->nsp_len, "Invalid namespace");
			queue_sio(sc, cmd.data, cmd.len);
		} else if (!sc->connected) {
			on_connect(sc, p);
		}
		return;
	case SIO_DISCONNECT:
		if (is_root(p) && sc->connected) {
			sc->client_disconnect = true;
			log_info("sio_close", "session=%s sid=%s reason=\"client namespace disconnect\"",
				 c->session, sc->eio.sid);
			conn_close_later(c, LWS_CLOSE_STATUS_NORMAL);
			c->close_reason = CLOSE_R_CLIENT;
			return;
		}
		break; /* a namespace it is not in: invalid state */
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		if (is_root(p) && sc->connected) {
			if (p->unchecked)
				lazy_event(sc, p);
			else
				on_event(sc, p);
			return;
		}
		if (p->unchecked) {
			/* Closed either way; logged as the full check would. */
			struct sio_packet q = *p;
			enum sio_err e = sio_check(&q, &sc->dec.lim);
			if (e != SIO_OK) {
				bad_packet(sc, e);
				return;
			}
		}
		break;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		if (is_root(p) && sc->connected)
			return; /* parleyd asks for no acks */
		break;
	default:
		break; /* CONNECT_ERROR comes only from servers */
	}
	/* The reference server closes the connection on a packet for a
	 * namespace the client is not connected to. */
	close_session(sc, EIO_CLOSE_PARSE_ERROR);
}


/* ---- Engine.IO packets in ---- */

/* A Socket.IO packet (an Engine.IO message) from the client. */
static void on_message(struct sio_conn *sc, const struct eio_packet *msg)
{
	struct sio_packet pk;
	enum sio_err e;

	if (sc->dead || sc->c->close_code)
		return;
	e = msg->binary ? sio_decoder_binary(&sc->dec, msg->data, msg->len, &pk)
			: sio_decoder_text(&sc->dec, (const char *)msg->data, msg->len, &pk);
	if (e == SIO_OK)
		on_packet(sc, &pk);
	else if (e != SIO_MORE)
		bad_packet(sc, e);
}

/*
 * Collects a WebSocket message on port (lws hands it over in pieces):
 * returns 1 with *p, *n the whole message, 0 while more is to come, -1
 * when it must close (code in *code).
 */
static int collect(struct conn *port, struct lws *wsi, const char *in, size_t len,
		   const char **p, size_t *n, uint16_t *code)
{
	bool binary = lws_frame_is_binary(wsi);
	int first = lws_is_first_fragment(wsi);
	int done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	/* What the frame header declares counts at once (as in ws.c). */
	if ((uint64_t)port->rx.len + len + lws_remaining_packet_payload(wsi) > ecfg.max_payload) {
		*code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
		return -1;
	}
	if (!binary && (utf8_feed(&port->rx_utf8, (const unsigned char *)in, len) < 0 ||
			(done && utf8_end(&port->rx_utf8) < 0))) {
		*code = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
		return -1;
	}
	if (first && done && !port->rx.len) {
		*p = in;
		*n = len;
		return 1;
	}
	pbuf_add(&port->rx, in, len);
	if (!done)
		return 0;
	*p = port->rx.data;
	*n = port->rx.len;
	return 1;
}

static void collect_done(struct conn *port)
{
	pbuf_reset(&port->rx);
	if (port->rx.cap > 16384)
		pbuf_free(&port->rx); /* don't keep a big buffer per connection */
}

static int on_ws_receive(struct sio_conn *sc, struct conn *port, struct lws *wsi,
			 const char *in, size_t len)
{
	const char *p;
	size_t n;
	uint16_t code = 0;
	struct eio_packet msg;
	bool have = false, binary = lws_frame_is_binary(wsi);
	int r;

	if (sc->c->close_code || sc->dead)
		return 0; /* closing: ignore what is still in flight */
	r = collect(port, wsi, in, len, &p, &n, &code);
	if (r < 0) {
		pbuf_free(&port->rx);
		port->rx_utf8.need = 0;
		if (code == LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE) {
			close_session(sc, EIO_CLOSE_TOO_LARGE);
		} else {
			conn_close_later(sc->c, code);
		}
		return 0;
	}
	if (r == 0)
		return 0;
	apply(sc, eio_session_on_ws_frame(&sc->eio, binary, (const uint8_t *)p, n, now_ms(), &msg,
					  &have));
	if (have)
		on_message(sc, &msg);
	collect_done(port);
	return 0;
}

static int on_probe_receive(struct sio_conn *sc, struct conn *port, struct lws *wsi,
			    const char *in, size_t len)
{
	const char *p;
	size_t n;
	uint16_t code = 0;
	bool binary = lws_frame_is_binary(wsi);
	int r = collect(port, wsi, in, len, &p, &n, &code);

	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	unsigned act = eio_session_on_probe_frame(&sc->eio, binary, (const uint8_t *)p, n, now_ms());
	collect_done(port);
	if (!(act & EIO_ACT_PROBE_CLOSE) && n == 1 && p[0] == '5') {
		/* Upgraded: this WebSocket is the session's transport now. */
		sc->ws_wsi = wsi;
		sc->ws_port = port;
		sc->probe_wsi = NULL;
		sc->probe_port = NULL;
		sc->c->wsi = wsi;
		sc->c->fd = lws_is_ssl(wsi) ? -1 : (int)lws_get_socket_fd(wsi);
		fast_update(sc);
		log_info("sio_upgrade", "session=%s sid=%s", sc->c->session, sc->eio.sid);
		st.upgrades++;
		/* what polling had not taken goes out first, in order */
		act |= EIO_ACT_WS_WRITABLE;
	}
	apply(sc, act);
	return 0;
}

/* WRITEABLE on the probe: "3probe", or its close. */
static int probe_writeable(struct sio_conn *sc, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + 8];

	if (sc->probe_kill)
		return -1;
	if (sc->probe_reply) {
		sc->probe_reply = false;
		memcpy(buf + LWS_PRE, "3probe", 6);
		if (lws_write(wsi, buf + LWS_PRE, 6, LWS_WRITE_TEXT) < 6)
			return -1;
	}
	return 0;
}

/* ---- WebSocket ---- */

int sio_confirm_upgrade(struct server *s, struct lws *wsi)
{
	char transport[64], eio[32], sid[96]; /* lws copies "name=value" */
	const char *t = lws_get_urlarg_by_name(wsi, "transport=", transport, sizeof(transport));
	const char *v = lws_get_urlarg_by_name(wsi, "EIO=", eio, sizeof(eio));
	const char *id = lws_get_urlarg_by_name(wsi, "sid=", sid, sizeof(sid));
	int e = eio_check_request(t, v, id != NULL, true, true);
	struct sio_conn *sc;

	if (e < 0 && strcmp(t, "websocket"))
		e = EIO_HERR_BAD_REQUEST; /* polling is not an upgrade */
	if (e >= 0)
		return upgrade_error(s, wsi, 0, (enum eio_http_err)e, NULL);
	if (!id) {
		if (s->cfg->sio_max_sessions && nsessions >= s->cfg->sio_max_sessions)
			return upgrade_error(s, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
					     EIO_HERR_BAD_REQUEST, "too many connections");
		return 0;
	}
	sc = find(id);
	if (!sc || sc->dead)
		return upgrade_error(s, wsi, 0, EIO_HERR_UNKNOWN_SID, NULL);
	unsigned act = eio_session_ws_attach(&sc->eio, now_ms());
	if (act & EIO_ACT_PROBE_CLOSE)
		return upgrade_error(s, wsi, 0, sc->eio.http_err, NULL);
	apply(sc, act);
	return 0;
}

int sio_ws_open(struct conn *port, struct server *s, struct lws *wsi, const char *peer)
{
	char sid[96];
	const char *id = lws_get_urlarg_by_name(wsi, "sid=", sid, sizeof(sid));
	struct sio_conn *sc;

	memset(port, 0, sizeof(*port));
	port->kind = CONN_SIO_PORT;
	if (!id) {
		sc = sess_new(s, wsi, peer, EIO_T_WEBSOCKET);
		sc->ws_port = port;
		port->sio = sc;
		return 0;
	}
	/* The probe of an upgrade, attached in sio_confirm_upgrade. */
	sc = find(id);
	if (!sc || sc->dead || !sc->eio.probing || sc->probe_port)
		return -1;
	sc->probe_wsi = wsi;
	sc->probe_port = port;
	port->sio = sc;
	return 0;
}

/* ---- HTTP long-polling ---- */

/* Answers the held GET (from its own callback). */
static int poll_answer(struct sio_conn *sc, struct lws *wsi, struct conn *port)
{
	struct server *s = sc->s;

	pbuf_reset(&body);
	unsigned act = eio_session_poll_body(&sc->eio, &body);
	detach(port);
	int r = respond(s, wsi, HTTP_STATUS_OK, "text/plain; charset=UTF-8", body.data, body.len,
			false);
	if (body.cap > 65536)
		pbuf_free(&body);
	apply(sc, act);
	/* The client took what was queued: a replay (catchup.c) waiting for
	 * room refills the queue for its next GET (whatever becomes of this
	 * HTTP connection: r < 0 only closes it, not the session). */
	if (sc->c->cu_head && !sc->dead)
		catchup_pump(sc->c);
	return r;
}

static int on_get(struct server *s, struct sio_conn *sc, struct lws *wsi, struct conn *port)
{
	unsigned act = eio_session_on_get(&sc->eio, now_ms());

	if (act & EIO_ACT_HTTP_ERROR) {
		int r = respond_error(s, wsi, (unsigned)sc->eio.http_status, sc->eio.http_err, NULL);
		apply(sc, act & ~EIO_ACT_POLL_RESPOND);
		if (act & EIO_ACT_POLL_RESPOND && sc->poll_wsi)
			lws_callback_on_writable(sc->poll_wsi);
		return r;
	}
	sc->poll_wsi = wsi;
	sc->poll_port = port;
	port->sio = sc;
	if (act & EIO_ACT_POLL_RESPOND)
		return poll_answer(sc, wsi, port);
	/* Held: the next ping (every pingInterval) releases it at the
	 * latest; this is only a safety net. */
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
			(int)((ecfg.ping_interval_ms + ecfg.ping_timeout_ms) / 1000 + 5));
	apply(sc, act & ~EIO_ACT_HOLD);
	return 0;
}

static int post_done(struct server *s, struct sio_conn *sc, struct lws *wsi, struct conn *port)
{
	size_t nmsgs = 0;
	unsigned act;

	pbuf_reserve(&port->rx, 1); /* data non-NULL for an empty body */
	act = eio_session_on_post(&sc->eio, port->rx.data, port->rx.len, now_ms(), post_msgs,
				  ecfg.max_packets_per_payload, &nmsgs);
	detach(port);
	/* The messages point into the body: handled before it is freed,
	 * and both before the answer (lws may free the port's memory when
	 * the transaction completes). */
	if (!(act & EIO_ACT_HTTP_ERROR))
		for (size_t i = 0; i < nmsgs; i++)
			on_message(sc, &post_msgs[i]);
	pbuf_free(&port->rx);
	if (act & EIO_ACT_HTTP_ERROR) {
		enum eio_http_err e = sc->eio.http_err;
		unsigned status = (unsigned)sc->eio.http_status;
		apply(sc, act);
		return respond_error(s, wsi, status, e, NULL);
	}
	apply(sc, act & ~EIO_ACT_POST_OK);
	return respond(s, wsi, HTTP_STATUS_OK, "text/html", "ok", 2, false);
}

static int on_post(struct server *s, struct sio_conn *sc, struct lws *wsi, struct conn *port)
{
	char cl[32];
	unsigned act = eio_session_post_begin(&sc->eio, now_ms());

	if (act & EIO_ACT_HTTP_ERROR) {
		int r = respond_error(s, wsi, (unsigned)sc->eio.http_status, sc->eio.http_err, NULL);
		apply(sc, act);
		return r;
	}
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_TYPE) > 0 &&
	    !strncmp(cl, "application/octet-stream", 24)) {
		/* Engine.IO v3's binary POST: not v4. */
		sc->eio.post_active = false;
		return respond_error(s, wsi, 0, EIO_HERR_BAD_REQUEST, NULL);
	}
	int cln = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (cln > 0 && strtoull(cl, NULL, 10) > ecfg.max_payload) {
		/* Not read at all: the reference closes the session too. */
		sc->eio.post_active = false;
		int r = respond_error(s, wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, EIO_HERR_BAD_REQUEST,
				      NULL);
		close_session(sc, EIO_CLOSE_TOO_LARGE);
		return r < 0 ? r : -1;
	}
	sc->post_wsi = wsi;
	sc->post_port = port;
	port->sio = sc;
	pbuf_reset(&port->rx);
	if (cln > 0 && !strcmp(cl, "0"))
		return post_done(s, sc, wsi, port);
	return 0;
}

int sio_http(struct server *s, struct lws *wsi, struct conn *port, const char *peer)
{
	const struct config *cfg = s->cfg;
	char transport[64], eio[32], sid[96], origin[256];
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	int on;

	/* A keep-alive connection's port is reused request after request. */
	detach(port);
	pbuf_free(&port->rx);
	memset(port, 0, sizeof(*port));
	port->kind = CONN_SIO_PORT;

	on = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (cfg->origins && on > 0 &&
	    (on >= (int)sizeof(origin) || lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) != on ||
	     !ws_origin_allowed(cfg->origins, origin))) {
		ws_count_refusal(s, 403);
		return respond_error(s, wsi, 0, EIO_HERR_FORBIDDEN, NULL);
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
		return respond(s, wsi, HTTP_STATUS_NO_CONTENT, "text/plain", "", 0, true);

	const char *t = lws_get_urlarg_by_name(wsi, "transport=", transport, sizeof(transport));
	const char *v = lws_get_urlarg_by_name(wsi, "EIO=", eio, sizeof(eio));
	const char *id = lws_get_urlarg_by_name(wsi, "sid=", sid, sizeof(sid));
	int e = eio_check_request(t, v, id != NULL, get, false);
	if (e >= 0)
		return respond_error(s, wsi, 0, (enum eio_http_err)e, NULL);
	if (id) {
		struct sio_conn *sc = find(id);
		if (!sc || sc->dead)
			return respond_error(s, wsi, 0, EIO_HERR_UNKNOWN_SID, NULL);
		if (strcmp(t, "polling"))
			return respond_error(s, wsi, 0, EIO_HERR_BAD_REQUEST, NULL);
		if (get)
			return on_get(s, sc, wsi, port);
		if (post)
			return on_post(s, sc, wsi, port);
		return respond_error(s, wsi, 0, EIO_HERR_BAD_REQUEST, NULL);
	}
	/* The handshake: a new session, if the limits allow. */
	if (strcmp(t, "polling"))
		return respond_error(s, wsi, 0, EIO_HERR_BAD_REQUEST, NULL);
	if (s->draining) {
		ws_count_refusal(s, 503);
		return respond_error(s, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, EIO_HERR_BAD_REQUEST,
				     "server is shutting down");
	}
	if ((cfg->max_connections && s->nconns >= cfg->max_connections) ||
	    (cfg->sio_max_sessions && nsessions >= cfg->sio_max_sessions)) {
		ws_count_refusal(s, 503);
		return respond_error(s, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, EIO_HERR_BAD_REQUEST,
				     "too many connections");
	}
	if (cfg->max_connections_per_ip && conn_count_ip(s, peer) >= cfg->max_connections_per_ip) {
		ws_count_refusal(s, 429);
		return respond_error(s, wsi, 429, EIO_HERR_BAD_REQUEST,
				     "too many connections from this address");
	}
	struct sio_conn *sc = sess_new(s, wsi, peer, EIO_T_POLLING);
	if (sc->c->close_code)
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0); /* ?token= refused: not this request's */
	/* The handshake GET is the session's first held poll. */
	sc->poll_wsi = wsi;
	sc->poll_port = port;
	port->sio = sc;
	return poll_answer(sc, wsi, port);
}

/* ---- the callbacks of ports ---- */

int sio_port_callback(struct server *s, struct lws *wsi, enum lws_callback_reasons reason,
		      struct conn *port, void *in, size_t len)
{
	struct sio_conn *sc = port->sio;

	if (!sc && reason != LWS_CALLBACK_RECEIVE && reason != LWS_CALLBACK_SERVER_WRITEABLE &&
	    reason != LWS_CALLBACK_CLOSED && reason != LWS_CALLBACK_WS_PEER_INITIATED_CLOSE)
		/* An HTTP connection that served /socket.io/ before and now
		 * something else (keep-alive): lws's defaults, as in ws.c. */
		return lws_callback_http_dummy(wsi, reason, port, in, len);

	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
		if (!sc)
			return -1;
		if (sc->ws_port == port)
			return on_ws_receive(sc, port, wsi, in, len);
		if (sc->probe_port == port)
			return on_probe_receive(sc, port, wsi, in, len);
		return -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!sc)
			return -1;
		if (sc->ws_port == port)
			return ws_writeable(sc->c, wsi);
		if (sc->probe_port == port)
			return probe_writeable(sc, wsi);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (sc && sc->ws_port == port)
			sc->c->peer_closed = true;
		return 0;
	case LWS_CALLBACK_CLOSED:
		linger_start(&s->linger, lws_get_socket_fd(wsi));
		if (sc) {
			bool ws = sc->ws_port == port;
			detach(port);
			apply(sc, ws ? eio_session_on_ws_gone(&sc->eio) : eio_session_on_probe_gone(&sc->eio));
		}
		pbuf_free(&port->rx);
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
		if (sc && sc->post_port == port) {
			if (port->rx.len + len > ecfg.max_payload) {
				/* past maxPayload without a Content-Length */
				detach(port);
				pbuf_free(&port->rx);
				sc->eio.post_active = false;
				int r = respond_error(s, wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
						      EIO_HERR_BAD_REQUEST, NULL);
				close_session(sc, EIO_CLOSE_TOO_LARGE);
				return r < 0 ? r : -1;
			}
			pbuf_add(&port->rx, in, len);
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (sc && sc->post_port == port)
			return post_done(s, sc, wsi, port);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (sc && sc->poll_port == port)
			return poll_answer(sc, wsi, port);
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (sc) {
			/* "poll connection closed prematurely" */
			detach(port);
			apply(sc, eio_session_on_http_gone(&sc->eio));
		}
		pbuf_free(&port->rx);
		return 0;
	default:
		return 0;
	}
}

/* ---- metrics ---- */


static void metric_value(struct pbuf *b, const char *name, const char *labels, uint64_t v)
{
	pbuf_adds(b, name);
	pbuf_adds(b, labels);
	pbuf_addc(b, ' ');
	pbuf_add_u64(b, v);
	pbuf_addc(b, '\n');
}

void sio_edge_metrics(struct pbuf *b)
{
	static const char *const transports[2] = { "polling", "websocket" };
	uint64_t now[2] = { 0, 0 };
	char labels[64];

	for (const struct sio_conn *sc = all; sc; sc = sc->next)
		if (!sc->dead)
			now[sc->eio.transport == EIO_T_WEBSOCKET]++;
	metrics_head(b, "parley_sio_sessions", "gauge", "Socket.IO (Engine.IO) sessions now, by transport.");
	for (int i = 0; i < 2; i++) {
		snprintf(labels, sizeof(labels), "{transport=\"%s\"}", transports[i]);
		metric_value(b, "parley_sio_sessions", labels, now[i]);
	}
	metrics_head(b, "parley_sio_sessions_total", "counter",
		    "Socket.IO sessions opened, by the transport of their handshake.");
	for (int i = 0; i < 2; i++) {
		snprintf(labels, sizeof(labels), "{transport=\"%s\"}", transports[i]);
		metric_value(b, "parley_sio_sessions_total", labels, st.sessions_total[i]);
	}
	metrics_head(b, "parley_sio_upgrades_total", "counter", "Polling sessions upgraded to WebSocket.");
	metric_value(b, "parley_sio_upgrades_total", "", st.upgrades);
	metrics_head(b, "parley_sio_closes_total", "counter", "Socket.IO sessions closed, by Engine.IO reason.");
	for (int r = EIO_CLOSE_CLIENT; r <= EIO_CLOSE_TOO_LARGE; r++) {
		snprintf(labels, sizeof(labels), "{reason=\"%s\"}",
			 eio_close_reason_str((enum eio_close_reason)r));
		metric_value(b, "parley_sio_closes_total", labels, st.closes[r]);
	}
	metrics_head(b, "parley_sio_recoveries_total", "counter",
		    "Reconnects with a known pid (connection state recovery), by socket.recovered.");
	metric_value(b, "parley_sio_recoveries_total", "{recovered=\"true\"}", st.recovered[1]);
	metric_value(b, "parley_sio_recoveries_total", "{recovered=\"false\"}", st.recovered[0]);
	metrics_head(b, "parley_sio_recoverable", "gauge", "Dropped Socket.IO sessions kept for recovery.");
	metric_value(b, "parley_sio_recoverable", "", nsaved);
}
