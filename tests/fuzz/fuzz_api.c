/*
 * fuzz_api.c - libFuzzer harness for the HTTP API's request decoding
 * (protocol/apireq.c), no sockets. The first input byte picks the target:
 *   0: a JSON body (api_req_body), the rest of the input;
 *   1: a query string (api_req_query);
 *   2: a chunked body (api_chunked_feed), fed whole and fed in two pieces
 *      split where the second byte says.
 *
 * Invariants checked (abort() on violation):
 *  - body: the decoder agrees with jansson (an accepted body is a JSON
 *    object to jansson; an object with unique top-level keys that jansson
 *    reads is not called bad_json); every field present is in its range
 *    (rooms valid and at most API_ROOMS_MAX, names valid, code 4000-4999,
 *    key 1-64 bytes, reason at most 123 bytes); data points into the input
 *    and compacts to valid JSON; a failure's message, sent as the API's
 *    error body, is valid JSON;
 *  - query: an accepted room, prefix, cursor are valid; limit in range;
 *  - chunked: the result and the decoded bytes do not depend on how the
 *    input was split.
 *
 * Also built without libFuzzer by tests/unit/meson.build (with replay.c)
 * to replay the seed corpus tests/fuzz/corpus/api as a regression test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "apireq.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_api: invariant failed: %s (line %d)\n", #cond, __LINE__); \
	abort(); } } while (0)

static json_t *load(const char *text, size_t len, size_t flags, int *overflow)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, flags | JSON_ALLOW_NUL, &jerr);

	*overflow = 0;
	if (!v && json_error_code(&jerr) == json_error_numeric_overflow) {
		v = json_loadb(text, len, flags | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
		if (!v && json_error_code(&jerr) == json_error_numeric_overflow)
			*overflow = 1; /* beyond a double: valid JSON jansson cannot hold */
	}
	if (!v && json_error_code(&jerr) == json_error_null_byte_in_key)
		*overflow = 1;
	return v;
}

static void check_error_body(const struct api_req *req, enum proto_err e)
{
	struct pbuf b = { 0 };
	int ov;

	CHECK(e > PROTO_OK && e < PROTO_ERR_COUNT);
	CHECK(memchr(req->errmsg, '\0', sizeof(req->errmsg)) != NULL);
	/* what api_fail() sends */
	pbuf_adds(&b, "{\"ok\":false,\"error\":{\"code\":\"");
	pbuf_adds(&b, proto_err_code(e));
	pbuf_adds(&b, "\",\"message\":");
	pbuf_add_jstr(&b, req->errmsg, strlen(req->errmsg));
	pbuf_adds(&b, "}}");
	json_t *v = load(b.data, b.len, 0, &ov);
	CHECK(v != NULL);
	json_decref(v);
	pbuf_free(&b);
}

static void fuzz_body(const char *in, size_t n)
{
	struct api_req req;
	enum proto_err e = api_req_body(in, n, &req);
	int ov;
	json_t *j = load(in, n, JSON_DECODE_ANY, &ov);

	if (e == PROTO_EBAD_JSON && j && json_is_object(j) && !memchr(in, '\0', n)) {
		json_error_t jerr;
		json_t *u = json_loadb(in, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
		if (u) {
			fprintf(stderr, "fuzz_api: jansson reads what the decoder calls bad_json (%s)\n",
				req.errmsg);
			abort();
		}
	}
	if (e == PROTO_OK)
		CHECK((j && json_is_object(j)) || ov);
	json_decref(j);
	if (e != PROTO_OK) {
		check_error_body(&req, e);
		api_req_clear(&req);
		return;
	}
	if (req.has & API_F_ROOM)
		CHECK(proto_room_valid(req.room, req.room_len));
	if (req.has & API_F_ROOMS) {
		CHECK(req.nrooms >= 1 && req.nrooms <= API_ROOMS_MAX);
		for (size_t i = 0; i < req.nrooms; i++)
			CHECK(proto_room_valid(req.rooms[i].name, req.rooms[i].len));
	}
	if (req.has & API_F_FROM)
		CHECK(proto_name_valid(req.from, req.from_len));
	if (req.has & API_F_USER)
		CHECK(proto_name_valid(req.user, req.user_len));
	if (req.has & API_F_KEY)
		CHECK(req.key_len >= 1 && req.key_len <= API_KEY_MAX);
	if (req.has & API_F_REASON)
		CHECK(req.reason_len <= API_REASON_MAX);
	if (req.has & API_F_CODE)
		CHECK(req.code >= 4000 && req.code <= 4999);
	if (req.has & API_F_SEQ)
		CHECK(req.seq >= 1 && req.seq <= PROTO_ID_MAX);
	if (req.has & API_F_DATA) {
		struct pbuf b = { 0 };
		CHECK(req.data_raw >= in && req.data_raw + req.data_raw_len <= in + n);
		pbuf_add_json_compact(&b, req.data_raw, req.data_raw_len);
		json_t *v = load(b.data, b.len, JSON_DECODE_ANY, &ov);
		CHECK(v != NULL || ov);
		json_decref(v);
		pbuf_free(&b);
	}
	api_req_clear(&req);
}

static void fuzz_query(const char *in, size_t n)
{
	struct api_req req;
	api_req_init(&req);
	enum proto_err e = api_req_query(in, n, 100, &req);

	if (e != PROTO_OK) {
		check_error_body(&req, e);
		return;
	}
	if (req.has & API_F_ROOM)
		CHECK(proto_room_valid(req.room, req.room_len));
	if (req.has & API_F_LIMIT)
		CHECK(req.limit >= 1 && req.limit <= 100);
	if (req.has & API_F_BEFORE)
		CHECK(req.before >= 1 && req.before <= PROTO_ID_MAX);
	if (req.has & API_F_CURSOR)
		CHECK(req.cursor_len == 0 || proto_room_valid(req.cursor, req.cursor_len));
	CHECK(req.prefix_len <= API_PREFIX_MAX);
}

static void collect(void *arg, const char *p, size_t n)
{
	pbuf_add(arg, p, n);
}

static enum api_chunk_rc feed_all(const char *in, size_t n, size_t split, struct pbuf *out,
				  size_t *consumed)
{
	struct api_chunked d = { 0 };
	size_t used;
	enum api_chunk_rc rc = api_chunked_feed(&d, in, split, &used, collect, out);

	CHECK(used <= split);
	*consumed = used;
	if (rc != API_CHUNK_MORE)
		return rc;
	rc = api_chunked_feed(&d, in + split, n - split, &used, collect, out);
	CHECK(used <= n - split);
	*consumed += used;
	return rc;
}

static void fuzz_chunked(const char *in, size_t n)
{
	if (n < 1)
		return;
	size_t split = (unsigned char)in[0] % n;
	in++, n--;
	if (split > n)
		split = n;
	struct pbuf a = { 0 }, b = { 0 };
	size_t ua, ub;
	enum api_chunk_rc ra = feed_all(in, n, n, &a, &ua);
	enum api_chunk_rc rb = feed_all(in, n, split, &b, &ub);

	CHECK(ra == rb);
	CHECK(a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len)));
	if (ra == API_CHUNK_DONE)
		CHECK(ua == ub);
	CHECK(a.len <= n);
	pbuf_free(&a);
	pbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;

	switch (data[0] % 3) {
	case 0: fuzz_body(in, n); break;
	case 1: fuzz_query(in, n); break;
	default: fuzz_chunked(in, n); break;
	}
	return 0;
}
