/*
 * store_int.h - internals shared by the storage files (not for the server).
 *
 * Who owns what:
 *   loop thread   the room map (roommap.c) and each room's last_seq; the
 *                 loop-side counters in struct store (appended, overloaded,
 *                 refused_failing).
 *   writer thread the write connection s->wdb and its statements, every
 *                 room's w_* fields, the writer's room list (w_next).
 *   reader thread the read connection s->rdb and its statement.
 *   s->wlock      the write queue, the in-flight accounting, `failing`,
 *                 each room's c_last_seq (the read watermark) and the
 *                 writer's stats.
 *   s->rlock      the read queue.
 *   s->clock      the completions waiting for store_poll().
 *   loop thread   the idempotency keys (idem.c: s->keys, each room's
 *                 k_head/k_tail/k_count), s->seq_base.
 *   s->wlock      also s->issued (seqs handed out this run) and
 *                 s->reserved (how many this run may hand out: reserve.c).
 * Rooms are never freed before store_close(), so a queued message may keep a
 * plain pointer to its room.
 */
#ifndef PARLEY_STORE_INT_H
#define PARLEY_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#include "store.h"

/* Defaults for the zero values of struct store_config. */
#define STORE__QUEUE_MAX          65536u
#define STORE__QUEUE_MAX_BYTES    (64u << 20)
#define STORE__FLUSH_MS           50u
#define STORE__BATCH_MAX          4096u
#define STORE__READ_QUEUE_MAX     1024u
#define STORE__READ_LIMIT_MAX     10000u  /* largest page store_read serves */
#define STORE__BUSY_TIMEOUT_MS    1000    /* sqlite busy handler, both conns */
#define STORE__BACKOFF_MIN_MS     10
#define STORE__BACKOFF_MAX_MS     1000
#define STORE__CLOSE_RETRIES      3       /* failed batch retries at shutdown */
#define STORE__READ_FAIL_WAIT_MS  1000    /* reader waits this long on a failing writer */
#define STORE__READ_MAX_WAIT_MS   10000   /* and at most this long in any case */
#define STORE__PRUNE_CHUNK        4096    /* rows per retention transaction */
#define STORE__PRUNE_ROOMS_STEP   256     /* rooms per retention step at most */
#define STORE__SWEEP_MS           1000    /* retention sweep cadence */
#define STORE__SCHEMA_VERSION     4
#define STORE__KEYS_PER_ROOM      10000   /* idempotency keys kept per room */
#define STORE__KEYS_TOTAL         200000  /* and in all rooms together */
#define STORE__KEY_WINDOW_MS      300000  /* default idempotency window */
#define STORE__ERASE_SCAN         2048    /* rows an erase step looks at */

/* A room the store knows. Allocated once, freed at store_close(). */
struct store__room {
	struct store__room *h_next;   /* loop: hash chain */
	uint64_t hash;                /* loop */
	uint64_t last_seq;            /* loop: last seq handed out */
	/* writer-owned: */
	struct store__room *w_next;   /* the writer's list of all rooms */
	struct store__room *w_tnext;  /* rooms touched by the current batch */
	int64_t w_id;                 /* rooms.id, 0 until resolved */
	uint64_t w_last_seq;          /* last committed seq */
	uint64_t w_batch_seq;         /* highest seq in the batch, 0: untouched */
	int w_listed;                 /* on the w_next list */
	int w_new_id;                 /* w_id resolved inside the open batch */
	int w_dirty;                  /* committed to since the last sweep */
	uint64_t c_last_seq;          /* under wlock: last committed seq */
	/* writer: the seqs (w_hole_lo, w_hole_hi] were skipped by the last
	 * unclean start (reserve.c); count retention does not count them. */
	uint64_t w_hole_lo, w_hole_hi;
	/* loop: this room's idempotency keys, oldest first (idem.c) */
	struct store__key *k_head, *k_tail;
	unsigned k_count;
	char name[];
};

