/* rconn.c - an asynchronous Redis connection that keeps itself connected
 * (rconn.h). States: IDLE (waiting for the backoff timer) -> CONNECTING
 * (non-blocking connect) -> HANDSHAKE (AUTH, SELECT, SETNAME, INFO) ->
 * READY; any failure goes back to IDLE through went_down(). */
#include "rconn.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rreply.h"
#include "xalloc.h"

enum rc_state { RC_IDLE, RC_CONNECTING, RC_HANDSHAKE, RC_READY };

/* One command in flight: the caller's callback, and when it was sent (the
 * oldest one's age is the command timeout). Linked in send order. */
struct rcmd {
	struct rconn *rc;
	rconn_reply_fn *cb;
	void *priv;
	ev_tstamp sent;
	struct rcmd *prev, *next;
};

struct rconn {
	struct ev_loop *loop;
	struct rurl_addr addr;
	char *password;
	char name[64];
	struct rconn_opts o;
	struct rconn_cbs cbs;
	void *ud;

	redisAsyncContext *ac;       /* NULL in RC_IDLE; hiredis frees it */
	enum rc_state state;
	int stopping;                /* kill_w is pending */
	int killing;                 /* inside kill_cb's redisAsyncFree */
	int freeing;                 /* inside rconn_free */
	char kill_why[128];
	char run_id[48];
	double backoff;
	uint64_t rng;

	ev_timer retry_w;            /* backoff before the next connect */
	ev_timer conn_w;             /* connect + handshake deadline */
	ev_timer cmd_w;              /* checks the oldest command's age */
	ev_timer kill_w;             /* zero delay: stops the context outside hiredis */

	struct rcmd *head, *tail;
	unsigned inflight;

	char *fbuf;                  /* rconn_command_argv's formatting buffer */
	size_t fcap;
	struct rreply_arena *arena;  /* every context's replies (rreply.h) */
};

static void do_connect(struct rconn *rc);

/* ---- bookkeeping of commands in flight ---- */

static void cmd_unlink(struct rconn *rc, struct rcmd *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		rc->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		rc->tail = c->prev;
	rc->inflight--;
}

/* hiredis's callback for every command: hands the reply (or NULL) to the
 * caller's callback, then forgets the command. hiredis frees the reply. */
static void reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct rcmd *c = priv;
	struct rconn *rc = c->rc;

	(void)ac;
	cmd_unlink(rc, c);
	if (c->cb)
		c->cb(rc, r, c->priv);
	free(c);
}

static struct rcmd *cmd_new(struct rconn *rc, rconn_reply_fn *cb, void *priv)
{
	struct rcmd *c = xcalloc(1, sizeof(*c));

	c->rc = rc;
	c->cb = cb;
	c->priv = priv;
	c->sent = ev_now(rc->loop);
	c->prev = rc->tail;
	if (rc->tail)
		rc->tail->next = c;
	else
		rc->head = c;
	rc->tail = c;
	rc->inflight++;
	return c;
}

/* ---- going down and coming back ---- */

static double jitter(struct rconn *rc, double d)
{
	/* xorshift64: a spread of +-25 % so that N nodes that lost the same
	 * Redis do not reconnect in lockstep */
	rc->rng ^= rc->rng << 13;
	rc->rng ^= rc->rng >> 7;
	rc->rng ^= rc->rng << 17;
	return d * (0.75 + 0.5 * (double)(rc->rng % 1000) / 1000.0);
}

/* The context is gone (hiredis freed it or is freeing it): back to IDLE,
 * tell the owner, and schedule the next attempt. */
static void went_down(struct rconn *rc, const char *why)
{
	int was_ready = rc->state == RC_READY;

	rc->ac = NULL;
	rc->state = RC_IDLE;
	ev_timer_stop(rc->loop, &rc->conn_w);
	ev_timer_stop(rc->loop, &rc->cmd_w);
	if (rc->freeing)
		return;
	double d = jitter(rc, rc->backoff);
	rc->backoff = rc->backoff * 2 > rc->o.backoff_max ? rc->o.backoff_max : rc->backoff * 2;
	ev_timer_set(&rc->retry_w, d, 0);
	ev_timer_start(rc->loop, &rc->retry_w);
	if (rc->cbs.down)
		rc->cbs.down(rc, rc->ud, was_ready, why);
}

