/*
 * sio_bin.c - binary data between Socket.IO clients and native clients
 * (sio_bin_ prefix; sio.h).
 *
 * Socket.IO carries a Buffer as an attachment, named in the JSON by a
 * placeholder {"_placeholder":true,"num":N}. The native protocol is JSON
 * text only, so a message published with attachments is stored and sent
 * to native clients with each placeholder replaced by a wrapper:
 *
 *     {"$base64":"AQID"}        (the bytes 1 2 3)
 *
 * An object is a wrapper when it has exactly one member, named "$base64",
 * whose value is a string of canonical, padded base64 (RFC 4648). Anything
 * else is plain JSON and stays as it is. Going to a Socket.IO client, every
 * wrapper becomes an attachment again, so a Buffer sent by one Socket.IO
 * client arrives as a Buffer at another, and a native client can send bytes
 * to Socket.IO clients by writing the wrapper.
 *
 * Both walks run over JSON already validated by jscan (a decoded packet or
 * a stored message), produce compact JSON, and recurse at most as deep as
 * that validation allowed.
 */
#define _GNU_SOURCE /* memmem */
#include "sio.h"
#include "eio.h"

#include <stdint.h>
#include <string.h>

/* ---- small walks over valid JSON ---- */

static void ws(const char *p, size_t n, size_t *i)
{
	while (*i < n && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\n' || p[*i] == '\r'))
		(*i)++;
}

static size_t string_end(const char *p, size_t n, size_t i)
{
	i++;
	while (i < n && p[i] != '"')
		i += p[i] == '\\' ? 2 : 1;
	return i + 1;
}

static size_t scalar_end(const char *p, size_t n, size_t i)
{
	while (i < n && p[i] != ',' && p[i] != ']' && p[i] != '}' && p[i] != ' ' &&
	       p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
		i++;
	return i;
}

static size_t value_end(const char *p, size_t n, size_t i)
{
	if (p[i] == '"')
		return string_end(p, n, i);
	if (p[i] != '{' && p[i] != '[')
		return scalar_end(p, n, i);
	unsigned depth = 0;
	while (i < n) {
		char c = p[i];
		if (c == '"') {
			i = string_end(p, n, i);
			continue;
		}
		i++;
		if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			break;
	}
	return i;
}

/* The members of the object at p[i] == '{': up to max key/value spans. */
struct member_span {
	size_t k0, k1, v0, v1;
};

static size_t members(const char *p, size_t n, size_t i, struct member_span *m, size_t max)
{
	size_t count = 0;

	i++;
	for (;;) {
		ws(p, n, &i);
		if (p[i] == '}')
			return count;
		if (p[i] == ',') {
			i++;
			ws(p, n, &i);
		}
		size_t k0 = i, k1 = string_end(p, n, i);
		i = k1;
		ws(p, n, &i);
		i++; /* ':' */
		ws(p, n, &i);
		size_t v0 = i, v1 = value_end(p, n, i);
		if (count < max)
			m[count] = (struct member_span){ k0, k1, v0, v1 };
		count++;
		i = v1;
	}
}

static bool key_is(const char *p, const struct member_span *m, const char *name)
{
	struct jval k = { JT_STRING, p + m->k0, m->k1 - m->k0 };
	char buf[16];
	size_t len;
	return jscan_string(&k, buf, sizeof(buf), &len) == 0 && len == strlen(name) &&
	       !memcmp(buf, name, len);
}

/* ---- placeholders -> wrappers ---- */

/* The attachment a placeholder object at p[i] names, or -1 when it is not
 * a placeholder; *bad when it is one with a bad num (the last of duplicate
 * keys counts, as in sio.c). */
static long placeholder_num(const char *p, size_t n, size_t i, size_t natt, bool *bad)
{
	bool is_ph = false;
	struct jval num = { JT_NONE, NULL, 0 };

	i++;
	for (;;) {
		ws(p, n, &i);
		if (p[i] == '}')
			break;
		if (p[i] == ',') {
			i++;
			ws(p, n, &i);
		}
		struct member_span m;
		m.k0 = i;
		m.k1 = string_end(p, n, i);
		i = m.k1;
		ws(p, n, &i);
		i++; /* ':' */
		ws(p, n, &i);
		m.v0 = i;
		m.v1 = value_end(p, n, i);
		i = m.v1;
		if (key_is(p, &m, "_placeholder"))
			is_ph = m.v1 - m.v0 == 4 && !memcmp(p + m.v0, "true", 4);
		else if (key_is(p, &m, "num"))
			num = (struct jval){ p[m.v0] == '-' || (p[m.v0] >= '0' && p[m.v0] <= '9') ?
					     JT_NUMBER : JT_STRING, p + m.v0, m.v1 - m.v0 };
	}
	if (!is_ph)
		return -1;
	uint64_t v;
	if (jscan_uint(&num, &v) < 0 || v >= natt) {
		*bad = true;
		return -1;
	}
	return (long)v;
}

static int wrap_value(struct pbuf *out, const char *p, size_t n, size_t *i,
		      const struct sio_att *att, size_t natt)
{
	char c = p[*i];
	size_t end = value_end(p, n, *i);

	if (c == '{') {
		bool bad = false;
		long k = placeholder_num(p, n, *i, natt, &bad);
		if (bad)
			return -1;
		if (k >= 0) {
			pbuf_adds(out, "{\"$base64\":\"");
			eio_b64_encode(out, att[k].p, att[k].n);
			pbuf_adds(out, "\"}");
			*i = end;
			return 0;
		}
	}
	if (c != '{' && c != '[') {
		pbuf_add(out, p + *i, end - *i);
		*i = end;
		return 0;
	}
	char close = c == '{' ? '}' : ']';
	bool first = true;
	pbuf_addc(out, c);
	(*i)++;
	for (;;) {
		ws(p, n, i);
		if (p[*i] == close)
			break;
		if (p[*i] == ',') {
			(*i)++;
			ws(p, n, i);
		}
		if (!first)
			pbuf_addc(out, ',');
		first = false;
		if (c == '{') {
			size_t k1 = string_end(p, n, *i);
			pbuf_add(out, p + *i, k1 - *i);
			pbuf_addc(out, ':');
			*i = k1;
			ws(p, n, i);
			(*i)++; /* ':' */
			ws(p, n, i);
		}
		if (wrap_value(out, p, n, i, att, natt) < 0)
			return -1;
	}
	pbuf_addc(out, close);
	*i = end;
	return 0;
}

int sio_bin_wrap(struct pbuf *out, const char *json, size_t n, const struct sio_att *att,
		 size_t natt)
{
	size_t i = 0;

	ws(json, n, &i);
	return i < n ? wrap_value(out, json, n, &i, att, natt) : -1;
}

/* ---- wrappers -> placeholders ---- */

/* If the object at p[i] is a wrapper, decodes its bytes onto bytes and
 * returns 1; 0 when it is plain JSON. */
static int take_wrapper(const char *p, size_t n, size_t i, struct pbuf *bytes)
{
	struct member_span m[2];
	if (members(p, n, i, m, 2) != 1 || !key_is(p, &m[0], "$base64") || p[m[0].v0] != '"')
		return 0;
	/* base64 has no character JSON must escape; an escaped one ("\/")
	 * is not the canonical text, so such a string is not a wrapper. */
	const char *s = p + m[0].v0 + 1;
	size_t len = m[0].v1 - m[0].v0 - 2;
	if (memchr(s, '\\', len) || len % 4)
		return 0;
	size_t at = bytes->len;
	pbuf_reserve(bytes, len / 4 * 3 + 1);
	long k = eio_b64_decode(s, len, (uint8_t *)bytes->data + at);
	if (k < 0)
		return 0;
	bytes->len = at + (size_t)k;
	return 1;
}

struct unwrap {
	struct pbuf *out, *bytes;
	size_t *off;
	size_t max, count;
	bool literal_ph;      /* a placeholder object is in the plain JSON */
};

static int unwrap_value(struct unwrap *u, const char *p, size_t n, size_t *i)
{
	char c = p[*i];
	size_t end = value_end(p, n, *i);

	if (c == '{') {
		size_t before = u->bytes->len;
		if (take_wrapper(p, n, *i, u->bytes)) {
			if (u->count == u->max)
				return -1;
			u->off[u->count] = before;
			sio_enc_placeholder(u->out, (unsigned)u->count);
			u->count++;
			*i = end;
			return 0;
		}
		bool bad = false;
		if (placeholder_num(p, n, *i, SIZE_MAX, &bad) >= 0 || bad)
			u->literal_ph = true;
	}
	if (c != '{' && c != '[') {
		pbuf_add(u->out, p + *i, end - *i);
		*i = end;
		return 0;
	}
	char close = c == '{' ? '}' : ']';
	bool first = true;
	pbuf_addc(u->out, c);
	(*i)++;
	for (;;) {
		ws(p, n, i);
		if (p[*i] == close)
			break;
		if (p[*i] == ',') {
			(*i)++;
			ws(p, n, i);
		}
		if (!first)
			pbuf_addc(u->out, ',');
		first = false;
		if (c == '{') {
			size_t k1 = string_end(p, n, *i);
			pbuf_add(u->out, p + *i, k1 - *i);
			pbuf_addc(u->out, ':');
			*i = k1;
			ws(p, n, i);
			(*i)++;
			ws(p, n, i);
		}
		if (unwrap_value(u, p, n, i) < 0)
			return -1;
	}
	pbuf_addc(u->out, close);
	*i = end;
	return 0;
}

long sio_bin_unwrap(struct pbuf *out, const char *json, size_t n, struct pbuf *bytes,
		    struct sio_att *att, size_t max_att)
{
	size_t off[SIO_ATTACH_HARD_MAX];
	struct unwrap u = { out, bytes, off, max_att < SIO_ATTACH_HARD_MAX ? max_att : SIO_ATTACH_HARD_MAX,
			    0, false };
	size_t i = 0;

	ws(json, n, &i);
	if (i >= n || unwrap_value(&u, json, n, &i) < 0)
		return -1;
	/* A receiver rebuilding a binary packet would take a placeholder
	 * object that was plain data for an attachment (or refuse the
	 * packet): such a message cannot go as a binary packet. */
	if (u.count && u.literal_ph)
		return -1;
	/* Pointers only now: bytes may have moved while it grew. */
	for (size_t k = 0; k < u.count; k++) {
		size_t e = k + 1 < u.count ? off[k + 1] : bytes->len;
		att[k].p = bytes->data ? (const uint8_t *)bytes->data + off[k] : (const uint8_t *)"";
		att[k].n = e - off[k];
	}
	return (long)u.count;
}

/* ---- whole packets ---- */

/* 1 if "$base64" (quoted) occurs in p: memchr for the rare '$' (most
 * messages have none), then a look at each. */
static int has_wrapper_key(const char *p, size_t n)
{
	const char *e = p + n, *d = p + 1;

	while (d < e && (d = memchr(d, '$', (size_t)(e - d))) != NULL) {
		if ((size_t)(e - d) >= 8 && d[-1] == '"' && !memcmp(d, "$base64\"", 8))
			return 1;
		d++;
	}
	return 0;
}

size_t sio_encode_auto(struct pbuf *b, enum sio_type type, const char *nsp, size_t nsp_len,
		       bool has_id, uint64_t id, const char *data, size_t data_len,
		       struct pbuf *bytes, struct sio_att *att, size_t max_att)
{
	/* Cheap test first: most messages hold no wrapper at all. (A wrapper
	 * whose key is written with escapes, "\u0024base64", is missed here
	 * and goes as plain JSON: nothing is lost.) */
	if (data_len >= 10 && has_wrapper_key(data, data_len)) {
		struct pbuf tmp = { 0 };
		size_t keep = bytes->len;
		long k = sio_bin_unwrap(&tmp, data, data_len, bytes, att, max_att);
		if (k > 0) {
			sio_encode(b, type, nsp, nsp_len, has_id, id, (unsigned)k, tmp.data, tmp.len);
			pbuf_free(&tmp);
			return (size_t)k;
		}
		bytes->len = keep;
		pbuf_free(&tmp);
	}
	sio_encode(b, type, nsp, nsp_len, has_id, id, 0, data, data_len);
	return 0;
}
