/*
 * moderation.c - delete, erase, ban and unban (moderation.h): the core
 * calls, their completions from the store, the ban list, and the
 * protocol commands.
 *
 * Who may do what over the protocol: any user may delete their own stored
 * messages (allow_self_delete, default on); a moderator (a token with
 * "mod": true) may delete anyone's, erase a user and ban or unban. In
 * auth = none there are no moderators: use the HTTP API.
 *
 * A delete answers once the tombstone is committed: only then does the
 * room see {"type":"deleted"} and its cache swap the message's frame for
 * the tombstone, so nobody is told a message is gone while it is still on
 * disk. Erase steps report their tombstones as they commit; messages still
 * in a live room's cache are swapped and announced the same way (older
 * ones are not announced: a room with a long history would flood its
 * members' send queues; they read as tombstones from then on).
 *
 * Bans live in a hash map bounded by STORE_BANS_MAX (an ended ban is
 * dropped when met, or when the map is full). A ban applies at once in
 * memory and is recorded on disk through the writer; the answer waits for
 * the commit.
 */
#include "moderation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"
#include "cluster.h"
#include "cmd_int.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"

enum pending_kind { P_DELETE, P_ERASE, P_BAN, P_UNBAN };

/* A request waiting for its commit, by cookie. */
struct pending {
	uint64_t cookie;
	enum pending_kind kind;
	struct moderation_caller caller;
	uint64_t seq;            /* delete */
	int64_t until;           /* ban */
	int lifted;              /* unban: there was a ban */
	char name[PROTO_ROOM_MAX + 1]; /* delete: the room; else the user */
};

struct ban {
	uint64_t hash;
	int64_t until;           /* wall clock ms */
	char *reason;
	char user[];
};

struct moderation {
	struct hmap pending;     /* struct pending *, by cookie */
	struct hmap bans;        /* struct ban *, by user */
	uint64_t next_cookie;
};

static int cookie_match(const void *entry, const void *key)
{
	return ((const struct pending *)entry)->cookie == *(const uint64_t *)key;
}

static int ban_match(const void *entry, const void *key)
{
	return strcmp(((const struct ban *)entry)->user, key) == 0;
}

static uint64_t name_hash(const char *user)
{
	return hmap_hash_bytes(user, strlen(user));
}

static void ban_free(struct ban *b)
{
	free(b->reason);
	free(b);
}

/* ---------------------------------------------------------------- bans */

static void ban_drop(struct moderation *m, const char *user)
{
	struct ban *b = hmap_del(&m->bans, name_hash(user), user, ban_match);
	if (b)
		ban_free(b);
}

/* Drops every ban that has ended. O(bans): only when the map is full. */
static void bans_sweep(struct moderation *m, int64_t now)
{
	for (;;) {
		struct ban *gone = NULL;
		for (uint32_t i = 0; i < m->bans.cap && !gone; i++)
			if (m->bans.slots[i].hash &&
			    ((struct ban *)m->bans.slots[i].entry)->until <= now)
				gone = m->bans.slots[i].entry;
		if (!gone)
			return;
		ban_drop(m, gone->user); /* the table changed: scan again */
	}
}

/* Sets user's ban. Returns 0, or -1 when the map is full of running bans. */
static int ban_set(struct moderation *m, const char *user, int64_t until, const char *reason)
{
	struct ban *b = hmap_get(&m->bans, name_hash(user), user, ban_match);

	if (!b) {
		if (m->bans.len >= STORE_BANS_MAX)
			bans_sweep(m, util_now_ms());
		if (m->bans.len >= STORE_BANS_MAX)
			return -1;
		size_t n = strlen(user);
		b = xcalloc(1, sizeof(*b) + n + 1);
		memcpy(b->user, user, n);
		b->hash = name_hash(user);
		hmap_put(&m->bans, b->hash, b);
	}
	free(b->reason);
	b->reason = xstrndup(reason ? reason : "", reason ? strlen(reason) : 0);
	b->until = until;
	return 0;
}

int moderation_banned(struct server *s, const char *user, const char **reason)
{
	struct moderation *m = s->mod;
	if (!m || !m->bans.len || !user)
		return 0;
	struct ban *b = hmap_get(&m->bans, name_hash(user), user, ban_match);
	if (!b)
		return 0;
	if (b->until <= util_now_ms()) {
		ban_drop(m, user); /* ended: forget it (the disk row goes at the next start) */
		return 0;
	}
	if (reason)
		*reason = b->reason[0] ? b->reason : "banned";
	return 1;
}