static void kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rconn *rc = w->data;
	redisAsyncContext *ac = rc->ac;

	(void)loop, (void)revents;
	rc->stopping = 0;
	if (!ac)
		return;
	/* Runs every pending callback with NULL, then on_disconnect when the
	 * socket had connected (it calls went_down); otherwise we do. */
	rc->killing = 1;
	redisAsyncFree(ac);
	rc->killing = 0;
	if (rc->ac == ac)
		went_down(rc, rc->kill_why);
}

void rconn_reset(struct rconn *rc, const char *why)
{
	if (!rc->ac || rc->stopping)
		return;
	/* Cut to fit, on purpose (a log line's reason), without snprintf's
	 * -Wformat-truncation under Debian's build flags. */
	size_t n = strnlen(why, sizeof(rc->kill_why) - 1);
	memcpy(rc->kill_why, why, n);
	rc->kill_why[n] = '\0';
	rc->stopping = 1;
	/* Not ready from now on: nothing new is sent into a dying context. */
	if (rc->state == RC_READY)
		rc->state = RC_HANDSHAKE;
	ev_timer_set(&rc->kill_w, 0, 0);
	ev_timer_start(rc->loop, &rc->kill_w);
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	rconn_reset(w->data, "connect timeout");
}

static void cmd_check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rconn *rc = w->data;

	(void)revents;
	if (rc->head && ev_now(loop) - rc->head->sent > rc->o.cmd_timeout)
		rconn_reset(rc, "command timeout");
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	do_connect(w->data);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (rc->freeing) {
		rc->ac = NULL;
		return;
	}
	if (rc->killing) {
		went_down(rc, rc->kill_why);
		return;
	}
	went_down(rc, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
}

/* ---- the handshake ---- */

