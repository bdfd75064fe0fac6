/*
 * authn.c - token authentication (auth = token): hello with a token, the
 * ?token= upgrade parameter, the authentication deadline, secret reloads.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cmd.h"
#include "cmd_int.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "util.h"


/* ---- the list of connections waiting to authenticate (oldest first:
 * every deadline is connect time + auth_timeout, so the head expires
 * first and the tick only looks at the head) ---- */

static void unauthed_unlink(struct server *s, struct conn *c)
{
	if (!c->auth_deadline)
		return;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else
		s->unauthed = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	else
		s->unauthed_tail = c->aprev;
	c->anext = c->aprev = NULL;
	c->auth_deadline = 0;
}

static void unauthed_append(struct server *s, struct conn *c)
{
	/* Monotonic: a wall-clock step (NTP, an operator) must neither cut
	 * everyone off nor let a silent connection stay for hours. Never 0,
	 * which marks "not waiting". */
	c->auth_deadline = (int64_t)(util_mono_us() / 1000) + (int64_t)s->cfg->auth_timeout * 1000;
	c->aprev = s->unauthed_tail;
	c->anext = NULL;
	if (s->unauthed_tail)
		s->unauthed_tail->anext = c;
	else
		s->unauthed = c;
	s->unauthed_tail = c;
}

static void auth_fail(struct conn *c, const char *why)
{
	log_info("auth_failed", "session=%s peer=%s reason=%s", c->session, c->peer, log_q(why));
	unauthed_unlink(c->srv, c);
	c->close_text = why; /* static text from auth_verify */
	conn_close_later(c, CLOSE_AUTH);
}

/* Verifies a token and, if it is good, makes its sub this connection's
 * user. Returns 0, or -1 after closing the connection with 4001. */
static int take_token(struct conn *c, const char *tok, size_t len, uint64_t id)
{
	struct server *s = c->srv;
	struct auth_claims claims = { 0 };
	const char *why = NULL;

	if (auth_verify(s->auth, tok, len, util_now_ms() / 1000, &claims, &why) < 0) {
		if (id)
			cmd__fail(c, id, PROTO_EUNAUTHENTICATED, why);
		auth_fail(c, why);
		return -1;
	}
	if (c->authed && strcmp(claims.sub, c->name)) {
		/* A fresh token for the same user is a refresh; another user
		 * would inherit rooms it may not be allowed in. */
		auth_claims_clear(&claims);
		cmd__fail(c, id, PROTO_EFORBIDDEN, "a connection cannot change its user");
		return 0;
	}
	if (!c->claims)
		c->claims = xcalloc(1, sizeof(*c->claims));
	auth_claims_clear(c->claims);
	*c->claims = claims; /* the patterns move over */
	cmd__set_display_name(c, claims.sub, strlen(claims.sub));
	c->authed = true;
	unauthed_unlink(s, c);
	log_info("auth_ok", "session=%s peer=%s user=%s", c->session, c->peer, log_q(c->name));
	return 0;
}

void cmd__hello_token(struct conn *c, struct proto_cmd *cmd)
{
	if (!c->srv->auth) {
		cmd__fail(c, cmd->id, PROTO_EUNSUPPORTED, "this server does not use token authentication");
		return;
	}
	if (take_token(c, cmd->token, cmd->token_len, cmd->id) < 0 || !c->authed)
		return;
	struct pbuf *b = cmd__reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"user\":");
	pbuf_add_jstr(b, c->name, c->name_len);
	pbuf_addc(b, '}');
	cmd__reply_end(c, cmd->id);
}

void cmd_conn_established(struct conn *c)
{
	struct server *s = c->srv;
	char tok[PROTO_TOKEN_MAX + 1];

	if (!s->auth) {
		c->authed = true;
		return;
	}
	/* Browsers cannot set headers on a WebSocket: ?token= on the URL.
	 * (Never logged: lws does not log query strings, neither do we.) */
	const char *v = lws_get_urlarg_by_name(c->wsi, "token=", tok, sizeof(tok));
	if (v) {
		take_token(c, v, strlen(v), 0);
		return;
	}
	unauthed_append(s, c);
}

void cmd_auth_expire(struct server *s)
{
	int64_t now = (int64_t)(util_mono_us() / 1000);

	while (s->unauthed && s->unauthed->auth_deadline <= now)
		auth_fail(s->unauthed, "authentication timeout");
}

void cmd__auth_forget(struct server *s, struct conn *c)
{
	unauthed_unlink(s, c);
	if (c->claims) {
		auth_claims_clear(c->claims);
		free(c->claims);
		c->claims = NULL;
	}
}

int auth_setup(struct server *s)
{
	char err[256];

	if (!strcmp(s->cfg->auth, "none"))
		return 0;
	if (auth_load(&s->auth, s->cfg->auth_secret_file, err, sizeof(err)) < 0) {
		log_error("auth", "secret_file=%s error=%s", log_q(s->cfg->auth_secret_file), log_q(err));
		return -1;
	}
	log_info("auth", "mode=token secrets=%d", auth_secret_count(s->auth));
	return 0;
}

int auth_reload(struct server *s)
{
	struct auth *fresh = NULL;
	char err[256];

	if (!s->auth)
		return 0;
	if (auth_load(&fresh, s->cfg->auth_secret_file, err, sizeof(err)) < 0) {
		log_error("auth_reload", "secret_file=%s error=%s (keeping the old secrets)",
			  log_q(s->cfg->auth_secret_file), log_q(err));
		return -1;
	}
	auth_free(&s->auth);
	s->auth = fresh;
	return 1;
}

void auth_teardown(struct server *s)
{
	auth_free(&s->auth);
}
