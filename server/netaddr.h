/*
 * netaddr.h - client addresses: trusted proxy lists (addresses and CIDRs,
 * IPv4 and IPv6) and the X-Forwarded-For / X-Real-IP rule.
 */
#ifndef PARLEY_NETADDR_H
#define PARLEY_NETADDR_H

#include <stddef.h>
#include <stdint.h>

struct lws;

/* Room for any client address netaddr_client writes, with its NUL: the
 * canonical text forms are at most INET6_ADDRSTRLEN (46) bytes; "unix". */
#define NETADDR_MAX 64

struct cidr {
	uint8_t addr[16];   /* IPv4 as ::ffff:a.b.c.d */
	uint8_t bits;       /* prefix length over the 128-bit form */
};

struct netlist {
	struct cidr *v;
	size_t n;
};

/* Parses "10.0.0.1, 192.168.0.0/16, ::1" into *out (replacing it).
 * Returns 0, or -1 with the offending item in err. */
int netlist_parse(struct netlist *out, const char *text, char *err, size_t errlen);
void netlist_free(struct netlist *l);
/* 1 if the numeric address string is in the list. */
int netlist_contains(const struct netlist *l, const char *addr);

/* Writes the client's address for a connection to out: the TCP peer, or,
 * when the peer is trusted (listed, or a Unix-socket peer), the rightmost
 * X-Forwarded-For entry that is not itself trusted (else X-Real-IP).
 * The address is canonical (inet_ntop of the parsed address; IPv4-mapped
 * IPv6 as plain IPv4), so one address has one spelling: the key of the
 * per-address limit cannot be dodged with "2001:db8:0:0::1" for
 * "2001:db8::1". out should hold NETADDR_MAX bytes. */
void netaddr_client(struct lws *wsi, const struct netlist *trusted, int unix_peer,
		    char *out, size_t outlen);

/* A listen address: "HOST:PORT" ("[V6]:PORT" for IPv6), "unix:/PATH",
 * or "off". */
struct listen_addr {
	int off;             /* 1: "off" */
	char host[64];       /* numeric address or name; "" for a Unix path */
	uint32_t port;       /* 0: an ephemeral port */
	char path[108];      /* the Unix socket path; "" for TCP */
};

/* Parses text into *out. Returns 0, or -1 with the reason in err. */
int netaddr_parse_listen(const char *text, struct listen_addr *out, char *err, size_t errlen);

#endif
