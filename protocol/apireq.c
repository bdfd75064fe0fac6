/*
 * apireq.c - HTTP API request decoding (apireq.h).
 *
 * The body is checked whole by jscan (RFC 8259, UTF-8, depth and key
 * bounds) before any field is read, so the small walker over the `rooms`
 * array below only ever sees valid JSON text.
 */
#include "apireq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"

static enum proto_err fail(struct api_req *req, enum proto_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum proto_err fail(struct api_req *req, enum proto_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->errmsg, sizeof(req->errmsg), fmt, ap);
	va_end(ap);
	return e;
}

void api_req_init(struct api_req *req)
{
	memset(req, 0, offsetof(struct api_req, errmsg));
	req->persist = true;
	req->errmsg[0] = '\0';
}

void api_req_clear(struct api_req *req)
{
	free(req->rooms);
	req->rooms = NULL;
	req->nrooms = 0;
}

/* A string field into out (cap bytes with the NUL). Returns 1 if present,
 * 0 if absent, -1 if not a string or too long. */
static int get_str(const struct jtop *top, const char *key, char *out, size_t cap, size_t *len)
{
	const struct jval *v = jscan_get(top, key);
	if (!v)
		return 0;
	if (v->type != JT_STRING || jscan_string(v, out, cap, len) < 0)
		return -1;
	return 1;
}

static int get_bool(const struct jtop *top, const char *key, bool *out)
{
	const struct jval *v = jscan_get(top, key);
	if (!v)
		return 0;
	if (v->type != JT_TRUE && v->type != JT_FALSE)
		return -1;
	*out = v->type == JT_TRUE;
	return 1;
}

