/*
 * decode.c - client command decoding and validation (proto.h).
 *
 * The frame is checked whole by the one-pass scanner in jscan.c, which also
 * records where each top-level field's value is. The few fields a command
 * uses are read from there; a publish's `data` is forwarded as the text it
 * was sent in (insignificant white space dropped), so numbers keep their
 * spelling and nothing is re-encoded.
 */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jscan.h"

static const struct {
	const char *name;
	enum proto_type type;
} cmd_types[] = {
	{ "publish", PROTO_PUBLISH },
	{ "join", PROTO_JOIN },
	{ "leave", PROTO_LEAVE },
	{ "hello", PROTO_HELLO },
	{ "history", PROTO_HISTORY },
	{ "presence", PROTO_PRESENCE },
	{ "ping", PROTO_PING },
	{ "refresh", PROTO_REFRESH },
	{ "delete", PROTO_DELETE },
	{ "erase", PROTO_ERASE },
	{ "ban", PROTO_BAN },
	{ "unban", PROTO_UNBAN },
};

static enum proto_err fail(struct proto_cmd *cmd, enum proto_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum proto_err fail(struct proto_cmd *cmd, enum proto_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd->errmsg, sizeof(cmd->errmsg), fmt, ap);
	va_end(ap);
	return e;
}

enum proto_err proto_scan_error(int je, size_t pos, const char *why, const char *unit,
			       char *msg, size_t msglen)
{
	switch ((enum jscan_err)je) {
	case JSCAN_DEPTH:
		snprintf(msg, msglen, "JSON nested deeper than %d levels", PROTO_DEPTH_MAX);
		return PROTO_EBAD_REQUEST;
	case JSCAN_KEYS:
		snprintf(msg, msglen, "more than %d keys in one %s", PROTO_KEYS_MAX, unit);
		return PROTO_EBAD_REQUEST;
	case JSCAN_TOP:
		snprintf(msg, msglen, "more than %d fields in one %s", JSCAN_TOP_MAX, unit);
		return PROTO_EBAD_REQUEST;
	case JSCAN_NOT_OBJECT:
		snprintf(msg, msglen, "the %s must be a JSON object", unit);
		return PROTO_EBAD_JSON;
	default:
		snprintf(msg, msglen, "invalid JSON at byte %zu: %s", pos, why);
		return PROTO_EBAD_JSON;
	}
}

/* Optional boolean: absent leaves *out. Returns 0, or -1 if the wrong type. */
static int get_bool(const struct jtop *top, const char *key, bool *out)
{
	const struct jval *v = jscan_get(top, key);
	if (!v)
		return 0;
	if (v->type != JT_TRUE && v->type != JT_FALSE)
		return -1;
	*out = v->type == JT_TRUE;
	return 0;
}

/* Optional integer in [min, PROTO_ID_MAX]: 1 if present, 0 if absent, -1 if
 * the wrong type or out of range. */
static int get_uint(const struct jtop *top, const char *key, uint64_t min, uint64_t *out)
{
	const struct jval *v = jscan_get(top, key);
	uint64_t x;

	if (!v)
		return 0;
	if (jscan_uint(v, &x) < 0 || x < min || x > PROTO_ID_MAX)
		return -1;
	*out = x;
	return 1;
}

static enum proto_err get_room(struct proto_cmd *cmd, const struct jtop *top)
{
	const struct jval *v = jscan_get(top, "room");
	if (!v || v->type != JT_STRING)
		return fail(cmd, PROTO_EBAD_REQUEST, "room must be a string");
	if (jscan_string(v, cmd->room_buf, sizeof(cmd->room_buf), &cmd->room_len) < 0 ||
	    !proto_room_valid(cmd->room_buf, cmd->room_len))
		return fail(cmd, PROTO_EBAD_ROOM, "%s", proto_err_message(PROTO_EBAD_ROOM));
	cmd->room = cmd->room_buf;
	return PROTO_OK;
}

/* The optional "token" field. */
static enum proto_err get_token(struct proto_cmd *cmd, const struct jtop *top)
{
	const struct jval *v = jscan_get(top, "token");

	if (v) {
		/* A JWT is base64url and dots: it never needs an escape, so it
		 * is used in place. */
		if (v->type != JT_STRING || v->n - 2 > PROTO_TOKEN_MAX || memchr(v->p, '\\', v->n))
			return fail(cmd, PROTO_EBAD_REQUEST,
				    "token must be a string of at most %d bytes", PROTO_TOKEN_MAX);
		cmd->token = v->p + 1;
		cmd->token_len = v->n - 2;
	}
	return PROTO_OK;
}

static enum proto_err decode_hello(struct proto_cmd *cmd, const struct jtop *top)
{
	const struct jval *v;
	enum proto_err e = get_token(cmd, top);

