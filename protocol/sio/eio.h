/*
 * eio.h - Engine.IO v4 packet and payload codec (eio_ prefix). No sockets:
 * the server edge, the unit tests and the fuzzer feed bytes straight in.
 *
 * A packet is a type digit followed by its data:
 *
 *     0{"sid":...}   open (server -> client, first packet of a session)
 *     1              close
 *     2 / 2probe     ping (server -> client; "2probe" client -> server on an
 *                    upgrading WebSocket)
 *     3 / 3probe     pong
 *     4hello         message (text)
 *     5              upgrade (client -> server on the new WebSocket)
 *     6              noop (server -> client, releases a pending poll)
 *
 * Over WebSocket a text frame is one packet; a binary frame is one binary
 * message packet, its bytes as they are (no type byte in v4).
 *
 * Over HTTP long-polling a body (payload) is packets joined with the record
 * separator \x1e; a binary message is written `b` + base64 of its bytes:
 *
 *     4hello\x1e4\xe2\x82\xac\x1ebAQIDBA==     ("hello", "€", bytes 1 2 3 4)
 *
 * Decoding is in place and allocates nothing: packets point into the body,
 * and base64 is decoded over its own text (the bytes are never longer).
 */
#ifndef PARLEY_EIO_H
#define PARLEY_EIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EIO_PROTOCOL        4
#define EIO_RS              '\x1e'   /* record separator between polling packets */
#define EIO_SID_LEN         20       /* base64url of 15 random bytes */
#define EIO_MAX_PAYLOAD_DEF 1000000  /* the reference server's maxHttpBufferSize */

enum eio_type {
	EIO_OPEN = 0,
	EIO_CLOSE,
	EIO_PING,
	EIO_PONG,
	EIO_MESSAGE,
	EIO_UPGRADE,
	EIO_NOOP,
	EIO_TYPE_COUNT
};

/* One packet. data points into the decoded input (or, for the encoders, into
 * the caller's memory); len is its length. binary: a binary message (type is
 * then EIO_MESSAGE). Text data is UTF-8 and carries no NUL requirement. */
struct eio_packet {
	enum eio_type type;
	bool binary;
	const uint8_t *data;
	size_t len;
};

/* Decoding errors. Each is a reason to close the session (the reference
 * server emits "parse error" and closes); eio_strerror names them. */
enum eio_err {
	EIO_OK = 0,
	EIO_E_EMPTY,      /* an empty packet (e.g. "4a\x1e\x1e4b", or an empty body) */
	EIO_E_TYPE,       /* the first character is not a packet type 0-6 */
	EIO_E_BASE64,     /* a `b` packet whose data is not base64 */
	EIO_E_UTF8,       /* a polling body that is not valid UTF-8 */
	EIO_E_TOO_LARGE,  /* more bytes than maxPayload */
	EIO_E_TOO_MANY,   /* more packets in one payload than allowed */
	EIO_ERR_COUNT
};

const char *eio_strerror(enum eio_err e);

/* ---- decoding ---- */

/* A WebSocket text frame: one packet. Checks only the type (lws has
 * checked UTF-8). */
enum eio_err eio_decode_text(const char *s, size_t n, struct eio_packet *out);
/* A WebSocket binary frame: one binary message. Never fails. */
void eio_decode_binary(const uint8_t *p, size_t n, struct eio_packet *out);

/* A polling POST body of n bytes, decoded in place (base64 packets are
 * rewritten as their bytes, so body must be writable). Fails with
 * EIO_E_TOO_LARGE if n > max_payload, EIO_E_TOO_MANY past max_packets
 * packets (out has room for max_packets), EIO_E_UTF8 if the body is not
 * UTF-8, or the first bad packet's error. On success *count is >= 1.
 * On failure *count is the number of packets decoded before the bad one
 * (they are not to be delivered: the reference drops the whole body). */
