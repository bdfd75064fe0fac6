/*
 * cmd.c - client command handlers.
 *
 * Every command with an id gets exactly one reply; a failed command without
 * one gets an error frame. Replies travel through the connection's queue like
 * everything else, so a publisher's own copy of its message (queued by the
 * fan-out) always precedes its reply.
 */
#include "authn.h"
#include "token.h"
#include "cmd.h"
#include "cmd_int.h"
#include "catchup.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "moderation.h"
#include "proto.h"
#include "ratelimit.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"

void cmd__fail(struct conn *c, uint64_t id, enum proto_err e, const char *msg)
{
	struct server *s = c->srv;

	s->stats.errors[e]++;
	struct pbuf *b = server_enc_begin(s);
	proto_enc_failure(b, id, e, msg);
	conn_send_text(c, b->data, b->len);
	server_enc_end(s);
}

/* Starts a successful reply in s->enc (server_enc_begin: nothing else may
 * encode until cmd__reply_end); the caller appends data and calls
 * cmd__reply_end(). */
struct pbuf *cmd__reply_begin(struct conn *c, uint64_t id)
{
	struct pbuf *b = server_enc_begin(c->srv);
	proto_enc_reply_ok_open(b, id);
	return b;
}

void cmd__reply_end(struct conn *c, uint64_t id)
{
	struct pbuf *b = &c->srv->enc;
	if (id) { /* no id: success is silent */
		proto_enc_close(b);
		conn_send_text(c, b->data, b->len);
	}
	server_enc_end(c->srv);
}

struct member *cmd__find_member(struct conn *c, const struct proto_cmd *cmd)
{
	struct room *r = room_find(c->srv, cmd->room, cmd->room_len);
	return r ? room_member(c, r) : NULL;
}

/* ---- hello ---- */

void cmd__set_display_name(struct conn *c, const char *name, size_t len)
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


static void cmd_hello(struct conn *c, struct proto_cmd *cmd)
{
	if (cmd->token) {
		authn_hello(c, cmd);
		return;
	}
	if (c->srv->auth) {
		cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, "with token authentication the name comes from the token");
		return;
	}
	/* A private room (@name...) stays its owner's: no renaming into or
	 * out of one while in it. */
	char *newname = xstrndup(cmd->name, cmd->name_len);
	for (uint32_t i = 0; i < c->rooms.cap; i++) {
		struct member *m = c->rooms.slots[i].entry;
		if (c->rooms.slots[i].hash &&
		    !token_may_join(NULL, newname, m->room->name, m->room->name_len)) {
			free(newname);
			cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, "leave private rooms before renaming");
			return;
		}
	}
	const char *why;
	if (moderation_banned(c->srv, newname, &why)) {
		free(newname);
		cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, "this user is banned");
		moderation_close_banned(c, why);
		return;
	}
	free(newname);
	cmd__set_display_name(c, cmd->name, cmd->name_len);
	struct pbuf *b = cmd__reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"user\":");
	pbuf_add_jstr(b, c->name, c->name_len);
	pbuf_addc(b, '}');
	cmd__reply_end(c, cmd->id);
}

/* ---- join / leave ---- */

void cmd__join_reply(struct conn *c, uint64_t id, struct room *r, uint64_t seq,
		       int recovered)
{
	struct pbuf *b = cmd__reply_begin(c, id);
	pbuf_adds(b, "{\"room\":");
	pbuf_add_jstr(b, r->name, r->name_len);
	pbuf_adds(b, ",\"seq\":");
	pbuf_add_u64(b, seq);
	pbuf_adds(b, ",\"members\":");
	pbuf_add_u64(b, presence_users(r)); /* in a cluster: on every node */
	if (recovered >= 0)
		pbuf_adds(b, recovered ? ",\"recovered\":true" : ",\"recovered\":false");
	pbuf_addc(b, '}');
	cmd__reply_end(c, id);
}

static void cmd_join(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct member *m = cmd__find_member(c, cmd);

	if (cmd->has_since && !catchup_room_for_one(c)) {
		cmd__fail(c, cmd->id, PROTO_ERATE_LIMITED, "too many joins with since in progress");
		return;
	}
	if (m) {
		/* Already a member: update the presence flag. With since, the
		 * same catch-up as a first join (replay, reply, live). */
		room_set_presence(m, cmd->presence);
		if (cmd->has_since)
			catchup_start(c, m, cmd->id, cmd->since);
		else
			cmd__join_reply(c, cmd->id, m->room,
					store_last_seq(s->store, m->room->name), -1);
		return;
	}
	if (!token_may_join(c->claims, c->name, cmd->room, cmd->room_len)) {
		cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, NULL);
		return;
	}
	if (c->rooms.len >= s->cfg->max_rooms) {
		cmd__fail(c, cmd->id, PROTO_ETOO_MANY_ROOMS, NULL);
		return;
	}
	m = room_join(s, c, cmd->room, cmd->room_len, cmd->presence);
	if (cmd->has_since)
		catchup_start(c, m, cmd->id, cmd->since);
	else
		cmd__join_reply(c, cmd->id, m->room, store_last_seq(s->store, m->room->name), -1);
}

