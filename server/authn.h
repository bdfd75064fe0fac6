/*
 * authn.h - connection authentication (auth = token): which user a
 * connection is. hello with a token, the ?token= upgrade parameter, the
 * authentication deadline, secret reloads.
 *
 * Not to be confused with token.h, which only verifies a token's bytes
 * (no sockets, no connections): authn.c calls token_verify() and applies
 * the result to a connection.
 */
#ifndef PARLEY_AUTHN_H
#define PARLEY_AUTHN_H

struct conn;
struct proto_cmd;
struct server;

/* auth = token: loads the secrets (start-up), reloads them (SIGHUP: returns
 * 1 if reloaded, 0 if auth is off, -1 on error), frees them. */
int authn_setup(struct server *s);
int authn_reload(struct server *s);
void authn_teardown(struct server *s);

/* A connection was established: starts its authentication (auth = token)
 * or marks it authenticated (auth = none). */
void authn_conn_established(struct conn *c);
/* The hello command with a token. */
void authn_hello(struct conn *c, struct proto_cmd *cmd);
/* The refresh command: a newer token for the connection's user. */
void authn_refresh(struct conn *c, struct proto_cmd *cmd);
/* Closes connections past their authentication deadline (from the tick). */
void authn_expire(struct server *s);
/* A closing connection leaves the authentication list and drops its claims. */
void authn_forget(struct server *s, struct conn *c);

#endif
