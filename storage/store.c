/*
 * store.c - the store's public entry points on the loop thread: open and
 * close, the seq counters, and handing appends and reads to the threads.
 */
#define _GNU_SOURCE /* SCHED_BATCH */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "store_int.h"

/* Conds use CLOCK_MONOTONIC so a wall-clock step cannot stretch a wait. */
void store__cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* One logfmt line on stderr, like the server's (used for rare events only). */
void store__log(const char *level, const char *fmt, ...)
{
	struct timespec now;
	struct tm tm;
	char ts[32], line[512];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", ts, now.tv_nsec / 1000000, level, line);
}

void store__debug_fail_writes(struct store *s, unsigned n)
{
	__atomic_store_n(&s->debug_fail, n, __ATOMIC_RELAXED);
}

/* Frees everything; the threads must not be running. */
static void destroy(struct store *s)
{
	store__reader_finalize(s);
	if (s->rdb)
		sqlite3_close_v2(s->rdb);
	store__writer_finalize(s);
	store__mod_finalize(s);
	store__replica_finalize(s);
	if (s->wdb)
		sqlite3_close_v2(s->wdb);
	while (s->q_head) { /* only if the writer never ran */
		struct store__item *it = s->q_head;
		s->q_head = it->next;
		free(it);
	}
	while (s->r_head) {
		struct store__read *r = s->r_head;
		s->r_head = r->next;
		free(r);
	}
	store__keys_free(s);
	store__map_free(&s->map);
	store__mod_free(s);
	store__replica_free(s);
	free(s->c_tickets);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	pthread_cond_destroy(&s->commit_cond);
	pthread_mutex_destroy(&s->rlock);
	pthread_cond_destroy(&s->rcond);
	pthread_mutex_destroy(&s->clock);
	free(s->path);
	free(s);
}

static int journal_cb(void *arg, int n, char **vals, char **cols)
{
	char *mode = arg;
	if (n > 0 && vals[0])
		snprintf(mode, 16, "%s", vals[0]);
	return 0;
}

/* Opens the write connection: WAL, synchronous=NORMAL, schema current. */
static int open_writer(struct store *s, char *err, size_t errlen)
{
	const char *path = s->path;
	int rc = sqlite3_open_v2(path, &s->wdb,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		int e = s->wdb ? sqlite3_system_errno(s->wdb) : 0;
		snprintf(err, errlen, "cannot open database %s: %s%s%s", path,
			 s->wdb ? sqlite3_errmsg(s->wdb) : sqlite3_errstr(rc),
			 e ? ": " : "", e ? strerror(e) : "");
		return -1;
	}
	if (sqlite3_db_readonly(s->wdb, "main") == 1) {
		snprintf(err, errlen, "database %s is read-only (check file and directory permissions)", path);
		return -1;
	}
	sqlite3_busy_timeout(s->wdb, STORE__BUSY_TIMEOUT_MS);
	char mode[16] = "";
	if (sqlite3_exec(s->wdb, "PRAGMA journal_mode = WAL", journal_cb, mode, NULL) != SQLITE_OK ||
	    strcmp(mode, "wal") != 0) {
		int e = sqlite3_system_errno(s->wdb);
		snprintf(err, errlen, "cannot use database %s: %s%s%s", path,
			 mode[0] ? "WAL journal mode unavailable" : sqlite3_errmsg(s->wdb),
			 e ? ": " : "", e ? strerror(e) : "");
		return -1;
	}
	if (sqlite3_exec(s->wdb, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(s->wdb));
		return -1;
	}
	char sub[200];
	if (store__schema_migrate(s->wdb, sub, sizeof(sub)) < 0 ||
	    store__reserve_start(s, sub, sizeof(sub)) < 0 ||
	    store__mod_schema(s->wdb, sub, sizeof(sub)) < 0 ||
	    store__schema_load_rooms(s, sub, sizeof(sub)) < 0 ||
	    store__keys_load(s, sub, sizeof(sub)) < 0 ||
	    store__mod_load(s, sub, sizeof(sub)) < 0 ||
	    store__writer_prepare(s, sub, sizeof(sub)) < 0 ||
	    store__mod_prepare(s, sub, sizeof(sub)) < 0 ||
	    store__replica_load(s, sub, sizeof(sub)) < 0 ||
	    store__replica_prepare(s, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "database %s: %s", path, sub);
		return -1;
	}
	return 0;
}

