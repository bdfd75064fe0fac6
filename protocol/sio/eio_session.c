/* eio_session.c - the Engine.IO v4 session state machine (eio_session.h). */
#include "eio_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A queued packet. Its data is either the bytes after the entry (a copy)
 * or someone else's, released through unref. */
struct eio_qent {
	struct eio_qent *next;
	struct eio_packet pkt;
	void (*unref)(void *ref);
	void *ref;
	uint8_t copy[];
};

static const char *const close_reasons[] = {
#define EIO_X(name, s) [name] = s,
	EIO_CLOSE_REASONS(EIO_X)
#undef EIO_X
};

const char *eio_close_reason_str(enum eio_close_reason r)
{
	return (size_t)r < sizeof(close_reasons) / sizeof(*close_reasons) ? close_reasons[r] : "";
}

void eio_config_defaults(struct eio_config *cfg)
{
	cfg->ping_interval_ms = 25000;
	cfg->ping_timeout_ms = 20000;
	cfg->upgrade_timeout_ms = 10000;
	cfg->max_payload = EIO_MAX_PAYLOAD_DEF;
	/* socket.io-client sends what it buffered while a POST was out:
	 * a burst of emits, each an event and its attachments. */
	cfg->max_packets_per_payload = 1024;
	cfg->queue_max_packets = 1024;
	cfg->queue_max_bytes = 4u << 20;
}

/* ================================================================ queue */

static struct eio_qent *qent_new(size_t copy)
{
	struct eio_qent *q = malloc(sizeof(*q) + copy);
	if (!q) {
		fprintf(stderr, "parley: out of memory (%zu bytes)\n", sizeof(*q) + copy);
		abort();
	}
	q->next = NULL;
	q->unref = NULL;
	q->ref = NULL;
	return q;
}

static void qent_free(struct eio_qent *q)
{
	if (q->unref)
		q->unref(q->ref);
	free(q);
}

static void q_push(struct eio_session *s, struct eio_qent *q)
{
	if (s->tail)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	s->q_packets++;
	s->q_bytes += q->pkt.len;
	if (s->q_bytes > s->q_peak_bytes)
		s->q_peak_bytes = s->q_bytes;
}

static struct eio_qent *q_pop(struct eio_session *s)
{
	struct eio_qent *q = s->head;
	if (!q)
		return NULL;
	s->head = q->next;
	if (!s->head)
		s->tail = NULL;
	s->q_packets--;
	s->q_bytes -= q->pkt.len;
	if (s->state == EIO_S_OPENING && q->pkt.type == EIO_OPEN)
		s->state = EIO_S_OPEN;
	if (q->pkt.type == EIO_PING && !q->pkt.binary)
		s->ping_queued = false;
	return q;
}

/* Queues a control packet (open, ping, noop): never refused. */
static void q_control(struct eio_session *s, enum eio_type t, const char *data)
{
	size_t n = data ? strlen(data) : 0;
	struct eio_qent *q = qent_new(n);
	if (n)
		memcpy(q->copy, data, n);
	q->pkt = (struct eio_packet){ t, false, q->copy, n };
	q_push(s, q);
}

static void q_clear(struct eio_session *s)
{
	struct eio_qent *q;
	while ((q = q_pop(s)) != NULL)
		qent_free(q);
}

/* ================================================================ helpers */

static bool is_closed(const struct eio_session *s)
{
	return s->state == EIO_S_CLOSED;
}

/* Closes at once. A held GET is answered ("1" via poll_body), so the edge
 * never leaves a request hanging. */
static unsigned close_now(struct eio_session *s, enum eio_close_reason why)
{
	unsigned act = EIO_ACT_CLOSE;

	if (is_closed(s))
		return 0;
	s->state = EIO_S_CLOSED;
	s->close_reason = why;
	if (s->transport == EIO_T_POLLING && s->poll_held)
		act |= EIO_ACT_POLL_RESPOND;
	if (s->probing)
		act |= EIO_ACT_PROBE_CLOSE;
	s->probing = false;
	q_clear(s);
	return act;
}

