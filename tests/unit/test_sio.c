/*
 * test_sio.c - Engine.IO v4 / Socket.IO v5 codecs and the Engine.IO session
 * machine (protocol/sio/), fed bytes and times directly.
 *
 * The examples are those of the public protocol documents (Engine.IO v4,
 * Socket.IO v5) and the cases of the Socket.IO protocol test suite
 * (socket.io-protocol/test-suite), one assertion per wire string.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eio.h"
#include "eio_session.h"
#include "jscan.h"
#include "proto.h"
#include "sio.h"

/* ================================================================ helpers */

#define ck_assert_buf(b, s) do { \
	const char *want_ = (s); size_t wlen_ = strlen(want_); \
	ck_assert_msg((b)->len == wlen_ && memcmp((b)->data, want_, wlen_) == 0, \
		      "got [%.*s], want [%s]", (int)(b)->len, (b)->data, want_); } while (0)

#define ck_assert_span(p, n, s) do { \
	const char *want_ = (s); size_t wlen_ = strlen(want_); \
	ck_assert_msg((n) == wlen_ && memcmp((p), want_, wlen_) == 0, \
		      "got [%.*s], want [%s]", (int)(n), (const char *)(p), want_); } while (0)

static enum eio_err payload(const char *s, size_t n, struct eio_packet *out, size_t max,
			    size_t *count, char **keep)
{
	/* decoding is in place: work on a heap copy the size of the input */
	char *body = malloc(n ? n : 1);
	memcpy(body, s, n);
	*keep = body;
	return eio_decode_payload(body, n, EIO_MAX_PAYLOAD_DEF, out, max, count);
}

static enum sio_err parse(const char *s, struct sio_packet *p)
{
	struct sio_decoder d;
	sio_decoder_init(&d, NULL);
	enum sio_err e = sio_parse(s, strlen(s), &d.lim, p);
	sio_decoder_free(&d);
	return e;
}

/* ================================================================ Engine.IO packets */

START_TEST(eio_packet_types)
{
	/* Engine.IO v4 "Packet encoding": each type digit and its data */
	static const struct { const char *wire; enum eio_type t; const char *data; } ex[] = {
		{ "0{\"sid\":\"x\"}", EIO_OPEN, "{\"sid\":\"x\"}" },
		{ "1", EIO_CLOSE, "" },
		{ "2", EIO_PING, "" },
		{ "3", EIO_PONG, "" },
		{ "2probe", EIO_PING, "probe" },
		{ "3probe", EIO_PONG, "probe" },
		{ "4hello", EIO_MESSAGE, "hello" },
		{ "4\xe2\x82\xac", EIO_MESSAGE, "\xe2\x82\xac" },
		{ "5", EIO_UPGRADE, "" },
		{ "6", EIO_NOOP, "" },
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(*ex); i++) {
		struct eio_packet p;
		ck_assert_int_eq(eio_decode_text(ex[i].wire, strlen(ex[i].wire), &p), EIO_OK);
		ck_assert_int_eq(p.type, ex[i].t);
		ck_assert(!p.binary);
		ck_assert_span(p.data, p.len, ex[i].data);
		struct pbuf b = { 0 };
		eio_encode_packet(&b, &p);
		ck_assert_buf(&b, ex[i].wire);
		ck_assert_uint_eq(eio_encoded_len(&p), b.len);
		pbuf_free(&b);
	}
}
END_TEST

START_TEST(eio_packet_invalid)
{
	struct eio_packet p;
	ck_assert_int_eq(eio_decode_text("", 0, &p), EIO_E_EMPTY);
	ck_assert_int_eq(eio_decode_text("7", 1, &p), EIO_E_TYPE);
	ck_assert_int_eq(eio_decode_text("9x", 2, &p), EIO_E_TYPE);
	ck_assert_int_eq(eio_decode_text("abc", 3, &p), EIO_E_TYPE);
	ck_assert_int_eq(eio_decode_text("/", 1, &p), EIO_E_TYPE);
	/* 'b' is a polling-only prefix: on a WebSocket it is no type */
	ck_assert_int_eq(eio_decode_text("bAQID", 5, &p), EIO_E_TYPE);
	ck_assert_str_eq(eio_strerror(EIO_E_TYPE), "unknown packet type");
}
END_TEST

START_TEST(eio_binary_frame)
{
	/* v4: a binary WebSocket frame is the message's bytes, no type byte */
	static const uint8_t bytes[] = { 1, 2, 3, 4 };
	struct eio_packet p;
	eio_decode_binary(bytes, 4, &p);
	ck_assert_int_eq(p.type, EIO_MESSAGE);
	ck_assert(p.binary);
	ck_assert_uint_eq(p.len, 4);
	ck_assert(p.data == bytes);
	/* in a polling payload the same packet is b + base64 */
	struct pbuf b = { 0 };
	eio_encode_packet(&b, &p);
	ck_assert_buf(&b, "bAQIDBA==");
	ck_assert_uint_eq(eio_encoded_len(&p), b.len);
	pbuf_free(&b);
}
END_TEST

/* ================================================================ payloads */

