/*
 * rurl.h - the cluster's Redis address (--cluster) and the room -> shard
 * hash. Both are pure functions with no sockets, so a unit test covers them.
 *
 * Accepted addresses:
 *   redis://HOST:PORT[/DB]          TCP; HOST an IPv4 address, [IPv6] or a
 *   redis://:PASS@HOST:PORT[/DB]    name resolved once at start (rurl_resolve)
 *   unix:/PATH[?db=N]               a Unix socket
 *   rediss://[:PASS@]HOST:PORT[/DB] TLS, as redis://; Debian's hiredis 0.14
 *                                   has no TLS, so the connection goes
 *                                   through parleyd's relay (tlsrelay.h)
 */
#ifndef PARLEY_CLUSTER_RURL_H
#define PARLEY_CLUSTER_RURL_H

#include <stddef.h>
#include <stdint.h>

struct rurl_addr {
	int is_unix;
	int tls;                   /* rediss:// */
	char host[256];            /* as written (no brackets); TCP only */
	char ip[64];               /* numeric, filled by rurl_resolve */
	int port;
	char path[108];            /* Unix socket path */
	unsigned db;               /* SELECT db; 0 by default */
	char password[256];        /* inline :PASS@, "" when none */
};

/* Parses url into a. Returns 0, or -1 with the reason in why. */
int rurl_parse(const char *url, struct rurl_addr *a, char *why, size_t whylen);

/* Resolves a->host into a->ip (a numeric host is copied). Blocking: call at
 * start-up only, never on the loop. Returns 0 or -1 with the reason. */
int rurl_resolve(struct rurl_addr *a, char *why, size_t whylen);

/* The shard (0..k-1) of a room: FNV-1a 64 of its name, mod k. Unkeyed on
 * purpose: every node and every Redis restart must agree without shared
 * state (a salt kept in Redis could be lost with it, and would move rooms
 * between shards); see docs/cluster.md. */
unsigned rurl_shard(const char *room, size_t len, unsigned k);

#endif