static unsigned http_error(struct eio_session *s, enum eio_http_err e, int status)
{
	s->http_err = e;
	s->http_status = status ? status : eio_http_status(e);
	return EIO_ACT_HTTP_ERROR;
}

/* What to do now that something was queued. */
static unsigned flush_hint(struct eio_session *s)
{
	if (s->transport == EIO_T_WEBSOCKET)
		return EIO_ACT_WS_WRITABLE;
	return s->poll_held ? EIO_ACT_POLL_RESPOND : 0;
}

static void pong(struct eio_session *s, uint64_t now)
{
	/* As the reference: the next ping is an interval after the pong. */
	s->awaiting_pong = false;
	s->next_ping = now + s->cfg->ping_interval_ms;
}

/* An incoming packet on the session's transport. */
static unsigned on_packet(struct eio_session *s, const struct eio_packet *p, uint64_t now,
			  bool *is_msg)
{
	*is_msg = false;
	switch (p->type) {
	case EIO_MESSAGE:
		*is_msg = true;
		return 0;
	case EIO_PONG:
		pong(s, now);
		return 0;
	case EIO_CLOSE:
		return close_now(s, EIO_CLOSE_CLIENT);
	case EIO_PING:
		/* v4 pings go server to client only ("invalid heartbeat
		 * direction"); "2probe" belongs on a probe WebSocket. */
		return close_now(s, EIO_CLOSE_PARSE_ERROR);
	default:
		/* open, upgrade, noop from a client: the reference ignores them */
		return 0;
	}
}

/* ================================================================ lifecycle */

unsigned eio_session_init(struct eio_session *s, const struct eio_config *cfg,
			  const char *sid, enum eio_transport t, uint64_t now)
{
	struct pbuf b = { 0 };

	memset(s, 0, sizeof(*s));
	snprintf(s->sid, sizeof(s->sid), "%s", sid);
	s->cfg = cfg;
	s->state = EIO_S_OPENING;
	s->transport = t;
	s->next_ping = now + cfg->ping_interval_ms;
	eio_encode_open(&b, s->sid, t == EIO_T_POLLING, cfg->ping_interval_ms,
			cfg->ping_timeout_ms, cfg->max_payload);
	pbuf_addc(&b, '\0');
	q_control(s, EIO_OPEN, b.data + 1);
	pbuf_free(&b);
	if (t == EIO_T_POLLING) {
		s->poll_held = true; /* the handshake GET itself */
		return EIO_ACT_POLL_RESPOND;
	}
	return EIO_ACT_WS_WRITABLE;
}

void eio_session_free(struct eio_session *s)
{
	q_clear(s);
}

/* ================================================================ polling */

/* The checks common to GET and POST. Returns 0 when the request may go on. */
static unsigned polling_request_check(struct eio_session *s)
{
	if (is_closed(s))
		return http_error(s, EIO_HERR_UNKNOWN_SID, 0);
	if (s->transport != EIO_T_POLLING)
		return http_error(s, EIO_HERR_BAD_REQUEST, 0); /* transport mismatch */
	return 0;
}

unsigned eio_session_on_get(struct eio_session *s, uint64_t now)
{
	unsigned act = polling_request_check(s);

	(void)now;
	if (act)
		return act;
	if (s->poll_held) {
		/* "overlap from client": the reference closes the session. */
		act = http_error(s, EIO_HERR_BAD_REQUEST, 0);
		return act | close_now(s, EIO_CLOSE_TRANSPORT_ERROR);
	}
	s->poll_held = true;
	/* While upgrading, a GET is answered at once (with a noop when
	 * nothing is queued) so that the client can pause polling. */
	if (s->head || s->state == EIO_S_CLOSING || (s->state == EIO_S_UPGRADING && s->probed))
		return EIO_ACT_POLL_RESPOND;
	return EIO_ACT_HOLD;
}

