#define _GNU_SOURCE /* memmem */
/*
 * sio_edge.c - Socket.IO clients over the Engine.IO WebSocket transport
 * (sio_edge.h). Runs on the loop thread only, like the rest of the core.
 */
#include "sio_edge.h"

#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "cmd.h"
#include "cmd_int.h"
#include "conn.h"
#include "eio.h"
#include "eio_session.h"
#include "frame.h"
#include "jscan.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "sio.h"
#include "util.h"

/* The Engine.IO and Socket.IO state of one CONN_SIO connection. */
struct sio_conn {
	struct conn *c;
	ev_timer timer;             /* eio_session_deadline / connect deadline */
	bool timer_on;
	bool connected;             /* CONNECT to "/" was accepted */
	bool connecting;            /* inside CONNECT: errors become CONNECT_ERROR */
	bool connect_error_sent;
	uint64_t connect_deadline;  /* mono ms: close unless connected by then */
	struct eio_session eio;
	struct sio_decoder dec;
};

static struct eio_config ecfg;
static uint32_t connect_timeout_ms;
/* Scratch: renditions and Engine.IO packets (out), a rendition's JSON
 * (rjson) and attachment bytes (bytes), synthesised commands (cmd),
 * wrapped binary events (wrap). cmd lives across cmd_handle(), whose
 * replies are rendered with out, rjson and bytes. */
static struct pbuf out, rjson, cmd, wrap, bytes;

static uint64_t now_ms(void)
{
	return util_mono_us() / 1000;
}

void sio_edge_setup(struct server *s)
{
	const struct config *cfg = s->cfg;

	eio_config_defaults(&ecfg);
	ecfg.ping_interval_ms = cfg->sio_ping_interval;
	ecfg.ping_timeout_ms = cfg->sio_ping_timeout;
	ecfg.max_payload = cfg->sio_max_payload;
	connect_timeout_ms = cfg->sio_connect_timeout;
}

void sio_edge_teardown(void)
{
	pbuf_free(&out);
	pbuf_free(&cmd);
	pbuf_free(&wrap);
	pbuf_free(&rjson);
	pbuf_free(&bytes);
}

int sio_is_path(const char *uri)
{
	return !strcmp(uri, "/socket.io/") || !strcmp(uri, "/socket.io");
}

/* ---- upgrade ---- */

static int http_error(struct lws *wsi, enum eio_http_err e)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;
	struct pbuf b = { 0 };
	int r = 1;

	eio_encode_http_error(&b, e, NULL);
	if (lws_add_http_common_headers(wsi, (unsigned)eio_http_status(e), "application/json",
					(lws_filepos_t)b.len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end) ||
	    lws_write(wsi, (unsigned char *)b.data, b.len, LWS_WRITE_HTTP_FINAL) != (int)b.len)
		r = -1;
	else if (lws_http_transaction_completed(wsi))
		r = -1;
	pbuf_free(&b);
	return r;
}

int sio_confirm_upgrade(struct server *s, struct lws *wsi)
{
	char transport[64], eio[32], sid[96]; /* lws copies "name=value" */
	const char *t = lws_get_urlarg_by_name(wsi, "transport=", transport, sizeof(transport));
	const char *v = lws_get_urlarg_by_name(wsi, "EIO=", eio, sizeof(eio));
	const char *id = lws_get_urlarg_by_name(wsi, "sid=", sid, sizeof(sid));
	int e = eio_check_request(t, v, id != NULL, true, true);

	(void)s;
	if (e < 0 && id)
		/* Sessions live only as long as their WebSocket here (no
		 * long-polling yet), so no sid is known. */
		e = EIO_HERR_UNKNOWN_SID;
	if (e < 0 && strcmp(t, "websocket"))
		e = EIO_HERR_BAD_REQUEST; /* polling is not an upgrade */
	if (e < 0)
		return 0;
	log_info("refused", "status=400 reason=%s", log_q(eio_http_message((enum eio_http_err)e)));
	return http_error(wsi, (enum eio_http_err)e);
}

/* ---- output ---- */

static void timer_arm(struct sio_conn *sc);

/* Queues one Socket.IO packet text (without the Engine.IO "4"). */
static void queue_sio(struct conn *c, const char *p, size_t n)
{
	pbuf_reset(&out);
	pbuf_addc(&out, '4');
	pbuf_add(&out, p, n);
	struct frame *f = frame_new_text(out.data, out.len);
	conn_queue(c, f);
	frame_unref(&f);
}