	if (e != PROTO_OK)
		return e;
	v = jscan_get(top, "name");
	if (cmd->token) {
		/* The token names the user: a name is ignored, whatever it
		 * says; only its JSON type is checked, as for every field. */
		if (v && v->type != JT_STRING)
			return fail(cmd, PROTO_EBAD_REQUEST, "name must be a string");
		return PROTO_OK;
	}
	if (!v || v->type != JT_STRING)
		return fail(cmd, PROTO_EBAD_REQUEST, "name must be a string");
	if (jscan_string(v, cmd->name_buf, sizeof(cmd->name_buf), &cmd->name_len) < 0 ||
	    !proto_name_valid(cmd->name_buf, cmd->name_len))
		return fail(cmd, PROTO_EBAD_NAME, "%s", proto_err_message(PROTO_EBAD_NAME));
	cmd->name = cmd->name_buf;
	return PROTO_OK;
}

/* erase, ban, unban: "user" is a display name; it goes in name/name_len. */
static enum proto_err decode_user(struct proto_cmd *cmd, const struct jtop *top)
{
	const struct jval *v = jscan_get(top, "user");
	if (!v || v->type != JT_STRING)
		return fail(cmd, PROTO_EBAD_REQUEST, "user must be a string");
	if (jscan_string(v, cmd->name_buf, sizeof(cmd->name_buf), &cmd->name_len) < 0 ||
	    !proto_name_valid(cmd->name_buf, cmd->name_len))
		return fail(cmd, PROTO_EBAD_NAME, "%s", proto_err_message(PROTO_EBAD_NAME));
	cmd->name = cmd->name_buf;
	if (cmd->type != PROTO_BAN)
		return PROTO_OK;
	if (get_uint(top, "seconds", 1, &cmd->seconds) <= 0 ||
	    cmd->seconds > PROTO_BAN_SECONDS_MAX)
		return fail(cmd, PROTO_EBAD_REQUEST, "seconds must be an integer from 1 to %llu",
			    (unsigned long long)PROTO_BAN_SECONDS_MAX);
	v = jscan_get(top, "reason");
	if (v) {
		if (v->type != JT_STRING ||
		    jscan_string(v, cmd->reason_buf, sizeof(cmd->reason_buf), &cmd->reason_len) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST,
				    "reason must be a string of at most %d bytes", PROTO_REASON_MAX);
		for (size_t i = 0; i < cmd->reason_len; i++)
			if ((unsigned char)cmd->reason_buf[i] < 0x20 || cmd->reason_buf[i] == 0x7f)
				return fail(cmd, PROTO_EBAD_REQUEST,
					    "reason must not hold control characters");
		cmd->reason = cmd->reason_buf;
	}
	return PROTO_OK;
}

static enum proto_err decode_fields(struct proto_cmd *cmd, const struct jtop *top, const char *text)
{
	const struct jval *v;
	enum proto_err e;
	uint64_t x;
	int r;

	switch (cmd->type) {
	case PROTO_HELLO:
		return decode_hello(cmd, top);
	case PROTO_PING:
		return PROTO_OK;
	case PROTO_REFRESH:
		if (get_token(cmd, top) != PROTO_OK || !cmd->token)
			return fail(cmd, PROTO_EBAD_REQUEST,
				    "token must be a string of at most %d bytes", PROTO_TOKEN_MAX);
		return PROTO_OK;
	case PROTO_ERASE:
	case PROTO_BAN:
	case PROTO_UNBAN:
		return decode_user(cmd, top);
	default:
		break;
	}
	if ((e = get_room(cmd, top)) != PROTO_OK)
		return e;
	switch (cmd->type) {
	case PROTO_JOIN:
		if (get_bool(top, "presence", &cmd->presence) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "presence must be a boolean");
		r = get_uint(top, "since", 0, &cmd->since);
		if (r < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "since must be an integer from 0 to 2^53-1");
		cmd->has_since = r > 0;
		break;
	case PROTO_PUBLISH:
		v = jscan_get(top, "data");
		if (!v)
			return fail(cmd, PROTO_EBAD_REQUEST, "data is required (null is allowed)");
		cmd->data_raw = v->p;
		cmd->data_raw_len = v->n;
		cmd->data_gaps = jscan_gaps(top, v, text, cmd->data_gap_at, cmd->data_gap_len, 4);
		if (get_bool(top, "echo", &cmd->echo) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "echo must be a boolean");
		if (get_bool(top, "persist", &cmd->persist) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "persist must be a boolean");
		if (get_bool(top, "durable", &cmd->durable) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "durable must be a boolean");
		v = jscan_get(top, "key");
		if (v) {
			/* Decoded bytes: "\u00e9" and "é" are the same key. */
			if (v->type != JT_STRING ||
			    jscan_string(v, cmd->key_buf, sizeof(cmd->key_buf), &cmd->key_len) < 0 ||
			    cmd->key_len < 1 || cmd->key_len > PROTO_PUBKEY_MAX)
				return fail(cmd, PROTO_EBAD_REQUEST,
					    "key must be a string of 1 to %d bytes", PROTO_PUBKEY_MAX);
			cmd->key = cmd->key_buf;
		}
		break;
	case PROTO_HISTORY:
		r = get_uint(top, "before", 1, &cmd->before);
		if (r < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "before must be an integer from 1 to 2^53-1");
		cmd->has_before = r > 0;
		x = PROTO_HISTORY_DEFAULT;
		if (get_uint(top, "limit", 1, &x) < 0 || x > PROTO_HISTORY_MAX)
			return fail(cmd, PROTO_EBAD_REQUEST, "limit must be an integer from 1 to %d",
				    PROTO_HISTORY_MAX);
		cmd->limit = (unsigned)x;
		break;
	case PROTO_DELETE:
		if (get_uint(top, "seq", 1, &cmd->seq) <= 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "seq must be an integer from 1 to 2^53-1");
		break;
	default:
		break;
	}
	return PROTO_OK;
}