/* An integer in [min, max]: 1 present, 0 absent, -1 wrong. */
static int get_uint(const struct jtop *top, const char *key, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	const struct jval *v = jscan_get(top, key);
	uint64_t x;

	if (!v)
		return 0;
	if (jscan_uint(v, &x) < 0 || x < min || x > max)
		return -1;
	*out = x;
	return 1;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* rooms: an array of 1..API_ROOMS_MAX valid room names. v is valid JSON. */
static enum proto_err get_rooms(struct api_req *req, const struct jval *v)
{
	const char *p = v->p + 1, *end = v->p + v->n - 1;

	if (v->type != JT_ARRAY)
		return fail(req, PROTO_EBAD_REQUEST, "rooms must be an array of room names");
	p = skip_ws(p, end);
	while (p < end) {
		if (*p != '"')
			return fail(req, PROTO_EBAD_REQUEST, "rooms must be an array of room names");
		const char *q = p + 1;
		while (*q != '"')
			q += *q == '\\' ? 2 : 1; /* valid JSON: the string ends before end */
		if (req->nrooms == API_ROOMS_MAX)
			return fail(req, PROTO_EBAD_REQUEST, "at most %d rooms", API_ROOMS_MAX);
		if (!req->rooms)
			req->rooms = calloc(API_ROOMS_MAX, sizeof(*req->rooms));
		if (!req->rooms)
			abort();
		struct api_room *r = &req->rooms[req->nrooms];
		struct jval s = { JT_STRING, p, (size_t)(q + 1 - p) };
		if (jscan_string(&s, r->name, sizeof(r->name), &r->len) < 0 ||
		    !proto_room_valid(r->name, r->len))
			return fail(req, PROTO_EBAD_ROOM, "rooms[%zu]: %s", req->nrooms,
				    proto_err_message(PROTO_EBAD_ROOM));
		req->nrooms++;
		p = skip_ws(q + 1, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
	}
	if (!req->nrooms)
		return fail(req, PROTO_EBAD_REQUEST, "rooms must not be empty");
	return PROTO_OK;
}

enum proto_err api_req_body(const char *buf, size_t len, struct api_req *req)
{
	struct jtop top;
	const struct jval *v;
	const char *why;
	size_t pos;
	uint64_t x;
	int r;

	api_req_init(req);
	enum jscan_err je = jscan_object(buf, len, PROTO_DEPTH_MAX, PROTO_KEYS_MAX, &top, &pos, &why);
	if (je != JSCAN_OK)
		return proto_scan_error(je, pos, why, "body", req->errmsg, sizeof(req->errmsg));

	v = jscan_get(&top, "room");
	if (v && v->type != JT_STRING)
		return fail(req, PROTO_EBAD_REQUEST, "room must be a string");
	r = get_str(&top, "room", req->room, sizeof(req->room), &req->room_len);
	if (r && (r < 0 || !proto_room_valid(req->room, req->room_len)))
		return fail(req, PROTO_EBAD_ROOM, "room: %s", proto_err_message(PROTO_EBAD_ROOM));
	if (r > 0)
		req->has |= API_F_ROOM;

	if ((v = jscan_get(&top, "rooms"))) {
		enum proto_err e = get_rooms(req, v);
		if (e != PROTO_OK)
			return e;
		req->has |= API_F_ROOMS;
	}
	if ((v = jscan_get(&top, "data"))) {
		req->data_raw = v->p;
		req->data_raw_len = v->n;
		req->has |= API_F_DATA;
	}

	r = get_str(&top, "from", req->from, sizeof(req->from), &req->from_len);
	if (r && (r < 0 || !proto_name_valid(req->from, req->from_len)))
		return fail(req, PROTO_EBAD_NAME, "from: %s", proto_err_message(PROTO_EBAD_NAME));
	if (r > 0)
		req->has |= API_F_FROM;

	r = get_str(&top, "user", req->user, sizeof(req->user), &req->user_len);
	if (r && (r < 0 || !proto_name_valid(req->user, req->user_len)))
		return fail(req, PROTO_EBAD_NAME, "user: %s", proto_err_message(PROTO_EBAD_NAME));
	if (r > 0)
		req->has |= API_F_USER;

	r = get_str(&top, "key", req->key, sizeof(req->key), &req->key_len);
	if (r < 0 || (r > 0 && req->key_len == 0))
		return fail(req, PROTO_EBAD_REQUEST, "key must be a string of 1 to %d bytes", API_KEY_MAX);
	if (r > 0)
		req->has |= API_F_KEY;

	r = get_str(&top, "reason", req->reason, sizeof(req->reason), &req->reason_len);
	if (r < 0 || (r > 0 && memchr(req->reason, '\0', req->reason_len)))
		return fail(req, PROTO_EBAD_REQUEST, "reason must be a string of at most %d bytes",
			    API_REASON_MAX);
	if (r > 0)
		req->has |= API_F_REASON;

	if ((r = get_bool(&top, "persist", &req->persist)) < 0)
		return fail(req, PROTO_EBAD_REQUEST, "persist must be a boolean");
	if (r > 0)
		req->has |= API_F_PERSIST;
	if ((r = get_bool(&top, "presence", &req->presence)) < 0)
		return fail(req, PROTO_EBAD_REQUEST, "presence must be a boolean");
	if (r > 0)
		req->has |= API_F_PRESENCE;

	/* Application close codes: 4000-4999 (RFC 6455 7.4.2). */
	if ((r = get_uint(&top, "code", 4000, 4999, &x)) < 0)
		return fail(req, PROTO_EBAD_REQUEST, "code must be an integer from 4000 to 4999");
	if (r > 0) {
		req->code = (uint32_t)x;
		req->has |= API_F_CODE;
	}
	if ((r = get_uint(&top, "seq", 1, PROTO_ID_MAX, &req->seq)) < 0)
		return fail(req, PROTO_EBAD_REQUEST, "seq must be an integer from 1 to 2^53-1");
	if (r > 0)
		req->has |= API_F_SEQ;
	if ((r = get_uint(&top, "seconds", 0, PROTO_ID_MAX, &req->seconds)) < 0)
		return fail(req, PROTO_EBAD_REQUEST, "seconds must be an integer from 0 to 2^53-1");
	if (r > 0)
		req->has |= API_F_SECONDS;
	return PROTO_OK;
}

/* ---- query strings ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into out (cap with the NUL). -1: bad escape or
 * too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap, size_t *len)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (k + 1 >= cap)
			return -1;
		out[k++] = c;
	}
	out[k] = '\0';
	*len = k;
	return 0;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*out = x;
	return 0;
}

/* Room-name characters only (a prefix need not be a whole valid name). */
static int prefix_valid(const char *s, size_t n)
{
	char buf[PROTO_ROOM_MAX + 2];

	if (n == 0)
		return 1;
	if (n > PROTO_ROOM_MAX)
		return 0;
	memcpy(buf, s, n);
	return proto_room_valid(buf, n);
}

enum proto_err api_req_query(const char *q, size_t len, unsigned limit_max, struct api_req *req)
{
	char val[3 * PROTO_ROOM_MAX + 1];
	size_t vlen;

	for (size_t i = 0; q && i < len;) {
		size_t j = i;
		while (j < len && q[j] != '&')
			j++;
		const char *eq = memchr(q + i, '=', j - i);
		size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
		const char *k = q + i, *v = eq ? eq + 1 : q + j;
		size_t rawlen = (size_t)(q + j - v);
		i = j + 1;
		if (klen == 0)
			continue;
#define KEY(name) (klen == sizeof(name) - 1 && !memcmp(k, name, klen))
		if (!KEY("room") && !KEY("before") && !KEY("limit") && !KEY("prefix") && !KEY("cursor"))
			continue;
		if (pct_decode(v, rawlen, val, sizeof(val), &vlen) < 0)
			return fail(req, PROTO_EBAD_REQUEST, "%.*s: bad percent-encoding or too long",
				    (int)klen, k);
		if (KEY("room")) {
			if (vlen > PROTO_ROOM_MAX || !proto_room_valid(val, vlen))
				return fail(req, PROTO_EBAD_ROOM, "room: %s", proto_err_message(PROTO_EBAD_ROOM));
			memcpy(req->room, val, vlen + 1);
			req->room_len = vlen;
			req->has |= API_F_ROOM;
		} else if (KEY("before")) {
			if (parse_u64(val, vlen, &req->before) < 0 || req->before < 1 ||
			    req->before > PROTO_ID_MAX)
				return fail(req, PROTO_EBAD_REQUEST, "before must be an integer from 1 to 2^53-1");
			req->has |= API_F_BEFORE;
		} else if (KEY("limit")) {
			uint64_t x;
			if (parse_u64(val, vlen, &x) < 0 || x < 1 || x > limit_max)
				return fail(req, PROTO_EBAD_REQUEST, "limit must be an integer from 1 to %u",
					    limit_max);
			req->limit = (unsigned)x;
			req->has |= API_F_LIMIT;
		} else if (KEY("prefix")) {
			if (!prefix_valid(val, vlen))
				return fail(req, PROTO_EBAD_ROOM, "prefix: room names are letters, digits and _-.:@");
			memcpy(req->prefix, val, vlen + 1);
			req->prefix_len = vlen;
			req->has |= API_F_PREFIX;
		} else {
			if (vlen && (vlen > PROTO_ROOM_MAX || !proto_room_valid(val, vlen)))
				return fail(req, PROTO_EBAD_REQUEST, "cursor is not one this server gave");
			memcpy(req->cursor, val, vlen + 1);
			req->cursor_len = vlen;
			req->has |= API_F_CURSOR;
		}
#undef KEY
	}
	return PROTO_OK;
}

static const struct {
	uint32_t bit;
	const char *name;
} field_names[] = {
	{ API_F_ROOM, "room" }, { API_F_ROOMS, "rooms" }, { API_F_DATA, "data" },
	{ API_F_FROM, "from" }, { API_F_PERSIST, "persist" }, { API_F_KEY, "key" },
	{ API_F_USER, "user" }, { API_F_CODE, "code" }, { API_F_REASON, "reason" },
	{ API_F_SEQ, "seq" }, { API_F_SECONDS, "seconds" }, { API_F_PRESENCE, "presence" },
	{ API_F_BEFORE, "before" }, { API_F_LIMIT, "limit" }, { API_F_PREFIX, "prefix" },
	{ API_F_CURSOR, "cursor" },
};

enum proto_err api_req_need(struct api_req *req, uint32_t need)
{
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if ((need & field_names[i].bit) && !(req->has & field_names[i].bit))
			return fail(req, PROTO_EBAD_REQUEST, "%s is required%s", field_names[i].name,
				    field_names[i].bit == API_F_DATA ? " (null is allowed)" : "");
	return PROTO_OK;
}

/* ---- chunked bodies (RFC 9112 7.1) ---- */

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER,
       CH_TRAILER_LF, CH_DONE, CH_BAD };

enum api_chunk_rc api_chunked_feed(struct api_chunked *d, const char *in, size_t len,
				   size_t *used, void (*out)(void *arg, const char *p, size_t n),
				   void *arg)
{
	size_t i = 0;

	while (i < len && d->state != CH_DONE && d->state != CH_BAD) {
		char c = in[i];
		switch (d->state) {
		case CH_SIZE: {
			int h = hexval(c);
			if (h >= 0) {
				if (++d->digits > 8) { /* 4 GiB: far past any limit */
					d->state = CH_BAD;
					break;
				}
				d->left = d->left * 16 + (uint64_t)h;
			} else if (d->digits && (c == ';' || c == ' ' || c == '\t')) {
				d->state = CH_EXT;
			} else if (d->digits && c == '\r') {
				d->state = CH_SIZE_LF;
			} else {
				d->state = CH_BAD;
			}
			i++;
			break;
		}
		case CH_EXT:
			if (c == '\r')
				d->state = CH_SIZE_LF;
			i++;
			break;
		case CH_SIZE_LF:
			if (c != '\n') {
				d->state = CH_BAD;
				break;
			}
			i++;
			d->digits = 0;
			d->line = 0;
			d->state = d->left ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			size_t n = len - i < d->left ? len - i : (size_t)d->left;
			out(arg, in + i, n);
			i += n;
			d->left -= n;
			if (!d->left)
				d->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			d->state = c == '\r' ? CH_DATA_LF : CH_BAD;
			i++;
			break;
		case CH_DATA_LF:
			d->state = c == '\n' ? CH_SIZE : CH_BAD;
			i++;
			break;
		case CH_TRAILER:
			/* trailer fields are read and ignored; an empty line ends them */
			if (c == '\r')
				d->state = CH_TRAILER_LF;
			else if (++d->line > 8192)
				d->state = CH_BAD;
			i++;
			break;
		case CH_TRAILER_LF:
			if (c != '\n') {
				d->state = CH_BAD;
				break;
			}
			i++;
			d->state = d->line ? CH_TRAILER : CH_DONE;
			d->line = 0;
			break;
		}
	}
	*used = i;
	if (d->state == CH_BAD)
		return API_CHUNK_BAD;
	return d->state == CH_DONE ? API_CHUNK_DONE : API_CHUNK_MORE;
}
