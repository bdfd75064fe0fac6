/*
 * cluster.h - several parleyd sharing rooms through a Redis log
 * (docs/cluster.md). The server's side of the broker seam.
 *
 * A publish in a cluster (cluster_publish) runs a Lua script in Redis that
 * takes the room's next seq and appends the message to the room's shard
 * stream; every node tails every shard (XREAD BLOCK) and applies each
 * entry in order: store_apply (the message with its seq and the shard's
 * position, one transaction), then the same cache and fan-out as a single
 * node (cmd_apply_message). The publisher's reply goes out when its own
 * node applied the entry, so it never overtakes the publisher's echo.
 *
 * Loop thread only. Nothing here blocks: Redis is reached through rconn.
 */
#ifndef PARLEY_CLUSTER_H
#define PARLEY_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

struct server;
struct pub_req;
struct pbuf;
struct moderation_caller;
struct rurl_addr;

/* A moderation action for the log (moderation.c builds it; every node
 * applies it through moderation_apply). */
struct cluster_mod {
	char kind;                   /* 'd' delete, 'e' erase, 'b' ban, 'u' unban */
	const char *room;            /* delete */
	size_t room_len;
	uint64_t seq;                /* delete */
	const char *user;            /* the target; delete: only_sender or NULL */
	int64_t until;               /* ban: wall clock ms, fixed at the origin */
	const char *reason;          /* ban; NULL: none */
};

/* What the dashboard and /metrics show of the cluster. */
struct cluster_stats {
	bool redis_connected;        /* the command connection is ready */
	bool tail_connected;         /* the log tail's connection is ready */
	bool publishing;             /* publishes are accepted now */
	bool failed;                 /* failed closed (a gap): see docs/cluster.md */
	bool restoring;              /* after a Redis restart, until restored */
	unsigned shards;
	uint64_t applied;            /* entries applied (messages and volatile) */
	uint64_t skipped;            /* entries already applied (restores, duplicates) */
	uint64_t pending;            /* publishes waiting for their apply now */
	uint64_t unavailable;        /* publishes failed with unavailable */
	uint64_t timeouts;           /* of which: no apply within cluster_timeout_ms */
	uint64_t restores;           /* Redis restarts this node restored after */
	uint64_t restored_entries;   /* entries this node re-appended */
	uint64_t redis_reconnects;   /* connects after a loss */
	double lag_ms_max;           /* largest per-shard lag at the last apply */
	const double *lag_ms;        /* [shards]: now - entry time at its apply */
	const char *node_id;
	const char *run_id;          /* Redis's */
};

/* Starts the cluster if cfg->cluster is set (s->cluster stays NULL
 * otherwise). Reads the password file, resolves the address, checks the
 * database, and starts connecting; returns 0, or -1 after logging why. */
int cluster_start(struct server *s);
/* Stops at shutdown: fails the publishes still pending (unavailable) and
 * closes the connections (and the TLS relay of a rediss:// cluster). */
void cluster_stop(struct server *s);
/* For another module's Redis connections (presence): points a rediss://
 * address at the node's TLS relay (tlsrelay.h), which cluster_start
 * started. Other addresses are left as they are. Returns 0, or -1 when a
 * TLS address has no relay (the cluster did not start). */
int cluster_route(struct server *s, struct rurl_addr *a);
/* The broker: sends p to the log. PROTO_OK: p->waiter hears the result
 * through cmd_publish_done; else the error (nothing was sent): unavailable
 * (Redis unreachable, restoring, failed), overloaded (cluster_pending_max),
 * storage_failed, too_large. */
enum proto_err cluster_publish(struct server *s, const struct pub_req *p);
/* Sends a moderation action to the log (a delete to its room's shard,
 * the user-wide ones to shard 0). PROTO_OK: every node applies it in log
 * order; caller->done hears this node's result of its apply (or
 * unavailable if it is not applied within cluster_timeout_ms). Else the
 * error, nothing sent: unavailable, overloaded. */
enum proto_err cluster_moderate(struct server *s, const struct cluster_mod *m,
				const struct moderation_caller *caller);
/* NULL-safe; s->cluster's counters. */
const struct cluster_stats *cluster_stats(struct server *s);
/* For /healthz: NULL when healthy, else a one-line reason. */
const char *cluster_unhealthy(struct server *s);
/* Prometheus lines for /metrics. */
void cluster_metrics(struct server *s, struct pbuf *b);

#endif
