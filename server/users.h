/*
 * users.h - the index user name -> connections (users_ prefix), for the
 * HTTP API's subscribe, unsubscribe and disconnect, which act on every
 * connection of a user.
 *
 * Indexed both ways: a user entry holds a dense array of its connections,
 * and each connection knows its entry and its index in that array, so
 * adding, removing and renaming cost O(1). An entry exists while it has a
 * connection, so the index is bounded by the number of connections.
 * conn_set_name() and conn_release() keep it up to date.
 */
#ifndef PARLEY_USERS_H
#define PARLEY_USERS_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct server;

struct user_conns {
	char *name;
	size_t name_len;
	struct conn **v;
	uint32_t n, cap;
};

/* c joins the entry of its current name (c->name). */
void users_add(struct server *s, struct conn *c);
/* c leaves its entry (freed when it was the last). */
void users_remove(struct server *s, struct conn *c);
/* The connections of user name, or NULL. */
struct user_conns *users_find(struct server *s, const char *name, size_t len);
void users_free(struct server *s);

#endif
