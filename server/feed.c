/*
 * feed.c - the /admin dashboard's live feed: GET /api/admin/feed, a
 * Server-Sent Events stream of one JSON sample a second, built from the
 * loop's own counters (struct server_stats, the rooms, the connections'
 * send queues, store_get_stats), not by rendering /metrics.
 *
 * Auth. EventSource cannot send an Authorization header, and the API key
 * must never be in a URL (it would land in logs and the browser history).
 * So the page first asks POST /api/admin/ticket with its bearer key and
 * gets a random one-time ticket, valid FEED_TICKET_MS, which it puts in
 * the feed's query. A ticket opens one stream and is then gone; at most
 * FEED_TICKETS are outstanding (the oldest is dropped for a new one).
 *
 * Streaming. The API edge (api_http.c) marks the call `streaming` and
 * leaves the connection open: the headers say text/event-stream without a
 * length (lws then closes the connection at its end). Each second the
 * timer appends an event to every client's buffer and asks for WRITEABLE,
 * where the buffer is handed to lws unless the socket is still full.
 *
 * Bounds. admin_feed_max streams at once (503 past it). A client that
 * does not read is dropped: when its backlog (our buffer plus what the
 * kernel still holds unacknowledged, SIOCOUTQ) passes FEED_BACKLOG_MAX it
 * is closed. The socket's send buffer is made small (FEED_SNDBUF) so that
 * the kernel does not absorb megabytes first.
 *
 * The timer is a libev timer: lws 4.1's own timers can be late (server.c,
 * tick_cb).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "api.h"
#include "conn.h"
#include "log.h"
#include "presence.h"   /* cluster/: clp_feed_json */
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"

#define FEED_TICKETS 16
#define FEED_TICKET_MS 30000
#define FEED_TICKET_HEX 32          /* 128 random bits */
#define FEED_BACKLOG_MAX (16 * 1024)
#define FEED_SNDBUF (16 * 1024)
#define FEED_TOP 5                  /* rooms per top list */
#define FEED_SENDQ_BUCKETS 5        /* 0, 1-9, 10-99, 100-999, 1000+ */

struct feed_ticket {
	char hex[FEED_TICKET_HEX + 1];
	int64_t expires_ms;         /* monotonic; 0: free slot */
};

struct feed {
	struct server *srv;
	ev_timer tick_w;
	struct api_call *clients;
	uint32_t nclients;
	struct feed_ticket tickets[FEED_TICKETS];
	/* the previous sample's counters, for the rates */
	uint64_t prev_t_us;
	uint64_t prev_in, prev_out, prev_bytes, prev_slow, prev_rl, prev_ref;
	uint64_t prev_commits;
	double prev_commit_sum;
	uint64_t dropped;           /* clients closed for not reading */
};

static int64_t mono_ms(void)
{
	return (int64_t)(util_mono_us() / 1000);
}

/* ---- tickets ---- */

void feed_ticket(struct api_call *call)
{
	struct feed *f = call->srv->feed;
	unsigned char raw[FEED_TICKET_HEX / 2];
	struct feed_ticket *slot = &f->tickets[0];
	int64_t now = mono_ms();

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		api_fail(call, PROTO_EINTERNAL, "no randomness for a ticket");
		return;
	}
	/* a free or expired slot, else the one that expires first */
	for (int i = 0; i < FEED_TICKETS; i++) {
		struct feed_ticket *t = &f->tickets[i];
		if (t->expires_ms <= now) {
			slot = t;
			break;
		}
		if (t->expires_ms < slot->expires_ms)
			slot = t;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(slot->hex + 2 * i, 3, "%02x", raw[i]);
	slot->expires_ms = now + FEED_TICKET_MS;
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, "{\"ticket\":\"");
	pbuf_adds(b, slot->hex);
	pbuf_adds(b, "\",\"expires_in_ms\":");
	pbuf_add_u64(b, FEED_TICKET_MS);
	pbuf_addc(b, '}');
	api_reply_end(call);
}

/* Takes the ticket given in the query (ticket=HEX): 1 if it was valid (it
 * is used up), 0 if not. Compared in constant time. */