START_TEST(eio_payload_doc_example)
{
	/* Engine.IO v4 "HTTP long-polling": "hello", "€" and bytes 1 2 3 4 */
	static const char wire[] = "4hello\x1e" "4\xe2\x82\xac\x1e" "bAQIDBA==";
	struct eio_packet p[8];
	size_t n;
	char *body;
	ck_assert_int_eq(payload(wire, sizeof(wire) - 1, p, 8, &n, &body), EIO_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(p[0].type, EIO_MESSAGE);
	ck_assert_span(p[0].data, p[0].len, "hello");
	ck_assert_span(p[1].data, p[1].len, "\xe2\x82\xac");
	ck_assert(p[2].binary);
	ck_assert_uint_eq(p[2].len, 4);
	ck_assert(memcmp(p[2].data, "\x01\x02\x03\x04", 4) == 0);
	/* and back: the encoder writes the same bytes */
	static const uint8_t raw[] = { 1, 2, 3, 4 };
	struct eio_packet q[3] = {
		{ EIO_MESSAGE, false, (const uint8_t *)"hello", 5 },
		{ EIO_MESSAGE, false, (const uint8_t *)"\xe2\x82\xac", 3 },
		{ EIO_MESSAGE, true, raw, 4 },
	};
	struct pbuf b = { 0 };
	eio_encode_payload(&b, q, 3);
	ck_assert_uint_eq(b.len, sizeof(wire) - 1);
	ck_assert(memcmp(b.data, wire, b.len) == 0);
	pbuf_free(&b);
	free(body);
}
END_TEST

START_TEST(eio_payload_single_and_control)
{
	struct eio_packet p[4];
	size_t n;
	char *body;
	/* the heartbeat answer and a close, as socket.io-client POSTs them */
	ck_assert_int_eq(payload("3", 1, p, 4, &n, &body), EIO_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(p[0].type, EIO_PONG);
	free(body);
	ck_assert_int_eq(payload("1", 1, p, 4, &n, &body), EIO_OK);
	ck_assert_int_eq(p[0].type, EIO_CLOSE);
	free(body);
	/* an empty binary message is "b" */
	ck_assert_int_eq(payload("b\x1e" "40", 4, p, 4, &n, &body), EIO_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert(p[0].binary);
	ck_assert_uint_eq(p[0].len, 0);
	ck_assert_span(p[1].data, p[1].len, "0");
	free(body);
	/* unpadded base64 is accepted too */
	ck_assert_int_eq(payload("bAQIDBA", 7, p, 4, &n, &body), EIO_OK);
	ck_assert_uint_eq(p[0].len, 4);
	free(body);
}
END_TEST

START_TEST(eio_payload_invalid)
{
	struct eio_packet p[4];
	size_t n;
	char *body;
	static const struct { const char *s; size_t n; enum eio_err e; } bad[] = {
		{ "", 0, EIO_E_EMPTY },
		{ "4a\x1e\x1e" "4b", 6, EIO_E_EMPTY },
		{ "4a\x1e", 3, EIO_E_EMPTY },
		{ "\x1e" "4a", 3, EIO_E_EMPTY },
		{ "8", 1, EIO_E_TYPE },
		{ "4a\x1e" "x", 4, EIO_E_TYPE },
		{ "b!!!!", 5, EIO_E_BASE64 },
		{ "bAQIDBB==", 9, EIO_E_BASE64 },   /* non-zero unused bits */
		{ "bAQIDB", 6, EIO_E_BASE64 },      /* 6 bits left over */
		{ "bAQ=", 4, EIO_E_BASE64 },        /* padding to a non-multiple of 4 */
		{ "bA=QI", 5, EIO_E_BASE64 },
		{ "bAQ\nID", 6, EIO_E_BASE64 },
		{ "4\xff", 2, EIO_E_UTF8 },
		{ "4\xe2\x82", 3, EIO_E_UTF8 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ck_assert_msg(payload(bad[i].s, bad[i].n, p, 4, &n, &body) == bad[i].e,
			      "case %zu", i);
		free(body);
	}
}
END_TEST

START_TEST(eio_payload_bounds)
{
	struct eio_packet p[3];
	size_t n;
	/* maxPayload: at the limit, and one past it */
	char *big = malloc(1001);
	big[0] = '4';
	memset(big + 1, 'x', 1000);
	ck_assert_int_eq(eio_decode_payload(big, 1000, 1000, p, 3, &n), EIO_OK);
	ck_assert_int_eq(eio_decode_payload(big, 1001, 1000, p, 3, &n), EIO_E_TOO_LARGE);
	free(big);
	/* packets per payload: three fit, four do not */
	char three[] = "2\x1e" "3\x1e" "4";
	ck_assert_int_eq(eio_decode_payload(three, 5, 100, p, 3, &n), EIO_OK);
	ck_assert_uint_eq(n, 3);
	char four[] = "2\x1e" "3\x1e" "4\x1e" "6";
	ck_assert_int_eq(eio_decode_payload(four, 7, 100, p, 3, &n), EIO_E_TOO_MANY);
	/* both limits at once: the size is checked first */
	ck_assert_int_eq(eio_decode_payload(four, 7, 6, p, 3, &n), EIO_E_TOO_LARGE);
}
END_TEST

START_TEST(eio_base64_roundtrip)
{
	uint8_t raw[300], dec[300];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(raw); n++) {
		struct pbuf b = { 0 };
		eio_b64_encode(&b, raw, n);
		ck_assert_uint_eq(b.len, eio_b64_len(n));
		ck_assert_int_eq(eio_b64_decode(b.data, b.len, dec), (long)n);
		ck_assert(memcmp(dec, raw, n) == 0);
		/* in place, as the payload decoder does it */
		ck_assert_int_eq(eio_b64_decode(b.data, b.len, (uint8_t *)b.data), (long)n);
		ck_assert(n == 0 || memcmp(b.data, raw, n) == 0);
		pbuf_free(&b);
	}
	struct pbuf b = { 0 };
	eio_b64_encode(&b, (const uint8_t *)"\xfb\xff", 2);
	ck_assert_buf(&b, "+/8=");
	pbuf_free(&b);
}
END_TEST

START_TEST(eio_open_packet)
{
	/* the handshake example of the Engine.IO v4 document */
	struct pbuf b = { 0 };
	eio_encode_open(&b, "lv_VI97HAXpY6yYWAAAC", true, 25000, 20000, 1000000);
	ck_assert_buf(&b, "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
		      "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
	/* exactly the five keys the test suite wants, of the right types */
	json_error_t err;
	json_t *v = json_loadb(b.data + 1, b.len - 1, 0, &err);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(json_object_size(v), 5);
	ck_assert(json_is_string(json_object_get(v, "sid")));
	ck_assert_int_eq(json_integer_value(json_object_get(v, "maxPayload")), 1000000);
	json_decref(v);
	/* opened on a WebSocket: nothing to upgrade to; the conformance values */
	pbuf_reset(&b);
	eio_encode_open(&b, "abc", false, 300, 200, 1000000);
	ck_assert_buf(&b, "0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":300,"
		      "\"pingTimeout\":200,\"maxPayload\":1000000}");
	pbuf_free(&b);
}
END_TEST

START_TEST(eio_sid)
{
	uint8_t a[15] = { 0 }, c[15];
	char s1[EIO_SID_LEN + 1], s2[EIO_SID_LEN + 1];
	for (int i = 0; i < 15; i++)
		c[i] = (uint8_t)(0xf0 + i);
	eio_sid_format(a, s1);
	eio_sid_format(c, s2);
	ck_assert_str_eq(s1, "AAAAAAAAAAAAAAAAAAAA");
	ck_assert_uint_eq(strlen(s2), EIO_SID_LEN);
	ck_assert_str_ne(s1, s2);
	for (int i = 0; i < EIO_SID_LEN; i++)
		ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
				 s2[i]));
}
END_TEST

START_TEST(eio_http_errors)
{
	/* the reference server's bodies, byte for byte */
	static const char *const want[] = {
		"{\"code\":0,\"message\":\"Transport unknown\"}",
		"{\"code\":1,\"message\":\"Session ID unknown\"}",
		"{\"code\":2,\"message\":\"Bad handshake method\"}",
		"{\"code\":3,\"message\":\"Bad request\"}",
		"{\"code\":4,\"message\":\"Forbidden\"}",
		"{\"code\":5,\"message\":\"Unsupported protocol version\"}",
	};
	for (int e = 0; e < EIO_HERR_COUNT; e++) {
		struct pbuf b = { 0 };
		eio_encode_http_error(&b, (enum eio_http_err)e, NULL);
		ck_assert_buf(&b, want[e]);
		ck_assert_int_eq(eio_http_status((enum eio_http_err)e), e == 4 ? 403 : 400);
		pbuf_free(&b);
	}
	struct pbuf b = { 0 };
	eio_encode_http_error(&b, EIO_HERR_FORBIDDEN, "origin \"x\" not allowed");
	ck_assert_buf(&b, "{\"code\":4,\"message\":\"origin \\\"x\\\" not allowed\"}");
	pbuf_free(&b);
}
END_TEST

START_TEST(eio_request_checks)
{
	/* the test suite's handshake failures, in the reference's order */
	ck_assert_int_eq(eio_check_request("polling", NULL, false, true, false),
			 EIO_HERR_UNSUPPORTED);                       /* no EIO */
	ck_assert_int_eq(eio_check_request("polling", "abc", false, true, false),
			 EIO_HERR_UNSUPPORTED);
	ck_assert_int_eq(eio_check_request("polling", "3", false, true, false),
			 EIO_HERR_UNSUPPORTED);
	ck_assert_int_eq(eio_check_request(NULL, "4", false, true, false),
			 EIO_HERR_UNKNOWN_TRANSPORT);                 /* no transport */
	ck_assert_int_eq(eio_check_request("abc", "4", false, true, false),
			 EIO_HERR_UNKNOWN_TRANSPORT);
	ck_assert_int_eq(eio_check_request("abc", NULL, false, false, false),
			 EIO_HERR_UNKNOWN_TRANSPORT);                 /* transport first */
	ck_assert_int_eq(eio_check_request("polling", "4", false, false, false),
			 EIO_HERR_BAD_HANDSHAKE);                     /* POST, PUT */
	ck_assert_int_eq(eio_check_request("websocket", "4", false, true, false),
			 EIO_HERR_BAD_REQUEST);                       /* no Upgrade */
	ck_assert_int_eq(eio_check_request("polling", "4", false, true, false), -1);
	ck_assert_int_eq(eio_check_request("websocket", "4", false, true, true), -1);
	/* with a sid the session decides (unknown sid, transport mismatch) */
	ck_assert_int_eq(eio_check_request("polling", "4", true, false, false), -1);
}
END_TEST

/* ================================================================ Socket.IO packets */

struct sio_ex {
	const char *wire;
	enum sio_type type;
	const char *nsp;
	int id;               /* -1: none */
	const char *data;     /* NULL: none */
	unsigned att;
};

/* Every packet example of the Socket.IO v5 document, plus the test suite's. */
static const struct sio_ex sio_examples[] = {
	{ "0", SIO_CONNECT, "/", -1, NULL, 0 },
	{ "0/admin,", SIO_CONNECT, "/admin", -1, NULL, 0 },
	{ "0{\"token\":\"123\"}", SIO_CONNECT, "/", -1, "{\"token\":\"123\"}", 0 },
	{ "0/admin,{\"token\":\"123\"}", SIO_CONNECT, "/admin", -1, "{\"token\":\"123\"}", 0 },
	{ "0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, "/", -1,
	  "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 0 },
	{ "0/custom,", SIO_CONNECT, "/custom", -1, NULL, 0 },
	{ "0/custom,{\"token\":\"abc\"}", SIO_CONNECT, "/custom", -1, "{\"token\":\"abc\"}", 0 },
	{ "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, "/admin", -1,
	  "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 0 },
	{ "1", SIO_DISCONNECT, "/", -1, NULL, 0 },
	{ "1/admin,", SIO_DISCONNECT, "/admin", -1, NULL, 0 },
	{ "2[\"foo\"]", SIO_EVENT, "/", -1, "[\"foo\"]", 0 },
	{ "2/admin,[\"bar\"]", SIO_EVENT, "/admin", -1, "[\"bar\"]", 0 },
	{ "212[\"foo\"]", SIO_EVENT, "/", 12, "[\"foo\"]", 0 },
	{ "2/admin,12[\"bar\"]", SIO_EVENT, "/admin", 12, "[\"bar\"]", 0 },
	{ "2[\"hello\",1]", SIO_EVENT, "/", -1, "[\"hello\",1]", 0 },
	{ "2[\"message\",1,\"2\",{\"3\":[true]}]", SIO_EVENT, "/", -1,
	  "[\"message\",1,\"2\",{\"3\":[true]}]", 0 },
	{ "2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", SIO_EVENT, "/", 456,
	  "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", 0 },
	{ "2[\"auth\",{}]", SIO_EVENT, "/", -1, "[\"auth\",{}]", 0 },
	{ "2/custom,[\"auth\",{\"token\":\"abc\"}]", SIO_EVENT, "/custom", -1,
	  "[\"auth\",{\"token\":\"abc\"}]", 0 },
	{ "2[\"message-back\",\"message to main namespace\"]", SIO_EVENT, "/", -1,
	  "[\"message-back\",\"message to main namespace\"]", 0 },
	{ "312[\"bar\"]", SIO_ACK, "/", 12, "[\"bar\"]", 0 },
	/* socket.io-client's first ack id is 0 */
	{ "20[\"join\",{\"room\":\"lobby\"}]", SIO_EVENT, "/", 0, "[\"join\",{\"room\":\"lobby\"}]", 0 },
	{ "30[{\"ok\":true,\"data\":{}}]", SIO_ACK, "/", 0, "[{\"ok\":true,\"data\":{}}]", 0 },
	{ "3/admin,13[\"bar\"]", SIO_ACK, "/admin", 13, "[\"bar\"]", 0 },
	{ "3456[1,\"2\",{\"3\":[false]}]", SIO_ACK, "/", 456, "[1,\"2\",{\"3\":[false]}]", 0 },
	{ "4{\"message\":\"Not authorized\"}", SIO_CONNECT_ERROR, "/", -1,
	  "{\"message\":\"Not authorized\"}", 0 },
	{ "4/random,{\"message\":\"Invalid namespace\"}", SIO_CONNECT_ERROR, "/random", -1,
	  "{\"message\":\"Invalid namespace\"}", 0 },
	{ "4\"Not authorized\"", SIO_CONNECT_ERROR, "/", -1, "\"Not authorized\"", 0 },
	{ "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", -1,
	  "[\"baz\",{\"_placeholder\":true,\"num\":0}]", 1 },
	{ "51-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/admin", -1,
	  "[\"baz\",{\"_placeholder\":true,\"num\":0}]", 1 },
	{ "51-/admin,13[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/admin", 13,
	  "[\"baz\",{\"_placeholder\":true,\"num\":0}]", 1 },
	{ "52-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
	  SIO_BINARY_EVENT, "/", -1,
	  "[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 2 },
	{ "52-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
	  SIO_BINARY_EVENT, "/", 789,
	  "[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 2 },
	{ "51-/admin,456[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/admin", 456,
	  "[\"baz\",{\"_placeholder\":true,\"num\":0}]", 1 },
	{ "61-15[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/", 15,
	  "[{\"_placeholder\":true,\"num\":0}]", 1 },
	{ "61-/admin,1[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/admin", 1,
	  "[{\"_placeholder\":true,\"num\":0}]", 1 },
	{ "62-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
	  SIO_BINARY_ACK, "/", 789,
	  "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 2 },
};

START_TEST(sio_doc_examples)
{
	const struct sio_ex *ex = &sio_examples[_i];
	struct sio_packet p;

	ck_assert_msg(parse(ex->wire, &p) == SIO_OK, "%s: %s", ex->wire,
		      sio_strerror(parse(ex->wire, &p)));
	ck_assert_int_eq(p.type, ex->type);
	ck_assert_span(p.nsp, p.nsp_len, ex->nsp);
	ck_assert_int_eq(p.has_id, ex->id >= 0);
	if (ex->id >= 0)
		ck_assert_uint_eq(p.id, (uint64_t)ex->id);
	if (ex->data)
		ck_assert_span(p.data, p.data_len, ex->data);
	else
		ck_assert_ptr_null(p.data);
	ck_assert_uint_eq(p.attachments, ex->att);
	if (p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT)
		ck_assert(p.event.type == JT_STRING || p.event.type == JT_NUMBER);

	/* the encoder writes the same text from the fields */
	struct pbuf b = { 0 };
	sio_encode(&b, ex->type, ex->nsp, strlen(ex->nsp), ex->id >= 0, (uint64_t)(ex->id < 0 ? 0 : ex->id),
		   ex->att, ex->data, ex->data ? strlen(ex->data) : 0);
	ck_assert_buf(&b, ex->wire);
	pbuf_free(&b);
}
END_TEST

/* The sample session of the Socket.IO v5 document, at the Engine.IO level:
 * each WebSocket frame is an Engine.IO packet whose message is a Socket.IO
 * packet. */
START_TEST(sio_layered_sample_session)
{
	static const struct { const char *frame; enum eio_type et; int st; } ex[] = {
		{ "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		  "\"pingTimeout\":5000,\"maxPayload\":1000000}", EIO_OPEN, -1 },
		{ "40", EIO_MESSAGE, SIO_CONNECT },
		{ "40{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", EIO_MESSAGE, SIO_CONNECT },
		{ "2probe", EIO_PING, -1 },
		{ "3probe", EIO_PONG, -1 },
		{ "5", EIO_UPGRADE, -1 },
		{ "42[\"hello\",\"world\"]", EIO_MESSAGE, SIO_EVENT },
		{ "421[\"hello\"]", EIO_MESSAGE, SIO_EVENT },
		{ "431[\"world\"]", EIO_MESSAGE, SIO_ACK },
		{ "2", EIO_PING, -1 },
		{ "3", EIO_PONG, -1 },
		{ "451-[\"hello\",{\"_placeholder\":true,\"num\":0}]", EIO_MESSAGE, SIO_BINARY_EVENT },
		{ "41", EIO_MESSAGE, SIO_DISCONNECT },
		{ "1", EIO_CLOSE, -1 },
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(*ex); i++) {
		struct eio_packet e;
		ck_assert_int_eq(eio_decode_text(ex[i].frame, strlen(ex[i].frame), &e), EIO_OK);
		ck_assert_int_eq(e.type, ex[i].et);
		if (ex[i].st < 0)
			continue;
		struct sio_packet p;
		struct sio_decoder d;
		sio_decoder_init(&d, NULL);
		enum sio_err r = sio_decoder_text(&d, (const char *)e.data, e.len, &p);
		ck_assert_msg(r == SIO_OK || r == SIO_MORE, "%s: %s", ex[i].frame, sio_strerror(r));
		ck_assert_int_eq(p.type, ex[i].st);
		sio_decoder_free(&d);
	}
}
END_TEST

START_TEST(sio_encoders)
{
	struct pbuf b = { 0 };
	/* the server's CONNECT answers, as in the test suite */
	sio_enc_connect(&b, "/", 1, "oSO0OpakMV_3jnilAAAA");
	ck_assert_buf(&b, "0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
	pbuf_reset(&b);
	sio_enc_connect(&b, "/custom", 7, "abc");
	ck_assert_buf(&b, "0/custom,{\"sid\":\"abc\"}");
	pbuf_reset(&b);
	sio_enc_connect_error(&b, "/random", 7, "Invalid namespace");
	ck_assert_buf(&b, "4/random,{\"message\":\"Invalid namespace\"}");
	pbuf_reset(&b);
	sio_enc_disconnect(&b, "/", 1);
	ck_assert_buf(&b, "1");
	pbuf_reset(&b);
	sio_enc_disconnect(&b, "/admin", 6);
	ck_assert_buf(&b, "1/admin,");
	pbuf_reset(&b);
	/* an event built piece by piece, one binary argument */
	sio_enc_event_open(&b, "/", 1, false, 0, 1, "message-back", 12);
	pbuf_addc(&b, ',');
	sio_enc_placeholder(&b, 0);
	pbuf_addc(&b, ']');
	ck_assert_buf(&b, "51-[\"message-back\",{\"_placeholder\":true,\"num\":0}]");
	pbuf_reset(&b);
	sio_enc_event_open(&b, "/", 1, true, 7, 0, "auth", 4);
	pbuf_adds(&b, ",{}]");
	ck_assert_buf(&b, "27[\"auth\",{}]");
	pbuf_reset(&b);
	/* an ACK with attachments becomes BINARY_ACK */
	sio_enc_header(&b, SIO_ACK, "/", 1, true, 789, 2);
	ck_assert_buf(&b, "62-789");
	pbuf_free(&b);
}
END_TEST

START_TEST(sio_invalid)
{
	static const struct { const char *s; enum sio_err e; } bad[] = {
		{ "", SIO_E_EMPTY },
		/* test suite: "should close the connection upon invalid format" */
		{ "abc", SIO_E_TYPE },                  /* "4abc" at the Engine.IO level */
		{ "2{}", SIO_E_PAYLOAD },               /* "42{}": invalid payload format */
		{ "2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", SIO_E_JSON }, /* invalid ack id */
		{ "7", SIO_E_TYPE },
		{ "9[\"a\"]", SIO_E_TYPE },
		{ "-1", SIO_E_TYPE },
		/* attachments */
		{ "5[\"a\"]", SIO_E_ATTACHMENTS },
		{ "51[\"a\"]", SIO_E_ATTACHMENTS },
		{ "5-[\"a\"]", SIO_E_ATTACHMENTS },
		{ "5x-[\"a\"]", SIO_E_ATTACHMENTS },
		{ "51", SIO_E_ATTACHMENTS },
		{ "5123456789-[\"a\"]", SIO_E_ATTACHMENTS },
		{ "511-[\"a\"]", SIO_E_TOO_MANY_ATT },    /* default limit 10 */
		{ "51-[\"a\",{\"_placeholder\":true,\"num\":1}]", SIO_E_PLACEHOLDER },
		{ "51-[\"a\",{\"_placeholder\":true,\"num\":-1}]", SIO_E_PLACEHOLDER },
		{ "51-[\"a\",{\"_placeholder\":true,\"num\":0.5}]", SIO_E_PLACEHOLDER },
		{ "51-[\"a\",{\"_placeholder\":true,\"num\":\"0\"}]", SIO_E_PLACEHOLDER },
		{ "51-[\"a\",{\"_placeholder\":true}]", SIO_E_PLACEHOLDER },
		{ "51-[\"a\",{\"x\":[{\"_placeholder\":true,\"num\":3}]}]", SIO_E_PLACEHOLDER },
		{ "51-[\"a\",{\"_placeholder\":{\"_placeholder\":true,\"num\":9}}]", SIO_E_PLACEHOLDER },
		{ "61-[{\"_placeholder\":true,\"num\":0,\"num\":1}]", SIO_E_PLACEHOLDER }, /* last wins */
		/* namespaces */
		{ "2/a\x01,[\"x\"]", SIO_E_NSP },
		/* ack ids */
		{ "29007199254740992[\"a\"]", SIO_E_ID },
		{ "312345678901234567[\"a\"]", SIO_E_ID },
		/* payload JSON and shape */
		{ "2[\"a\"", SIO_E_JSON },
		{ "2[\"a\"]x", SIO_E_JSON },
		{ "2[\"\\ud800\"]", SIO_E_JSON },
		{ "2", SIO_E_PAYLOAD },
		{ "2/admin,", SIO_E_PAYLOAD },
		{ "2\"x\"", SIO_E_PAYLOAD },
		{ "2[]", SIO_E_PAYLOAD },
		{ "2[{}]", SIO_E_PAYLOAD },
		{ "2[null]", SIO_E_PAYLOAD },
		{ "2[[\"a\"]]", SIO_E_PAYLOAD },
		{ "2[\"connect\"]", SIO_E_RESERVED },
		{ "2[\"connect_error\",1]", SIO_E_RESERVED },
		{ "2[\"disconnect\"]", SIO_E_RESERVED },
		{ "2[\"disconnecting\"]", SIO_E_RESERVED },
		{ "2[\"newListener\"]", SIO_E_RESERVED },
		{ "2[\"removeListener\"]", SIO_E_RESERVED },
		{ "2[\"\\u0063onnect\"]", SIO_E_RESERVED },
		{ "3{}", SIO_E_PAYLOAD },
		{ "3\"a\"", SIO_E_PAYLOAD },
		{ "0[]", SIO_E_PAYLOAD },
		{ "0\"tok\"", SIO_E_PAYLOAD },
		{ "0null", SIO_E_PAYLOAD },
		{ "1{}", SIO_E_PAYLOAD },
		{ "1/admin,{}", SIO_E_PAYLOAD },
		{ "4[]", SIO_E_PAYLOAD },
		{ "4/x,true", SIO_E_PAYLOAD },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct sio_packet p;
		enum sio_err e = parse(bad[i].s, &p);
		ck_assert_msg(e == bad[i].e, "[%s]: got %s, want %s", bad[i].s, sio_strerror(e),
			      sio_strerror(bad[i].e));
	}
}
END_TEST

START_TEST(sio_edge_valid)
{
	struct sio_packet p;
	/* "40/custom" and "41/custom" in the test suite: no comma */
	ck_assert_int_eq(parse("0/custom", &p), SIO_OK);
	ck_assert_span(p.nsp, p.nsp_len, "/custom");
	ck_assert_int_eq(parse("1/custom", &p), SIO_OK);
	ck_assert_span(p.nsp, p.nsp_len, "/custom");
	ck_assert_int_eq(parse("0/random", &p), SIO_OK);
	/* an event named by a number; white space around the payload */
	ck_assert_int_eq(parse("2[1,2]", &p), SIO_OK);
	ck_assert_int_eq(p.event.type, JT_NUMBER);
	ck_assert_int_eq(parse("2 [ \"a\" ] ", &p), SIO_OK);
	ck_assert_span(p.data, p.data_len, "[ \"a\" ]");
	ck_assert_span(p.event.p, p.event.n, "\"a\"");
	/* names that only look reserved */
	ck_assert_int_eq(parse("2[\"connected\"]", &p), SIO_OK);
	ck_assert_int_eq(parse("2[\"Connect\"]", &p), SIO_OK);
	/* an ACK without arguments, a CONNECT_ERROR without payload */
	ck_assert_int_eq(parse("3/admin,13", &p), SIO_OK);
	ck_assert(p.has_id && p.id == 13 && p.data == NULL);
	ck_assert_int_eq(parse("4", &p), SIO_OK);
	/* the largest ack id JavaScript holds exactly */
	ck_assert_int_eq(parse("39007199254740991[]", &p), SIO_OK);
	ck_assert_uint_eq(p.id, SIO_ID_MAX);
	/* ten attachments (the default limit) */
	ck_assert_int_eq(parse("510-[\"a\"]", &p), SIO_OK);
	ck_assert_uint_eq(p.attachments, 10);
	/* a binary packet with none: complete at once */
	ck_assert_int_eq(parse("50-[\"a\"]", &p), SIO_OK);
	/* placeholders in a plain EVENT are plain objects */
	ck_assert_int_eq(parse("2[\"a\",{\"_placeholder\":true,\"num\":5}]", &p), SIO_OK);
	/* "_placeholder" not true: not a placeholder */
	ck_assert_int_eq(parse("51-[\"a\",{\"_placeholder\":false,\"num\":7}]", &p), SIO_OK);
	/* a namespace at its limit, and one past it */
	char nsp[SIO_NSP_MAX + 16];
	nsp[0] = '2';
	nsp[1] = '/';
	memset(nsp + 2, 'n', SIO_NSP_MAX - 1);
	strcpy(nsp + 1 + SIO_NSP_MAX, ",[\"a\"]");
	ck_assert_int_eq(parse(nsp, &p), SIO_OK);
	ck_assert_uint_eq(p.nsp_len, SIO_NSP_MAX);
	memset(nsp + 2, 'n', SIO_NSP_MAX);
	strcpy(nsp + 2 + SIO_NSP_MAX, ",[\"a\"]");
	ck_assert_int_eq(parse(nsp, &p), SIO_E_NSP);
}
END_TEST

/* "2["a",[[...]]]": an EVENT whose payload nests `levels` arrays deep. */
static char *nested_event(int levels)
{
	char *b = malloc((size_t)levels * 2 + 16), *o = b;
	o += sprintf(o, "2[\"a\",");
	for (int i = 1; i < levels; i++)
		*o++ = '[';
	for (int i = 1; i < levels; i++)
		*o++ = ']';
	*o++ = ']';
	*o = '\0';
	return b;
}

START_TEST(sio_json_bounds)
{
	/* depth: PROTO_DEPTH_MAX levels pass, one more does not */
	struct sio_packet p;
	char *ok = nested_event(PROTO_DEPTH_MAX), *deep = nested_event(PROTO_DEPTH_MAX + 1);
	ck_assert_int_eq(parse(ok, &p), SIO_OK);
	ck_assert_int_eq(parse(deep, &p), SIO_E_DEPTH);
	free(ok);
	free(deep);
	/* keys: a custom limit of 2 */
	struct sio_limits lim = { 10, 1000, 8, 2, false };
	const char *two = "2[\"a\",{\"x\":1,\"y\":2}]", *three = "2[\"a\",{\"x\":1,\"y\":2,\"z\":3}]";
	ck_assert_int_eq(sio_parse(two, strlen(two), &lim, &p), SIO_OK);
	ck_assert_int_eq(sio_parse(three, strlen(three), &lim, &p), SIO_E_KEYS);
}
END_TEST

/* lazy_events: the outline ["plain-name",{...}] on "/" is handed on
 * unchecked (its argument's span given); everything else, and any escape
 * or non-ASCII byte in the name or a reserved name, takes the full check. */
START_TEST(sio_lazy_events)
{
	struct sio_limits lim = { 2, 1000, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, true };
	struct sio_packet p;
	const char *a = "21 [ \"join\" , {\"room\":tru} ] ";
	ck_assert_int_eq(sio_parse(a, strlen(a), &lim, &p), SIO_OK);
	ck_assert(p.unchecked);
	ck_assert_uint_eq(p.has_id, true);
	ck_assert_uint_eq(p.id, 1);
	ck_assert_span(p.event.p, p.event.n, "\"join\"");
	ck_assert_span(p.arg.p, p.arg.n, "{\"room\":tru}");
	ck_assert_span(p.data, p.data_len, "[ \"join\" , {\"room\":tru} ]");
	/* the full check it skipped: the same error as without lazy_events */
	ck_assert_int_eq(sio_check(&p, &lim), SIO_E_JSON);
	ck_assert(!p.unchecked);
	const char *b = "2[\"join\",{\"room\":\"a\"}]";
	ck_assert_int_eq(sio_parse(b, strlen(b), &lim, &p), SIO_OK);
	ck_assert(p.unchecked);
	ck_assert_int_eq(sio_check(&p, &lim), SIO_OK);
	ck_assert(!p.unchecked && p.event.type == JT_STRING && p.arg.type == JT_NONE);
	ck_assert_span(p.data, p.data_len, "[\"join\",{\"room\":\"a\"}]");
	static const char *const full[] = {
		"2[\"j\\u006f\",{}]", "2[\"\xc3\xa9\",{}]", "2[\"connect\",{}]", "2[1,{}]",
		"2[\"join\"]", "2[\"join\",[]]", "2[\"join\",{}", "2/x,[\"join\",{}]",
		"2[\"join\",{} ,]x", "21-[\"join\",{}]", "2[\"join\",\"{}\"]", "2[\"join\" {}]",
		"2[\"jo\tin\",{}]",
	};
	for (size_t i = 0; i < sizeof(full) / sizeof(*full); i++) {
		struct sio_packet q;
		struct sio_limits strict = lim;
		strict.lazy_events = false;
		enum sio_err e = sio_parse(full[i], strlen(full[i]), &lim, &p);
		ck_assert_msg(!p.unchecked, "%s", full[i]);
		ck_assert_int_eq(e, sio_parse(full[i], strlen(full[i]), &strict, &q));
	}
	/* off by default (sio_decoder_init without limits) */
	struct sio_decoder d;
	sio_decoder_init(&d, NULL);
	ck_assert_int_eq(sio_decoder_text(&d, b, strlen(b), &p), SIO_OK);
	ck_assert(!p.unchecked);
	sio_decoder_free(&d);
}
END_TEST

START_TEST(sio_array_split)
{
	const char *a = "[\"ev\", {\"a\":[1,2]} ,\"x,y\",3.5e2,[[]],null]";
	struct jval v[8];
	ck_assert_uint_eq(sio_array_items(a, strlen(a), v, 8), 6);
	ck_assert_span(v[0].p, v[0].n, "\"ev\"");
	ck_assert_span(v[1].p, v[1].n, "{\"a\":[1,2]}");
	ck_assert_int_eq(v[1].type, JT_OBJECT);
	ck_assert_span(v[2].p, v[2].n, "\"x,y\"");
	ck_assert_span(v[3].p, v[3].n, "3.5e2");
	ck_assert_int_eq(v[3].type, JT_NUMBER);
	ck_assert_span(v[4].p, v[4].n, "[[]]");
	ck_assert_int_eq(v[5].type, JT_NULL);
	/* only max are stored, all are counted */
	ck_assert_uint_eq(sio_array_items(a, strlen(a), v, 2), 6);
	ck_assert_uint_eq(sio_array_items("[]", 2, v, 8), 0);
	ck_assert_uint_eq(sio_array_items("[ ]", 3, v, 8), 0);
	/* sio_array_first stops at max: the same spans, no count past it */
	struct jval w[2];
	ck_assert_uint_eq(sio_array_first(a, strlen(a), w, 2), 2);
	ck_assert_span(w[0].p, w[0].n, "\"ev\"");
	ck_assert_span(w[1].p, w[1].n, "{\"a\":[1,2]}");
	ck_assert_uint_eq(sio_array_first(a, strlen(a), w, 1), 1);
	ck_assert_uint_eq(sio_array_first("[\"e\"]", 5, w, 2), 1);
	ck_assert_uint_eq(sio_array_first("[ ]", 3, w, 2), 0);
}
END_TEST

/* ================================================================ the decoder across frames */

START_TEST(sio_decoder_binary_event)
{
	/* test suite: "should send a packet with binary attachments" */
	struct sio_decoder d;
	struct sio_packet p;
	const char *hdr = "52-[\"message\",{\"_placeholder\":true,\"num\":0},"
			  "{\"_placeholder\":true,\"num\":1}]";
	char *copy = strdup(hdr);
	sio_decoder_init(&d, NULL);
	ck_assert_int_eq(sio_decoder_text(&d, copy, strlen(copy), &p), SIO_MORE);
	/* the caller's buffer may go: the decoder kept its own copy */
	memset(copy, 'X', strlen(copy));
	free(copy);
	uint8_t a1[] = { 1, 2, 3 }, a2[] = { 4, 5, 6 };
	ck_assert_int_eq(sio_decoder_binary(&d, a1, 3, &p), SIO_MORE);
	a1[0] = 99; /* and so may each attachment's */
	ck_assert_int_eq(sio_decoder_binary(&d, a2, 3, &p), SIO_OK);
	ck_assert_int_eq(p.type, SIO_BINARY_EVENT);
	ck_assert_uint_eq(p.attachments, 2);
	ck_assert_span(p.event.p, p.event.n, "\"message\"");
	ck_assert_span(p.data, p.data_len, hdr + 3);
	ck_assert_uint_eq(p.att[0].n, 3);
	ck_assert(memcmp(p.att[0].p, "\x01\x02\x03", 3) == 0);
	ck_assert(memcmp(p.att[1].p, "\x04\x05\x06", 3) == 0);
	/* the decoder is ready for the next packet */
	ck_assert_int_eq(sio_decoder_text(&d, "2[\"x\"]", 6, &p), SIO_OK);
	sio_decoder_free(&d);
}
END_TEST

START_TEST(sio_decoder_binary_ack_and_empty)
{
	struct sio_decoder d;
	struct sio_packet p;
	sio_decoder_init(&d, NULL);
	const char *ack = "61-15[{\"_placeholder\":true,\"num\":0}]";
	ck_assert_int_eq(sio_decoder_text(&d, ack, strlen(ack), &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"", 0, &p), SIO_OK);
	ck_assert_int_eq(p.type, SIO_BINARY_ACK);
	ck_assert(p.has_id && p.id == 15);
	ck_assert_uint_eq(p.att[0].n, 0);
	/* "50-": binary type, no attachments, complete at once */
	ck_assert_int_eq(sio_decoder_text(&d, "50-[\"a\"]", 8, &p), SIO_OK);
	ck_assert_ptr_null(p.att);
	sio_decoder_free(&d);
}
END_TEST

START_TEST(sio_decoder_out_of_order)
{
	struct sio_decoder d;
	struct sio_packet p;
	sio_decoder_init(&d, NULL);
	/* binary data when no packet is being rebuilt */
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"x", 1, &p),
			 SIO_E_UNEXPECTED_BINARY);
	/* text while attachments are awaited ("wrong attachment count":
	 * the header promised two, the client sent one and moved on) */
	const char *h = "52-[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
	ck_assert_int_eq(sio_decoder_text(&d, h, strlen(h), &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"x", 1, &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_text(&d, "2[\"b\"]", 6, &p), SIO_E_UNEXPECTED_TEXT);
	/* reset by the error: the next packet decodes */
	ck_assert_int_eq(sio_decoder_text(&d, "2[\"b\"]", 6, &p), SIO_OK);
	sio_decoder_free(&d);
}
END_TEST

START_TEST(sio_decoder_limits)
{
	struct sio_limits lim = { 2, 10, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, false };
	struct sio_decoder d;
	struct sio_packet p;
	sio_decoder_init(&d, &lim);
	ck_assert_int_eq(sio_decoder_text(&d, "53-[\"a\"]", 8, &p), SIO_E_TOO_MANY_ATT);
	ck_assert_int_eq(sio_decoder_text(&d, "52-[\"a\"]", 8, &p), SIO_MORE);
	/* 10 bytes of attachments in all: 6 + 4 fit ... */
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"123456", 6, &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"1234", 4, &p), SIO_OK);
	/* ... 6 + 5 do not */
	ck_assert_int_eq(sio_decoder_text(&d, "52-[\"a\"]", 8, &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"123456", 6, &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_binary(&d, (const uint8_t *)"12345", 5, &p), SIO_E_TOO_LARGE);
	/* a configured limit past the hard one is clamped */
	struct sio_limits big = { 100000, 10, 8, 8, false };
	sio_decoder_free(&d);
	sio_decoder_init(&d, &big);
	ck_assert_uint_eq(d.lim.max_attachments, SIO_ATTACH_HARD_MAX);
	sio_decoder_free(&d);
}
END_TEST

START_TEST(sio_decoder_idle_memory)
{
	/* a connection keeps no big buffer once a big packet is done */
	struct sio_limits lim = { 2, 1 << 20, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, false };
	struct sio_decoder d;
	struct sio_packet p;
	sio_decoder_init(&d, &lim);
	ck_assert_ptr_null(d.att); /* nothing allocated before a binary packet */
	uint8_t *big = calloc(1, 200000);
	ck_assert_int_eq(sio_decoder_text(&d, "51-[\"a\"]", 8, &p), SIO_MORE);
	ck_assert_int_eq(sio_decoder_binary(&d, big, 200000, &p), SIO_OK);
	ck_assert_uint_eq(p.att[0].n, 200000);
	ck_assert(d.bin.cap >= 200000);
	ck_assert_int_eq(sio_decoder_text(&d, "2[\"b\"]", 6, &p), SIO_OK);
	ck_assert_uint_eq(d.bin.cap, 0);
	free(big);
	sio_decoder_free(&d);
}
END_TEST

/* ================================================================ binary for native clients */

START_TEST(sio_bin_wrap_placeholders)
{
	static const uint8_t a0[] = { 1, 2, 3 }, a1[] = { 0xfb, 0xff };
	struct sio_att att[2] = { { a0, 3 }, { a1, 2 } };
	struct pbuf b = { 0 };
	const char *in = "[\"baz\",{\"_placeholder\":true,\"num\":0}]";
	ck_assert_int_eq(sio_bin_wrap(&b, in, strlen(in), att, 1), 0);
	ck_assert_buf(&b, "[\"baz\",{\"$base64\":\"AQID\"}]");
	pbuf_reset(&b);
	/* nested, white space dropped, other objects kept member by member */
	in = "[ \"a\" , { \"x\" : {\"num\":1, \"_placeholder\":true} , \"y\":[{\"_placeholder\":true,\"num\":0}],"
	     "\"z\":{\"_placeholder\":false,\"num\":0} } ]";
	ck_assert_int_eq(sio_bin_wrap(&b, in, strlen(in), att, 2), 0);
	ck_assert_buf(&b, "[\"a\",{\"x\":{\"$base64\":\"+/8=\"},\"y\":[{\"$base64\":\"AQID\"}],"
		      "\"z\":{\"_placeholder\":false,\"num\":0}}]");
	pbuf_reset(&b);
	/* a placeholder naming no attachment */
	in = "[\"a\",{\"_placeholder\":true,\"num\":2}]";
	ck_assert_int_eq(sio_bin_wrap(&b, in, strlen(in), att, 2), -1);
	pbuf_free(&b);
}
END_TEST

START_TEST(sio_bin_unwrap_wrappers)
{
	struct pbuf out = { 0 }, bytes = { 0 };
	struct sio_att att[4];
	/* a stored native message whose data holds bytes */
	const char *in = "{\"room\":\"r\",\"data\":{\"img\":{\"$base64\":\"AQID\"},\"t\":\"x\","
			 "\"e\":{ \"$base64\" : \"\" }}}";
	ck_assert_int_eq(sio_bin_unwrap(&out, in, strlen(in), &bytes, att, 4), 2);
	ck_assert_buf(&out, "{\"room\":\"r\",\"data\":{\"img\":{\"_placeholder\":true,\"num\":0},"
		      "\"t\":\"x\",\"e\":{\"_placeholder\":true,\"num\":1}}}");
	ck_assert_uint_eq(att[0].n, 3);
	ck_assert(memcmp(att[0].p, "\x01\x02\x03", 3) == 0);
	ck_assert_uint_eq(att[1].n, 0);
	/* back again: the same wrappers */
	struct pbuf w = { 0 };
	ck_assert_int_eq(sio_bin_wrap(&w, out.data, out.len, att, 2), 0);
	ck_assert_buf(&w, "{\"room\":\"r\",\"data\":{\"img\":{\"$base64\":\"AQID\"},\"t\":\"x\","
		      "\"e\":{\"$base64\":\"\"}}}");
	pbuf_free(&w);
	/* look-alikes stay plain JSON */
	static const char *const plain[] = {
		"{\"$base64\":\"AQID\",\"x\":1}",
		"{\"$base64\":1}",
		"{\"$base64\":\"AQI\"}",         /* not padded */
		"{\"$base64\":\"AQ\\/D\"}",    /* an escape */
		"{\"$base64\":\"!!!!\"}",
		"{\"$base64\":\"AQJ=\"}",        /* non-zero unused bits */
		"{\"base64\":\"AQID\"}",
		"[\"$base64\",\"AQID\"]",
	};
	for (size_t i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
		pbuf_reset(&out);
		pbuf_reset(&bytes);
		ck_assert_int_eq(sio_bin_unwrap(&out, plain[i], strlen(plain[i]), &bytes, att, 4), 0);
		ck_assert_buf(&out, plain[i]);
	}
	/* a literal placeholder beside a wrapper: not sendable as binary
	 * (the receiver would rebuild it); alone it is plain JSON */
	pbuf_reset(&out);
	pbuf_reset(&bytes);
	in = "[{\"$base64\":\"AA==\"},{\"_placeholder\":true,\"num\":0}]";
	ck_assert_int_eq(sio_bin_unwrap(&out, in, strlen(in), &bytes, att, 4), -1);
	pbuf_reset(&out);
	pbuf_reset(&bytes);
	in = "[{\"_placeholder\":true,\"num\":0}]";
	ck_assert_int_eq(sio_bin_unwrap(&out, in, strlen(in), &bytes, att, 4), 0);
	/* more wrappers than allowed */
	pbuf_reset(&out);
	pbuf_reset(&bytes);
	in = "[{\"$base64\":\"AA==\"},{\"$base64\":\"AA==\"},{\"$base64\":\"AA==\"}]";
	ck_assert_int_eq(sio_bin_unwrap(&out, in, strlen(in), &bytes, att, 2), -1);
	pbuf_free(&out);
	pbuf_free(&bytes);
}
END_TEST

START_TEST(sio_encode_auto_binary)
{
	struct pbuf b = { 0 }, bytes = { 0 };
	struct sio_att att[4];
	/* a stored message with bytes: a binary event for Socket.IO clients */
	const char *m = "{\"room\":\"r\",\"seq\":3,\"data\":{\"img\":{\"$base64\":\"AQID\"}}}";
	pbuf_adds(&b, "4"); /* the Engine.IO message type, as the edge writes it */
	sio_enc_event_open(&b, "/", 1, false, 0, 0, "message", 7);
	ck_assert_buf(&b, "42[\"message\"");
	pbuf_reset(&b);
	/* the args array holding the message, with wrappers */
	struct pbuf args = { 0 };
	pbuf_adds(&args, "[\"message\",");
	pbuf_adds(&args, m);
	pbuf_addc(&args, ']');
	ck_assert_uint_eq(sio_encode_auto(&b, SIO_EVENT, "/", 1, false, 0, args.data, args.len, &bytes,
					  att, 4), 1);
	ck_assert_buf(&b, "51-[\"message\",{\"room\":\"r\",\"seq\":3,\"data\":{\"img\":"
		      "{\"_placeholder\":true,\"num\":0}}}]");
	ck_assert_uint_eq(att[0].n, 3);
	/* a reply (ACK) without bytes: plain */
	pbuf_reset(&b);
	pbuf_reset(&bytes);
	ck_assert_uint_eq(sio_encode_auto(&b, SIO_ACK, "/", 1, true, 0, "[{\"ok\":true}]", 13, &bytes,
					  att, 4), 0);
	ck_assert_buf(&b, "30[{\"ok\":true}]");
	/* wrappers beside a literal placeholder: plain, nothing lost */
	pbuf_reset(&b);
	const char *amb = "[\"message\",{\"$base64\":\"AA==\"},{\"_placeholder\":true,\"num\":0}]";
	ck_assert_uint_eq(sio_encode_auto(&b, SIO_EVENT, "/", 1, false, 0, amb, strlen(amb), &bytes,
					  att, 4), 0);
	ck_assert_uint_eq(bytes.len, 0);
	ck_assert_uint_eq(b.len, 1 + strlen(amb));
	pbuf_free(&args);
	pbuf_free(&b);
	pbuf_free(&bytes);
}
END_TEST

START_TEST(jscan_any_value)
{
	/* the scanner under the Socket.IO payloads: any JSON type, same rules */
	struct jval v;
	size_t pos;
	const char *why;
	static const struct { const char *s; enum jtype t; const char *span; } ok[] = {
		{ "[1,2]", JT_ARRAY, "[1,2]" },
		{ " \"x\" ", JT_STRING, "\"x\"" },
		{ "-0.5e-3", JT_NUMBER, "-0.5e-3" },
		{ "true", JT_TRUE, "true" },
		{ "null\n", JT_NULL, "null" },
		{ "{\"a\":1,\"a\":2}", JT_OBJECT, "{\"a\":1,\"a\":2}" }, /* duplicates: as sent */
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		ck_assert_int_eq(jscan_value(ok[i].s, strlen(ok[i].s), 32, 100, &v, &pos, &why), JSCAN_OK);
		ck_assert_int_eq(v.type, ok[i].t);
		ck_assert_span(v.p, v.n, ok[i].span);
	}
	static const char *const bad[] = { "", " ", "[1,]", "01", "\"\\x\"", "[1] [2]", "nul", "\"\x01\"",
					   "\"\xc3\"", "{\"a\"}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(jscan_value(bad[i], strlen(bad[i]), 32, 100, &v, &pos, &why) == JSCAN_SYNTAX,
			      "[%s]", bad[i]);
	ck_assert_int_eq(jscan_value("[[[]]]", 6, 2, 100, &v, &pos, &why), JSCAN_DEPTH);
	ck_assert_int_eq(jscan_value("[[[]]]", 6, 3, 100, &v, &pos, &why), JSCAN_OK);
	ck_assert_int_eq(jscan_value("[{\"a\":1},{\"b\":2}]", 17, 8, 1, &v, &pos, &why), JSCAN_KEYS);
}
END_TEST

/* ================================================================ the session machine */

static struct eio_config conf(void)
{
	struct eio_config c;
	eio_config_defaults(&c);
	return c;
}

static void body_is(struct eio_session *s, const char *want)
{
	struct pbuf b = { 0 };
	eio_session_poll_body(s, &b);
	ck_assert_buf(&b, want);
	pbuf_free(&b);
}

/* Answers the held GET (the handshake's), whatever it carries. */
static void drain(struct eio_session *s)
{
	struct pbuf b = { 0 };
	eio_session_poll_body(s, &b);
	ck_assert(b.len > 0);
	pbuf_free(&b);
}

static unsigned post(struct eio_session *s, const char *text, uint64_t now,
		     struct eio_packet *msgs, size_t *n, char **keep)
{
	unsigned act = eio_session_post_begin(s, now);
	*keep = NULL;
	if (act)
		return act;
	*keep = strdup(text);
	return eio_session_on_post(s, *keep, strlen(text), now, msgs, 16, n);
}

static unsigned wsframe(struct eio_session *s, const char *text, uint64_t now,
			struct eio_packet *msg, bool *have)
{
	return eio_session_on_ws_frame(s, false, (const uint8_t *)text, strlen(text), now, msg, have);
}

static void ws_next_is(struct eio_session *s, const char *want)
{
	struct pbuf b = { 0 };
	bool bin;
	ck_assert_int_eq(eio_session_ws_next(s, &b, &bin), 1);
	ck_assert(!bin);
	ck_assert_buf(&b, want);
	pbuf_free(&b);
}

static unsigned send_text(struct eio_session *s, const char *text)
{
	struct eio_packet p = { EIO_MESSAGE, false, (const uint8_t *)text, strlen(text) };
	return eio_session_send(s, &p);
}

START_TEST(session_polling_handshake)
{
	struct eio_config c = conf();
	struct eio_session s;
	ck_assert_uint_eq(eio_session_init(&s, &c, "lv_VI97HAXpY6yYWAAAC", EIO_T_POLLING, 1000),
			  EIO_ACT_POLL_RESPOND);
	ck_assert_int_eq(s.state, EIO_S_OPENING);
	body_is(&s, "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
		"\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_int_eq(s.state, EIO_S_OPEN);
	ck_assert(!s.poll_held);
	/* the first ping is due an interval after the handshake */
	ck_assert_uint_eq(eio_session_deadline(&s), 1000 + 25000);
	eio_session_free(&s);
}
END_TEST

/* The sequence socket.io-client v4 performs with default options: polling
 * handshake, Socket.IO CONNECT over polling, then the WebSocket probe and
 * upgrade while a GET is held, with server messages queued across it. */
START_TEST(session_client_upgrade_sequence)
{
	struct eio_config c = conf();
	struct eio_session s;
	struct eio_packet msgs[16], m;
	size_t n;
	bool have;
	char *body;
	uint64_t t = 0;

	ck_assert_uint_eq(eio_session_init(&s, &c, "sid1", EIO_T_POLLING, t), EIO_ACT_POLL_RESPOND);
	struct pbuf b = { 0 };
	eio_session_poll_body(&s, &b);
	ck_assert(b.len > 0 && b.data[0] == '0');
	pbuf_free(&b);

	/* POST 40 (CONNECT to "/"), answered "ok", one message up */
	ck_assert_uint_eq(post(&s, "40", t += 5, msgs, &n, &body), EIO_ACT_POST_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_span(msgs[0].data, msgs[0].len, "0");
	free(body);
	/* the Socket.IO layer answers; no GET is held yet */
	ck_assert_uint_eq(send_text(&s, "0{\"sid\":\"x\"}"), 0);
	ck_assert_uint_eq(eio_session_on_get(&s, t += 5), EIO_ACT_POLL_RESPOND);
	body_is(&s, "40{\"sid\":\"x\"}");
	/* the client polls again: held */
	ck_assert_uint_eq(eio_session_on_get(&s, t += 5), EIO_ACT_HOLD);
	ck_assert(s.poll_held);

	/* the WebSocket with the sid arrives and probes */
	ck_assert_uint_eq(eio_session_ws_attach(&s, t += 5), 0);
	ck_assert_int_eq(s.state, EIO_S_UPGRADING);
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, false, (const uint8_t *)"2probe", 6, t += 5),
			  EIO_ACT_PROBE_WRITE | EIO_ACT_POLL_RESPOND);
	/* the held GET is released with a noop */
	body_is(&s, "6");
	/* a message for the client during the upgrade: queued (the client
	 * has paused polling), the probe is not the transport yet */
	ck_assert_uint_eq(send_text(&s, "2[\"welcome\",{}]"), 0);
	/* "5": the WebSocket is the transport, the queue goes out on it */
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, false, (const uint8_t *)"5", 1, t += 5),
			  EIO_ACT_WS_WRITABLE);
	ck_assert_int_eq(s.state, EIO_S_OPEN);
	ck_assert_int_eq(s.transport, EIO_T_WEBSOCKET);
	ws_next_is(&s, "42[\"welcome\",{}]");
	struct pbuf e = { 0 };
	ck_assert_int_eq(eio_session_ws_next(&s, &e, &have), 0);
	pbuf_free(&e);

	/* test suite: "should ignore HTTP requests with same sid after upgrade" */
	ck_assert_uint_eq(eio_session_on_get(&s, t), EIO_ACT_HTTP_ERROR);
	ck_assert_int_eq(s.http_status, 400);
	ck_assert_int_eq(s.http_err, EIO_HERR_BAD_REQUEST);
	ck_assert_uint_eq(eio_session_post_begin(&s, t), EIO_ACT_HTTP_ERROR);
	/* ... and WebSocket connections with the same sid */
	ck_assert_uint_eq(eio_session_ws_attach(&s, t), EIO_ACT_PROBE_CLOSE);
	ck_assert_int_eq(s.state, EIO_S_OPEN);

	/* traffic now flows on the WebSocket, both ways */
	ck_assert_uint_eq(wsframe(&s, "42[\"hello\"]", t, &m, &have), 0);
	ck_assert(have);
	ck_assert_span(m.data, m.len, "2[\"hello\"]");
	ck_assert_uint_eq(send_text(&s, "2[\"x\"]"), EIO_ACT_WS_WRITABLE);
	ws_next_is(&s, "42[\"x\"]");
	/* heartbeat continues on the WebSocket */
	ck_assert_uint_eq(eio_session_tick(&s, 25000), EIO_ACT_WS_WRITABLE);
	ws_next_is(&s, "2");
	ck_assert_uint_eq(wsframe(&s, "3", 25010, &m, &have), 0);
	ck_assert(!have);
	ck_assert(!s.awaiting_pong);
	ck_assert_uint_eq(eio_session_deadline(&s), 25010 + 25000);
	/* the WebSocket closes: the session is gone */
	ck_assert_uint_eq(eio_session_on_ws_gone(&s), EIO_ACT_CLOSE);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_CLIENT);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_upgrade_get_after_probe)
{
	/* a GET that arrives after "3probe" is answered at once */
	struct eio_config c = conf();
	struct eio_session s;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(eio_session_ws_attach(&s, 1), 0);
	/* probing, not probed yet: a GET is held as usual */
	ck_assert_uint_eq(eio_session_on_get(&s, 2), EIO_ACT_HOLD);
	body_is(&s, "6");
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, false, (const uint8_t *)"2probe", 6, 3),
			  EIO_ACT_PROBE_WRITE);
	ck_assert_uint_eq(eio_session_on_get(&s, 4), EIO_ACT_POLL_RESPOND);
	body_is(&s, "6");
	/* queued packets go with such a GET rather than a noop */
	send_text(&s, "2[\"a\"]");
	ck_assert_uint_eq(eio_session_on_get(&s, 5), EIO_ACT_POLL_RESPOND);
	body_is(&s, "42[\"a\"]");
	/* "5" before the edge answered a GET: the GET gets a noop, and what
	 * was queued meanwhile goes out on the WebSocket instead */
	ck_assert_uint_eq(eio_session_on_get(&s, 6), EIO_ACT_POLL_RESPOND);
	send_text(&s, "2[\"b\"]");
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, false, (const uint8_t *)"5", 1, 8),
			  EIO_ACT_POLL_RESPOND | EIO_ACT_WS_WRITABLE);
	body_is(&s, "6");
	ck_assert_int_eq(s.transport, EIO_T_WEBSOCKET);
	ws_next_is(&s, "42[\"b\"]");
	eio_session_free(&s);
}
END_TEST