/* Moves what the Engine.IO session queued (open, ping) to the connection's
 * queue, in order; closes when the session is done. */
static void drain(struct sio_conn *sc)
{
	struct conn *c = sc->c;
	bool binary;
	int r;

	for (;;) {
		pbuf_reset(&out);
		r = eio_session_ws_next(&sc->eio, &out, &binary);
		if (r <= 0)
			break;
		struct frame *f = binary ? frame_new_binary(out.data, out.len)
					 : frame_new_text(out.data, out.len);
		conn_queue(c, f);
		frame_unref(&f);
	}
	if (r < 0)
		conn_close_later(c, LWS_CLOSE_STATUS_NORMAL);
}

/* The session closed (eio reason): close the WebSocket after what is
 * queued, counted under the matching close reason. */
static void close_session(struct sio_conn *sc, enum eio_close_reason why)
{
	struct conn *c = sc->c;
	uint8_t r;

	if (c->close_code)
		return;
	switch (why) {
	case EIO_CLOSE_CLIENT: r = CLOSE_R_CLIENT; break;
	case EIO_CLOSE_PING_TIMEOUT: r = CLOSE_R_HANGUP; break;
	case EIO_CLOSE_QUEUE_FULL: r = CLOSE_R_SLOW_CONSUMER; break;
	case EIO_CLOSE_TOO_LARGE: r = CLOSE_R_TOO_BIG; break;
	default: r = CLOSE_R_ERROR; break;
	}
	log_info("sio_close", "session=%s sid=%s reason=%s", c->session, sc->eio.sid,
		 log_q(eio_close_reason_str(why)));
	conn_close_later(c, why == EIO_CLOSE_TOO_LARGE ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
						       : LWS_CLOSE_STATUS_NORMAL);
	c->close_reason = r;
}

static void apply(struct sio_conn *sc, unsigned act)
{
	if (act & EIO_ACT_WS_WRITABLE)
		drain(sc);
	if (act & EIO_ACT_CLOSE)
		close_session(sc, sc->eio.close_reason);
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
	queue_sio(sc->c, b.data, b.len);
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

/* Appends frame g and the attachment frames chained on it (g->sio). */
static void queue_chain(struct conn *c, struct frame *g)
{
	for (; g && !c->close_code; g = g->sio)
		conn_queue(c, g);
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
	uint64_t id = 0;

	if (n < hl + 2 || memcmp(p, head, hl) || p[n - 1] != '}')
		return NULL;
	const char *t = p + hl, *q = memchr(t, '"', n - hl);
	if (!q || q + 1 >= p + n)
		return NULL;
	size_t tn = (size_t)(q - t);
	const char *rest = q + 1; /* ',' or '}' */
	const char *end = p + n;

	pbuf_reset(&rjson);
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
		pbuf_adds(&rjson, "[{");
		pbuf_add(&rjson, d + 1, (size_t)(end - d - 1));
		pbuf_addc(&rjson, ']');
	} else if (tn == 5 && !memcmp(t, "error", 5)) {
		static const char ek[] = ",\"error\":";
		if ((size_t)(end - rest) < sizeof(ek) || memcmp(rest, ek, sizeof(ek) - 1))
			return NULL;
		const char *o = rest + sizeof(ek) - 1;
		pbuf_adds(&rjson, "[\"error\",");
		pbuf_add(&rjson, o, (size_t)(end - 1 - o));
		pbuf_addc(&rjson, ']');
	} else {
		pbuf_addc(&rjson, '[');
		pbuf_add(&rjson, t - 1, tn + 2);
		pbuf_adds(&rjson, ",{");
		if (*rest == ',')
			pbuf_add(&rjson, rest + 1, (size_t)(end - rest - 1));
		else
			pbuf_addc(&rjson, '}');
		pbuf_addc(&rjson, ']');
	}
	pbuf_reset(&out);
	pbuf_reset(&bytes);
	pbuf_addc(&out, '4');
	size_t na = sio_encode_auto(&out, type, "/", 1, has_id, id, rjson.data, rjson.len, &bytes,
				    att, SIO_ATTACH_MAX_DEF);
	struct frame *f = frame_new_text(out.data, out.len);
	struct frame **link = &f->sio;
	for (size_t i = 0; i < na; i++) {
		*link = frame_new_binary(att[i].p, att[i].n);
		link = &(*link)->sio;
	}
	return f;
}

