/*
 * publish.c - publish: encode once, persist, fan out, reply; and the
 * delayed replies of durable publishes.
 */
#include <stdlib.h>
#include <string.h>

#include "token.h"
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

/* A durable publish waiting for its transaction to commit. */
struct durable {
	uint64_t ticket;
	uint64_t serial;  /* the publisher; it may be gone by commit time */
	uint64_t id;
	uint64_t seq;
	char room[PROTO_ROOM_MAX + 1]; /* to find the member: its reply may have to wait in its hold */
};

/* Queues the publish reply in s->enc (begun with cmd__reply_begin, and
 * given back here as cmd__reply_end would) for
 * member m of c: behind the member's held frames while it catches up, so
 * the reply never overtakes the publisher's own copy of its message. */
static void reply_end_member(struct conn *c, struct member *m, uint64_t id)
{
	struct pbuf *b = &c->srv->enc;

	if (!id) {
		server_enc_end(c->srv);
		return;
	}
	proto_enc_close(b);
	struct frame *f = frame_new_text(b->data, b->len);
	server_enc_end(c->srv);
	member_send_reply(m, f);
	frame_unref(&f);
}


static int ticket_match(const void *entry, const void *key)
{
	return ((const struct durable *)entry)->ticket == *(const uint64_t *)key;
}



/* Replies to a publish of member m now, or with a ticket once the store
 * reports its commit (cmd_durable_done). */
static void publish_reply(struct conn *c, struct member *m, uint64_t id, uint64_t seq,
			  uint64_t ticket)
{
	struct server *s = c->srv;
	if (ticket) {
		struct durable *d = xmalloc(sizeof(*d));
		*d = (struct durable){ ticket, c->serial, id, seq, { 0 } };
		memcpy(d->room, m->room->name, m->room->name_len + 1);
		hmap_put(&s->tickets, hmap_hash_bytes(&ticket, sizeof(ticket)), d);
		return;
	}
	struct pbuf *b = cmd__reply_begin(c, id);
	if (seq) {
		pbuf_adds(b, "{\"seq\":");
		pbuf_add_u64(b, seq);
		pbuf_addc(b, '}');
	} else {
		pbuf_adds(b, "{}");
	}
	reply_end_member(c, m, id);
}

/*
 * The publish core, shared by the protocol's publish and the HTTP API:
 * encode once, persist, cache, fan out. It knows no connection but the
 * one to leave out of the fan-out (a publish with echo:false).
 */
enum proto_err cmd_publish_core(struct server *s, const struct pub_req *p, uint64_t *seq_out,
				bool *duplicate)
{
	struct room *r = room_find(s, p->room, p->room_len);
	uint64_t seq = 0;

	*seq_out = 0;
	*duplicate = false;
	if (p->key && !p->persist) {
		/* A key is remembered with its stored message (and across a
		 * restart); a volatile message has neither. */
		return PROTO_EBAD_REQUEST;
	}
	/* Encode first, with the seq the store will assign (this loop is the
	 * only appender), so an oversized message is refused before a seq is
	 * spent and the limit is exact. */
	int64_t ts = util_now_ms();
	uint64_t next = p->persist ? store_last_seq(s->store, p->room) + 1 : 0;
	struct pbuf *enc = server_enc_begin(s);
	proto_enc_message(enc, p->room, p->room_len, next, ts, p->from, p->from_len,
			  p->data, p->data_len);
	if (enc->len > s->cfg->max_message_size) {
		server_enc_end(s);
		return PROTO_ETOO_LARGE;
	}
	if (p->persist) {
		int dup = STORE_NEW;
		int rc = store_append_key(s->store, p->room, ts, p->from, p->data, p->data_len,
					  p->key, p->key_len, p->ticket, &seq, &dup);
		if (rc != STORE_OK) {
			server_enc_end(s);
			return rc == STORE_EOVERLOADED ? PROTO_EOVERLOADED :
			       rc == STORE_EFAILING ? PROTO_ESTORAGE_FAILED : PROTO_EINTERNAL;
		}
		if (dup != STORE_NEW) {
			/* A retry of a keyed publish: not stored or delivered
			 * again; the first one's seq. */
			server_enc_end(s); /* the encoded copy is not used */
			*seq_out = seq;
			*duplicate = true;
			return PROTO_OK;
		}
		if (seq != next) {
			log_error("seq_mismatch", "room=%s expected=%llu got=%llu", p->room,
				  (unsigned long long)next, (unsigned long long)seq);
			abort(); /* an invariant: two writers of seqs */
		}
	}
	struct frame *f = frame_new_text(enc->data, enc->len);
	server_enc_end(s);
	/* A room nobody is in has no cache and no fan-out: the message is
	 * only stored (an API publish to a room before anyone joins). */
	if (r) {
		f->seq = seq;
		if (seq)
			room_cache_add(r, seq, f, s->cfg->history_cache);
		room_fanout(r, f, p->except);
		r->published++; /* the dashboard's message rate per room (feed.c) */
	}
	frame_unref(&f);
	s->stats.published++;
	*seq_out = seq;
	return PROTO_OK;
}

