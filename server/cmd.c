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

static void cmd_hello(struct conn *c, struct proto_cmd *cmd)
{
	if (cmd->name_len != c->name_len || memcmp(cmd->name, c->name, c->name_len)) {
		conn_set_name(c, cmd->name, cmd->name_len);
		/* Every room sees the old name leave and the new one join. */
		for (uint32_t i = 0; i < c->rooms.cap; i++) {
			struct member *m = c->rooms.slots[i].entry;
			if (!c->rooms.slots[i].hash)
				continue;
			presence_remove(m->room, m->user);
			m->user = presence_add(m->room, c->name, c->name_len);
		}
	}
	struct pbuf *b = reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"user\":");
	pbuf_add_jstr(b, c->name, c->name_len);
	pbuf_addc(b, '}');
	reply_end(c, cmd->id);
}

/* ---- join / leave ---- */

static void join_reply(struct conn *c, uint64_t id, struct room *r)
{
	struct pbuf *b = reply_begin(c, id);
	pbuf_adds(b, "{\"room\":");
	pbuf_add_jstr(b, r->name, r->name_len);
	pbuf_adds(b, ",\"seq\":");
	pbuf_add_u64(b, store_last_seq(c->srv->store, r->name));
	pbuf_adds(b, ",\"members\":");
	pbuf_add_u64(b, r->nusers);
	pbuf_addc(b, '}');
	reply_end(c, id);
}

static void cmd_join(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = find_member(c, cmd);

	if (cmd->has_since) {
		fail(c, cmd->id, PROTO_EUNSUPPORTED, "join with since is not supported yet");
		return;
	}
	if (m) {
		room_set_presence(m, cmd->presence);
	} else {
		if (c->rooms.len >= s->cfg->max_rooms) {
			fail(c, cmd->id, PROTO_ETOO_MANY_ROOMS, NULL);
			return;
		}
		m = room_join(s, c, cmd->room, cmd->room_len, cmd->presence);
	}
	join_reply(c, cmd->id, m->room);
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

	/* Refuse before a seq is spent: the envelope is at most this much
	 * larger than data (names escaped at 6 bytes a byte, 16-digit seq
	 * and timestamp). */
	size_t bound = s->data.len + r->name_len + 6 * (size_t)c->name_len + 96;
	if (bound > s->cfg->max_message_size) {
		fail(c, cmd->id, PROTO_ETOO_LARGE, NULL);
		return;
	}

	int64_t ts = util_now_ms();
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
	}

	pbuf_reset(&s->enc);
	proto_enc_message(&s->enc, r->name, r->name_len, seq, ts, c->name, c->name_len,
			  s->data.data, s->data.len);
	struct frame *f = frame_new_text(s->enc.data, s->enc.len);
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

void cmd_page_done(void *srv, struct store_page *page)
{
	(void)srv;
	store_page_free(&page);
}

void cmd_conn_gone(struct server *s, struct conn *c)
{
	/* Pending durable replies find the connection by serial and skip it
	 * once it is gone, so there is nothing to walk here. */
	(void)s;
	(void)c;
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

static void cmd_history(struct conn *c, struct proto_cmd *cmd)
{
	if (!find_member(c, cmd)) {
		fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	fail(c, cmd->id, PROTO_EUNSUPPORTED, "history is not supported yet");
}

void cmd_handle(struct conn *c, const char *buf, size_t len)
{
	struct proto_cmd cmd;
	enum proto_err e;

	c->srv->stats.msgs_in++;
	c->srv->stats.bytes_in += len;
	e = proto_decode(buf, len, &cmd);
	if (e != PROTO_OK) {
		fail(c, cmd.id, e, cmd.errmsg);
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
