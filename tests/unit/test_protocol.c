/* test_protocol.c - protocol decode/encode/validation, fed bytes directly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jscan.h"
#include "proto.h"
#include "utf8.h"

static enum proto_err dec(const char *s, struct proto_cmd *cmd)
{
	return proto_decode(s, strlen(s), cmd);
}

START_TEST(decode_publish_full)
{
	struct proto_cmd cmd;
	const char *in = "{\"type\":\"publish\",\"id\":4,\"room\":\"lobby\","
			 "\"data\": { \"text\" : \"hi there\", \"n\": 0.1 },\"echo\":false}";
	ck_assert_int_eq(dec(in, &cmd), PROTO_OK);
	ck_assert_int_eq(cmd.type, PROTO_PUBLISH);
	ck_assert_uint_eq(cmd.id, 4);
	ck_assert_uint_eq(cmd.room_len, 5);
	ck_assert(!cmd.echo);
	ck_assert(cmd.persist);
	ck_assert(!cmd.durable);
	struct pbuf b = { 0 };
	proto_data_text(&cmd, &b);
	/* forwarded byte for byte, white space outside strings dropped */
	ck_assert_int_eq((int)b.len, (int)strlen("{\"text\":\"hi there\",\"n\":0.1}"));
	ck_assert(memcmp(b.data, "{\"text\":\"hi there\",\"n\":0.1}", b.len) == 0);
	pbuf_free(&b);
	proto_cmd_clear(&cmd);
}
END_TEST

START_TEST(decode_publish_escaped_key)
{
	struct proto_cmd cmd;
	/* "d\u0061ta" is "data": keys are compared unescaped */
	const char *in = "{\"type\":\"publish\",\"room\":\"r\",\"d\\u0061ta\":[1, 2]}";
	ck_assert_int_eq(dec(in, &cmd), PROTO_OK);
	struct pbuf b = { 0 };
	proto_data_text(&cmd, &b);
	ck_assert(b.len == 5 && memcmp(b.data, "[1,2]", 5) == 0);
	pbuf_free(&b);
	/* and a room spelled with escapes is the same room */
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":\"lo\\u0062by\"}", &cmd), PROTO_OK);
	ck_assert_str_eq(cmd.room, "lobby");
}
END_TEST

START_TEST(decode_publish_idempotency_key)
{
	struct proto_cmd cmd;
	char in[256], k[70];
	ck_assert_int_eq(dec("{\"type\":\"publish\",\"room\":\"r\",\"data\":1}", &cmd), PROTO_OK);
	ck_assert_ptr_null(cmd.key);
	/* 64 bytes: accepted; 65: bad_request; escapes count decoded */
	memset(k, 'a', 65);
	k[64] = '\0';
	snprintf(in, sizeof(in), "{\"type\":\"publish\",\"room\":\"r\",\"data\":1,\"key\":\"%s\"}", k);
	ck_assert_int_eq(dec(in, &cmd), PROTO_OK);
	ck_assert_uint_eq(cmd.key_len, 64);
	ck_assert(memcmp(cmd.key, k, 64) == 0);
	k[64] = 'a';
	k[65] = '\0';
	snprintf(in, sizeof(in), "{\"type\":\"publish\",\"room\":\"r\",\"data\":1,\"key\":\"%s\"}", k);
	ck_assert_int_eq(dec(in, &cmd), PROTO_EBAD_REQUEST);
	ck_assert_ptr_nonnull(strstr(cmd.errmsg, "key"));
	ck_assert_int_eq(dec("{\"type\":\"publish\",\"room\":\"r\",\"data\":1,\"key\":\"\\u0041b\"}", &cmd), PROTO_OK);
	ck_assert_uint_eq(cmd.key_len, 2);
	ck_assert(memcmp(cmd.key, "Ab", 2) == 0);
	const char *bad[] = { "\"\"", "1", "null", "true", "[\"k\"]", "{}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(in, sizeof(in), "{\"type\":\"publish\",\"id\":3,\"room\":\"r\",\"data\":1,\"key\":%s}", bad[i]);
		ck_assert_int_eq(dec(in, &cmd), PROTO_EBAD_REQUEST);
		ck_assert_uint_eq(cmd.id, 3);
	}
}
END_TEST

