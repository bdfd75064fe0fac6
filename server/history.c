/*
 * history.c - history pages and join with since: served from a room's
 * recent-message cache when it covers the range, otherwise read from disk
 * on the store's reader thread and answered when the page comes back.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_int.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"

/* A read from disk in flight: a history page or a join's replay. */
struct pread {
	uint64_t cookie;
	uint64_t serial;      /* the connection that asked */
	uint64_t id;
	bool is_join;
	uint64_t since, last; /* join: replay (since, last] */
	char room[PROTO_ROOM_MAX + 1];
};

#define REPLAY_MAX 1000   /* a join's replay at most; beyond: recovered:false */


static int cookie_match(const void *entry, const void *key)
{
	return ((const struct pread *)entry)->cookie == *(const uint64_t *)key;
}


/* Queues the message frame of a stored row for c. */
static void send_row(struct conn *c, struct room *r, const struct store_msg *row)
{
	struct server *s = c->srv;

	pbuf_reset(&s->enc);
	proto_enc_message(&s->enc, r->name, r->name_len, row->seq, row->ts, row->from,
			  strlen(row->from), row->data, row->data_len);
	struct frame *f = frame_new_text(s->enc.data, s->enc.len);
	f->seq = row->seq;
	conn_send(c, f);
	frame_unref(&f);
}


/*
 * join with since: the member joins at once, so nothing published from now
 * on can be missed, and every seq up to `last` is already in the store.
 * Messages (since, last] are replayed from the cache, or read from disk
 * while live frames for this member wait in its hold queue; then comes the
 * reply, then the held live frames. So: no gap, no duplicate.
 */
