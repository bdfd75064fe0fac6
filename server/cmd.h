/* cmd.h - client command handlers: decode one text message and act on it. */
#ifndef PARLEY_CMD_H
#define PARLEY_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

struct conn;
struct server;
struct store_page;

/* A publish, from any edge (the protocol's publish, the HTTP API). room
 * and from are NUL-terminated; data is compact JSON text. */
struct pub_req {
	const char *room;
	size_t room_len;
	const char *from;        /* the sender shown to members */
	size_t from_len;
	const char *data;
	size_t data_len;
	bool persist;
	uint64_t ticket;         /* != 0: durable, the store reports its commit */
	const char *key;         /* idempotency key (persisted only), or NULL */
	size_t key_len;
	struct conn *except;     /* left out of the fan-out (echo:false), or NULL */
	struct room *r;          /* the room, when the caller has it (a member's
				  * publish): not looked up again; or NULL */
	/* Cluster mode (docs/cluster.md): who gets the result when the
	 * publish completes later; a single node ignores it. */
	const struct pub_waiter *waiter;
};

/* The caller of a publish that completes later (in a cluster, once this
 * node applied the log entry): what cmd_publish_done needs to answer. */
enum pub_waiter_kind { PUB_W_CONN = 1, PUB_W_API, PUB_W_BCAST };
struct pub_waiter {
	enum pub_waiter_kind kind;
	uint64_t serial;         /* CONN: the connection; API/BCAST: the deferred call */
	uint64_t id;             /* CONN: the command's id */
	uint64_t ticket;         /* CONN: durable */
	uint64_t except;         /* serial left out of the fan-out (echo:false), 0: none */
	struct pub_bcast *bcast; /* BCAST: the broadcast's results */
	size_t idx;              /* BCAST: this room's index */
	char room[132];          /* CONN: the member's room */
};
/* A publish result: called by the cluster broker on completion (or
 * failure: e != PROTO_OK) of a publish cmd_publish_core left pending. */
void cmd_publish_done(struct server *s, const struct pub_waiter *w, enum proto_err e,
		      uint64_t seq, bool duplicate);
/* An HTTP API broadcast's results in a cluster: made with one slot per
 * room, filled now (pending false) or by cmd_publish_done; _finish answers
 * the call (api_find(call)) once all are in, and frees it. */
struct pub_bcast *cmd_bcast_new(uint64_t call, size_t n);
void cmd_bcast_set(struct pub_bcast *b, size_t i, const char *room, size_t len,
		   enum proto_err e, uint64_t seq, bool pending);
int cmd_bcast_finish(struct server *s, struct pub_bcast *b);
void cmd_bcast_release(struct pub_bcast *b);
/* The apply step (cache, fan-out) of a message the cluster log delivered:
 * the same as a single node's publish after its store append. */
void cmd_apply_message(struct server *s, const char *room, size_t room_len, uint64_t seq,
		       int64_t ts, const char *from, size_t from_len, const char *data,
		       size_t data_len, struct conn *except);
/* Encodes, stores (persist), caches and fans out one message. Returns
 * PROTO_OK with *seq (0 for a volatile message; *duplicate set when the key
 * was seen before: nothing published again, *seq is the first one's), or
 * bad_request (a key on a volatile message), too_large, overloaded,
 * storage_failed, internal: then nothing was published and no seq spent.
 * Uses the server's encoder buffer (s->enc), not s->data. */
enum proto_err cmd_publish_core(struct server *s, const struct pub_req *p, uint64_t *seq,
				bool *duplicate);
/* In a cluster cmd_publish_core answers PROTO_OK with *seq = CMD_PENDING:
 * the result comes later through cmd_publish_done(p->waiter). */
#define CMD_PENDING UINT64_MAX

struct pbuf;
/* Appends a publish's result: {"seq":N}, or {} for a volatile message
 * (seq 0). The same for the protocol's reply and the HTTP API's answer. */
void cmd_publish_result(struct pbuf *b, uint64_t seq);
/* A history page of any room, for callers without a connection (the HTTP
 * API): PROTO_OK with the page appended to b, or with *deferred set after
 * defer(defer_arg) gave the id that api_history_done() gets with the page
 * read from disk; or overloaded / storage_failed. before 0: the latest. */
enum proto_err cmd_history_any(struct server *s, const char *room, size_t room_len,
			       uint64_t before, unsigned limit, uint64_t (*defer)(void *),
			       void *defer_arg, struct pbuf *b, bool *deferred);
/* Appends {"messages":[...],"more":...} for a page read from disk. */
void cmd_history_encode(struct pbuf *b, const char *room, const struct store_page *page);

/* Handles one complete text message from c. */
void cmd_handle(struct conn *c, const char *buf, size_t len);
/* cmd_handle with the JSON scan's bounds given (at most the defaults';
 * no_id: proto_decode_bounded's): returns -1, having done nothing (not
 * even counted the frame), when that scan refuses buf; otherwise handles
 * it as cmd_handle does and returns 0. */
int cmd_handle_bounded(struct conn *c, const char *buf, size_t len, unsigned max_depth,
		       unsigned max_keys, bool no_id);

/* Storage completions (called from store_poll on the loop thread). */
void cmd_durable_done(void *srv, uint64_t ticket, int ok);
void cmd_page_done(void *srv, struct store_page *page);
/* Shutdown, after the last connection closed: frees what the commands
 * still hold (durable replies and reads the store never answered). */
void cmd_teardown(struct server *s);
/* Forgets the pending durable replies and reads of a closing connection. */
void cmd_conn_gone(struct server *s, struct conn *c);

#endif