void moderation_close_banned(struct conn *c, const char *reason)
{
	if (c->close_code)
		return;
	log_info("banned", "session=%s peer=%s user=%s", c->session, c->peer, log_q(c->name));
	conn_close_msg(c, CLOSE_BANNED, reason, strlen(reason)); /* sent as the close reason */
	c->close_reason = CLOSE_R_BANNED; /* not by_server: the metrics tell bans apart */
}

static void load_ban(void *opaque, const char *user, int64_t until, const char *reason)
{
	ban_set(opaque, user, until, reason);
}

void moderation_setup(struct server *s)
{
	s->mod = xcalloc(1, sizeof(*s->mod));
	store_bans_each(s->store, load_ban, s->mod);
	if (s->mod->bans.len)
		log_info("bans", "loaded=%u", s->mod->bans.len);
}

void moderation_teardown(struct server *s)
{
	struct moderation *m = s->mod;
	if (!m)
		return;
	for (uint32_t i = 0; i < m->pending.cap; i++)
		if (m->pending.slots[i].hash)
			free(m->pending.slots[i].entry);
	hmap_free(&m->pending);
	for (uint32_t i = 0; i < m->bans.cap; i++)
		if (m->bans.slots[i].hash)
			ban_free(m->bans.slots[i].entry);
	hmap_free(&m->bans);
	free(m);
	s->mod = NULL;
}

/* ------------------------------------------------------------ requests */

/* In a cluster the public calls below send the action to the log; each
 * node then runs the local_ one when it applies the entry
 * (moderation_apply). On a single node they run the local_ one at once. */
static enum proto_err local_delete(struct server *s, const char *room, size_t room_len,
				   uint64_t seq, const char *only_sender,
				   const struct moderation_caller *caller);
static enum proto_err local_erase(struct server *s, const char *user,
				  const struct moderation_caller *caller);
static enum proto_err local_ban(struct server *s, const char *user, int64_t until,
				const char *reason, const struct moderation_caller *caller);
static enum proto_err local_unban(struct server *s, const char *user,
				  const struct moderation_caller *caller);

static enum proto_err store_err(int rc)
{
	switch (rc) {
	case STORE_EOVERLOADED: return PROTO_EOVERLOADED;
	case STORE_EFAILING: return PROTO_ESTORAGE_FAILED;
	case STORE_EINVAL: return PROTO_ENOT_FOUND;
	default: return PROTO_EINTERNAL;
	}
}

static struct pending *pending_new(struct moderation *m, enum pending_kind kind,
				   const struct moderation_caller *caller, const char *name,
				   size_t len)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	p->cookie = ++m->next_cookie;
	p->kind = kind;
	p->caller = *caller;
	if (len > PROTO_ROOM_MAX)
		len = PROTO_ROOM_MAX;
	memcpy(p->name, name, len);
	return p;
}

static void pending_put(struct moderation *m, struct pending *p)
{
	hmap_put(&m->pending, hmap_hash_bytes(&p->cookie, sizeof(p->cookie)), p);
}

enum proto_err moderation_delete(struct server *s, const char *room, size_t room_len,
				 uint64_t seq, const char *only_sender,
				 const struct moderation_caller *caller)
{
	if (!proto_room_valid(room, room_len))
		return PROTO_EBAD_ROOM;
	if (s->cluster) {
		struct cluster_mod cm = { .kind = 'd', .room = room, .room_len = room_len,
					  .seq = seq, .user = only_sender };
		return cluster_moderate(s, &cm, caller);
	}
	return local_delete(s, room, room_len, seq, only_sender, caller);
}

/* The delete itself, on this node (a single node, or a cluster node
 * applying the log's entry: only_sender is checked here, against this
 * node's copy, which is the same on every node at that log position). */
static enum proto_err local_delete(struct server *s, const char *room, size_t room_len,
				   uint64_t seq, const char *only_sender,
				   const struct moderation_caller *caller)
{
	struct moderation *m = s->mod;
	struct pending *p = pending_new(m, P_DELETE, caller, room, room_len);
	p->seq = seq;
	int rc = store_delete(s->store, p->name, seq, only_sender, p->cookie);
	if (rc != STORE_OK) {
		free(p);
		return store_err(rc);
	}
	pending_put(m, p);
	return PROTO_OK;
}

