/*
 * fuzz_token.c - libFuzzer harness for token verification: token_verify()
 * (server/token.c) on tokens built from the input, then the room rules on
 * the claims it returns.
 *
 * The first input byte picks how the rest becomes a token, so the fuzzer
 * reaches past the signature check (it cannot forge HMACs):
 *   byte % 4 == 0  the rest is the token, as is;
 *   byte % 4 == 1  the rest is "header.payload" (base64url segments): the
 *                  harness appends a valid signature under the current secret;
 *   byte % 4 == 2  the rest is "HEADER-JSON\0PAYLOAD-JSON" (no NUL: the rest is
 *                  the payload under {"alg":"HS256"}): encoded and signed;
 *   byte % 4 == 3  as 2, signed with the previous secret (rotation).
 *
 * Invariants (abort() on violation), checked against independent code
 * (OpenSSL's base64 and HMAC, jansson), as fuzz_decode checks jscan:
 *  - a failure returns one of the TOKEN_E* codes, a static reason, and an
 *    empty struct token_claims;
 *  - a success means: three dot-separated parts; the third is the
 *    HMAC-SHA256 of the first two under one of the two secrets; the header
 *    says alg HS256; the payload is a JSON object whose sub is the claims'
 *    sub, a valid user name; exp and nbf hold at `now` within the leeway;
 *    the room patterns respect their limits; and publishing a room is never
 *    allowed where joining it is not.
 *
 * Also built without libFuzzer by tests/unit/meson.build (with replay.c) to
 * replay the seed corpus as a regression test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proto.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_token: invariant failed: %s (line %d)\n", #cond, __LINE__); \
	abort(); } } while (0)

#define NOW     1764158400   /* 2025-11-26T12:00:00Z */
#define LEEWAY  30

static const char SECRET_A[] = "fuzz-secret-current-0123456789abcdefghijklmnop";
static const char SECRET_B[] = "fuzz-secret-previous-0123456789abcdefghijklmno";
static struct token_keys *keys;

static void load_keys(void)
{
	char path[] = "/tmp/parley-fuzz-token-XXXXXX", err[256];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK(dprintf(fd, "%s\n%s\n", SECRET_A, SECRET_B) > 0);
	close(fd);
	CHECK(token_load(&keys, path, err, sizeof(err)) == 0);
	unlink(path);
	CHECK(token_secret_count(keys) == 2);
}

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	size_t m = 0;

	for (int i = 0; i < len; i++) {
		char ch = out[i];
		if (ch == '=')
			break;
		out[m++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
	}
	out[m] = '\0';
	return m;
}

/* OpenSSL's decoder on a base64url segment; -1 if it is not one. */
static long unb64url(const char *s, size_t n, unsigned char *out)
{
	char *t = malloc(n + 4);
	size_t m = 0;
	long len;

	CHECK(t);
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '+' || ch == '/' || ch == '=') {
			free(t);
			return -1;
		}
		t[m++] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
	}
	if (m % 4 == 1) {
		free(t);
		return -1;
	}
	size_t pad = (4 - m % 4) % 4;
	for (size_t i = 0; i < pad; i++)
		t[m++] = '=';
	len = m ? EVP_DecodeBlock(out, (unsigned char *)t, (int)m) : 0;
	free(t);
	return len < 0 ? -1 : len - (long)pad;
}

static size_t sign(const char *secret, const char *msg, size_t n, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;

	CHECK(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, n, mac, &ml));
	return b64url(mac, ml, out);
}

/* Builds the token for the mode; returns its length (tok holds 3x input). */
static size_t build(unsigned mode, const uint8_t *in, size_t n, char *tok)
{
	size_t len = 0;

	if (mode == 0) {
		memcpy(tok, in, n);
		return n;
	}
	if (mode == 1) {
		memcpy(tok, in, n);
		len = n;
	} else {
		const uint8_t *nul = memchr(in, 0, n);
		const uint8_t *h = (const uint8_t *)"{\"alg\":\"HS256\"}", *p = in;
		size_t hn = 15, pn = n;
		if (nul) {
			h = in;
			hn = (size_t)(nul - in);
			p = nul + 1;
			pn = n - hn - 1;
		}
		len = b64url(h, hn, tok);
		tok[len++] = '.';
		len += b64url(p, pn, tok + len);
	}
	tok[len++] = '.';
	len += sign(mode == 3 ? SECRET_B : SECRET_A, tok, len - 1, tok + len);
	return len;
}

