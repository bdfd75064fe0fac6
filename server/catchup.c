/* catchup.c - join with since, streamed as the socket drains (catchup.h). */
#include "catchup.h"

#include <stdlib.h>
#include <string.h>

#include "cmd_int.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "sio/sio_edge.h"
#include "store.h"
#include "util.h"

struct catchup {
	struct catchup *next;      /* conn's FIFO */
	struct member *m;          /* NULL once the member left */
	uint64_t id;               /* the join's id (0: none) */
	uint64_t next_seq, last;   /* still to queue: [next_seq, last] */
	uint64_t cookie;           /* a disk read in flight; 0: none */
	struct store_page *page;   /* rows read, queued from idx on */
	size_t idx;
	bool failed;               /* answer recovered:false */
	bool read_disk;            /* for the cache hit/miss counters */
	bool replied;              /* the join reply went; the hold goes next */
	uint64_t lag_since;        /* > 0: waiting for the node to apply up to it (cluster) */
	int64_t lag_until_ms;      /* ... until then (mono ms) */
	char room[PROTO_ROOM_MAX + 1];
};

int catchup_room_for_one(const struct conn *c)
{
	return c->ncatchup < CATCHUP_MAX_FACTOR * c->srv->cfg->max_rooms;
}

void catchup_start(struct conn *c, struct member *m, uint64_t id, uint64_t since)
{
	struct server *s = c->srv;
	struct room *r = m->room;
	struct catchup *cu = xcalloc(1, sizeof(*cu));

	cu->m = m;
	cu->id = id;
	cu->last = store_last_seq(s->store, r->name);
	cu->next_seq = since + 1;
	/* A since above the latest seq: the client saw seqs this store never
	 * handed out (it was reset or restored). Nothing to replay, and not
	 * recovered: the client's copy of the room is not this room's. */
	cu->failed = since > cu->last;
	if (cu->failed && s->cluster) {
		/* Or this node is behind the cluster's log (the client saw it
		 * on another node): wait for it, a cluster timeout at most. */
		cu->failed = false;
		cu->lag_since = since;
		m->lagging = true;
		cu->lag_until_ms = (int64_t)(util_mono_us() / 1000) + s->cfg->cluster_timeout_ms;
		/* listed once per connection as a rule: a client re-joins its
		 * rooms all at once, so its entry is the last one */
		if (!s->nlag || s->lag_serials[s->nlag - 1] != c->serial) {
			if (s->nlag == s->lag_cap) {
				s->lag_cap = s->lag_cap ? 2 * s->lag_cap : 16;
				s->lag_serials = xrealloc(s->lag_serials,
							  s->lag_cap * sizeof(*s->lag_serials));
			}
			s->lag_serials[s->nlag++] = c->serial;
		}
	}
	memcpy(cu->room, r->name, r->name_len + 1);
	if (!m->hold) {
		m->hold = xcalloc(1, sizeof(*m->hold));
		room_slot(m);
	}
	m->ncatchup++;
	if (c->cu_tail)
		c->cu_tail->next = cu;
	else
		c->cu_head = cu;
	c->cu_tail = cu;
	c->ncatchup++;
	catchup_pump(c);
}

static void unlink_waiter(struct server *s, struct conn *c)
{
	if (!c->read_waiting)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		s->read_waiters = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		s->read_waiters_tail = c->wprev;
	c->wnext = c->wprev = NULL;
	c->read_waiting = false;
}

static void add_waiter(struct server *s, struct conn *c)
{
	if (c->read_waiting)
		return;
	c->read_waiting = true;
	c->wnext = NULL;
	c->wprev = s->read_waiters_tail;
	if (s->read_waiters_tail)
		s->read_waiters_tail->wnext = c;
	else
		s->read_waiters = c;
	s->read_waiters_tail = c;
}

static void free_one(struct catchup **cup)
{
	struct catchup *cu = *cup;

	*cup = NULL;
	store_page_free(&cu->page);
	free(cu);
}

