/*
 * api_users.c - the HTTP API's user endpoints: subscribe, unsubscribe and
 * disconnect act on every connection of a user (users.h finds them).
 *
 * subscribe is the server-side join (Socket.IO's socket.join()): each of
 * the user's connections becomes a member of the room and first gets
 *     {"type":"subscribed","room":R,"seq":S}
 * (S: the room's last seq, as in a join reply), then the room's messages.
 * unsubscribe sends {"type":"unsubscribed","room":R} after the leave.
 * The backend is trusted: the token's rooms claim and private-room rules
 * (which guard what a client may ask for) do not apply; max_rooms does.
 */
#include <string.h>

#include "api.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "users.h"

void api_subscribe(struct api_call *call);
void api_unsubscribe(struct api_call *call);
void api_disconnect(struct api_call *call);

/* The user's connections that may be acted on, or NULL after a 404. */
static struct user_conns *find_user(struct api_call *call)
{
	struct api_req *q = &call->req;
	struct user_conns *u = users_find(call->srv, q->user, q->user_len);

	if (!u || !u->n) {
		api_fail(call, PROTO_ENOT_FOUND, "the user has no connection");
		return NULL;
	}
	return u;
}

/* Sends c {"type":"subscribed"|"unsubscribed","room":R[,"seq":S]}. */
static void notice(struct server *s, struct conn *c, const char *type, const char *room,
		   size_t len, int with_seq)
{
	struct pbuf *b = server_enc_begin(s);

	pbuf_adds(b, "{\"type\":\"");
	pbuf_adds(b, type);
	pbuf_adds(b, "\",\"room\":");
	pbuf_add_jstr(b, room, len);
	if (with_seq) {
		pbuf_adds(b, ",\"seq\":");
		pbuf_add_u64(b, store_last_seq(s->store, room));
	}
	pbuf_addc(b, '}');
	conn_send_text(c, b->data, b->len);
	server_enc_end(s);
}

static int usable(const struct conn *c)
{
	/* closing, or (auth = token) not authenticated yet: its name is a
	 * placeholder, not the user's */
	return !c->close_code && c->authed;
}

void api_subscribe(struct api_call *call)
{
	struct server *s = call->srv;
	struct api_req *q = &call->req;
	uint32_t joined = 0, already = 0, skipped = 0;

	if (api_req_need(q, API_F_USER | API_F_ROOM) != PROTO_OK) {
		api_fail(call, PROTO_EBAD_REQUEST, q->errmsg);
		return;
	}
	struct user_conns *u = find_user(call);
	if (!u)
		return;
	for (uint32_t i = 0; i < u->n; i++) {
		struct conn *c = u->v[i];
		struct room *r = room_find(s, q->room, q->room_len);
		if (!usable(c)) {
			skipped++;
			continue;
		}
		if (r && room_member(c, r)) {
			already++;
			continue;
		}
		if (c->rooms.len >= s->cfg->max_rooms) {
			skipped++;
			continue;
		}
		room_join(s, c, q->room, q->room_len, q->presence);
		notice(s, c, "subscribed", q->room, q->room_len, 1);
		joined++;
	}
	log_info("api_subscribe", "key=%s user=%s room=%s joined=%u", call->key_name,
		 log_q(q->user), q->room, joined);
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"connections\":");
	pbuf_add_u64(b, u->n);
	pbuf_adds(b, ",\"joined\":");
	pbuf_add_u64(b, joined);
	pbuf_adds(b, ",\"already\":");
	pbuf_add_u64(b, already);
	pbuf_adds(b, ",\"skipped\":");
	pbuf_add_u64(b, skipped);
	pbuf_addc(b, '}');
	api_reply_end(call);
}

void api_unsubscribe(struct api_call *call)
{
	struct server *s = call->srv;
	struct api_req *q = &call->req;
	uint32_t left = 0;

	if (api_req_need(q, API_F_USER | API_F_ROOM) != PROTO_OK) {
		api_fail(call, PROTO_EBAD_REQUEST, q->errmsg);
		return;
	}
	struct user_conns *u = find_user(call);
	if (!u)
		return;
	for (uint32_t i = 0; i < u->n; i++) {
		struct conn *c = u->v[i];
		/* the room goes away with its last member: look it up again */
		struct room *r = room_find(s, q->room, q->room_len);
		struct member *m = r ? room_member(c, r) : NULL;
		if (!m || c->close_code)
			continue;
		room_leave(m);
		notice(s, c, "unsubscribed", q->room, q->room_len, 0);
		left++;
	}
	log_info("api_unsubscribe", "key=%s user=%s room=%s left=%u", call->key_name,
		 log_q(q->user), q->room, left);
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"connections\":");
	pbuf_add_u64(b, u->n);
	pbuf_adds(b, ",\"left\":");
	pbuf_add_u64(b, left);
	pbuf_addc(b, '}');
	api_reply_end(call);
}

/* Closes every connection of the user with code (default 4000) and reason.
 * A user with no connection is not an error: closed is 0. */
void api_disconnect(struct api_call *call)
{
	struct api_req *q = &call->req;
	uint32_t closed = 0;
	static const char def_reason[] = "disconnected by the server";

	if (api_req_need(q, API_F_USER) != PROTO_OK) {
		api_fail(call, PROTO_EBAD_REQUEST, q->errmsg);
		return;
	}
	struct user_conns *u = users_find(call->srv, q->user, q->user_len);
	uint16_t code = q->has & API_F_CODE ? (uint16_t)q->code : 4000;
	const char *reason = q->has & API_F_REASON ? q->reason : def_reason;
	size_t rlen = q->has & API_F_REASON ? q->reason_len : sizeof(def_reason) - 1;
	/* conn_close_msg does not release anything: u->v stays as it is */
	for (uint32_t i = 0; u && i < u->n; i++) {
		struct conn *c = u->v[i];
		if (c->close_code)
			continue;
		conn_close_msg(c, code, reason, rlen);
		closed++;
	}
	log_info("api_disconnect", "key=%s user=%s code=%u closed=%u", call->key_name,
		 log_q(q->user), code, closed);
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"closed\":");
	pbuf_add_u64(b, closed);
	pbuf_addc(b, '}');
	api_reply_end(call);
}