static int ticket_take(struct feed *f, const char *query)
{
	const char *v = NULL;
	int64_t now = mono_ms();

	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (!strncmp(p, "ticket=", 7)) {
			v = p + 7;
			break;
		}
	if (!v || strcspn(v, "&") != FEED_TICKET_HEX)
		return 0;
	for (int i = 0; i < FEED_TICKETS; i++) {
		struct feed_ticket *t = &f->tickets[i];
		unsigned char diff = 0;
		for (int k = 0; k < FEED_TICKET_HEX; k++)
			diff |= (unsigned char)(t->hex[k] ^ v[k]);
		if (!diff && t->expires_ms > now) {
			t->expires_ms = 0; /* one stream per ticket */
			memset(t->hex, 0, sizeof(t->hex));
			return 1;
		}
	}
	return 0;
}

/* ---- the sample ---- */

struct top {
	const struct room *r;
	double v;
};

/* Keeps the FEED_TOP largest values, largest first. */
static void top_add(struct top *t, const struct room *r, double v)
{
	if (v <= 0 || (t[FEED_TOP - 1].r && v <= t[FEED_TOP - 1].v))
		return;
	int i = FEED_TOP - 1;
	while (i > 0 && (!t[i - 1].r || t[i - 1].v < v)) {
		t[i] = t[i - 1];
		i--;
	}
	t[i].r = r;
	t[i].v = v;
}

static void add_rate(struct pbuf *b, const char *key, uint64_t now, uint64_t prev, double dt)
{
	char num[32];

	pbuf_adds(b, key);
	snprintf(num, sizeof(num), "%.1f", dt > 0 && now >= prev ? (double)(now - prev) / dt : 0.0);
	pbuf_adds(b, num);
}

static uint64_t sum_rejected(const struct server *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < sizeof(s->stats.rejected) / sizeof(s->stats.rejected[0]); i++)
		n += s->stats.rejected[i];
	return n;
}

/* Appends one sample (a JSON object) to b and moves the rates' marks.
 * One pass over the connections and one over the rooms, once a second and
 * only while a feed is open: a few ms at the ~20k connections a node
 * holds, cheaper than keeping a histogram current on every queue change. */
