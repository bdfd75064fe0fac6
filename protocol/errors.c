/* errors.c - names and messages of the protocol error table (errors.h). */
#include "errors.h"

static const char *const err_codes[PROTO_ERR_COUNT] = {
	[PROTO_OK] = "",
#define X(e, code, msg) [PROTO_E##e] = code,
	PROTO_ERROR_MAP(X)
#undef X
};

static const char *const err_msgs[PROTO_ERR_COUNT] = {
	[PROTO_OK] = "",
#define X(e, code, msg) [PROTO_E##e] = msg,
	PROTO_ERROR_MAP(X)
#undef X
};

const char *proto_err_code(enum proto_err e)
{
	return (unsigned)e < PROTO_ERR_COUNT ? err_codes[e] : "internal";
}

const char *proto_err_message(enum proto_err e)
{
	return (unsigned)e < PROTO_ERR_COUNT ? err_msgs[e] : "internal server error";
}
