/*
 * api.c - the HTTP API's route table and its room endpoints: publish,
 * broadcast, history, presence, rooms, info. The user endpoints
 * (subscribe, unsubscribe, disconnect) are in api_users.c; the HTTP edge
 * is api_http.c. api.h explains how to add a route.
 *
 * A publish goes through the same core as the protocol's publish
 * (cmd_publish_core): same size limit, same seq, same store, same fan-out.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "moderation.h"
#include "cmd.h"
#include "frame.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"

void api_subscribe(struct api_call *call);
void api_unsubscribe(struct api_call *call);
void api_disconnect(struct api_call *call);
void api_mod_delete(struct api_call *call);   /* api_moderation.c */
void api_mod_erase(struct api_call *call);
void api_mod_ban(struct api_call *call);
void api_mod_unban(struct api_call *call);

static void api_publish(struct api_call *call);
static void api_broadcast(struct api_call *call);
static void api_history(struct api_call *call);
static void api_presence(struct api_call *call);
static void api_rooms(struct api_call *call);
static void api_info(struct api_call *call);

/* The route table: method, whole path, body or not, handler. */
const struct api_route api_routes[] = {
	{ "POST", "/api/publish", API_BODY, api_publish, API_BEARER },
	{ "POST", "/api/broadcast", API_BODY, api_broadcast, API_BEARER },
	{ "GET", "/api/history", API_NO_BODY, api_history, API_BEARER },
	{ "GET", "/api/presence", API_NO_BODY, api_presence, API_BEARER },
	{ "GET", "/api/rooms", API_NO_BODY, api_rooms, API_BEARER },
	{ "POST", "/api/subscribe", API_BODY, api_subscribe, API_BEARER },
	{ "POST", "/api/unsubscribe", API_BODY, api_unsubscribe, API_BEARER },
	{ "POST", "/api/disconnect", API_BODY, api_disconnect, API_BEARER },
	{ "GET", "/api/info", API_NO_BODY, api_info, API_BEARER },
	{ "POST", "/api/delete", API_BODY, api_mod_delete, API_BEARER },
	{ "POST", "/api/erase", API_BODY, api_mod_erase, API_BEARER },
	{ "POST", "/api/ban", API_BODY, api_mod_ban, API_BEARER },
	{ "DELETE", "/api/ban", API_BODY, api_mod_unban, API_BEARER },
	{ "POST", "/api/admin/ticket", API_NO_BODY, feed_ticket, API_BEARER },
	{ "GET", "/api/admin/feed", API_NO_BODY, feed_open, API_TICKET },
	{ NULL, NULL, API_NO_BODY, NULL, API_BEARER }
};

/* Checks the fields a handler needs; answers 400 and returns -1 if one is
 * missing. */
static int need(struct api_call *call, uint32_t fields)
{
	if (api_req_need(&call->req, fields) == PROTO_OK)
		return 0;
	api_fail(call, PROTO_EBAD_REQUEST, call->req.errmsg);
	return -1;
}

/* Decodes the query string of a GET; answers 400 and returns -1 if bad. */
static int query(struct api_call *call, unsigned limit_max)
{
	enum proto_err e = api_req_query(call->query, call->query_len, limit_max, &call->req);
	if (e == PROTO_OK)
		return 0;
	api_fail(call, e, call->req.errmsg);
	return -1;
}

/* ---- publish, broadcast ---- */

/* Publishes the call's data to one room; PROTO_OK with *seq or an error. */
static enum proto_err publish_one(struct api_call *call, const char *room, size_t room_len,
				  uint64_t *seq, const struct pub_waiter *w)
{
	struct server *s = call->srv;
	const struct api_req *q = &call->req;
	struct pub_req pr = {
		.room = room, .room_len = room_len,
		.data = s->data.data, .data_len = s->data.len,
		.persist = q->persist,
		.key = q->has & API_F_KEY ? q->key : NULL,
		.key_len = q->has & API_F_KEY ? q->key_len : 0,
		.waiter = w,
	};
	bool dup;

	if (q->has & API_F_FROM) {
		pr.from = q->from;
		pr.from_len = q->from_len;
	} else {
		pr.from = call->key_name;
		pr.from_len = strlen(call->key_name);
	}
	/* a retry with a known key: the first one's seq, nothing sent again */
	return cmd_publish_core(s, &pr, seq, &dup);
}

