/*
 * cluster_int.h - the cluster node's state, shared by its files:
 *   node.c     start/stop, the command connection's handshake (scripts,
 *              shard count), health, metrics;
 *   broker.c   publishes: the script call and the pending table;
 *   tail.c     the log tail (XREAD BLOCK) and apply;
 *   restore.c  after a Redis restart: the hold and the restore.
 *
 * Who owns what: everything here belongs to the loop thread, except the
 * restore thread's job (restore.c), which it owns between starting and
 * posting it back through ev_async.
 *
 * Redis keys (docs/cluster.md lists them):
 *   parley:log:<k>   stream of shard k (k = FNV-1a(room) mod K)
 *   parley:seq       hash room -> last seq handed out
 *   parley:off       hash k -> last offset of shard k
 *   parley:idem:<room>:<key>  "seq:offset" of a keyed publish, PX window
 *   parley:hold      present while nodes restore after a restart
 *   parley:meta      hash: shards (K)
 */
#ifndef PARLEY_CLUSTER_INT_H
#define PARLEY_CLUSTER_INT_H

#include <ev.h>
#include <pthread.h>
#include <stdint.h>

#include "cluster.h"
#include "cmd.h"
#include "hmap.h"
#include "moderation.h"
#include "rconn.h"
#include "rurl.h"
#include "store.h"
#include "tlsrelay.h"

/* A publish of this node waiting for its entry's apply. */
struct cpend {
	uint64_t id;                 /* also the entry's 'x' field */
	struct pub_waiter w;
	ev_tstamp deadline;
	int replied;                 /* the script answered (shard/offset known) */
	int dup;                     /* the key was seen: wait for offset */
	unsigned shard;
	uint64_t offset, seq;
	int mod;                     /* a moderation entry: mc answers, not w */
	struct moderation_caller mc;
	struct cpend *prev, *next;   /* all pendings, oldest first (timeouts) */
};

struct cshard {
	uint64_t applied;            /* last applied offset */
	char id[STORE_POS_ID_MAX + 1]; /* its stream id: where XREAD resumes */
	double lag_ms;
};

/* One entry to re-append after a Redis restart (restore.c). */
struct rentry {
	unsigned shard;
	uint64_t offset, seq;
	int64_t ts;
	char *room, *from, *data;    /* NULL room: a filler (volatile or deleted) */
	char *key;                   /* idempotency key, NULL if none */
	size_t key_len;
	char *mod;                   /* a moderation entry's fields (tail.c), NULL if none */
	size_t mod_len;
};

struct cluster {
	struct server *s;
	struct rurl_addr addr;       /* a rediss:// one routed to relay's socket */
	struct tlsrelay *relay;      /* rediss:// only: TLS under hiredis */
	char *password;
	char node_id[128];
	unsigned k;                  /* shards */
	struct rconn *cmd, *tail;
	char sha_pub[48], sha_restore[48], sha_mod[48];
	char **stream_keys;          /* "parley:log:<k>" */
	int cmd_ready;               /* scripts loaded, meta checked, no restore due */
	char known_run_id[48];       /* Redis's run_id that our positions belong to */

	/* tail */
	struct cshard *sh;
	int reading;                 /* an XREAD is in flight */
	ev_timer tail_w;             /* re-issues XREAD after back-pressure */
	char *xr_buf;                /* the XREAD in RESP: its fixed head, then the ids */
	size_t xr_head, xr_cap;      /* head length (0: not built yet), buffer size */
	uint64_t applied_this_run;
	ev_tstamp started;

	/* pending publishes */
	struct hmap pend;            /* struct cpend *, by id */
	struct cpend *p_head, *p_tail;
	unsigned npend;
	unsigned ndup;               /* of which duplicates waiting for an offset */
	uint64_t next_pid;
	uint64_t pid_base;           /* this run's first pid - 1: wall ms << 20 at start */
	ev_timer sweep_w;            /* timeouts */

	/* failed closed */
	int failed;
	char failed_why[256];

	/* restore (restore.c) */
	int restoring;
	int restore_stage;
	ev_async restore_async;
	ev_timer restore_w;
	pthread_t restore_thread;
	int restore_thread_live;
	uint64_t *redis_off;         /* [k]: Redis's offsets when the restore began */
	uint64_t *restore_to;        /* [k]: this node's applied offsets, for the thread */
	struct rentry *rents;        /* the thread's result */
	size_t nrents;
	int restore_err;
	char db_path[4096];
	size_t restore_sent, restore_acked;
	char restore_run_id[48];

	double *lag;                 /* [k] for stats */
	struct cluster_stats st;
};

/* node.c */
void cluster__fail_closed(struct cluster *c, const char *why);
void cluster__cmd_usable(struct cluster *c);
void cluster__log_cmd_error(struct cluster *c, const char *what, const redisReply *r);
/* broker.c */
struct cpend *cluster__pend_find(struct cluster *c, uint64_t id);
void cluster__pend_finish(struct cluster *c, struct cpend *p, enum proto_err e, uint64_t seq,
			  bool dup);
struct moderation_caller cluster__pend_take_mod(struct cluster *c, struct cpend *p);
void cluster__pending_offsets(struct cluster *c, unsigned shard);
void cluster__pending_fail_all(struct cluster *c, enum proto_err e);
void cluster__broker_init(struct cluster *c);
void cluster__broker_stop(struct cluster *c);
/* tail.c */
void cluster__tail_ready(struct rconn *rc, void *ud);
void cluster__tail_down(struct rconn *rc, void *ud, int was_ready, const char *why);
void cluster__tail_init(struct cluster *c);
void cluster__tail_stop(struct cluster *c);
/* restore.c */
void cluster__restore_begin(struct cluster *c);
void cluster__restore_init(struct cluster *c);
void cluster__restore_stop(struct cluster *c);
/* scripts.c */
extern const char cluster__pub_lua[], cluster__restore_lua[], cluster__mod_lua[];

#endif
