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

void pbuf_add(struct pbuf *b, const void *p, size_t n)
{
	pbuf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void pbuf_adds(struct pbuf *b, const char *s)
{
	pbuf_add(b, s, strlen(s));
}

void pbuf_addc(struct pbuf *b, char c)
{
	pbuf_reserve(b, 1);
	b->data[b->len++] = c;
}

void pbuf_add_u64(struct pbuf *b, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	pbuf_reserve(b, (size_t)n);
	while (n)
		b->data[b->len++] = tmp[--n];
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

void pbuf_add_jstr(struct pbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	/* Worst case every byte becomes \u00XX. */
	pbuf_reserve(b, n * 6 + 2);
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
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
		char c = s[i];
		if (in_str) {
			*o++ = c;
			if (c == '\\' && i + 1 < n)
				*o++ = s[++i];
			else if (c == '"')
				in_str = 0;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue;
		} else {
			if (c == '"')
				in_str = 1;
			*o++ = c;
		}
	}
	b->len = (size_t)(o - b->data);
}