static void check_success(const char *tok, size_t len, const struct token_claims *c)
{
	const char *d1 = memchr(tok, '.', len);
	CHECK(d1);
	const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	CHECK(d2);
	CHECK(!memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)));

	/* the signature: an HMAC of the first two parts under one secret */
	char a[64], b[64];
	size_t sl = len - (size_t)(d2 + 1 - tok);
	size_t al = sign(SECRET_A, tok, (size_t)(d2 - tok), a);
	size_t bl = sign(SECRET_B, tok, (size_t)(d2 - tok), b);
	CHECK((sl == al && !memcmp(d2 + 1, a, al)) || (sl == bl && !memcmp(d2 + 1, b, bl)));

	unsigned char *buf = malloc(len + 4);
	CHECK(buf);
	long hl = unb64url(tok, (size_t)(d1 - tok), buf);
	CHECK(hl > 0);
	json_t *h = json_loadb((const char *)buf, (size_t)hl, 0, NULL);
	CHECK(json_is_object(h));
	CHECK(json_is_string(json_object_get(h, "alg")));
	CHECK(!strcmp(json_string_value(json_object_get(h, "alg")), "HS256"));
	json_decref(h);

	long pl = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), buf);
	CHECK(pl > 0);
	json_t *p = json_loadb((const char *)buf, (size_t)pl, 0, NULL);
	CHECK(json_is_object(p));
	json_t *sub = json_object_get(p, "sub");
	CHECK(json_is_string(sub));
	CHECK(json_string_length(sub) == strlen(c->sub));
	CHECK(!memcmp(json_string_value(sub), c->sub, strlen(c->sub)));
	CHECK(json_is_number(json_object_get(p, "exp")));
	json_decref(p);
	free(buf);

	CHECK(proto_name_valid(c->sub, strlen(c->sub)));
	CHECK(NOW < c->exp + LEEWAY);
	CHECK(c->nbf <= NOW + LEEWAY);
	CHECK(c->has_rooms || (c->njoin == 0 && c->npublish == 0));
	CHECK(c->njoin + c->npublish <= TOKEN_PATTERNS_MAX);
	for (size_t i = 0; i < c->njoin; i++)
		CHECK(c->join[i] && strlen(c->join[i]) <= TOKEN_PATTERN_MAX);
	for (size_t i = 0; i < c->npublish; i++)
		CHECK(c->publish[i] && strlen(c->publish[i]) <= TOKEN_PATTERN_MAX);
}

/* Publishing is never allowed where joining is not, for a few rooms the
 * claims can name (their own patterns, the user's private rooms, DMs). */
static void check_room(const struct token_claims *c, const char *r)
{
	size_t n = strlen(r);

	if (!proto_room_valid(r, n))
		return;
	int j = token_may_join(c, NULL, r, n), p = token_may_publish(c, NULL, r, n);
	CHECK(j == 0 || j == 1);
	CHECK(p == 0 || p == 1);
	CHECK(!p || j);
}

static void check_rules(const struct token_claims *c)
{
	static const char *const fixed[] = { "lobby", "a", "@dm:a:b", "x:y", "@" };
	char room[PROTO_ROOM_MAX + 8];

	for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
		check_room(c, fixed[i]);
	for (size_t i = 0; i < c->njoin; i++)
		check_room(c, c->join[i]);
	for (size_t i = 0; i < c->npublish; i++)
		check_room(c, c->publish[i]);
	snprintf(room, sizeof(room), "@%s", c->sub);
	check_room(c, room);
	snprintf(room, sizeof(room), "@dm:%s:zz", c->sub);
	check_room(c, room);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!keys)
		load_keys();
	if (size < 1 || size > 8192)
		return 0;

	char *tok = malloc(3 * size + 128);
	CHECK(tok);
	size_t len = build(data[0] & 3, data + 1, size - 1, tok);
	struct token_claims c;
	const char *why = NULL;

	memset(&c, 0x5a, sizeof(c)); /* must be overwritten on every path */
	int rc = token_verify(keys, tok, len, NOW, &c, &why);
	if (rc == TOKEN_OK) {
		check_success(tok, len, &c);
		check_rules(&c);
		token_claims_clear(&c);
	} else {
		CHECK(rc >= -6 && rc <= -1);
		CHECK(why && strlen(why) < 128);
		CHECK(strcmp(token_err_name(rc), "ok"));
		CHECK(c.sub[0] == '\0' && !c.join && !c.publish && !c.njoin && !c.npublish);
		CHECK(!c.has_rooms && !c.exp);
	}
	free(tok);
	return 0;
}