static void cmd_leave(struct conn *c, struct proto_cmd *cmd)
{
	struct member *m = cmd__find_member(c, cmd);

	if (!m) {
		cmd__fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	room_leave(m);
	struct pbuf *b = cmd__reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"room\":");
	pbuf_add_jstr(b, cmd->room, cmd->room_len);
	pbuf_addc(b, '}');
	cmd__reply_end(c, cmd->id);
}

void cmd_conn_gone(struct server *s, struct conn *c)
{
	/* Pending durable replies and reads find the connection by serial
	 * and skip it once it is gone: nothing to walk for those. */
	authn_forget(s, c);
}


/* ---- presence, ping ---- */

static void cmd_presence(struct conn *c, struct proto_cmd *cmd)
{
	struct member *m = cmd__find_member(c, cmd);

	if (!m) {
		cmd__fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
		return;
	}
	struct pbuf *b = cmd__reply_begin(c, cmd->id);
	presence_list(m->room, b);
	cmd__reply_end(c, cmd->id);
}

static void cmd_ping(struct conn *c, struct proto_cmd *cmd)
{
	struct pbuf *b = cmd__reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"ts\":");
	pbuf_add_i64(b, util_now_ms());
	pbuf_addc(b, '}');
	cmd__reply_end(c, cmd->id);
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

	/* The join and history bursts are at least max_rooms: a client that
	 * reconnects re-joins every room it was in and reads a page of each,
	 * at once (docs/configuration.md, "Rate limits that fit together"). */
	float rooms = (float)cfg->max_rooms;
	float jburst = 2.0f * (float)cfg->rate_joins, hburst = 2.0f * (float)cfg->rate_history;
	if (ok && cmd->type == PROTO_JOIN)
		ok = bucket_take(&c->rate_joins, (float)cfg->rate_joins,
				 jburst > rooms ? jburst : rooms, now);
	else if (ok && cmd->type == PROTO_HISTORY)
		ok = bucket_take(&c->rate_history, (float)cfg->rate_history,
				 hburst > rooms ? hburst : rooms, now);
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
	cmd__fail(c, cmd->id, PROTO_ERATE_LIMITED, NULL);
	return 0;
}

/* What cmd_handle does with a decoded (or refused) command. */
static void cmd_run(struct conn *c, struct proto_cmd *cmd, enum proto_err e)
{
	if (e != PROTO_OK) {
		/* Bad input costs the same as good input. */
		cmd->type = PROTO_PING;
		if (rate_ok(c, cmd))
			cmd__fail(c, cmd->id, e, cmd->errmsg);
		return;
	}
	if (!rate_ok(c, cmd)) {
		proto_cmd_clear(cmd);
		return;
	}
	if (!c->authed && cmd->type != PROTO_PING &&
	    !(cmd->type == PROTO_HELLO && cmd->token)) {
		cmd__fail(c, cmd->id, PROTO_EUNAUTHENTICATED, NULL);
		proto_cmd_clear(cmd);
		return;
	}
	switch (cmd->type) {
	case PROTO_HELLO:    cmd_hello(c, cmd); break;
	case PROTO_JOIN:     cmd_join(c, cmd); break;
	case PROTO_LEAVE:    cmd_leave(c, cmd); break;
	case PROTO_PUBLISH:  cmd__publish(c, cmd); break;
	case PROTO_HISTORY:  cmd__history(c, cmd); break;
	case PROTO_PRESENCE: cmd_presence(c, cmd); break;
	case PROTO_PING:     cmd_ping(c, cmd); break;
	case PROTO_REFRESH:  authn_refresh(c, cmd); break;
	case PROTO_DELETE:
	case PROTO_ERASE:
	case PROTO_BAN:
	case PROTO_UNBAN:    moderation_cmd(c, cmd); break;
	}
	proto_cmd_clear(cmd);
}

void cmd_handle(struct conn *c, const char *buf, size_t len)
{
	struct proto_cmd cmd;
	enum proto_err e;

	c->srv->stats.msgs_in++;
	c->srv->stats.bytes_in += len;
	e = proto_decode(buf, len, &cmd);
	cmd_run(c, &cmd, e);
}

int cmd_handle_bounded(struct conn *c, const char *buf, size_t len, unsigned max_depth,
		       unsigned max_keys, bool no_id)
{
	struct proto_cmd cmd;
	bool scanned;
	enum proto_err e = proto_decode_bounded(buf, len, max_depth, max_keys, no_id, &cmd,
						&scanned);

	if (!scanned) {
		proto_cmd_clear(&cmd);
		return -1; /* nothing counted, nothing answered: the caller decides */
	}
	c->srv->stats.msgs_in++;
	c->srv->stats.bytes_in += len;
	cmd_run(c, &cmd, e);
	return 0;
}

void cmd_teardown(struct server *s)
{
	cmd__publish_teardown(s);
	cmd__history_teardown(s);
}