unsigned eio_session_poll_body(struct eio_session *s, struct pbuf *out)
{
	struct eio_packet close_pkt = { EIO_CLOSE, false, (const uint8_t *)"", 0 };
	size_t budget = s->cfg->max_payload, n = 0;

	s->poll_held = false;
	if (is_closed(s)) {
		/* The reference answers a poll held when the client itself
		 * closed ("1" in a POST) with a noop, and one held when the
		 * server closed with a close packet. */
		if (s->close_reason == EIO_CLOSE_CLIENT) {
			struct eio_packet noop = { EIO_NOOP, false, (const uint8_t *)"", 0 };
			eio_encode_packet(out, &noop);
		} else {
			eio_encode_packet(out, &close_pkt);
			s->close_sent = true;
		}
		return 0;
	}
	if (s->transport == EIO_T_POLLING) {
		while (s->head) {
			size_t len = eio_encoded_len(&s->head->pkt) + (n ? 1 : 0);
			if (n && len > budget)
				break; /* the rest goes with the next GET */
			if (n)
				pbuf_addc(out, EIO_RS);
			struct eio_qent *q = q_pop(s);
			eio_encode_packet(out, &q->pkt);
			qent_free(q);
			budget = len > budget ? 0 : budget - len;
			n++;
		}
	}
	if (s->state == EIO_S_CLOSING && s->transport == EIO_T_POLLING && !s->head) {
		if (n)
			pbuf_addc(out, EIO_RS);
		eio_encode_packet(out, &close_pkt);
		s->close_sent = true;
		s->state = EIO_S_CLOSED;
		return EIO_ACT_CLOSE;
	}
	if (n == 0) {
		struct eio_packet noop = { EIO_NOOP, false, (const uint8_t *)"", 0 };
		eio_encode_packet(out, &noop);
	}
	return 0;
}

unsigned eio_session_post_begin(struct eio_session *s, uint64_t now)
{
	unsigned act = polling_request_check(s);

	(void)now;
	if (act)
		return act;
	if (s->post_active) {
		/* "data request overlap from client" */
		act = http_error(s, EIO_HERR_BAD_REQUEST, 0);
		return act | close_now(s, EIO_CLOSE_TRANSPORT_ERROR);
	}
	s->post_active = true;
	return 0;
}

unsigned eio_session_on_post(struct eio_session *s, char *body, size_t n, uint64_t now,
			     struct eio_packet *msgs, size_t max, size_t *nmsgs)
{
	struct eio_packet pk[64];
	struct eio_packet *pkts = pk;
	size_t count = 0;
	unsigned act;

	*nmsgs = 0;
	s->post_active = false;
	if ((act = polling_request_check(s)) != 0)
		return act;
	/* Room for the packets this body holds (one more than its
	 * separators), on the stack for the usual few: no allocation sized
	 * by the limit on every POST. */
	size_t maxp = s->cfg->max_packets_per_payload, want = 1;
	if (n <= s->cfg->max_payload)
		for (const char *p = body; (p = memchr(p, EIO_RS, (size_t)(body + n - p))) != NULL; p++)
			want++;
	if (want < maxp)
		maxp = want;
	if (maxp > sizeof(pk) / sizeof(*pk)) {
		pkts = malloc(maxp * sizeof(*pkts));
		if (!pkts) {
			fprintf(stderr, "parley: out of memory\n");
			abort();
		}
	}
	enum eio_err e = eio_decode_payload(body, n, s->cfg->max_payload, pkts, maxp, &count);
	if (e == EIO_E_TOO_LARGE) {
		act = http_error(s, EIO_HERR_BAD_REQUEST, 413) | close_now(s, EIO_CLOSE_TOO_LARGE);
		goto out;
	}
	if (e) {
		act = http_error(s, EIO_HERR_BAD_REQUEST, 0) | close_now(s, EIO_CLOSE_PARSE_ERROR);
		goto out;
	}
	act = EIO_ACT_POST_OK;
	for (size_t i = 0; i < count && !is_closed(s); i++) {
		bool is_msg;
		act |= on_packet(s, &pkts[i], now, &is_msg);
		if (!is_msg)
			continue;
		if (*nmsgs == max) {
			/* more messages than the caller can take: a bound
			 * the caller set below max_packets_per_payload */
			act |= close_now(s, EIO_CLOSE_PARSE_ERROR);
			break;
		}
		msgs[(*nmsgs)++] = pkts[i];
	}
	if (is_closed(s))
		*nmsgs = 0; /* nothing is delivered for a session that closed */
out:
	if (pkts != pk)
		free(pkts);
	return act;
}