void cmd__publish(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = cmd__find_member(c, cmd);
	uint64_t seq = 0, ticket = 0;
	bool dup;

	if (!m) {
		cmd__fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	if (!token_may_publish(c->claims, c->name, cmd->room, cmd->room_len)) {
		cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, NULL);
		return;
	}
	if (cmd->durable && !cmd->persist) {
		cmd__fail(c, cmd->id, PROTO_EBAD_REQUEST, "durable needs a persisted message");
		return;
	}
	if (cmd->key && !cmd->persist) {
		cmd__fail(c, cmd->id, PROTO_EBAD_REQUEST, "key needs a persisted message");
		return;
	}
	struct room *r = m->room;
	pbuf_reset(&s->data);
	proto_data_text(cmd, &s->data);

	if (cmd->durable)
		ticket = ++s->next_ticket;
	struct pub_req pr = {
		.room = r->name, .room_len = r->name_len,
		.from = c->name, .from_len = c->name_len,
		.data = s->data.data, .data_len = s->data.len,
		.persist = cmd->persist, .ticket = ticket,
		.key = cmd->key, .key_len = cmd->key_len,
		.except = cmd->echo ? NULL : c,
	};
	enum proto_err e = cmd_publish_core(s, &pr, &seq, &dup);
	if (e != PROTO_OK) {
		cmd__fail(c, cmd->id, e, NULL);
		return;
	}
	publish_reply(c, m, cmd->id, seq, ticket);
}


void cmd_durable_done(void *srv, uint64_t ticket, int ok)
{
	struct server *s = srv;
	struct durable *d = hmap_del(&s->tickets, hmap_hash_bytes(&ticket, sizeof(ticket)),
				     &ticket, ticket_match);
	if (!d)
		return;
	struct conn *c = conn_by_serial(s, d->serial);
	if (c && !c->close_code) {
		if (!ok) {
			/* Only when the store gave up on the batch (at
			 * shutdown with a dead disk): it is not committed. */
			cmd__fail(c, d->id, PROTO_ESTORAGE_FAILED,
			     "the message was delivered but could not be committed");
		} else {
			struct room *r = room_find(s, d->room, strlen(d->room));
			struct member *m = r ? room_member(c, r) : NULL;
			struct pbuf *b = cmd__reply_begin(c, d->id);
			pbuf_adds(b, "{\"seq\":");
			pbuf_add_u64(b, d->seq);
			pbuf_adds(b, ",\"durable\":true}");
			if (m)
				reply_end_member(c, m, d->id);
			else
				cmd__reply_end(c, d->id);
		}
	}
	free(d);
}


void cmd__publish_teardown(struct server *s)
{
	/* Durable publishes whose commit never came back (shutdown). */
	for (uint32_t i = 0; i < s->tickets.cap; i++)
		if (s->tickets.slots[i].hash)
			free(s->tickets.slots[i].entry);
	hmap_free(&s->tickets);
}
