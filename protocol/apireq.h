/*
 * apireq.h - the HTTP API's request decoding (api_req_ prefix): JSON bodies
 * and query strings. No sockets: tests and tests/fuzz/fuzz_api.c feed bytes
 * straight in.
 *
 * One decoder serves every endpoint. It reads the fields any endpoint
 * knows (room, rooms, data, from, persist, key, user, code, reason, seq,
 * seconds, presence), checks the type and range of each one present, and
 * records which are present (API_F_* bits). Which fields an endpoint
 * requires is the endpoint's business (api_req_need()). Unknown fields are
 * ignored, as the protocol's decoder does, so a newer backend can talk to
 * an older server.
 *
 * Strings are unescaped into the request's own buffers; data stays the
 * text it was sent in (data_raw points into the body, which must outlive
 * the request). rooms is allocated (api_req_clear frees it).
 */
#ifndef PARLEY_APIREQ_H
#define PARLEY_APIREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "proto.h"

#define API_ROOMS_MAX   1000  /* rooms in one broadcast */
#define API_KEY_MAX     64    /* bytes of an idempotency key */
#define API_REASON_MAX  123   /* bytes of a close reason (a close frame carries 125) */
#define API_PREFIX_MAX  PROTO_ROOM_MAX
#define API_ROOMS_PAGE_DEFAULT 100
#define API_ROOMS_PAGE_MAX     1000

enum api_field {
	API_F_ROOM = 1 << 0,
	API_F_ROOMS = 1 << 1,
	API_F_DATA = 1 << 2,
	API_F_FROM = 1 << 3,
	API_F_PERSIST = 1 << 4,
	API_F_KEY = 1 << 5,
	API_F_USER = 1 << 6,
	API_F_CODE = 1 << 7,
	API_F_REASON = 1 << 8,
	API_F_SEQ = 1 << 9,
	API_F_SECONDS = 1 << 10,
	API_F_PRESENCE = 1 << 11,
	/* query-string parameters */
	API_F_BEFORE = 1 << 12,
	API_F_LIMIT = 1 << 13,
	API_F_PREFIX = 1 << 14,
	API_F_CURSOR = 1 << 15,
};

struct api_room {
	char name[PROTO_ROOM_MAX + 1];
	size_t len;
};

struct api_req {
	uint32_t has;                       /* API_F_* present */
	char room[PROTO_ROOM_MAX + 1];
	size_t room_len;
	struct api_room *rooms;             /* owned; nrooms entries */
	size_t nrooms;
	const char *data_raw;               /* data's text in the body */
	size_t data_raw_len;
	char from[4 * PROTO_NAME_MAX_CHARS + 1];
	size_t from_len;
	bool persist;                       /* default true */
	bool presence;                      /* default false */
	char key[API_KEY_MAX + 1];
	size_t key_len;
	char user[4 * PROTO_NAME_MAX_CHARS + 1];
	size_t user_len;
	uint32_t code;
	char reason[API_REASON_MAX + 1];
	size_t reason_len;
	uint64_t seq, seconds;
	uint64_t before;                    /* query */
	unsigned limit;                     /* query: 0 when absent */
	char prefix[API_PREFIX_MAX + 1];    /* query */
	size_t prefix_len;
	char cursor[PROTO_ROOM_MAX + 1];    /* query */
	size_t cursor_len;
	char errmsg[160];
};

/* Decodes a JSON body (an object). Returns PROTO_OK, or an error code
 * (bad_json, bad_request, bad_room, bad_name) with req->errmsg set.
 * Call api_req_clear() afterwards either way. */
enum proto_err api_req_body(const char *buf, size_t len, struct api_req *req);

/* Decodes a query string (what follows '?', may be NULL or empty):
 * room, before, limit, prefix, cursor, percent-decoded. limit_max bounds
 * limit (1..limit_max). Unknown parameters are ignored. */
enum proto_err api_req_query(const char *q, size_t len, unsigned limit_max, struct api_req *req);

/* Checks that every field in `need` is present: PROTO_OK, or bad_request
 * naming the first missing one. */
enum proto_err api_req_need(struct api_req *req, uint32_t need);

/*
 * Chunked request bodies (Transfer-Encoding: chunked). lws hands such a
 * body over with its chunk framing and never says where it ends, so the
 * edge decodes it here: feed every piece; the decoded bytes are passed to
 * out(arg, p, n). Returns API_CHUNK_MORE (feed more), API_CHUNK_DONE (the
 * last chunk and the trailer are in; *used says how many input bytes that
 * took), or API_CHUNK_BAD (malformed framing).
 */
enum api_chunk_rc { API_CHUNK_MORE, API_CHUNK_DONE, API_CHUNK_BAD };
struct api_chunked {
	int state;
	uint64_t left;          /* bytes of the current chunk still to come */
	unsigned digits;
	unsigned line;          /* bytes in the current trailer line */
};
enum api_chunk_rc api_chunked_feed(struct api_chunked *d, const char *in, size_t len,
				   size_t *used, void (*out)(void *arg, const char *p, size_t n),
				   void *arg);

void api_req_init(struct api_req *req);
void api_req_clear(struct api_req *req);

#endif
