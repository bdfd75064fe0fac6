/*
 * sio.h - Socket.IO v5 packet codec (sio_ prefix). No sockets.
 *
 * A packet travels as the data of an Engine.IO message packet:
 *
 *     <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
 *
 *     0                       CONNECT to "/"
 *     0/admin,{"token":"1"}   CONNECT to "/admin" with an auth payload
 *     1/admin,                DISCONNECT from "/admin"
 *     2["foo",1]              EVENT "foo"
 *     2/admin,12["bar"]       EVENT "bar" on "/admin" asking for ack 12
 *     312["ok"]               ACK 12
 *     4{"message":"no"}       CONNECT_ERROR
 *     51-["baz",{"_placeholder":true,"num":0}]   BINARY_EVENT, 1 attachment
 *     61-15[{"_placeholder":true,"num":0}]       BINARY_ACK 15, 1 attachment
 *
 * A binary packet is followed by its attachments, each one Engine.IO binary
 * message; the JSON names each by a placeholder object.
 *
 * What the decoder refuses (the reference server closes the connection on
 * each; sio_strerror names them): an unknown type, a bad attachment count
 * ("51[..." or "5x-"), more attachments than the limit, a namespace not
 * starting with '/', longer than SIO_NSP_MAX or with control characters, an
 * ack id past 2^53-1, a payload that is not JSON or breaks the depth and key
 * limits, a payload of the wrong shape for the type (CONNECT: object;
 * DISCONNECT: none; CONNECT_ERROR: string or object; EVENT: array whose
 * first element is a number or a string that is not a reserved event name;
 * ACK: array), a placeholder whose num is not an integer below the
 * attachment count, text while attachments are awaited, and a binary frame
 * when none is.
 */
#ifndef PARLEY_SIO_H
#define PARLEY_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jscan.h"

#define SIO_PROTOCOL        5
#define SIO_NSP_MAX         128        /* bytes of a namespace, '/' included */
#define SIO_ID_MAX          9007199254740991ULL /* ack ids: 2^53 - 1, exact in JS */
#define SIO_ATTACH_MAX_DEF  10         /* attachments per packet (default) */
#define SIO_ATTACH_HARD_MAX 256        /* the most a decoder can be configured for */

enum sio_type {
	SIO_CONNECT = 0,
	SIO_DISCONNECT,
	SIO_EVENT,
	SIO_ACK,
	SIO_CONNECT_ERROR,
	SIO_BINARY_EVENT,
	SIO_BINARY_ACK,
	SIO_TYPE_COUNT
};

#define SIO_ERRORS(X) \
	X(SIO_OK,              "ok") \
	X(SIO_MORE,            "waiting for binary attachments") \
	X(SIO_E_EMPTY,         "empty packet") \
	X(SIO_E_TYPE,          "unknown packet type") \
	X(SIO_E_ATTACHMENTS,   "illegal attachments") \
	X(SIO_E_TOO_MANY_ATT,  "too many attachments") \
	X(SIO_E_NSP,           "invalid namespace") \
	X(SIO_E_ID,            "invalid ack id") \
	X(SIO_E_JSON,          "payload is not valid JSON") \
	X(SIO_E_DEPTH,         "payload nested too deep") \
	X(SIO_E_KEYS,          "payload has too many keys") \
	X(SIO_E_PAYLOAD,       "invalid payload") \
	X(SIO_E_RESERVED,      "reserved event name") \
	X(SIO_E_PLACEHOLDER,   "invalid attachment placeholder") \
	X(SIO_E_UNEXPECTED_TEXT,   "got text data while awaiting attachments") \
	X(SIO_E_UNEXPECTED_BINARY, "got binary data when not reconstructing a packet") \
	X(SIO_E_TOO_LARGE,     "attachments larger than the limit")

enum sio_err {
#define SIO_X(name, msg) name,
	SIO_ERRORS(SIO_X)
#undef SIO_X
	SIO_ERR_COUNT
};

