/*
 * store.h - asynchronous persistence of room history in SQLite.
 *
 * The service loop never waits on the disk. It hands each persisted message
 * to a writer thread through a bounded queue; the writer batches messages
 * into transactions. History pages are read by a reader thread on its own
 * SQLite connection. Results come back to the loop through store_poll(),
 * which the loop calls after the store woke it with cfg->wake().
 *
 * Threading: every function below is called from the loop thread only.
 * The store's threads call nothing in the server but cfg->wake().
 *
 * Sequence numbers: the store owns each room's seq counter. All rooms' last
 * seq are loaded at store_open(); store_append() assigns last+1. A seq is
 * consumed only by an accepted append, so a room's seqs are contiguous
 * (retention may remove a prefix), except that the first start after an
 * unclean shutdown skips ahead in every room: a seq is never handed out
 * twice, even when the crash lost messages that were delivered live
 * (reserve.c).
 */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Return codes: 0 or one of these (negative). */
#define STORE_OK          0
#define STORE_EOVERLOADED (-1) /* writer queue is full: try later */
#define STORE_EFAILING    (-2) /* the disk is failing; nothing accepted */
#define STORE_EINVAL      (-3) /* bad argument */

struct store_config {
	const char *path;            /* SQLite database file; created if missing */
	unsigned queue_max;          /* messages waiting for the writer (0: 65536) */
	unsigned queue_max_bytes;    /* bytes of data waiting for the writer (0: 64 MiB) */
	unsigned flush_interval_ms;  /* commit at least this often (0: 50) */
	unsigned batch_max;          /* messages per transaction at most (0: 4096) */
	uint64_t retain_messages;    /* per room; 0 keeps everything */
	uint64_t retain_seconds;     /* per room; 0 keeps everything */
	/* Called from the store's threads when store_poll() has work. Must be
	 * thread-safe (the server passes a wrapper of lws_cancel_service). */
	void (*wake)(void *opaque);
	void *wake_opaque;
	unsigned read_queue_max;     /* store_read requests waiting (0: 1024) */
	uint64_t key_window_ms;      /* idempotency keys are remembered this long (0: 300 s) */
	unsigned erase_step_rows;    /* rows an erase step looks at (0: 2048) */
	/* 1: a cluster replica (storage/replica.c): seqs come from the
	 * cluster's log through store_apply, so the unclean-start seq jump of
	 * reserve.c does not apply (a replica resumes from its applied log
	 * positions instead). */
	int replica;
};

/* One stored message, as returned by a history read. Strings are
 * NUL-terminated and owned by the enclosing store_page. */
struct store_msg {
	uint64_t seq;
	int64_t ts;           /* milliseconds since the epoch */
	const char *from;     /* sender's display name */
	const char *data;     /* the message's data as compact JSON text */
	size_t data_len;
	int deleted;          /* a tombstone: from and data are "" (moderate.c) */
};

/* A page of history: messages in ascending seq order. */
struct store_page {
	uint64_t cookie;      /* as given to store_read() */
	int ok;               /* 0 on a read error (messages empty) */
	/* before-modes (after == 0): 1 if older messages exist before msgs[0].
	 * after-mode (after != 0): 1 if newer messages exist after the last
	 * one returned (the caller asked for fewer than there are). */
	int more;
	size_t count;
	struct store_msg *msgs;
};

/* A step of an erase job (store_erase): the rows it just tombstoned. */
struct store_erased {
	uint64_t job;            /* the job's id (erase_jobs.id) */
	const char *user;
	int done;                /* the job finished with this step */
	size_t count;
	const char **rooms;      /* count room names */
	const uint64_t *seqs;    /* and seqs */
};

/* What the store reports back through store_poll(). */
struct store_handlers {
	/* A durable append's transaction committed (ok=1) or failed (ok=0). */
	void (*durable_done)(void *opaque, uint64_t ticket, int ok);
	/* A read finished. The handler takes ownership of page and must call
	 * store_page_free() on it. */
	void (*page_done)(void *opaque, struct store_page *page);
	/* A store_delete/store_ban/store_unban/store_erase committed or
	 * failed: status is one of enum store_mod_status. */
	void (*mod_done)(void *opaque, uint64_t cookie, int status);
	/* An erase step committed: its tombstones (the handler does not keep
	 * the pointer). */
	void (*erased)(void *opaque, const struct store_erased *e);
};

