/*
 * api_moderation.c - the HTTP edge of moderation.c: POST /api/delete,
 * POST /api/erase, POST /api/ban and DELETE /api/ban. Each handler checks
 * its fields, defers the call and hands it to the moderation core, whose
 * completion (after the commit) answers it through api_find(): the client
 * may have gone meanwhile.
 */
#include <string.h>

#include "api.h"
#include "moderation.h"
#include "server.h"

/* The handlers (api.c's route table names them). */
void api_mod_delete(struct api_call *call);
void api_mod_erase(struct api_call *call);
void api_mod_ban(struct api_call *call);
void api_mod_unban(struct api_call *call);

/* moderation's done(): a = the deferred call's id. */
static void mod_done(struct server *s, uint64_t id, uint64_t unused, enum proto_err e,
		     const char *msg, const char *data_json)
{
	struct api_call *call = api_find(s, id);
	(void)unused;
	if (!call)
		return; /* the client went away */
	if (e != PROTO_OK) {
		api_fail(call, e, msg);
		return;
	}
	struct pbuf *b = api_reply_begin(call);
	pbuf_adds(b, data_json);
	api_reply_end(call);
}

/* Defers the call and returns the caller for the core. */
static struct moderation_caller defer(struct api_call *call)
{
	struct moderation_caller c = { mod_done, api_defer(call), 0 };
	return c;
}

static int need(struct api_call *call, uint32_t fields)
{
	if (api_req_need(&call->req, fields) == PROTO_OK)
		return 0;
	api_fail(call, PROTO_EBAD_REQUEST, call->req.errmsg);
	return -1;
}

/* POST /api/delete {room, seq}: any message (the API acts as a moderator). */
void api_mod_delete(struct api_call *call)
{
	const struct api_req *q = &call->req;
	if (need(call, API_F_ROOM | API_F_SEQ) < 0)
		return;
	if (!q->seq) {
		api_fail(call, PROTO_EBAD_REQUEST, "seq must be an integer from 1 to 2^53-1");
		return;
	}
	struct moderation_caller c = defer(call);
	enum proto_err e = moderation_delete(call->srv, q->room, q->room_len, q->seq, NULL, &c);
	if (e != PROTO_OK)
		api_fail(call, e, e == PROTO_ENOT_FOUND ? MODERATION_NO_SUCH_MESSAGE : NULL);
}

/* POST /api/erase {user} */
void api_mod_erase(struct api_call *call)
{
	if (need(call, API_F_USER) < 0)
		return;
	struct moderation_caller c = defer(call);
	enum proto_err e = moderation_erase(call->srv, call->req.user, &c);
	if (e != PROTO_OK)
		api_fail(call, e, NULL);
}

/* POST /api/ban {user, seconds, reason?} */
void api_mod_ban(struct api_call *call)
{
	const struct api_req *q = &call->req;
	if (need(call, API_F_USER | API_F_SECONDS) < 0)
		return;
	struct moderation_caller c = defer(call);
	enum proto_err e = moderation_ban(call->srv, q->user, q->seconds,
					  (q->has & API_F_REASON) ? q->reason : NULL, &c);
	if (e != PROTO_OK)
		api_fail(call, e, e == PROTO_EBAD_REQUEST ?
			 "seconds must be 1 to 315360000 and reason at most 120 bytes" : NULL);
}

/* DELETE /api/ban {user} */
void api_mod_unban(struct api_call *call)
{
	if (need(call, API_F_USER) < 0)
		return;
	struct moderation_caller c = defer(call);
	enum proto_err e = moderation_unban(call->srv, call->req.user, &c);
	if (e != PROTO_OK)
		api_fail(call, e, NULL);
}