void sio_conn_send(struct conn *c, struct frame *f)
{
	struct sio_conn *sc = c->sio;
	size_t n;
	const char *p = frame_payload(f, &n);

	if (!sc->connected) {
		/* Before CONNECT only the core's answers to the hello that
		 * CONNECT ran can come: refusals become CONNECT_ERROR. */
		if (sc->connecting && !sc->connect_error_sent && n > 16 &&
		    !memcmp(p, "{\"type\":\"error\"", 15))
			connect_error_from(sc, p, n);
		return;
	}
	if (!f->sio)
		f->sio = render(p, n);
	if (f->sio)
		queue_chain(c, f->sio);
}

void sio_conn_closing(struct conn *c, uint16_t code)
{
	struct sio_conn *sc = c->sio;
	const char *why = c->close_text ? c->close_text : "authentication failed";

	if (code == CLOSE_AUTH && !sc->connected && !sc->connect_error_sent)
		connect_error(sc, why, strlen(why), "unauthenticated", 15);
}

/* ---- time ---- */

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sio_conn *sc = w->data;
	struct conn *c = sc->c;
	uint64_t now = now_ms();

	(void)loop;
	(void)revents;
	sc->timer_on = false;
	if (c->close_code)
		return;
	if (!sc->connected && sc->connect_deadline && now >= sc->connect_deadline) {
		/* The reference server's connectTimeout. */
		log_info("sio_close", "session=%s sid=%s reason=\"connect timeout\"", c->session,
			 sc->eio.sid);
		conn_close_later(c, LWS_CLOSE_STATUS_NORMAL);
		c->close_reason = CLOSE_R_HANGUP;
		return;
	}
	apply(sc, eio_session_tick(&sc->eio, now));
	timer_arm(sc);
}

static void timer_arm(struct sio_conn *sc)
{
	struct ev_loop *loop = sc->c->srv->loop;
	uint64_t at = eio_session_deadline(&sc->eio), now = now_ms();

	if (!sc->connected && sc->connect_deadline && sc->connect_deadline < at)
		at = sc->connect_deadline;
	if (sc->timer_on) {
		ev_timer_stop(loop, &sc->timer);
		sc->timer_on = false;
	}
	if (at == UINT64_MAX || sc->c->close_code)
		return;
	ev_timer_set(&sc->timer, at > now ? (double)(at - now) / 1000.0 : 0.0, 0.0);
	ev_timer_start(loop, &sc->timer);
	sc->timer_on = true;
}

/* ---- open / release ---- */

void sio_ws_open(struct conn *c, struct server *s, struct lws *wsi, const char *peer)
{
	struct sio_conn *sc = xcalloc(1, sizeof(*sc));
	struct sio_limits lim = {
		.max_attachments = SIO_ATTACH_MAX_DEF,
		.max_binary_bytes = ecfg.max_payload,
		.max_depth = PROTO_DEPTH_MAX,
		.max_keys = PROTO_KEYS_MAX,
	};
	uint8_t rnd[15];
	char sid[EIO_SID_LEN + 1];
	uint64_t now = now_ms();

	conn_open_kind(c, s, wsi, peer, CONN_SIO);
	c->sio = sc;
	sc->c = c;
	sio_decoder_init(&sc->dec, &lim);
	ev_timer_init(&sc->timer, timer_cb, 0.0, 0.0);
	sc->timer.data = sc;
	sc->connect_deadline = now + connect_timeout_ms;
	util_random(rnd, sizeof(rnd));
	eio_sid_format(rnd, sid);
	apply(sc, eio_session_init(&sc->eio, &ecfg, sid, EIO_T_WEBSOCKET, now));
	timer_arm(sc);
}