static int open_reader(struct store *s, char *err, size_t errlen)
{
	if (sqlite3_open_v2(s->path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s for reading: %s", s->path,
			 s->rdb ? sqlite3_errmsg(s->rdb) : "out of memory");
		return -1;
	}
	sqlite3_busy_timeout(s->rdb, STORE__BUSY_TIMEOUT_MS);
	char sub[200];
	if (store__reader_prepare(s, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "database %s: %s", s->path, sub);
		return -1;
	}
	return 0;
}

int store_open(const struct store_config *cfg, struct store **out, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (out)
		*out = NULL;
	if (!cfg || !out || !cfg->path || !cfg->path[0]) {
		snprintf(err, errlen, "no database path given");
		return -1;
	}
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->cfg = *cfg;
	s->path = strdup(cfg->path);
	if (!s->path)
		abort();
	s->cfg.path = s->path;
	if (!s->cfg.queue_max)
		s->cfg.queue_max = STORE__QUEUE_MAX;
	if (!s->cfg.queue_max_bytes)
		s->cfg.queue_max_bytes = STORE__QUEUE_MAX_BYTES;
	if (!s->cfg.flush_interval_ms)
		s->cfg.flush_interval_ms = STORE__FLUSH_MS;
	if (!s->cfg.batch_max)
		s->cfg.batch_max = STORE__BATCH_MAX;
	if (!s->cfg.erase_step_rows)
		s->cfg.erase_step_rows = STORE__ERASE_SCAN;
	if (!s->cfg.read_queue_max)
		s->cfg.read_queue_max = STORE__READ_QUEUE_MAX;
	s->key_window_ms = s->cfg.key_window_ms ? (int64_t)s->cfg.key_window_ms :
						 STORE__KEY_WINDOW_MS;
	pthread_mutex_init(&s->wlock, NULL);
	store__cond_init(&s->wcond);
	store__cond_init(&s->commit_cond);
	pthread_mutex_init(&s->rlock, NULL);
	store__cond_init(&s->rcond);
	pthread_mutex_init(&s->clock, NULL);

	if (open_writer(s, err, errlen) < 0 || open_reader(s, err, errlen) < 0)
		goto fail;
	int e = pthread_create(&s->writer, NULL, store__writer_main, s);
	if (e) {
		snprintf(err, errlen, "starting the writer thread: %s", strerror(e));
		goto fail;
	}
	s->writer_started = 1;
	e = pthread_create(&s->reader, NULL, store__reader_main, s);
	if (e) {
		snprintf(err, errlen, "starting the reader thread: %s", strerror(e));
		goto fail;
	}
	s->reader_started = 1;
	*out = s;
	return 0;

fail:
	if (s->writer_started) {
		pthread_mutex_lock(&s->wlock);
		s->w_stop = 1;
		pthread_cond_signal(&s->wcond);
		pthread_mutex_unlock(&s->wlock);
		pthread_join(s->writer, NULL);
	}
	destroy(s);
	return -1;
}

void store_close(struct store **sp, const struct store_handlers *h, void *opaque)
{
	struct store *s = sp ? *sp : NULL;
	if (!s)
		return;
	/* Writer first: it drains and commits the queue; the reader then
	 * serves what is left with every append already committed. */
	pthread_mutex_lock(&s->wlock);
	s->w_stop = 1;
	pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
	pthread_join(s->writer, NULL);

	pthread_mutex_lock(&s->rlock);
	s->r_stop = 1;
	pthread_cond_signal(&s->rcond);
	pthread_mutex_unlock(&s->rlock);
	pthread_join(s->reader, NULL);

	store__reader_finalize(s);
	sqlite3_close_v2(s->rdb);
	s->rdb = NULL;
	/* Fold the WAL into the main file so the directory holds one file
	 * that any sqlite3 can read. Failure is harmless (the WAL stays). */
	sqlite3_exec(s->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);

	store_poll(s, h, opaque); /* pending tickets and pages */
	destroy(s);
	*sp = NULL;
}

