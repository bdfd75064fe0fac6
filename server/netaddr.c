/* netaddr.c - trusted proxies and the client address (netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "util.h"

/* Parses a numeric address into the 128-bit form; bits_max gets 32 for
 * IPv4 (the prefix length is then offset by 96). */
static int parse_addr(const char *s, uint8_t out[16], int *is4)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*is4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, 16);
		*is4 = 0;
		return 0;
	}
	return -1;
}

int netlist_parse(struct netlist *out, const char *text, char *err, size_t errlen)
{
	struct netlist l = { 0 };
	const char *p = text;

	while (p && *p) {
		char item[64];
		size_t n = strcspn(p, ",");
		const char *next = p[n] ? p + n + 1 : NULL;

		while (n && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n == 0) {
			p = next;
			continue;
		}
		if (n >= sizeof(item))
			goto bad;
		memcpy(item, p, n);
		item[n] = '\0';

		struct cidr c;
		int is4, bits = -1;
		char *slash = strchr(item, '/');
		if (slash) {
			char *end;
			*slash = '\0';
			long b = strtol(slash + 1, &end, 10);
			if (*end || end == slash + 1 || b < 0)
				goto bad;
			bits = (int)b;
		}
		if (parse_addr(item, c.addr, &is4) < 0)
			goto bad;
		if (bits < 0)
			bits = is4 ? 32 : 128;
		if (bits > (is4 ? 32 : 128))
			goto bad;
		c.bits = (uint8_t)(is4 ? bits + 96 : bits);
		l.v = xrealloc(l.v, (l.n + 1) * sizeof(*l.v));
		l.v[l.n++] = c;
		p = next;
		continue;
bad:
		snprintf(err, errlen, "'%.*s' is not an address or CIDR", (int)(n < 60 ? n : 60), p);
		free(l.v);
		return -1;
	}
	netlist_free(out);
	*out = l;
	return 0;
}

void netlist_free(struct netlist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int cidr_match(const struct cidr *c, const uint8_t a[16])
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, a, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (a[full] & mask);
}

int netlist_contains(const struct netlist *l, const char *addr)
{
	uint8_t a[16];
	int is4;

	if (!l->n || parse_addr(addr, a, &is4) < 0)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], a))
			return 1;
	return 0;
}

/* Copies s[0..n) trimmed into out if it is a numeric address. */
static int take_addr(const char *s, size_t n, char *out, size_t outlen)
{
	uint8_t a[16];
	int is4;
	char tmp[64];

	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!n || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (parse_addr(tmp, a, &is4) < 0)
		return -1;
	snprintf(out, outlen, "%s", tmp);
	return 0;
}

void netaddr_client(struct lws *wsi, const struct netlist *trusted, int unix_peer,
		    char *out, size_t outlen)
{
	char xff[1024];
	int n;

	if (unix_peer) {
		snprintf(out, outlen, "unix");
	} else {
		lws_get_peer_simple(wsi, out, outlen);
		/* The dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d;
		 * logs, limits and metrics use the plain IPv4 form. */
		struct in_addr a4;
		if (!strncmp(out, "::ffff:", 7) && inet_pton(AF_INET, out + 7, &a4) == 1)
			memmove(out, out + 7, strlen(out + 7) + 1);
	}
	if (!unix_peer && !netlist_contains(trusted, out))
		return;

	n = lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR);
	if (n > 0) {
		/* Walk right to left: each hop appends the address it saw.
		 * The first one that is not a trusted proxy is the client. */
		size_t end = (size_t)n;
		while (end) {
			size_t start = end;
			while (start && xff[start - 1] != ',')
				start--;
			char addr[64];
			if (take_addr(xff + start, end - start, addr, sizeof(addr)) < 0)
				return; /* garbage: keep what we have */
			snprintf(out, outlen, "%s", addr);
			if (!netlist_contains(trusted, addr))
				return;
			end = start ? start - 1 : 0;
		}
		return;
	}
	n = lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_HTTP_X_REAL_IP);
	if (n > 0)
		take_addr(xff, (size_t)n, out, outlen);
}
