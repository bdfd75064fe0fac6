/*
 * publish.c - publish: encode once, persist, fan out, reply; and the
 * delayed replies of durable publishes.
 */
#include <stdlib.h>
#include <string.h>

#include "token.h"
#include "cmd.h"
#include "cmd_int.h"
#include "api.h"
#include "cluster.h"
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



void cmd_publish_result(struct pbuf *b, uint64_t seq)
{
	if (seq) {
		pbuf_adds(b, "{\"seq\":");
		pbuf_add_u64(b, seq);
		pbuf_addc(b, '}');
	} else {
		pbuf_adds(b, "{}");
	}
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
	cmd_publish_result(cmd__reply_begin(c, id), seq);
	reply_end_member(c, m, id);
}

/* The apply step every published message ends in, on one node or in a
 * cluster (cmd_apply_message): cache and fan out. A room nobody is in has
 * no cache and no fan-out: the message is only stored (an API publish to
 * a room before anyone joins). */
static void apply_frame(struct server *s, struct room *r, uint64_t seq, struct frame *f,
			struct conn *except)
{
	if (r) {
		f->seq = seq;
		if (seq)
			room_cache_add(r, seq, f, s->cfg->history_cache);
		room_fanout(r, f, except);
		r->published++; /* the dashboard's message rate per room (feed.c) */
	}
	s->stats.published++;
}

/*
 * The publish core, shared by the protocol's publish and the HTTP API:
 * encode once, persist, cache, fan out. It knows no connection but the
 * one to leave out of the fan-out (a publish with echo:false).
 */
enum proto_err cmd_publish_core(struct server *s, const struct pub_req *p, uint64_t *seq_out,
				bool *duplicate)
{
	struct room *r = p->r ? p->r : room_find(s, p->room, p->room_len);
	uint64_t seq = 0;

	*seq_out = 0;
	*duplicate = false;
	if (p->key && !p->persist) {
		/* A key is remembered with its stored message (and across a
		 * restart); a volatile message has neither. */
		return PROTO_EBAD_REQUEST;
	}
	if (s->cluster) {
		/* The broker seam: the Redis log takes the seq; the result comes
		 * back through cmd_publish_done once this node applied it. */
		enum proto_err e = cluster_publish(s, p);
		if (e == PROTO_OK)
			*seq_out = CMD_PENDING;
		return e;
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
	apply_frame(s, r, seq, f, p->except);
	frame_unref(&f);
	*seq_out = seq;
	return PROTO_OK;
}

void cmd_apply_message(struct server *s, const char *room, size_t room_len, uint64_t seq,
		       int64_t ts, const char *from, size_t from_len, const char *data,
		       size_t data_len, struct conn *except)
{
	struct room *r = room_find(s, room, room_len);
	struct pbuf *enc = server_enc_begin(s);

	proto_enc_message(enc, room, room_len, seq, ts, from, from_len, data, data_len);
	struct frame *f = frame_new_text(enc->data, enc->len);
	server_enc_end(s);
	apply_frame(s, r, seq, f, except);
	frame_unref(&f);
	if (s->nlag)
		s->lag_poke = true; /* a catch-up may wait for this seq (catchup.h) */
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
		.r = r,
	};
	struct pub_waiter w = { .kind = PUB_W_CONN, .serial = c->serial, .id = cmd->id,
				.ticket = ticket, .except = cmd->echo ? 0 : c->serial };
	memcpy(w.room, r->name, r->name_len + 1);
	pr.waiter = &w;
	enum proto_err e = cmd_publish_core(s, &pr, &seq, &dup);
	if (e != PROTO_OK) {
		cmd__fail(c, cmd->id, e, NULL);
		return;
	}
	if (seq == CMD_PENDING)
		return; /* cmd_publish_done answers */
	publish_reply(c, m, cmd->id, seq, ticket);
}

/* ---- results of publishes that completed later (cluster) ---- */

/* A broadcast's results, room by room, until the last one is in. */
struct pub_bcast {
	uint64_t call;           /* the deferred API call */
	size_t n, left;
	struct { enum proto_err e; uint64_t seq; } *res;
	char **rooms;
};

void cmd_bcast_release(struct pub_bcast *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->rooms[i]);
	free(b->rooms);
	free(b->res);
	free(b);
}

