/*
 * tlsrelay.h - TLS under hiredis 0.14 (--cluster rediss://...).
 *
 * Debian 12's hiredis is 0.14, which reads and writes a plain socket and
 * has no TLS. The relay puts TLS under it: it owns a Unix socket in a
 * private directory (mkdtemp, mode 0700, removed at stop) and one thread
 * that relays every connection accepted there to Redis's TLS port with
 * OpenSSL. An rconn whose address is routed through the relay
 * (tlsrelay_route) connects to that Unix socket instead of TCP, and keeps
 * its own timeouts and backoff: a relayed connection that cannot reach or
 * verify Redis is closed on the Unix side, which the rconn sees as a lost
 * connection (unavailable, backoff, retry).
 *
 * Verification is on and fails closed: the server's chain against ca_file
 * (or the system store), its name (or IP address) against server_name,
 * TLS 1.2 at least; an optional client certificate.
 *
 * Threads: tlsrelay_start/route/path/stop belong to the loop thread. The
 * relay thread owns every relayed connection (both sockets, the SSL, the
 * two buffers). They share only the log ring (mutex) and the wake pipe;
 * the thread never calls the log module (its quoting buffers are not
 * thread-safe): log lines are handed to the loop through an ev_async and
 * written there by on_log.
 */
#ifndef PARLEY_CLUSTER_TLSRELAY_H
#define PARLEY_CLUSTER_TLSRELAY_H

#include <ev.h>
#include <stddef.h>

#include "rurl.h"

/* Connections relayed at once; one more is accepted and closed at once
 * (the rconn retries with backoff). parleyd needs 4 (the node's command
 * and tail, presence's command and tail) plus reconnect overlap. */
#define TLSRELAY_MAX_LINKS 16
/* Bytes buffered per direction per connection: a full buffer stops
 * reading that side (backpressure, never an unbounded queue). */
#define TLSRELAY_BUF 16384

struct tlsrelay;

struct tlsrelay_opts {
	const char *ca_file;         /* PEM CA(s) for the server; NULL: the system store */
	const char *cert_file;       /* PEM client certificate chain; NULL: none */
	const char *key_file;        /* its key (with cert_file) */
	const char *server_name;     /* name or IP checked (and SNI for a name); NULL: the URL's host */
	double timeout;              /* s for TCP connect + TLS handshake (default 2) */
	/* Called on the loop thread with a finished line ("redis=... error=...").
	 * level: 0 debug, 1 info, 2 warn, 3 error (log.h's order); msg:
	 * cluster_tls_error (a TLS failure: verify, alert...),
	 * cluster_tls_connect_failed (TCP connect), cluster_tls_relay (the
	 * relay refused a local connection). */
	void (*on_log)(int level, const char *msg, const char *line, void *ud);
	void *ud;
};

/* Loads the CA, certificate and key, makes the private directory and its
 * socket, and starts the thread relaying to addr (rediss://, resolved).
 * Returns the relay, or NULL with the reason in why (a bad file, no
 * directory...): the caller refuses to start. */
struct tlsrelay *tlsrelay_start(struct ev_loop *loop, const struct rurl_addr *addr,
				const struct tlsrelay_opts *o, char *why, size_t whylen);

/* The Unix socket's path. */
const char *tlsrelay_path(const struct tlsrelay *r);

/* Points a (TLS) address at the relay: is_unix = 1, path = the socket.
 * The host, ip and port stay for the logs. */
void tlsrelay_route(const struct tlsrelay *r, struct rurl_addr *a);

/* Connections being relayed now (read without the lock: for metrics and
 * tests, may be a moment old). */
unsigned tlsrelay_links(const struct tlsrelay *r);

/* Stops the thread (joined), closes every relayed connection, removes the
 * socket and the directory, frees *rp and sets it to NULL. NULL is fine. */
void tlsrelay_stop(struct tlsrelay **rp);

#endif
