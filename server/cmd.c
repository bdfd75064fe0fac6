/*
 * cmd.c - client command handlers.
 *
 * Every command with an id gets exactly one reply; a failed command without
 * one gets an error frame. Replies travel through the connection's queue like
 * everything else, so a publisher's own copy of its message (queued by the
 * fan-out) always precedes its reply.
 */
#include "cmd.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "ratelimit.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"

/* A durable publish waiting for its transaction to commit. */
struct durable {
	uint64_t ticket;
	uint64_t serial;  /* the publisher; it may be gone by commit time */
	uint64_t id;
	uint64_t seq;
};

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

static int ticket_match(const void *entry, const void *key)
{
	return ((const struct durable *)entry)->ticket == *(const uint64_t *)key;
}

static int serial_match(const void *entry, const void *key)
{
	return ((const struct conn *)entry)->serial == *(const uint64_t *)key;
}

static void fail(struct conn *c, uint64_t id, enum proto_err e, const char *msg)
{
	struct server *s = c->srv;

	s->stats.errors[e]++;
	pbuf_reset(&s->enc);
	proto_enc_failure(&s->enc, id, e, msg);
	conn_send_text(c, s->enc.data, s->enc.len);
}

/* Starts a successful reply in s->enc; the caller appends data and calls
 * reply_end(). */
static struct pbuf *reply_begin(struct conn *c, uint64_t id)
{
	struct pbuf *b = &c->srv->enc;
	pbuf_reset(b);
	proto_enc_reply_ok_open(b, id);
	return b;
}

static void reply_end(struct conn *c, uint64_t id)
{
	struct pbuf *b = &c->srv->enc;
	if (!id)
		return; /* no id: success is silent */
	proto_enc_close(b);
	conn_send_text(c, b->data, b->len);
}

static struct member *find_member(struct conn *c, const struct proto_cmd *cmd)
{
	struct room *r = room_find(c->srv, cmd->room, cmd->room_len);
	return r ? room_member(c, r) : NULL;
}

/* ---- hello ---- */

/* Sets c's display name; every room it is in sees the old name leave and
 * the new one join. */
static void set_display_name(struct conn *c, const char *name, size_t len)
{
	if (len == c->name_len && !memcmp(name, c->name, len))
		return;
	conn_set_name(c, name, len);
	for (uint32_t i = 0; i < c->rooms.cap; i++) {
		struct member *m = c->rooms.slots[i].entry;
		if (!c->rooms.slots[i].hash)
			continue;
		presence_remove(m->room, m->user);
		m->user = presence_add(m->room, c->name, c->name_len);
	}
}

static void cmd_hello_token(struct conn *c, struct proto_cmd *cmd);

static void cmd_hello(struct conn *c, struct proto_cmd *cmd)
{
	if (cmd->token) {
		cmd_hello_token(c, cmd);
		return;
	}
	if (c->srv->auth) {
		fail(c, cmd->id, PROTO_EFORBIDDEN, "with token authentication the name comes from the token");
		return;
	}
	set_display_name(c, cmd->name, cmd->name_len);
	struct pbuf *b = reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"user\":");
	pbuf_add_jstr(b, c->name, c->name_len);
	pbuf_addc(b, '}');
	reply_end(c, cmd->id);
}

/* ---- join / leave ---- */