const char *sio_strerror(enum sio_err e);

/* One attachment: bytes owned by whoever produced the packet. */
struct sio_att {
	const uint8_t *p;
	size_t n;
};

/* A decoded packet. Text packets point into the input; binary packets
 * (type BINARY_*) into the decoder's own copy, valid until the decoder's
 * next call. nsp is never NULL ("/" when the packet names none). data is
 * the payload's JSON text without surrounding white space, NULL when the
 * packet has none (sio_array_items splits an EVENT's or ACK's array);
 * event is the EVENT's first element (a JSON string or number token). */
struct sio_packet {
	enum sio_type type;
	const char *nsp;
	size_t nsp_len;
	bool has_id;
	uint64_t id;
	const char *data;
	size_t data_len;
	struct jval event;             /* EVENT / BINARY_EVENT only */
	unsigned attachments;          /* declared count (binary types) */
	const struct sio_att *att;     /* attachments[0..attachments) */
	/* lazy_events only: an EVENT of the shape ["name",{…}] on "/" whose
	 * JSON has NOT been validated (only its outline, and the name: plain
	 * printable ASCII, not reserved). data spans the array, event the
	 * name, arg the argument object's text. The caller validates it, with
	 * its own scan of the argument or with sio_check(). */
	bool unchecked;
	struct jval arg;
};

struct sio_limits {
	size_t max_attachments;        /* <= SIO_ATTACH_HARD_MAX */
	size_t max_binary_bytes;       /* all attachments of one packet */
	unsigned max_depth, max_keys;  /* JSON nesting and object members */
	bool lazy_events;              /* hand the common EVENT on unchecked (above) */
};

/* A decoder for one connection: stateful only across a binary packet and
 * its attachments. Small while idle (one per connection): the arrays are
 * allocated at the first binary packet, and buffers a large packet grew
 * are released before the next one. */
struct sio_decoder {
	struct sio_limits lim;
	bool awaiting;                 /* a binary header is waiting for attachments */
	struct sio_packet pending;
	struct pbuf text;              /* the binary header's copy */
	struct pbuf bin;               /* attachment bytes, back to back */
	size_t got;                    /* attachments received */
	size_t *off;                   /* [lim.max_attachments]: offsets in bin */
	struct sio_att *att;           /* [lim.max_attachments] */
};

/* lim NULL: the defaults (SIO_ATTACH_MAX_DEF, 1000000 bytes, and the native
 * protocol's JSON bounds PROTO_DEPTH_MAX / PROTO_KEYS_MAX). */
void sio_decoder_init(struct sio_decoder *d, const struct sio_limits *lim);
/* Drops a half-received binary packet. */
void sio_decoder_reset(struct sio_decoder *d);
void sio_decoder_free(struct sio_decoder *d);

/* Feeds one Engine.IO text message. Returns SIO_OK with *out a complete
 * packet, SIO_MORE when a binary header was accepted and its attachments
 * are awaited, or an error (the connection is then to be closed). */
enum sio_err sio_decoder_text(struct sio_decoder *d, const char *s, size_t n,
			      struct sio_packet *out);
/* Feeds one Engine.IO binary message: SIO_MORE until the last attachment,
 * then SIO_OK with *out the whole packet and its attachments. */
enum sio_err sio_decoder_binary(struct sio_decoder *d, const uint8_t *p, size_t n,
				struct sio_packet *out);

/* Parses one text packet without attachments state (a binary header is
 * returned with att NULL). Used by the decoder; useful to tests. */
enum sio_err sio_parse(const char *s, size_t n, const struct sio_limits *lim,
		       struct sio_packet *out);

/* The full check sio_parse skipped for an unchecked packet (lazy_events):
 * SIO_OK with pk now an ordinary checked packet (unchecked false), or the
 * error sio_parse would have returned for it. */
enum sio_err sio_check(struct sio_packet *pk, const struct sio_limits *lim);

