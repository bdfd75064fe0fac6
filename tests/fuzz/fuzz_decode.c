/*
 * fuzz_decode.c - libFuzzer harness for the protocol decoder: bytes go
 * straight into proto_decode(), as one WebSocket text frame would.
 *
 * Invariants checked (abort() on violation, so libFuzzer keeps the input):
 *  - the decoder (a one-pass scanner, protocol/json.c) agrees with jansson:
 *    a frame it accepts parses with jansson as an object, and one jansson
 *    parses as an object (top-level keys unique, within the depth and key
 *    bounds) is not refused as bad_json;
 *  - a failure leaves a NUL-terminated errmsg, and the error
 *    frame built from it (proto_enc_failure) is valid JSON: the message goes
 *    to the client, and jansson, like a browser, refuses invalid UTF-8;
 *  - a success has a valid room (name for hello), limit in 1..100, id and
 *    since/before in range;
 *  - a publish's proto_data_text() is valid JSON equal to the decoded data,
 *    and the message frame built around it parses too.
 *
 * Also built without libFuzzer by tests/unit/meson.build (with replay.c) to
 * replay the seed corpus as a regression test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_decode: invariant failed: %s (line %d)\n", #cond, __LINE__); \
	abort(); } } while (0)

/* Parses text as any JSON value the way proto_decode parses a frame
 * (NUL allowed, integers beyond 64 bits read as reals). *as_real is set
 * when that fallback was needed. */
static json_t *load_any(const char *text, size_t len, int *as_real)
{
	json_error_t jerr;
	size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	json_t *v = json_loadb(text, len, flags, &jerr);

	*as_real = 0;
	if (!v && json_error_code(&jerr) == json_error_numeric_overflow) {
		*as_real = 1;
		v = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &jerr);
		/* a real beyond a double (1e400): valid JSON that jansson will
		 * not hold; the decoder forwards it as text */
		if (!v && json_error_code(&jerr) == json_error_numeric_overflow)
			*as_real = 2;
	}
	/* An object key with \u0000 is valid JSON that jansson cannot hold
	 * (its keys are C strings): treated like the case above. */
	if (!v && json_error_code(&jerr) == json_error_null_byte_in_key)
		*as_real = 2;
	return v;
}

/* 1 if jansson, told to refuse duplicate keys, still reads the frame:
 * then no key repeats at any level, the top level included. */
static int unique_top_keys(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES |
			       JSON_DECODE_INT_AS_REAL, &jerr);
	json_decref(v);
	return v != NULL;
}

static void check_failure(const struct proto_cmd *cmd, enum proto_err e)
{
	struct pbuf b = { 0 };
	int as_real;

	CHECK(e > PROTO_OK && e < PROTO_ERR_COUNT);
	CHECK(memchr(cmd->errmsg, '\0', sizeof(cmd->errmsg)) != NULL);
	CHECK(cmd->id <= PROTO_ID_MAX);
	proto_enc_failure(&b, cmd->id, e, cmd->errmsg);
	json_t *v = load_any(b.data, b.len, &as_real);
	if (!v)
		fprintf(stderr, "fuzz_decode: error frame is not valid JSON: %.*s\n",
			(int)b.len, b.data);
	CHECK(v != NULL);
	json_decref(v);
	pbuf_free(&b);
}

