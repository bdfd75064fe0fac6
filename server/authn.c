/*
 * authn.c - connection authentication (authn.h): hello with a token, the
 * ?token= upgrade parameter, the authentication deadline, secret reloads.
 */
#include <stdlib.h>
#include <string.h>

#include "authn.h"
#include "token.h"
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

static void reject(struct conn *c, const char *why)
{
	log_info("auth_failed", "session=%s peer=%s reason=%s", c->session, c->peer, log_q(why));
	unauthed_unlink(c->srv, c);
	c->close_text = why; /* static text from token_verify */
	conn_close_later(c, CLOSE_AUTH);
}

/* ---- token lifetime: a connection authenticated with a token closes with
 * 4001 "token expired" at the token's exp + token_grace unless it sends
 * refresh with a newer token for the same user. exp is wall-clock time;
 * the deadline runs on a libev timer (monotonic clock), so a clock step
 * moves neither way. One timer per connection: libev keeps them in a
 * heap, O(log n) to arm. ---- */

static void token_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->close_code)
		return;
	log_info("token_expired", "session=%s peer=%s user=%s", c->session, c->peer, log_q(c->name));
	c->close_text = "token expired";
	conn_close_later(c, CLOSE_AUTH);
}

static void arm_expiry(struct conn *c, int64_t exp)
{
	struct server *s = c->srv;
	/* in doubles: exp may be up to 2^53 (token.c) */
	double in = (double)exp - (double)util_now_ms() / 1000.0 + s->cfg->token_grace;

	ev_timer_stop(s->loop, &c->expiry_w);
	ev_timer_init(&c->expiry_w, token_expired, in > 0 ? in : 0, 0);
	c->expiry_w.data = c;
	ev_timer_start(s->loop, &c->expiry_w);
}

/* Makes verified claims c's (their patterns move over) and (re)arms the
 * expiry. */
static void install_claims(struct conn *c, struct token_claims *claims)
{
	if (!c->claims)
		c->claims = xcalloc(1, sizeof(*c->claims));
	token_claims_clear(c->claims);
	*c->claims = *claims;
	memset(claims, 0, sizeof(*claims));
	arm_expiry(c, c->claims->exp);
}

/* Verifies a token and, if it is good, makes its sub this connection's
 * user. Returns 0, or -1 after closing the connection with 4001. */
static int take_token(struct conn *c, const char *tok, size_t len, uint64_t id)
{
	struct server *s = c->srv;
	struct token_claims claims = { 0 };
	const char *why = NULL;

	if (token_verify(s->auth, tok, len, util_now_ms() / 1000, &claims, &why) < 0) {
		if (id)
			cmd__fail(c, id, PROTO_EUNAUTHENTICATED, why);
		reject(c, why);
		return -1;
	}
	if (c->authed && strcmp(claims.sub, c->name)) {
		/* A fresh token for the same user is a refresh; another user
		 * would inherit rooms it may not be allowed in. */
		token_claims_clear(&claims);
		cmd__fail(c, id, PROTO_EFORBIDDEN, "a connection cannot change its user");
		return 0;
	}
	install_claims(c, &claims);
	cmd__set_display_name(c, c->claims->sub, strlen(c->claims->sub));
	c->authed = true;
	unauthed_unlink(s, c);
	log_info("auth_ok", "session=%s peer=%s user=%s", c->session, c->peer, log_q(c->name));
	return 0;
}

void authn_hello(struct conn *c, struct proto_cmd *cmd)
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

/*
 * refresh: a newer token for the same user. A bad token fails the command
 * and leaves the connection on its current token (it still closes at that
 * token's exp + grace); another user's token is refused, as in hello. The
 * new claims' room patterns apply to later joins and publishes.
 */
void authn_refresh(struct conn *c, struct proto_cmd *cmd)
{
	struct server *s = c->srv;
	struct token_claims claims = { 0 };
	const char *why = NULL;

	if (!s->auth) {
		cmd__fail(c, cmd->id, PROTO_EUNSUPPORTED, "this server does not use token authentication");
		return;
	}
	if (token_verify(s->auth, cmd->token, cmd->token_len, util_now_ms() / 1000, &claims, &why) < 0) {
		log_info("refresh_failed", "session=%s peer=%s reason=%s", c->session, c->peer, log_q(why));
		cmd__fail(c, cmd->id, PROTO_EUNAUTHENTICATED, why);
		return;
	}
	if (strcmp(claims.sub, c->name)) {
		token_claims_clear(&claims);
		cmd__fail(c, cmd->id, PROTO_EFORBIDDEN, "a connection cannot change its user");
		return;
	}
	install_claims(c, &claims);
	log_info("refresh_ok", "session=%s peer=%s user=%s", c->session, c->peer, log_q(c->name));
	struct pbuf *b = cmd__reply_begin(c, cmd->id);
	pbuf_adds(b, "{\"user\":");
	pbuf_add_jstr(b, c->name, c->name_len);
	pbuf_adds(b, ",\"exp\":");
	pbuf_add_i64(b, c->claims->exp);
	pbuf_addc(b, '}');
	cmd__reply_end(c, cmd->id);
}

void authn_conn_established(struct conn *c)
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

void authn_expire(struct server *s)
{
	int64_t now = (int64_t)(util_mono_us() / 1000);

	while (s->unauthed && s->unauthed->auth_deadline <= now)
		reject(s->unauthed, "authentication timeout");
}

void authn_forget(struct server *s, struct conn *c)
{
	unauthed_unlink(s, c);
	ev_timer_stop(s->loop, &c->expiry_w);
	if (c->claims) {
		token_claims_clear(c->claims);
		free(c->claims);
		c->claims = NULL;
	}
}

int authn_setup(struct server *s)
{
	char err[256];

	if (!strcmp(s->cfg->auth, "none"))
		return 0;
	if (token_load(&s->auth, s->cfg->auth_secret_file, err, sizeof(err)) < 0) {
		log_error("auth", "secret_file=%s error=%s", log_q(s->cfg->auth_secret_file), log_q(err));
		return -1;
	}
	log_info("auth", "mode=token secrets=%d", token_secret_count(s->auth));
	return 0;
}

int authn_reload(struct server *s)
{
	struct token_keys *fresh = NULL;
	char err[256];

	if (!s->auth)
		return 0;
	if (token_load(&fresh, s->cfg->auth_secret_file, err, sizeof(err)) < 0) {
		log_error("auth_reload", "secret_file=%s error=%s (keeping the old secrets)",
			  log_q(s->cfg->auth_secret_file), log_q(err));
		return -1;
	}
	token_free(&s->auth);
	s->auth = fresh;
	return 1;
}

void authn_teardown(struct server *s)
{
	token_free(&s->auth);
}
