/*
 * poll.c - handing results back to the loop thread, and the stats.
 *
 * The store's threads append completions under clock and wake the loop
 * only when no wake is outstanding: many commits or reads finishing before
 * the loop polls cost one cfg->wake() call. store_poll() swaps the lists
 * out under the lock and reports outside it, so a handler may call back
 * into the store (store_append, store_read) without deadlock.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Upper bounds of the commit latency buckets; the 12th bucket is +Inf. */
const double store_commit_ms_bounds[11] = {
	0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000,
};

static void wake_if(struct store *s, int need)
{
	if (need && s->cfg.wake)
		s->cfg.wake(s->cfg.wake_opaque);
}

/* Queues n durable results for store_poll(). Any thread. */
void store__post_tickets(struct store *s, const struct store__ticket *t, size_t n)
{
	pthread_mutex_lock(&s->clock);
	if (s->c_nt + n > s->c_cap) {
		size_t cap = s->c_cap ? s->c_cap : 64;
		while (cap < s->c_nt + n)
			cap *= 2;
		s->c_tickets = realloc(s->c_tickets, cap * sizeof(*s->c_tickets));
		if (!s->c_tickets)
			abort();
		s->c_cap = cap;
	}
	memcpy(s->c_tickets + s->c_nt, t, n * sizeof(*t));
	s->c_nt += n;
	int need = !s->wake_pending;
	s->wake_pending = 1;
	pthread_mutex_unlock(&s->clock);
	wake_if(s, need);
}

/* Queues a finished read (r->page set) for store_poll(). Takes r. */
void store__post_page(struct store *s, struct store__read *r)
{
	r->next = NULL;
	pthread_mutex_lock(&s->clock);
	if (s->c_tail)
		s->c_tail->next = r;
	else
		s->c_head = r;
	s->c_tail = r;
	int need = !s->wake_pending;
	s->wake_pending = 1;
	pthread_mutex_unlock(&s->clock);
	wake_if(s, need);
}

void store_poll(struct store *s, const struct store_handlers *h, void *opaque)
{
	pthread_mutex_lock(&s->clock);
	struct store__ticket *t = s->c_tickets;
	size_t nt = s->c_nt;
	struct store__read *r = s->c_head;
	s->c_tickets = NULL;
	s->c_nt = s->c_cap = 0;
	s->c_head = s->c_tail = NULL;
	s->wake_pending = 0;
	pthread_mutex_unlock(&s->clock);

	for (size_t i = 0; i < nt; i++)
		if (h && h->durable_done)
			h->durable_done(opaque, t[i].ticket, t[i].ok);
	free(t);
	while (r) {
		struct store__read *next = r->next;
		if (h && h->page_done)
			h->page_done(opaque, r->page); /* the handler owns the page */
		else
			store_page_free(&r->page);
		free(r);
		r = next;
	}
}

void store_page_free(struct store_page **page)
{
	struct store_page *pg = page ? *page : NULL;
	if (!pg)
		return;
	for (size_t i = 0; i < pg->count; i++) {
		free((char *)pg->msgs[i].from);
		free((char *)pg->msgs[i].data);
	}
	free(pg->msgs);
	free(pg);
	*page = NULL;
}

/* Records one committed batch's latency. Caller holds wlock. */
void store__stats_commit(struct store *s, double ms)
{
	size_t i = 0;
	while (i < 11 && ms > store_commit_ms_bounds[i])
		i++;
	s->commit_bucket[i]++;
	s->commit_ms_sum += ms;
	s->commit_count++;
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->appended = s->appended;
	st->overloaded = s->overloaded;
	st->refused_failing = s->refused_failing;
	pthread_mutex_lock(&s->wlock);
	st->queue_depth = s->depth;
	st->queue_bytes = s->depth_bytes;
	st->committed = s->committed;
	st->write_errors = s->write_errors;
	st->pruned = s->pruned;
	st->dropped = s->dropped;
	st->failing = s->failing;
	st->reserve_refused = s->reserve_refused;
	memcpy(st->commit_ms_bucket, s->commit_bucket, sizeof(st->commit_ms_bucket));
	st->commit_ms_sum = s->commit_ms_sum;
	st->commit_count = s->commit_count;
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_lock(&s->rlock);
	st->reads = s->reads;
	st->read_errors = s->read_errors;
	pthread_mutex_unlock(&s->rlock);
}