START_TEST(session_upgrade_failures)
{
	struct eio_config c = conf();
	struct eio_session s;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	/* a wrong first frame on the probe: it is closed, polling goes on */
	ck_assert_uint_eq(eio_session_ws_attach(&s, 1), 0);
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, false, (const uint8_t *)"2", 1, 2),
			  EIO_ACT_PROBE_CLOSE);
	ck_assert_int_eq(s.state, EIO_S_OPEN);
	ck_assert_int_eq(s.transport, EIO_T_POLLING);
	ck_assert_uint_eq(eio_session_on_get(&s, 3), EIO_ACT_HOLD);
	body_is(&s, "6");
	/* a second WebSocket while one probes: refused */
	ck_assert_uint_eq(eio_session_ws_attach(&s, 4), 0);
	ck_assert_uint_eq(eio_session_ws_attach(&s, 5), EIO_ACT_PROBE_CLOSE);
	ck_assert_int_eq(s.http_err, EIO_HERR_BAD_REQUEST);
	/* the probe goes away: back to polling */
	ck_assert_uint_eq(eio_session_on_probe_gone(&s), 0);
	ck_assert_int_eq(s.state, EIO_S_OPEN);
	/* an upgrade that never finishes times out */
	ck_assert_uint_eq(eio_session_ws_attach(&s, 100), 0);
	ck_assert_uint_eq(eio_session_deadline(&s), 100 + c.upgrade_timeout_ms);
	ck_assert_uint_eq(eio_session_tick(&s, 100 + c.upgrade_timeout_ms - 1), 0);
	ck_assert_uint_eq(eio_session_tick(&s, 100 + c.upgrade_timeout_ms), EIO_ACT_PROBE_CLOSE);
	ck_assert_int_eq(s.state, EIO_S_OPEN);
	/* a binary frame as probe: closed */
	ck_assert_uint_eq(eio_session_ws_attach(&s, 20000), 0);
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, true, (const uint8_t *)"2probe", 6, 20001),
			  EIO_ACT_PROBE_CLOSE);
	/* "5" without a probe is accepted, as by the reference */
	ck_assert_uint_eq(eio_session_ws_attach(&s, 20002), 0);
	ck_assert_uint_eq(eio_session_on_probe_frame(&s, false, (const uint8_t *)"5", 1, 20003), 0);
	ck_assert_int_eq(s.transport, EIO_T_WEBSOCKET);
	eio_session_free(&s);

	/* a session that is closed: the sid is unknown */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	eio_session_on_http_gone(&s);
	ck_assert_uint_eq(eio_session_ws_attach(&s, 1), EIO_ACT_PROBE_CLOSE);
	ck_assert_int_eq(s.http_err, EIO_HERR_UNKNOWN_SID);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_heartbeat_polling)
{
	/* the conformance server's values: pingInterval 300, pingTimeout 200 */
	struct eio_config c = conf();
	c.ping_interval_ms = 300;
	c.ping_timeout_ms = 200;
	struct eio_session s;
	struct eio_packet msgs[16];
	size_t n;
	char *body;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,"
		"\"pingTimeout\":200,\"maxPayload\":1000000}");
	/* test suite: "should send ping/pong packets", three rounds */
	uint64_t t = 0;
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(eio_session_on_get(&s, t + 1), EIO_ACT_HOLD);
		ck_assert_uint_eq(eio_session_deadline(&s), t + 300);
		ck_assert_uint_eq(eio_session_tick(&s, t + 299), 0);
		/* the ping releases the held GET */
		ck_assert_uint_eq(eio_session_tick(&s, t + 300), EIO_ACT_POLL_RESPOND);
		body_is(&s, "2");
		ck_assert_uint_eq(eio_session_deadline(&s), t + 300 + 200);
		ck_assert_uint_eq(post(&s, "3", t + 310, msgs, &n, &body), EIO_ACT_POST_OK);
		ck_assert_uint_eq(n, 0);
		free(body);
		t += 310;
	}
	eio_session_free(&s);

	/* test suite: "should close the session upon ping timeout" */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,"
		"\"pingTimeout\":200,\"maxPayload\":1000000}");
	ck_assert_uint_eq(eio_session_tick(&s, 300), 0); /* no GET held: the ping waits */
	ck_assert_uint_eq(eio_session_tick(&s, 499), 0);
	ck_assert_uint_eq(eio_session_tick(&s, 500), EIO_ACT_CLOSE);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_PING_TIMEOUT);
	ck_assert_str_eq(eio_close_reason_str(s.close_reason), "ping timeout");
	/* the next GET: 400 */
	ck_assert_uint_eq(eio_session_on_get(&s, 501), EIO_ACT_HTTP_ERROR);
	ck_assert_int_eq(s.http_err, EIO_HERR_UNKNOWN_SID);
	ck_assert_int_eq(s.http_status, 400);
	ck_assert_uint_eq(eio_session_deadline(&s), UINT64_MAX);
	eio_session_free(&s);

	/* a ping timeout while a GET is held: it is answered "1" */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,"
		"\"pingTimeout\":200,\"maxPayload\":1000000}");
	eio_session_tick(&s, 300);
	eio_session_on_get(&s, 301);
	body_is(&s, "2");
	eio_session_on_get(&s, 302);
	ck_assert_uint_eq(eio_session_tick(&s, 500), EIO_ACT_CLOSE | EIO_ACT_POLL_RESPOND);
	body_is(&s, "1");
	eio_session_free(&s);
}
END_TEST