START_TEST(json_scanner)
{
	struct jtop top;
	size_t pos;
	const char *why;
	const char *good[] = {
		"{}", " { \"a\" : [ 1 , -0.5e+3 , true , false , null , \"x\\u00e9\\n\" , { } ] } ",
		"{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":{\"a\":1,\"a\":2}}", /* nested duplicates pass */
		"{\"caf\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}",
	};
	const char *bad[] = {
		"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":01}", "{\"a\":1.}",
		"{\"a\":.5}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
		"{\"a\":\"x\ty\"}", "{\"a\":1}x", "{\"a\":[1 2]}", "{a:1}", "{\"a\":1}{}",
		"{\"a\":\"unterminated}", "{\"a\":NaN}", "{\"a\":-}", "{\"a\":+1}",
		"{\"a\":\"\xe6\x97\"}", "{\"a\":\"\xff\"}", "{\"a\":\xc3\xa9}", "{\"\xc0\xaf\":1}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(jscan_object(good[i], strlen(good[i]), 32, 4096, &top, &pos, &why) == JSCAN_OK,
			      "good[%zu] refused: %s", i, why);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum jscan_err e = jscan_object(bad[i], strlen(bad[i]), 32, 4096, &top, &pos, &why);
		ck_assert_msg(e == JSCAN_SYNTAX, "bad[%zu] \"%s\" gave %d", i, bad[i], e);
		/* jansson agrees */
		json_error_t je;
		json_t *j = json_loadb(bad[i], strlen(bad[i]), 0, &je);
		ck_assert_msg(j == NULL, "jansson accepts bad[%zu]", i);
	}
	ck_assert(jscan_object("[1]", 3, 32, 4096, &top, &pos, &why) == JSCAN_NOT_OBJECT);
	ck_assert(jscan_object("{\"a\":1,\"a\":2}", 13, 32, 4096, &top, &pos, &why) == JSCAN_DUPLICATE);
	/* integers */
	uint64_t x;
	struct jval v = { JT_NUMBER, "18446744073709551615", 20 };
	ck_assert(jscan_uint(&v, &x) == 0 && x == UINT64_MAX);
	v.p = "18446744073709551616";
	ck_assert(jscan_uint(&v, &x) < 0);
	v.p = "1.0"; v.n = 3;
	ck_assert(jscan_uint(&v, &x) < 0);
	v.p = "1e2"; v.n = 3;
	ck_assert(jscan_uint(&v, &x) < 0);
	/* strings */
	char out[8];
	size_t n;
	struct jval sv = { JT_STRING, "\"\\ud83d\\ude00\"", 14 };
	ck_assert(jscan_string(&sv, out, sizeof(out), &n) == 0 && n == 4 &&
		  !memcmp(out, "\xf0\x9f\x98\x80", 4));
	/* lone surrogates are not JSON a client can rely on: refused */
	const char *lone[] = { "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ud83d\\uce80\"}", "{\"a\":\"\\ude00\"}",
			       "{\"a\":\"\\ud83dx\"}" };
	for (size_t i = 0; i < 4; i++)
		ck_assert_msg(jscan_object(lone[i], strlen(lone[i]), 32, 4096, &top, &pos, &why) == JSCAN_SYNTAX,
			      "lone[%zu]", i);
}
END_TEST

START_TEST(decode_publish_data_null_and_missing)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":\"publish\",\"room\":\"r\",\"data\":null}", &cmd), PROTO_OK);
	proto_cmd_clear(&cmd);
	ck_assert_int_eq(dec("{\"type\":\"publish\",\"id\":9,\"room\":\"r\"}", &cmd),
			 PROTO_EBAD_REQUEST);
	ck_assert_uint_eq(cmd.id, 9);
}
END_TEST