static void api_publish(struct api_call *call)
{
	struct server *s = call->srv;
	struct api_req *q = &call->req;
	uint64_t seq;

	if (need(call, API_F_ROOM | API_F_DATA) < 0)
		return;
	if ((q->has & API_F_KEY) && !q->persist) {
		api_fail(call, PROTO_EBAD_REQUEST, "key needs a persisted message");
		return;
	}
	pbuf_reset(&s->data);
	pbuf_add_json_compact(&s->data, q->data_raw, q->data_raw_len);
	/* In a cluster the answer comes once this node applied the entry. */
	struct pub_waiter w = { .kind = PUB_W_API };
	if (s->cluster)
		w.serial = api_defer(call);
	enum proto_err e = publish_one(call, q->room, q->room_len, &seq, &w);
	if (e != PROTO_OK) {
		api_fail(call, e, NULL);
		return;
	}
	if (seq == CMD_PENDING)
		return; /* cmd_publish_done answers */
	cmd_publish_result(api_reply_begin(call), seq);
	api_reply_end(call);
}

/* One result per room, in the order given; a failed room does not stop
 * the others (each has its own seq, or its own error). */
static void api_broadcast(struct api_call *call)
{
	struct server *s = call->srv;
	struct api_req *q = &call->req;

	if (need(call, API_F_ROOMS | API_F_DATA) < 0)
		return;
	if ((q->has & API_F_KEY) && !q->persist) {
		api_fail(call, PROTO_EBAD_REQUEST, "key needs a persisted message");
		return;
	}
	pbuf_reset(&s->data);
	pbuf_add_json_compact(&s->data, q->data_raw, q->data_raw_len);
	if (s->cluster) {
		/* Each room's publish completes on its own; the answer goes out
		 * with the last (cmd_bcast_finish). */
		struct pub_bcast *bc = cmd_bcast_new(api_defer(call), q->nrooms);
		for (size_t i = 0; i < q->nrooms; i++) {
			struct pub_waiter w = { .kind = PUB_W_BCAST, .bcast = bc, .idx = i };
			uint64_t seq = 0;
			enum proto_err e = publish_one(call, q->rooms[i].name, q->rooms[i].len, &seq, &w);
			cmd_bcast_set(bc, i, q->rooms[i].name, q->rooms[i].len, e,
				      seq == CMD_PENDING ? 0 : seq, e == PROTO_OK && seq == CMD_PENDING);
		}
		cmd_bcast_finish(s, bc);
		return;
	}
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"results\":[");
	for (size_t i = 0; i < q->nrooms; i++) {
		uint64_t seq;
		enum proto_err e = publish_one(call, q->rooms[i].name, q->rooms[i].len, &seq, NULL);
		if (i)
			pbuf_addc(b, ',');
		pbuf_adds(b, "{\"room\":");
		pbuf_add_jstr(b, q->rooms[i].name, q->rooms[i].len);
		if (e != PROTO_OK) {
			s->stats.errors[e]++;
			pbuf_adds(b, ",\"error\":{\"code\":\"");
			pbuf_adds(b, proto_err_code(e));
			pbuf_adds(b, "\",\"message\":");
			pbuf_add_jstr(b, proto_err_message(e), strlen(proto_err_message(e)));
			pbuf_adds(b, "}}");
		} else if (seq) {
			pbuf_adds(b, ",\"seq\":");
			pbuf_add_u64(b, seq);
			pbuf_addc(b, '}');
		} else {
			pbuf_addc(b, '}');
		}
	}
	pbuf_adds(b, "]}");
	api_reply_end(call);
}

/* ---- history ---- */

static uint64_t defer_call(void *arg)
{
	return api_defer(arg);
}

static void api_history(struct api_call *call)
{
	struct api_req *q = &call->req;
	bool deferred;

	if (query(call, PROTO_HISTORY_MAX) < 0 || need(call, API_F_ROOM) < 0)
		return;
	struct pbuf *b = api_reply_begin(call);
	enum proto_err e = cmd_history_any(call->srv, q->room, q->room_len, q->before,
					   q->limit ? q->limit : PROTO_HISTORY_DEFAULT, defer_call,
					   call, b, &deferred);
	if (e != PROTO_OK)
		api_fail(call, e, NULL);
	else if (!deferred)
		api_reply_end(call);
}

void api_history_done(struct server *s, uint64_t id, const char *room,
		      const struct store_page *page)
{
	struct api_call *call = api_find(s, id);

	if (!call)
		return; /* the client went away while the disk was read */
	if (!page->ok) {
		api_fail(call, PROTO_ESTORAGE_FAILED, "reading history failed");
		return;
	}
	struct pbuf *b = api_reply_begin(call);
	cmd_history_encode(b, room, page);
	api_reply_end(call);
}

/* ---- presence, rooms ---- */