/* An idempotency key of a room (idem.c), owned by the loop thread. Lives
 * on three lists: its hash chain, its room's list (oldest first) and the
 * store's list of all keys (oldest first, doubly linked for eviction). */
struct store__key {
	struct store__key *h_next;
	struct store__key *r_next;
	struct store__key *g_prev, *g_next;
	struct store__room *room;
	uint64_t hash;
	uint64_t seq;
	int64_t ts;                   /* wall clock ms: the message's ts */
	size_t len;
	unsigned char key[];
};

struct store__keys {
	struct store__key **b;
	size_t nb, n;
	struct store__key *g_head, *g_tail;
};

/* One accepted message waiting for the writer. One allocation: from and
 * data follow the struct, each NUL-terminated. */
struct store__item {
	struct store__item *next;
	struct store__room *room;
	uint64_t seq;
	uint64_t ticket;
	int64_t ts;
	int64_t enq_ms;               /* monotonic, for the flush deadline */
	size_t from_len, data_len, key_len;
	int marker;                   /* no row: only reports ticket once seq is committed */
	char *from, *data, *key;      /* point into buf (key: NULL if none) */
	/* moderation (moderate.c): kind != 0 writes no message; from is the
	 * user (or the sender to match), data the ban reason. */
	int kind;                     /* enum store__kind */
	int status;                   /* enum store_mod_status, set by the writer */
	uint64_t cookie;              /* for mod_done */
	int64_t job;                  /* ERASE: the job row's id */
	/* replica.c: a log entry's position (pos_set), written with the batch */
	int pos_set;
	unsigned pos_shard;
	uint64_t pos_off;
	char pos_id[STORE_POS_ID_MAX + 1];
	char buf[];
};

enum store__kind {
	STORE__K_MESSAGE = 0,
	STORE__K_DELETE,              /* seq of room; from: only this sender ("" any) */
	STORE__K_ERASE,               /* from: the user */
	STORE__K_BAN,                 /* from: user, ts: until, data: reason */
	STORE__K_UNBAN,               /* from: user */
	STORE__K_META,                /* replica.c: cluster_meta from = data */
};

/* An erase job, writer-owned (moderate.c). */
struct store__job {
	struct store__job *next;
	int64_t id;
	int64_t room_id;              /* cursor: last (room_id, seq) looked at */
	int64_t seq;
	char user[];
};

/* A finished erase step waiting for store_poll (under clock). */
struct store__erased_post {
	struct store__erased_post *next;
	struct store_erased ev;
	char *user;
	char **rooms;
	uint64_t *seqs;
};

/* A loaded ban (store_open -> store_bans_each). */
struct store__ban {
	struct store__ban *next;
	int64_t until;
	char *user, *reason;
};

/* One read request; the reader fills in page. */
struct store__read {
	struct store__read *next;
	uint64_t cookie, before, after;
	struct store__room *rm;       /* NULL: the room has no message */
	uint64_t watermark;           /* rm's last seq when the read was asked */
	unsigned limit;
	struct store_page *page;
	char room[];
};

struct store__ticket {
	uint64_t ticket;
	int ok;
};

struct store__map {
	struct store__room **b;
	size_t nb, n;
};

struct store {
	struct store_config cfg;      /* defaults filled in */
	char *path;
	struct store__map map;        /* loop */
	struct store__keys keys;      /* loop: idempotency keys (idem.c) */
	int64_t key_window_ms;
	uint64_t seq_base;            /* loop: last seq of a room never seen */