START_TEST(decode_bad_json)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":", &cmd), PROTO_EBAD_JSON);
	ck_assert_int_eq(dec("[1,2]", &cmd), PROTO_EBAD_JSON);
	ck_assert_int_eq(dec("\"hello\"", &cmd), PROTO_EBAD_JSON);
	ck_assert_int_eq(dec("", &cmd), PROTO_EBAD_JSON);
	ck_assert_int_eq(dec("{\"type\":\"ping\",\"type\":\"ping\"}", &cmd), PROTO_EBAD_JSON);
	ck_assert_int_eq(proto_decode("{\"type\":\"ping\"}\0", 16, &cmd), PROTO_EBAD_JSON);
	ck_assert_int_eq(proto_decode("{\"type\":\"\xff\"}", 12, &cmd), PROTO_EBAD_JSON);
	ck_assert_uint_eq(cmd.id, 0);
}
END_TEST

START_TEST(decode_ids)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":\"ping\",\"id\":9007199254740991}", &cmd), PROTO_OK);
	ck_assert_uint_eq(cmd.id, 9007199254740991ULL);
	proto_cmd_clear(&cmd);
	const char *bad[] = { "0", "-1", "1.5", "\"7\"", "9007199254740992", "null", "true" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char in[128];
		snprintf(in, sizeof(in), "{\"type\":\"ping\",\"id\":%s}", bad[i]);
		ck_assert_int_eq(dec(in, &cmd), PROTO_EBAD_REQUEST);
		ck_assert_uint_eq(cmd.id, 0);
	}
}
END_TEST

START_TEST(decode_shape_limits)
{
	struct proto_cmd cmd;
	static char buf[70000];
	size_t n = 0;

	/* 32 levels of data nesting are fine (the frame object is one more) */
	n = (size_t)sprintf(buf, "{\"type\":\"publish\",\"room\":\"r\",\"data\":");
	for (int i = 0; i < PROTO_DEPTH_MAX - 1; i++)
		buf[n++] = '[';
	for (int i = 0; i < PROTO_DEPTH_MAX - 1; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	ck_assert_int_eq(proto_decode(buf, n, &cmd), PROTO_OK);
	proto_cmd_clear(&cmd);
	/* one more is refused before jansson builds anything */
	n = (size_t)sprintf(buf, "{\"type\":\"publish\",\"id\":3,\"room\":\"r\",\"data\":");
	for (int i = 0; i < PROTO_DEPTH_MAX; i++)
		buf[n++] = '[';
	for (int i = 0; i < PROTO_DEPTH_MAX; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	ck_assert_int_eq(proto_decode(buf, n, &cmd), PROTO_EBAD_REQUEST);
	ck_assert(strstr(cmd.errmsg, "nested") != NULL);
	/* brackets inside strings do not count */
	n = (size_t)sprintf(buf, "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"");
	for (int i = 0; i < 100; i++)
		buf[n++] = '[';
	n += (size_t)sprintf(buf + n, "\\\"\"}");
	ck_assert_int_eq(proto_decode(buf, n, &cmd), PROTO_OK);
	proto_cmd_clear(&cmd);
	/* too many keys */
	n = (size_t)sprintf(buf, "{\"type\":\"publish\",\"room\":\"r\",\"data\":{");
	for (int i = 0; i < PROTO_KEYS_MAX; i++)
		n += (size_t)sprintf(buf + n, "%s\"k%d\":1", i ? "," : "", i);
	n += (size_t)sprintf(buf + n, "}}");
	ck_assert_int_eq(proto_decode(buf, n, &cmd), PROTO_EBAD_REQUEST);
	ck_assert(strstr(cmd.errmsg, "keys") != NULL);
}
END_TEST

START_TEST(decode_types)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"id\":1}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":5,\"id\":1}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"fly\",\"id\":2}", &cmd), PROTO_EUNKNOWN_TYPE);
	ck_assert_uint_eq(cmd.id, 2);
	ck_assert(strstr(cmd.errmsg, "fly") != NULL);
}
END_TEST