static int hold_room(const struct conn *c);

/* Sends the join reply, lets the member's held frames go (after its last
 * catch-up) and frees the head catch-up. Returns 1 when it did; 0 when a
 * Socket.IO session's queue could take only part of the hold: the
 * catch-up then stays at the head, and the next pump lets more go. */
static int finish(struct conn *c, struct catchup *cu)
{
	struct member *m = cu->m;

	if (m && !cu->replied) {
		cmd__join_reply(c, cu->id, m->room, cu->last, !cu->failed);
		cu->replied = true;
	}
	/*
	 * A Socket.IO session's queue has bounds of its own (the Engine.IO
	 * queue over polling), and the hold may be bigger than they are: it
	 * is bounded by send_queue_messages / send_queue_bytes, which an
	 * operator may raise. So its frames go as the catch-up's did, a
	 * slice at a time as the client takes them, and the live frames
	 * published meanwhile queue behind them in the hold, in order. (A
	 * native connection's queue counts held and queued frames against
	 * one limit: the whole hold always fits, and goes at once.)
	 */
	if (m && c->kind == CONN_SIO && m->ncatchup == 1) {
		while (m->hold && !c->close_code && hold_room(c))
			member_release_one(m, cu->last);
		if (m->hold && !c->close_code)
			return 0;
	}
	c->cu_head = cu->next;
	if (!c->cu_head)
		c->cu_tail = NULL;
	c->ncatchup--;
	if (!cu->read_disk && !cu->failed)
		c->srv->stats.cache_hits++;
	if (m) {
		if (--m->ncatchup == 0)
			member_release_hold(m, cu->last);
	} else if (cu->id && !cu->replied) {
		/* Left while catching up: the join still gets its one reply. */
		struct pbuf *b = cmd__reply_begin(c, cu->id);
		pbuf_adds(b, "{\"room\":");
		pbuf_add_jstr(b, cu->room, strlen(cu->room));
		pbuf_adds(b, ",\"seq\":");
		pbuf_add_u64(b, cu->last);
		pbuf_adds(b, ",\"members\":0,\"recovered\":false}");
		cmd__reply_end(c, cu->id);
	}
	free_one(&cu);
	return 1;
}

/* Queues one stored row as a replayed message. */
static void send_row(struct conn *c, struct room *r, const struct store_msg *row)
{
	struct server *s = c->srv;

	struct pbuf *b = server_enc_begin(s);
	proto_enc_message(b, r->name, r->name_len, row->seq, row->ts, row->from,
			  strlen(row->from), row->data, row->data_len);
	struct frame *f = frame_new_text(b->data, b->len);
	server_enc_end(s);
	f->seq = row->seq;
	conn_send_reply(c, f);
	frame_unref(&f);
}

/* 1 while the replies waiting in c's queue are below half the send queue
 * limits (always room for one when none waits). A Socket.IO session that
 * polls has no socket of its own: its Engine.IO queue is what the client
 * drains, one GET at a time (sio_catchup_room). */
static int has_room(const struct conn *c)
{
	const struct config *cfg = c->srv->cfg;

	if (c->kind == CONN_SIO) {
		int r = sio_catchup_room(c);
		if (r >= 0)
			return r;
	}
	return c->q.rcount == 0 ||
	       ((uint64_t)c->q.rcount * 2 < cfg->send_queue_messages &&
		(uint64_t)c->q.rbytes * 2 < cfg->send_queue_bytes);
}

/* 1 while held live frames may go into c's queue: over polling, the same
 * slice of the Engine.IO queue as the replay; on a WebSocket, while the
 * live frames waiting are below half the send queue limits (released
 * frames are live ones, and a Socket.IO rendition may be longer than the
 * native frame the hold counted). */
static int hold_room(const struct conn *c)
{
	const struct config *cfg = c->srv->cfg;
	int r = sio_catchup_room(c);

	if (r >= 0)
		return r;
	return sendq_live(&c->q) == 0 ||
	       ((uint64_t)sendq_live(&c->q) * 2 < cfg->send_queue_messages &&
		(uint64_t)sendq_live_bytes(&c->q) * 2 < cfg->send_queue_bytes);
}

