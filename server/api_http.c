/*
 * api_http.c - the HTTP edge of the backend API: the "parley-api" lws
 * protocol, mounted at /api (server.c). It turns requests into route calls
 * and answers into HTTP responses, and nothing else: the endpoints are in
 * api.c and api_users.c (the route table is api_routes[] there; api.h says
 * how to add one).
 *
 * A request, step by step:
 *   1. LWS_CALLBACK_HTTP (headers complete): the API must be on (a key is
 *      configured: else 404), the bearer key must match one (401), the
 *      path and method must name a route (404, 405). A GET is decoded from
 *      its query string and handled at once.
 *   2. A body arrives in LWS_CALLBACK_HTTP_BODY pieces as the socket
 *      delivers them (the loop never waits for a client). It is kept up to
 *      api_max_body bytes. Past the limit (a Content-Length over it, or
 *      more bytes than announced in a chunked body), the rest is read and
 *      dropped, and the answer is 413 once it is over: replying while the
 *      client still sends would make the kernel reset the connection and
 *      lose the reply. A Content-Length over 64 times the limit is
 *      answered 413 at once and the connection closed.
 *   3. LWS_CALLBACK_HTTP_BODY_COMPLETION: the body is decoded (400) and
 *      the route's handler runs.
 *   4. The answer is written in the callback that produced it; a deferred
 *      one (a history page read from disk) asks for HTTP_WRITEABLE. Then
 *      lws_http_transaction_completed() readies the connection for the next
 *      request (HTTP/1.1 keep-alive).
 *
 * Slow clients: lws closes a connection whose head is not complete within
 * the vhost's timeout_secs (10 s, server.c; measured: it is a deadline for
 * the whole head, not restarted per byte), and an idle keep-alive
 * connection after keepalive_timeout (lws's default, 5 s). A body must be
 * complete within api_body_timeout seconds of its head: lws's own content
 * timeout is restarted by every piece (a client dripping a byte at a time
 * would never hit it), so calls waiting for a body are on a list, oldest
 * first, and a timer kills those past their deadline (body_deadline_cb).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "util.h"

#define API_HUGE_FACTOR 64   /* Content-Length past limit*this: 413 and close */

/* The API's state in struct server (s->api). */
struct api_state {
	struct api_keys *keys;
	struct hmap calls;          /* deferred struct api_call *, by serial */
	uint64_t next_serial;
	int64_t started_ms;
	/* Calls waiting for their body, oldest first: every deadline is
	 * headers time + api_body_timeout, so the head expires first. */
	struct api_call *body_head, *body_tail;
	ev_timer body_w;
	uint64_t requests, by_status[6]; /* 2xx, 400, 401, 404, 413, other */
};

static int serial_match(const void *entry, const void *key)
{
	return ((const struct api_call *)entry)->serial == *(const uint64_t *)key;
}

unsigned api_status(enum proto_err e)
{
	switch (e) {
	case PROTO_OK: return 200;
	case PROTO_EUNAUTHENTICATED: return 401;
	case PROTO_EFORBIDDEN: return 403;
	case PROTO_ENOT_FOUND: case PROTO_ENOT_MEMBER: return 404;
	case PROTO_EMETHOD_NOT_ALLOWED: return 405;
	case PROTO_ETOO_LARGE: return 413;
	case PROTO_ERATE_LIMITED: return 429;
	case PROTO_EOVERLOADED: case PROTO_ESTORAGE_FAILED: case PROTO_EUNAVAILABLE: return 503;
	case PROTO_EINTERNAL: return 500;
	default: return 400;
	}
}

/* ---- answering ---- */

struct pbuf *api_reply_begin(struct api_call *call)
{
	pbuf_reset(&call->resp);
	pbuf_adds(&call->resp, "{\"ok\":true,\"data\":");
	return &call->resp;
}

static void answered(struct api_call *call, unsigned status)
{
	call->status = status;
	call->answered = true;
	if (!call->in_callback)
		lws_callback_on_writable(call->wsi); /* a deferred answer */
}

