/*
 * fuzz_sio.c - libFuzzer harness for the Engine.IO / Socket.IO codecs and
 * the Engine.IO session machine (protocol/sio/). The first input byte picks
 * a target (its low 3 bits), the rest is its input:
 *
 *  0 polling payload: eio_decode_payload; what decodes re-encodes
 *    (eio_encode_payload) to a payload that decodes to the same packets;
 *  1 Engine.IO text packet: eio_decode_text; re-encoding gives the input;
 *  2 Socket.IO packet: sio_parse; the payload is JSON that jansson reads,
 *    of the shape the type demands; re-encoding the fields (sio_encode)
 *    parses back to the same fields;
 *  3 any JSON value: jscan_value agrees with jansson (accepts what jansson
 *    reads within the depth and key bounds, refuses what it refuses);
 *  4 Socket.IO decoder across frames: the input is cut into frames
 *    ([flags][len][bytes], flags bit 0: binary); a completed binary packet
 *    carries exactly the attachments fed after its header;
 *  5 the session machine: each byte is an event (GET, POST with the next
 *    bytes as body, WebSocket and probe frames, sends, the clock, closes);
 *    the queue stays within its bounds, a response is never empty, every
 *    GET body decodes as a payload, and a CLOSE leaves the session closed;
 *  6 binary for native clients: for a JSON value, sio_bin_unwrap gives
 *    valid JSON whose placeholders sio_bin_wrap turns back into wrappers,
 *    and unwrapping that again gives the same text and bytes; an array
 *    encoded by sio_encode_auto parses back with the attachments it
 *    counted; a Socket.IO binary packet's data wraps to valid JSON.
 *
 * Invariants are checked with abort(), so libFuzzer keeps the input. Also
 * built without libFuzzer (replay.c) to replay the seed corpus in the unit
 * suite.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eio.h"
#include "eio_session.h"
#include "proto.h"
#include "sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_sio: invariant failed: %s (line %d)\n", #cond, __LINE__); \
	abort(); } } while (0)

#define MAX_PACKETS 64

/* ================================================================ jansson */

/* Parses text as any JSON value. *skip is set when jansson cannot hold
 * valid JSON (a number beyond a double, a key with \u0000): such input is
 * left out of the comparison. */
static json_t *load_any(const char *text, size_t len, int *skip)
{
	json_error_t jerr;
	size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL;
	json_t *v = json_loadb(text, len, flags, &jerr);

	*skip = 0;
	if (!v && (json_error_code(&jerr) == json_error_numeric_overflow ||
		   json_error_code(&jerr) == json_error_null_byte_in_key))
		*skip = 1;
	return v;
}

/* Depth (arrays and objects) and object members in all, as jscan counts. */
static void measure(const json_t *v, unsigned depth, unsigned *max_depth, size_t *keys)
{
	if (json_is_array(v)) {
		if (depth + 1 > *max_depth)
			*max_depth = depth + 1;
		for (size_t i = 0; i < json_array_size(v); i++)
			measure(json_array_get(v, i), depth + 1, max_depth, keys);
	} else if (json_is_object(v)) {
		const char *k;
		json_t *m;
		if (depth + 1 > *max_depth)
			*max_depth = depth + 1;
		json_object_foreach((json_t *)v, k, m) {
			(*keys)++;
			measure(m, depth + 1, max_depth, keys);
		}
	}
}

/* 1 if jansson, refusing duplicate keys, reads it: then the member count
 * measure() sees is the count in the text (duplicates collapse in a tree). */
static int no_duplicates(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL |
			       JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
	json_decref(v);
	return v != NULL;
}

/* ================================================================ 0, 1: Engine.IO */

