/*
 * decode.c - client command decoding and validation (proto.h).
 *
 * jansson parses and checks the whole frame. The publish `data` value is
 * then located again in the raw input text (find_member_raw) so it can be
 * forwarded byte for byte: re-serialising through jansson would rewrite
 * numbers (0.1 becomes 0.10000000000000001) and cost an allocation per node.
 */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
};

/* Replaces each byte that does not start a complete, valid UTF-8 sequence
 * with '?'. The message goes back to the client in a text frame, and parts
 * of it can end inside a character: jansson's "near '...'" stops at the
 * byte where it failed, and %.40s and the errmsg size cut by bytes. */
static void scrub_utf8(char *s)
{
	unsigned char *u = (unsigned char *)s;

	while (*u) {
		unsigned c = *u, n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 :
				     (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
		unsigned long cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
		unsigned k;

		for (k = 1; n < 9 && k <= n && (u[k] & 0xc0) == 0x80; k++)
			cp = (cp << 6) | (u[k] & 0x3f);
		if (n == 9 || k <= n || (n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			*u++ = '?';
			continue;
		}
		u += n + 1;
	}
}

static enum proto_err fail(struct proto_cmd *cmd, enum proto_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd->errmsg, sizeof(cmd->errmsg), fmt, ap);
	va_end(ap);
	scrub_utf8(cmd->errmsg);
	json_decref(cmd->root);
	cmd->root = NULL;
	return e;
}

/* ---- raw JSON scanning (input already validated by jansson) ---- */

static size_t skip_ws(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* p[i] is '"': returns the index just past the closing quote. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return n;
}

static size_t skip_value(const char *p, size_t i, size_t n)
{
	if (i >= n)
		return n;
	if (p[i] == '"')
		return skip_string(p, i, n);
	if (p[i] == '{' || p[i] == '[') {
		int depth = 0;
		while (i < n) {
			char c = p[i];
			if (c == '"') {
				i = skip_string(p, i, n);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if ((c == '}' || c == ']') && --depth == 0)
				return i + 1;
			i++;
		}
		return n;
	}
	while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' &&
	       p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
		i++;
	return i;
}

/* Finds the value of the top-level member whose key is spelled exactly
 * `key` (no escapes) in the object text p[0..n). Returns 1 and the value's
 * span, or 0 (the caller then falls back to serialising the json_t). */
static int find_member_raw(const char *p, size_t n, const char *key,
			   const char **val, size_t *vlen)
{
	size_t klen = strlen(key);
	size_t i = skip_ws(p, 0, n);

	if (i >= n || p[i] != '{')
		return 0;
	i++;
	for (;;) {
		i = skip_ws(p, i, n);
		if (i >= n || p[i] != '"')
			return 0;
		size_t ks = i + 1, ke = skip_string(p, i, n) - 1;
		i = skip_ws(p, ke + 1, n);
		if (i >= n || p[i] != ':')
			return 0;
		i = skip_ws(p, i + 1, n);
		size_t vs = i;
		i = skip_value(p, i, n);
		if (ke - ks == klen && memcmp(p + ks, key, klen) == 0) {
			*val = p + vs;
			*vlen = i - vs;
			return 1;
		}
		i = skip_ws(p, i, n);
		if (i >= n || p[i] != ',')
			return 0;
		i++;
	}
}

/* ---- field helpers ---- */

/* Optional boolean: absent leaves *out. Returns 0, or -1 if the wrong type. */
static int get_bool(json_t *root, const char *key, bool *out)
{
	json_t *v = json_object_get(root, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 0;
}

/* Optional integer in [min, PROTO_ID_MAX]: 1 if present, 0 if absent, -1 if
 * the wrong type or out of range. */
static int get_uint(json_t *root, const char *key, uint64_t min, uint64_t *out)
{
	json_t *v = json_object_get(root, key);
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return -1;
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > PROTO_ID_MAX)
		return -1;
	*out = (uint64_t)x;
	return 1;
}

static enum proto_err get_room(struct proto_cmd *cmd)
{
	json_t *v = json_object_get(cmd->root, "room");
	if (!v || !json_is_string(v))
		return fail(cmd, PROTO_EBAD_REQUEST, "room must be a string");
	cmd->room = json_string_value(v);
	cmd->room_len = json_string_length(v);
	if (!proto_room_valid(cmd->room, cmd->room_len))
		return fail(cmd, PROTO_EBAD_ROOM, "%s", proto_err_message(PROTO_EBAD_ROOM));
	return PROTO_OK;
}

static enum proto_err decode_fields(struct proto_cmd *cmd)
{
	json_t *root = cmd->root, *v;
	enum proto_err e;
	uint64_t x;
	int r;

	switch (cmd->type) {
	case PROTO_HELLO:
		v = json_object_get(root, "token");
		if (v) {
			if (!json_is_string(v) || json_string_length(v) > PROTO_TOKEN_MAX)
				return fail(cmd, PROTO_EBAD_REQUEST,
					    "token must be a string of at most %d bytes", PROTO_TOKEN_MAX);
			cmd->token = json_string_value(v);
			cmd->token_len = json_string_length(v);
		}
		v = json_object_get(root, "name");
		if (!v && cmd->token)
			return PROTO_OK; /* the token names the user */
		if (!v || !json_is_string(v))
			return fail(cmd, PROTO_EBAD_REQUEST, "name must be a string");
		cmd->name = json_string_value(v);
		cmd->name_len = json_string_length(v);
		if (!proto_name_valid(cmd->name, cmd->name_len))
			return fail(cmd, PROTO_EBAD_NAME, "%s", proto_err_message(PROTO_EBAD_NAME));
		return PROTO_OK;
	case PROTO_PING:
		return PROTO_OK;
	default:
		break;
	}
	if ((e = get_room(cmd)) != PROTO_OK)
		return e;
	switch (cmd->type) {
	case PROTO_JOIN:
		if (get_bool(root, "presence", &cmd->presence) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "presence must be a boolean");
		r = get_uint(root, "since", 0, &cmd->since);
		if (r < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "since must be an integer from 0 to 2^53-1");
		cmd->has_since = r > 0;
		break;
	case PROTO_PUBLISH:
		cmd->data = json_object_get(root, "data");
		if (!cmd->data)
			return fail(cmd, PROTO_EBAD_REQUEST, "data is required (null is allowed)");
		if (get_bool(root, "echo", &cmd->echo) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "echo must be a boolean");
		if (get_bool(root, "persist", &cmd->persist) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "persist must be a boolean");
		if (get_bool(root, "durable", &cmd->durable) < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "durable must be a boolean");
		break;
	case PROTO_HISTORY:
		r = get_uint(root, "before", 1, &cmd->before);
		if (r < 0)
			return fail(cmd, PROTO_EBAD_REQUEST, "before must be an integer from 1 to 2^53-1");
		cmd->has_before = r > 0;
		x = PROTO_HISTORY_DEFAULT;
		if (get_uint(root, "limit", 1, &x) < 0 || x > PROTO_HISTORY_MAX)
			return fail(cmd, PROTO_EBAD_REQUEST, "limit must be an integer from 1 to %d",
				    PROTO_HISTORY_MAX);
		cmd->limit = (unsigned)x;
		break;
	default:
		break;
	}
	return PROTO_OK;
}

/* Bounds what jansson will build from one frame, before it builds it:
 * nesting depth and the number of object members. A frame of max size
 * could otherwise be 30,000 nested arrays or 10,000 keys. Strings are
 * skipped; the text need not be valid JSON here (jansson judges that). */
static enum proto_err check_shape(const char *p, size_t n, struct proto_cmd *cmd)
{
	unsigned depth = 0, keys = 0;

	for (size_t i = 0; i < n; i++) {
		switch (p[i]) {
		case '"':
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
			break;
		case '{':
		case '[':
			if (++depth > PROTO_DEPTH_MAX)
				return fail(cmd, PROTO_EBAD_REQUEST, "JSON nested deeper than %d levels",
					    PROTO_DEPTH_MAX);
			break;
		case '}':
		case ']':
			if (depth)
				depth--;
			break;
		case ':':
			if (++keys > PROTO_KEYS_MAX)
				return fail(cmd, PROTO_EBAD_REQUEST, "more than %d keys in one frame",
					    PROTO_KEYS_MAX);
			break;
		}
	}
	return PROTO_OK;
}

enum proto_err proto_decode(const char *buf, size_t len, struct proto_cmd *cmd)
{
	json_error_t jerr;
	json_t *v;
	enum proto_err e;

	memset(cmd, 0, sizeof(*cmd));
	cmd->echo = true;
	cmd->persist = true;

	if ((e = check_shape(buf, len, cmd)) != PROTO_OK)
		return e;

	/* JSON_ALLOW_NUL: a name or room with \u0000 gets the precise
	 * bad_name/bad_room (the validators refuse control characters)
	 * rather than bad_json; data may carry it like any string. */
	cmd->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!cmd->root && json_error_code(&jerr) == json_error_numeric_overflow) {
		/* An integer beyond 64 bits is valid JSON. Parse it as a real:
		 * data is forwarded from the raw text anyway, and a field
		 * that must be an integer (id, since, ...) then fails with
		 * bad_request like any other out-of-range value. */
		cmd->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
				       JSON_DECODE_INT_AS_REAL, &jerr);
	}
	if (!cmd->root)
		return fail(cmd, PROTO_EBAD_JSON, "invalid JSON at byte %d: %s",
			    jerr.position, jerr.text);
	if (!json_is_object(cmd->root))
		return fail(cmd, PROTO_EBAD_JSON, "a frame must be a JSON object");

	v = json_object_get(cmd->root, "id");
	if (v) {
		json_int_t id = json_is_integer(v) ? json_integer_value(v) : 0;
		if (id < 1 || (uint64_t)id > PROTO_ID_MAX)
			return fail(cmd, PROTO_EBAD_REQUEST,
				    "id must be an integer from 1 to 2^53-1");
		cmd->id = (uint64_t)id;
	}

	v = json_object_get(cmd->root, "type");
	if (!v || !json_is_string(v))
		return fail(cmd, PROTO_EBAD_REQUEST, "type must be a string");
	const char *t = json_string_value(v);
	size_t tlen = json_string_length(v);
	size_t i, ntypes = sizeof(cmd_types) / sizeof(cmd_types[0]);
	for (i = 0; i < ntypes; i++)
		if (strlen(cmd_types[i].name) == tlen && memcmp(t, cmd_types[i].name, tlen) == 0)
			break;
	if (i == ntypes)
		return fail(cmd, PROTO_EUNKNOWN_TYPE, "unknown type \"%.40s\"", t);
	cmd->type = cmd_types[i].type;

	e = decode_fields(cmd);
	if (e != PROTO_OK)
		return e;
	if (cmd->type == PROTO_PUBLISH &&
	    !find_member_raw(buf, len, "data", &cmd->data_raw, &cmd->data_raw_len))
		cmd->data_raw = NULL;
	return PROTO_OK;
}

void proto_cmd_clear(struct proto_cmd *cmd)
{
	json_decref(cmd->root);
	cmd->root = NULL;
}

void proto_data_text(const struct proto_cmd *cmd, struct pbuf *out)
{
	if (cmd->data_raw) {
		pbuf_add_json_compact(out, cmd->data_raw, cmd->data_raw_len);
		return;
	}
	size_t need = json_dumpb(cmd->data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	pbuf_reserve(out, need);
	out->len += json_dumpb(cmd->data, out->data + out->len, need,
			       JSON_COMPACT | JSON_ENCODE_ANY);
}