static void sample(struct feed *f, struct pbuf *b)
{
	struct server *s = f->srv;
	const struct server_stats *st = &s->stats;
	struct store_stats ss;
	uint64_t now_us = util_mono_us();
	double dt = f->prev_t_us ? (double)(now_us - f->prev_t_us) / 1e6 : 0;
	uint64_t sendq[FEED_SENDQ_BUCKETS] = { 0 };
	struct top by_members[FEED_TOP], by_rate[FEED_TOP];
	uint64_t rl = st->errors[PROTO_ERATE_LIMITED], ref = sum_rejected(s);
	char num[32];

	memset(&ss, 0, sizeof(ss));
	if (s->store)
		store_get_stats(s->store, &ss);
	for (const struct conn *c = s->conns; c; c = c->next) {
		uint32_t n = c->q.count;
		sendq[n == 0 ? 0 : n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : 4]++;
	}
	memset(by_members, 0, sizeof(by_members));
	memset(by_rate, 0, sizeof(by_rate));
	for (uint32_t i = 0; i < s->rooms.cap; i++) {
		struct room *r = s->rooms.slots[i].entry;
		if (!s->rooms.slots[i].hash)
			continue;
		top_add(by_members, r, r->nusers);
		if (dt > 0)
			top_add(by_rate, r, (double)(r->published - r->published_mark) / dt);
		r->published_mark = r->published;
	}

	pbuf_adds(b, "{\"t\":");
	pbuf_add_i64(b, util_now_ms());
	pbuf_adds(b, ",\"connections\":");
	pbuf_add_u64(b, s->nconns);
	pbuf_adds(b, ",\"users\":");
	pbuf_add_u64(b, s->by_user.len);
	pbuf_adds(b, ",\"rooms\":");
	pbuf_add_u64(b, s->rooms.len);
	add_rate(b, ",\"msgs_in_s\":", st->msgs_in, f->prev_in, dt);
	add_rate(b, ",\"deliveries_out_s\":", st->delivered, f->prev_out, dt);
	add_rate(b, ",\"bytes_out_s\":", st->bytes_out, f->prev_bytes, dt);
	add_rate(b, ",\"slow_closes_s\":", st->slow_closes, f->prev_slow, dt);
	add_rate(b, ",\"rate_limited_s\":", rl, f->prev_rl, dt);
	add_rate(b, ",\"refused_upgrades_s\":", ref, f->prev_ref, dt);
	pbuf_adds(b, ",\"totals\":{\"slow_closes\":");
	pbuf_add_u64(b, st->slow_closes);
	pbuf_adds(b, ",\"rate_limited\":");
	pbuf_add_u64(b, rl);
	pbuf_adds(b, ",\"refused_upgrades\":");
	pbuf_add_u64(b, ref);
	pbuf_adds(b, "},\"sendq_depth\":{\"0\":");
	pbuf_add_u64(b, sendq[0]);
	pbuf_adds(b, ",\"1-9\":");
	pbuf_add_u64(b, sendq[1]);
	pbuf_adds(b, ",\"10-99\":");
	pbuf_add_u64(b, sendq[2]);
	pbuf_adds(b, ",\"100-999\":");
	pbuf_add_u64(b, sendq[3]);
	pbuf_adds(b, ",\"1000+\":");
	pbuf_add_u64(b, sendq[4]);
	pbuf_adds(b, "},\"storage\":{\"queue_depth\":");
	pbuf_add_u64(b, ss.queue_depth);
	pbuf_adds(b, ",\"commit_ms\":");
	/* the mean commit time of the transactions since the last sample;
	 * null when there was none */
	if (ss.commit_count > f->prev_commits) {
		snprintf(num, sizeof(num), "%.2f", (ss.commit_ms_sum - f->prev_commit_sum) /
			 (double)(ss.commit_count - f->prev_commits));
		pbuf_adds(b, num);
	} else {
		pbuf_adds(b, "null");
	}
	pbuf_adds(b, ",\"failing\":");
	pbuf_adds(b, ss.failing ? "true" : "false");
	pbuf_adds(b, "},\"cache_bytes\":");
	pbuf_add_u64(b, s->cache_bytes);
	pbuf_adds(b, ",\"feed_clients\":");
	pbuf_add_u64(b, f->nclients);
	pbuf_adds(b, ",\"top_members\":[");
	for (int i = 0; i < FEED_TOP && by_members[i].r; i++) {
		if (i)
			pbuf_addc(b, ',');
		pbuf_adds(b, "{\"room\":");
		pbuf_add_jstr(b, by_members[i].r->name, by_members[i].r->name_len);
		pbuf_adds(b, ",\"members\":");
		pbuf_add_u64(b, by_members[i].r->nusers);
		pbuf_adds(b, ",\"connections\":");
		pbuf_add_u64(b, by_members[i].r->nmembers);
		pbuf_addc(b, '}');
	}
	pbuf_adds(b, "],\"top_rate\":[");
	for (int i = 0; i < FEED_TOP && by_rate[i].r; i++) {
		if (i)
			pbuf_addc(b, ',');
		pbuf_adds(b, "{\"room\":");
		pbuf_add_jstr(b, by_rate[i].r->name, by_rate[i].r->name_len);
		snprintf(num, sizeof(num), "%.1f", by_rate[i].v);
		pbuf_adds(b, ",\"msgs_s\":");
		pbuf_adds(b, num);
		pbuf_addc(b, '}');
	}
	pbuf_adds(b, "],\"cluster\":");
	clp_feed_json(s, b); /* null on a single node */
	pbuf_addc(b, '}');

	f->prev_t_us = now_us;
	f->prev_in = st->msgs_in;
	f->prev_out = st->delivered;
	f->prev_bytes = st->bytes_out;
	f->prev_slow = st->slow_closes;
	f->prev_rl = rl;
	f->prev_ref = ref;
	f->prev_commits = ss.commit_count;
	f->prev_commit_sum = ss.commit_ms_sum;
}

/* ---- clients ---- */

static void unlink_client(struct feed *f, struct api_call *call)
{
	if (call->fprev)
		call->fprev->fnext = call->fnext;
	else
		f->clients = call->fnext;
	if (call->fnext)
		call->fnext->fprev = call->fprev;
	call->fnext = call->fprev = NULL;
	f->nclients--;
}

void feed_forget(struct api_call *call)
{
	struct feed *f = call->srv ? call->srv->feed : NULL;

	if (f && call->streaming)
		unlink_client(f, call);
	call->streaming = false;
	pbuf_free(&call->sse);
}

