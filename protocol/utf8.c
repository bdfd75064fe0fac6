/* utf8.c - incremental UTF-8 validation (utf8.h). */
#include "utf8.h"

#include <string.h>

int utf8_feed(struct utf8_state *st, const unsigned char *p, size_t n)
{
	uint8_t need = st->need, lo = st->lo, hi = st->hi;

	for (size_t i = 0; i < n; i++) {
		if (!need) {
			/* ASCII, most of any text, eight bytes a step */
			uint64_t w;
			while (n - i >= 8) {
				memcpy(&w, p + i, 8);
				if (w & 0x8080808080808080ULL)
					break;
				i += 8;
			}
			if (i == n)
				break;
		}
		unsigned char c = p[i];

		if (need) {
			if (c < lo || c > hi)
				return -1;
			need--;
			lo = 0x80;
			hi = 0xbf;
			continue;
		}
		if (c < 0x80)
			continue;
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* past U+10FFFF */
		} else {
			return -1;
		}
	}
	st->need = need;
	st->lo = lo;
	st->hi = hi;
	return 0;
}

int utf8_end(struct utf8_state *st)
{
	int r = st->need ? -1 : 0;
	st->need = 0;
	return r;
}
