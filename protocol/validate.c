/* validate.c - room and display name rules (proto.h). */
#include "proto.h"

int proto_room_valid(const char *s, size_t n)
{
	if (n < 1 || n > PROTO_ROOM_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		    c == '.' || c == ':' || c == '@')
			continue;
		return 0;
	}
	return 1;
}

/* Decodes one UTF-8 sequence at s[*i]; returns the code point or -1 if the
 * sequence is malformed, overlong, a surrogate or out of range. */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	unsigned char c = s[*i];
	long cp;
	int extra;

	if (c < 0x80) {
		(*i)++;
		return c;
	} else if ((c & 0xe0) == 0xc0) {
		cp = c & 0x1f; extra = 1;
	} else if ((c & 0xf0) == 0xe0) {
		cp = c & 0x0f; extra = 2;
	} else if ((c & 0xf8) == 0xf0) {
		cp = c & 0x07; extra = 3;
	} else {
		return -1;
	}
	if (*i + (size_t)extra >= n)
		return -1;
	for (int k = 1; k <= extra; k++) {
		unsigned char cc = s[*i + (size_t)k];
		if ((cc & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (cc & 0x3f);
	}
	static const long min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
	if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += (size_t)extra + 1;
	return cp;
}

int proto_name_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, chars = 0;

	while (i < n) {
		long cp = utf8_next(u, n, &i);
		if (cp < 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return 0;
		if (++chars > PROTO_NAME_MAX_CHARS)
			return 0;
	}
	return chars >= 1;
}
