/* cmd.h - client command handlers: decode one text message and act on it. */
#ifndef PARLEY_CMD_H
#define PARLEY_CMD_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct server;
struct store_page;

/* Handles one complete text message from c. */
void cmd_handle(struct conn *c, const char *buf, size_t len);

/* Storage completions (called from store_poll on the loop thread). */
void cmd_durable_done(void *srv, uint64_t ticket, int ok);
void cmd_page_done(void *srv, struct store_page *page);
/* A connection was established: starts its authentication (auth = token)
 * or marks it authenticated (auth = none). */
void cmd_conn_established(struct conn *c);
/* Closes connections past their authentication deadline (from the tick). */
void cmd_auth_expire(struct server *s);
/* auth = token: loads the secrets (start-up), reloads them (SIGHUP: returns
 * 1 if reloaded, 0 if auth is off, -1 on error), frees them. */
int auth_setup(struct server *s);
int auth_reload(struct server *s);
void auth_teardown(struct server *s);
/* Shutdown, after the last connection closed: frees what the commands
 * still hold (durable replies and reads the store never answered). */
void cmd_teardown(struct server *s);
/* Forgets the pending durable replies and reads of a closing connection. */
void cmd_conn_gone(struct server *s, struct conn *c);

#endif
