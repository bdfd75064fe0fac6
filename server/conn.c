/* conn.c - a WebSocket client connection: queue, flush, close (conn.h). */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "catchup.h"
#include "log.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "sio/sio_edge.h"
#include "users.h"
#include "util.h"

static int serial_match(const void *entry, const void *key)
{
	return ((const struct conn *)entry)->serial == *(const uint64_t *)key;
}

struct conn *conn_by_serial(struct server *s, uint64_t serial)
{
	return hmap_get(&s->by_serial, hmap_hash_bytes(&serial, sizeof(serial)), &serial,
			serial_match);
}

void conn_send_welcome(struct conn *c)
{
	struct pbuf *b = server_enc_begin(c->srv);

	pbuf_adds(b, "{\"type\":\"welcome\",\"session\":\"");
	pbuf_adds(b, c->session);
	pbuf_adds(b, "\",\"user\":");
	pbuf_add_jstr(b, c->name, c->name_len);
	pbuf_adds(b, ",\"server\":\"parley/" PARLEY_VERSION "\",\"limits\":");
	pbuf_adds(b, c->srv->welcome_limits);
	pbuf_addc(b, '}');
	conn_send_text(c, b->data, b->len);
	server_enc_end(c->srv);
}

/* Connections per client address, for max_connections_per_ip. */
struct ipcount {
	uint32_t n;
	char addr[NETADDR_MAX];
};

static int ip_match(const void *entry, const void *key)
{
	return strcmp(((const struct ipcount *)entry)->addr, key) == 0;
}

uint32_t conn_count_ip(struct server *s, const char *addr)
{
	struct ipcount *e = hmap_get(&s->per_ip, hmap_hash_bytes(addr, strlen(addr)), addr, ip_match);
	return e ? e->n : 0;
}

static void ip_add(struct server *s, const char *addr, int delta)
{
	uint64_t h = hmap_hash_bytes(addr, strlen(addr));
	struct ipcount *e = hmap_get(&s->per_ip, h, addr, ip_match);

	if (!e) {
		if (delta < 0)
			return;
		e = xcalloc(1, sizeof(*e));
		snprintf(e->addr, sizeof(e->addr), "%s", addr);
		hmap_put(&s->per_ip, h, e);
	}
	e->n += (uint32_t)delta;
	if (e->n == 0)
		free(hmap_del(&s->per_ip, h, addr, ip_match));
}

void conn_teardown(struct server *s)
{
	for (uint32_t i = 0; i < s->per_ip.cap; i++)
		if (s->per_ip.slots[i].hash)
			free(s->per_ip.slots[i].entry);
	hmap_free(&s->per_ip);
	hmap_free(&s->by_serial);
}

int conn_reason_of(uint16_t code)
{
	switch (code) {
	case LWS_CLOSE_STATUS_GOINGAWAY: return CLOSE_R_GOING_AWAY;
	case CLOSE_SLOW_CONSUMER: return CLOSE_R_SLOW_CONSUMER;
	case LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE: return CLOSE_R_TOO_BIG;
	case LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE: return CLOSE_R_BINARY;
	case LWS_CLOSE_STATUS_INVALID_PAYLOAD: return CLOSE_R_BAD_UTF8;
	case CLOSE_AUTH: return CLOSE_R_AUTH;
	case CLOSE_RATE_LIMITED: return CLOSE_R_RATE_LIMITED;
	case CLOSE_BANNED: return CLOSE_R_BANNED;
	default: return CLOSE_R_ERROR;
	}
}

void conn_open(struct conn *c, struct server *s, struct lws *wsi, const char *peer)
{
	conn_open_kind(c, s, wsi, peer, CONN_NATIVE);
	hangup_watch(&s->hangup, c);
	conn_send_welcome(c);
}

