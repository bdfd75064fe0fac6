/*
 * reader.c - the reader thread: serves history pages from its own
 * read-only connection, so the loop never waits on the disk and a read
 * never waits for the writer's transaction (WAL gives it a snapshot).
 *
 * Consistency: store_read() records the append watermark, the room's last
 * seq handed out before the call. Before querying, the reader waits until
 * the writer has committed the room up to it (c_last_seq), so a page
 * reflects every append made before the read; store_read() also asks the
 * writer to commit at once (flush_req) instead of waiting out the flush
 * interval. The watermark is per room, so a read never waits for other
 * rooms' messages, and while the disk fails only reads of rooms with
 * unwritten messages are affected: the reader gives up on those after
 * STORE__READ_FAIL_WAIT_MS and answers ok=0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xalloc.h"

static const char sql_desc[] =
	"SELECT seq, ts, sender, data FROM messages"
	" WHERE room_id = (SELECT id FROM rooms WHERE name = ?1) AND seq < ?2"
	" ORDER BY seq DESC LIMIT ?3";
static const char sql_asc[] =
	"SELECT seq, ts, sender, data FROM messages"
	" WHERE room_id = (SELECT id FROM rooms WHERE name = ?1) AND seq > ?2"
	" ORDER BY seq ASC LIMIT ?3";

int store__reader_prepare(struct store *s, char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(s->rdb, sql_desc, -1, SQLITE_PREPARE_PERSISTENT,
			       &s->st_read_desc, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->rdb, sql_asc, -1, SQLITE_PREPARE_PERSISTENT,
			       &s->st_read_asc, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "preparing history reads: %s", sqlite3_errmsg(s->rdb));
		return -1;
	}
	return 0;
}

void store__reader_finalize(struct store *s)
{
	sqlite3_finalize(s->st_read_desc);
	sqlite3_finalize(s->st_read_asc);
	s->st_read_desc = s->st_read_asc = NULL;
}

/* Waits until the writer has committed the room up to the watermark.
 * Returns 1 if it has, 0 if the wait was cut short (failing, stopped). */
static int wait_watermark(struct store *s, const struct store__read *r)
{
	if (!r->rm)
		return 1;
	int64_t start = store__now_ms(CLOCK_MONOTONIC);
	pthread_mutex_lock(&s->wlock);
	while (r->rm->c_last_seq < r->watermark && !s->w_exited) {
		int64_t now = store__now_ms(CLOCK_MONOTONIC);
		int64_t limit = s->failing ? STORE__READ_FAIL_WAIT_MS : STORE__READ_MAX_WAIT_MS;
		if (now - start >= limit)
			break;
		if (!s->flush_req) {
			s->flush_req = 1;
			pthread_cond_signal(&s->wcond);
		}
		/* Wake at the failing limit at the latest, to re-check. */
		int64_t until = start + (s->failing ? STORE__READ_FAIL_WAIT_MS
						    : STORE__READ_MAX_WAIT_MS);
		struct timespec dl = store__deadline(until);
		pthread_cond_timedwait(&s->commit_cond, &s->wlock, &dl);
	}
	int ok = r->rm->c_last_seq >= r->watermark;
	pthread_mutex_unlock(&s->wlock);
	return ok;
}

/* Runs the query for r. Returns the page (ok=0 on error). */
static struct store_page *query(struct store *s, struct store__read *r)
{
	struct store_page *pg = calloc(1, sizeof(*pg));
	if (!pg)
		abort();
	pg->cookie = r->cookie;
	if (!wait_watermark(s, r))
		return pg;

	int asc = r->after != 0;
	sqlite3_stmt *st = asc ? s->st_read_asc : s->st_read_desc;
	uint64_t bound = asc ? r->after : (r->before ? r->before : (uint64_t)INT64_MAX);
	if (bound > (uint64_t)INT64_MAX)
		bound = (uint64_t)INT64_MAX;
	sqlite3_bind_text(st, 1, r->room, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)bound);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->limit + 1); /* +1 tells `more` */

	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (pg->count == r->limit) {
			pg->more = 1;
			continue; /* the extra row: drain to SQLITE_DONE */
		}
		if (pg->count == cap) {
			cap = cap ? cap * 2 : 16;
			if (cap > r->limit)
				cap = r->limit;
			pg->msgs = realloc(pg->msgs, cap * sizeof(*pg->msgs));
			if (!pg->msgs)
				abort();
		}
		struct store_msg *m = &pg->msgs[pg->count++];
		m->seq = (uint64_t)sqlite3_column_int64(st, 0);
		m->ts = sqlite3_column_int64(st, 1);
		const char *from = (const char *)sqlite3_column_text(st, 2);
		m->from = xstrndup(from ? from : "", from ? (size_t)sqlite3_column_bytes(st, 2) : 0);
		const char *data = (const char *)sqlite3_column_text(st, 3);
		m->data_len = data ? (size_t)sqlite3_column_bytes(st, 3) : 0;
		m->data = xstrndup(data ? data : "", m->data_len);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		struct store_page *bad = pg;
		store_page_free(&bad);
		pg = calloc(1, sizeof(*pg));
		if (!pg)
			abort();
		pg->cookie = r->cookie;
		return pg;
	}
	if (!asc) { /* DESC query: hand back oldest first */
		for (size_t i = 0, j = pg->count ? pg->count - 1 : 0; i < j; i++, j--) {
			struct store_msg t = pg->msgs[i];
			pg->msgs[i] = pg->msgs[j];
			pg->msgs[j] = t;
		}
	}
	pg->ok = 1;
	return pg;
}

void *store__reader_main(void *arg)
{
	struct store *s = arg;

	store__thread_background();
	pthread_mutex_lock(&s->rlock);
	for (;;) {
		while (!s->r_head && !s->r_stop)
			pthread_cond_wait(&s->rcond, &s->rlock);
		struct store__read *r = s->r_head;
		if (!r)
			break; /* stopping and drained */
		s->r_head = r->next;
		if (!s->r_head)
			s->r_tail = NULL;
		s->r_len--;
		pthread_mutex_unlock(&s->rlock);

		r->next = NULL;
		r->page = query(s, r);
		pthread_mutex_lock(&s->rlock);
		s->reads++;
		if (!r->page->ok)
			s->read_errors++;
		pthread_mutex_unlock(&s->rlock);
		store__post_page(s, r); /* counted first: stats agree with the page */
		pthread_mutex_lock(&s->rlock);
	}
	pthread_mutex_unlock(&s->rlock);
	return NULL;
}