void cmd__join_since(struct conn *c, struct proto_cmd *cmd, struct member *m)
{
	struct server *s = c->srv;
	struct room *r = m->room;
	uint64_t last = store_last_seq(s->store, r->name), since = cmd->since;

	if (since >= last) {
		cmd__join_reply(c, cmd->id, r, last, 1);
		return;
	}
	if (last - since > REPLAY_MAX) {
		cmd__join_reply(c, cmd->id, r, last, 0);
		return;
	}
	if (room_cache_covers(r, since + 1, last)) {
		s->stats.cache_hits++;
		for (uint64_t q = since + 1; q <= last; q++)
			conn_send(c, room_cache_get(r, q));
		cmd__join_reply(c, cmd->id, r, last, 1);
		return;
	}
	s->stats.cache_misses++;
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = ++s->next_ticket;
	if (store_read(s->store, r->name, 0, since, (unsigned)(last - since), p->cookie) != STORE_OK) {
		free(p);
		cmd__join_reply(c, cmd->id, r, last, 0);
		return;
	}
	p->serial = c->serial;
	p->id = cmd->id;
	p->is_join = true;
	p->since = since;
	p->last = last;
	memcpy(p->room, r->name, r->name_len + 1);
	hmap_put(&s->reads, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
	m->hold = xcalloc(1, sizeof(*m->hold));
	m->read_cookie = p->cookie;
}


/*
 * history: seqs are contiguous per room, so the page is the range
 * [before - limit, before - 1]. The recent tail is served from the room's
 * cache; older pages are read from disk off the loop thread.
 */
void cmd__history(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = cmd__find_member(c, cmd);

	if (!m) {
		cmd__fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	if (!cmd->id)
		return; /* nobody to answer */
	struct room *r = m->room;
	uint64_t last = store_last_seq(s->store, r->name);
	uint64_t before = cmd->has_before && cmd->before <= last ? cmd->before : last + 1;
	uint64_t lo = before > cmd->limit ? before - cmd->limit : 1;

	if (before <= 1 || room_cache_covers(r, lo, before - 1)) {
		s->stats.cache_hits++;
		struct pbuf *b = cmd__reply_begin(c, cmd->id);
		pbuf_adds(b, "{\"messages\":[");
		for (uint64_t q = lo; q < before; q++) {
			size_t len;
			const char *text = frame_payload(room_cache_get(r, q), &len);
			if (q > lo)
				pbuf_addc(b, ',');
			pbuf_add(b, text, len);
		}
		/* Older messages exist unless the page starts at seq 1 (a
		 * retention-pruned prefix shows up as an empty last page). */
		pbuf_adds(b, lo > 1 && before > 1 ? "],\"more\":true}" : "],\"more\":false}");
		cmd__reply_end(c, cmd->id);
		return;
	}
	s->stats.cache_misses++;
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = ++s->next_ticket;
	int rc = store_read(s->store, r->name, before, 0, cmd->limit, p->cookie);
	if (rc != STORE_OK) {
		free(p);
		cmd__fail(c, cmd->id, rc == STORE_EOVERLOADED ? PROTO_EOVERLOADED :
			 PROTO_ESTORAGE_FAILED, NULL);
		return;
	}
	p->serial = c->serial;
	p->id = cmd->id;
	memcpy(p->room, r->name, r->name_len + 1);
	hmap_put(&s->reads, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
}


static void finish_join(struct server *s, struct conn *c, struct pread *p,
			struct store_page *page)
{
	struct room *r = room_find(s, p->room, strlen(p->room));
	struct member *m = r ? room_member(c, r) : NULL;

	if (!m || m->read_cookie != p->cookie) {
		/* Left (or left and came back) while the read ran: the
		 * join still gets its one reply. */
		if (r && p->id) {
			cmd__join_reply(c, p->id, r, p->last, 0);
		} else if (p->id) {
			struct pbuf *b = cmd__reply_begin(c, p->id);
			pbuf_adds(b, "{\"room\":");
			pbuf_add_jstr(b, p->room, strlen(p->room));
			pbuf_adds(b, ",\"seq\":");
			pbuf_add_u64(b, p->last);
			pbuf_adds(b, ",\"members\":0,\"recovered\":false}");
			cmd__reply_end(c, p->id);
		}
		return;
	}
	/* Recovered only if the page is exactly since+1 .. last. */
	int ok = page->ok && page->count == p->last - p->since &&
		 (page->count == 0 || page->msgs[0].seq == p->since + 1);
	uint64_t upto = p->since;
	for (size_t i = 0; ok && i < page->count; i++) {
		if (page->msgs[i].seq != upto + 1) {
			ok = 0;
			break;
		}
		upto = page->msgs[i].seq;
	}
	if (ok)
		for (size_t i = 0; i < page->count; i++)
			send_row(c, r, &page->msgs[i]);
	m->read_cookie = 0;
	cmd__join_reply(c, p->id, r, p->last, ok);
	member_release_hold(m, p->last);
}

static void finish_history(struct server *s, struct conn *c, struct pread *p,
			   struct store_page *page)
{
	if (!page->ok) {
		cmd__fail(c, p->id, PROTO_ESTORAGE_FAILED, "reading history failed");
		return;
	}
	struct pbuf *b = cmd__reply_begin(c, p->id);
	pbuf_adds(b, "{\"messages\":[");
	for (size_t i = 0; i < page->count; i++) {
		const struct store_msg *row = &page->msgs[i];
		if (i)
			pbuf_addc(b, ',');
		proto_enc_message(b, p->room, strlen(p->room), row->seq, row->ts, row->from,
				  strlen(row->from), row->data, row->data_len);
	}
	pbuf_adds(b, page->more ? "],\"more\":true}" : "],\"more\":false}");
	cmd__reply_end(c, p->id);
	(void)s;
}

void cmd_page_done(void *srv, struct store_page *page)
{
	struct server *s = srv;
	uint64_t cookie = page->cookie;
	struct pread *p = hmap_del(&s->reads, hmap_hash_bytes(&cookie, sizeof(cookie)),
				   &cookie, cookie_match);

	if (p) {
		struct conn *c = cmd__conn_by_serial(s, p->serial);
		if (c && !c->close_code) {
			if (p->is_join)
				finish_join(s, c, p, page);
			else
				finish_history(s, c, p, page);
		}
		free(p);
	}
	store_page_free(&page);
}


void cmd__history_teardown(struct server *s)
{
	/* Reads whose page never came back (shutdown). */
	for (uint32_t i = 0; i < s->reads.cap; i++)
		if (s->reads.slots[i].hash)
			free(s->reads.slots[i].entry);
	hmap_free(&s->reads);
}