enum proto_err moderation_erase(struct server *s, const char *user,
				const struct moderation_caller *caller)
{
	if (!user || !proto_name_valid(user, strlen(user)))
		return PROTO_EBAD_NAME;
	if (s->cluster) {
		struct cluster_mod cm = { .kind = 'e', .user = user };
		return cluster_moderate(s, &cm, caller);
	}
	return local_erase(s, user, caller);
}

static enum proto_err local_erase(struct server *s, const char *user,
				  const struct moderation_caller *caller)
{
	struct moderation *m = s->mod;
	struct pending *p = pending_new(m, P_ERASE, caller, user, strlen(user));
	int rc = store_erase(s->store, user, p->cookie);
	if (rc != STORE_OK) {
		free(p);
		return store_err(rc) == PROTO_ENOT_FOUND ? PROTO_EBAD_REQUEST : store_err(rc);
	}
	log_info("erase", "user=%s", log_q(user));
	pending_put(m, p);
	return PROTO_OK;
}

enum proto_err moderation_ban(struct server *s, const char *user, uint64_t seconds,
			      const char *reason, const struct moderation_caller *caller)
{
	if (!user || !proto_name_valid(user, strlen(user)))
		return PROTO_EBAD_NAME;
	if (!seconds || seconds > PROTO_BAN_SECONDS_MAX ||
	    (reason && strlen(reason) > PROTO_REASON_MAX))
		return PROTO_EBAD_REQUEST;
	/* The end is fixed here, at the origin: every node bans until the
	 * same instant, whenever it applies the entry. */
	int64_t until = util_now_ms() + (int64_t)seconds * 1000;
	if (s->cluster) {
		struct cluster_mod cm = { .kind = 'b', .user = user, .until = until,
					  .reason = reason };
		return cluster_moderate(s, &cm, caller);
	}
	return local_ban(s, user, until, reason, caller);
}

static enum proto_err local_ban(struct server *s, const char *user, int64_t until,
				const char *reason, const struct moderation_caller *caller)
{
	struct moderation *m = s->mod;
	struct pending *p = pending_new(m, P_BAN, caller, user, strlen(user));
	p->until = until;
	int rc = store_ban(s->store, user, until, reason, p->cookie);
	if (rc != STORE_OK) {
		free(p);
		return store_err(rc) == PROTO_ENOT_FOUND ? PROTO_EBAD_REQUEST : store_err(rc);
	}
	if (ban_set(m, user, until, reason) < 0) {
		/* The row is queued; the map is full of running bans. The
		 * user is still closed now and refused after the next start. */
		log_warn("bans_full", "max=%d", STORE_BANS_MAX);
	}
	pending_put(m, p);
	/* Close every connection of the user now (a ban is also a kick). */
	const char *why = reason && reason[0] ? reason : "banned";
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->name && !strcmp(c->name, user))
			moderation_close_banned(c, why);
	log_info("ban", "user=%s until=%lld", log_q(user), (long long)until);
	return PROTO_OK;
}

enum proto_err moderation_unban(struct server *s, const char *user,
				const struct moderation_caller *caller)
{
	if (!user || !proto_name_valid(user, strlen(user)))
		return PROTO_EBAD_NAME;
	if (s->cluster) {
		struct cluster_mod cm = { .kind = 'u', .user = user };
		return cluster_moderate(s, &cm, caller);
	}
	return local_unban(s, user, caller);
}

static enum proto_err local_unban(struct server *s, const char *user,
				  const struct moderation_caller *caller)
{
	struct moderation *m = s->mod;
	struct pending *p = pending_new(m, P_UNBAN, caller, user, strlen(user));
	p->lifted = moderation_banned(s, user, NULL);
	int rc = store_unban(s->store, user, p->cookie);
	if (rc != STORE_OK) {
		free(p);
		return store_err(rc) == PROTO_ENOT_FOUND ? PROTO_EBAD_REQUEST : store_err(rc);
	}
	ban_drop(m, user);
	log_info("unban", "user=%s", log_q(user));
	pending_put(m, p);
	return PROTO_OK;
}

/* The caller of an entry another node (or an earlier run) sent: nobody
 * waits here. */
static void nobody_done(struct server *s, uint64_t a, uint64_t b, enum proto_err e,
			const char *msg, const char *data_json)
{
	(void)s, (void)a, (void)b, (void)e, (void)msg, (void)data_json;
}

