/* buf.c - growable byte buffer (buf.h). */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pbuf_reserve(struct pbuf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		fprintf(stderr, "parley: out of memory (%zu bytes)\n", cap);
		abort();
	}
	b->data = p;
	b->cap = cap;
}

void pbuf_free(struct pbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* "00" to "99": two digits per division. */
static const char digits2[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

void pbuf_add_u64(struct pbuf *b, uint64_t v)
{
	char tmp[20], *e = tmp + sizeof(tmp), *p = e;

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100);
		v /= 100;
		p -= 2;
		memcpy(p, digits2 + 2 * d, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digits2 + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	pbuf_add(b, p, (size_t)(e - p));
}

void pbuf_add_i64(struct pbuf *b, int64_t v)
{
	if (v < 0) {
		pbuf_addc(b, '-');
		pbuf_add_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		pbuf_add_u64(b, (uint64_t)v);
	}
}

/*
 * Nonzero if any of the 8 bytes in w (loaded little-endian) is '"', '\\'
 * or below 0x20: one that a JSON string escapes. The lowest set bit marks
 * the first such byte exactly (a subtraction's borrow only spreads upwards
 * from a byte that is itself one). With outside set: '"', ' ' or below
 * 0x20 (in JSON text outside strings: a string's start or white space).
 */
static inline uint64_t special8(uint64_t w, int outside)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t q = w ^ (ones * '"');
	uint64_t t = outside ? w ^ (ones * ' ') : w ^ (ones * '\\');

	return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((t - ones) & ~t)) & high;
}

/* Copies s[i..n) to *op eight bytes at a time until a word holds a byte
 * special8() flags (then up to that byte) or fewer than 8 are left; moves
 * *op on by what it kept and returns the new i. The caller guarantees room
 * for 8 bytes at *op. */
static inline size_t copy_plain8(char **op, const char *s, size_t i, size_t n, int outside)
{
	char *o = *op;

	while (n - i >= 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		uint64_t m = special8(w, outside);
		memcpy(o, &w, 8);
		if (m) {
			size_t k = (size_t)__builtin_ctzll(m) / 8;
			o += k;
			i += k;
			break;
		}
		o += 8;
		i += 8;
	}
	*op = o;
	return i;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BUF_SWAR 1
#else
#define BUF_SWAR 0
#endif

void pbuf_add_jstr(struct pbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	/* Worst case every byte becomes \u00XX. */
	pbuf_reserve(b, n * 6 + 2);
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		if (BUF_SWAR) {
			/* bytes that need no escape, eight at a time (the
			 * reserve above leaves room for 8 at o) */
			i = copy_plain8(&o, s, i, n, 0);
			if (i == n)
				break;
		}
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20) {
			*o++ = '\\';
			switch (c) {
			case '\n': *o++ = 'n'; break;
			case '\r': *o++ = 'r'; break;
			case '\t': *o++ = 't'; break;
			case '\b': *o++ = 'b'; break;
			case '\f': *o++ = 'f'; break;
			default:
				*o++ = 'u'; *o++ = '0'; *o++ = '0';
				*o++ = hex[c >> 4];
				*o++ = hex[c & 15];
			}
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

void pbuf_add_json_compact(struct pbuf *b, const char *s, size_t n)
{
	pbuf_reserve(b, n);
	char *o = b->data + b->len;
	int in_str = 0;

	for (size_t i = 0; i < n; i++) {
		if (BUF_SWAR) {
			/* Runs with nothing to drop or to watch for, eight
			 * bytes at a time: inside a string up to a quote or a
			 * backslash, outside up to a quote or white space (o
			 * never passes s + i: room for 8 at o). */
			i = copy_plain8(&o, s, i, n, !in_str);
			if (i == n)
				break;
		}
		char c = s[i];
		if (in_str) {
			*o++ = c;
			if (c == '\\' && i + 1 < n)
				*o++ = s[++i];
			else if (c == '"')
				in_str = 0;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			/* the whole run (padding, indentation) in one go */
			while (n - i > 8 && !memcmp(s + i + 1, "        ", 8))
				i += 8;
			while (i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\t' ||
					     s[i + 1] == '\n' || s[i + 1] == '\r'))
				i++;
			continue;
		} else {
			if (c == '"')
				in_str = 1;
			*o++ = c;
		}
	}
	b->len = (size_t)(o - b->data);
}
