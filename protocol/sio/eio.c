/* eio.c - Engine.IO v4 packet and payload codec (eio.h). */
#include "eio.h"
#include "utf8.h"

#include <string.h>

static const char *const eio_errs[EIO_ERR_COUNT] = {
	[EIO_OK] = "ok",
	[EIO_E_EMPTY] = "empty packet",
	[EIO_E_TYPE] = "unknown packet type",
	[EIO_E_BASE64] = "invalid base64 in a binary packet",
	[EIO_E_UTF8] = "payload is not valid UTF-8",
	[EIO_E_TOO_LARGE] = "payload larger than maxPayload",
	[EIO_E_TOO_MANY] = "too many packets in one payload",
};

const char *eio_strerror(enum eio_err e)
{
	return (unsigned)e < EIO_ERR_COUNT ? eio_errs[e] : "unknown error";
}

/* ================================================================ decoding */

enum eio_err eio_decode_text(const char *s, size_t n, struct eio_packet *out)
{
	if (n == 0)
		return EIO_E_EMPTY;
	if (s[0] < '0' || s[0] > '6')
		return EIO_E_TYPE;
	out->type = (enum eio_type)(s[0] - '0');
	out->binary = false;
	out->data = (const uint8_t *)s + 1;
	out->len = n - 1;
	return EIO_OK;
}

void eio_decode_binary(const uint8_t *p, size_t n, struct eio_packet *out)
{
	out->type = EIO_MESSAGE;
	out->binary = true;
	out->data = p;
	out->len = n;
}

/* One polling record s[0..n), decoded in place. */
static enum eio_err decode_record(char *s, size_t n, struct eio_packet *out)
{
	if (n == 0)
		return EIO_E_EMPTY;
	if (s[0] == 'b') {
		long k = eio_b64_decode(s + 1, n - 1, (uint8_t *)s + 1);
		if (k < 0)
			return EIO_E_BASE64;
		eio_decode_binary((const uint8_t *)s + 1, (size_t)k, out);
		return EIO_OK;
	}
	return eio_decode_text(s, n, out);
}

enum eio_err eio_decode_payload(char *body, size_t n, size_t max_payload,
				struct eio_packet *out, size_t max_packets, size_t *count)
{
	struct utf8_state u8 = { 0 };
	size_t start = 0;

	*count = 0;
	if (n > max_payload)
		return EIO_E_TOO_LARGE;
	/* The body travels as text/plain; a browser or Node.js would turn
	 * invalid UTF-8 into U+FFFD, which the JSON above would then carry
	 * silently. Refusing it keeps every byte the client meant. */
	if (utf8_feed(&u8, (const unsigned char *)body, n) < 0 || utf8_end(&u8) < 0)
		return EIO_E_UTF8;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && body[i] != EIO_RS)
			continue;
		if (*count == max_packets)
			return EIO_E_TOO_MANY;
		enum eio_err e = decode_record(body + start, i - start, &out[*count]);
		if (e)
			return e;
		(*count)++;
		start = i + 1;
	}
	return EIO_OK;
}

/* ================================================================ encoding */

size_t eio_encoded_len(const struct eio_packet *p)
{
	return p->binary ? 1 + eio_b64_len(p->len) : 1 + p->len;
}

void eio_encode_packet(struct pbuf *b, const struct eio_packet *p)
{
	if (p->binary) {
		pbuf_addc(b, 'b');
		eio_b64_encode(b, p->data, p->len);
		return;
	}
	pbuf_addc(b, (char)('0' + p->type));
	if (p->len) /* an empty packet's data may be NULL, which memcpy may not get */
		pbuf_add(b, p->data, p->len);
}

void eio_encode_payload(struct pbuf *b, const struct eio_packet *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			pbuf_addc(b, EIO_RS);
		eio_encode_packet(b, &p[i]);
	}
}

