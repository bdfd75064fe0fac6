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
/* Shutdown, after the last connection closed: frees what the commands
 * still hold (durable replies and reads the store never answered). */
void cmd_teardown(struct server *s);
/* Forgets the pending durable replies and reads of a closing connection. */
void cmd_conn_gone(struct server *s, struct conn *c);

#endif