void conn_open_kind(struct conn *c, struct server *s, struct lws *wsi, const char *peer,
		    uint8_t kind)
{
	/* 64 random bits: a million guests share a name with odds of 1 in ~37 million
	 * (32 bits gave 2.6 % among 15,000: two guests, one presence entry) */
	char guest[6 + 2 * 8 + 1];

	memset(c, 0, sizeof(*c));
	c->srv = s;
	c->kind = kind;
	c->wsi = wsi;
	c->serial = ++s->next_serial;
	util_random_hex(c->session, 8);
	memcpy(guest, "guest-", 6);
	util_random_hex(guest + 6, 8);
	conn_set_name(c, guest, strlen(guest));
	c->close_reason = CLOSE_R_HANGUP;
	conn_heard(c);
	c->fd = !wsi || lws_is_ssl(wsi) ? -1 : (int)lws_get_socket_fd(wsi);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	ip_add(s, c->peer, 1);
	c->counted_ip = true;

	if (kind == CONN_SIO) {
		/* sessions after the native connections (server.h) */
		c->prev = s->conns_tail;
		if (s->conns_tail)
			s->conns_tail->next = c;
		else
			s->conns = c;
		s->conns_tail = c;
	} else {
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		else
			s->conns_tail = c;
		s->conns = c;
	}
	s->nconns++;
	s->stats.conns_total++;
	hmap_put(&s->by_serial, hmap_hash_bytes(&c->serial, sizeof(c->serial)), c);

	log_info("connect", "session=%s peer=%s connections=%u%s", c->session, c->peer, s->nconns,
		 kind == CONN_SIO ? " protocol=socketio" : "");
}

void conn_release(struct conn *c)
{
	struct server *s = c->srv;

	if (!s)
		return; /* never reached ESTABLISHED */

	conn_leave_all(c);
	catchup_free_all(c);
	sendq_clear(&c->q);
	pbuf_free(&c->rx);
	server_unlink_flush(s, c);
	hangup_forget(&s->hangup, c);
	hmap_del(&s->by_serial, hmap_hash_bytes(&c->serial, sizeof(c->serial)),
		 &c->serial, serial_match);

	if (s->sweep_at == c)
		s->sweep_at = c->next;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->conns_tail = c->prev;
	s->nconns--;

	users_remove(s, c);
	free(c->close_msg);
	c->close_msg = NULL;
	if (c->counted_ip)
		ip_add(s, c->peer, -1);
	if (c->peer_closed && !c->close_code)
		c->close_reason = CLOSE_R_CLIENT;
	s->stats.disconnects[c->close_reason]++;
	log_info("disconnect", "session=%s peer=%s user=%s reason=%s connections=%u",
		 c->session, c->peer, log_q(c->name), metrics_reason_name(c->close_reason), s->nconns);
	free(c->name);
	c->name = NULL;
	c->srv = NULL;
}

void conn_leave_all(struct conn *c)
{
	/* room_leave() changes c->rooms: pick one member at a time. */
	while (c->rooms.len) {
		struct member *m = NULL;
		for (uint32_t i = 0; i < c->rooms.cap && !m; i++)
			if (c->rooms.slots[i].hash)
				m = c->rooms.slots[i].entry;
		room_leave(m);
	}
	hmap_free(&c->rooms);
}

void conn_set_name(struct conn *c, const char *name, size_t len)
{
	users_remove(c->srv, c);
	free(c->name);
	c->name = xstrndup(name, len);
	c->name_len = (uint32_t)len;
	users_add(c->srv, c);
}

void conn_close_msg(struct conn *c, uint16_t code, const char *reason, size_t len)
{
	if (c->close_code)
		return;
	if (len > 123) {
		len = 123;
		while (len && ((unsigned char)reason[len] & 0xc0) == 0x80)
			len--; /* not inside a UTF-8 character */
	}
	free(c->close_msg);
	c->close_msg = xstrndup(reason, len);
	conn_close_later(c, code);
	c->close_reason = CLOSE_R_BY_SERVER;
}

/*
 * Our own keep-alive instead of lws's validity timers: lws 4.1 keeps every
 * connection's timer in one sorted list and re-inserts it (a walk over all
 * connections) at each connect and each pong, which at 10,000 connections
 * costs more than everything else a reconnect storm does. A sweep over the
 * connections twice a second costs a few microseconds per thousand.
 */
void conn_keepalive(struct conn *c, int64_t now_ms)
{
	const struct config *cfg = c->srv->cfg;
	int64_t quiet = now_ms - c->heard_ms;

	if (c->close_code) {
		/* Closing: a reader that has not taken its close frame in
		 * CLOSE_WAIT_S is cut off (our deadline, not lws's: see
		 * conn_close_later). */
		if (c->close_by_ms && now_ms >= c->close_by_ms) {
			c->close_by_ms = 0;
			hangup_kill(&c->srv->hangup, c);
		}
		return;
	}
	if (c->hangup != HANGUP_NONE)
		return; /* queued or being closed (hangup.c) */
	if (c->kind == CONN_SIO)
		return; /* Engine.IO has its own heartbeat (server/sio/) */
	if (quiet >= (int64_t)cfg->ping_timeout * 1000) {
		/* Hang up without a close frame, as for a dead peer (its
		 * ping_timeout line is logged at its turn). */
		c->close_reason = CLOSE_R_HANGUP;
		hangup_kill(&c->srv->hangup, c); /* batched (hangup.h) */
		return;
	}
	if (quiet >= (int64_t)cfg->ping_interval * 1000 && !c->ping_out) {
		/* A ping, queued like any frame (control frames go between
		 * whole frames, which is all the queue sends). Not empty: lws
		 * does not report an empty pong (LWS_CALLBACK_RECEIVE_PONG). */
		struct frame *f = frame_new_text("k", 1);
		f->wire[0] = 0x89; /* FIN + ping */
		conn_send_reply(c, f);
		frame_unref(&f);
		c->ping_out = true;
	}
}

