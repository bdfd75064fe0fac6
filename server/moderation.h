/*
 * moderation.h - deleting messages, erasing users, bans (moderation_
 * prefix). The command core for the protocol's delete/erase/ban/unban and
 * for the HTTP API's POST /api/delete, /api/erase, /api/ban and
 * DELETE /api/ban: each is one call here, whatever edge it came from.
 *
 * Storage work goes through the store's writer queue and answers later:
 * a call returns PROTO_OK and then calls done() exactly once (from
 * store_poll on the loop thread, or at shutdown), or returns an error code
 * and never calls done(). done() gets back the caller's two numbers (a
 * connection serial and a command id, for instance: look the caller up by
 * them, it may be gone) and, on success, the reply's data as JSON text.
 */
#ifndef PARLEY_MODERATION_H
#define PARLEY_MODERATION_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

struct conn;
struct pbuf;
struct proto_cmd;
struct server;
struct store_erased;

/* The message of a delete's not_found (the error table's default is
 * generic). */
#define MODERATION_NO_SUCH_MESSAGE "no stored message with that seq"

typedef void (*moderation_done_fn)(struct server *s, uint64_t a, uint64_t b,
				   enum proto_err e, const char *msg, const char *data_json);

struct moderation_caller {
	moderation_done_fn done;
	uint64_t a, b;
};

/* Start-up: loads the bans from the store. Shutdown: frees everything
 * (pending requests get done(PROTO_EINTERNAL) first... see
 * moderation_teardown). */
void moderation_setup(struct server *s);
void moderation_teardown(struct server *s);

/* Tombstones message seq of room. only_sender != NULL: only if that user
 * sent it (else done(PROTO_EFORBIDDEN)). Unknown seq: PROTO_ENOT_FOUND
 * (at once, or through done when only the disk can tell). On success the
 * room's members get {"type":"deleted"}, its cache holds the tombstone,
 * and done's data is {"room":R,"seq":N}. */
enum proto_err moderation_delete(struct server *s, const char *room, size_t room_len,
				 uint64_t seq, const char *only_sender,
				 const struct moderation_caller *caller);
/* Starts erasing every stored message of user (a background job that
 * survives restarts). done's data: {"user":U,"started":true}. */
enum proto_err moderation_erase(struct server *s, const char *user,
				const struct moderation_caller *caller);
/* Bans user for seconds (1 to 10 years): closes its connections with 4003
 * and the reason now, refuses it at hello/token until the ban ends, and
 * records the ban on disk (done once it is). reason may be NULL.
 * done's data: {"user":U,"until":MS}. */
enum proto_err moderation_ban(struct server *s, const char *user, uint64_t seconds,
			      const char *reason, const struct moderation_caller *caller);
/* Lifts user's ban. done's data: {"user":U,"lifted":true|false}. */
enum proto_err moderation_unban(struct server *s, const char *user,
				const struct moderation_caller *caller);

/* A cluster node applies a moderation entry of the log (tail.c): runs the
 * action on this node. caller: the origin's caller when this node sent
 * it, else NULL (nobody is answered). A refusal every node shares (not
 * found, not the sender) goes to caller->done; returns -1 only if the
 * store could not take it (queue full, disk failing): the apply must not
 * move past the entry then. */
struct cluster_mod;
int moderation_apply(struct server *s, const struct cluster_mod *cm,
		     const struct moderation_caller *caller);

/* If user is banned now: 1 with *reason set (owned by the ban; copy it),
 * else 0. */
int moderation_banned(struct server *s, const char *user, const char **reason);
/* Closes c with 4003 and the reason (copied). */
void moderation_close_banned(struct conn *c, const char *reason);

/* Appends {"bans":N,"erase":{"running":N,"scanned":N,"erased":N,"done":N},
 * "deleted":N} for /api/info. */
void moderation_info(struct server *s, struct pbuf *b);

/* Bans in the map (some may have ended and not been met since). */
uint64_t moderation_ban_count(struct server *s);

/* Protocol commands (cmd.c dispatches them). */
void moderation_cmd(struct conn *c, struct proto_cmd *cmd);

/* Store completions (server.c's store handlers). */
void moderation_mod_done(void *srv, uint64_t cookie, int status);
void moderation_erased(void *srv, const struct store_erased *e);

#endif
