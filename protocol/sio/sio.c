/*
 * sio.c - Socket.IO v5 packet codec (sio.h).
 *
 * The payload is validated once by the shared JSON scanner (jscan_value:
 * RFC 8259, UTF-8, the native protocol's depth and key bounds), so the
 * walks below run over text known to be valid JSON and only look at its
 * shape: the top-level type, the first array element, and placeholders.
 */
#include "sio.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers past this size are given back once their packet is done. */
#define SIO_KEEP_BYTES 65536

static const char *const sio_errs[SIO_ERR_COUNT] = {
#define SIO_X(name, msg) [name] = msg,
	SIO_ERRORS(SIO_X)
#undef SIO_X
};

const char *sio_strerror(enum sio_err e)
{
	return (unsigned)e < SIO_ERR_COUNT ? sio_errs[e] : "unknown error";
}

/* Names the reference parser refuses as events: they mean something to the
 * client or to Node's EventEmitter. (lazy_event looks them up only for a
 * name beginning with the first letter of one: keep it in step.) */
static const char *const reserved_events[] = {
	"connect", "connect_error", "disconnect", "disconnecting",
	"newListener", "removeListener",
};

/* ================================================================ JSON walks */

/* Over valid JSON only. */
static void skip_ws(const char *p, size_t n, size_t *i)
{
	while (*i < n && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\n' || p[*i] == '\r'))
		(*i)++;
}

static void skip_string(const char *p, size_t n, size_t *i)
{
	(*i)++;
	while (*i < n && p[*i] != '"')
		*i += p[*i] == '\\' ? 2 : 1;
	(*i)++;
}

/* Skips one value starting at p[*i]; scalars end at a delimiter. */
static void skip_value(const char *p, size_t n, size_t *i)
{
	char c = p[*i];

	if (c == '"') {
		skip_string(p, n, i);
	} else if (c == '{' || c == '[') {
		unsigned depth = 0;
		while (*i < n) {
			c = p[*i];
			if (c == '"') {
				skip_string(p, n, i);
				continue;
			}
			(*i)++;
			if (c == '{' || c == '[') {
				depth++;
			} else if (c == '}' || c == ']') {
				if (--depth == 0)
					return;
			}
		}
	} else {
		while (*i < n && p[*i] != ',' && p[*i] != ']' && p[*i] != '}' &&
		       p[*i] != ' ' && p[*i] != '\t' && p[*i] != '\n' && p[*i] != '\r')
			(*i)++;
	}
}

static enum jtype type_of(char c)
{
	switch (c) {
	case '{': return JT_OBJECT;
	case '[': return JT_ARRAY;
	case '"': return JT_STRING;
	case 't': return JT_TRUE;
	case 'f': return JT_FALSE;
	case 'n': return JT_NULL;
	default:  return JT_NUMBER;
	}
}

static size_t array_items(const char *a, size_t n, struct jval *out, size_t max, bool all)
{
	size_t i = 1, count = 0;

	for (;;) {
		if (!all && count == max)
			return count;
		skip_ws(a, n, &i);
		if (i >= n || a[i] == ']')
			return count;
		if (a[i] == ',') {
			i++;
			skip_ws(a, n, &i);
		}
		size_t start = i;
		skip_value(a, n, &i);
		if (count < max) {
			out[count].type = type_of(a[start]);
			out[count].p = a + start;
			out[count].n = i - start;
		}
		count++;
	}
}

size_t sio_array_items(const char *a, size_t n, struct jval *out, size_t max)
{
	return array_items(a, n, out, max, true);
}

size_t sio_array_first(const char *a, size_t n, struct jval *out, size_t max)
{
	return array_items(a, n, out, max, false);
}

/* A key's unescaped text, or "" when it is longer than any key we look for. */
static void key_text(const char *p, size_t n, char out[16])
{
	struct jval k = { JT_STRING, p, n };
	size_t len;

	if (jscan_string(&k, out, 16, &len) < 0 || len != strlen(out))
		out[0] = '\0';
}

/* Calls fn on each member of the object at p[*i] (valid JSON), with *i at
 * the member's value; fn must leave *i past the value. Returns -1 as soon
 * as fn does. *i ends past the '}'. */
static int each_member(const char *p, size_t n, size_t *i, void *ctx,
		       int (*fn)(const char *p, size_t n, size_t *i, const char *key, void *ctx))
{
	(*i)++;
	for (;;) {
		skip_ws(p, n, i);
		if (p[*i] == '}') {
			(*i)++;
			return 0;
		}
		if (p[*i] == ',') {
			(*i)++;
			skip_ws(p, n, i);
		}
		size_t k0 = *i;
		skip_string(p, n, i);
		char key[16];
		key_text(p + k0, *i - k0, key);
		skip_ws(p, n, i);
		(*i)++; /* ':' */
		skip_ws(p, n, i);
		if (fn(p, n, i, key, ctx) < 0)
			return -1;
	}
}

struct ph_scan {
	bool is_ph;
	struct jval num;
	unsigned natt;
};

/* First pass over an object: its "_placeholder" and "num" (the last of
 * duplicate keys counts, as in JSON.parse). */
static int ph_member(const char *p, size_t n, size_t *i, const char *key, void *ctx)
{
	struct ph_scan *ph = ctx;
	size_t v0 = *i;

	skip_value(p, n, i);
	if (!strcmp(key, "_placeholder")) {
		ph->is_ph = *i - v0 == 4 && !memcmp(p + v0, "true", 4);
	} else if (!strcmp(key, "num")) {
		ph->num.type = type_of(p[v0]);
		ph->num.p = p + v0;
		ph->num.n = *i - v0;
	}
	return 0;
}

static int check_placeholders(const char *p, size_t n, size_t *i, unsigned natt);

static int ph_recurse(const char *p, size_t n, size_t *i, const char *key, void *ctx)
{
	return check_placeholders(p, n, i, *(unsigned *)ctx);
}

/* Checks every placeholder in the value at p[*i] (valid JSON), as the
 * reference decoder rebuilds a binary packet: an object whose
 * "_placeholder" is true stands for an attachment and must have a "num"
 * that is an integer in [0, natt) (its other members are not looked at);
 * any other object or array is searched. Returns 0 or -1. */
static int check_placeholders(const char *p, size_t n, size_t *i, unsigned natt)
{
	if (p[*i] == '[') {
		(*i)++;
		for (;;) {
			skip_ws(p, n, i);
			if (p[*i] == ']') {
				(*i)++;
				return 0;
			}
			if (p[*i] == ',') {
				(*i)++;
				skip_ws(p, n, i);
			}
			if (check_placeholders(p, n, i, natt) < 0)
				return -1;
		}
	}
	if (p[*i] != '{') {
		skip_value(p, n, i);
		return 0;
	}
	struct ph_scan ph = { false, { JT_NONE, NULL, 0 }, natt };
	size_t start = *i;
	each_member(p, n, i, &ph, ph_member);
	if (ph.is_ph) {
		uint64_t k;
		/* The reference takes any number that indexes the array (1.0,
		 * 1e0); Parley wants the plain integer encoders write. */
		return jscan_uint(&ph.num, &k) < 0 || k >= natt ? -1 : 0;
	}
	*i = start;
	return each_member(p, n, i, &natt, ph_recurse);
}

/* ================================================================ parsing */

static bool is_binary(enum sio_type t)
{
	return t == SIO_BINARY_EVENT || t == SIO_BINARY_ACK;
}

static enum sio_err check_payload(struct sio_packet *pk, const struct sio_limits *lim,
				  const char *s, size_t n)
{
	struct jval v;
	size_t pos;
	const char *why;

	switch (jscan_value(s, n, lim->max_depth, lim->max_keys, &v, &pos, &why)) {
	case JSCAN_OK: break;
	case JSCAN_DEPTH: return SIO_E_DEPTH;
	case JSCAN_KEYS: return SIO_E_KEYS;
	default: return SIO_E_JSON;
	}
	pk->data = v.p;
	pk->data_len = v.n;
	switch (pk->type) {
	case SIO_CONNECT:
		return v.type == JT_OBJECT ? SIO_OK : SIO_E_PAYLOAD;
	case SIO_DISCONNECT:
		return SIO_E_PAYLOAD;
	case SIO_CONNECT_ERROR:
		return v.type == JT_OBJECT || v.type == JT_STRING ? SIO_OK : SIO_E_PAYLOAD;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		if (v.type != JT_ARRAY)
			return SIO_E_PAYLOAD;
		break;
	case SIO_EVENT:
	case SIO_BINARY_EVENT: {
		if (v.type != JT_ARRAY)
			return SIO_E_PAYLOAD;
		struct jval first;
		if (sio_array_first(v.p, v.n, &first, 1) == 0)
			return SIO_E_PAYLOAD;
		if (first.type == JT_STRING) {
			char name[16];
			size_t len;
			if (jscan_string(&first, name, sizeof(name), &len) == 0) {
				for (size_t k = 0; k < sizeof(reserved_events) / sizeof(*reserved_events); k++)
					if (len == strlen(reserved_events[k]) &&
					    !memcmp(name, reserved_events[k], len))
						return SIO_E_RESERVED;
			}
		} else if (first.type != JT_NUMBER) {
			return SIO_E_PAYLOAD;
		}
		pk->event = first;
		break;
	}
	default:
		return SIO_E_TYPE;
	}
	if (is_binary(pk->type)) {
		size_t i = 0;
		if (check_placeholders(v.p, v.n, &i, pk->attachments) < 0)
			return SIO_E_PLACEHOLDER;
	}
	return SIO_OK;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * lazy_events: recognises ["name",{…}] (white space allowed where JSON
 * allows it) by its outline only, without scanning the argument: the
 * Parley edge builds its command from the argument and the command core's
 * scan of that command validates it, one JSON pass instead of two. A name
 * with an escape or a non-ASCII byte, a reserved name, or any other shape
 * returns false and takes the full check.
 */
static bool lazy_event(struct sio_packet *pk, const char *p, size_t n)
{
	size_t i = 0, e = n;

	while (i < e && is_ws(p[i]))
		i++;
	while (e > i && is_ws(p[e - 1]))
		e--;
	if (e - i < 6 || p[i] != '[' || p[e - 1] != ']')
		return false;
	size_t start = i++;
	while (i < e && is_ws(p[i]))
		i++;
	if (i >= e || p[i] != '"')
		return false;
	size_t ns = i++;
	while (i < e && p[i] != '"') {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return false;
		i++;
	}
	if (i >= e)
		return false;
	i++;
	size_t nn = i - ns;
	while (i < e && is_ws(p[i]))
		i++;
	if (i >= e || p[i] != ',')
		return false;
	i++;
	while (i < e && is_ws(p[i]))
		i++;
	size_t ae = e - 1; /* at the ']' */
	while (ae > i && is_ws(p[ae - 1]))
		ae--;
	if (ae < i + 2 || p[i] != '{' || p[ae - 1] != '}')
		return false;
	/* the reserved names begin with c, d, n or r: most events' do not */
	char c0 = p[ns + 1];
	if (c0 == 'c' || c0 == 'd' || c0 == 'n' || c0 == 'r')
		for (size_t k = 0; k < sizeof(reserved_events) / sizeof(*reserved_events); k++)
			if (nn - 2 == strlen(reserved_events[k]) &&
			    !memcmp(p + ns + 1, reserved_events[k], nn - 2))
				return false;
	pk->data = p + start;
	pk->data_len = e - start;
	pk->event = (struct jval){ JT_STRING, p + ns, nn };
	pk->arg = (struct jval){ JT_OBJECT, p + i, ae - i };
	pk->unchecked = true;
	return true;
}

enum sio_err sio_check(struct sio_packet *pk, const struct sio_limits *lim)
{
	if (!pk->unchecked)
		return SIO_OK;
	pk->unchecked = false;
	pk->arg = (struct jval){ JT_NONE, NULL, 0 };
	return check_payload(pk, lim, pk->data, pk->data_len);
}

enum sio_err sio_parse(const char *s, size_t n, const struct sio_limits *lim,
		       struct sio_packet *out)
{
	size_t i = 1;

	memset(out, 0, sizeof(*out));
	out->event.type = JT_NONE;
	if (n == 0)
		return SIO_E_EMPTY;
	if (!is_digit(s[0]) || s[0] - '0' >= SIO_TYPE_COUNT)
		return SIO_E_TYPE;
	out->type = (enum sio_type)(s[0] - '0');

	if (is_binary(out->type)) {
		uint64_t k = 0;
		size_t start = i;
		while (i < n && is_digit(s[i]) && i - start < 6)
			k = k * 10 + (uint64_t)(s[i++] - '0');
		if (i == start || i >= n || s[i] != '-')
			return SIO_E_ATTACHMENTS;
		if (k > lim->max_attachments)
			return SIO_E_TOO_MANY_ATT;
		out->attachments = (unsigned)k;
		i++;
	}

	/* The namespace runs to the first ',' or the end (the reference
	 * parser's rule: "40/custom" is "/custom" with no payload). */
	if (i < n && s[i] == '/') {
		size_t start = i;
		while (i < n && s[i] != ',')
			i++;
		out->nsp = s + start;
		out->nsp_len = i - start;
		if (i < n)
			i++;
		if (out->nsp_len > SIO_NSP_MAX)
			return SIO_E_NSP;
		for (size_t k = 0; k < out->nsp_len; k++) {
			unsigned char c = (unsigned char)out->nsp[k];
			if (c < 0x20 || c == 0x7f)
				return SIO_E_NSP;
		}
	} else {
		out->nsp = "/";
		out->nsp_len = 1;
	}

	if (i < n && is_digit(s[i])) {
		uint64_t id = 0;
		size_t start = i;
		while (i < n && is_digit(s[i])) {
			if (i - start >= 16)
				return SIO_E_ID;
			id = id * 10 + (uint64_t)(s[i++] - '0');
		}
		if (id > SIO_ID_MAX)
			return SIO_E_ID;
		out->has_id = true;
		out->id = id;
	}

	if (i < n && lim->lazy_events && out->type == SIO_EVENT && out->nsp_len == 1 &&
	    out->nsp[0] == '/' && lazy_event(out, s + i, n - i))
		return SIO_OK;
	if (i < n)
		return check_payload(out, lim, s + i, n - i);
	switch (out->type) {
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		/* The reference parser lets "2" through and its server then
		 * dispatches an event with no name; refusing it is safer. */
		return SIO_E_PAYLOAD;
	default:
		return SIO_OK;
	}
}

/* ================================================================ decoder */

void sio_decoder_init(struct sio_decoder *d, const struct sio_limits *lim)
{
	memset(d, 0, sizeof(*d));
	if (lim) {
		d->lim = *lim;
	} else {
		d->lim.max_attachments = SIO_ATTACH_MAX_DEF;
		d->lim.max_binary_bytes = 1000000;
		d->lim.max_depth = PROTO_DEPTH_MAX;
		d->lim.max_keys = PROTO_KEYS_MAX;
	}
	if (d->lim.max_attachments > SIO_ATTACH_HARD_MAX)
		d->lim.max_attachments = SIO_ATTACH_HARD_MAX;
}

void sio_decoder_reset(struct sio_decoder *d)
{
	d->awaiting = false;
	d->got = 0;
	pbuf_reset(&d->text);
	pbuf_reset(&d->bin);
}

void sio_decoder_free(struct sio_decoder *d)
{
	pbuf_free(&d->text);
	pbuf_free(&d->bin);
	free(d->off);
	free(d->att);
	d->off = NULL;
	d->att = NULL;
	d->awaiting = false;
	d->got = 0;
}

/* Between packets: what a big one grew is not kept per connection. */
static void trim(struct sio_decoder *d)
{
	if (d->bin.cap > SIO_KEEP_BYTES)
		pbuf_free(&d->bin);
	if (d->text.cap > SIO_KEEP_BYTES)
		pbuf_free(&d->text);
}

enum sio_err sio_decoder_text(struct sio_decoder *d, const char *s, size_t n,
			      struct sio_packet *out)
{
	if (d->awaiting) {
		sio_decoder_reset(d);
		return SIO_E_UNEXPECTED_TEXT;
	}
	trim(d);
	enum sio_err e = sio_parse(s, n, &d->lim, out);
	if (e || !is_binary(out->type) || out->attachments == 0)
		return e;
	if (!d->off) {
		size_t k = d->lim.max_attachments ? d->lim.max_attachments : 1;
		d->off = calloc(k, sizeof(*d->off));
		d->att = calloc(k, sizeof(*d->att));
		if (!d->off || !d->att) {
			fprintf(stderr, "parley: out of memory\n");
			abort();
		}
	}
	/* The attachments arrive in later frames, after the caller's input
	 * is gone: keep a copy of the header and point the packet into it. */
	pbuf_reset(&d->text);
	pbuf_add(&d->text, s, n);
	e = sio_parse(d->text.data, n, &d->lim, &d->pending);
	if (e)
		return e; /* cannot happen: the same bytes parsed above */
	d->awaiting = true;
	d->got = 0;
	pbuf_reset(&d->bin);
	return SIO_MORE;
}

enum sio_err sio_decoder_binary(struct sio_decoder *d, const uint8_t *p, size_t n,
				struct sio_packet *out)
{
	if (!d->awaiting)
		return SIO_E_UNEXPECTED_BINARY;
	if (n > d->lim.max_binary_bytes - d->bin.len) {
		sio_decoder_reset(d);
		return SIO_E_TOO_LARGE;
	}
	d->off[d->got++] = d->bin.len;
	if (n) /* an empty attachment's pointer may be NULL */
		pbuf_add(&d->bin, p, n);
	if (d->got < d->pending.attachments)
		return SIO_MORE;
	/* Pointers only now: bin may have moved while it grew. */
	for (size_t k = 0; k < d->got; k++) {
		size_t end = k + 1 < d->got ? d->off[k + 1] : d->bin.len;
		d->att[k].p = d->bin.data ? (const uint8_t *)d->bin.data + d->off[k]
					  : (const uint8_t *)"";
		d->att[k].n = end - d->off[k];
	}
	*out = d->pending;
	out->att = d->att;
	d->awaiting = false;
	return SIO_OK;
}

/* ================================================================ encoding */

void sio_enc_header(struct pbuf *b, enum sio_type type, const char *nsp, size_t nsp_len,
		    bool has_id, uint64_t id, unsigned nattach)
{
	if (nattach && type == SIO_EVENT)
		type = SIO_BINARY_EVENT;
	else if (nattach && type == SIO_ACK)
		type = SIO_BINARY_ACK;
	pbuf_addc(b, (char)('0' + type));
	if (is_binary(type)) {
		pbuf_add_u64(b, nattach);
		pbuf_addc(b, '-');
	}
	if (nsp && nsp_len && !(nsp_len == 1 && nsp[0] == '/')) {
		pbuf_add(b, nsp, nsp_len);
		pbuf_addc(b, ',');
	}
	if (has_id)
		pbuf_add_u64(b, id);
}

void sio_enc_placeholder(struct pbuf *b, unsigned num)
{
	pbuf_adds(b, "{\"_placeholder\":true,\"num\":");
	pbuf_add_u64(b, num);
	pbuf_addc(b, '}');
}

void sio_encode(struct pbuf *b, enum sio_type type, const char *nsp, size_t nsp_len,
		bool has_id, uint64_t id, unsigned nattach, const char *data, size_t data_len)
{
	sio_enc_header(b, type, nsp, nsp_len, has_id, id, nattach);
	if (data && data_len)
		pbuf_add(b, data, data_len);
}

void sio_enc_connect(struct pbuf *b, const char *nsp, size_t nsp_len, const char *sid)
{
	sio_enc_header(b, SIO_CONNECT, nsp, nsp_len, false, 0, 0);
	pbuf_adds(b, "{\"sid\":");
	pbuf_add_jstr(b, sid, strlen(sid));
	pbuf_addc(b, '}');
}

void sio_enc_connect_error(struct pbuf *b, const char *nsp, size_t nsp_len, const char *msg)
{
	sio_enc_header(b, SIO_CONNECT_ERROR, nsp, nsp_len, false, 0, 0);
	pbuf_adds(b, "{\"message\":");
	pbuf_add_jstr(b, msg, strlen(msg));
	pbuf_addc(b, '}');
}

void sio_enc_disconnect(struct pbuf *b, const char *nsp, size_t nsp_len)
{
	sio_enc_header(b, SIO_DISCONNECT, nsp, nsp_len, false, 0, 0);
}

void sio_enc_event_open(struct pbuf *b, const char *nsp, size_t nsp_len, bool has_id,
			uint64_t id, unsigned nattach, const char *name, size_t name_len)
{
	sio_enc_header(b, SIO_EVENT, nsp, nsp_len, has_id, id, nattach);
	pbuf_addc(b, '[');
	pbuf_add_jstr(b, name, name_len);
}