START_TEST(decode_join_fields)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":\"a.b:c@d-e_f\",\"presence\":true,\"since\":0}",
			     &cmd), PROTO_OK);
	ck_assert(cmd.presence && cmd.has_since && cmd.since == 0);
	proto_cmd_clear(&cmd);
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":\"x\",\"presence\":1}", &cmd),
			 PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":\"x\",\"since\":-1}", &cmd),
			 PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":7}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":\"a b\"}", &cmd), PROTO_EBAD_ROOM);
	ck_assert_int_eq(dec("{\"type\":\"join\",\"room\":\"\"}", &cmd), PROTO_EBAD_ROOM);
}
END_TEST

START_TEST(decode_history_fields)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":\"history\",\"room\":\"r\"}", &cmd), PROTO_OK);
	ck_assert_uint_eq(cmd.limit, PROTO_HISTORY_DEFAULT);
	ck_assert(!cmd.has_before);
	proto_cmd_clear(&cmd);
	ck_assert_int_eq(dec("{\"type\":\"history\",\"room\":\"r\",\"before\":5,\"limit\":100}", &cmd),
			 PROTO_OK);
	ck_assert(cmd.has_before && cmd.before == 5 && cmd.limit == 100);
	proto_cmd_clear(&cmd);
	ck_assert_int_eq(dec("{\"type\":\"history\",\"room\":\"r\",\"limit\":101}", &cmd),
			 PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"history\",\"room\":\"r\",\"limit\":0}", &cmd),
			 PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"history\",\"room\":\"r\",\"before\":0}", &cmd),
			 PROTO_EBAD_REQUEST);
}
END_TEST

START_TEST(validate_rooms)
{
	char big[130];
	memset(big, 'a', sizeof(big));
	ck_assert(proto_room_valid(big, 128));
	ck_assert(!proto_room_valid(big, 129));
	ck_assert(!proto_room_valid("", 0));
	ck_assert(!proto_room_valid("a/b", 3));
	ck_assert(!proto_room_valid("caf\xc3\xa9", 5));
	ck_assert(!proto_room_valid("a\0b", 3));
	ck_assert(proto_room_valid("team-42:general@x.y_z", 21));
}
END_TEST

START_TEST(validate_names)
{
	ck_assert(proto_name_valid("alice", 5));
	ck_assert(!proto_name_valid("", 0));
	ck_assert(!proto_name_valid("a\tb", 3));
	ck_assert(!proto_name_valid("a\x7f", 2));
	ck_assert(!proto_name_valid("a\xc2\x85", 3));           /* U+0085, a C1 control */
	ck_assert(!proto_name_valid("\xc0\xaf", 2));            /* overlong */
	ck_assert(!proto_name_valid("\xed\xa0\x80", 3));        /* surrogate */
	ck_assert(!proto_name_valid("\xe2\x82", 2));            /* truncated */
	/* 32 three-byte characters are fine, 33 are not */
	char s[34 * 3];
	for (int i = 0; i < 33; i++)
		memcpy(s + 3 * i, "\xe2\x82\xac", 3);
	ck_assert(proto_name_valid(s, 32 * 3));
	ck_assert(!proto_name_valid(s, 33 * 3));
}
END_TEST

static int utf8_ok(const char *s, size_t n, size_t split)
{
	struct utf8_state st = { 0 };
	if (utf8_feed(&st, (const unsigned char *)s, split) < 0)
		return 0;
	if (utf8_feed(&st, (const unsigned char *)s + split, n - split) < 0)
		return 0;
	return utf8_end(&st) == 0;
}

