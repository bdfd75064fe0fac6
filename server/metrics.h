/* metrics.h - GET /metrics in the Prometheus text format. */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include "buf.h"

struct server;

/* Why connections ended: the label of parley_disconnects_total. */
#define CLOSE_REASON_MAP(X)                                                   \
	X(CLIENT, "client")             /* the client sent a close frame */  \
	X(HANGUP, "hangup")             /* socket closed or ping timeout */  \
	X(GOING_AWAY, "going_away")     /* server drain, 1001 */             \
	X(SLOW_CONSUMER, "slow_consumer") /* 4008 */                          \
	X(TOO_BIG, "too_big")           /* 1009 */                           \
	X(BINARY, "binary")             /* 1003 */                           \
	X(BAD_UTF8, "bad_utf8")         /* 1007 */                           \
	X(AUTH, "auth")                 /* 4001 */                           \
	X(RATE_LIMITED, "rate_limited") /* 4029 */                           \
	X(BANNED, "banned")             /* 4003 */                           \
	X(BY_SERVER, "by_server")       /* the backend: API disconnect */    \
	X(ERROR, "error")               /* a write failed */

enum close_reason {
#define X(e, name) CLOSE_R_##e,
	CLOSE_REASON_MAP(X)
#undef X
	CLOSE_R_COUNT
};

/* The close reason's label ("client", "hangup", ...), for logs too. */
const char *metrics_reason_name(enum close_reason r);
/* Appends the whole exposition to b. */
void metrics_render(struct server *s, struct pbuf *b);
/* Appends a metric's "# HELP" and "# TYPE" lines (Prometheus text format);
 * every module that renders metrics writes them through this. */
void metrics_head(struct pbuf *b, const char *name, const char *type, const char *help);

#endif