static enum proto_err decode(const char *buf, size_t len, unsigned max_depth, unsigned max_keys,
			     bool no_id, struct proto_cmd *cmd, enum jscan_err *scan)
{
	struct jtop top;
	const struct jval *v;
	const char *why;
	size_t pos;

	memset(cmd, 0, offsetof(struct proto_cmd, room_buf));
	cmd->echo = true;
	cmd->persist = true;
	cmd->errmsg[0] = '\0';

	/* jscan checks UTF-8 too (the transport already did, but the
	 * decoder stays safe on its own for unit tests and fuzzers). */
	enum jscan_err je = jscan_object(buf, len, max_depth, max_keys, &top, &pos, &why);
	*scan = je;
	if (je == JSCAN_DEPTH || je == JSCAN_KEYS || je == JSCAN_TOP) {
		/* Valid so far but too big: the fields scanned before the
		 * problem are known, so a command that put its id first (as
		 * clients do) still gets a reply it can match. */
		uint64_t id;
		v = jscan_get(&top, "id");
		if (v && jscan_uint(v, &id) == 0 && id >= 1 && id <= PROTO_ID_MAX)
			cmd->id = id;
	}
	if (je != JSCAN_OK)
		return proto_scan_error(je, pos, why, "frame", cmd->errmsg, sizeof(cmd->errmsg));

	v = jscan_get(&top, "id");
	if (v && no_id) {
		*scan = JSCAN_DUPLICATE; /* see proto_decode_bounded */
		return fail(cmd, PROTO_EBAD_REQUEST, "an id the caller did not give");
	}
	if (v) {
		uint64_t id;
		if (jscan_uint(v, &id) < 0 || id < 1 || id > PROTO_ID_MAX)
			return fail(cmd, PROTO_EBAD_REQUEST, "id must be an integer from 1 to 2^53-1");
		cmd->id = id;
	}

	v = jscan_get(&top, "type");
	char t[16];
	size_t tlen;
	if (!v || v->type != JT_STRING)
		return fail(cmd, PROTO_EBAD_REQUEST, "type must be a string");
	size_t i, ntypes = sizeof(cmd_types) / sizeof(cmd_types[0]);
	if (jscan_string(v, t, sizeof(t), &tlen) < 0)
		i = ntypes; /* longer than any command */
	else
		for (i = 0; i < ntypes; i++)
			if (strlen(cmd_types[i].name) == tlen && !memcmp(t, cmd_types[i].name, tlen))
				break;
	if (i == ntypes) {
		/* Echo at most 40 bytes of the name, cut on a character. */
		size_t n = v->n - 2 < 40 ? v->n - 2 : 40;
		while (n && ((unsigned char)v->p[1 + n] & 0xc0) == 0x80)
			n--;
		return fail(cmd, PROTO_EUNKNOWN_TYPE, "unknown type \"%.*s\"", (int)n, v->p + 1);
	}
	cmd->type = cmd_types[i].type;
	return decode_fields(cmd, &top, buf);
}

enum proto_err proto_decode(const char *buf, size_t len, struct proto_cmd *cmd)
{
	enum jscan_err je;

	return decode(buf, len, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, false, cmd, &je);
}

enum proto_err proto_decode_bounded(const char *buf, size_t len, unsigned max_depth,
				    unsigned max_keys, bool no_id, struct proto_cmd *cmd,
				    bool *scanned)
{
	enum jscan_err je;
	enum proto_err e = decode(buf, len, max_depth, max_keys, no_id, cmd, &je);

	*scanned = je == JSCAN_OK;
	return e;
}

void proto_cmd_clear(struct proto_cmd *cmd)
{
	(void)cmd; /* nothing is allocated; kept so callers need not know */
}

void proto_data_text(const struct proto_cmd *cmd, struct pbuf *out)
{
	/* The scan saw where white space is to be dropped: mostly nowhere
	 * (clients send compact JSON) or in a run or two (padding), and the
	 * text around it is copied as it is. */
	if (cmd->data_gaps < 0) {
		pbuf_add_json_compact(out, cmd->data_raw, cmd->data_raw_len);
		return;
	}
	size_t at = 0;
	for (int k = 0; k < cmd->data_gaps; k++) {
		pbuf_add(out, cmd->data_raw + at, cmd->data_gap_at[k] - at);
		at = (size_t)cmd->data_gap_at[k] + cmd->data_gap_len[k];
	}
	pbuf_add(out, cmd->data_raw + at, cmd->data_raw_len - at);
}