void sio_conn_release(struct conn *c)
{
	struct sio_conn *sc = c->sio;

	if (!sc)
		return;
	if (sc->timer_on)
		ev_timer_stop(c->srv->loop, &sc->timer);
	eio_session_free(&sc->eio);
	sio_decoder_free(&sc->dec);
	free(sc);
	c->sio = NULL;
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
	const struct jval *tok = NULL, *name = NULL;

	if (p->data && jscan_object(p->data, p->data_len, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &top,
				    &pos, &why) == JSCAN_OK) {
		tok = jscan_get(&top, "token");
		name = jscan_get(&top, "name");
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
	pbuf_reset(&cmd);
	sio_enc_connect(&cmd, "/", 1, c->session);
	queue_sio(c, cmd.data, cmd.len);
	log_info("sio_connect", "session=%s sid=%s user=%s", c->session, sc->eio.sid, log_q(c->name));
	conn_send_welcome(c);
}

/* An EVENT's argument object must not carry the command's own keys. */
static int own_keys(const char *a, size_t n)
{
	struct jtop top;
	size_t pos;
	const char *why;

	if (!memmem(a, n, "\"type\"", 6) && !memmem(a, n, "\"id\"", 4))
		return 0; /* the usual case: no scan */
	if (jscan_object(a, n, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &top, &pos, &why) != JSCAN_OK)
		return 0; /* cmd_handle reports it */
	return jscan_get(&top, "type") || jscan_get(&top, "id");
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
	size_t items = sio_array_items(a, an, it, 2);
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
	/* {"type":<event>[,"id":N][,<the argument's members>]} */
	pbuf_reset(&cmd);
	pbuf_adds(&cmd, "{\"type\":");
	pbuf_add(&cmd, it[0].p, it[0].n);
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
	if (cmd.len > c->srv->cfg->max_message_size) {
		cmd__fail(c, id, PROTO_ETOO_LARGE, NULL);
		return;
	}
	run_command(c, cmd.data, cmd.len);
	if (cmd.cap > 65536)
		pbuf_free(&cmd);
}

static void on_packet(struct sio_conn *sc, const struct sio_packet *p)
{
	struct conn *c = sc->c;

	switch (p->type) {
	case SIO_CONNECT:
		if (!is_root(p)) {
			pbuf_reset(&cmd);
			sio_enc_connect_error(&cmd, p->nsp, p->nsp_len, "Invalid namespace");
			queue_sio(c, cmd.data, cmd.len);
		} else if (!sc->connected) {
			on_connect(sc, p);
		}
		return;
	case SIO_DISCONNECT:
		if (is_root(p) && sc->connected) {
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
			on_event(sc, p);
			return;
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

static void on_frame(struct sio_conn *sc, bool binary, const uint8_t *p, size_t n)
{
	struct eio_packet msg;
	struct sio_packet pk;
	bool have = false;
	enum sio_err e;

	apply(sc, eio_session_on_ws_frame(&sc->eio, binary, p, n, now_ms(), &msg, &have));
	if (have && !sc->c->close_code) {
		e = msg.binary ? sio_decoder_binary(&sc->dec, msg.data, msg.len, &pk)
			       : sio_decoder_text(&sc->dec, (const char *)msg.data, msg.len, &pk);
		if (e == SIO_OK)
			on_packet(sc, &pk);
		else if (e != SIO_MORE) {
			log_info("sio_bad_packet", "session=%s sid=%s error=%s", sc->c->session,
				 sc->eio.sid, log_q(sio_strerror(e)));
			close_session(sc, EIO_CLOSE_PARSE_ERROR);
		}
	}
	timer_arm(sc);
}

int sio_conn_receive(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
	struct sio_conn *sc = c->sio;
	bool binary = lws_frame_is_binary(wsi);
	int first = lws_is_first_fragment(wsi);
	int done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (c->close_code)
		return 0; /* closing: ignore what is still in flight */
	/* What the frame header declares counts at once (as in ws.c). */
	if ((uint64_t)c->rx.len + len + lws_remaining_packet_payload(wsi) > ecfg.max_payload) {
		pbuf_free(&c->rx);
		close_session(sc, EIO_CLOSE_TOO_LARGE);
		return 0;
	}
	if (!binary && (utf8_feed(&c->rx_utf8, (const unsigned char *)in, len) < 0 ||
			(done && utf8_end(&c->rx_utf8) < 0))) {
		pbuf_free(&c->rx);
		c->rx_utf8.need = 0;
		conn_close_later(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD);
		return 0;
	}
	if (first && done && !c->rx.len) {
		on_frame(sc, binary, (const uint8_t *)in, len);
		return 0;
	}
	pbuf_add(&c->rx, in, len);
	if (done) {
		on_frame(sc, binary, (const uint8_t *)c->rx.data, c->rx.len);
		pbuf_reset(&c->rx);
		if (c->rx.cap > 16384)
			pbuf_free(&c->rx);
	}
	return 0;
}
