/*
 * presence.c - who is in a room, and batched presence events.
 *
 * A room counts connections per user name. A user "joins" when the count
 * goes 0 -> 1 and "leaves" when it goes 1 -> 0. Changes are not sent one by
 * one: the first change in a window records whether the user was present
 * when the window opened (was_present) and puts the user on the room's
 * batch. When the window closes, users whose presence differs from
 * was_present are listed in one frame:
 *
 *   was_present  present now  ->  listed as
 *   no           yes              joined
 *   yes          no               left
 *   no           no               (joined and left within the window: neither)
 *   yes          yes              (left and came back: neither)
 *
 * Entries whose count is 0 stay until the batch is sent, then are freed.
 * Only connections that joined with presence:true get the frame, so a
 * broadcast room of 10,000 listeners pays nothing for join/leave churn.
 *
 * In a cluster (cluster/presence.c) a user is present when it has
 * connections here or on another node (ruser.remote, the other nodes'
 * connections together): the same window and table then cover changes
 * from both, and every local change is handed to clp_local_changed.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "presence.h"   /* cluster/: clp_local_changed */
#include "frame.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "util.h"

static int user_match(const void *entry, const void *key)
{
	const struct ruser *u = entry;
	return hmap_name_eq(key, u->name, u->name_len);
}

/* Present in the room on any node. */
static bool present(const struct ruser *u)
{
	return u->conns || u->remote;
}

/* Present only through other nodes (counted in room->remote_only). */
static bool remote_only(const struct ruser *u)
{
	return !u->conns && u->remote;
}

static void user_free(struct room *r, struct ruser *u)
{
	struct hmap_name k = { u->name, u->name_len };
	hmap_del(&r->users, hmap_hash_bytes(u->name, u->name_len), &k, user_match);
	free(u->name);
	free(u);
}

static void presence_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct room *r = w->data;
	struct pbuf *b = server_enc_begin(r->srv);
	int njoined = 0, nleft = 0;

	pbuf_adds(b, "{\"type\":\"presence\",\"room\":");
	pbuf_add_jstr(b, r->name, r->name_len);
	pbuf_adds(b, ",\"joined\":[");
	for (uint32_t i = 0; i < r->nbatch; i++) {
		struct ruser *u = r->batch[i];
		if (present(u) && !u->was_present) {
			if (njoined++)
				pbuf_addc(b, ',');
			pbuf_add_jstr(b, u->name, u->name_len);
		}
	}
	pbuf_adds(b, "],\"left\":[");
	for (uint32_t i = 0; i < r->nbatch; i++) {
		struct ruser *u = r->batch[i];
		if (!present(u) && u->was_present) {
			if (nleft++)
				pbuf_addc(b, ',');
			pbuf_add_jstr(b, u->name, u->name_len);
		}
	}
	pbuf_adds(b, "]}");

	if ((njoined || nleft) && r->npresence) {
		struct frame *f = frame_new_text(b->data, b->len);
		server_enc_end(r->srv);
		for (uint32_t i = 0; i < r->nmembers; i++)
			if (r->members[i]->presence)
				member_send(r->members[i], f);
		frame_unref(&f);
	} else {
		server_enc_end(r->srv);
	}
	for (uint32_t i = 0; i < r->nbatch; i++) {
		struct ruser *u = r->batch[i];
		u->in_batch = false;
		if (!present(u))
			user_free(r, u);
	}
	r->nbatch = 0;
}