/* A Socket.IO session that now has a close deadline moves from the tail
 * of server->conns, where the keep-alive sweep does not go, to its head,
 * where the sweep enforces the deadline (server.h). */
static void sweep_me(struct conn *c)
{
	struct server *s = c->srv;

	if (s->conns == c)
		return;
	if (s->sweep_at == c)
		s->sweep_at = c->next;
	c->prev->next = c->next; /* not the head: it has a prev */
	if (c->next)
		c->next->prev = c->prev;
	else
		s->conns_tail = c->prev;
	c->prev = NULL;
	c->next = s->conns;
	s->conns->prev = c;
	s->conns = c;
}

void conn_close_later(struct conn *c, uint16_t code)
{
	if (c->close_code)
		return;
	if (c->kind == CONN_SIO)
		sio_conn_closing(c, code);
	c->close_code = code;
	c->close_reason = (uint8_t)conn_reason_of(code);
	if (code == CLOSE_SLOW_CONSUMER) {
		/* Its backlog is dropped now: that memory is what the limit
		 * protects. (A 1001 drain sends what is queued first.) */
		sendq_clear(&c->q);
		c->srv->stats.slow_closes++;
		log_info("slow_consumer", "session=%s peer=%s", c->session, c->peer);
	}
	/* The flush pass takes it out of its rooms at a safe point (never
	 * inside the fan-out that found it slow). The close frame goes out
	 * when the socket takes it; a reader that never reads again is cut
	 * off after CLOSE_WAIT_S. */
	server_want_flush(c->srv, c);
	if (!c->wsi)
		return; /* a Socket.IO polling session: sio_conn_closing closed it */
	/* The keep-alive sweep enforces CLOSE_WAIT_S. lws_set_timeout()
	 * would walk lws's sorted list of every pending timeout once per
	 * close: 15,000 slow consumers of one fan-out, O(n^2) in one
	 * iteration, then 15,000 expiries at the same second. */
	c->close_by_ms = (int64_t)(util_mono_us() / 1000) + CLOSE_WAIT_S * 1000;
	if (c->kind == CONN_SIO)
		sweep_me(c);
	lws_callback_on_writable(c->wsi);
}

static inline int live_fits(const struct conn *c, size_t len)
{
	const struct config *cfg = c->srv->cfg;

	return sendq_live(&c->q) + c->held_msgs + 1 <= cfg->send_queue_messages &&
	       sendq_live_bytes(&c->q) + c->held_bytes + len <= cfg->send_queue_bytes;
}

int conn_live_fits(const struct conn *c, size_t len)
{
	return live_fits(c, len);
}

void conn_send(struct conn *c, struct frame *f)
{
	if (c->close_code)
		return;
	if (c->kind == CONN_SIO) {
		/* its Socket.IO rendition, built once per frame (server/sio/):
		 * once it is, a member whose session's gates are open takes it
		 * here, without reading the session's own lines (conn.h) */
		struct frame *g = f->sio;
		if (c->sio_fast && g && !g->sio && !(g->seq && c->sio_marks)) {
			conn_queue_live(c, g);
			return;
		}
		sio_conn_send(c, f, false);
		return;
	}
	conn_queue_live(c, f);
}

void conn_queue_live(struct conn *c, struct frame *f)
{
	/* inlined, not conn_live_fits(): this runs once per member of a
	 * fan-out. A held frame being let go was counted against the limits
	 * when it was held; its Socket.IO rendition may be a few bytes longer,
	 * which must not close a reader that was exactly at the limit. */
	if (!live_fits(c, f->len) && !c->releasing) {
		conn_close_later(c, CLOSE_SLOW_CONSUMER);
		return;
	}
	sendq_push(&c->q, f, 0);
	if (!c->pending) {
		server_want_flush(c->srv, c);
		conn_warm(c);
	}
}