START_TEST(session_one_ping_queued)
{
	/* a client that answers pings it has not polled for does not grow
	 * the queue: one ping waits at most */
	struct eio_config c = conf();
	c.ping_interval_ms = 300;
	c.ping_timeout_ms = 200;
	struct eio_session s;
	struct eio_packet msgs[16];
	size_t n;
	char *body;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	drain(&s);
	for (uint64_t t = 300; t < 3000; t += 300) {
		eio_session_tick(&s, t);
		ck_assert_uint_eq(post(&s, "3", t, msgs, &n, &body), EIO_ACT_POST_OK);
		free(body);
	}
	ck_assert_uint_eq(s.q_packets, 1);
	ck_assert_uint_eq(eio_session_on_get(&s, 3000), EIO_ACT_POLL_RESPOND);
	body_is(&s, "2");
	ck_assert_uint_eq(s.q_packets, 0);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_client_ping_refused)
{
	/* v4 pings go server to client: a client ping closes */
	struct eio_config c = conf();
	struct eio_session s;
	struct eio_packet msgs[16];
	size_t n;
	char *body;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(post(&s, "40\x1e" "2", 1, msgs, &n, &body), EIO_ACT_POST_OK | EIO_ACT_CLOSE);
	ck_assert_uint_eq(n, 0); /* nothing delivered from a payload that closed */
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_PARSE_ERROR);
	free(body);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_client_close)
{
	struct eio_config c = conf();
	struct eio_session s;
	struct eio_packet msgs[16], m;
	size_t n;
	bool have;
	char *body;
	/* test suite: "should forcefully close the session" (polling): a
	 * held GET and a POST "1" at once; the GET gets a noop, the next
	 * GET a 400 */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(eio_session_on_get(&s, 1), EIO_ACT_HOLD);
	ck_assert_uint_eq(post(&s, "1", 2, msgs, &n, &body),
			  EIO_ACT_POST_OK | EIO_ACT_CLOSE | EIO_ACT_POLL_RESPOND);
	free(body);
	body_is(&s, "6");
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_CLIENT);
	ck_assert_uint_eq(eio_session_on_get(&s, 3), EIO_ACT_HTTP_ERROR);
	ck_assert_int_eq(s.http_err, EIO_HERR_UNKNOWN_SID);
	eio_session_free(&s);

	/* packets after the close in the same payload are not delivered */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	drain(&s);
	ck_assert_uint_eq(post(&s, "40\x1e" "1\x1e" "42[\"x\"]", 1, msgs, &n, &body),
			  EIO_ACT_POST_OK | EIO_ACT_CLOSE);
	ck_assert_uint_eq(n, 0);
	free(body);
	eio_session_free(&s);

	/* the WebSocket form: "1" closes */
	eio_session_init(&s, &c, "s", EIO_T_WEBSOCKET, 0);
	ws_next_is(&s, "0{\"sid\":\"s\",\"upgrades\":[],\"pingInterval\":25000,"
		   "\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(wsframe(&s, "1", 1, &m, &have), EIO_ACT_CLOSE);
	ck_assert(!have);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_overlap)
{
	struct eio_config c = conf();
	struct eio_session s;
	/* two GETs at once: the second gets 400, the session closes and
	 * the first is answered with a close packet */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(eio_session_on_get(&s, 1), EIO_ACT_HOLD);
	ck_assert_uint_eq(eio_session_on_get(&s, 2),
			  EIO_ACT_HTTP_ERROR | EIO_ACT_CLOSE | EIO_ACT_POLL_RESPOND);
	ck_assert_int_eq(s.http_err, EIO_HERR_BAD_REQUEST);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_TRANSPORT_ERROR);
	body_is(&s, "1");
	eio_session_free(&s);

	/* two POSTs at once */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(eio_session_post_begin(&s, 1), 0);
	ck_assert_uint_eq(eio_session_post_begin(&s, 2), EIO_ACT_HTTP_ERROR | EIO_ACT_CLOSE);
	eio_session_free(&s);

	/* a held GET whose client went away */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	eio_session_on_get(&s, 1);
	ck_assert_uint_eq(eio_session_on_http_gone(&s), EIO_ACT_CLOSE);
	ck_assert(!s.poll_held);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_post_errors)
{
	struct eio_config c = conf();
	c.max_payload = 10;
	c.max_packets_per_payload = 2;
	struct eio_session s;
	struct eio_packet msgs[16];
	size_t n;
	char *body;
	/* maxPayload: 10 bytes pass, 11 do not (413, the session closes) */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	ck_assert_uint_eq(post(&s, "4123456789", 1, msgs, &n, &body), EIO_ACT_POST_OK);
	ck_assert_uint_eq(n, 1);
	free(body);
	ck_assert_uint_eq(post(&s, "41234567890", 2, msgs, &n, &body),
			  EIO_ACT_HTTP_ERROR | EIO_ACT_CLOSE | EIO_ACT_POLL_RESPOND);
	ck_assert_int_eq(s.http_status, 413);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_TOO_LARGE);
	free(body);
	eio_session_free(&s);
	/* packets per payload: 2 pass, 3 do not (400 code 3) */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	drain(&s);
	ck_assert_uint_eq(post(&s, "4a\x1e" "4b", 1, msgs, &n, &body), EIO_ACT_POST_OK);
	ck_assert_uint_eq(n, 2);
	free(body);
	ck_assert_uint_eq(post(&s, "4a\x1e" "4b\x1e" "3", 2, msgs, &n, &body),
			  EIO_ACT_HTTP_ERROR | EIO_ACT_CLOSE);
	ck_assert_int_eq(s.http_status, 400);
	ck_assert_int_eq(s.http_err, EIO_HERR_BAD_REQUEST);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_PARSE_ERROR);
	ck_assert_uint_eq(n, 0);
	free(body);
	eio_session_free(&s);
	/* a bad payload: 400, closed, nothing delivered */
	c.max_payload = 1000;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	drain(&s);
	ck_assert_uint_eq(post(&s, "40\x1e" "x", 1, msgs, &n, &body),
			  EIO_ACT_HTTP_ERROR | EIO_ACT_CLOSE);
	ck_assert_uint_eq(n, 0);
	free(body);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_post_many_packets)
{
	/* the default bound, 1024 packets in one POST: at it, and one past */
	struct eio_config c = conf();
	struct eio_session s;
	static struct eio_packet msgs[1100];
	size_t n;
	struct pbuf b = { 0 };
	for (int i = 0; i < 1024; i++) {
		if (i)
			pbuf_addc(&b, EIO_RS);
		pbuf_adds(&b, "42[\"e\"]");
	}
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	drain(&s);
	ck_assert_uint_eq(eio_session_post_begin(&s, 1), 0);
	char *body = malloc(b.len + 8);
	memcpy(body, b.data, b.len);
	ck_assert_uint_eq(eio_session_on_post(&s, body, b.len, 1, msgs, 1100, &n), EIO_ACT_POST_OK);
	ck_assert_uint_eq(n, 1024);
	ck_assert_span(msgs[1023].data, msgs[1023].len, "2[\"e\"]");
	pbuf_adds(&b, "\x1e" "3");
	body = realloc(body, b.len);
	memcpy(body, b.data, b.len);
	ck_assert_uint_eq(eio_session_post_begin(&s, 2), 0);
	ck_assert_uint_eq(eio_session_on_post(&s, body, b.len, 2, msgs, 1100, &n),
			  EIO_ACT_HTTP_ERROR | EIO_ACT_CLOSE);
	ck_assert_uint_eq(n, 0);
	free(body);
	pbuf_free(&b);
	eio_session_free(&s);
}
END_TEST