/* Bytes written to the client's socket and not yet acknowledged. */
static size_t outq(struct lws *wsi)
{
	int n = 0;
	int fd = (int)lws_get_socket_fd(wsi);

	if (fd < 0 || ioctl(fd, SIOCOUTQ, &n) < 0 || n < 0)
		return 0;
	return (size_t)n;
}

static void add_event(struct pbuf *out, const struct pbuf *json)
{
	pbuf_adds(out, "data: ");
	pbuf_add(out, json->data, json->len);
	pbuf_adds(out, "\n\n");
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct feed *f = w->data;
	struct pbuf json = { 0 };

	(void)loop;
	(void)revents;
	if (!f->clients) {
		f->prev_t_us = 0; /* the next first sample starts the rates afresh */
		return;
	}
	sample(f, &json);
	for (struct api_call *c = f->clients, *next; c; c = next) {
		next = c->fnext;
		size_t backlog = c->sse.len + outq(c->wsi);
		if (backlog > FEED_BACKLOG_MAX) {
			/* not reading: closed from lws's own callback (CLOSED_HTTP
			 * then forgets it) */
			f->dropped++;
			log_info("feed_drop", "reason=not_reading backlog=%zu", backlog);
			unlink_client(f, c);
			c->streaming = false;
			pbuf_free(&c->sse);
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
			continue;
		}
		add_event(&c->sse, &json);
		lws_callback_on_writable(c->wsi);
	}
	pbuf_free(&json);
}

int feed_writeable(struct api_call *call)
{
	if (!call->sse.len)
		return 0;
	if (lws_send_pipe_choked(call->wsi)) {
		/* lws still holds part of an earlier write: wait */
		lws_callback_on_writable(call->wsi);
		return 0;
	}
	/* HTTP/1 raw body: lws keeps what the socket does not take */
	if (lws_write(call->wsi, (unsigned char *)call->sse.data, call->sse.len, LWS_WRITE_HTTP) !=
	    (int)call->sse.len)
		return -1;
	pbuf_reset(&call->sse);
	return 0;
}

void feed_open(struct api_call *call)
{
	struct server *s = call->srv;
	struct feed *f = s->feed;
	struct lws *wsi = call->wsi;
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
		      *end = hdr + sizeof(hdr) - 1;

	if (!ticket_take(f, call->query)) {
		api_fail(call, PROTO_EUNAUTHENTICATED,
			 "missing, used or expired ticket (POST /api/admin/ticket)");
		return;
	}
	if (f->nclients >= s->cfg->admin_feed_max) {
		api_fail(call, PROTO_EOVERLOADED, "too many feed clients (admin_feed_max)");
		return;
	}
	int fd = (int)lws_get_socket_fd(wsi), sndbuf = FEED_SNDBUF;
	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end)) {
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
		return;
	}
	/* no lws timeout while the stream is open */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	call->streaming = true;
	call->fnext = f->clients;
	call->fprev = NULL;
	if (f->clients)
		f->clients->fprev = call;
	f->clients = call;
	f->nclients++;
	log_info("feed_open", "clients=%u", f->nclients);
	/* the first sample now, so the page has numbers at once */
	struct pbuf json = { 0 };
	sample(f, &json); /* also moves the rates' marks: the next covers the time since */
	add_event(&call->sse, &json);
	pbuf_free(&json);
	lws_callback_on_writable(wsi);
}

void feed_setup(struct server *s)
{
	struct feed *f = xcalloc(1, sizeof(*f));

	f->srv = s;
	ev_timer_init(&f->tick_w, tick_cb, 1.0, 1.0);
	f->tick_w.data = f;
	ev_timer_start(s->loop, &f->tick_w);
	s->feed = f;
}

void feed_teardown(struct server *s)
{
	struct feed *f = s->feed;

	if (!f)
		return;
	ev_timer_stop(s->loop, &f->tick_w);
	/* lws is gone by now (server.c), so every stream was released; a
	 * call left would otherwise point here */
	while (f->clients) {
		struct api_call *c = f->clients;
		unlink_client(f, c);
		c->streaming = false;
	}
	free(f);
	s->feed = NULL;
}