START_TEST(utf8_incremental)
{
	const char *good = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
	size_t n = strlen(good);
	for (size_t split = 0; split <= n; split++)
		ck_assert_msg(utf8_ok(good, n, split), "split at %zu", split);
	ck_assert(!utf8_ok("\xff", 1, 0));
	ck_assert(!utf8_ok("\xc0\xaf", 2, 1));          /* overlong */
	ck_assert(!utf8_ok("\xe0\x80\xaf", 3, 1));      /* overlong */
	ck_assert(!utf8_ok("\xed\xa0\x80", 3, 2));      /* surrogate */
	ck_assert(!utf8_ok("\xf4\x90\x80\x80", 4, 2));  /* > U+10FFFF */
	ck_assert(!utf8_ok("\xe6\x97", 2, 1));          /* cut off at the end */
	ck_assert(!utf8_ok("\x80", 1, 1));              /* lone continuation */
}
END_TEST

START_TEST(decode_hello_names)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":\"hello\",\"name\":\"al\\u0000ice\"}", &cmd), PROTO_EBAD_NAME);
	ck_assert_int_eq(dec("{\"type\":\"ping\\u0000x\"}", &cmd), PROTO_EUNKNOWN_TYPE);
	/* a 20-digit integer is valid JSON: in data it passes, as an id it is a bad_request */
	ck_assert_int_eq(dec("{\"type\":\"ping\",\"id\":99999999999999999999}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"publish\",\"room\":\"r\",\"data\":99999999999999999999}", &cmd), PROTO_OK);
	ck_assert(cmd.data_raw_len == 20);
	proto_cmd_clear(&cmd);
	ck_assert_int_eq(dec("{\"type\":\"hello\",\"name\":\"a\\u0001\"}", &cmd), PROTO_EBAD_NAME);
	ck_assert_int_eq(dec("{\"type\":\"hello\",\"name\":5}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"hello\",\"name\":\"b\\u00f8b\"}", &cmd), PROTO_OK);
	ck_assert_uint_eq(cmd.name_len, 4);
	proto_cmd_clear(&cmd);
}
END_TEST

START_TEST(decode_refresh)
{
	struct proto_cmd cmd;
	ck_assert_int_eq(dec("{\"type\":\"refresh\",\"id\":3,\"token\":\"a.b.c\"}", &cmd), PROTO_OK);
	ck_assert_int_eq(cmd.type, PROTO_REFRESH);
	ck_assert_uint_eq(cmd.id, 3);
	ck_assert_uint_eq(cmd.token_len, 5);
	ck_assert(!memcmp(cmd.token, "a.b.c", 5));
	proto_cmd_clear(&cmd);
	ck_assert_int_eq(dec("{\"type\":\"refresh\",\"id\":3}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"refresh\",\"token\":7}", &cmd), PROTO_EBAD_REQUEST);
	ck_assert_int_eq(dec("{\"type\":\"refresh\",\"token\":\"a\\u002eb\"}", &cmd), PROTO_EBAD_REQUEST);
	/* PROTO_TOKEN_MAX bytes pass, one more does not */
	static char big[PROTO_TOKEN_MAX + 64];
	for (int extra = 0; extra <= 1; extra++) {
		int n = snprintf(big, sizeof(big), "{\"type\":\"refresh\",\"token\":\"");
		memset(big + n, 'x', PROTO_TOKEN_MAX + (size_t)extra);
		n += PROTO_TOKEN_MAX + extra;
		memcpy(big + n, "\"}", 3);
		ck_assert_int_eq(dec(big, &cmd), extra ? PROTO_EBAD_REQUEST : PROTO_OK);
		proto_cmd_clear(&cmd);
	}
}
END_TEST