void eio_encode_open(struct pbuf *b, const char *sid, bool upgrade_ws,
		     uint32_t ping_interval_ms, uint32_t ping_timeout_ms, uint64_t max_payload)
{
	pbuf_adds(b, "0{\"sid\":");
	pbuf_add_jstr(b, sid, strlen(sid));
	pbuf_adds(b, upgrade_ws ? ",\"upgrades\":[\"websocket\"]" : ",\"upgrades\":[]");
	pbuf_adds(b, ",\"pingInterval\":");
	pbuf_add_u64(b, ping_interval_ms);
	pbuf_adds(b, ",\"pingTimeout\":");
	pbuf_add_u64(b, ping_timeout_ms);
	pbuf_adds(b, ",\"maxPayload\":");
	pbuf_add_u64(b, max_payload);
	pbuf_addc(b, '}');
}

/* ================================================================ base64 */

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t eio_b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

static void b64_with(struct pbuf *b, const uint8_t *p, size_t n, const char *alpha, bool pad)
{
	pbuf_reserve(b, eio_b64_len(n));
	char *o = b->data + b->len;
	size_t i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		*o++ = alpha[(v >> 6) & 63];
		*o++ = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		if (pad) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		*o++ = alpha[(v >> 6) & 63];
		if (pad)
			*o++ = '=';
	}
	b->len = (size_t)(o - b->data);
}

void eio_b64_encode(struct pbuf *b, const uint8_t *p, size_t n)
{
	b64_with(b, p, n, b64_std, true);
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long eio_b64_decode(const char *s, size_t n, uint8_t *out)
{
	size_t o = 0, i = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	/* Optional padding: one or two '=' making the length a multiple of 4. */
	if (n >= 1 && s[n - 1] == '=') {
		size_t pad = (n >= 2 && s[n - 2] == '=') ? 2 : 1;
		if (n % 4)
			return -1;
		n -= pad;
	}
	if (n % 4 == 1)
		return -1; /* 6 bits cannot make a byte */
	/* Writing behind the read position is safe when out == s: after k
	 * characters at most k * 3 / 4 bytes are written. */
	for (; i < n; i++) {
		int v = b64_val(s[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1; /* non-zero unused bits: not a canonical encoding */
	return (long)o;
}

/* ================================================================ ids */

void eio_sid_format(const uint8_t rnd[15], char out[EIO_SID_LEN + 1])
{
	static const char url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct pbuf b = { out, 0, EIO_SID_LEN + 1 };

	/* 15 bytes are exactly 20 characters: no padding, and the buffer
	 * never grows (cap is already enough), so out is never reallocated. */
	b64_with(&b, rnd, 15, url, false);
	out[EIO_SID_LEN] = '\0';
}

/* ================================================================ HTTP errors */

static const struct {
	int status;
	const char *msg;
} http_errs[EIO_HERR_COUNT] = {
#define EIO_X(name, code, status, msg) [code] = { status, msg },
	EIO_HTTP_ERRORS(EIO_X)
#undef EIO_X
};

int eio_http_status(enum eio_http_err e)
{
	return (unsigned)e < EIO_HERR_COUNT ? http_errs[e].status : 400;
}

const char *eio_http_message(enum eio_http_err e)
{
	return (unsigned)e < EIO_HERR_COUNT ? http_errs[e].msg : "Bad request";
}

void eio_encode_http_error(struct pbuf *b, enum eio_http_err e, const char *msg)
{
	if (!msg)
		msg = eio_http_message(e);
	pbuf_adds(b, "{\"code\":");
	pbuf_add_u64(b, (unsigned)e);
	pbuf_adds(b, ",\"message\":");
	pbuf_add_jstr(b, msg, strlen(msg));
	pbuf_addc(b, '}');
}

int eio_check_request(const char *transport, const char *eio, bool has_sid,
		      bool is_get, bool is_upgrade)
{
	if (!transport || (strcmp(transport, "polling") && strcmp(transport, "websocket")))
		return EIO_HERR_UNKNOWN_TRANSPORT;
	if (has_sid)
		return -1;
	if (!is_get)
		return EIO_HERR_BAD_HANDSHAKE;
	if (!strcmp(transport, "websocket") && !is_upgrade)
		return EIO_HERR_BAD_REQUEST;
	/* The reference server reads anything but "4" as v3, which it
	 * refuses unless allowEIO3 is set; Parley speaks only v4. */
	if (!eio || strcmp(eio, "4"))
		return EIO_HERR_UNSUPPORTED;
	return -1;
}