int moderation_apply(struct server *s, const struct cluster_mod *cm,
		     const struct moderation_caller *caller)
{
	static const struct moderation_caller nobody = { nobody_done, 0, 0 };
	const struct moderation_caller *to = caller ? caller : &nobody;
	enum proto_err e;

	if (cm->kind != 'd' && (!cm->user || !proto_name_valid(cm->user, strlen(cm->user))))
		cm = NULL; /* malformed: refused below, identically everywhere */
	switch (cm ? cm->kind : 0) {
	case 'd':
		e = !proto_room_valid(cm->room, cm->room_len) ? PROTO_EBAD_ROOM :
			local_delete(s, cm->room, cm->room_len, cm->seq, cm->user, to);
		break;
	case 'e':
		e = local_erase(s, cm->user, to);
		break;
	case 'b':
		e = local_ban(s, cm->user, cm->until, cm->reason, to);
		break;
	case 'u':
		e = local_unban(s, cm->user, to);
		break;
	default:
		e = PROTO_EBAD_REQUEST; /* a kind from a newer node: nothing to do */
	}
	/* The store refused it (its queue full or its disk failing): not a
	 * verdict every node shares, so the caller (the log's apply) must
	 * not move past the entry. */
	if (e == PROTO_EOVERLOADED || e == PROTO_ESTORAGE_FAILED || e == PROTO_EINTERNAL)
		return -1;
	if (e != PROTO_OK)
		to->done(s, to->a, to->b, e, e == PROTO_ENOT_FOUND ? MODERATION_NO_SUCH_MESSAGE : NULL,
			 NULL);
	return 0;
}

/* --------------------------------------------------------- completions */

/* Swaps a cached frame for the tombstone and tells the room's members.
 * announce_all: also when the seq is not cached (a single delete). */
static void tombstone_live(struct server *s, const char *room, size_t len, uint64_t seq,
			   int announce_all)
{
	struct room *r = room_find(s, room, len);
	if (!r)
		return;
	int cached = room_cache_get(r, seq) != NULL;
	if (!cached && !announce_all)
		return;
	if (cached) {
		struct pbuf *b = server_enc_begin(s);
		proto_enc_message(b, r->name, r->name_len, seq, 0, "", 0, "", 0);
		struct frame *t = frame_new_text(b->data, b->len);
		server_enc_end(s);
		t->seq = seq;
		room_cache_set(r, seq, t);
		frame_unref(&t);
	}
	struct pbuf *b = server_enc_begin(s);
	proto_enc_deleted(b, r->name, r->name_len, seq);
	/* seq 0: a held replay (join with since) passes it on at release. */
	struct frame *f = frame_new_text(b->data, b->len);
	server_enc_end(s);
	room_fanout(r, f, NULL);
	frame_unref(&f);
}

void moderation_mod_done(void *srv, uint64_t cookie, int status)
{
	struct server *s = srv;
	struct moderation *m = s->mod;
	if (!m)
		return;
	struct pending *p = hmap_del(&m->pending, hmap_hash_bytes(&cookie, sizeof(cookie)),
				     &cookie, cookie_match);
	if (!p)
		return;
	struct pbuf b = { 0 };
	enum proto_err e = PROTO_OK;
	const char *msg = NULL;

	if (status == STORE_MOD_FAILED) {
		e = PROTO_ESTORAGE_FAILED;
		msg = "the change could not be written to disk";
	} else if (p->kind == P_DELETE && status == STORE_MOD_NOT_FOUND) {
		e = PROTO_ENOT_FOUND;
		msg = MODERATION_NO_SUCH_MESSAGE;
	} else if (p->kind == P_DELETE && status == STORE_MOD_NOT_OWNER) {
		e = PROTO_EFORBIDDEN;
		msg = "you can only delete your own messages";
	}
	if (e == PROTO_OK) {
		size_t n = strlen(p->name);
		switch (p->kind) {
		case P_DELETE:
			tombstone_live(s, p->name, n, p->seq, 1);
			log_info("deleted", "room=%s seq=%llu", p->name, (unsigned long long)p->seq);
			pbuf_adds(&b, "{\"room\":");
			pbuf_add_jstr(&b, p->name, n);
			pbuf_adds(&b, ",\"seq\":");
			pbuf_add_u64(&b, p->seq);
			break;
		case P_ERASE:
			pbuf_adds(&b, "{\"user\":");
			pbuf_add_jstr(&b, p->name, n);
			pbuf_adds(&b, ",\"started\":true");
			break;
		case P_BAN:
			pbuf_adds(&b, "{\"user\":");
			pbuf_add_jstr(&b, p->name, n);
			pbuf_adds(&b, ",\"until\":");
			pbuf_add_i64(&b, p->until);
			break;
		case P_UNBAN:
			pbuf_adds(&b, "{\"user\":");
			pbuf_add_jstr(&b, p->name, n);
			pbuf_adds(&b, p->lifted ? ",\"lifted\":true" : ",\"lifted\":false");
			break;
		}
		pbuf_addc(&b, '}');
		pbuf_addc(&b, '\0');
	}
	p->caller.done(s, p->caller.a, p->caller.b, e, msg, e == PROTO_OK ? b.data : NULL);
	pbuf_free(&b);
	free(p);
}