uint64_t store_last_seq(struct store *s, const char *room)
{
	struct store__room *r = room ? store__map_get(&s->map, room) : NULL;
	return r ? r->last_seq : s->seq_base;
}

int store_append(struct store *s, const char *room, int64_t ts, const char *from,
		 const char *data, size_t data_len, uint64_t ticket, uint64_t *seq_out)
{
	int dup;
	return store_append_key(s, room, ts, from, data, data_len, NULL, 0, ticket,
				seq_out, &dup);
}

void store__item_fill(struct store__item *it, int64_t ts, const char *from, size_t from_len,
		      const void *data, size_t data_len, const void *key, size_t klen)
{
	it->ts = ts;
	it->enq_ms = store__now_ms(CLOCK_MONOTONIC);
	it->from_len = from_len;
	it->data_len = data_len;
	it->key_len = klen;
	it->from = it->buf;
	it->data = it->buf + from_len + 1;
	it->key = klen ? it->data + data_len + 1 : NULL;
	memcpy(it->from, from, from_len + 1);
	if (data_len)
		memcpy(it->data, data, data_len);
	it->data[data_len] = '\0';
	if (klen)
		memcpy(it->key, key, klen);
}

/* A duplicate key: answers from the first append. With a ticket, queues a
 * marker behind it: the writer reports the ticket once the batch holding
 * the marker is committed with an fsync; batches commit in queue order, so
 * the first append is then on disk too, even if it was committed earlier
 * without an fsync. */
static int append_dup(struct store *s, struct store__room *r, struct store__key *k,
		      uint64_t ticket, uint64_t *seq_out, int *dup_out)
{
	struct store__item *it = ticket ? calloc(1, sizeof(*it) + 2) : NULL;
	if (ticket && !it)
		abort();
	pthread_mutex_lock(&s->wlock);
	int committed = !ticket && k->seq <= r->c_last_seq, rc = STORE_OK;
	if (ticket) {
		if (s->depth + 1 > s->cfg.queue_max) {
			rc = STORE_EOVERLOADED;
		} else {
			it->room = r;
			it->seq = k->seq;
			it->ticket = ticket;
			it->marker = 1;
			it->enq_ms = store__now_ms(CLOCK_MONOTONIC);
			it->from = it->data = it->buf; /* "" */
			if (s->q_tail)
				s->q_tail->next = it;
			else
				s->q_head = it;
			s->q_tail = it;
			s->q_len++;
			s->depth++;
			s->flush_req = 1;
			pthread_cond_signal(&s->wcond);
			it = NULL;
		}
	}
	pthread_mutex_unlock(&s->wlock);
	free(it);
	if (rc != STORE_OK) {
		s->overloaded++;
		return rc;
	}
	if (seq_out)
		*seq_out = k->seq;
	*dup_out = committed ? STORE_DUP_COMMITTED : STORE_DUP_PENDING;
	return STORE_OK;
}

