/* rurl.c - the Redis address parser and the shard hash (rurl.h). */
#include "rurl.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Parses a decimal in [min, max] from s[0..n). Returns 0 or -1. */
static int parse_num(const char *s, size_t n, unsigned long min, unsigned long max,
		     unsigned long *out)
{
	unsigned long v = 0;

	if (!n || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

#define FAIL(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)

int rurl_parse(const char *url, struct rurl_addr *a, char *why, size_t whylen)
{
	unsigned long v;

	memset(a, 0, sizeof(*a));
	if (!strncmp(url, "unix:", 5)) {
		const char *p = url + 5, *q = strchr(p, '?');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		a->is_unix = 1;
		if (n == 0 || p[0] != '/')
			FAIL("unix: needs an absolute path (unix:/run/redis/redis.sock)");
		if (n >= sizeof(a->path))
			FAIL("the socket path is longer than %zu bytes", sizeof(a->path) - 1);
		memcpy(a->path, p, n);
		if (q) {
			if (strncmp(q, "?db=", 4) || parse_num(q + 4, strlen(q + 4), 0, 65535, &v) < 0)
				FAIL("after the path only ?db=N (0-65535) may follow");
			a->db = (unsigned)v;
		}
		return 0;
	}
	/* rediss:// is TLS, through the relay (tlsrelay.h): the same syntax */
	if (!strncmp(url, "rediss://", 9))
		a->tls = 1;
	else if (strncmp(url, "redis://", 8))
		FAIL("must start with redis://, rediss:// or unix:");
	const char *p = url + (a->tls ? 9 : 8), *at = strrchr(p, '@'), *end;
	if (at) {
		if (*p != ':')
			FAIL("a password is written redis://:PASS@HOST:PORT (no user name)");
		size_t n = (size_t)(at - p - 1);
		if (!n || n >= sizeof(a->password))
			FAIL("the password must be 1 to %zu bytes", sizeof(a->password) - 1);
		memcpy(a->password, p + 1, n);
		p = at + 1;
	}
	end = strchr(p, '/');
	if (!end)
		end = p + strlen(p);
	const char *colon;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (!rb || rb[1] != ':')
			FAIL("an IPv6 host is written [ADDR]:PORT");
		if ((size_t)(rb - p - 1) >= sizeof(a->host) || rb == p + 1)
			FAIL("bad IPv6 host");
		memcpy(a->host, p + 1, (size_t)(rb - p - 1));
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *c = p; c < end; c++)
			if (*c == ':')
				colon = c;
		if (!colon)
			FAIL("needs HOST:PORT (%s://127.0.0.1:6379)", a->tls ? "rediss" : "redis");
		if (colon == p || (size_t)(colon - p) >= sizeof(a->host))
			FAIL("missing or overlong host");
		memcpy(a->host, p, (size_t)(colon - p));
		if (strchr(a->host, ':'))
			FAIL("an IPv6 host is written [ADDR]:PORT");
	}
	if (parse_num(colon + 1, (size_t)(end - colon - 1), 1, 65535, &v) < 0)
		FAIL("the port must be 1 to 65535");
	a->port = (int)v;
	if (*end) {
		if (parse_num(end + 1, strlen(end + 1), 0, 65535, &v) < 0)
			FAIL("the database after '/' must be a number 0-65535");
		a->db = (unsigned)v;
	}
	return 0;
}

int rurl_resolve(struct rurl_addr *a, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	if (a->is_unix)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(a->host, NULL, &hints, &res);
	if (rc != 0 || !res)
		FAIL("cannot resolve '%s': %s", a->host, gai_strerror(rc));
	rc = getnameinfo(res->ai_addr, res->ai_addrlen, a->ip, sizeof(a->ip), NULL, 0,
			 NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rc != 0)
		FAIL("cannot format the address of '%s'", a->host);
	return 0;
}

unsigned rurl_shard(const char *room, size_t len, unsigned k)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)room[i];
		h *= 0x100000001b3ULL;
	}
	return k ? (unsigned)(h % k) : 0;
}