static void api_presence(struct api_call *call)
{
	struct api_req *q = &call->req;

	if (query(call, API_ROOMS_PAGE_MAX) < 0 || need(call, API_F_ROOM) < 0)
		return;
	struct room *r = room_find(call->srv, q->room, q->room_len);
	struct pbuf *b = api_reply_begin(call);
	if (r)
		presence_list(r, b);
	else
		pbuf_adds(b, "{\"members\":[]}"); /* nobody in it: no live room */
	api_reply_end(call);
}

static int room_cmp(const void *a, const void *b)
{
	const struct room *x = *(struct room *const *)a, *y = *(struct room *const *)b;
	return strcmp(x->name, y->name);
}

/*
 * Rooms with members, by name. The cursor is the last name of the previous
 * page and the next page starts after it, so a page is stable under
 * concurrent change: a room created or gone meanwhile shows up or not, but
 * no other room is skipped or repeated. The whole set is sorted per page:
 * O(rooms log rooms), fine for the tens of thousands of rooms a node holds.
 */
static void api_rooms(struct api_call *call)
{
	struct server *s = call->srv;
	struct api_req *q = &call->req;
	unsigned limit;

	if (query(call, API_ROOMS_PAGE_MAX) < 0)
		return;
	limit = q->limit ? q->limit : API_ROOMS_PAGE_DEFAULT;
	struct room **v = xmalloc((s->rooms.len + 1) * sizeof(*v));
	size_t n = 0;
	for (uint32_t i = 0; i < s->rooms.cap; i++) {
		struct room *r = s->rooms.slots[i].entry;
		if (!s->rooms.slots[i].hash)
			continue;
		if (q->prefix_len && (r->name_len < q->prefix_len ||
				      memcmp(r->name, q->prefix, q->prefix_len)))
			continue;
		if (q->cursor_len && strcmp(r->name, q->cursor) <= 0)
			continue;
		v[n++] = r;
	}
	qsort(v, n, sizeof(*v), room_cmp);
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"rooms\":[");
	size_t k = n < limit ? n : limit;
	for (size_t i = 0; i < k; i++) {
		struct room *r = v[i];
		if (i)
			pbuf_addc(b, ',');
		pbuf_adds(b, "{\"room\":");
		pbuf_add_jstr(b, r->name, r->name_len);
		pbuf_adds(b, ",\"members\":");
		pbuf_add_u64(b, r->nusers);
		pbuf_adds(b, ",\"connections\":");
		pbuf_add_u64(b, r->nmembers);
		pbuf_adds(b, ",\"seq\":");
		pbuf_add_u64(b, store_last_seq(s->store, r->name));
		pbuf_addc(b, '}');
	}
	pbuf_adds(b, "],\"cursor\":");
	if (n > limit)
		pbuf_add_jstr(b, v[k - 1]->name, v[k - 1]->name_len);
	else
		pbuf_adds(b, "null");
	pbuf_addc(b, '}');
	free(v);
	api_reply_end(call);
}

/* ---- info ---- */

static void api_info(struct api_call *call)
{
	struct server *s = call->srv;
	struct store_stats st;
	char host[256];

	memset(&st, 0, sizeof(st));
	if (s->store)
		store_get_stats(s->store, &st);
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"version\":\"" PARLEY_VERSION "\",\"uptime_s\":");
	pbuf_add_i64(b, (util_now_ms() - api_started_ms(s)) / 1000);
	pbuf_adds(b, ",\"connections\":");
	pbuf_add_u64(b, s->nconns);
	pbuf_adds(b, ",\"users\":");
	pbuf_add_u64(b, s->by_user.len);
	pbuf_adds(b, ",\"rooms\":");
	pbuf_add_u64(b, s->rooms.len);
	pbuf_adds(b, ",\"draining\":");
	pbuf_adds(b, s->draining ? "true" : "false");
	pbuf_adds(b, ",\"storage\":{\"state\":\"");
	pbuf_adds(b, st.failing ? "failing" : "ok");
	pbuf_adds(b, "\",\"queue_depth\":");
	pbuf_add_u64(b, st.queue_depth);
	pbuf_adds(b, ",\"queue_bytes\":");
	pbuf_add_u64(b, st.queue_bytes);
	pbuf_adds(b, ",\"appended\":");
	pbuf_add_u64(b, st.appended);
	pbuf_adds(b, ",\"committed\":");
	pbuf_add_u64(b, st.committed);
	pbuf_adds(b, ",\"overloaded\":");
	pbuf_add_u64(b, st.overloaded);
	pbuf_adds(b, "},\"nodes\":[{\"name\":");
	pbuf_add_jstr(b, host, strlen(host));
	pbuf_adds(b, ",\"self\":true,\"connections\":");
	pbuf_add_u64(b, s->nconns);
	pbuf_adds(b, "}],\"moderation\":");
	moderation_info(s, b);
	pbuf_addc(b, '}');
	api_reply_end(call);
}