unsigned eio_session_on_http_gone(struct eio_session *s)
{
	s->poll_held = false;
	s->post_active = false;
	return close_now(s, EIO_CLOSE_TRANSPORT_ERROR);
}

/* ================================================================ WebSocket */

unsigned eio_session_on_ws_frame(struct eio_session *s, bool binary, const uint8_t *p,
				 size_t n, uint64_t now, struct eio_packet *msg, bool *have_msg)
{
	struct eio_packet pk;

	*have_msg = false;
	if (is_closed(s) || s->transport != EIO_T_WEBSOCKET)
		return 0;
	if (n > s->cfg->max_payload)
		return close_now(s, EIO_CLOSE_TOO_LARGE);
	if (binary) {
		eio_decode_binary(p, n, &pk);
	} else if (eio_decode_text((const char *)p, n, &pk) != EIO_OK) {
		return close_now(s, EIO_CLOSE_PARSE_ERROR);
	}
	bool is_msg;
	unsigned act = on_packet(s, &pk, now, &is_msg);
	if (is_msg) {
		*msg = pk;
		*have_msg = true;
	}
	return act;
}

int eio_session_ws_next(struct eio_session *s, struct pbuf *out, bool *binary)
{
	if (s->transport != EIO_T_WEBSOCKET)
		return 0;
	struct eio_qent *q = q_pop(s);
	if (!q) {
		if (s->state == EIO_S_CLOSING) {
			s->state = EIO_S_CLOSED;
			return -1;
		}
		return 0;
	}
	*binary = q->pkt.binary;
	if (!q->pkt.binary)
		eio_encode_packet(out, &q->pkt);
	else if (q->pkt.len)
		pbuf_add(out, q->pkt.data, q->pkt.len);
	else
		pbuf_reserve(out, 1); /* an empty frame, but out->data is set */
	qent_free(q);
	return 1;
}

unsigned eio_session_on_ws_gone(struct eio_session *s)
{
	if (s->transport != EIO_T_WEBSOCKET)
		return 0;
	return close_now(s, EIO_CLOSE_CLIENT);
}

/* ================================================================ upgrade */

unsigned eio_session_ws_attach(struct eio_session *s, uint64_t now)
{
	if (is_closed(s)) {
		http_error(s, EIO_HERR_UNKNOWN_SID, 0);
		return EIO_ACT_PROBE_CLOSE;
	}
	/* Already upgraded or upgrading, or closing: the reference closes
	 * the new WebSocket and keeps the session. */
	if (s->transport != EIO_T_POLLING || s->probing || s->state == EIO_S_CLOSING) {
		http_error(s, EIO_HERR_BAD_REQUEST, 0);
		return EIO_ACT_PROBE_CLOSE;
	}
	s->probing = true;
	s->probed = false;
	s->state = EIO_S_UPGRADING;
	s->upgrade_deadline = now + s->cfg->upgrade_timeout_ms;
	return 0;
}

static unsigned probe_failed(struct eio_session *s)
{
	s->probing = false;
	s->probed = false;
	if (s->state == EIO_S_UPGRADING)
		s->state = EIO_S_OPEN;
	return EIO_ACT_PROBE_CLOSE;
}

unsigned eio_session_on_probe_frame(struct eio_session *s, bool binary, const uint8_t *p,
				    size_t n, uint64_t now)
{
	(void)now;
	if (!s->probing || is_closed(s))
		return EIO_ACT_PROBE_CLOSE;
	if (!binary && n == 6 && !memcmp(p, "2probe", 6)) {
		s->probed = true;
		/* Release a pending poll: the client cannot pause polling
		 * while a GET of its own is outstanding. */
		return EIO_ACT_PROBE_WRITE | (s->poll_held ? EIO_ACT_POLL_RESPOND : 0);
	}
	if (!binary && n == 1 && p[0] == '5') {
		/* The reference accepts "5" with or without a probe first. */
		unsigned act = s->poll_held ? EIO_ACT_POLL_RESPOND : 0;
		s->probing = false;
		s->probed = false;
		s->transport = EIO_T_WEBSOCKET;
		if (s->state == EIO_S_UPGRADING)
			s->state = EIO_S_OPEN;
		/* What polling had not taken yet goes out on the WebSocket;
		 * a held GET gets a noop (poll_body, transport now websocket). */
		return act | (s->head || s->state == EIO_S_CLOSING ? EIO_ACT_WS_WRITABLE : 0);
	}
	return probe_failed(s);
}