	/* ---- writer side, under wlock ---- */
	pthread_mutex_t wlock;
	pthread_cond_t wcond;         /* wakes the writer */
	pthread_cond_t commit_cond;   /* the writer finished a batch */
	struct store__item *q_head, *q_tail;
	uint64_t q_len;               /* in the queue, not yet taken */
	uint64_t depth, depth_bytes;  /* queued + in flight (the bound) */
	int flush_req;                /* commit now (durable or a read waits) */
	int w_stop, w_exited;
	int failing;
	uint64_t committed, write_errors, pruned, dropped;
	uint64_t commit_bucket[12];
	double commit_ms_sum;
	uint64_t commit_count;
	uint64_t erase_jobs, erase_scanned, erase_erased, erase_done, deleted;
	unsigned debug_fail;          /* test hook: fail this many batches */
	uint64_t issued;              /* seqs handed out this run (loop writes) */
	uint64_t reserved;            /* issued may not pass this (reserve.c) */
	uint64_t reserve_step;        /* how far each reservation reaches */
	uint64_t reserve_refused;     /* appends refused for want of a reservation */
	/* writer-thread only */
	sqlite3 *wdb;
	sqlite3_stmt *st_begin, *st_commit, *st_rollback, *st_insert,
		*st_room_ins, *st_room_get, *st_room_seq, *st_sync_full,
		*st_sync_normal, *st_min_seq, *st_age_max, *st_prune,
		*st_meta_set;
	sqlite3_stmt *st_del, *st_del_own, *st_del_look, *st_ban_set, *st_ban_del,
		*st_job_ins, *st_job_scan, *st_job_upd, *st_job_del, *st_room_name;
	struct store__job *w_jobs;    /* erase jobs, oldest first (moderate.c) */
	int64_t erase_after_ms;       /* no erase step before (after a failure) */
	uint64_t erase_failures;      /* failed erase steps */
	int ckpt_pending;             /* erase jobs ended whose WAL truncation is still due */
	struct store__room *w_rooms;  /* every room, for retention sweeps */
	struct store__room *sweep_cur;
	int sweep_active;
	int64_t next_sweep_ms;

	/* ---- reader side, under rlock ---- */
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	struct store__read *r_head, *r_tail;
	unsigned r_len;
	int r_stop;
	uint64_t reads, read_errors;  /* under rlock */
	sqlite3 *rdb;                 /* reader-thread only */
	sqlite3_stmt *st_read_desc, *st_read_asc;

	/* ---- completions, under clock ---- */
	pthread_mutex_t clock;
	struct store__ticket *c_tickets;
	size_t c_nt, c_cap;
	struct store__read *c_head, *c_tail;
	struct store__ticket *c_mods; /* mod_done results (ticket = cookie) */
	size_t c_nm, c_mcap;
	struct store__erased_post *c_erased, *c_erased_tail;
	int wake_pending;             /* a wake is out and not yet polled */

	struct store__ban *bans;      /* loaded at open, taken by store_bans_each */

	/* ---- replica (replica.c), loop thread ---- */
	struct store_pos *pos;        /* [STORE_SHARDS_MAX], NULL unless replica */
	struct store__meta *meta;     /* cluster_meta rows */
	int unpositioned;             /* messages, no position (at open) */
	sqlite3_stmt *st_pos_set, *st_meta_put; /* writer thread */
	/* writer thread, during one batch: each shard's last entry in it
	 * (w_pos_it[shard], NULL if none) and which shards are set, so the
	 * position row is written once per shard per batch, not per entry */
	struct store__item **w_pos_it; /* [STORE_SHARDS_MAX] */
	unsigned *w_pos_k, w_pos_n;
	sqlite3_stmt *st_cmod_ins, *st_cmod_prune; /* writer thread */
	int mod_unbounded;            /* loop: see store_mod_unbounded */

	/* ---- loop-only counters ---- */
	uint64_t appended, overloaded, refused_failing;

	pthread_t writer, reader;
	int writer_started, reader_started;
};