static int unrefs;
static void count_unref(void *ref)
{
	(void)ref;
	unrefs++;
}

START_TEST(session_queue_bounds)
{
	struct eio_config c = conf();
	c.queue_max_packets = 3;
	c.queue_max_bytes = 1000;
	struct eio_session s;
	/* packets: the open packet was taken; three fit, the fourth closes */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(send_text(&s, "2[\"a\"]"), 0);
	ck_assert_uint_eq(send_text(&s, "2[\"b\"]"), 0);
	ck_assert_uint_eq(send_text(&s, "2[\"c\"]"), 0);
	ck_assert_uint_eq(s.q_packets, 3);
	ck_assert_uint_eq(send_text(&s, "2[\"d\"]"), EIO_ACT_CLOSE);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_QUEUE_FULL);
	ck_assert_uint_eq(s.q_packets, 0);
	eio_session_free(&s);

	/* bytes: exactly 1000 fit, 1001 do not */
	c.queue_max_packets = 100;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	char *big = malloc(1001);
	memset(big, 'x', 1001);
	struct eio_packet p = { EIO_MESSAGE, false, (const uint8_t *)big, 600 };
	ck_assert_uint_eq(eio_session_send(&s, &p), 0);
	p.len = 400;
	ck_assert_uint_eq(eio_session_send(&s, &p), 0);
	ck_assert_uint_eq(s.q_bytes, 1000);
	p.len = 1;
	ck_assert_uint_eq(eio_session_send(&s, &p), EIO_ACT_CLOSE);
	eio_session_free(&s);
	/* both bounds at once: the first one reached closes */
	c.queue_max_packets = 2;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	p.len = 500;
	ck_assert_uint_eq(eio_session_send(&s, &p), 0);
	ck_assert_uint_eq(eio_session_send(&s, &p), 0);
	p.len = 0;
	ck_assert_uint_eq(eio_session_send(&s, &p), EIO_ACT_CLOSE);
	eio_session_free(&s);
	free(big);

	/* shared data is released exactly once on every path */
	unrefs = 0;
	c.queue_max_packets = 1;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	struct eio_packet r = { EIO_MESSAGE, false, (const uint8_t *)"2[\"r\"]", 6 };
	ck_assert_uint_eq(eio_session_send_ref(&s, &r, count_unref, NULL), 0);
	ck_assert_int_eq(unrefs, 0);
	eio_session_on_get(&s, 1);
	body_is(&s, "42[\"r\"]");                        /* delivered */
	ck_assert_int_eq(unrefs, 1);
	eio_session_send_ref(&s, &r, count_unref, NULL);  /* queued ... */
	ck_assert_uint_eq(eio_session_send_ref(&s, &r, count_unref, NULL), EIO_ACT_CLOSE); /* refused */
	ck_assert_int_eq(unrefs, 3);                      /* ... and dropped by the close */
	eio_session_send_ref(&s, &r, count_unref, NULL);  /* after the close */
	ck_assert_int_eq(unrefs, 4);
	eio_session_free(&s);
	c.queue_max_packets = 5;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	ck_assert_uint_eq(eio_session_send_ref(&s, &r, count_unref, NULL), EIO_ACT_POLL_RESPOND);
	ck_assert_int_eq(unrefs, 4);
	eio_session_free(&s);                             /* at free */
	ck_assert_int_eq(unrefs, 5);
}
END_TEST