void moderation_erased(void *srv, const struct store_erased *e)
{
	struct server *s = srv;
	for (size_t i = 0; i < e->count; i++)
		tombstone_live(s, e->rooms[i], strlen(e->rooms[i]), e->seqs[i], 0);
	if (e->done)
		log_info("erase_done", "user=%s job=%llu", log_q(e->user),
			 (unsigned long long)e->job);
}

uint64_t moderation_ban_count(struct server *s)
{
	return s->mod ? s->mod->bans.len : 0;
}

void moderation_info(struct server *s, struct pbuf *b)
{
	struct store_stats st;
	store_get_stats(s->store, &st);
	pbuf_adds(b, "{\"bans\":");
	pbuf_add_u64(b, s->mod ? s->mod->bans.len : 0);
	pbuf_adds(b, ",\"erase\":{\"running\":");
	pbuf_add_u64(b, st.erase_jobs);
	pbuf_adds(b, ",\"scanned\":");
	pbuf_add_u64(b, st.erase_scanned);
	pbuf_adds(b, ",\"erased\":");
	pbuf_add_u64(b, st.erase_erased);
	pbuf_adds(b, ",\"done\":");
	pbuf_add_u64(b, st.erase_done);
	pbuf_adds(b, "},\"deleted\":");
	pbuf_add_u64(b, st.deleted);
	pbuf_addc(b, '}');
}

/* ------------------------------------------------------ protocol edge */

/* done() for protocol commands: a = the connection's serial, b = the id. */
static void reply_done(struct server *s, uint64_t serial, uint64_t id, enum proto_err e,
		       const char *msg, const char *data_json)
{
	struct conn *c = conn_by_serial(s, serial);
	if (!c || c->close_code)
		return;
	if (e != PROTO_OK) {
		cmd__fail(c, id, e, msg);
		return;
	}
	struct pbuf *b = cmd__reply_begin(c, id);
	pbuf_adds(b, data_json);
	cmd__reply_end(c, id);
}

void moderation_cmd(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	int mod = c->claims && c->claims->mod;
	struct moderation_caller caller = { reply_done, c->serial, cmd->id };
	char user[4 * PROTO_NAME_MAX_CHARS + 1], reason[PROTO_REASON_MAX + 1];
	enum proto_err e;

	user[0] = '\0'; /* a command without a name is refused as a bad name, never read unset */
	if (cmd->type != PROTO_DELETE && !mod) {
		cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, "only moderators may do this");
		return;
	}
	if (cmd->name) {
		memcpy(user, cmd->name, cmd->name_len);
		user[cmd->name_len] = '\0';
		if (strlen(user) != cmd->name_len) {
			cmd__fail(c, cmd->id, PROTO_EBAD_NAME, NULL);
			return;
		}
	}
	switch (cmd->type) {
	case PROTO_DELETE:
		if (!mod && !s->cfg->allow_self_delete) {
			cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, "deleting messages is turned off");
			return;
		}
		if (!mod && !cmd__find_member(c, cmd)) {
			cmd__fail(c, cmd->id, PROTO_ENOT_MEMBER, NULL);
			return;
		}
		e = moderation_delete(s, cmd->room, cmd->room_len, cmd->seq, mod ? NULL : c->name,
				      &caller);
		break;
	case PROTO_ERASE:
		e = moderation_erase(s, user, &caller);
		break;
	case PROTO_BAN:
		if (cmd->reason) {
			memcpy(reason, cmd->reason, cmd->reason_len);
			reason[cmd->reason_len] = '\0';
		}
		e = moderation_ban(s, user, cmd->seconds, cmd->reason ? reason : NULL, &caller);
		break;
	case PROTO_UNBAN:
		e = moderation_unban(s, user, &caller);
		break;
	default:
		e = PROTO_EINTERNAL;
	}
	if (e != PROTO_OK)
		cmd__fail(c, cmd->id, e, e == PROTO_ENOT_FOUND ? MODERATION_NO_SUCH_MESSAGE : NULL);
}
