/* encode.c - server frame encoders (proto.h). */
#include "proto.h"

#include <string.h>

#define LIT(b, s) pbuf_add((b), (s), sizeof(s) - 1)

void proto_enc_reply_ok_open(struct pbuf *b, uint64_t id)
{
	LIT(b, "{\"type\":\"reply\",\"id\":");
	pbuf_add_u64(b, id);
	LIT(b, ",\"ok\":true,\"data\":");
}

void proto_enc_close(struct pbuf *b)
{
	pbuf_addc(b, '}');
}

void proto_enc_failure(struct pbuf *b, uint64_t id, enum proto_err e, const char *msg)
{
	if (!msg)
		msg = proto_err_message(e);
	if (id) {
		LIT(b, "{\"type\":\"reply\",\"id\":");
		pbuf_add_u64(b, id);
		LIT(b, ",\"ok\":false,\"error\":{\"code\":\"");
	} else {
		LIT(b, "{\"type\":\"error\",\"error\":{\"code\":\"");
	}
	pbuf_adds(b, proto_err_code(e));
	LIT(b, "\",\"message\":");
	pbuf_add_jstr(b, msg, strlen(msg));
	LIT(b, "}}");
}

void proto_enc_message(struct pbuf *b, const char *room, size_t room_len,
		       uint64_t seq, int64_t ts, const char *from, size_t from_len,
		       const char *data, size_t data_len)
{
	/* Room names need no escaping (validate.c allows no quote or
	 * backslash), but escaping them costs little and keeps this safe for
	 * any caller. */
	LIT(b, "{\"type\":\"message\",\"room\":");
	pbuf_add_jstr(b, room, room_len);
	if (!data_len) { /* a tombstone: stored data is JSON, never empty */
		LIT(b, ",\"seq\":");
		pbuf_add_u64(b, seq);
		LIT(b, ",\"deleted\":true}");
		return;
	}
	if (seq) {
		LIT(b, ",\"seq\":");
		pbuf_add_u64(b, seq);
	}
	LIT(b, ",\"ts\":");
	pbuf_add_i64(b, ts);
	LIT(b, ",\"from\":");
	pbuf_add_jstr(b, from, from_len);
	LIT(b, ",\"data\":");
	pbuf_add(b, data, data_len);
	pbuf_addc(b, '}');
}

void proto_enc_deleted(struct pbuf *b, const char *room, size_t room_len, uint64_t seq)
{
	LIT(b, "{\"type\":\"deleted\",\"room\":");
	pbuf_add_jstr(b, room, room_len);
	LIT(b, ",\"seq\":");
	pbuf_add_u64(b, seq);
	pbuf_addc(b, '}');
}
