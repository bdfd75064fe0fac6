/*
 * presence.h - presence across the nodes of a cluster (docs/cluster.md,
 * "Presence"). Prefix clp_.
 *
 * Each node keeps in Redis what it holds, and tells the others as it
 * changes; each node keeps a replica of the others' in memory, which
 * server/presence.c adds to its own (ruser.remote), so presence queries
 * and the batched join/leave events span the cluster.
 *
 * In Redis (every key under parley:pres):
 *   parley:pres:nodes          SET of node ids that have published
 *   parley:pres:n:<node_id>    HASH "<roomlen>:<room><user>" -> connections,
 *                              PEXPIREd to cluster_presence_ttl at every
 *                              heartbeat: a dead node's hash goes by itself
 *   parley:pres:log            STREAM of changes, MAXLEN ~ 100000; fields
 *                              n (node), k (kind), d (payload):
 *                              U  changed entries, absolute counts
 *                              F  the node's whole state (after a reconnect)
 *                              H  heartbeat, every ttl/3
 *                              D  the node is shutting down: drop it now
 *   payload: "<count> <roomlen>:<room><userlen>:<user>" repeated.
 *
 * Counts are absolute, so replaying an entry twice changes nothing. Each
 * node tails the stream on a connection of its own (XREAD BLOCK). When that
 * connection (re)connects it reloads everything: the stream's last id, then
 * every node's hash with its remaining TTL, then tails from that id. A
 * remote node whose entries stop for cluster_presence_ttl (no heartbeat) is
 * dead: its members leave, batched as any leave. While our own tail is
 * down, nobody is expired (we cannot hear heartbeats); the reload after it
 * comes back reconciles (it replaces what it loads; nodes it does not find
 * keep their deadline and expire unless heard).
 *
 * Loop thread only; nothing blocks (rconn).
 */
#ifndef PARLEY_CLUSTER_PRESENCE_H
#define PARLEY_CLUSTER_PRESENCE_H

#include <stdint.h>

struct server;
struct room;
struct ruser;

/* Starts cluster presence when cfg->cluster is set (no-op otherwise).
 * Returns 0, or -1 after logging why. */
int clp_start(struct server *s);
/* Shutdown begins: tells the others to drop this node's members now. */
void clp_drain(struct server *s);
/* Frees everything (after lws is gone: no more presence changes). */
void clp_stop(struct server *s);

/* server/presence.c: u's connections in r on this node changed. */
void clp_local_changed(struct room *r, struct ruser *u);
/* server/room.c: r was just created here: seeds the users present on
 * other nodes (quietly: they are not joining). */
void clp_room_created(struct room *r);

/* For the dashboard and /metrics. */
struct clp_node_info {
	const char *id;
	int alive;                   /* heard within the TTL (this node: 1) */
	uint64_t members;            /* connections it holds, over all rooms */
	double last_heard_s;         /* seconds since its last entry (0: this node) */
};
/* Calls fn for this node and every remote node known; returns how many. */
unsigned clp_nodes(struct server *s, void (*fn)(const struct clp_node_info *ni, void *ud), void *ud);
/* The dashboard feed's "cluster" value (server/feed.c): null on a single
 * node, else {"node_id","redis_connected","publishing","presence_connected",
 * "lag_ms_max","lag_ms":[per shard],"nodes":[{"id","self","alive",
 * "members","last_heard_s"}]}. */
struct pbuf;
void clp_feed_json(struct server *s, struct pbuf *b);
/* Prometheus lines (server/metrics.c); nothing on a single node. */
void clp_metrics(struct server *s, struct pbuf *b);
/* 1 while the presence tail is connected. */
int clp_connected(struct server *s);

#endif