void conn_send_reply(struct conn *c, struct frame *f)
{
	if (c->close_code)
		return;
	if (c->kind == CONN_SIO) {
		sio_conn_send(c, f, true);
		return;
	}
	conn_queue_reply(c, f);
}

void conn_queue_reply(struct conn *c, struct frame *f)
{
	struct server *s = c->srv;
	const struct config *cfg = s->cfg;

	sendq_push(&c->q, f, 1);
	if (!c->rx_paused &&
	    (c->q.rcount > cfg->send_queue_messages || c->q.rbytes > cfg->send_queue_bytes)) {
		/* The client asks faster than it reads the answers: stop
		 * reading its commands (TCP pushes back on it) rather than
		 * hold an unbounded pile of replies, or close a client that
		 * only pipelines. conn_flush() resumes. */
		c->rx_paused = true;
		lws_rx_flow_control(c->wsi, 0);
	}
	if (!c->pending) {
		server_want_flush(s, c);
		conn_warm(c);
	}
}

void conn_send_text(struct conn *c, const char *text, size_t len)
{
	struct frame *f = frame_new_text(text, len);
	conn_send_reply(c, f);
	frame_unref(&f);
}

/*
 * Writes complete frames. On a plain socket with nothing held by lws, the
 * bytes go straight to send(): lws_write() would do the same send() after
 * walking the connection's role, extension and buffer state, which on a
 * fan-out to thousands costs more than our own work per delivery. Whatever
 * the socket does not take is handed to lws_write(), which keeps it,
 * asks for WRITEABLE and sends it first when the socket drains (conn_flush
 * waits for that via lws_partial_buffered). TLS always goes through lws.
 * Returns 0, or -1 if the connection failed.
 */
static int flush_queue(struct conn *c);

static int write_out(struct conn *c, unsigned char *p, size_t len)
{
	if (c->fd >= 0) {
		/* sendto(2) itself, not libc's send(): that one is a thread
		 * cancellation point and brackets the call with two calls to
		 * switch cancellation on and off, a sixth of the loop's
		 * instructions per delivery in a fan-out. parleyd never
		 * cancels a thread. Same result and errno. */
		ssize_t n = syscall(SYS_sendto, c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT, NULL, 0);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -1;
			n = 0;
		}
		p += n;
		len -= (size_t)n;
	}
	return lws_write(c->wsi, p, len, LWS_WRITE_RAW) < (int)len ? -1 : 0;
}

int conn_flush(struct conn *c)
{
	do {
		if (flush_queue(c) < 0)
			return -1;
		if (c->rx_paused && c->q.rcount * 2 <= c->srv->cfg->send_queue_messages &&
		    c->q.rbytes * 2 <= c->srv->cfg->send_queue_bytes) {
			c->rx_paused = false;
			lws_rx_flow_control(c->wsi, 1);
		}
		/* The socket took everything: feed it the next part of a
		 * catch-up, if one is streaming (tested first: a fan-out
		 * flushes thousands of connections that have none). */
	} while (c->cu_head && !c->q.count && !lws_partial_buffered(c->wsi) && catchup_pump(c));
	return 0;
}

/* Writes queued frames until the queue is empty or the socket is full. */
static int flush_queue(struct conn *c)
{
	struct server *s = c->srv;

	while (c->q.count) {
		/* lws still holds the tail of an earlier partial send: it
		 * asked for WRITEABLE and we continue from there. */
		if (lws_partial_buffered(c->wsi))
			return 0;

		struct frame *f = sendq_peek(&c->q, 0);
		unsigned char *p = f->wire;
		size_t len = f->len;
		uint32_t n = 1;

		/* Several small frames queued: copy them into one buffer so
		 * they leave in one send(). */
		if (c->q.count > 1 && f->len < s->wbuf_cap / 2) {
			len = 0;
			for (n = 0; n < c->q.count; n++) {
				struct frame *g = sendq_peek(&c->q, n);
				if (len + g->len > s->wbuf_cap)
					break;
				memcpy(s->wbuf + len, g->wire, g->len);
				len += g->len;
			}
			p = s->wbuf;
		}
		if (write_out(c, p, len) < 0)
			return -1;
		s->stats.msgs_out += n;
		s->stats.bytes_out += len;
		sendq_drop(&c->q, n);
	}
	return 0;
}
