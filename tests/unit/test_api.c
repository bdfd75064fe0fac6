/* test_api.c - the HTTP API's keys file (api_keys.c) and request decoding
 * (protocol/apireq.c): the cases at their limits. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "apireq.h"

static char path[64];

static void write_file(const char *text)
{
	strcpy(path, "/tmp/parley-apikeys-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
}

static int load(const char *text, struct api_keys **k, char *err, size_t n)
{
	write_file(text);
	int rc = api_keys_load(k, path, err, n);
	unlink(path);
	return rc;
}

START_TEST(keys_good_and_rotation)
{
	struct api_keys *k;
	char err[256];

	ck_assert_int_eq(load("# comment\n\nold 0123456789abcdef  # trailing\n"
			      "  new\tfedcba9876543210fedcba\r\n", &k, err, sizeof(err)), 0);
	ck_assert_int_eq(api_keys_count(k), 2);
	ck_assert_str_eq(api_keys_check(k, "0123456789abcdef", 16), "old");
	ck_assert_str_eq(api_keys_check(k, "fedcba9876543210fedcba", 22), "new");
	ck_assert_ptr_null(api_keys_check(k, "0123456789abcde", 15));     /* a prefix */
	ck_assert_ptr_null(api_keys_check(k, "0123456789abcdef0", 17));   /* longer */
	ck_assert_ptr_null(api_keys_check(k, "0123456789abcdeF", 16));    /* case */
	ck_assert_ptr_null(api_keys_check(k, "", 0));
	char big[300];
	memset(big, 'a', sizeof(big));
	ck_assert_ptr_null(api_keys_check(k, big, sizeof(big)));
	api_keys_free(&k);
	ck_assert_ptr_null(k);
}
END_TEST