static void packets_equal(const struct eio_packet *a, const struct eio_packet *b)
{
	CHECK(a->type == b->type);
	CHECK(a->binary == b->binary);
	CHECK(a->len == b->len);
	CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void fuzz_payload(const uint8_t *in, size_t n)
{
	char *body = malloc(n ? n : 1);
	struct eio_packet p[MAX_PACKETS], q[MAX_PACKETS];
	size_t count, count2;

	memcpy(body, in, n);
	enum eio_err e = eio_decode_payload(body, n, 4096, p, MAX_PACKETS, &count);
	CHECK(e >= EIO_OK && e < EIO_ERR_COUNT);
	CHECK(eio_strerror(e) != NULL);
	if (e != EIO_OK) {
		CHECK(count < MAX_PACKETS || e == EIO_E_TOO_MANY);
		free(body);
		return;
	}
	CHECK(count >= 1 && count <= MAX_PACKETS);
	CHECK(n <= 4096);
	for (size_t i = 0; i < count; i++) {
		CHECK(p[i].type < EIO_TYPE_COUNT);
		CHECK(!p[i].binary || p[i].type == EIO_MESSAGE);
		/* everything points inside the body */
		CHECK(p[i].len == 0 || ((const char *)p[i].data >= body &&
					(const char *)p[i].data + p[i].len <= body + n));
	}
	struct pbuf b = { 0 };
	eio_encode_payload(&b, p, count);
	/* base64 (4/3) can make it longer than the body, never 2x */
	CHECK(b.len <= 2 * n + 4);
	char *again = malloc(b.len ? b.len : 1);
	memcpy(again, b.data, b.len);
	e = eio_decode_payload(again, b.len, b.len, q, MAX_PACKETS, &count2);
	CHECK(e == EIO_OK);
	CHECK(count2 == count);
	for (size_t i = 0; i < count; i++)
		packets_equal(&p[i], &q[i]);
	free(again);
	pbuf_free(&b);
	free(body);
}

static void fuzz_eio_text(const uint8_t *in, size_t n)
{
	struct eio_packet p;
	if (eio_decode_text((const char *)in, n, &p) != EIO_OK) {
		CHECK(n == 0 || in[0] < '0' || in[0] > '6');
		return;
	}
	struct pbuf b = { 0 };
	eio_encode_packet(&b, &p);
	CHECK(b.len == n && memcmp(b.data, in, n) == 0);
	CHECK(eio_encoded_len(&p) == n);
	pbuf_free(&b);

	/* base64 both ways on the same bytes */
	struct pbuf e = { 0 };
	eio_b64_encode(&e, in, n);
	CHECK(e.len == eio_b64_len(n));
	uint8_t *dec = malloc(n + 1);
	CHECK(eio_b64_decode(e.data, e.len, dec) == (long)n);
	CHECK(n == 0 || memcmp(dec, in, n) == 0);
	/* and decoding arbitrary text never writes past n * 3 / 4 */
	long k = eio_b64_decode((const char *)in, n, dec);
	CHECK(k < 0 || (size_t)k <= n * 3 / 4);
	free(dec);
	pbuf_free(&e);
}

/* ================================================================ 2: Socket.IO packets */

static const struct sio_limits lim = { SIO_ATTACH_MAX_DEF, 1 << 20, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, false };

static void sio_fields_equal(const struct sio_packet *a, const struct sio_packet *b)
{
	CHECK(a->type == b->type);
	CHECK(a->nsp_len == b->nsp_len && memcmp(a->nsp, b->nsp, a->nsp_len) == 0);
	CHECK(a->has_id == b->has_id && (!a->has_id || a->id == b->id));
	CHECK((a->data == NULL) == (b->data == NULL));
	CHECK(!a->data || (a->data_len == b->data_len && !memcmp(a->data, b->data, a->data_len)));
	CHECK(a->attachments == b->attachments);
	CHECK(a->event.type == b->event.type);
}

static void check_sio_packet(const struct sio_packet *p, const char *in, size_t n)
{
	CHECK(p->type < SIO_TYPE_COUNT);
	CHECK(p->nsp && p->nsp_len >= 1 && p->nsp_len <= SIO_NSP_MAX && p->nsp[0] == '/');
	CHECK(!p->has_id || p->id <= SIO_ID_MAX);
	CHECK(p->attachments <= lim.max_attachments);
	if (p->data) {
		CHECK(p->data >= in && p->data + p->data_len <= in + n);
		int skip;
		json_t *v = load_any(p->data, p->data_len, &skip);
		if (!v && !skip && !memchr(p->data, '\0', p->data_len)) {
			fprintf(stderr, "fuzz_sio: jansson refuses an accepted payload: %.*s\n",
				(int)p->data_len, p->data);
			abort();
		}
		if (v) {
			switch (p->type) {
			case SIO_CONNECT: CHECK(json_is_object(v)); break;
			case SIO_CONNECT_ERROR: CHECK(json_is_object(v) || json_is_string(v)); break;
			case SIO_EVENT:
			case SIO_BINARY_EVENT:
				CHECK(json_is_array(v) && json_array_size(v) >= 1);
				CHECK(json_is_string(json_array_get(v, 0)) ||
				      json_is_number(json_array_get(v, 0)));
				break;
			case SIO_ACK:
			case SIO_BINARY_ACK: CHECK(json_is_array(v)); break;
			default: CHECK(!"a payload on a DISCONNECT");
			}
			json_decref(v);
		}
	} else {
		CHECK(p->type != SIO_EVENT && p->type != SIO_BINARY_EVENT);
	}
}

/*
 * lazy_events (the Parley edge's one JSON pass): a packet handed on
 * unchecked is, after sio_check, exactly what the full parse gives; and
 * the command the edge builds from it (server/sio/sio_edge.c,
 * build_command and lazy_event: {"type":NAME,"id":N,<the argument's
 * members>}) passes the core's scan with the narrowed bounds only if the
 * full check accepts the event. That last rule is what lets the core's
 * scan stand for the validation.
 */
static void fuzz_sio_lazy(const char *in, size_t n, enum sio_err full, const struct sio_packet *fp)
{
	struct sio_limits ll = lim;
	struct sio_packet p;

	ll.lazy_events = true;
	enum sio_err e = sio_parse(in, n, &ll, &p);
	if (e != SIO_OK || !p.unchecked) {
		CHECK(e == full);
		CHECK(!p.unchecked);
		if (e == SIO_OK)
			sio_fields_equal(&p, fp);
		return;
	}
	CHECK(p.type == SIO_EVENT && p.event.type == JT_STRING && p.arg.type == JT_OBJECT);
	CHECK(p.arg.p > p.data && p.arg.p + p.arg.n < p.data + p.data_len);

	struct pbuf c = { 0 };
	pbuf_adds(&c, "{\"type\":");
	pbuf_add(&c, p.event.p, p.event.n);
	pbuf_adds(&c, ",\"id\":7");
	const char *m = p.arg.p + 1, *end = p.arg.p + p.arg.n - 1;
	while (m < end && (*m == ' ' || *m == '\t' || *m == '\n' || *m == '\r'))
		m++;
	if (m < end) {
		pbuf_addc(&c, ',');
		pbuf_add(&c, m, (size_t)(end - m));
	}
	pbuf_addc(&c, '}');
	struct proto_cmd cmd;
	bool scanned;
	unsigned keys = ll.max_keys < PROTO_KEYS_MAX - 2 ? ll.max_keys + 2 : PROTO_KEYS_MAX;
	proto_decode_bounded(c.data, c.len, ll.max_depth - 1, keys, false, &cmd, &scanned);
	proto_cmd_clear(&cmd);
	pbuf_free(&c);

	struct sio_packet q = p;
	enum sio_err ce = sio_check(&q, &ll);
	CHECK(ce == full);
	CHECK(!q.unchecked);
	if (scanned && ce != SIO_OK) {
		fprintf(stderr, "fuzz_sio: the core's scan accepts an invalid event: %.*s\n",
			(int)n, in);
		abort();
	}
	if (ce == SIO_OK)
		sio_fields_equal(&q, fp);
}

static void fuzz_sio_packet(const uint8_t *in, size_t n)
{
	struct sio_packet p, q;
	enum sio_err e = sio_parse((const char *)in, n, &lim, &p);

	CHECK(e < SIO_ERR_COUNT && e != SIO_MORE);
	CHECK(sio_strerror(e) != NULL);
	fuzz_sio_lazy((const char *)in, n, e, &p);
	if (e != SIO_OK)
		return;
	check_sio_packet(&p, (const char *)in, n);
	if (p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT || p.type == SIO_ACK ||
	    p.type == SIO_BINARY_ACK) {
		struct jval items[4];
		size_t k = sio_array_items(p.data ? p.data : "[]", p.data ? p.data_len : 2, items, 4);
		if (p.event.type != JT_NONE) {
			CHECK(k >= 1);
			CHECK(items[0].p == p.event.p && items[0].n == p.event.n);
		}
		int skip;
		json_t *v = p.data ? load_any(p.data, p.data_len, &skip) : NULL;
		if (v)
			CHECK(json_array_size(v) == k);
		json_decref(v);
	}
	struct pbuf b = { 0 };
	sio_encode(&b, p.type, p.nsp, p.nsp_len, p.has_id, p.id, p.attachments, p.data, p.data_len);
	e = sio_parse(b.data, b.len, &lim, &q);
	if (e != SIO_OK) {
		fprintf(stderr, "fuzz_sio: re-encoded packet refused (%s): %.*s\n", sio_strerror(e),
			(int)b.len, b.data);
		abort();
	}
	sio_fields_equal(&p, &q);
	pbuf_free(&b);
}

/* ================================================================ 3: jscan_value */

static void fuzz_json(const uint8_t *in, size_t n)
{
	struct jval v;
	size_t pos;
	const char *why;
	enum jscan_err e = jscan_value((const char *)in, n, PROTO_DEPTH_MAX, PROTO_KEYS_MAX,
				       &v, &pos, &why);
	int skip;

	/* jansson stops at a raw NUL byte: leave those out */
	if (memchr(in, '\0', n))
		return;
	json_t *j = load_any((const char *)in, n, &skip);
	if (e == JSCAN_OK) {
		CHECK(v.p >= (const char *)in && v.p + v.n <= (const char *)in + n);
		if (!j && !skip) {
			fprintf(stderr, "fuzz_sio: jscan_value accepts what jansson refuses\n");
			abort();
		}
	} else {
		CHECK(why != NULL && pos <= n);
		if (j && no_duplicates((const char *)in, n)) {
			unsigned depth = 0;
			size_t keys = 0;
			measure(j, 0, &depth, &keys);
			if (depth <= PROTO_DEPTH_MAX && keys <= PROTO_KEYS_MAX) {
				fprintf(stderr, "fuzz_sio: jansson reads what jscan_value refuses: %s\n",
					why);
				abort();
			}
		}
	}
	json_decref(j);
}

/* ================================================================ 4: the decoder */

static void fuzz_decoder(const uint8_t *in, size_t n)
{
	struct sio_limits l = { 4, 64, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, false };
	struct sio_decoder d;
	struct sio_packet p;
	/* what was fed since the last header, to compare the attachments */
	const uint8_t *fed[SIO_ATTACH_HARD_MAX];
	size_t fed_n[SIO_ATTACH_HARD_MAX], nfed = 0;
	size_t i = 0;

	sio_decoder_init(&d, &l);
	while (i + 2 <= n) {
		uint8_t flags = in[i], len = in[i + 1];
		i += 2;
		if (len > n - i)
			len = (uint8_t)(n - i);
		const uint8_t *f = in + i;
		i += len;
		enum sio_err e;
		if (flags & 1) {
			e = sio_decoder_binary(&d, f, len, &p);
			if (e == SIO_MORE || e == SIO_OK) {
				CHECK(nfed < SIO_ATTACH_HARD_MAX);
				fed[nfed] = f;
				fed_n[nfed++] = len;
			}
		} else {
			nfed = 0;
			e = sio_decoder_text(&d, (const char *)f, len, &p);
		}
		CHECK(e < SIO_ERR_COUNT);
		if (e == SIO_OK) {
			check_sio_packet(&p, p.data ? p.data : "", p.data ? p.data_len : 0);
			if (p.att) {
				CHECK(p.attachments >= 1 && p.attachments == nfed);
				for (size_t k = 0; k < nfed; k++)
					CHECK(p.att[k].n == fed_n[k] &&
					      (!fed_n[k] || !memcmp(p.att[k].p, fed[k], fed_n[k])));
			}
			nfed = 0;
		} else if (e != SIO_MORE) {
			nfed = 0;
			CHECK(!d.awaiting);
		}
	}
	sio_decoder_free(&d);
}

/* ================================================================ 5: the session */

static void check_body(const struct pbuf *b)
{
	CHECK(b->len >= 1);
	char *copy = malloc(b->len);
	struct eio_packet p[MAX_PACKETS * 4];
	size_t count;
	memcpy(copy, b->data, b->len);
	/* server output: packets queued by the fuzzer carry any bytes, so
	 * only the framing is checked (a text packet with \x1e in it would
	 * split; the fuzzer's sends avoid that byte) */
	enum eio_err e = eio_decode_payload(copy, b->len, SIZE_MAX, p, MAX_PACKETS * 4, &count);
	CHECK(e == EIO_OK || e == EIO_E_UTF8);
	free(copy);
}

static void fuzz_session(const uint8_t *in, size_t n)
{
	struct eio_config c;
	struct eio_session s;
	struct eio_packet msgs[MAX_PACKETS], m;
	uint64_t now = 0;
	size_t i = 1;
	bool have;

	if (n < 1)
		return;
	eio_config_defaults(&c);
	c.ping_interval_ms = 300;
	c.ping_timeout_ms = 200;
	c.upgrade_timeout_ms = 500;
	c.max_payload = 200;
	c.max_packets_per_payload = 8;
	c.queue_max_packets = 6;
	c.queue_max_bytes = 300;
	unsigned act = eio_session_init(&s, &c, "fuzz", in[0] & 1 ? EIO_T_WEBSOCKET : EIO_T_POLLING,
					now);
	while (i < n && s.state != EIO_S_CLOSED) {
		uint8_t op = in[i++];
		/* an argument: a length byte (mod 32) and that many bytes */
		size_t len = 0;
		const uint8_t *arg = in + i;
		if ((op % 14 == 2 || op % 14 == 3 || op % 14 == 5 || op % 14 == 8) && i < n) {
			len = in[i++] % 32;
			if (len > n - i)
				len = n - i;
			arg = in + i;
			i += len;
		}
		struct pbuf b = { 0 };
		bool bin;
		switch (op % 14) {
		case 0: act = eio_session_on_get(&s, now); break;
		case 1:
			if (s.poll_held) {
				act = eio_session_poll_body(&s, &b);
				check_body(&b);
			}
			break;
		case 2: {
			act = eio_session_post_begin(&s, now);
			if (act)
				break;
			char *body = malloc(len ? len : 1);
			memcpy(body, arg, len);
			size_t nm;
			act = eio_session_on_post(&s, body, len, now, msgs, MAX_PACKETS, &nm);
			CHECK(nm <= c.max_packets_per_payload);
			for (size_t k = 0; k < nm; k++)
				CHECK(msgs[k].type == EIO_MESSAGE);
			free(body);
			break;
		}
		case 3:
			act = eio_session_on_ws_frame(&s, op & 0x80, arg, len, now, &m, &have);
			CHECK(!have || m.type == EIO_MESSAGE);
			break;
		case 4: act = eio_session_ws_attach(&s, now); break;
		case 5:
			act = eio_session_on_probe_frame(&s, op & 0x80, arg, len, now);
			break;
		case 6: act = eio_session_on_probe_frame(&s, false, (const uint8_t *)"2probe", 6, now); break;
		case 7: act = eio_session_on_probe_frame(&s, false, (const uint8_t *)"5", 1, now); break;
		case 8: {
			/* no \x1e in a text message (the Socket.IO layer never
			 * puts one outside a JSON string, where it is escaped) */
			uint8_t tmp[32];
			memcpy(tmp, arg, len);
			for (size_t k = 0; k < len; k++)
				if (tmp[k] == EIO_RS)
					tmp[k] = ' ';
			struct eio_packet p = { EIO_MESSAGE, (op & 0x80) != 0, tmp, len };
			act = eio_session_send(&s, &p);
			break;
		}
		case 9: now += (uint64_t)(op >> 4) * 40; act = eio_session_tick(&s, now); break;
		case 10: act = eio_session_close(&s, now); break;
		case 11: act = eio_session_on_http_gone(&s); break;
		case 12: act = eio_session_on_ws_gone(&s) | eio_session_on_probe_gone(&s); break;
		case 13: {
			int r;
			while ((r = eio_session_ws_next(&s, &b, &bin)) == 1)
				pbuf_reset(&b);
			if (r < 0)
				CHECK(s.state == EIO_S_CLOSED);
			break;
		}
		}
		pbuf_free(&b);
		if (act & EIO_ACT_HTTP_ERROR)
			CHECK(s.http_status == 400 || s.http_status == 403 || s.http_status == 413);
		if (act & EIO_ACT_CLOSE)
			CHECK(s.state == EIO_S_CLOSED && s.close_reason != EIO_CLOSE_NONE);
		if (act & EIO_ACT_POLL_RESPOND)
			CHECK(s.poll_held);
		/* the bounds: messages never pass them; control packets (open,
		 * ping) add at most two */
		CHECK(s.q_packets <= c.queue_max_packets + 2);
		CHECK(s.q_bytes <= c.queue_max_bytes + 200);
		CHECK(eio_session_deadline(&s) >= now || s.state != EIO_S_CLOSED);
		if (s.state == EIO_S_CLOSED)
			CHECK(s.q_packets == 0);
	}
	if (s.poll_held) {
		struct pbuf b = { 0 };
		eio_session_poll_body(&s, &b);
		check_body(&b);
		pbuf_free(&b);
	}
	eio_session_free(&s);
}

/* ================================================================ 6: base64 wrappers */

static void fuzz_bin(const uint8_t *in, size_t n)
{
	struct jval v;
	size_t pos;
	const char *why;
	int skip;

	if (jscan_value((const char *)in, n, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &v, &pos, &why))
		goto packet;
	struct pbuf out = { 0 }, bytes = { 0 }, w = { 0 }, out2 = { 0 }, bytes2 = { 0 };
	struct sio_att att[8], att2[8];
	long k = sio_bin_unwrap(&out, (const char *)in, n, &bytes, att, 8);
	if (k == 0) {
		/* plain JSON: the same value, compact */
		CHECK(out.len <= n);
		CHECK(jscan_value(out.data, out.len, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &v, &pos,
				  &why) == JSCAN_OK);
	} else if (k > 0) {
		CHECK(jscan_value(out.data, out.len, PROTO_DEPTH_MAX + 1, PROTO_KEYS_MAX * 2 + 16,
				  &v, &pos, &why) == JSCAN_OK);
		CHECK(sio_bin_wrap(&w, out.data, out.len, att, (size_t)k) == 0);
		json_t *j = load_any(w.data, w.len, &skip);
		CHECK(j || skip);
		json_decref(j);
		CHECK(sio_bin_unwrap(&out2, w.data, w.len, &bytes2, att2, 8) == k);
		CHECK(out2.len == out.len && !memcmp(out2.data, out.data, out.len));
		for (long i = 0; i < k; i++)
			CHECK(att2[i].n == att[i].n && (!att[i].n || !memcmp(att2[i].p, att[i].p, att[i].n)));
	}
	if (v.type == JT_ARRAY) {
		/* as an ACK (any array): the packet sio_encode_auto writes
		 * parses back with as many attachments as it returned */
		struct pbuf pk = { 0 }, by = { 0 };
		struct sio_att a8[8];
		struct sio_packet p;
		size_t na = sio_encode_auto(&pk, SIO_ACK, "/", 1, true, 7, v.p, v.n, &by, a8, 8);
		CHECK(sio_parse(pk.data, pk.len, &lim, &p) == SIO_OK);
		CHECK(p.attachments == na && p.has_id && p.id == 7);
		CHECK(p.type == (na ? SIO_BINARY_ACK : SIO_ACK));
		pbuf_free(&pk);
		pbuf_free(&by);
	}
	pbuf_free(&out);
	pbuf_free(&bytes);
	pbuf_free(&w);
	pbuf_free(&out2);
	pbuf_free(&bytes2);
	return;
packet:;
	/* a Socket.IO binary packet: its data wraps with made-up attachments */
	struct sio_packet p;
	if (sio_parse((const char *)in, n, &lim, &p) != SIO_OK || !p.data ||
	    (p.type != SIO_BINARY_EVENT && p.type != SIO_BINARY_ACK))
		return;
	struct sio_att a[SIO_ATTACH_MAX_DEF];
	for (unsigned i = 0; i < p.attachments; i++)
		a[i] = (struct sio_att){ in, i < n ? i : n };
	struct pbuf b = { 0 };
	CHECK(sio_bin_wrap(&b, p.data, p.data_len, a, p.attachments) == 0);
	CHECK(jscan_value(b.data, b.len, PROTO_DEPTH_MAX, PROTO_KEYS_MAX * 2, &v, &pos, &why) ==
	      JSCAN_OK);
	pbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *in = data + 1;
	size_t n = size - 1;
	switch (data[0] & 7) {
	case 0: fuzz_payload(in, n); break;
	case 1: fuzz_eio_text(in, n); break;
	case 2: fuzz_sio_packet(in, n); break;
	case 3: fuzz_json(in, n); break;
	case 4: fuzz_decoder(in, n); break;
	case 5: fuzz_session(in, n); break;
	case 6: fuzz_bin(in, n); break;
	default: fuzz_sio_packet(in, n); break;
	}
	return 0;
}