static inline int64_t store__now_ms(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Absolute CLOCK_MONOTONIC deadline for pthread_cond_timedwait (our conds
 * are created with that clock). */
static inline struct timespec store__deadline(int64_t mono_ms)
{
	struct timespec ts = { .tv_sec = mono_ms / 1000,
			       .tv_nsec = (mono_ms % 1000) * 1000000 };
	return ts;
}

void store__cond_init(pthread_cond_t *c);
/* Makes the calling thread a batch thread (SCHED_BATCH): the service
 * loop may share a core with the store's threads, and a commit must not
 * delay live delivery; the writer still gets its fair share of the CPU. */
void store__thread_background(void);
void store__log(const char *level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct store__meta {
	struct store__meta *next;
	char name[128], value[128];
};

/* replica.c */
/* Sets a message item's ts, enqueue time, lengths and its from/data/key
 * (copied into it->buf, sized from_len + 1 + data_len + 1 + klen by the
 * caller; data NUL-terminated). Shared by store_append_key and store_apply. */
void store__item_fill(struct store__item *it, int64_t ts, const char *from, size_t from_len,
		      const void *data, size_t data_len, const void *key, size_t klen);
int store__replica_load(struct store *s, char *err, size_t errlen);
int store__replica_prepare(struct store *s, char *err, size_t errlen);
void store__replica_finalize(struct store *s);
void store__replica_free(struct store *s);
/* Inside the batch: writes item it's position and meta rows. */
int store__replica_write(struct store *s, struct store__item *it);
int store__replica_mod_write(struct store *s, struct store__item *it);
void store__replica_note(struct store *s, struct store__item *it);
int store__replica_write_noted(struct store *s);
void store__replica_forget(struct store *s);

/* roommap.c */
struct store__room *store__map_get(struct store__map *m, const char *name);
struct store__room *store__room_new(const char *name);
void store__map_put(struct store__map *m, struct store__room *r);
void store__map_free(struct store__map *m);

/* schema.c */
int store__schema_migrate(sqlite3 *db, char *err, size_t errlen);
int store__schema_load_rooms(struct store *s, char *err, size_t errlen);

/* reserve.c */
int store__reserve_start(struct store *s, char *err, size_t errlen);
int store__reserve_write(struct store *s, uint64_t reserved, uint64_t committed);
int store__reserve_mark_clean(struct store *s);

/* idem.c */
struct store__key *store__key_find(struct store *s, struct store__room *r,
				   const void *key, size_t len, int64_t now);
void store__key_add(struct store *s, struct store__room *r, const void *key,
		    size_t len, uint64_t seq, int64_t ts);
int store__keys_load(struct store *s, char *err, size_t errlen);
void store__keys_free(struct store *s);

/* moderate.c */
int store__mod_schema(sqlite3 *db, char *err, size_t errlen);
int store__mod_load(struct store *s, char *err, size_t errlen);
int store__mod_prepare(struct store *s, char *err, size_t errlen);
void store__mod_finalize(struct store *s);
void store__mod_free(struct store *s);
/* Applies a kind != 0 item inside the open batch transaction. */
int store__mod_apply(struct store *s, struct store__item *it);
/* After the batch: reports its moderation items (ok: committed). */
void store__mod_report(struct store *s, struct store__item *batch, int ok);
/* One bounded erase step (its own transaction). Returns 1 if jobs remain. */
int store__erase_step(struct store *s);
void store__post_mods(struct store *s, const struct store__ticket *t, size_t n);
void store__post_erased(struct store *s, struct store__erased_post *e);

/* writer.c */
int store__writer_prepare(struct store *s, char *err, size_t errlen);
void *store__writer_main(void *arg);
void store__writer_finalize(struct store *s);
/* sqlite3_step + sqlite3_reset of a statement without rows (writer.c);
 * returns the step's code. Writer thread (retention runs there too). */
int store__step_reset(sqlite3_stmt *st);
void store__writer_sync_seqs(struct store *s);

/* retention.c */
int store__retention_step(struct store *s);
void store__retention_sweep_due(struct store *s, int64_t now);

/* reader.c */
int store__reader_prepare(struct store *s, char *err, size_t errlen);
void *store__reader_main(void *arg);
void store__reader_finalize(struct store *s);

/* poll.c */
void store__post_tickets(struct store *s, const struct store__ticket *t, size_t n);
void store__post_page(struct store *s, struct store__read *r);
void store__stats_commit(struct store *s, double ms);

/* Test hook: the next n message batches fail as if the disk returned an
 * I/O error (the batch is kept and retried). Thread-safe. */
void store__debug_fail_writes(struct store *s, unsigned n);

#endif