START_TEST(session_poll_body_split)
{
	/* a GET body holds at most maxPayload bytes; the rest waits */
	struct eio_config c = conf();
	c.max_payload = 1000;
	struct eio_session s;
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	struct pbuf b = { 0 };
	eio_session_poll_body(&s, &b);
	pbuf_free(&b);
	char *big = malloc(450);
	memset(big, 'x', 450);
	struct eio_packet p = { EIO_MESSAGE, false, (const uint8_t *)big, 450 };
	eio_session_send(&s, &p);
	eio_session_send(&s, &p);
	eio_session_send(&s, &p);
	ck_assert_uint_eq(eio_session_on_get(&s, 1), EIO_ACT_POLL_RESPOND);
	eio_session_poll_body(&s, &b);
	ck_assert_uint_eq(b.len, 451 + 1 + 451);
	ck_assert_int_eq(b.data[451], EIO_RS);
	pbuf_reset(&b);
	ck_assert_uint_eq(eio_session_on_get(&s, 2), EIO_ACT_POLL_RESPOND);
	eio_session_poll_body(&s, &b);
	ck_assert_uint_eq(b.len, 451);
	pbuf_reset(&b);
	/* one packet larger than maxPayload still goes, alone */
	char *huge = malloc(2000);
	memset(huge, 'y', 2000);
	p.data = (const uint8_t *)huge;
	p.len = 2000;
	eio_session_send(&s, &p);
	eio_session_on_get(&s, 3);
	eio_session_poll_body(&s, &b);
	ck_assert_uint_eq(b.len, 2001);
	pbuf_reset(&b);
	/* binary goes as b + base64 */
	struct eio_packet bin = { EIO_MESSAGE, true, (const uint8_t *)"\x01\x02\x03\x04", 4 };
	eio_session_send(&s, &bin);
	send_text(&s, "2[\"a\"]");
	eio_session_on_get(&s, 4);
	eio_session_poll_body(&s, &b);
	ck_assert_buf(&b, "bAQIDBA==\x1e" "42[\"a\"]");
	pbuf_free(&b);
	free(big);
	free(huge);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_server_close)
{
	struct eio_config c = conf();
	struct eio_session s;
	/* polling, a GET held: queued packets and "1" on it */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	eio_session_on_get(&s, 1);
	ck_assert_uint_eq(send_text(&s, "1"), EIO_ACT_POLL_RESPOND);
	ck_assert_uint_eq(eio_session_close(&s, 2), EIO_ACT_POLL_RESPOND);
	struct pbuf b = { 0 };
	ck_assert_uint_eq(eio_session_poll_body(&s, &b), EIO_ACT_CLOSE);
	ck_assert_buf(&b, "41\x1e" "1");
	ck_assert_int_eq(s.state, EIO_S_CLOSED);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_SERVER);
	pbuf_free(&b);
	/* nothing is queued after a close */
	ck_assert_uint_eq(send_text(&s, "2[\"late\"]"), 0);
	ck_assert_uint_eq(s.q_packets, 0);
	eio_session_free(&s);

	/* polling, no GET held: the next GET takes it; none within an
	 * interval: closed by the clock */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ck_assert_uint_eq(eio_session_close(&s, 10), 0);
	ck_assert_int_eq(s.state, EIO_S_CLOSING);
	ck_assert_uint_eq(eio_session_close(&s, 11), 0); /* twice is once */
	ck_assert_uint_eq(eio_session_on_get(&s, 12), EIO_ACT_POLL_RESPOND);
	body_is(&s, "1");
	ck_assert_int_eq(s.state, EIO_S_CLOSED);
	eio_session_free(&s);
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	eio_session_close(&s, 10);
	ck_assert_uint_eq(eio_session_deadline(&s), 10 + 25000);
	ck_assert_uint_eq(eio_session_tick(&s, 10 + 24999), 0);
	ck_assert_uint_eq(eio_session_tick(&s, 10 + 25000), EIO_ACT_CLOSE);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_SERVER);
	eio_session_free(&s);

	/* WebSocket: flush, then close */
	eio_session_init(&s, &c, "s", EIO_T_WEBSOCKET, 0);
	send_text(&s, "2[\"bye\"]");
	ck_assert_uint_eq(eio_session_close(&s, 1), EIO_ACT_WS_WRITABLE);
	ws_next_is(&s, "0{\"sid\":\"s\",\"upgrades\":[],\"pingInterval\":25000,"
		   "\"pingTimeout\":20000,\"maxPayload\":1000000}");
	ws_next_is(&s, "42[\"bye\"]");
	bool bin;
	ck_assert_int_eq(eio_session_ws_next(&s, &b, &bin), -1);
	ck_assert_int_eq(s.state, EIO_S_CLOSED);
	eio_session_free(&s);

	/* closing during a probe closes the probe */
	eio_session_init(&s, &c, "s", EIO_T_POLLING, 0);
	body_is(&s, "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
		"\"pingTimeout\":20000,\"maxPayload\":1000000}");
	eio_session_ws_attach(&s, 1);
	ck_assert_uint_eq(eio_session_close(&s, 2), EIO_ACT_PROBE_CLOSE);
	eio_session_free(&s);
}
END_TEST