/* Splits the JSON array text a[0..n) (already validated) into its
 * elements' spans: at most max go to out; returns the element count. */
size_t sio_array_items(const char *a, size_t n, struct jval *out, size_t max);
/* The same, but stops after the first max items (returns at most max):
 * what an EVENT's name and argument need, without scanning past them. */
size_t sio_array_first(const char *a, size_t n, struct jval *out, size_t max);

/* ---- encoding: each appends one packet's text to b ---- */

/* The header: type (promoted to BINARY_* when nattach > 0), "N-", the
 * namespace and ',' unless it is "/", and the ack id when has_id. The
 * caller appends the payload (if any) right after it. */
void sio_enc_header(struct pbuf *b, enum sio_type type, const char *nsp, size_t nsp_len,
		    bool has_id, uint64_t id, unsigned nattach);
/* {"_placeholder":true,"num":N} */
void sio_enc_placeholder(struct pbuf *b, unsigned num);
/* A whole packet: header plus data (JSON text, or NULL for none). */
void sio_encode(struct pbuf *b, enum sio_type type, const char *nsp, size_t nsp_len,
		bool has_id, uint64_t id, unsigned nattach, const char *data, size_t data_len);

/* Shorthands for the server's packets. */
void sio_enc_connect(struct pbuf *b, const char *nsp, size_t nsp_len, const char *sid);
void sio_enc_connect_error(struct pbuf *b, const char *nsp, size_t nsp_len, const char *msg);
void sio_enc_disconnect(struct pbuf *b, const char *nsp, size_t nsp_len);
/* EVENT: 2[<name>  -- the caller appends ",arg" for each argument (using
 * sio_enc_placeholder for binary ones) and then ']'. */
void sio_enc_event_open(struct pbuf *b, const char *nsp, size_t nsp_len, bool has_id,
			uint64_t id, unsigned nattach, const char *name, size_t name_len);

/* Encodes a packet whose data (valid JSON) may hold $base64 wrappers (see
 * below): with wrappers, a BINARY_EVENT / BINARY_ACK whose placeholders
 * stand for them, the bytes appended to bytes and att[k] pointing at each
 * (send them as binary messages after the text); without, or when
 * sio_bin_unwrap cannot (its -1), the plain packet with data as it is.
 * type is SIO_EVENT or SIO_ACK. Returns the attachment count. */
size_t sio_encode_auto(struct pbuf *b, enum sio_type type, const char *nsp, size_t nsp_len,
		       bool has_id, uint64_t id, const char *data, size_t data_len,
		       struct pbuf *bytes, struct sio_att *att, size_t max_att);

/* ---- binary data for native clients (sio_bin.c) ----
 *
 * Native clients see an attachment as {"$base64":"<padded base64>"} in its
 * place; an object is such a wrapper when it has exactly that one member
 * and a canonical base64 string. */

/* Appends json (valid JSON, e.g. a decoded binary packet's data) to out,
 * compact, with each placeholder replaced by the wrapper of its attachment.
 * Returns 0, or -1 for a placeholder naming no attachment in att[0..natt). */
int sio_bin_wrap(struct pbuf *out, const char *json, size_t n, const struct sio_att *att,
		 size_t natt);
/* The other way: appends json (valid JSON) to out, compact, with each
 * wrapper replaced by a placeholder; the bytes are appended to bytes and
 * att[k] points at the k-th (valid until bytes changes). Returns the number
 * of attachments (0: plain JSON, send a plain EVENT), or -1 when the text
 * cannot go as a binary packet: more than max_att wrappers, or wrappers
 * beside an object that looks like a placeholder (the receiver would take
 * it for one). On -1 send json as it is, in a plain EVENT: nothing is lost,
 * the receiver sees the wrappers. */
long sio_bin_unwrap(struct pbuf *out, const char *json, size_t n, struct pbuf *bytes,
		    struct sio_att *att, size_t max_att);

#endif