enum eio_err eio_decode_payload(char *body, size_t n, size_t max_payload,
				struct eio_packet *out, size_t max_packets, size_t *count);

/* ---- encoding: each appends to b ---- */

/* One packet as a WebSocket text frame or a polling record: type digit and
 * data. A binary packet is written as `b` + base64 (polling form); over a
 * WebSocket a binary packet is sent as a binary frame of its bytes. */
void eio_encode_packet(struct pbuf *b, const struct eio_packet *p);
/* The bytes eio_encode_packet appends for p. */
size_t eio_encoded_len(const struct eio_packet *p);
/* A polling payload: the packets joined with \x1e. */
void eio_encode_payload(struct pbuf *b, const struct eio_packet *p, size_t n);

/* The open packet: 0{"sid":"…","upgrades":[…],"pingInterval":…,
 * "pingTimeout":…,"maxPayload":…}. upgrade_ws: offer "websocket" (a
 * polling session), or [] (a session opened on a WebSocket). */
void eio_encode_open(struct pbuf *b, const char *sid, bool upgrade_ws,
		     uint32_t ping_interval_ms, uint32_t ping_timeout_ms, uint64_t max_payload);

/* ---- base64 (RFC 4648, standard alphabet, padded) ---- */

size_t eio_b64_len(size_t n);                 /* encoded length of n bytes */
void eio_b64_encode(struct pbuf *b, const uint8_t *p, size_t n);
/* Decodes s[0..n) into out (room for n * 3 / 4 bytes; out may equal s).
 * Padding is optional, nothing else outside the alphabet is allowed, and
 * the unused bits of the last character must be zero (so each byte string
 * has exactly one accepted text, padding aside). Returns the byte count or
 * -1. */
long eio_b64_decode(const char *s, size_t n, uint8_t *out);

/* ---- session ids ---- */

/* Formats 15 random bytes as a 20-character base64url session id (the
 * reference server's length and alphabet), NUL-terminated. */
void eio_sid_format(const uint8_t rnd[15], char out[EIO_SID_LEN + 1]);

/* ---- HTTP errors (the reference server's codes, messages and statuses) ---- */

#define EIO_HTTP_ERRORS(X) \
	X(EIO_HERR_UNKNOWN_TRANSPORT, 0, 400, "Transport unknown") \
	X(EIO_HERR_UNKNOWN_SID,       1, 400, "Session ID unknown") \
	X(EIO_HERR_BAD_HANDSHAKE,     2, 400, "Bad handshake method") \
	X(EIO_HERR_BAD_REQUEST,       3, 400, "Bad request") \
	X(EIO_HERR_FORBIDDEN,         4, 403, "Forbidden") \
	X(EIO_HERR_UNSUPPORTED,       5, 400, "Unsupported protocol version")

enum eio_http_err {
#define EIO_X(name, code, status, msg) name = code,
	EIO_HTTP_ERRORS(EIO_X)
#undef EIO_X
	EIO_HERR_COUNT
};

/* The HTTP status (403 for FORBIDDEN, else 400) and default message. */
int eio_http_status(enum eio_http_err e);
const char *eio_http_message(enum eio_http_err e);
/* The JSON body {"code":N,"message":"…"}; msg NULL: the default message. */
void eio_encode_http_error(struct pbuf *b, enum eio_http_err e, const char *msg);

/* The check the reference server makes, in its order, on a request's query
 * before it looks at the session: the transport (code 0), then, with a sid,
 * nothing here (the caller looks the sid up: code 1, or 3 when the session
 * uses another transport), and without one the method (code 2), a
 * websocket transport without an Upgrade (code 3), and the EIO version
 * (code 5, for anything but "4"). transport/eio are the query values
 * (NULL when absent); is_get: the method is GET; is_upgrade: a WebSocket
 * upgrade request. Returns -1 when the request may go on, else the error. */
int eio_check_request(const char *transport, const char *eio, bool has_sid,
		      bool is_get, bool is_upgrade);

#endif