int store_append_key(struct store *s, const char *room, int64_t ts, const char *from,
		     const char *data, size_t data_len, const void *key, size_t key_len,
		     uint64_t ticket, uint64_t *seq_out, int *dup_out)
{
	if (!s || !room || !room[0] || !from || (!data && data_len) || data_len > INT_MAX ||
	    !dup_out || (key && (!key_len || key_len > STORE_KEY_MAX)))
		return STORE_EINVAL;
	*dup_out = STORE_NEW;
	size_t from_len = strlen(from);
	if (from_len > INT_MAX)
		return STORE_EINVAL;
	uint64_t bytes = from_len + data_len;

	struct store__room *r = store__map_get(&s->map, room), *fresh = NULL;
	if (key && r) {
		struct store__key *k = store__key_find(s, r, key, key_len, ts);
		if (k)
			return append_dup(s, r, k, ticket, seq_out, dup_out);
	}

	/* Allocate before taking the lock; a refusal frees again (rare). */
	if (!r) {
		r = fresh = store__room_new(room);
		r->last_seq = s->seq_base;
	}
	size_t klen = key ? key_len : 0;
	struct store__item *it = malloc(sizeof(*it) + from_len + 1 + data_len + 1 + klen);
	if (!it)
		abort();

	pthread_mutex_lock(&s->wlock);
	int rc = STORE_OK;
	if (s->failing) {
		rc = STORE_EFAILING;
	} else if (s->depth + 1 > s->cfg.queue_max ||
		   s->depth_bytes + bytes > s->cfg.queue_max_bytes) {
		rc = STORE_EOVERLOADED;
	} else if (s->issued >= s->reserved) {
		/* The writer has not yet made the next seqs safe to hand
		 * out (reserve.c): refuse rather than wait or risk reuse. */
		rc = STORE_EOVERLOADED;
		s->reserve_refused++;
		s->flush_req = 1;
		pthread_cond_signal(&s->wcond);
	}
	if (rc != STORE_OK) {
		pthread_mutex_unlock(&s->wlock);
		if (rc == STORE_EFAILING)
			s->refused_failing++;
		else
			s->overloaded++;
		free(it);
		free(fresh);
		return rc;
	}
	s->issued++;
	it->next = NULL;
	it->room = r;
	it->marker = 0;
	it->kind = STORE__K_MESSAGE;
	it->pos_set = 0;
	it->status = 0;
	it->cookie = 0;
	it->job = 0;
	uint64_t seq = it->seq = r->last_seq + 1;
	it->ticket = ticket;
	store__item_fill(it, ts, from, from_len, data, data_len, key, klen);
	if (s->q_tail)
		s->q_tail->next = it;
	else
		s->q_head = it;
	s->q_tail = it;
	s->q_len++;
	s->depth++;
	s->depth_bytes += bytes;
	if (ticket)
		s->flush_req = 1; /* a durable reply waits: commit now */
	/* Wake the writer to start the flush timer, for a full batch, or for
	 * a durable message; otherwise it is already counting down. */
	if (s->q_len == 1 || s->q_len == s->cfg.batch_max || ticket)
		pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
	/* From here on the writer may already have committed and freed it. */

	r->last_seq = seq;
	if (fresh)
		store__map_put(&s->map, fresh);
	if (key)
		store__key_add(s, r, key, key_len, seq, ts);
	s->appended++;
	if (seq_out)
		*seq_out = seq;
	return STORE_OK;
}

int store_read(struct store *s, const char *room, uint64_t before, uint64_t after,
	       unsigned limit, uint64_t cookie)
{
	if (!s || !room || !room[0] || !limit || limit > STORE__READ_LIMIT_MAX)
		return STORE_EINVAL;
	size_t len = strlen(room);
	struct store__read *r = calloc(1, sizeof(*r) + len + 1);
	if (!r)
		abort();
	memcpy(r->room, room, len + 1);
	r->cookie = cookie;
	r->before = before;
	r->after = after;
	r->limit = limit;
	/* The page must include the room's last accepted append. Rooms live
	 * until store_close(), so the reader may keep the pointer. */
	struct store__room *rm = r->rm = store__map_get(&s->map, room);
	uint64_t watermark = r->watermark = rm ? rm->last_seq : 0;

	pthread_mutex_lock(&s->rlock);
	if (s->r_len >= s->cfg.read_queue_max) {
		pthread_mutex_unlock(&s->rlock);
		free(r);
		return STORE_EOVERLOADED;
	}
	if (s->r_tail)
		s->r_tail->next = r;
	else
		s->r_head = r;
	s->r_tail = r;
	s->r_len++;
	pthread_cond_signal(&s->rcond);
	pthread_mutex_unlock(&s->rlock);

	/* The page must include what is still queued: have the writer commit
	 * now rather than at the end of its flush interval. */
	pthread_mutex_lock(&s->wlock);
	if (rm && rm->c_last_seq < watermark && !s->flush_req) {
		s->flush_req = 1;
		pthread_cond_signal(&s->wcond);
	}
	pthread_mutex_unlock(&s->wlock);
	return STORE_OK;
}

void store__thread_background(void)
{
	/* SCHED_BATCH: a fair share of the CPU, but no preempting the service
	 * loop when the writer wakes up. (A nice level would also starve the
	 * writer whenever anything else is busy on the machine, and an
	 * unprivileged process cannot take it back when the queue grows.) */
	struct sched_param sp = { .sched_priority = 0 };
	sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_BATCH, &sp);
}