unsigned eio_session_on_probe_gone(struct eio_session *s)
{
	if (!s->probing)
		return 0;
	probe_failed(s);
	return 0;
}

/* ================================================================ sending */

static unsigned send_entry(struct eio_session *s, struct eio_qent *q)
{
	if (s->state == EIO_S_CLOSING || is_closed(s)) {
		qent_free(q);
		return 0;
	}
	/* Control packets may have taken the queue past a bound by a few
	 * bytes; a message never does. */
	if (s->q_packets + 1 > s->cfg->queue_max_packets ||
	    s->q_bytes + q->pkt.len > s->cfg->queue_max_bytes) {
		qent_free(q);
		return close_now(s, EIO_CLOSE_QUEUE_FULL);
	}
	q_push(s, q);
	return flush_hint(s);
}

unsigned eio_session_send(struct eio_session *s, const struct eio_packet *p)
{
	struct eio_qent *q = qent_new(p->len);
	if (p->len)
		memcpy(q->copy, p->data, p->len);
	q->pkt = (struct eio_packet){ EIO_MESSAGE, p->binary, q->copy, p->len };
	return send_entry(s, q);
}

unsigned eio_session_send_ref(struct eio_session *s, const struct eio_packet *p,
			      void (*unref)(void *ref), void *ref)
{
	struct eio_qent *q = qent_new(0);
	q->pkt = (struct eio_packet){ EIO_MESSAGE, p->binary, p->data, p->len };
	q->unref = unref;
	q->ref = ref;
	return send_entry(s, q);
}

unsigned eio_session_close(struct eio_session *s, uint64_t now)
{
	unsigned act = 0;

	if (is_closed(s) || s->state == EIO_S_CLOSING)
		return 0;
	if (s->probing)
		act |= probe_failed(s);
	s->state = EIO_S_CLOSING;
	s->close_reason = EIO_CLOSE_SERVER;
	/* A polling client polls again within an interval (it must, to see
	 * pings); past that, stop waiting. */
	s->close_deadline = now + s->cfg->ping_interval_ms;
	if (s->transport == EIO_T_WEBSOCKET)
		return act | EIO_ACT_WS_WRITABLE;
	return act | (s->poll_held ? EIO_ACT_POLL_RESPOND : 0);
}

/* ================================================================ time */

unsigned eio_session_tick(struct eio_session *s, uint64_t now)
{
	unsigned act = 0;

	if (is_closed(s))
		return 0;
	if (s->state == EIO_S_CLOSING) {
		if (now >= s->close_deadline) {
			enum eio_close_reason r = s->close_reason;
			act = close_now(s, r);
		}
		return act;
	}
	if (s->probing && now >= s->upgrade_deadline)
		act |= probe_failed(s);
	if (s->awaiting_pong && now >= s->pong_deadline)
		return act | close_now(s, EIO_CLOSE_PING_TIMEOUT);
	if (!s->awaiting_pong && now >= s->next_ping) {
		/* A client that answers pings it has not read yet must not
		 * grow the queue: one ping waiting is enough. */
		if (!s->ping_queued) {
			q_control(s, EIO_PING, NULL);
			s->ping_queued = true;
		}
		s->awaiting_pong = true;
		s->pong_deadline = now + s->cfg->ping_timeout_ms;
		act |= flush_hint(s);
	}
	return act;
}

uint64_t eio_session_deadline(const struct eio_session *s)
{
	uint64_t d = UINT64_MAX;

	if (is_closed(s))
		return d;
	if (s->state == EIO_S_CLOSING)
		return s->close_deadline;
	d = s->awaiting_pong ? s->pong_deadline : s->next_ping;
	if (s->probing && s->upgrade_deadline < d)
		d = s->upgrade_deadline;
	return d;
}