START_TEST(encode_frames)
{
	struct pbuf b = { 0 };
	proto_enc_failure(&b, 4, PROTO_ENOT_MEMBER, "join \"first\"");
	pbuf_addc(&b, 0);
	ck_assert_str_eq(b.data, "{\"type\":\"reply\",\"id\":4,\"ok\":false,\"error\":"
				 "{\"code\":\"not_member\",\"message\":\"join \\\"first\\\"\"}}");
	pbuf_reset(&b);
	proto_enc_failure(&b, 0, PROTO_EBAD_JSON, NULL);
	pbuf_addc(&b, 0);
	ck_assert(strstr(b.data, "{\"type\":\"error\",\"error\":{\"code\":\"bad_json\"") == b.data);
	pbuf_reset(&b);
	proto_enc_message(&b, "lobby", 5, 131, 1764158400123LL, "a\"b\n", 4, "{\"x\":1}", 7);
	pbuf_addc(&b, 0);
	ck_assert_str_eq(b.data, "{\"type\":\"message\",\"room\":\"lobby\",\"seq\":131,"
				 "\"ts\":1764158400123,\"from\":\"a\\\"b\\n\",\"data\":{\"x\":1}}");
	pbuf_reset(&b);
	proto_enc_message(&b, "r", 1, 0, 5, "x", 1, "null", 4);
	pbuf_addc(&b, 0);
	ck_assert(strstr(b.data, "\"seq\"") == NULL);
	/* every encoded frame is valid JSON */
	json_error_t e;
	json_t *j = json_loads(b.data, 0, &e);
	ck_assert_ptr_nonnull(j);
	json_decref(j);
	pbuf_free(&b);
}
END_TEST

START_TEST(error_table_documented)
{
	/* Every code of the table appears in docs/protocol.md's error table. */
	FILE *f = fopen(DOCS_DIR "/protocol.md", "r");
	ck_assert_msg(f != NULL, "docs/protocol.md is missing");
	static char doc[1 << 20];
	size_t n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = 0;
	fclose(f);
	for (int e = 1; e < PROTO_ERR_COUNT; e++) {
		char needle[64];
		snprintf(needle, sizeof(needle), "| `%s` |", proto_err_code((enum proto_err)e));
		ck_assert_msg(strstr(doc, needle) != NULL, "%s is not documented", needle);
	}
}
END_TEST

/*
 * The eight-bytes-at-a-time paths (jscan's strings and white space, utf8_feed,
 * pbuf_add_jstr, pbuf_add_json_compact) against what the byte-at-a-time rules
 * say, with the byte that stops a run at every offset of a 24-byte string:
 * before, inside and after each 8-byte step, and in the tail of fewer than 8.
 */
