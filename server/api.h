/*
 * api.h - the HTTP API for backends (/api/...): the edge (api_http.c), the
 * keys (api_keys.c) and the endpoints (api.c, api_users.c).
 *
 * ---- Adding an endpoint ----
 * Every endpoint is one row of the route table, api_routes[] in api.c:
 *
 *     { "POST", "/api/delete", API_BODY, my_handler },
 *
 * The edge has then already: matched method and path (404/405 otherwise),
 * checked the bearer key (401), read the whole body without blocking the
 * loop (bounded by api_max_body: 413) and, for API_BODY routes, decoded it
 * with api_req_body() (400 on bad JSON or a wrong type). The handler gets
 * the call, checks the fields it needs (api_req_need) and answers exactly
 * once, now or later:
 *
 *     now:   api_reply_begin(call) ... append the data value ... api_reply_end(call)
 *            or api_fail(call, PROTO_E..., "message" or NULL)
 *     later: uint64_t id = api_defer(call); ... then, from a completion:
 *            call = api_find(s, id); if (call) { api_reply_begin/end or api_fail }
 *            (NULL: the client went away meanwhile; nothing to answer)
 *
 * Responses are {"ok":true,"data":...} or {"ok":false,"error":{"code":..,
 * "message":..}}, with the HTTP status of the code (api_status()).
 * A call lives in lws's per-session data of the "parley-api" protocol: it
 * is never freed by us, and a deferred one leaves api_find's table when lws
 * drops the request (HTTP_DROP_PROTOCOL, CLOSED_HTTP), so a late completion
 * finds nothing instead of freed memory.
 */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "apireq.h"
#include "buf.h"
#include "errors.h"

struct server;

enum api_method { API_GET, API_POST, API_DELETE, API_OTHER };

/* One request on an API connection (lws per-session data). */
struct api_call {
	struct server *srv;
	struct lws *wsi;
	uint64_t serial;            /* != 0: deferred, in the server's api table */
	enum api_method method;
	const struct api_route *route;
	char path[64];
	char query[1024];           /* what follows '?', percent-encoded */
	size_t query_len;
	char key_name[65];          /* the bearer key's name (publish's default from) */
	struct pbuf body;           /* the request body, at most api_max_body */
	uint64_t body_expected;     /* Content-Length, or 0 */
	int64_t body_deadline;      /* ms: past it the connection is closed */
	struct api_req req;         /* the decoded body or query */
	struct pbuf resp;           /* the response body once answered */
	unsigned status;
	bool in_table;              /* deferred: in s->api_calls */
	bool answered;              /* resp holds the whole response */
	bool too_large;             /* body past the limit: read and dropped, then 413 */
	bool has_body;
	bool in_callback;           /* answering inside lws's callback for this wsi */
	bool sent;
	bool chunked;               /* Transfer-Encoding: chunked */
	bool close_after;           /* answer with Connection: close, then close */
	struct api_chunked chunk;   /* its decoder */
	struct api_call *bnext, *bprev; /* waiting for a body, oldest first */
	bool in_body_list;
	/* refused before its body was read (off, 401, 404, 405, 400): the
	 * body is read and dropped first, then this is the answer */
	enum proto_err early_err;
	const char *early_msg;      /* static text or NULL */
	/* a feed stream (feed.c): open until the client goes */
	bool streaming;
	struct pbuf sse;            /* events not yet handed to lws */
	struct api_call *fnext, *fprev; /* the feed's clients */
};

enum api_body { API_NO_BODY, API_BODY };
/* API_TICKET: no bearer key; the handler checks a one-time ticket (feed.c:
 * EventSource cannot send an Authorization header). */
enum api_auth { API_BEARER, API_TICKET };

struct api_route {
	const char *method;         /* "GET", "POST", "DELETE" */
	const char *path;           /* the whole path, "/api/publish" */
	enum api_body body;         /* API_BODY: a JSON object is required */
	void (*handle)(struct api_call *call);
	enum api_auth auth;         /* API_BEARER unless given */
};

extern const struct api_route api_routes[];

/* The HTTP status of an error code: 400, 401, 403, 404, 405, 413, 429,
 * 500 or 503. */
unsigned api_status(enum proto_err e);

/* Answering (see the header comment). api_reply_begin returns the buffer
 * to append the data value to. */
struct pbuf *api_reply_begin(struct api_call *call);
void api_reply_end(struct api_call *call);
void api_fail(struct api_call *call, enum proto_err e, const char *msg);
uint64_t api_defer(struct api_call *call);
struct api_call *api_find(struct server *s, uint64_t id);

/* The lws protocol callback of "parley-api" (api_http.c). */
int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		 size_t len);

/* ---- keys (api_keys.c) ---- */
struct api_keys;
/* Loads the keys file: one "name key" per line, '#' comments, blank
 * lines. Returns 0 (*out may hold no key), or -1 with a message in err. */
int api_keys_load(struct api_keys **out, const char *path, char *err, size_t errlen);
void api_keys_free(struct api_keys **k);
int api_keys_count(const struct api_keys *k);
/* The name of the key equal to key[0..len) (compared in constant time
 * against every key), or NULL. */
const char *api_keys_check(const struct api_keys *k, const char *key, size_t len);
/* Start-up and SIGHUP: (re)load cfg->api_keys_file. reload returns 1 if
 * reloaded, 0 if no file is configured, -1 on error (the old keys stay). */
int api_setup(struct server *s);
int api_reload(struct server *s);
void api_teardown(struct server *s);

/* ---- the dashboard's live feed (feed.c) ---- */
void feed_setup(struct server *s);
void feed_teardown(struct server *s);
/* The call's connection went (api_http.c's release). */
void feed_forget(struct api_call *call);
/* HTTP_WRITEABLE on a streaming call: returns what the callback must. */
int feed_writeable(struct api_call *call);
/* The routes: POST /api/admin/ticket, GET /api/admin/feed. */
void feed_ticket(struct api_call *call);
void feed_open(struct api_call *call);

/* ---- endpoints whose work outlives the call (api.c) ---- */
struct store_page;
/* A history page for a deferred API call came back (history.c calls it
 * from the store's completion; the page stays the caller's). */
void api_history_done(struct server *s, uint64_t id, const char *room,
		      const struct store_page *page);
/* When the API state was set up (process start), ms since the epoch. */
int64_t api_started_ms(struct server *s);
/* Requests answered, by status class: 2xx, 400, 401, 404, 413, other. */
void api_stats(struct server *s, uint64_t *requests, uint64_t by_status[6]);

#endif
