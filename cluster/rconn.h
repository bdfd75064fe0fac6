/*
 * rconn.h - one asynchronous Redis connection on the server's libev loop
 * (hiredis's async API and its libev adapter).
 *
 * An rconn keeps itself connected: connect (TCP or Unix socket), AUTH when
 * a password is set, SELECT when db != 0, CLIENT SETNAME, INFO server (for
 * Redis's run_id), then cbs->ready. On any error, timeout or disconnect it
 * calls cbs->down and reconnects with backoff (100 ms doubling to 2 s, with
 * +-25 % jitter), and again calls ready once the handshake passes.
 *
 * Nothing blocks the loop: hiredis 0.14 connects non-blockingly but has no
 * timeouts of its own, so an ev_timer bounds the connect plus handshake
 * (connect_timeout) and one bounds the oldest outstanding command
 * (cmd_timeout: a Redis that stops answering is treated as a disconnect).
 * The address must be numeric (rurl_resolve at start-up), so there is no
 * DNS on the loop.
 *
 * Ownership: hiredis owns its reply objects and frees them after the reply
 * callback returns; a callback must copy what it keeps (they are built in
 * the connection's arena, rreply.h, which the next reply reuses). hiredis frees its
 * context itself after a failed connect or a disconnect; rconn never frees a
 * context inside one of its callbacks: it stops it from a zero-delay timer
 * ("nothing freed mid-callback").
 */
#ifndef PARLEY_CLUSTER_RCONN_H
#define PARLEY_CLUSTER_RCONN_H

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#include "rurl.h"

struct rconn;

/* A command's reply, or NULL when it failed without one (the connection
 * was lost, timed out or freed). A Redis error reply is a reply of type
 * REDIS_REPLY_ERROR, not NULL. The reply is hiredis's: valid during the
 * call only. */
typedef void rconn_reply_fn(struct rconn *rc, redisReply *reply, void *privdata);

struct rconn_cbs {
	/* The handshake passed; commands may be sent. rconn_run_id() is set. */
	void (*ready)(struct rconn *rc, void *ud);
	/* A connect attempt failed, or a ready connection was lost; why is a
	 * short text for the log. Commands in flight have had their NULL reply
	 * already. A reconnect is scheduled. */
	void (*down)(struct rconn *rc, void *ud, int was_ready, const char *why);
};

struct rconn_opts {
	double connect_timeout;      /* s for connect + handshake (default 2) */
	double cmd_timeout;          /* s the oldest outstanding command may wait (default 2) */
	double backoff_min, backoff_max; /* s (defaults 0.1 and 2) */
};

/* Makes an rconn and starts connecting at once. addr must be resolved
 * (rurl_resolve); password may be NULL or "" (none); name is its CLIENT
 * SETNAME (letters, digits, '-', '_', ':' and '.'; others become '_').
 * opts may be NULL for the defaults. Never fails (allocation aborts). */
struct rconn *rconn_new(struct ev_loop *loop, const struct rurl_addr *addr,
			const char *password, const char *name,
			const struct rconn_opts *opts, const struct rconn_cbs *cbs, void *ud);

/* Sends a command (hiredis format: %s, %b with a length, %d ...). Returns
 * 0 when sent: cb is then called exactly once, with the reply or NULL.
 * Returns -1 when the connection is not ready or hiredis refused: cb is
 * not called. cb may be NULL (the reply is dropped). */
int rconn_command(struct rconn *rc, rconn_reply_fn *cb, void *privdata, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with an argument vector (lengths in argvlen, or NULL for C
 * strings). */
int rconn_command_argv(struct rconn *rc, rconn_reply_fn *cb, void *privdata,
		       int argc, const char **argv, const size_t *argvlen);

/* The same with the command already in RESP (a "*N\r\n$len\r\narg\r\n..."
 * array of bulk strings the caller built: the log tail keeps its XREAD's
 * unchanging part formatted and appends only the stream ids). */
int rconn_command_resp(struct rconn *rc, rconn_reply_fn *cb, void *privdata,
		       const char *resp, size_t len);

/* 1 when the handshake passed and the connection has not been lost since. */
int rconn_ready(const struct rconn *rc);
/* Redis's run_id from the last handshake ("" before the first). A change
 * between two connects means Redis restarted. */
const char *rconn_run_id(const struct rconn *rc);
/* The ud given to rconn_new. */
void *rconn_ud(const struct rconn *rc);
/* Commands sent and not yet answered. */
unsigned rconn_inflight(const struct rconn *rc);
/* Drops the connection now (e.g. after a protocol surprise) and reconnects
 * after the backoff; safe inside a reply callback (the stop is deferred).
 * why goes to cbs->down. */
void rconn_reset(struct rconn *rc, const char *why);
/* Changes cmd_timeout (s): a connection that sends XREAD BLOCK N ms needs
 * more than N ms. */
void rconn_set_cmd_timeout(struct rconn *rc, double seconds);

/* Closes and frees *rcp, sets it to NULL. Commands in flight get their
 * NULL reply during the call (cbs->down is not called). Must not be called
 * from inside one of this rconn's callbacks. */
void rconn_free(struct rconn **rcp);

#endif