void api_reply_end(struct api_call *call)
{
	pbuf_addc(&call->resp, '}');
	answered(call, 200);
}

void api_fail(struct api_call *call, enum proto_err e, const char *msg)
{
	struct pbuf *b = &call->resp;

	if (call->srv)
		call->srv->stats.errors[e]++;
	pbuf_reset(b);
	pbuf_adds(b, "{\"ok\":false,\"error\":{\"code\":\"");
	pbuf_adds(b, proto_err_code(e));
	pbuf_adds(b, "\",\"message\":");
	if (!msg || !*msg)
		msg = proto_err_message(e);
	pbuf_add_jstr(b, msg, strlen(msg));
	pbuf_adds(b, "}}");
	answered(call, api_status(e));
}

uint64_t api_defer(struct api_call *call)
{
	struct api_state *st = call->srv->api;

	call->serial = ++st->next_serial;
	hmap_put(&st->calls, hmap_hash_bytes(&call->serial, sizeof(call->serial)), call);
	call->in_table = true;
	return call->serial;
}

struct api_call *api_find(struct server *s, uint64_t id)
{
	if (!s->api || !id)
		return NULL;
	struct api_call *c = hmap_get(&s->api->calls, hmap_hash_bytes(&id, sizeof(id)), &id,
				      serial_match);
	return c && !c->answered ? c : NULL;
}

static void body_unlink(struct api_call *call)
{
	struct api_state *st = call->srv->api;

	if (!call->in_body_list)
		return;
	if (call->bprev)
		call->bprev->bnext = call->bnext;
	else
		st->body_head = call->bnext;
	if (call->bnext)
		call->bnext->bprev = call->bprev;
	else
		st->body_tail = call->bprev;
	call->bnext = call->bprev = NULL;
	call->in_body_list = false;
}

static void body_append(struct api_call *call)
{
	struct api_state *st = call->srv->api;

	call->bprev = st->body_tail;
	call->bnext = NULL;
	if (st->body_tail)
		st->body_tail->bnext = call;
	else
		st->body_head = call;
	st->body_tail = call;
	call->in_body_list = true;
}

/*
 * Body deadlines. lws restarts its own content timeout on every piece it
 * reads, and sets it again after our callback, so it cannot hold an
 * absolute deadline: this timer does. An expired call is killed through
 * lws (LWS_TO_KILL_ASYNC), which closes it from its own callback.
 */
static void body_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;
	int64_t now = util_now_ms();

	while (s->api->body_head && s->api->body_head->body_deadline <= now) {
		struct api_call *call = s->api->body_head;
		body_unlink(call);
		log_info("api_timeout", "path=%s what=body", log_q(call->path));
		lws_set_timeout(call->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
	}
	(void)loop;
	(void)revents;
}

/* Forgets a call: out of the deferred table, buffers freed. lws owns the
 * memory itself (per-session data). */
static void call_release(struct api_call *call)
{
	if (call->srv && call->srv->api)
		body_unlink(call);
	if (call->streaming)
		feed_forget(call);
	if (call->in_table && call->srv && call->srv->api) {
		hmap_del(&call->srv->api->calls, hmap_hash_bytes(&call->serial, sizeof(call->serial)),
			 &call->serial, serial_match);
		call->in_table = false;
	}
	pbuf_free(&call->body);
	pbuf_free(&call->resp);
	api_req_clear(&call->req);
	call->srv = NULL;
}

static void count_status(struct server *s, unsigned status)
{
	struct api_state *st = s->api;
	int i = status < 300 ? 0 : status == 400 ? 1 : status == 401 ? 2 : status == 404 ? 3 :
		status == 413 ? 4 : 5;

	st->requests++;
	st->by_status[i]++;
}

static const char *method_name(enum api_method m)
{
	return m == API_GET ? "GET" : m == API_POST ? "POST" : m == API_DELETE ? "DELETE" : "";
}

/* Writes the answer. Returns what the lws callback must: 0, or -1 to close
 * (the client asked for it, or lws says the connection cannot go on). */
