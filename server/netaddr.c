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

/* Writes the canonical text of a parsed address: IPv4 (also IPv4-mapped
 * IPv6) as a.b.c.d, IPv6 as inet_ntop writes it (RFC 5952 form). */
static void canonical(const uint8_t a[16], char *out, size_t outlen)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char buf[INET6_ADDRSTRLEN];

	if (!memcmp(a, mapped, 12))
		inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
	else
		inet_ntop(AF_INET6, a, buf, sizeof(buf));
	snprintf(out, outlen, "%s", buf);
}

/* Copies s[0..n) trimmed into out, canonical, if it is a numeric
 * address. */
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
	canonical(a, out, outlen);
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
		char peer[NETADDR_MAX];
		lws_get_peer_simple(wsi, peer, sizeof(peer));
		/* The dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d;
		 * logs, limits and metrics use the plain IPv4 form. */
		if (take_addr(peer, strlen(peer), out, outlen) < 0)
			snprintf(out, outlen, "%s", peer);
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
			char addr[NETADDR_MAX];
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

int netaddr_parse_listen(const char *text, struct listen_addr *out, char *err, size_t errlen)
{
	const char *colon;
	size_t hn;

	memset(out, 0, sizeof(*out));
	if (!strcmp(text, "off")) {
		out->off = 1;
		return 0;
	}
	if (!strncmp(text, "unix:", 5)) {
		if (text[5] != '/' || strlen(text + 5) >= sizeof(out->path)) {
			snprintf(err, errlen, "a Unix socket needs an absolute path shorter than %zu bytes",
				 sizeof(out->path));
			return -1;
		}
		snprintf(out->path, sizeof(out->path), "%s", text + 5);
		return 0;
	}
	if (text[0] == '[') {
		const char *rb = strchr(text, ']');
		if (!rb || rb[1] != ':')
			goto bad;
		hn = (size_t)(rb - text - 1);
		colon = rb + 1;
		text++;
	} else {
		colon = strrchr(text, ':');
		if (!colon || memchr(text, ':', (size_t)(colon - text)))
			goto bad;
		hn = (size_t)(colon - text);
	}
	if (!hn || hn >= sizeof(out->host) || !colon[1] || strlen(colon + 1) > 5 ||
	    colon[1 + strspn(colon + 1, "0123456789")])
		goto bad;
	unsigned long port = strtoul(colon + 1, NULL, 10);
	if (port > 65535)
		goto bad;
	memcpy(out->host, text, hn);
	out->host[hn] = '\0';
	out->port = (uint32_t)port;
	return 0;
bad:
	snprintf(err, errlen, "expected HOST:PORT, [IPV6]:PORT, unix:/PATH or off");
	return -1;
}