struct pub_bcast *cmd_bcast_new(uint64_t call, size_t n)
{
	struct pub_bcast *b = xcalloc(1, sizeof(*b));

	b->call = call;
	b->n = n;
	b->left = n;
	b->res = xcalloc(n ? n : 1, sizeof(*b->res));
	b->rooms = xcalloc(n ? n : 1, sizeof(*b->rooms));
	return b;
}

void cmd_bcast_set(struct pub_bcast *b, size_t i, const char *room, size_t len,
		   enum proto_err e, uint64_t seq, bool pending)
{
	b->rooms[i] = xstrndup(room, len);
	b->res[i].e = e;
	b->res[i].seq = seq;
	if (!pending)
		b->left--;
}

/* Answers the broadcast's call once every room has its result; frees b
 * then. Returns 1 if it was answered. */
int cmd_bcast_finish(struct server *s, struct pub_bcast *b)
{
	if (b->left)
		return 0;
	struct api_call *call = api_find(s, b->call);
	if (call) {
		struct pbuf *out = api_reply_begin(call);
		pbuf_adds(out, "{\"results\":[");
		for (size_t i = 0; i < b->n; i++) {
			if (i)
				pbuf_addc(out, ',');
			pbuf_adds(out, "{\"room\":");
			pbuf_add_jstr(out, b->rooms[i], strlen(b->rooms[i]));
			enum proto_err e = b->res[i].e;
			if (e != PROTO_OK) {
				s->stats.errors[e]++;
				pbuf_adds(out, ",\"error\":{\"code\":\"");
				pbuf_adds(out, proto_err_code(e));
				pbuf_adds(out, "\",\"message\":");
				pbuf_add_jstr(out, proto_err_message(e), strlen(proto_err_message(e)));
				pbuf_adds(out, "}}");
			} else if (b->res[i].seq) {
				pbuf_adds(out, ",\"seq\":");
				pbuf_add_u64(out, b->res[i].seq);
				pbuf_addc(out, '}');
			} else {
				pbuf_addc(out, '}');
			}
		}
		pbuf_adds(out, "]}");
		api_reply_end(call);
	}
	cmd_bcast_release(b);
	return 1;
}

void cmd_publish_done(struct server *s, const struct pub_waiter *w, enum proto_err e,
		      uint64_t seq, bool duplicate)
{
	if (w->kind == PUB_W_BCAST) {
		w->bcast->res[w->idx].e = e;
		w->bcast->res[w->idx].seq = seq;
		w->bcast->left--;
		cmd_bcast_finish(s, w->bcast);
		return;
	}
	if (w->kind == PUB_W_API) {
		struct api_call *call = api_find(s, w->serial);
		if (!call)
			return; /* the client went away meanwhile */
		if (e != PROTO_OK) {
			api_fail(call, e, NULL);
			return;
		}
		cmd_publish_result(api_reply_begin(call), seq);
		api_reply_end(call);
		return;
	}
	struct conn *c = conn_by_serial(s, w->serial);
	if (!c || c->close_code)
		return;
	if (e != PROTO_OK) {
		cmd__fail(c, w->id, e, NULL);
		return;
	}
	struct room *r = room_find(s, w->room, strlen(w->room));
	struct member *m = r ? room_member(c, r) : NULL;
	uint64_t ticket = w->ticket;
	if (ticket && duplicate) {
		/* A retry of a durable publish applied before: answer once
		 * everything applied so far is committed with an fsync. */
		store_sync_ticket(s->store, ticket);
	}
	if (!m) {
		/* left the room meanwhile: a plain reply, no member hold */
		if (ticket) {
			struct durable *d = xmalloc(sizeof(*d));
			*d = (struct durable){ ticket, c->serial, w->id, seq, { 0 } };
			memcpy(d->room, w->room, strlen(w->room) + 1);
			hmap_put(&s->tickets, hmap_hash_bytes(&ticket, sizeof(ticket)), d);
			return;
		}
		cmd_publish_result(cmd__reply_begin(c, w->id), seq);
		cmd__reply_end(c, w->id);
		return;
	}
	publish_reply(c, m, w->id, seq, ticket);
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