struct store_stats {
	uint64_t queue_depth;        /* messages waiting now */
	uint64_t queue_bytes;
	uint64_t appended;           /* accepted by store_append */
	uint64_t committed;          /* rows committed */
	uint64_t overloaded;         /* appends refused for a full queue */
	uint64_t refused_failing;    /* appends refused while the disk failed */
	uint64_t reserve_refused;    /* appends refused: the seq reservation ran out */
	uint64_t write_errors;       /* failed transactions */
	uint64_t reads;              /* store_read calls served */
	uint64_t read_errors;
	uint64_t pruned;             /* rows removed by retention */
	uint64_t dropped;            /* accepted rows given up at shutdown (disk dead) */
	int failing;                 /* 1 while the last write failed */
	/* Commit latency histogram (upper bounds in ms, last one +Inf): the
	 * time of each message transaction, BEGIN to COMMIT done.
	 * commit_count is the number of those transactions (batches). */
	uint64_t commit_ms_bucket[12];
	double commit_ms_sum;
	uint64_t commit_count;
	/* erase jobs (moderate.c) */
	uint64_t erase_jobs;         /* running now (persisted, resumed at start) */
	uint64_t erase_scanned;      /* rows looked at by erase steps */
	uint64_t erase_erased;       /* rows tombstoned by erase steps */
	uint64_t erase_done;         /* jobs finished */
	uint64_t deleted;            /* rows tombstoned by store_delete */
};
extern const double store_commit_ms_bounds[11];

/* Opens (creating or migrating) the database and starts the threads.
 * Returns 0, or -1 with a message in err. */
int store_open(const struct store_config *cfg, struct store **out,
	       char *err, size_t errlen);

/* Drains the queue, commits, checkpoints, joins the threads and frees
 * *s (set to NULL). Pending durable tickets and reads are reported to h
 * before it returns. Blocks: call only at shutdown. */
void store_close(struct store **s, const struct store_handlers *h, void *opaque);

/* The room's latest seq (0 if the room has no message, or after an unclean
 * start the seq a new room starts above). O(1). */
uint64_t store_last_seq(struct store *s, const char *room);

/* Accepts one message for writing: assigns its seq (*seq_out), queues it.
 * data is copied. ticket != 0 asks for durable_done(ticket) after commit
 * (such a message is committed at once, with an fsync).
 * Returns 0, STORE_EFAILING (disk failing), STORE_EOVERLOADED (queue full)
 * or STORE_EINVAL; a refused message consumes no seq. */
int store_append(struct store *s, const char *room, int64_t ts,
		 const char *from, const char *data, size_t data_len,
		 uint64_t ticket, uint64_t *seq_out);

/* store_append_key's *dup_out: */
#define STORE_NEW           0 /* a new message: stored, seq assigned */
#define STORE_DUP_COMMITTED 1 /* the key was seen: *seq_out is the first one's, committed */
#define STORE_DUP_PENDING   2 /* the key was seen, its message is not committed yet;
			       * with a ticket always this: durable_done(ticket)
			       * follows once it is committed and synced */

/* store_append with an idempotency key (key_len 1..STORE_KEY_MAX; key NULL:
 * none). If the room holds the key from an append within the window, nothing
 * is stored: *seq_out is that append's seq and *dup_out says whether it is
 * committed. Returns as store_append; a duplicate can be refused with
 * STORE_EOVERLOADED only when it waits for a commit (ticket) and the queue
 * is full. */
#define STORE_KEY_MAX 64
int store_append_key(struct store *s, const char *room, int64_t ts,
		     const char *from, const char *data, size_t data_len,
		     const void *key, size_t key_len, uint64_t ticket,
		     uint64_t *seq_out, int *dup_out);

/* Asks for up to limit messages of room with seq < before (before == 0:
 * the latest), or, if after != 0, with seq > after (ascending, the first
 * limit of them; before is then ignored). The page reflects every append
 * made before this call. The result comes via page_done(cookie).
 * limit is 1..10000 (else STORE_EINVAL). Returns 0, STORE_EOVERLOADED when
 * read_queue_max reads are already waiting, or STORE_EINVAL. */
int store_read(struct store *s, const char *room, uint64_t before,
	       uint64_t after, unsigned limit, uint64_t cookie);

/* Runs on the loop thread: reports finished durable appends and reads. */
void store_poll(struct store *s, const struct store_handlers *h, void *opaque);

void store_page_free(struct store_page **page);

/* ---- moderation (moderate.c) ----
 * Each of these goes through the writer's queue like an append (so it is
 * ordered after every message accepted before it, and counts against the
 * queue's bound), is committed promptly, and reports through
 * mod_done(cookie, status). They return 0, STORE_EOVERLOADED,
 * STORE_EFAILING or STORE_EINVAL like store_append. */
