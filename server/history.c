/*
 * history.c - history pages: served from a room's recent-message cache
 * when it covers the range, otherwise read from disk on the store's reader
 * thread and answered when the page comes back. (Join with since is
 * catchup.c.)
 *
 * A page is one reply frame, so it is cut to fit the send queue's byte
 * limit: when the messages asked for do not fit, the page holds the newest
 * of them that do (at least one) and says "more":true, and the client's
 * next page (before = the first seq it got) continues exactly there.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catchup.h"
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

static int cookie_match(const void *entry, const void *key)
{
	return ((const struct pread *)entry)->cookie == *(const uint64_t *)key;
}

/* Bytes the messages of one page may take. */
static size_t page_budget(const struct server *s)
{
	return s->cfg->send_queue_bytes - REPLY_PAGE_OVERHEAD;
}

/*
 * history: seqs are contiguous per room, so the page is the range
 * [before - limit, before - 1]. The recent tail is served from the room's
 * cache; older pages are read from disk off the loop thread. With
 * retention on, only the disk knows whether older messages are still
 * there, so a page that does not start at seq 1 comes from disk (its
 * "more" is then exact).
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
	int retention = s->cfg->retain_messages || s->cfg->retain_seconds;

	if (before <= 1 || (room_cache_covers(r, lo, before - 1) && (lo == 1 || !retention))) {
		s->stats.cache_hits++;
		/* Newest first, as many as fit; then encode oldest first. */
		uint64_t first = before;
		size_t total = 0, len;
		while (first > lo) {
			frame_payload(room_cache_get(r, first - 1), &len);
			if (first < before && total + len + 1 > page_budget(s))
				break;
			total += len + 1;
			first--;
		}
		struct pbuf *b = cmd__reply_begin(c, cmd->id);
		pbuf_adds(b, "{\"messages\":[");
		for (uint64_t q = first; q < before; q++) {
			const char *text = frame_payload(room_cache_get(r, q), &len);
			if (q > first)
				pbuf_addc(b, ',');
			pbuf_add(b, text, len);
		}
		/* Without retention every seq from 1 on is stored. */
		pbuf_adds(b, first > 1 ? "],\"more\":true}" : "],\"more\":false}");
		cmd__reply_end(c, cmd->id);
		return;
	}
	s->stats.cache_misses++;
	uint64_t cookie = ++s->next_ticket;
	int rc = store_read(s->store, r->name, before, 0, cmd->limit, cookie);
	if (rc != STORE_OK) {
		cmd__fail(c, cmd->id, rc == STORE_EOVERLOADED ? PROTO_EOVERLOADED :
			 PROTO_ESTORAGE_FAILED, NULL);
		return;
	}
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = cookie;
	p->serial = c->serial;
	p->id = cmd->id;
	memcpy(p->room, r->name, r->name_len + 1);
	hmap_put(&s->reads, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
}

/*
 * history for the HTTP API: the same page as the protocol's, for any room
 * (membership is the API key's business), and not cut to a send queue (an
 * HTTP answer has none). Served from the room's cache when it covers the
 * range (appended to b, *deferred false), else read from disk: *deferred
 * true, and api_history_done(id from defer()) answers later.
 */