static void check_publish(const struct proto_cmd *cmd, const uint8_t *in, size_t size)
{
	struct pbuf b = { 0 }, m = { 0 };
	int as_real;

	CHECK(cmd->data_raw != NULL);
	CHECK((const uint8_t *)cmd->data_raw >= in &&
		      (const uint8_t *)cmd->data_raw + cmd->data_raw_len <= in + size);
	/* a prefix, so the text is appended to a non-empty buffer as in the server */
	pbuf_adds(&b, "x");
	proto_data_text(cmd, &b);
	json_t *v = load_any(b.data + 1, b.len - 1, &as_real);
	if (!v && as_real != 2)
		fprintf(stderr, "fuzz_decode: data text is not valid JSON: %.*s\n",
			(int)b.len - 1, b.data + 1);
	CHECK(v != NULL || as_real == 2);
	/* The data text means what jansson reads as the frame's data. */
	int frame_real;
	json_t *whole = load_any((const char *)in, size, &frame_real);
	if (!v || !whole) {
		/* only a number beyond a double may stop jansson here */
		CHECK(as_real == 2 || frame_real == 2);
		json_decref(v);
		json_decref(whole);
		pbuf_free(&b);
		return;
	}
	CHECK(json_is_object(whole));
	json_t *jdata = json_object_get(whole, "data");
	if (jdata && !as_real && !frame_real && !json_equal(v, jdata)) {
		fprintf(stderr, "fuzz_decode: data text differs from data: %.*s\n",
			(int)b.len - 1, b.data + 1);
		abort();
	}
	json_decref(whole);
	json_decref(v);

	proto_enc_message(&m, cmd->room, cmd->room_len, 7, 1764158400123, "al\"ice", 6,
			  b.data + 1, b.len - 1);
	v = load_any(m.data, m.len, &as_real);
	CHECK((v != NULL && json_is_object(v)) || as_real == 2);
	json_decref(v);
	pbuf_free(&m);
	pbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_cmd cmd;
	enum proto_err e = proto_decode((const char *)data, size, &cmd);

	int as_real;
	json_t *j = load_any((const char *)data, size, &as_real);
	/* (jansson reads a raw NUL byte outside strings as the end of the
	 * text, then accepts "0\0}"; a NUL is never valid JSON, so such
	 * inputs are left out of the comparison.) */
	if (e == PROTO_EBAD_JSON && j && json_is_object(j) && json_object_size(j) > 0 &&
	    !memchr(data, '\0', size) &&
	    unique_top_keys((const char *)data, size)) {
		/* jansson read an object we called bad JSON: one of us is wrong
		 * (duplicate top-level keys are refused on purpose). */
		fprintf(stderr, "fuzz_decode: jansson accepts what the decoder calls bad_json (%s)\n",
			cmd.errmsg);
		abort();
	}
	if (e == PROTO_OK)
		CHECK((j != NULL && json_is_object(j)) || as_real == 2);
	if (e == PROTO_OK && cmd.type == PROTO_PUBLISH && cmd.key) {
		/* the idempotency key is the string jansson reads, 1-64 bytes */
		CHECK(cmd.key == cmd.key_buf && cmd.key_len >= 1 && cmd.key_len <= PROTO_PUBKEY_MAX);
		json_t *k = j && json_is_object(j) ? json_object_get(j, "key") : NULL;
		CHECK(!j || (json_is_string(k) && json_string_length(k) == cmd.key_len &&
			     memcmp(json_string_value(k), cmd.key, cmd.key_len) == 0));
	}
	json_decref(j);
	if (e != PROTO_OK) {
		check_failure(&cmd, e);
		return 0;
	}
	CHECK(cmd.id <= PROTO_ID_MAX);
	switch (cmd.type) {
	case PROTO_HELLO:
		/* a hello with a token only has no name */
		CHECK(!cmd.name || proto_name_valid(cmd.name, cmd.name_len));
		break;
	case PROTO_PING:
		break;
	case PROTO_REFRESH:
		/* the token is used in place: inside the input, no escapes */
		CHECK(cmd.token && cmd.token_len <= PROTO_TOKEN_MAX);
		CHECK((const uint8_t *)cmd.token > data &&
		      (const uint8_t *)cmd.token + cmd.token_len < data + size);
		CHECK(!memchr(cmd.token, '\\', cmd.token_len));
		break;
	case PROTO_JOIN:
	case PROTO_LEAVE:
	case PROTO_PUBLISH:
	case PROTO_HISTORY:
	case PROTO_PRESENCE:
		CHECK(proto_room_valid(cmd.room, cmd.room_len));
		break;
	case PROTO_DELETE:
		CHECK(proto_room_valid(cmd.room, cmd.room_len));
		CHECK(cmd.seq >= 1 && cmd.seq <= PROTO_ID_MAX);
		break;
	case PROTO_ERASE:
	case PROTO_UNBAN:
		CHECK(proto_name_valid(cmd.name, cmd.name_len));
		break;
	case PROTO_BAN:
		CHECK(proto_name_valid(cmd.name, cmd.name_len));
		CHECK(cmd.seconds >= 1 && cmd.seconds <= PROTO_BAN_SECONDS_MAX);
		if (cmd.reason) {
			/* it goes out in a close frame: short, no control bytes */
			CHECK(cmd.reason_len <= PROTO_REASON_MAX);
			for (size_t i = 0; i < cmd.reason_len; i++)
				CHECK((unsigned char)cmd.reason[i] >= 0x20 && cmd.reason[i] != 0x7f);
		}
		break;
	default:
		CHECK(!"unknown command type");
	}
	if (cmd.type == PROTO_JOIN)
		CHECK(!cmd.has_since || cmd.since <= PROTO_ID_MAX);
	if (cmd.type == PROTO_HISTORY) {
		CHECK(cmd.limit >= 1 && cmd.limit <= PROTO_HISTORY_MAX);
		CHECK(!cmd.has_before || (cmd.before >= 1 && cmd.before <= PROTO_ID_MAX));
	}
	if (cmd.type == PROTO_PUBLISH)
		check_publish(&cmd, data, size);
	if (cmd.type == PROTO_HELLO && cmd.name) {
		/* a name goes back out in message frames as "from" (a hello with
		 * only a token has none) */
		struct pbuf m = { 0 };
		proto_enc_message(&m, "r", 1, 0, -1, cmd.name, cmd.name_len, "null", 4);
		json_t *v = load_any(m.data, m.len, &as_real);
		CHECK(v != NULL);
		json_t *from = json_object_get(v, "from");
		CHECK(json_is_string(from) && json_string_length(from) == cmd.name_len &&
		      memcmp(json_string_value(from), cmd.name, cmd.name_len) == 0);
		json_decref(v);
		pbuf_free(&m);
	}
	proto_cmd_clear(&cmd);
	return 0;
}