enum store_mod_status {
	STORE_MOD_OK = 0,          /* done (a delete of a tombstone is OK too) */
	STORE_MOD_NOT_FOUND = 1,   /* delete: no stored message with that seq */
	STORE_MOD_NOT_OWNER = 2,   /* delete: only_sender is not its sender */
	STORE_MOD_FAILED = 3,      /* the write failed (disk) */
};
#define STORE_BANS_MAX     100000  /* bans kept, on disk and in memory */
#define STORE_BAN_REASON_MAX 120   /* bytes of a ban reason */

/* Replaces message seq of room by a tombstone: its sender and data are
 * overwritten on disk (secure_delete zeroes the old bytes), its seq and ts
 * stay. only_sender != NULL: only if that is the message's sender. */
int store_delete(struct store *s, const char *room, uint64_t seq,
		 const char *only_sender, uint64_t cookie);
/* Starts an erase job: every stored message whose sender is user becomes
 * a tombstone, in bounded steps on the writer thread between batches. The
 * job is persisted: a restart resumes it. mod_done(cookie) reports that
 * the job is recorded; each step reports through erased(). */
int store_erase(struct store *s, const char *user, uint64_t cookie);
/* Records a ban of user until until_ms (wall clock), or lifts it. */
int store_ban(struct store *s, const char *user, int64_t until_ms,
	      const char *reason, uint64_t cookie);
int store_unban(struct store *s, const char *user, uint64_t cookie);
/* Calls fn for every ban on disk that has not ended by now_ms (loaded at
 * store_open; expired ones are removed then). Loop thread, once. */
void store_bans_each(struct store *s, void (*fn)(void *opaque, const char *user,
			int64_t until_ms, const char *reason), void *opaque);
void store_get_stats(struct store *s, struct store_stats *st);

/* ---- cluster replica (replica.c) ----
 * A replica stores the cluster log's entries with the seqs the log gave
 * them, and each shard's applied log position in the same transaction as
 * the messages, so a restart resumes exactly after the last committed
 * entry (docs/cluster.md). Loop thread only, like the rest. */
#define STORE_POS_ID_MAX 47           /* a Redis stream id "ms-seq" */
struct store_pos {
	uint64_t offset;              /* the shard's last applied entry, 0: none */
	char id[STORE_POS_ID_MAX + 1]; /* its stream id, "0-0": none */
};
/* One log entry to apply. seq 0: a volatile message (no row; only the
 * position moves). */
struct store_apply_req {
	const char *room;
	uint64_t seq;
	int64_t ts;
	const char *from;
	const char *data;
	size_t data_len;
	const void *key;              /* NULL: none */
	size_t key_len;
	uint64_t ticket;              /* != 0: durable_done(ticket) after an fsynced commit */
	unsigned shard;
	uint64_t offset;
	const char *id;               /* stream id */
	/* seq 0 only: a moderation entry's fields (opaque bytes), kept in
	 * cluster_mods with the position so a restore can re-append it */
	const void *mod;
	size_t mod_len;
};
/* Queues an entry. Not bounded by queue_max (the log tail stops reading
 * while the queue is deep: that is the bound), and accepted while the disk
 * fails (the writer retries it; nothing applied later is committed before
 * it). Updates the room's last seq. Returns 0 or STORE_EINVAL. */
int store_apply(struct store *s, const struct store_apply_req *a);
/* A cluster's apply sets on around its moderation calls (store_delete,
 * store_ban, ...): they are then not refused for queue_max, like
 * store_apply (the tail's back-pressure bounds the queue). Loop thread. */
void store_mod_unbounded(struct store *s, int on);
/* The shard's applied position as loaded at open and moved by store_apply
 * (applied, not necessarily committed yet). shard < STORE_SHARDS_MAX. */
#define STORE_SHARDS_MAX 1024
void store_position(struct store *s, unsigned shard, struct store_pos *out);
/* A cluster_meta value loaded at open or set since ("" if none), and
 * setting one (committed with the next batch). name and value < 128 bytes. */
const char *store_meta_get(struct store *s, const char *name);
int store_meta_set(struct store *s, const char *name, const char *value);
/* Reports durable_done(ticket) once everything queued before is committed
 * with an fsync. Returns 0 or STORE_EOVERLOADED. */
int store_sync_ticket(struct store *s, uint64_t ticket);
/* 1 when the database holds messages but no applied position: history
 * from a single node, which a replica cannot continue. */
int store_has_unpositioned_history(struct store *s);
/* Messages the queue holds now (committed ones are gone). */
uint64_t store_queue_depth(struct store *s);

#endif