static int send_response(struct api_call *call, bool close_after)
{
	close_after = close_after || call->close_after;
	struct lws *wsi = call->wsi;
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
		      *end = hdr + sizeof(hdr) - 1;

	call->sent = true;
	count_status(call->srv, call->status);
	log_debug("api_request", "key=%s method=%s path=%s status=%u",
		  call->key_name[0] ? call->key_name : "-", method_name(call->method),
		  log_q(call->path), call->status);
	if (lws_add_http_common_headers(wsi, call->status, "application/json",
					(lws_filepos_t)call->resp.len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if (call->status == 401 &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
					 (const unsigned char *)"Bearer", 6, &p, end))
		return -1;
	if (close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	/* HTTP/1 raw body: lws keeps what the socket does not take and sends
	 * it before anything else. */
	if (lws_write(wsi, (unsigned char *)call->resp.data, call->resp.len,
		      LWS_WRITE_HTTP_FINAL) != (int)call->resp.len)
		return -1;
	if (close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Runs the route (the body, if any, is in call->body) and answers if the
 * handler did. */
static int dispatch(struct api_call *call)
{
	const struct api_route *r = call->route;

	if (call->early_err) {
		api_fail(call, call->early_err, call->early_msg);
	} else if (call->too_large) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the body is larger than api_max_body (%u bytes)",
			 call->srv->cfg->api_max_body);
		api_fail(call, PROTO_ETOO_LARGE, msg);
	} else if (r->body == API_BODY) {
		enum proto_err e = api_req_body(call->body.data ? call->body.data : "",
						call->body.len, &call->req);
		if (e != PROTO_OK)
			api_fail(call, e, call->req.errmsg);
		else
			r->handle(call);
	} else {
		r->handle(call);
	}
	call->in_callback = false;
	if (call->answered)
		return send_response(call, false);
	return 0; /* deferred */
}

static enum api_method method_of(struct lws *wsi, char *uri, size_t cap)
{
	static const struct {
		enum lws_token_indexes tok;
		enum api_method m;
	} methods[] = {
		{ WSI_TOKEN_GET_URI, API_GET }, { WSI_TOKEN_POST_URI, API_POST },
		{ WSI_TOKEN_DELETE_URI, API_DELETE }, { WSI_TOKEN_PUT_URI, API_OTHER },
		{ WSI_TOKEN_PATCH_URI, API_OTHER }, { WSI_TOKEN_OPTIONS_URI, API_OTHER },
		{ WSI_TOKEN_HEAD_URI, API_OTHER },
	};

	uri[0] = '\0';
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
			if (lws_hdr_copy(wsi, uri, (int)cap, methods[i].tok) < 0)
				uri[0] = '\0';
			return methods[i].m;
		}
	return API_OTHER;
}


/* 1 if the Authorization header carries a configured key; sets the key's
 * name. */
static int authorized(struct server *s, struct api_call *call)
{
	char h[512];
	int n = lws_hdr_copy(call->wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n <= 7 || strncasecmp(h, "Bearer ", 7))
		return 0;
	const char *k = h + 7;
	while (*k == ' ')
		k++;
	size_t klen = strlen(k);
	while (klen && k[klen - 1] == ' ')
		klen--;
	const char *name = api_keys_check(s->api->keys, k, klen);
	if (!name)
		return 0;
	snprintf(call->key_name, sizeof(call->key_name), "%s", name);
	return 1;
}

/*
 * Refuses a request before its body is read. Without a body the answer goes
 * now. With one, the body is read and dropped first (answering while the
 * client still sends would have lws parse the rest of the body as the next
 * request, or the kernel reset the connection and lose the answer).
 */
/* Returns what the callback must return. Answered at once, call may be
 * gone (lws frees its per-session data when the transaction completes):
 * the caller must not touch it after this. */
static int refuse(struct api_call *call, enum proto_err e, const char *msg)
{
	if (!call->has_body) {
		api_fail(call, e, msg);
		call->in_callback = false;
		return send_response(call, false);
	}
	call->early_err = e;
	call->early_msg = msg;
	call->in_callback = false; /* the answer comes after the body */
	return 0;
}

static int on_request(struct server *s, struct api_call *call, struct lws *wsi)
{
	char uri[1100], num[32];

	if (call->srv)
		call_release(call); /* an earlier request on this connection */
	memset(call, 0, sizeof(*call));
	call->srv = s;
	call->wsi = wsi;
	call->in_callback = true;
	api_req_init(&call->req);
	call->method = method_of(wsi, uri, sizeof(uri));
	/* lws gives the path without the query (args are separate). */
	snprintf(call->path, sizeof(call->path), "%s", uri);

	uint64_t cl = 0;
	int chunked = 0;
	if (lws_hdr_copy(wsi, num, sizeof(num), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		cl = strtoull(num, NULL, 10);
	if (lws_hdr_copy(wsi, num, sizeof(num), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
		for (char *t = num; *t && !chunked; t++)
			chunked = !strncasecmp(t, "chunked", 7);
	call->body_expected = cl;
	call->chunked = chunked;
	/* lws passes a chunked body on with its framing and without an end:
	 * we decode it, and close after the answer, since whatever followed
	 * the last chunk in lws's buffer is not ours to hand back. */
	call->close_after = chunked;
	call->has_body = cl > 0 || chunked;

	uint32_t max = s->cfg->api_max_body;
	if (cl > (uint64_t)max * API_HUGE_FACTOR) {
		/* not worth reading to the end: answer and close */
		char msg[96];
		snprintf(msg, sizeof(msg), "the body is larger than api_max_body (%u bytes)", max);
		api_fail(call, PROTO_ETOO_LARGE, msg);
		return send_response(call, true);
	}
	if (call->has_body) {
		if (cl > max)
			call->too_large = true;
		call->body_deadline = util_now_ms() + (int64_t)s->cfg->api_body_timeout * 1000;
		body_append(call);
	}

	if (!s->api || !s->api->keys || !api_keys_count(s->api->keys)) {
		/* Off unless a key is configured: never open. */
		return refuse(call, PROTO_ENOT_FOUND, "the API is off: no api_keys_file");
	}
	const struct api_route *r, *any = NULL;
	/* A ticket route (the feed) is the one call without a bearer key:
	 * its handler checks the ticket. Any other path still needs the key
	 * before it is even told apart from a missing one (401, not 404). */
	bool ticket_route = false;
	for (r = api_routes; r->path; r++)
		if (r->auth == API_TICKET && !strcmp(r->path, call->path) &&
		    !strcmp(r->method, method_name(call->method)))
			ticket_route = true;
	if (!ticket_route && !authorized(s, call))
		return refuse(call, PROTO_EUNAUTHENTICATED,
			      "missing or unknown API key (Authorization: Bearer KEY)");
	for (r = api_routes; r->path; r++) {
		if (strcmp(r->path, call->path))
			continue;
		any = r;
		if (!strcmp(r->method, method_name(call->method)))
			break;
	}
	if (!r->path)
		return any ? refuse(call, PROTO_EMETHOD_NOT_ALLOWED, NULL) :
			     refuse(call, PROTO_ENOT_FOUND, "no such endpoint");
	call->route = r;

	/* lws keeps each name=value of the query as a fragment of its own
	 * (already percent-decoded); join them with '&' again. A query
	 * too long for the buffer is refused rather than cut. */
	for (int f = 0; f < 64; f++) {
		int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, f);
		if (fl <= 0)
			break;
		if (call->query_len + (size_t)fl + 2 > sizeof(call->query)) {
			call->query_len = 0;
			return refuse(call, PROTO_EBAD_REQUEST, "the query string is too long");
		}
		if (f)
			call->query[call->query_len++] = '&';
		int n = lws_hdr_copy_fragment(wsi, call->query + call->query_len,
					      (int)(sizeof(call->query) - call->query_len),
					      WSI_TOKEN_HTTP_URI_ARGS, f);
		if (n < 0)
			break;
		call->query_len += (size_t)n;
	}
	call->query[call->query_len] = '\0';
	if (!call->has_body)
		return dispatch(call); /* no body: decoded as empty */
	call->in_callback = false; /* waiting for the body */
	return 0;
}

/* Keeps body bytes up to the limit; past it, drops them all. */
static void body_add(void *arg, const char *in, size_t len)
{
	struct api_call *call = arg;

	if (call->too_large || call->early_err)
		return; /* read and dropped */
	if (call->body.len + len > call->srv->cfg->api_max_body) {
		call->too_large = true;
		pbuf_free(&call->body);
		return;
	}
	pbuf_add(&call->body, in, len);
}

static int on_body(struct api_call *call, const char *in, size_t len)
{
	struct server *s = call->srv;

	if (!s || call->answered)
		return 0;
	if (util_now_ms() > call->body_deadline) {
		log_info("api_timeout", "path=%s what=body", log_q(call->path));
		return -1;
	}
	if (call->chunked) {
		size_t used;
		enum api_chunk_rc rc = api_chunked_feed(&call->chunk, in, len, &used, body_add, call);
		if (rc == API_CHUNK_MORE)
			return 0;
		call->in_callback = true;
		body_unlink(call);
		if (rc == API_CHUNK_BAD) {
			api_fail(call, PROTO_EBAD_REQUEST, "malformed chunked body");
			return send_response(call, true);
		}
		return dispatch(call);
	}
	body_add(call, in, len);
	return 0;
}

static int on_body_done(struct api_call *call)
{
	if (!call->srv || call->answered)
		return 0;
	body_unlink(call);
	call->in_callback = true;
	return dispatch(call);
}

int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		 size_t len)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	struct api_call *call = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_request(s, call, wsi);
	case LWS_CALLBACK_HTTP_BODY:
		return call ? on_body(call, in, len) : -1;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return call ? on_body_done(call) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (call && call->srv && call->streaming)
			return feed_writeable(call);
		if (call && call->srv && call->answered && !call->sent)
			return send_response(call, false);
		return 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (call && call->srv)
			call_release(call);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return 0; /* the WebSocket protocol polls the store */
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- set-up, reload ---- */

int api_setup(struct server *s)
{
	char err[256];

	s->api = xcalloc(1, sizeof(*s->api));
	s->api->started_ms = util_now_ms();
	ev_timer_init(&s->api->body_w, body_deadline_cb, 0.25, 0.25);
	s->api->body_w.data = s;
	ev_timer_start(s->loop, &s->api->body_w);
	feed_setup(s);
	if (!s->cfg->api_keys_file)
		return 0;
	if (api_keys_load(&s->api->keys, s->cfg->api_keys_file, err, sizeof(err)) < 0) {
		log_error("api_keys", "file=%s error=%s", log_q(s->cfg->api_keys_file), log_q(err));
		return -1;
	}
	log_info("api", "keys=%d public=%u", api_keys_count(s->api->keys), s->cfg->api_public);
	return 0;
}

int api_reload(struct server *s)
{
	struct api_keys *fresh = NULL;
	char err[256];

	if (!s->api || !s->cfg->api_keys_file)
		return 0;
	if (api_keys_load(&fresh, s->cfg->api_keys_file, err, sizeof(err)) < 0) {
		log_error("api_keys_reload", "file=%s error=%s (keeping the old keys)",
			  log_q(s->cfg->api_keys_file), log_q(err));
		return -1;
	}
	api_keys_free(&s->api->keys);
	s->api->keys = fresh;
	log_info("api_keys_reload", "keys=%d", api_keys_count(fresh));
	return 1;
}

void api_teardown(struct server *s)
{
	if (!s->api)
		return;
	ev_timer_stop(s->loop, &s->api->body_w);
	feed_teardown(s);
	api_keys_free(&s->api->keys);
	hmap_free(&s->api->calls);
	free(s->api);
	s->api = NULL;
}

int64_t api_started_ms(struct server *s)
{
	return s->api ? s->api->started_ms : 0;
}

void api_stats(struct server *s, uint64_t *requests, uint64_t by_status[6])
{
	*requests = s->api ? s->api->requests : 0;
	for (int i = 0; i < 6; i++)
		by_status[i] = s->api ? s->api->by_status[i] : 0;
}
