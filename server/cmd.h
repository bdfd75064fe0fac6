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
};
/* Encodes, stores (persist), caches and fans out one message. Returns
 * PROTO_OK with *seq (0 for a volatile message; *duplicate set when the key
 * was seen before: nothing published again, *seq is the first one's), or
 * bad_request (a key on a volatile message), too_large, overloaded,
 * storage_failed, internal: then nothing was published and no seq spent.
 * Uses the server's encoder buffer (s->enc), not s->data. */
enum proto_err cmd_publish_core(struct server *s, const struct pub_req *p, uint64_t *seq,
				bool *duplicate);

struct pbuf;
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

/* Storage completions (called from store_poll on the loop thread). */
void cmd_durable_done(void *srv, uint64_t ticket, int ok);
void cmd_page_done(void *srv, struct store_page *page);
/* Shutdown, after the last connection closed: frees what the commands
 * still hold (durable replies and reads the store never answered). */
void cmd_teardown(struct server *s);
/* Forgets the pending durable replies and reads of a closing connection. */
void cmd_conn_gone(struct server *s, struct conn *c);

#endif