START_TEST(keys_bad_files)
{
	struct api_keys *k;
	char err[256];

	ck_assert_int_eq(load("", &k, err, sizeof(err)), 0);   /* empty: no key, API off */
	ck_assert_int_eq(api_keys_count(k), 0);
	api_keys_free(&k);
	ck_assert_int_eq(load("short 0123456789abcde\n", &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line 1"));
	ck_assert_int_eq(load("a 0123456789abcdef\na 0123456789abcdeg\n", &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	ck_assert_int_eq(load("onlyname\n", &k, err, sizeof(err)), -1);
	ck_assert_int_eq(load("a b c\n", &k, err, sizeof(err)), -1);
	ck_assert_int_eq(load("abcdefghijklmnopqrstuvwxyz0123456 0123456789abcdef\n", &k, err,
			      sizeof(err)), -1);                      /* name 33 chars */
	ck_assert_ptr_null(k);
	ck_assert_int_eq(api_keys_load(&k, "/nonexistent/keys", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

START_TEST(body_fields)
{
	struct api_req r;
	const char *b = "{\"room\":\"a\",\"rooms\":[\"x\", \"y\\u0041\"],\"data\":{\"k\":[1, 2]},"
			"\"from\":\"bot\",\"persist\":false,\"key\":\"k1\",\"user\":\"ann\","
			"\"code\":4999,\"reason\":\"bye\",\"seq\":5,\"seconds\":0,\"presence\":true,\"x\":1}";

	ck_assert_int_eq(api_req_body(b, strlen(b), &r), PROTO_OK);
	ck_assert_str_eq(r.room, "a");
	ck_assert_uint_eq(r.nrooms, 2);
	ck_assert_str_eq(r.rooms[1].name, "yA");
	ck_assert_int_eq((int)r.data_raw_len, 12);
	ck_assert(!r.persist && r.presence);
	ck_assert_uint_eq(r.code, 4999);
	ck_assert_uint_eq(r.seq, 5);
	ck_assert_int_eq(api_req_need(&r, API_F_ROOM | API_F_SECONDS | API_F_DATA), PROTO_OK);
	api_req_clear(&r);

	ck_assert_int_eq(api_req_body("{}", 2, &r), PROTO_OK);
	ck_assert_int_eq(api_req_need(&r, API_F_USER), PROTO_EBAD_REQUEST);
	ck_assert_str_eq(r.errmsg, "user is required");
	api_req_clear(&r);

	static const struct { const char *body; enum proto_err e; } bad[] = {
		{ "", PROTO_EBAD_JSON }, { "[]", PROTO_EBAD_JSON }, { "{\"room\":1}", PROTO_EBAD_REQUEST },
		{ "{\"room\":\"a b\"}", PROTO_EBAD_ROOM }, { "{\"rooms\":[]}", PROTO_EBAD_REQUEST },
		{ "{\"rooms\":[\"a\",2]}", PROTO_EBAD_REQUEST }, { "{\"rooms\":[\"a\",\"\"]}", PROTO_EBAD_ROOM },
		{ "{\"code\":3999}", PROTO_EBAD_REQUEST }, { "{\"code\":5000}", PROTO_EBAD_REQUEST },
		{ "{\"key\":\"\"}", PROTO_EBAD_REQUEST }, { "{\"seq\":0}", PROTO_EBAD_REQUEST },
		{ "{\"from\":\"\"}", PROTO_EBAD_NAME }, { "{\"persist\":1}", PROTO_EBAD_REQUEST },
		{ "{\"reason\":\"a\\u0000b\"}", PROTO_EBAD_REQUEST },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(api_req_body(bad[i].body, strlen(bad[i].body), &r) == bad[i].e,
			      "%s: %s", bad[i].body, r.errmsg);
		api_req_clear(&r);
	}
}
END_TEST

START_TEST(body_rooms_limit)
{
	struct api_req r;
	size_t cap = 16 + 1001 * 8;
	char *b = malloc(cap);
	size_t n = (size_t)sprintf(b, "{\"rooms\":[");
	for (int i = 0; i < 1000; i++)
		n += (size_t)sprintf(b + n, "%s\"r%d\"", i ? "," : "", i);
	strcpy(b + n, "]}");
	ck_assert_int_eq(api_req_body(b, strlen(b), &r), PROTO_OK);
	ck_assert_uint_eq(r.nrooms, 1000);
	api_req_clear(&r);
	strcpy(b + n, ",\"one-more\"]}");
	ck_assert_int_eq(api_req_body(b, strlen(b), &r), PROTO_EBAD_REQUEST);
	api_req_clear(&r);
	free(b);
}
END_TEST

START_TEST(query)
{
	struct api_req r;

	api_req_init(&r);
	const char *q = "room=a%3Ab&before=10&limit=100&prefix=t-&cursor=t-3&other=%zz";
	ck_assert_int_eq(api_req_query(q, strlen(q), 100, &r), PROTO_OK);
	ck_assert_str_eq(r.room, "a:b");
	ck_assert_uint_eq(r.before, 10);
	ck_assert_uint_eq(r.limit, 100);
	ck_assert_str_eq(r.prefix, "t-");
	ck_assert_str_eq(r.cursor, "t-3");
	static const char *const bad[] = { "limit=101", "limit=0", "limit=", "before=0", "before=x",
					   "room=", "room=a%2", "room=a%20b", "prefix=a%20" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		api_req_init(&r);
		ck_assert_msg(api_req_query(bad[i], strlen(bad[i]), 100, &r) != PROTO_OK, "%s", bad[i]);
	}
	api_req_init(&r);
	ck_assert_int_eq(api_req_query(NULL, 0, 100, &r), PROTO_OK);
	ck_assert_uint_eq(r.has, 0);
}
END_TEST

static void out(void *arg, const char *p, size_t n)
{
	strncat(arg, p, n);
}

START_TEST(chunked)
{
	struct api_chunked d = { 0 };
	char got[64] = "";
	size_t used;
	const char *in = "3\r\nabc\r\nA;x=y\r\n0123456789\r\n0\r\nT: 1\r\n\r\nNEXT";

	/* byte by byte */
	enum api_chunk_rc rc = API_CHUNK_MORE;
	size_t i;
	for (i = 0; rc == API_CHUNK_MORE && in[i]; i++)
		rc = api_chunked_feed(&d, in + i, 1, &used, out, got);
	ck_assert_int_eq(rc, API_CHUNK_DONE);
	ck_assert_str_eq(got, "abc0123456789");
	ck_assert_str_eq(in + i, "NEXT");
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(api_chunked_feed(&d, "G\r\n", 3, &used, out, got), API_CHUNK_BAD);
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(api_chunked_feed(&d, "123456789\r\n", 11, &used, out, got), API_CHUNK_BAD);
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(api_chunked_feed(&d, "1\r\nab\r\n", 7, &used, out, got), API_CHUNK_BAD);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");
	tcase_add_test(tc, keys_good_and_rotation);
	tcase_add_test(tc, keys_bad_files);
	tcase_add_test(tc, body_fields);
	tcase_add_test(tc, body_rooms_limit);
	tcase_add_test(tc, query);
	tcase_add_test(tc, chunked);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