START_TEST(session_websocket_only)
{
	/* transports: ['websocket']: the open packet offers no upgrade */
	struct eio_config c = conf();
	c.max_payload = 16;
	struct eio_session s;
	struct eio_packet m;
	bool have;
	ck_assert_uint_eq(eio_session_init(&s, &c, "w", EIO_T_WEBSOCKET, 0), EIO_ACT_WS_WRITABLE);
	ws_next_is(&s, "0{\"sid\":\"w\",\"upgrades\":[],\"pingInterval\":25000,"
		   "\"pingTimeout\":20000,\"maxPayload\":16}");
	ck_assert_int_eq(s.state, EIO_S_OPEN);
	/* polling requests with a WebSocket session's sid: 400 code 3 */
	ck_assert_uint_eq(eio_session_on_get(&s, 1), EIO_ACT_HTTP_ERROR);
	ck_assert_int_eq(s.http_err, EIO_HERR_BAD_REQUEST);
	/* binary frames are binary messages */
	ck_assert_uint_eq(eio_session_on_ws_frame(&s, true, (const uint8_t *)"\x01\x02", 2, 2,
						  &m, &have), 0);
	ck_assert(have && m.binary && m.len == 2);
	/* and go out as binary frames */
	struct eio_packet bin = { EIO_MESSAGE, true, (const uint8_t *)"\x01\x02\x03", 3 };
	ck_assert_uint_eq(eio_session_send(&s, &bin), EIO_ACT_WS_WRITABLE);
	struct pbuf b = { 0 };
	bool isbin = false;
	ck_assert_int_eq(eio_session_ws_next(&s, &b, &isbin), 1);
	ck_assert(isbin);
	ck_assert_uint_eq(b.len, 3);
	pbuf_free(&b);
	/* open/upgrade/noop from a client are ignored */
	ck_assert_uint_eq(wsframe(&s, "6", 3, &m, &have), 0);
	ck_assert_uint_eq(wsframe(&s, "5", 3, &m, &have), 0);
	ck_assert(!have);
	/* a frame of maxPayload passes, one byte more closes */
	ck_assert_uint_eq(wsframe(&s, "4123456789012345", 4, &m, &have), 0);
	ck_assert(have);
	ck_assert_uint_eq(wsframe(&s, "41234567890123456", 5, &m, &have), EIO_ACT_CLOSE);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_TOO_LARGE);
	eio_session_free(&s);
	/* a bad packet closes */
	eio_session_init(&s, &c, "w", EIO_T_WEBSOCKET, 0);
	ck_assert_uint_eq(wsframe(&s, "x", 1, &m, &have), EIO_ACT_CLOSE);
	ck_assert_int_eq(s.close_reason, EIO_CLOSE_PARSE_ERROR);
	eio_session_free(&s);
	/* test suite: "should close the session upon ping timeout" (WebSocket) */
	c.ping_interval_ms = 300;
	c.ping_timeout_ms = 200;
	eio_session_init(&s, &c, "w", EIO_T_WEBSOCKET, 0);
	ck_assert_uint_eq(eio_session_tick(&s, 300), EIO_ACT_WS_WRITABLE);
	ck_assert_uint_eq(eio_session_tick(&s, 400), 0);
	ck_assert_uint_eq(eio_session_tick(&s, 500), EIO_ACT_CLOSE);
	eio_session_free(&s);
}
END_TEST

