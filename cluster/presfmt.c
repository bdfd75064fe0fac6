/* presfmt.c - the text of cluster presence entries (presfmt.h). */
#include "presfmt.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"

/* A decimal up to UINT32_MAX followed by stop; advances *pp past stop. */
static int parse_uint(const char **pp, const char *end, char stop, uint64_t *out)
{
	const char *q = *pp;
	uint64_t v = 0;

	if (q == end || *q < '0' || *q > '9')
		return -1;
	while (q < end && *q >= '0' && *q <= '9') {
		v = v * 10 + (uint64_t)(*q - '0');
		if (v > UINT32_MAX)
			return -1;
		q++;
	}
	if (q == end || *q != stop)
		return -1;
	*pp = q + 1;
	*out = v;
	return 0;
}

void presfmt_add(struct pbuf *b, const char *room, size_t rl, const char *user, size_t ul,
		 uint32_t count)
{
	pbuf_add_u64(b, count);
	pbuf_addc(b, ' ');
	pbuf_add_u64(b, rl);
	pbuf_addc(b, ':');
	pbuf_add(b, room, rl);
	pbuf_add_u64(b, ul);
	pbuf_addc(b, ':');
	pbuf_add(b, user, ul);
}

int presfmt_parse(const char *p, size_t n, presfmt_entry_fn *fn, void *ud)
{
	const char *end = p + n;

	while (p < end) {
		uint64_t count, rl, ul;
		if (parse_uint(&p, end, ' ', &count) || parse_uint(&p, end, ':', &rl) ||
		    (uint64_t)(end - p) < rl)
			return -1;
		const char *room = p;
		p += rl;
		if (parse_uint(&p, end, ':', &ul) || (uint64_t)(end - p) < ul)
			return -1;
		fn(room, (size_t)rl, p, (size_t)ul, (uint32_t)count, ud);
		p += ul;
	}
	return 0;
}

size_t presfmt_field(char *dst, size_t cap, const char *room, size_t rl, const char *user, size_t ul)
{
	int h = snprintf(dst, cap, "%zu:", rl);
	if (h < 0 || (size_t)h + rl + ul > cap)
		return 0;
	memcpy(dst + h, room, rl);
	memcpy(dst + h + rl, user, ul);
	return (size_t)h + rl + ul;
}

int presfmt_split(const char *f, size_t n, const char **room, size_t *rl, const char **user,
		  size_t *ul)
{
	const char *end = f + n, *q = f;
	uint64_t v;

	if (parse_uint(&q, end, ':', &v) || (uint64_t)(end - q) < v)
		return -1;
	*room = q;
	*rl = (size_t)v;
	*user = q + v;
	*ul = (size_t)(end - q) - (size_t)v;
	return 0;
}