static void hs_error(struct rconn *rc, const char *what, redisReply *r)
{
	char why[160];

	snprintf(why, sizeof(why), "%s: %.*s", what,
		 r->type == REDIS_REPLY_ERROR ? (int)r->len : 14,
		 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	rconn_reset(rc, why);
}

static void hs_simple_cb(struct rconn *rc, redisReply *r, void *priv)
{
	if (r && r->type == REDIS_REPLY_ERROR)
		hs_error(rc, priv, r);
}

static void hs_info_cb(struct rconn *rc, redisReply *r, void *priv)
{
	(void)priv;
	if (!r || rc->stopping)
		return;
	if (r->type != REDIS_REPLY_STRING) {
		hs_error(rc, "INFO", r);
		return;
	}
	const char *p = strstr(r->str, "run_id:");
	if (!p) {
		rconn_reset(rc, "INFO: no run_id");
		return;
	}
	p += 7;
	size_t n = strcspn(p, "\r\n");
	if (n >= sizeof(rc->run_id))
		n = sizeof(rc->run_id) - 1;
	memcpy(rc->run_id, p, n);
	rc->run_id[n] = '\0';
	rc->state = RC_READY;
	rc->backoff = rc->o.backoff_min;
	ev_timer_stop(rc->loop, &rc->conn_w);
	if (rc->cbs.ready)
		rc->cbs.ready(rc, rc->ud);
}

/* Sends one handshake command; they are pipelined and answered in order,
 * so INFO's reply comes last and means every earlier one was answered. */
static void hs_send(struct rconn *rc, rconn_reply_fn *cb, void *priv, int argc,
		    const char **argv)
{
	struct rcmd *c = cmd_new(rc, cb, priv);

	if (redisAsyncCommandArgv(rc->ac, reply_cb, c, argc, argv, NULL) != REDIS_OK) {
		cmd_unlink(rc, c);
		free(c);
		rconn_reset(rc, "cannot send the handshake");
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;
	char db[16];

	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		went_down(rc, ac->errstr[0] ? ac->errstr : "connect failed");
		return;
	}
	rc->state = RC_HANDSHAKE;
	ev_timer_start(rc->loop, &rc->cmd_w);
	if (rc->password) {
		const char *a[] = { "AUTH", rc->password };
		hs_send(rc, hs_simple_cb, "AUTH", 2, a);
	}
	if (rc->addr.db) {
		snprintf(db, sizeof(db), "%u", rc->addr.db);
		const char *a[] = { "SELECT", db };
		hs_send(rc, hs_simple_cb, "SELECT", 2, a);
	}
	const char *sn[] = { "CLIENT", "SETNAME", rc->name };
	hs_send(rc, hs_simple_cb, "CLIENT SETNAME", 3, sn);
	const char *in[] = { "INFO", "server" };
	hs_send(rc, hs_info_cb, NULL, 2, in);
}

static void do_connect(struct rconn *rc)
{
	redisAsyncContext *ac;

	ac = rc->addr.is_unix ? redisAsyncConnectUnix(rc->addr.path)
			      : redisAsyncConnect(rc->addr.ip, rc->addr.port);
	if (!ac) {
		fprintf(stderr, "parleyd: out of memory (hiredis)\n");
		abort();
	}
	if (ac->err) {
		char why[160];
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		went_down(rc, why);
		return;
	}
	ac->data = rc;
	rreply_attach(ac->c.reader, rc->arena);
	redisLibevAttach(rc->loop, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	rc->ac = ac;
	rc->state = RC_CONNECTING;
	/* At start the loop has not run yet and its cached time may be from
	 * before the database was opened: count the timeout from now. */
	ev_now_update(rc->loop);
	ev_timer_set(&rc->conn_w, rc->o.connect_timeout, 0);
	ev_timer_start(rc->loop, &rc->conn_w);
}

/* ---- public ---- */

struct rconn *rconn_new(struct ev_loop *loop, const struct rurl_addr *addr,
			const char *password, const char *name,
			const struct rconn_opts *opts, const struct rconn_cbs *cbs, void *ud)
{
	struct rconn *rc = xcalloc(1, sizeof(*rc));
	size_t i;

	rc->loop = loop;
	rc->addr = *addr;
	if (password && *password)
		rc->password = xstrndup(password, strlen(password));
	for (i = 0; name[i] && i < sizeof(rc->name) - 1; i++) {
		char ch = name[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == ':' || ch == '.';
		rc->name[i] = ok ? ch : '_';
	}
	rc->name[i] = '\0';
	if (!i)
		strcpy(rc->name, "parley");
	rc->o.connect_timeout = 2;
	rc->o.cmd_timeout = 2;
	rc->o.backoff_min = 0.1;
	rc->o.backoff_max = 2;
	if (opts) {
		if (opts->connect_timeout > 0) rc->o.connect_timeout = opts->connect_timeout;
		if (opts->cmd_timeout > 0) rc->o.cmd_timeout = opts->cmd_timeout;
		if (opts->backoff_min > 0) rc->o.backoff_min = opts->backoff_min;
		if (opts->backoff_max > 0) rc->o.backoff_max = opts->backoff_max;
	}
	if (cbs)
		rc->cbs = *cbs;
	rc->ud = ud;
	rc->arena = rreply_arena_new();
	rc->backoff = rc->o.backoff_min;
	rc->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ (uintptr_t)rc;
	if (!rc->rng)
		rc->rng = 1;
	ev_timer_init(&rc->retry_w, retry_cb, 0, 0);
	ev_timer_init(&rc->conn_w, conn_timeout_cb, 0, 0);
	ev_timer_init(&rc->cmd_w, cmd_check_cb, 0.2, 0.2);
	ev_timer_init(&rc->kill_w, kill_cb, 0, 0);
	rc->retry_w.data = rc->conn_w.data = rc->cmd_w.data = rc->kill_w.data = rc;
	do_connect(rc);
	return rc;
}

/* Appends "<prefix><n>\r\n" at p; returns the end. */
static char *fmt_len(char *p, char prefix, size_t n)
{
	char tmp[24];
	int i = 0;

	*p++ = prefix;
	do
		tmp[i++] = (char)('0' + n % 10);
	while ((n /= 10));
	while (i)
		*p++ = tmp[--i];
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/* Formats argv as a RESP command into rc->fbuf (reused, grown as needed).
 * hiredis's own formatter (redisFormatSdsCommandArgv) builds it with an
 * sdscatfmt per argument and a doubling sds: about 27,000 instructions for
 * the tail's XREAD over 16 shards, and a malloc large enough to make glibc
 * consolidate its fast bins on every call (bench: the tail's and the
 * publish path's biggest user-time cost at 2,000 entries/s). Returns the
 * length. */
static size_t format_argv(struct rconn *rc, int argc, const char **argv, const size_t *argvlen)
{
	size_t need = 24;

	for (int i = 0; i < argc; i++)
		need += 24 + 2 + (argvlen ? argvlen[i] : strlen(argv[i]));
	if (need > rc->fcap) {
		free(rc->fbuf);
		rc->fcap = need < 1024 ? 1024 : need;
		rc->fbuf = xmalloc(rc->fcap);
	}
	char *p = fmt_len(rc->fbuf, '*', (size_t)argc);
	for (int i = 0; i < argc; i++) {
		size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
		p = fmt_len(p, '$', n);
		if (n)
			memcpy(p, argv[i], n);
		p += n;
		*p++ = '\r';
		*p++ = '\n';
	}
	return (size_t)(p - rc->fbuf);
}

int rconn_command_argv(struct rconn *rc, rconn_reply_fn *cb, void *privdata,
		       int argc, const char **argv, const size_t *argvlen)
{
	if (rc->state != RC_READY || rc->stopping || argc < 1)
		return -1;
	size_t len = format_argv(rc, argc, argv, argvlen);
	struct rcmd *c = cmd_new(rc, cb, privdata);
	if (redisAsyncFormattedCommand(rc->ac, reply_cb, c, rc->fbuf, len) != REDIS_OK) {
		cmd_unlink(rc, c);
		free(c);
		return -1;
	}
	return 0;
}

int rconn_command_resp(struct rconn *rc, rconn_reply_fn *cb, void *privdata,
		       const char *resp, size_t len)
{
	if (rc->state != RC_READY || rc->stopping || !len)
		return -1;
	struct rcmd *c = cmd_new(rc, cb, privdata);
	if (redisAsyncFormattedCommand(rc->ac, reply_cb, c, resp, len) != REDIS_OK) {
		cmd_unlink(rc, c);
		free(c);
		return -1;
	}
	return 0;
}

int rconn_command(struct rconn *rc, rconn_reply_fn *cb, void *privdata, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (rc->state != RC_READY || rc->stopping)
		return -1;
	struct rcmd *c = cmd_new(rc, cb, privdata);
	va_start(ap, fmt);
	r = redisvAsyncCommand(rc->ac, reply_cb, c, fmt, ap);
	va_end(ap);
	if (r != REDIS_OK) {
		cmd_unlink(rc, c);
		free(c);
		return -1;
	}
	return 0;
}

int rconn_ready(const struct rconn *rc)
{
	return rc && rc->state == RC_READY && !rc->stopping;
}

const char *rconn_run_id(const struct rconn *rc)
{
	return rc->run_id;
}

void *rconn_ud(const struct rconn *rc)
{
	return rc->ud;
}

unsigned rconn_inflight(const struct rconn *rc)
{
	return rc->inflight;
}

void rconn_set_cmd_timeout(struct rconn *rc, double seconds)
{
	if (seconds > 0)
		rc->o.cmd_timeout = seconds;
}

void rconn_free(struct rconn **rcp)
{
	struct rconn *rc = *rcp;

	if (!rc)
		return;
	*rcp = NULL;
	rc->freeing = 1;
	ev_timer_stop(rc->loop, &rc->retry_w);
	ev_timer_stop(rc->loop, &rc->conn_w);
	ev_timer_stop(rc->loop, &rc->cmd_w);
	ev_timer_stop(rc->loop, &rc->kill_w);
	if (rc->ac)
		redisAsyncFree(rc->ac);  /* pending callbacks get NULL */
	free(rc->password);
	free(rc->fbuf);
	rreply_arena_free(&rc->arena);
	free(rc);
}