START_TEST(fast_paths_at_every_offset)
{
	const char *stops[] = { "\"", "\\\\", "\\n", "\x01", "\xc3\xa9", "\xff", "\xe2\x82", " " };
	for (size_t si = 0; si < sizeof(stops) / sizeof(stops[0]); si++) {
		for (size_t at = 0; at <= 24; at++) {
			char str[64], doc[128];
			size_t sl = strlen(stops[si]), k = 0;
			for (size_t i = 0; i < at; i++)
				str[k++] = (char)('a' + i % 26);
			memcpy(str + k, stops[si], sl);
			k += sl;
			for (size_t i = at; i < 24; i++)
				str[k++] = (char)('A' + i % 26);
			str[k] = 0;
			int n = snprintf(doc, sizeof(doc), "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"%s\"}", str);
			/* the scanner agrees with jansson on the whole frame */
			struct jtop top;
			size_t pos;
			const char *why;
			json_error_t je;
			json_t *j = json_loadb(doc, (size_t)n, 0, &je);
			enum jscan_err e = jscan_object(doc, (size_t)n, 32, 4096, &top, &pos, &why);
			ck_assert_msg((e == JSCAN_OK) == (j != NULL), "stop %zu at %zu: jscan %d, jansson %s",
				      si, at, e, j ? "ok" : je.text);
			/* utf8_feed: the text is valid UTF-8 unless the stop is 0xff or a cut sequence */
			struct utf8_state u = { 0 };
			int ok8 = utf8_feed(&u, (const unsigned char *)str, k) == 0 && utf8_end(&u) == 0;
			ck_assert_int_eq(ok8, si != 5 && si != 6);
			if (j) {
				/* the string encoded back: jansson reads what pbuf_add_jstr wrote */
				const char *dv = json_string_value(json_object_get(j, "data"));
				size_t dl = json_string_length(json_object_get(j, "data"));
				struct pbuf b = { 0 };
				pbuf_add_jstr(&b, dv, dl);
				json_t *back = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
				ck_assert_msg(back && json_string_length(back) == dl &&
					      !memcmp(json_string_value(back), dv, dl), "jstr stop %zu at %zu", si, at);
				json_decref(back);
				pbuf_free(&b);
				json_decref(j);
			}
			/* white space outside strings, a run of `at` bytes: dropped; inside kept */
			char sp[160], want[160];
			k = 0;
			size_t w = 0;
			sp[k++] = '[';
			want[w++] = '[';
			for (size_t i = 0; i < at; i++)
				sp[k++] = i % 5 == 4 ? '\n' : ' ';
			memcpy(sp + k, "\"a  b\\\" c\"", 10);
			memcpy(want + w, "\"a  b\\\" c\"", 10);
			k += 10;
			w += 10;
			for (size_t i = 0; i < at; i++)
				sp[k++] = ' ';
			sp[k++] = ',';
			want[w++] = ',';
			sp[k++] = '1';
			want[w++] = '1';
			sp[k++] = ']';
			want[w++] = ']';
			struct pbuf b = { 0 };
			pbuf_add_json_compact(&b, sp, k);
			ck_assert_msg(b.len == w && !memcmp(b.data, want, w), "compact with %zu spaces", at);
			pbuf_free(&b);
		}
	}
}
END_TEST

/* A publish's data is copied as it is only when the scan skipped no white
 * space inside it; white space around it or inside its strings does not
 * count. Field names are found whatever their length or spelling. */
