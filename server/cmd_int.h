/*
 * cmd_int.h - what the command files share: cmd.c (dispatch, hello,
 * join/leave, presence, ping, rate limits), publish.c (publish and durable
 * replies), history.c (history pages and join with since), authn.c (connection
 * authentication, authn.h). Internal to the server: cmd__ prefix.
 */
#ifndef PARLEY_CMD_INT_H
#define PARLEY_CMD_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"
#include "proto.h"

struct conn;
struct member;
struct pbuf;
struct proto_cmd;
struct room;
struct server;

/* A read from disk in flight (server->reads, by cookie): a history page or
 * a chunk of a catch-up (catchup.c). */
struct pread {
	uint64_t cookie;
	uint64_t serial;      /* the connection that asked */
	uint64_t id;          /* history: the command's id */
	bool is_catchup;
	uint64_t api;         /* != 0: an HTTP API call asked (api_find) */
	char room[PROTO_ROOM_MAX + 1];
};

/* A failed reply (id != 0) or an error frame (id == 0); msg NULL: the
 * code's default text. Counts the error. */
void cmd__fail(struct conn *c, uint64_t id, enum proto_err e, const char *msg);
/* Starts a successful reply in the server's encoder buffer; the caller
 * appends the data value and calls cmd__reply_end(), which queues it (and
 * does nothing when id is 0: success without an id is silent). */
struct pbuf *cmd__reply_begin(struct conn *c, uint64_t id);
void cmd__reply_end(struct conn *c, uint64_t id);
/* c's member of the command's room, or NULL. */
struct member *cmd__find_member(struct conn *c, const struct proto_cmd *cmd);
/* Sets c's display name; its rooms see the old name leave, the new join. */
void cmd__set_display_name(struct conn *c, const char *name, size_t len);
/* recovered: -1 leaves the field out (a join without since). */
void cmd__join_reply(struct conn *c, uint64_t id, struct room *r, uint64_t seq, int recovered);

void cmd__publish(struct conn *c, struct proto_cmd *cmd);
void cmd__history(struct conn *c, struct proto_cmd *cmd);
/* Shutdown: free the pending durable replies / disk reads. */
void cmd__publish_teardown(struct server *s);
void cmd__history_teardown(struct server *s);

#endif