/* Asks the store for the next chunk. Returns 0 (read in flight, or the
 * catch-up failed), or -1 when the read queue is full (c waits). */
static int start_read(struct conn *c, struct catchup *cu)
{
	struct server *s = c->srv;
	uint64_t hi = cu->last - cu->next_seq + 1 > CATCHUP_CHUNK ?
		      cu->next_seq + CATCHUP_CHUNK - 1 : cu->last;
	uint64_t cookie = ++s->next_ticket;
	int rc = store_read(s->store, cu->room, hi + 1, 0, (unsigned)(hi - cu->next_seq + 1), cookie);

	if (rc == STORE_EOVERLOADED) {
		add_waiter(s, c);
		return -1;
	}
	if (!cu->read_disk)
		s->stats.cache_misses++;
	cu->read_disk = true;
	if (rc != STORE_OK) {
		cu->failed = true;
		return 0;
	}
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = cookie;
	p->serial = c->serial;
	p->is_catchup = true;
	hmap_put(&s->reads, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
	cu->cookie = cookie;
	return 0;
}

/* 1 once a catch-up waiting for its since may go on: the node has applied
 * up to since (the catch-up then ends at the latest seq now), or the wait
 * is over (not recovered, as for a since the cluster never handed out). */
static int lag_over(struct conn *c, struct catchup *cu)
{
	struct server *s = c->srv;
	uint64_t last = store_last_seq(s->store, cu->room);

	if (last >= cu->lag_since) {
		log_info("catchup_lag", "session=%s room=%s since=%llu waited=done", c->session,
			 log_q(cu->room), (unsigned long long)cu->lag_since);
	} else if ((int64_t)(util_mono_us() / 1000) >= cu->lag_until_ms) {
		log_warn("catchup_lag", "session=%s room=%s since=%llu latest=%llu waited=timeout",
			 c->session, log_q(cu->room), (unsigned long long)cu->lag_since,
			 (unsigned long long)last);
		cu->failed = true;
	} else {
		return 0;
	}
	/* held meanwhile: the live frames up to last are in the range now */
	cu->last = last;
	cu->lag_since = 0;
	cu->m->lagging = false;
	return 1;
}

int catchup_pump(struct conn *c)
{
	struct catchup *cu;
	int queued = 0;

	if (c->srv->store_closing)
		return 0;
	while ((cu = c->cu_head) && !c->close_code && !cu->cookie && !c->read_waiting &&
	       has_room(c)) {
		if (cu->m && cu->lag_since && !lag_over(c, cu))
			break; /* catchup_lag_pump comes back */
		if (!cu->m || cu->failed || cu->next_seq > cu->last) {
			queued = 1;
			if (!finish(c, cu))
				break; /* the rest of the hold, as the queue drains */
			continue;
		}
		if (cu->page && cu->idx < cu->page->count) {
			send_row(c, cu->m->room, &cu->page->msgs[cu->idx++]);
			cu->next_seq++;
			queued = 1;
			continue;
		}
		store_page_free(&cu->page);
		struct frame *f = room_cache_get(cu->m->room, cu->next_seq);
		if (f) {
			conn_send_reply(c, f);
			cu->next_seq++;
			queued = 1;
			continue;
		}
		if (start_read(c, cu) < 0)
			break;
	}
	return queued;
}

/*
 * A room that has just come back (after a restart, or when its last member
 * left) has an empty cache, and all its clients re-join with since at about
 * the same time. If a page read for one of them ends at the room's latest
 * seq, its rows become the cache, so the others are served from memory
 * instead of each reading the same rows from disk. Returns 1 if it did.
 */
static int seed_cache(struct server *s, struct room *r, const struct store_page *page)
{
	uint32_t max = s->cfg->history_cache;

	if (r->tail_count || !max || page->count == 0 ||
	    page->msgs[page->count - 1].seq != store_last_seq(s->store, r->name))
		return 0;
	size_t from = page->count > max ? page->count - max : 0;
	for (size_t i = from; i < page->count; i++) {
		const struct store_msg *row = &page->msgs[i];
		struct pbuf *b = server_enc_begin(s);
		proto_enc_message(b, r->name, r->name_len, row->seq, row->ts, row->from,
				  strlen(row->from), row->data, row->data_len);
		struct frame *f = frame_new_text(b->data, b->len);
		server_enc_end(s);
		f->seq = row->seq;
		room_cache_add(r, row->seq, f, max);
		frame_unref(&f);
	}
	/* Else the catch-up still needs the rows before the cache, or the
	 * cache's byte budget (history_cache_bytes) kept only the newest. */
	return from == 0 && room_cache_covers(r, page->msgs[0].seq, page->msgs[page->count - 1].seq);
}

void catchup_page(struct server *s, uint64_t serial, uint64_t cookie, struct store_page *page)
{
	struct conn *c = conn_by_serial(s, serial);
	struct catchup *cu = c ? c->cu_head : NULL;

	if (!cu || cu->cookie != cookie) {
		store_page_free(&page); /* the connection is gone */
		return;
	}
	cu->cookie = 0;
	/* The chunk must be exactly next_seq.. in order: anything else means
	 * retention removed part of the range, and the catch-up cannot be
	 * complete. */
	int ok = page->ok && page->count > 0;
	for (size_t i = 0; ok && i < page->count; i++)
		if (page->msgs[i].seq != cu->next_seq + i)
			ok = 0;
	if (ok && cu->m && seed_cache(s, cu->m->room, page)) {
		/* The rows are the room's newest: they now serve this
		 * catch-up and the next ones from memory. */
		store_page_free(&page);
	} else if (ok) {
		cu->page = page;
		cu->idx = 0;
	} else {
		cu->failed = true;
		store_page_free(&page);
	}
	catchup_pump(c);
}

void catchup_member_gone(struct member *m)
{
	struct conn *c = m->conn;

	for (struct catchup *cu = c->cu_head; cu && m->ncatchup; cu = cu->next)
		if (cu->m == m) {
			cu->m = NULL;
			m->ncatchup--;
		}
}

void catchup_free_all(struct conn *c)
{
	if (c->srv)
		unlink_waiter(c->srv, c);
	while (c->cu_head) {
		struct catchup *cu = c->cu_head;
		c->cu_head = cu->next;
		free_one(&cu);
	}
	c->cu_tail = NULL;
	c->ncatchup = 0;
}

static int lag_waiting(const struct conn *c)
{
	for (const struct catchup *cu = c->cu_head; cu; cu = cu->next)
		if (cu->lag_since && cu->m)
			return 1;
	return 0;
}

void catchup_lag_pump(struct server *s)
{
	uint32_t kept = 0;

	s->lag_poke = false;
	for (uint32_t i = 0; i < s->nlag; i++) {
		struct conn *c = conn_by_serial(s, s->lag_serials[i]);
		if (!c || c->close_code)
			continue;
		catchup_pump(c);
		/* (a connection listed twice, its catch-ups started between
		 * another's: harmless, its second entry finds nothing to do) */
		if (lag_waiting(c))
			s->lag_serials[kept++] = s->lag_serials[i];
	}
	s->nlag = kept;
}

void catchup_lag_free(struct server *s)
{
	free(s->lag_serials);
	s->lag_serials = NULL;
	s->nlag = s->lag_cap = 0;
}

void catchup_kick_waiters(struct server *s)
{
	/* Each gets one try in order; one that finds the queue full again
	 * goes back to the tail, so stop after the current list. */
	struct conn *stop = s->read_waiters_tail;

	while (s->read_waiters) {
		struct conn *c = s->read_waiters;
		unlink_waiter(s, c);
		catchup_pump(c);
		if (c == stop || c->read_waiting)
			break;
	}
}