/* recovered: -1 leaves the field out (a join without since). */
static void join_reply(struct conn *c, uint64_t id, struct room *r, uint64_t seq,
		       int recovered)
{
	struct pbuf *b = reply_begin(c, id);
	pbuf_adds(b, "{\"room\":");
	pbuf_add_jstr(b, r->name, r->name_len);
	pbuf_adds(b, ",\"seq\":");
	pbuf_add_u64(b, seq);
	pbuf_adds(b, ",\"members\":");
	pbuf_add_u64(b, r->nusers);
	if (recovered >= 0)
		pbuf_adds(b, recovered ? ",\"recovered\":true" : ",\"recovered\":false");
	pbuf_addc(b, '}');
	reply_end(c, id);
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
static void join_since(struct conn *c, struct proto_cmd *cmd, struct member *m)
{
	struct server *s = c->srv;
	struct room *r = m->room;
	uint64_t last = store_last_seq(s->store, r->name), since = cmd->since;

	if (since >= last) {
		join_reply(c, cmd->id, r, last, 1);
		return;
	}
	if (last - since > REPLAY_MAX) {
		join_reply(c, cmd->id, r, last, 0);
		return;
	}
	if (room_cache_covers(r, since + 1, last)) {
		s->stats.cache_hits++;
		for (uint64_t q = since + 1; q <= last; q++)
			conn_send(c, room_cache_get(r, q));
		join_reply(c, cmd->id, r, last, 1);
		return;
	}
	s->stats.cache_misses++;
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = ++s->next_ticket;
	if (store_read(s->store, r->name, 0, since, (unsigned)(last - since), p->cookie) != STORE_OK) {
		free(p);
		join_reply(c, cmd->id, r, last, 0);
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

static void cmd_join(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = find_member(c, cmd);

	if (m) {
		/* Already a member and live: nothing to replay. */
		room_set_presence(m, cmd->presence);
		join_reply(c, cmd->id, m->room, store_last_seq(s->store, m->room->name),
			   cmd->has_since ? !m->hold : -1);
		return;
	}
	if (c->rooms.len >= s->cfg->max_rooms) {
		fail(c, cmd->id, PROTO_ETOO_MANY_ROOMS, NULL);
		return;
	}
	m = room_join(s, c, cmd->room, cmd->room_len, cmd->presence);
	if (cmd->has_since)
		join_since(c, cmd, m);
	else
		join_reply(c, cmd->id, m->room, store_last_seq(s->store, m->room->name), -1);
}

static void cmd_leave(struct conn *c, struct proto_cmd *cmd)
{
	struct member *m = find_member(c, cmd);

	if (!m) {
		fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	room_leave(m);
	struct pbuf *b = reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"room\":");
	pbuf_add_jstr(b, cmd->room, cmd->room_len);
	pbuf_addc(b, '}');
	reply_end(c, cmd->id);
}

/* ---- publish ---- */

static void cmd_publish(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = find_member(c, cmd);
	uint64_t seq = 0, ticket = 0;

	if (!m) {
		fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	if (cmd->durable && !cmd->persist) {
		fail(c, cmd->id, PROTO_EBAD_REQUEST, "durable needs a persisted message");
		return;
	}
	struct room *r = m->room;
	pbuf_reset(&s->data);
	proto_data_text(cmd, &s->data);

	/* Encode first, with the seq the store will assign (this loop is the
	 * only appender), so an oversized message is refused before a seq is
	 * spent and the limit is exact. */
	int64_t ts = util_now_ms();
	uint64_t next = cmd->persist ? store_last_seq(s->store, r->name) + 1 : 0;
	pbuf_reset(&s->enc);
	proto_enc_message(&s->enc, r->name, r->name_len, next, ts, c->name, c->name_len,
			  s->data.data, s->data.len);
	if (s->enc.len > s->cfg->max_message_size) {
		fail(c, cmd->id, PROTO_ETOO_LARGE, NULL);
		return;
	}
	if (cmd->persist) {
		if (cmd->durable)
			ticket = ++s->next_ticket;
		int rc = store_append(s->store, r->name, ts, c->name, s->data.data,
				      s->data.len, ticket, &seq);
		if (rc != STORE_OK) {
			fail(c, cmd->id, rc == STORE_EOVERLOADED ? PROTO_EOVERLOADED :
				 rc == STORE_EFAILING ? PROTO_ESTORAGE_FAILED : PROTO_EINTERNAL, NULL);
			return;
		}
		if (seq != next) {
			log_error("seq_mismatch", "room=%s expected=%llu got=%llu", r->name,
				  (unsigned long long)next, (unsigned long long)seq);
			abort(); /* an invariant: two writers of seqs */
		}
	}
	struct frame *f = frame_new_text(s->enc.data, s->enc.len);
	f->seq = seq;
	if (seq)
		room_cache_add(r, seq, f, s->cfg->history_cache);
	room_fanout(r, f, cmd->echo ? NULL : c);
	frame_unref(&f);
	s->stats.published++;

	if (ticket) {
		/* The reply waits for the commit (cmd_durable_done). */
		struct durable *d = xmalloc(sizeof(*d));
		*d = (struct durable){ ticket, c->serial, cmd->id, seq };
		hmap_put(&s->tickets, hmap_hash_bytes(&ticket, sizeof(ticket)), d);
		return;
	}
	struct pbuf *b = reply_begin(c, cmd->id);
	if (seq) {
		pbuf_adds(b, "{\"seq\":");
		pbuf_add_u64(b, seq);
		pbuf_addc(b, '}');
	} else {
		pbuf_adds(b, "{}");
	}
	reply_end(c, cmd->id);
}

void cmd_durable_done(void *srv, uint64_t ticket, int ok)
{
	struct server *s = srv;
	struct durable *d = hmap_del(&s->tickets, hmap_hash_bytes(&ticket, sizeof(ticket)),
				     &ticket, ticket_match);
	if (!d)
		return;
	struct conn *c = hmap_get(&s->by_serial, hmap_hash_bytes(&d->serial, sizeof(d->serial)),
				  &d->serial, serial_match);
	if (c && !c->close_code) {
		if (!ok) {
			fail(c, d->id, PROTO_ESTORAGE_FAILED,
			     "the message was delivered but its commit failed");
		} else {
			struct pbuf *b = reply_begin(c, d->id);
			pbuf_adds(b, "{\"seq\":");
			pbuf_add_u64(b, d->seq);
			pbuf_adds(b, ",\"durable\":true}");
			reply_end(c, d->id);
		}
	}
	free(d);
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
			join_reply(c, p->id, r, p->last, 0);
		} else if (p->id) {
			struct pbuf *b = reply_begin(c, p->id);
			pbuf_adds(b, "{\"room\":");
			pbuf_add_jstr(b, p->room, strlen(p->room));
			pbuf_adds(b, ",\"seq\":");
			pbuf_add_u64(b, p->last);
			pbuf_adds(b, ",\"members\":0,\"recovered\":false}");
			reply_end(c, p->id);
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
	join_reply(c, p->id, r, p->last, ok);
	member_release_hold(m, p->last);
}

static void finish_history(struct server *s, struct conn *c, struct pread *p,
			   struct store_page *page)
{
	if (!page->ok) {
		fail(c, p->id, PROTO_ESTORAGE_FAILED, "reading history failed");
		return;
	}
	struct pbuf *b = reply_begin(c, p->id);
	pbuf_adds(b, "{\"messages\":[");
	for (size_t i = 0; i < page->count; i++) {
		const struct store_msg *row = &page->msgs[i];
		if (i)
			pbuf_addc(b, ',');
		proto_enc_message(b, p->room, strlen(p->room), row->seq, row->ts, row->from,
				  strlen(row->from), row->data, row->data_len);
	}
	pbuf_adds(b, page->more ? "],\"more\":true}" : "],\"more\":false}");
	reply_end(c, p->id);
	(void)s;
}

void cmd_page_done(void *srv, struct store_page *page)
{
	struct server *s = srv;
	uint64_t cookie = page->cookie;
	struct pread *p = hmap_del(&s->reads, hmap_hash_bytes(&cookie, sizeof(cookie)),
				   &cookie, cookie_match);

	if (p) {
		struct conn *c = hmap_get(&s->by_serial,
					  hmap_hash_bytes(&p->serial, sizeof(p->serial)),
					  &p->serial, serial_match);
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

void cmd_conn_gone(struct server *s, struct conn *c)
{
	/* Pending durable replies find the connection by serial and skip it
	 * once it is gone, so there is nothing to walk here. */
	(void)s;
	(void)c;
}

/* ---- authentication ---- */

static void cmd_hello_token(struct conn *c, struct proto_cmd *cmd)
{
	if (!c->srv->auth) {
		fail(c, cmd->id, PROTO_EUNSUPPORTED, "this server does not use token authentication");
		return;
	}
	fail(c, cmd->id, PROTO_EUNSUPPORTED, "token authentication is not wired yet");
}

void cmd_conn_established(struct conn *c)
{
	c->authed = c->srv->auth == NULL;
}

void cmd_auth_expire(struct server *s)
{
	(void)s;
}

int auth_setup(struct server *s)
{
	if (strcmp(s->cfg->auth, "none")) {
		log_error("auth", "%s", "error=\"auth = token is not available in this build yet\"");
		return -1;
	}
	return 0;
}

int auth_reload(struct server *s)
{
	(void)s;
	return 0;
}

void auth_teardown(struct server *s)
{
	(void)s;
}

/* ---- presence, ping, history ---- */

static void cmd_presence(struct conn *c, struct proto_cmd *cmd)
{
	struct member *m = find_member(c, cmd);

	if (!m) {
		fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	struct pbuf *b = reply_begin(c, cmd->id);
	presence_list(m->room, b);
	reply_end(c, cmd->id);
}

static void cmd_ping(struct conn *c, struct proto_cmd *cmd)
{
	struct pbuf *b = reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"ts\":");
	pbuf_add_i64(b, util_now_ms());
	pbuf_addc(b, '}');
	reply_end(c, cmd->id);
}

/*
 * history: seqs are contiguous per room, so the page is the range
 * [before - limit, before - 1]. The recent tail is served from the room's
 * cache; older pages are read from disk off the loop thread.
 */
static void cmd_history(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = find_member(c, cmd);

	if (!m) {
		fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
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
		struct pbuf *b = reply_begin(c, cmd->id);
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
		reply_end(c, cmd->id);
		return;
	}
	s->stats.cache_misses++;
	struct pread *p = xcalloc(1, sizeof(*p));
	p->cookie = ++s->next_ticket;
	int rc = store_read(s->store, r->name, before, 0, cmd->limit, p->cookie);
	if (rc != STORE_OK) {
		free(p);
		fail(c, cmd->id, rc == STORE_EOVERLOADED ? PROTO_EOVERLOADED :
			 PROTO_ESTORAGE_FAILED, NULL);
		return;
	}
	p->serial = c->serial;
	p->id = cmd->id;
	memcpy(p->room, r->name, r->name_len + 1);
	hmap_put(&s->reads, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
}

/*
 * Rate limits: every command takes a token from rate_cmds; joins, history
 * reads and renames also from their own buckets. A refused command gets
 * rate_limited and takes a token from rate_abuse (same rate and burst): a
 * client that keeps sending well past its rate empties that one too and is
 * closed with 4029, one that only brushes the limit is just slowed down.
 * Returns 1 if the command may run.
 */
static int rate_ok(struct conn *c, const struct proto_cmd *cmd)
{
	const struct config *cfg = c->srv->cfg;
	uint32_t now = (uint32_t)(util_mono_us() / 1000);
	int ok = bucket_take(&c->rate_cmds, (float)cfg->rate_messages, (float)cfg->rate_burst, now);

	if (ok && cmd->type == PROTO_JOIN)
		ok = bucket_take(&c->rate_joins, (float)cfg->rate_joins, 2.0f * (float)cfg->rate_joins, now);
	else if (ok && cmd->type == PROTO_HISTORY)
		ok = bucket_take(&c->rate_history, (float)cfg->rate_history,
				 2.0f * (float)cfg->rate_history, now);
	else if (ok && cmd->type == PROTO_HELLO && cmd->name)
		ok = bucket_take(&c->rate_names, (float)cfg->rate_names / 60.0f,
				 (float)cfg->rate_names, now);
	if (ok)
		return 1;
	if (!bucket_take(&c->rate_abuse, (float)cfg->rate_messages, (float)cfg->rate_burst, now)) {
		log_info("rate_limited", "session=%s peer=%s action=close", c->session, c->peer);
		conn_close_later(c, CLOSE_RATE_LIMITED);
		return 0;
	}
	fail(c, cmd->id, PROTO_ERATE_LIMITED, NULL);
	return 0;
}

void cmd_handle(struct conn *c, const char *buf, size_t len)
{
	struct proto_cmd cmd;
	enum proto_err e;

	c->srv->stats.msgs_in++;
	c->srv->stats.bytes_in += len;
	e = proto_decode(buf, len, &cmd);
	if (e != PROTO_OK) {
		/* Bad input costs the same as good input. */
		cmd.type = PROTO_PING;
		if (rate_ok(c, &cmd))
			fail(c, cmd.id, e, cmd.errmsg);
		return;
	}
	if (!rate_ok(c, &cmd)) {
		proto_cmd_clear(&cmd);
		return;
	}
	if (!c->authed && cmd.type != PROTO_PING &&
	    !(cmd.type == PROTO_HELLO && cmd.token)) {
		fail(c, cmd.id, PROTO_EUNAUTHENTICATED, NULL);
		proto_cmd_clear(&cmd);
		return;
	}
	switch (cmd.type) {
	case PROTO_HELLO:    cmd_hello(c, &cmd); break;
	case PROTO_JOIN:     cmd_join(c, &cmd); break;
	case PROTO_LEAVE:    cmd_leave(c, &cmd); break;
	case PROTO_PUBLISH:  cmd_publish(c, &cmd); break;
	case PROTO_HISTORY:  cmd_history(c, &cmd); break;
	case PROTO_PRESENCE: cmd_presence(c, &cmd); break;
	case PROTO_PING:     cmd_ping(c, &cmd); break;
	}
	proto_cmd_clear(&cmd);
}