START_TEST(decode_data_spacing_and_field_names)
{
	struct proto_cmd cmd;
	struct pbuf b = { 0 };
	const struct { const char *in, *data; int gaps; } cases[] = {
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"a\":\"x  y\",\"b\":[1,2]}}",
		  "{\"a\":\"x  y\",\"b\":[1,2]}", 0 },
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\" :  {\"a\":1}  }", "{\"a\":1}", 0 },
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"a\":[1, 2]}}", "{\"a\":[1,2]}", 1 },
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"t\":                1234}}", "{\"t\":1234}",
		  1 },
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"  \"}", "\"  \"", 0 },
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":[\n]}", "[]", 1 },
		/* at the edges of what is kept: 4 runs in data, 5, and runs before it
		 * that use up the scan's JSCAN_GAPS places */
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":[ 1, 2, 3, 4]}", "[1,2,3,4]", 4 },
		{ "{\"type\":\"publish\",\"room\":\"r\",\"data\":[ 1, 2, 3, 4, 5]}", "[1,2,3,4,5]", -1 },
		{ "{ \"type\" : \"publish\" , \"room\" : \"r\" ,\"data\":[ 1, 2]}", "[1,2]", -1 },
		{ "{ \"type\" : \"publish\" , \"room\":\"r\",\"data\":[ 1, 2]}", "[1,2]", 2 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(dec(cases[i].in, &cmd), PROTO_OK);
		ck_assert_msg(cmd.data_gaps == cases[i].gaps, "case %zu: %d gaps", i, cmd.data_gaps);
		pbuf_reset(&b);
		proto_data_text(&cmd, &b);
		ck_assert_msg(b.len == strlen(cases[i].data) && !memcmp(b.data, cases[i].data, b.len),
			      "case %zu: %.*s", i, (int)b.len, b.data);
	}
	pbuf_free(&b);

	/* names of 1 to 7 bytes are matched as one word, longer ones by strcmp:
	 * "persist" (7) and "presence" (8), at both sides of the line */
	struct jtop top;
	size_t pos;
	const char *why;
	const char *doc = "{\"persis\":1,\"persist\":2,\"persistx\":3,\"presence\":4,\"p\":5,"
			  "\"abcdefghijklmnopqrstuvw\":6,\"abcdefghijklmnopqrstuvwx\":7,\"\\u0070q\":8}";
	ck_assert(jscan_object(doc, strlen(doc), 32, 4096, &top, &pos, &why) == JSCAN_OK);
	const struct { const char *k; const char *v; } want[] = {
		{ "persis", "1" }, { "persist", "2" }, { "persistx", "3" }, { "presence", "4" },
		{ "p", "5" }, { "abcdefghijklmnopqrstuvw", "6" }, { "pq", "8" },
		{ "pers", NULL }, { "persistxy", NULL }, { "abcdefghijklmnopqrstuvwx", NULL }, { "q", NULL },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct jval *v = jscan_get(&top, want[i].k);
		if (!want[i].v)
			ck_assert_msg(v == NULL, "%s found", want[i].k);
		else
			ck_assert_msg(v && v->n == 1 && v->p[0] == want[i].v[0], "%s", want[i].k);
	}
	/* a duplicate spelled with an escape is still a duplicate, short or long */
	const char *dups[] = { "{\"type\":1,\"t\\u0079pe\":2}", "{\"presence\":1,\"pr\\u0065sence\":2}",
			       "{\"p\":1,\"\\u0070\":2}" };
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(jscan_object(dups[i], strlen(dups[i]), 32, 4096, &top, &pos, &why) ==
			      JSCAN_DUPLICATE, "dups[%zu]", i);
	/* numbers, two digits at a time */
	const uint64_t nums[] = { 0, 9, 10, 99, 100, 101, 999, 1000, 1764331200123ULL, UINT64_MAX };
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		char want_s[32];
		int n = snprintf(want_s, sizeof(want_s), "%llu", (unsigned long long)nums[i]);
		pbuf_reset(&b);
		pbuf_add_u64(&b, nums[i]);
		ck_assert(b.len == (size_t)n && !memcmp(b.data, want_s, b.len));
	}
	pbuf_reset(&b);
	pbuf_add_i64(&b, INT64_MIN);
	ck_assert(b.len == 20 && !memcmp(b.data, "-9223372036854775808", 20));
	pbuf_free(&b);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc = tcase_create("decode");
	tcase_add_test(tc, decode_publish_full);
	tcase_add_test(tc, decode_publish_escaped_key);
	tcase_add_test(tc, json_scanner);
	tcase_add_test(tc, fast_paths_at_every_offset);
	tcase_add_test(tc, decode_data_spacing_and_field_names);
	tcase_add_test(tc, decode_publish_data_null_and_missing);
	tcase_add_test(tc, decode_bad_json);
	tcase_add_test(tc, decode_ids);
	tcase_add_test(tc, decode_types);
	tcase_add_test(tc, decode_shape_limits);
	tcase_add_test(tc, decode_join_fields);
	tcase_add_test(tc, decode_publish_idempotency_key);
	tcase_add_test(tc, decode_history_fields);
	tcase_add_test(tc, decode_hello_names);
	tcase_add_test(tc, decode_refresh);
	suite_add_tcase(s, tc);
	tc = tcase_create("validate");
	tcase_add_test(tc, validate_rooms);
	tcase_add_test(tc, validate_names);
	tcase_add_test(tc, utf8_incremental);
	suite_add_tcase(s, tc);
	tc = tcase_create("encode");
	tcase_add_test(tc, encode_frames);
	tcase_add_test(tc, error_table_documented);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