/* Records that u's presence may change in this window. */
static void batch_add(struct room *r, struct ruser *u)
{
	if (u->in_batch)
		return;
	u->in_batch = true;
	u->was_present = present(u);
	if (r->nbatch == r->batch_cap) {
		r->batch_cap = r->batch_cap ? r->batch_cap * 2 : 8;
		r->batch = xrealloc(r->batch, r->batch_cap * sizeof(*r->batch));
	}
	r->batch[r->nbatch++] = u;
	if (r->nbatch == 1) {
		/* Our own libev timer, not an lws sul: lws 4.1's libev glue
		 * does not re-arm its timer for a sul earlier than the one
		 * already armed (see server.c, tick). */
		ev_timer_init(&r->presence_timer, presence_flush,
			      r->srv->cfg->presence_window_ms / 1000.0, 0);
		r->presence_timer.data = r;
		ev_timer_start(r->srv->loop, &r->presence_timer);
	}
}

struct ruser *presence_add(struct room *r, const char *name, size_t len)
{
	struct hmap_name k = { name, len };
	uint64_t h = hmap_hash_bytes(name, len);
	struct ruser *u = hmap_get(&r->users, h, &k, user_match);

	if (!u) {
		u = xcalloc(1, sizeof(*u));
		u->name = xstrndup(name, len);
		u->name_len = (uint32_t)len;
		hmap_put(&r->users, h, u);
	}
	if (u->conns == 0) {
		batch_add(r, u);
		r->nusers++;
		r->remote_only -= remote_only(u);
	}
	u->conns++;
	clp_local_changed(r, u);
	return u;
}

void presence_remove(struct room *r, struct ruser *u)
{
	if (u->conns > 1) {
		u->conns--;
		clp_local_changed(r, u);
		return;
	}
	batch_add(r, u); /* before the count changes: it records was_present */
	u->conns = 0;
	r->nusers--;
	r->remote_only += remote_only(u);
	clp_local_changed(r, u);
}

void presence_remote(struct room *r, const char *name, size_t len, uint32_t remote, bool quiet)
{
	struct hmap_name k = { name, len };
	uint64_t h = hmap_hash_bytes(name, len);
	struct ruser *u = hmap_get(&r->users, h, &k, user_match);

	if (!u) {
		if (!remote)
			return;
		u = xcalloc(1, sizeof(*u));
		u->name = xstrndup(name, len);
		u->name_len = (uint32_t)len;
		hmap_put(&r->users, h, u);
	}
	if (u->remote == remote)
		return;
	r->remote_only -= remote_only(u);
	r->remote_only += !u->conns && remote;
	if (quiet) {
		/* Seeding a room just created here: its first member must not
		 * hear the users already present elsewhere as joining. Such an
		 * entry is freed with the room (or by a later batch). */
		u->remote = remote;
		return;
	}
	batch_add(r, u); /* records was_present; frees u at the flush if gone */
	u->remote = remote;
}

void presence_list(struct room *r, struct pbuf *b)
{
	int n = 0;

	pbuf_adds(b, "{\"members\":[");
	for (uint32_t i = 0; i < r->users.cap; i++) {
		struct ruser *u = r->users.slots[i].entry;
		if (!r->users.slots[i].hash || !present(u))
			continue;
		if (n++)
			pbuf_addc(b, ',');
		pbuf_adds(b, "{\"user\":");
		pbuf_add_jstr(b, u->name, u->name_len);
		pbuf_adds(b, ",\"conns\":");
		pbuf_add_u64(b, (uint64_t)u->conns + u->remote);
		pbuf_addc(b, '}');
	}
	pbuf_adds(b, "]}");
}

void presence_free(struct room *r)
{
	ev_timer_stop(r->srv->loop, &r->presence_timer);
	/* One pass over the slots, then the table at once: deleting entries
	 * one by one and rescanning from slot 0 for the next was O(n^2) when a
	 * whole room left in one window (every entry still waits for the
	 * batch then). */
	for (uint32_t i = 0; i < r->users.cap; i++) {
		struct ruser *u = r->users.slots[i].entry;
		if (!r->users.slots[i].hash)
			continue;
		free(u->name);
		free(u);
	}
	hmap_free(&r->users);
	free(r->batch);
	r->batch = NULL;
	r->nbatch = r->batch_cap = 0;
}
