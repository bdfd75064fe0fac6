/*
 * proto.h - Parley protocol v1: decoding client commands, encoding server
 * frames, validating names. No sockets here: tests and fuzzers feed bytes
 * straight into proto_decode().
 */
#ifndef PARLEY_PROTO_H
#define PARLEY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "errors.h"

#define PROTO_ID_MAX          9007199254740991ULL /* 2^53 - 1 */
#define PROTO_NAME_MAX_CHARS  32
#define PROTO_ROOM_MAX        128
#define PROTO_HISTORY_MAX     100
#define PROTO_HISTORY_DEFAULT 50
#define PROTO_TOKEN_MAX       4096
#define PROTO_DEPTH_MAX       32    /* nesting of arrays and objects in a frame */
#define PROTO_KEYS_MAX        4096  /* object members in a frame, all levels */
#define PROTO_PUBKEY_MAX      64    /* publish: idempotency key, bytes */
#define PROTO_REASON_MAX      120   /* bytes of a ban reason (fits a close frame) */
#define PROTO_BAN_SECONDS_MAX 315360000ULL /* ten years */

enum proto_type {
	PROTO_HELLO,
	PROTO_JOIN,
	PROTO_LEAVE,
	PROTO_PUBLISH,
	PROTO_HISTORY,
	PROTO_PRESENCE,
	PROTO_PING,
	PROTO_REFRESH,
	PROTO_DELETE,     /* {room, seq} */
	PROTO_ERASE,      /* {user}: name/name_len hold the user */
	PROTO_BAN,        /* {user, seconds, reason?} */
	PROTO_UNBAN,      /* {user} */
};

/* A decoded client command. room and name point into the command's own
 * buffers (NUL-terminated); token and data_raw point into the input, which
 * must outlive the command. Nothing is allocated. */
struct proto_cmd {
	enum proto_type type;
	uint64_t id;                 /* 0: the command carries no id */
	const char *room;
	size_t room_len;
	const char *name;            /* hello: NULL when only a token is given */
	size_t name_len;
	const char *token;           /* hello: an auth token, or NULL; refresh: the new token */
	size_t token_len;
	const char *data_raw;        /* publish: data's text in the input */
	size_t data_raw_len;
	/* publish: the runs of white space to drop from data_raw (offsets in
	 * it, lengths), when at most 4; data_gaps 0: none, -1: more */
	int data_gaps;
	uint32_t data_gap_at[4], data_gap_len[4];
	const char *key;             /* publish: idempotency key (key_buf), or NULL */
	size_t key_len;
	bool presence, echo, persist, durable, has_since, has_before;
	uint64_t since, before;
	unsigned limit;
	uint64_t seq;                /* delete */
	uint64_t seconds;            /* ban */
	const char *reason;          /* ban: NULL when absent */
	size_t reason_len;
	char room_buf[PROTO_ROOM_MAX + 1];
	char name_buf[4 * PROTO_NAME_MAX_CHARS + 1];
	char key_buf[PROTO_PUBKEY_MAX + 1];
	char errmsg[160];            /* a failure's human message */
	char reason_buf[PROTO_REASON_MAX + 1];
};

/* Decodes one text frame of len bytes. Returns PROTO_OK with cmd filled,
 * or an error code with cmd->errmsg set and cmd->id set when the frame
 * carried a valid id. proto_cmd_clear() releases nothing today but keeps
 * callers independent of that. */
enum proto_err proto_decode(const char *buf, size_t len, struct proto_cmd *cmd);
/* proto_decode with the JSON scan's bounds given (at most the defaults'):
 * *scanned is false when the scan refused the text (not JSON, a duplicate
 * top-level key, past a bound, or, with no_id, an "id" member at all),
 * true when it was JSON and the result is the command's own verdict. The
 * Socket.IO edge hands the core a command built from an event it has not
 * validated and lets this scan be the validation (server/sio/sio_edge.c,
 * lazy_event): it writes "type" (and "id" when the event has an ack id)
 * itself, so a duplicate, or an "id" where it wrote none, is the event's
 * argument holding one, which the edge refuses with its own answer. */
enum proto_err proto_decode_bounded(const char *buf, size_t len, unsigned max_depth,
				    unsigned max_keys, bool no_id, struct proto_cmd *cmd,
				    bool *scanned);
/* The error a failed jscan_object() (je, an enum jscan_err; pos and why as it
 * gave them) means for a JSON object of the protocol: bad_request when it is
 * valid but too big, bad_json otherwise, with the message written to msg.
 * unit names the object in the message ("frame", "body"). Shared by the
 * frame decoder and the HTTP API's body decoder, so both say the same. */
enum proto_err proto_scan_error(int je, size_t pos, const char *why, const char *unit,
			       char *msg, size_t msglen);
void proto_cmd_clear(struct proto_cmd *cmd);

/* Appends the publish command's data as compact JSON text. */
void proto_data_text(const struct proto_cmd *cmd, struct pbuf *out);

/* 1 if s[0..n) is a valid room name: 1-128 bytes of [A-Za-z0-9_.:@-]. */
int proto_room_valid(const char *s, size_t n);
/* 1 if s[0..n) is a valid display name: valid UTF-8, 1-32 code points, no
 * control characters (U+0000-U+001F, U+007F-U+009F). */
int proto_name_valid(const char *s, size_t n);

/* ---- encoders: each appends one complete JSON frame text to b ---- */

/* {"type":"reply","id":ID,"ok":true,"data":  -- the caller appends the data
 * value and then closes with proto_enc_close(). */
void proto_enc_reply_ok_open(struct pbuf *b, uint64_t id);
void proto_enc_close(struct pbuf *b);
/* id != 0: a failed reply; id == 0: an error frame. msg NULL: the code's
 * default message. */
void proto_enc_failure(struct pbuf *b, uint64_t id, enum proto_err e, const char *msg);
/* A message frame; seq 0 means volatile (no seq field). data is compact
 * JSON text. Empty data (data_len 0) is a deleted message's tombstone:
 * {"type":"message","room":R,"seq":N,"deleted":true} (no ts, from, data). */
void proto_enc_message(struct pbuf *b, const char *room, size_t room_len,
		       uint64_t seq, int64_t ts, const char *from, size_t from_len,
		       const char *data, size_t data_len);

/* {"type":"deleted","room":R,"seq":N}: message seq was deleted. */
void proto_enc_deleted(struct pbuf *b, const char *room, size_t room_len, uint64_t seq);

#endif
