/*
 * errors.h - the one table of Parley protocol error codes.
 *
 * Every error a client can see comes from this table: the encoder takes the
 * code's wire name from it, the unit tests check that docs/protocol.md lists
 * every code, and the server counts errors by code for /metrics.
 * X(ENUM, "wire_code", "default human message")
 */
#ifndef PARLEY_PROTO_ERRORS_H
#define PARLEY_PROTO_ERRORS_H

#define PROTO_ERROR_MAP(X)                                                    \
	X(BAD_JSON, "bad_json", "frame is not a JSON object")                 \
	X(BAD_REQUEST, "bad_request", "a field is missing or has the wrong type") \
	X(UNKNOWN_TYPE, "unknown_type", "unknown command type")               \
	X(BAD_ROOM, "bad_room", "room names are 1-128 bytes of letters, digits and _-.:@") \
	X(BAD_NAME, "bad_name", "names are 1-32 characters without control characters") \
	X(NOT_MEMBER, "not_member", "join the room first")                    \
	X(TOO_MANY_ROOMS, "too_many_rooms", "too many rooms on this connection") \
	X(TOO_LARGE, "too_large", "the message would exceed the maximum message size") \
	X(UNSUPPORTED, "unsupported", "not supported by this server")         \
	X(INTERNAL, "internal", "internal server error")                      \
	X(OVERLOADED, "overloaded", "the server is overloaded: retry later")  \
	X(STORAGE_FAILED, "storage_failed", "message storage is failing: only volatile messages work") \
	X(RATE_LIMITED, "rate_limited", "too many commands: slow down")      \
	X(UNAUTHENTICATED, "unauthenticated", "authenticate with hello and a token first") \
	X(FORBIDDEN, "forbidden", "your token does not allow this room")       \
	X(NOT_FOUND, "not_found", "no such endpoint, user or room")            \
	X(METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that HTTP method") \
	X(UNAVAILABLE, "unavailable", "the cluster's Redis is unreachable: retry with the same key")

enum proto_err {
	PROTO_OK = 0,
#define PROTO_ERR_ENUM(e, code, msg) PROTO_E##e,
	PROTO_ERROR_MAP(PROTO_ERR_ENUM)
#undef PROTO_ERR_ENUM
	PROTO_ERR_COUNT
};

/* Wire code ("bad_json") and default message of an error; "" for PROTO_OK. */
const char *proto_err_code(enum proto_err e);
const char *proto_err_message(enum proto_err e);

#endif