/* ================================================================ suite */

static Suite *sio_suite(void)
{
	Suite *s = suite_create("sio");
	TCase *tc = tcase_create("eio");
	tcase_add_test(tc, eio_packet_types);
	tcase_add_test(tc, eio_packet_invalid);
	tcase_add_test(tc, eio_binary_frame);
	tcase_add_test(tc, eio_payload_doc_example);
	tcase_add_test(tc, eio_payload_single_and_control);
	tcase_add_test(tc, eio_payload_invalid);
	tcase_add_test(tc, eio_payload_bounds);
	tcase_add_test(tc, eio_base64_roundtrip);
	tcase_add_test(tc, eio_open_packet);
	tcase_add_test(tc, eio_sid);
	tcase_add_test(tc, eio_http_errors);
	tcase_add_test(tc, eio_request_checks);
	suite_add_tcase(s, tc);
	tc = tcase_create("sio");
	tcase_add_loop_test(tc, sio_doc_examples, 0, sizeof(sio_examples) / sizeof(*sio_examples));
	tcase_add_test(tc, sio_layered_sample_session);
	tcase_add_test(tc, sio_encoders);
	tcase_add_test(tc, sio_invalid);
	tcase_add_test(tc, sio_edge_valid);
	tcase_add_test(tc, sio_json_bounds);
	tcase_add_test(tc, sio_array_split);
	tcase_add_test(tc, sio_lazy_events);
	tcase_add_test(tc, sio_decoder_binary_event);
	tcase_add_test(tc, sio_decoder_binary_ack_and_empty);
	tcase_add_test(tc, sio_decoder_out_of_order);
	tcase_add_test(tc, sio_decoder_limits);
	tcase_add_test(tc, sio_decoder_idle_memory);
	tcase_add_test(tc, sio_bin_wrap_placeholders);
	tcase_add_test(tc, sio_bin_unwrap_wrappers);
	tcase_add_test(tc, sio_encode_auto_binary);
	tcase_add_test(tc, jscan_any_value);
	suite_add_tcase(s, tc);
	tc = tcase_create("session");
	tcase_add_test(tc, session_polling_handshake);
	tcase_add_test(tc, session_client_upgrade_sequence);
	tcase_add_test(tc, session_upgrade_get_after_probe);
	tcase_add_test(tc, session_upgrade_failures);
	tcase_add_test(tc, session_heartbeat_polling);
	tcase_add_test(tc, session_one_ping_queued);
	tcase_add_test(tc, session_client_ping_refused);
	tcase_add_test(tc, session_client_close);
	tcase_add_test(tc, session_overlap);
	tcase_add_test(tc, session_post_errors);
	tcase_add_test(tc, session_post_many_packets);
	tcase_add_test(tc, session_queue_bounds);
	tcase_add_test(tc, session_poll_body_split);
	tcase_add_test(tc, session_server_close);
	tcase_add_test(tc, session_websocket_only);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sio_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