enum proto_err cmd_history_any(struct server *s, const char *room, size_t room_len,
			       uint64_t before_arg, unsigned limit, uint64_t (*defer)(void *),
			       void *defer_arg, struct pbuf *b, bool *deferred)
{
	struct room *r = room_find(s, room, room_len);
	uint64_t last = store_last_seq(s->store, room);
	uint64_t before = before_arg && before_arg <= last ? before_arg : last + 1;
	uint64_t lo = before > limit ? before - limit : 1;
	int retention = s->cfg->retain_messages || s->cfg->retain_seconds;

	*deferred = false;
	if (before <= 1 || (r && room_cache_covers(r, lo, before - 1) && (lo == 1 || !retention))) {
		s->stats.cache_hits++;
		pbuf_adds(b, "{\"messages\":[");
		for (uint64_t q = lo; q < before; q++) {
			size_t len;
			const char *text = frame_payload(room_cache_get(r, q), &len);
			if (q > lo)
				pbuf_addc(b, ',');
			pbuf_add(b, text, len);
		}
		pbuf_adds(b, lo > 1 ? "],\"more\":true}" : "],\"more\":false}");
		return PROTO_OK;
	}
	s->stats.cache_misses++;
	uint64_t cookie = ++s->next_ticket;
	int rc = store_read(s->store, room, before, 0, limit, cookie);
	if (rc != STORE_OK)
		return rc == STORE_EOVERLOADED ? PROTO_EOVERLOADED : PROTO_ESTORAGE_FAILED;
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = cookie;
	p->api = defer(defer_arg);
	memcpy(p->room, room, room_len + 1);
	hmap_put(&s->reads, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
	*deferred = true;
	return PROTO_OK;
}

static void enc_row(struct pbuf *b, const struct pread *p, const struct store_msg *row)
{
	proto_enc_message(b, p->room, strlen(p->room), row->seq, row->ts, row->from,
			  strlen(row->from), row->data, row->data_len);
}

static void finish_history(struct server *s, struct conn *c, struct pread *p,
			   struct store_page *page)
{
	if (!page->ok) {
		cmd__fail(c, p->id, PROTO_ESTORAGE_FAILED, "reading history failed");
		return;
	}
	/* Newest first, as many as fit (each measured by encoding it). */
	size_t first = page->count, total = 0;
	while (first > 0) {
		pbuf_reset(&s->data);
		enc_row(&s->data, p, &page->msgs[first - 1]);
		if (first < page->count && total + s->data.len + 1 > page_budget(s))
			break;
		total += s->data.len + 1;
		first--;
	}
	struct pbuf *b = cmd__reply_begin(c, p->id);
	pbuf_adds(b, "{\"messages\":[");
	for (size_t i = first; i < page->count; i++) {
		if (i > first)
			pbuf_addc(b, ',');
		enc_row(b, p, &page->msgs[i]);
	}
	pbuf_adds(b, page->more || first > 0 ? "],\"more\":true}" : "],\"more\":false}");
	cmd__reply_end(c, p->id);
}

void cmd_history_encode(struct pbuf *b, const char *room, const struct store_page *page)
{
	pbuf_adds(b, "{\"messages\":[");
	for (size_t i = 0; i < page->count; i++) {
		const struct store_msg *row = &page->msgs[i];
		if (i)
			pbuf_addc(b, ',');
		proto_enc_message(b, room, strlen(room), row->seq, row->ts, row->from,
				  strlen(row->from), row->data, row->data_len);
	}
	pbuf_adds(b, page->more ? "],\"more\":true}" : "],\"more\":false}");
}

void cmd_page_done(void *srv, struct store_page *page)
{
	struct server *s = srv;
	uint64_t cookie = page->cookie;
	struct pread *p = hmap_del(&s->reads, hmap_hash_bytes(&cookie, sizeof(cookie)),
				   &cookie, cookie_match);

	if (p && p->api) {
		api_history_done(s, p->api, p->room, page);
	} else if (p && p->is_catchup) {
		catchup_page(s, p->serial, cookie, page);
		page = NULL;
	} else if (p) {
		struct conn *c = conn_by_serial(s, p->serial);
		if (c && !c->close_code)
			finish_history(s, c, p, page);
	}
	free(p);
	store_page_free(&page);
	/* A read slot is free: catch-ups that found the queue full retry. */
	catchup_kick_waiters(s);
}


void cmd__history_teardown(struct server *s)
{
	/* Reads whose page never came back (shutdown). */
	for (uint32_t i = 0; i < s->reads.cap; i++)
		if (s->reads.slots[i].hash)
			free(s->reads.slots[i].entry);
	hmap_free(&s->reads);
}
