/*
 * server.h - the parleyd process: one lws context on one libev loop, the
 * room registry, the connection lists, the shared scratch buffers.
 *
 * Output path (why there is a flush list): fan-out only queues frame
 * references on each recipient. Before the loop sleeps, an ev_prepare
 * watcher writes every connection with queued output directly, several
 * queued frames per send() where it can. Only a connection whose socket is
 * full asks lws for a WRITEABLE callback. So a delivery costs one send()
 * and no epoll_ctl, and a burst of messages to one reader costs one send().
 */
#ifndef PARLEY_SERVER_H
#define PARLEY_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <ev.h>
#include <libwebsockets.h>

#include "buf.h"
#include "config.h"
#include "errors.h"
#include "hmap.h"
#include "hangup.h"
#include "linger.h"
#include "metrics.h"
#include "netaddr.h"

struct api_state;
struct feed;
struct token_keys;
struct conn;
struct moderation;
struct store;
struct reuseport;
struct clp;
struct cluster;

struct server_stats {
	uint64_t conns_total;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	uint64_t published, delivered;
	uint64_t slow_closes;
	uint64_t errors[PROTO_ERR_COUNT];
	uint64_t disconnects[CLOSE_R_COUNT];
	uint64_t rejected[6];      /* upgrades refused: 400, 403, 404, 426, 429, 503 */
	uint64_t cache_hits, cache_misses;
	uint64_t cache_evictions;  /* rooms whose cache the byte budget dropped */
};

struct server {
	struct config *cfg;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	struct ev_loop *loop;
	ev_prepare flush_w;
	ev_signal sigterm_w, sigint_w, sighup_w;
	ev_timer drain_w;
	ev_tstamp drain_deadline;
	ev_timer tick_w;
	lws_retry_bo_t retry;
	void *foreign[1];           /* the loop, for lws (foreign_loops) */
	struct lws_http_mount mounts[6]; /* /healthz, /metrics, /, /api, admin /api, /admin */
	struct linger_set linger;   /* closed client sockets draining (linger.h) */
	struct hangup_set hangup;   /* hung-up clients waiting to be closed (hangup.h) */
	uint32_t fds_at_start;      /* descriptors open when serving began */
	int64_t client_sockets;     /* lws client sockets open (HTTP and WebSocket) */

	struct hmap rooms;          /* struct room *, by name */
	/* History caches (room.c): bytes pinned by all rooms' caches, and the
	 * rooms with a cache, most recently used first. */
	uint64_t cache_bytes;
	struct room *cache_lru, *cache_lru_tail;
	/* every WebSocket connection: native ones (and Socket.IO sessions
	 * with a close deadline, moved here by conn_close_later) first, then
	 * the other Socket.IO sessions (appended at conns_tail), so that the
	 * keep-alive sweep, which has nothing to do for those (Engine.IO
	 * pings them), stops at the first one instead of visiting each */
	struct conn *conns, *conns_tail;
	struct conn *sweep_at;      /* where the next keep-alive tick goes on (NULL: the head) */
	struct conn *pending;       /* connections with output to flush */
	uint32_t nconns;
	uint64_t next_serial;
	struct hmap by_serial;      /* struct conn *, by serial (durable replies) */
	struct hmap tickets;        /* durable publishes waiting for commit */
	struct hmap reads;          /* reads from disk in flight, by cookie */
	struct conn *read_waiters;  /* catch-ups waiting for room in the read queue */
	struct conn *read_waiters_tail;
	uint64_t *lag_serials;      /* connections with a catch-up waiting for this node to apply its since (catchup.c) */
	uint32_t nlag, lag_cap;
	bool lag_poke;              /* a message was applied (or the tick came): look at them again */
	uint64_t next_ticket;

	struct hmap per_ip;         /* struct ipcount *, by address */
	struct netlist trusted;     /* trusted_proxies */
	struct lws_vhost *vhost_unix;
	struct reuseport *reuseport;    /* reuse_port's own listener; NULL: off */
	struct clp *clp;                /* cluster presence (cluster/presence.c); NULL: off */
	struct lws_vhost *vhost_admin;  /* admin_listen; NULL: off */
	struct listen_addr admin_addr;  /* parsed admin_listen (lws keeps pointers into it) */
	struct token_keys *auth;    /* NULL: auth = none */
	struct conn *unauthed;      /* waiting for a token, oldest first */
	struct conn *unauthed_tail;

	struct hmap by_user;        /* struct user_conns *, by name (users.c) */
	struct api_state *api;      /* the HTTP API (api_http.c) */
	struct feed *feed;          /* the /admin dashboard's live feed (feed.c) */

	struct store *store;
	struct cluster *cluster;    /* NULL: a single node (cluster/cluster.h) */
	struct moderation *mod;     /* bans and pending moderation (moderation.c) */
	/* Frame encoding scratch, shared by every encoder on the loop: one
	 * frame at a time. Take it with server_enc_begin() and give it back
	 * with server_enc_end() once the frame is copied out (frame_new_text,
	 * conn_send_text); a second begin before the end aborts, so two
	 * encoders can never interleave in it. */
	struct pbuf enc;
	bool enc_busy;
	struct pbuf data;           /* publish data scratch */
	unsigned char *wbuf;        /* send coalescing buffer */
	size_t wbuf_cap;
	char welcome_limits[512];   /* the welcome frame's limits object */

	bool draining;
	bool store_closing;         /* no new reads: the store is shutting down */
	uint32_t ticks;             /* tick_cb calls (each sweeps a fifth of the keep-alives) */
	int exit_code;
	struct server_stats stats;
};

int server_run(struct config *cfg);
/* Shuts down as on SIGTERM (drain, then exit), with exit_code unless one
 * is set already; why goes to the log. */
void server_stop(struct server *s, int exit_code, const char *why);

/* The shared encoder, reset (see struct server, enc). Nesting is a bug in
 * the caller that would corrupt a frame silently: abort instead (like
 * Redis's serverAssert, on in release builds; it costs one flag). */
static inline struct pbuf *server_enc_begin(struct server *s)
{
	if (s->enc_busy) {
		fprintf(stderr, "level=error msg=\"nested use of the shared encoder\"\n");
		abort();
	}
	s->enc_busy = true;
	pbuf_reset(&s->enc);
	return &s->enc;
}

static inline void server_enc_end(struct server *s)
{
	s->enc_busy = false;
}

/* Marks c as having output to flush before the loop sleeps. */
void server_want_flush(struct server *s, struct conn *c);
void server_unlink_flush(struct server *s, struct conn *c);

#endif
