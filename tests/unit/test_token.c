/* test_token.c - token verification, secret files and room access rules
 * (server/token.c). Tokens are minted here with OpenSSL's HMAC, so the test
 * checks token.c against an independent encoder. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h"

#define NOW      1764158400      /* 2025-11-26 12:00:00 UTC */
#define SECRET_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-current-secret"
#define SECRET_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-previous-secret"
#define SECRET_C "cccccccccccccccccccccccccccccccc-unknown-secret"
#define HDR      "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* ------------------------------------------------------------- helpers */

static char tmpdir[64];

static void setup_dir(void)
{
	strcpy(tmpdir, "/tmp/parley-auth-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes content (len bytes) to a fresh file in tmpdir; returns its path
 * (static buffer). */
static const char *write_file(const char *name, const char *content, size_t len)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(content, 1, len, f), len);
	fclose(f);
	return path;
}

static struct token_keys *load_str(const char *content)
{
	struct token_keys *a = NULL;
	char err[256];
	const char *p = write_file("secret", content, strlen(content));
	ck_assert_msg(token_load(&a, p, err, sizeof(err)) == 0, "token_load: %s", err);
	return a;
}

/* Appends unpadded base64url of in[0..n) to out (NUL-ended). */
static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = strlen(out), i;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18 & 63]; out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];  out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = tab[v >> 18 & 63]; out[o++] = tab[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = tab[v >> 18 & 63]; out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* Mints header.payload.HMAC-SHA256(secret) into a static buffer. */
static const char *mint(const char *secret, const char *hdr, const char *payload)
{
	static char tok[16384];
	unsigned char mac[32];
	unsigned int ml = 0;

	tok[0] = '\0';
	b64url((const unsigned char *)hdr, strlen(hdr), tok);
	strcat(tok, ".");
	b64url((const unsigned char *)payload, strlen(payload), tok);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)strlen(secret),
				   (const unsigned char *)tok, strlen(tok), mac, &ml));
	strcat(tok, ".");
	b64url(mac, ml, tok);
	return tok;
}

static int verify(const struct token_keys *a, const char *tok, struct token_claims *c,
		  const char **why)
{
	return token_verify(a, tok, strlen(tok), NOW, c, why);
}

/* verify() when only the code matters: the claims of an accepted token are cleared. */
static int verify_rc(const struct token_keys *a, const char *tok)
{
	struct token_claims c;
	const char *why = NULL;
	int rc = verify(a, tok, &c, &why);
	if (rc == TOKEN_OK)
		token_claims_clear(&c);
	return rc;
}

/* Verifies a SECRET_A token (header HDR) for alice that expires at exp. */
static int verify_exp(const struct token_keys *a, long exp, struct token_claims *c, const char **why)
{
	char p[128];
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"exp\":%ld}", exp);
	return verify(a, mint(SECRET_A, HDR, p), c, why);
}

/* Verifies a token minted with SECRET_A, header HDR, the given payload. */
static int verify_payload(const char *payload, struct token_claims *c, const char **why)
{
	struct token_keys *a = load_str(SECRET_A "\n");
	int rc = verify(a, mint(SECRET_A, HDR, payload), c, why);
	token_free(&a);
	return rc;
}

static int payload_rc(const char *payload)
{
	struct token_claims c;
	const char *why = NULL;
	int rc = verify_payload(payload, &c, &why);
	if (rc == 0)
		token_claims_clear(&c);
	else
		ck_assert_ptr_nonnull(why);
	return rc;
}

static int join(const struct token_claims *c, const char *user, const char *room)
{
	return token_may_join(c, user, room, strlen(room));
}

static int pub(const struct token_claims *c, const char *user, const char *room)
{
	return token_may_publish(c, user, room, strlen(room));
}

/* ------------------------------------------------------------- tokens */

START_TEST(valid_token)
{
	struct token_claims c;
	const char *why = NULL;

	ck_assert_int_eq(verify_payload("{\"sub\":\"alice\",\"exp\":1764162000,"
					"\"iat\":1764158400}", &c, &why), TOKEN_OK);
	ck_assert_str_eq(c.sub, "alice");
	ck_assert_int_eq(c.exp, 1764162000);
	ck_assert_int_eq(c.iat, 1764158400);
	ck_assert_int_eq(c.has_rooms, 0);
	ck_assert(join(&c, "ignored", "lobby"));
	ck_assert(pub(&c, "ignored", "lobby"));
	token_claims_clear(&c);
	token_claims_clear(&c);          /* twice is harmless */

	/* typ is optional; unicode sub; fractional exp */
	struct token_keys *a = load_str(SECRET_A);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"HS256\"}",
		"{\"sub\":\"Zo\\u00eb \xf0\x9f\xa6\x8a\",\"exp\":1764162000.9}"), &c, &why), TOKEN_OK);
	ck_assert_str_eq(c.sub, "Zo\xc3\xab \xf0\x9f\xa6\x8a");
	ck_assert_int_eq(c.exp, 1764162000);
	token_claims_clear(&c);
	/* header with kid: extra header fields are ignored */
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"typ\":\"JWT\",\"kid\":\"k1\",\"alg\":\"HS256\"}",
		"{\"sub\":\"bob\",\"exp\":1764162000}"), &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	token_free(&a);
	ck_assert_ptr_null(a);
	token_free(&a);                  /* NULL is a no-op */
}
END_TEST

START_TEST(expiry_and_leeway)
{
	struct token_keys *a = load_str(SECRET_A);
	struct token_claims c;
	const char *why = NULL;

	/* expired long ago */
	ck_assert_int_eq(verify_exp(a, NOW - 100, &c, &why), TOKEN_EEXPIRED);
	ck_assert_str_eq(why, "token expired");
	ck_assert_str_eq(c.sub, "");    /* out is left empty */
	/* 10 s ago: inside the 30 s default leeway */
	ck_assert_int_eq(verify_exp(a, NOW - 10, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	/* exactly at the edge: now == exp + leeway is expired */
	ck_assert_int_eq(verify_exp(a, NOW - 30, &c, &why), TOKEN_EEXPIRED);
	ck_assert_int_eq(verify_exp(a, NOW - 29, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	/* leeway 0 */
	token_set_leeway(a, 0);
	ck_assert_int_eq(verify_exp(a, NOW - 10, &c, &why), TOKEN_EEXPIRED);
	ck_assert_int_eq(verify_exp(a, NOW, &c, &why), TOKEN_EEXPIRED);
	ck_assert_int_eq(verify_exp(a, NOW + 1, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	token_free(&a);
}
END_TEST

START_TEST(not_yet_valid)
{
	struct token_keys *a = load_str(SECRET_A);
	struct token_claims c;
	const char *why = NULL;
	char p[128];

	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"exp\":%d,\"nbf\":%d}", NOW + 3600, NOW + 100);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, p), &c, &why), TOKEN_ENOTYET);
	ck_assert_str_eq(why, "token not yet valid");
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"exp\":%d,\"nbf\":%d}", NOW + 3600, NOW + 30);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, p), &c, &why), TOKEN_OK);
	ck_assert_int_eq(c.nbf, NOW + 30);
	token_claims_clear(&c);
	/* a fractional nbf rounds up: NOW + 30.2 is NOW + 31 > now + leeway */
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"exp\":%d,\"nbf\":%d.2}", NOW + 3600, NOW + 30);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, p), &c, &why), TOKEN_ENOTYET);
	snprintf(p, sizeof(p), "{\"sub\":\"alice\",\"exp\":%d,\"nbf\":\"soon\"}", NOW + 3600);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, p), &c, &why), TOKEN_ECLAIMS);
	token_free(&a);
}
END_TEST

START_TEST(wrong_signature)
{
	struct token_keys *a = load_str(SECRET_A);
	struct token_claims c;
	const char *why = NULL;
	const char *p = "{\"sub\":\"alice\",\"exp\":1764162000}";
	char tok[1024];

	ck_assert_int_eq(verify(a, mint(SECRET_C, HDR, p), &c, &why), TOKEN_ESIG);
	ck_assert_str_eq(why, "bad signature");

	/* a payload swapped under a valid signature */
	strcpy(tok, mint(SECRET_A, HDR, p));
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	char forged[1024] = "";
	char sig[128];
	strcpy(sig, d2);
	*d1 = '\0';
	strcpy(forged, tok);
	strcat(forged, ".");
	b64url((const unsigned char *)"{\"sub\":\"admin\",\"exp\":1764162000}",
	       strlen("{\"sub\":\"admin\",\"exp\":1764162000}"), forged);
	strcat(forged, sig);
	ck_assert_int_eq(verify(a, forged, &c, &why), TOKEN_ESIG);

	/* a truncated signature, an empty one, a longer one */
	strcpy(tok, mint(SECRET_A, HDR, p));
	tok[strlen(tok) - 3] = '\0';
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_ESIG);
	strcpy(tok, mint(SECRET_A, HDR, p));
	strrchr(tok, '.')[1] = '\0';
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_ESIG);
	strcpy(tok, mint(SECRET_A, HDR, p));
	strcat(tok, "AAAA");
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_ESIG);

	/* the last signature character has 2 unused bits: a non-canonical
	 * spelling of the same bytes is refused */
	strcpy(tok, mint(SECRET_A, HDR, p));
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	size_t n = strlen(tok);
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	int v = (int)(strchr(tab, tok[n - 1]) - tab);
	tok[n - 1] = tab[v | 1];
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_ESIG);
	token_free(&a);
}
END_TEST

START_TEST(algorithms_refused)
{
	struct token_keys *a = load_str(SECRET_A);
	struct token_claims c;
	const char *why = NULL;
	const char *p = "{\"sub\":\"alice\",\"exp\":1764162000}";
	char tok[1024] = "";

	/* alg none, the classic: empty signature */
	b64url((const unsigned char *)"{\"alg\":\"none\",\"typ\":\"JWT\"}", 26, tok);
	strcat(tok, ".");
	b64url((const unsigned char *)p, strlen(p), tok);
	strcat(tok, ".");
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_EALG);
	ck_assert_str_eq(why, "token algorithm must be HS256");
	/* alg none with a valid HS256 signature over it: still refused */
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"none\"}", p), &c, &why), TOKEN_EALG);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", p), &c, &why),
			 TOKEN_EALG);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"RS256\"}", p), &c, &why), TOKEN_EALG);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"hs256\"}", p), &c, &why), TOKEN_EALG);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"typ\":\"JWT\"}", p), &c, &why), TOKEN_EALG);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":null}", p), &c, &why), TOKEN_EALG);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"HS256\\u0000\"}", p), &c, &why),
			 TOKEN_EMALFORMED);      /* jansson refuses NUL in strings */
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", p),
				&c, &why), TOKEN_EALG);
	/* duplicate alg: refused, not "last one wins" */
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"none\",\"alg\":\"HS256\"}", p),
				&c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", p),
				&c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, mint(SECRET_A, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", p),
				&c, &why), TOKEN_OK);
	token_claims_clear(&c);
	token_free(&a);
}
END_TEST

START_TEST(claims_required)
{
	ck_assert_int_eq(payload_rc("{\"sub\":\"alice\"}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"alice\",\"exp\":\"1764162000\"}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"alice\",\"exp\":null}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"alice\",\"exp\":1e300}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"alice\",\"exp\":1764162000,\"iat\":true}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"exp\":1764162000}"), TOKEN_ECLAIMS);
	/* bad sub: empty, 33 characters, a control character, not a string */
	ck_assert_int_eq(payload_rc("{\"sub\":\"\",\"exp\":1764162000}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"abcdefghijabcdefghijabcdefghijabc\","
				    "\"exp\":1764162000}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"abcdefghijabcdefghijabcdefghijab\","
				    "\"exp\":1764162000}"), TOKEN_OK);
	ck_assert_int_eq(payload_rc("{\"sub\":\"al\\u0001ice\",\"exp\":1764162000}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"al\\u0085ice\",\"exp\":1764162000}"), TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":42,\"exp\":1764162000}"), TOKEN_ECLAIMS);
	/* 32 four-byte characters: 128 bytes, the most sub can hold */
	char p[512] = "{\"sub\":\"";
	for (int i = 0; i < 32; i++)
		strcat(p, "\xf0\x9f\xa6\x8a");
	strcat(p, "\",\"exp\":1764162000}");
	struct token_claims c;
	const char *why;
	ck_assert_int_eq(verify_payload(p, &c, &why), TOKEN_OK);
	ck_assert_uint_eq(strlen(c.sub), 128);
	token_claims_clear(&c);
	/* shape errors beat expiry: an expired token without sub says "no sub" */
	ck_assert_int_eq(verify_payload("{\"exp\":1}", &c, &why), TOKEN_ECLAIMS);
	ck_assert_str_eq(why, "token has no sub");
}
END_TEST

START_TEST(malformed)
{
	struct token_keys *a = load_str(SECRET_A);
	struct token_claims c;
	const char *why = NULL;
	const char *p = "{\"sub\":\"alice\",\"exp\":1764162000}";
	char tok[8192];

	ck_assert_int_eq(token_verify(a, "", 0, NOW, &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(token_verify(a, NULL, 0, NOW, &c, &why), TOKEN_EMALFORMED);
	/* two segments, four segments */
	strcpy(tok, mint(SECRET_A, HDR, p));
	*strrchr(tok, '.') = '\0';
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_EMALFORMED);
	ck_assert_str_eq(why, "a token has three dot-separated parts");
	strcpy(tok, mint(SECRET_A, HDR, p));
	strcat(tok, ".AAAA");
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, "..", &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, "abc", &c, &why), TOKEN_EMALFORMED);
	/* bad base64: a foreign character, padding, standard-alphabet chars */
	strcpy(tok, mint(SECRET_A, HDR, p));
	tok[3] = '!';
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_EMALFORMED);
	strcpy(tok, "eyJhbGciOiJIUzI1NiJ9=");
	strcat(tok, strchr(mint(SECRET_A, "{\"alg\":\"HS256\"}", p), '.'));
	ck_assert_int_eq(verify(a, tok, &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, "eyJhbGciOiJIUzI1NiJ9+/.e30.AAAA", &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, "e.e30.AAAA", &c, &why), TOKEN_EMALFORMED);  /* 1 mod 4 */
	/* header not JSON, an array, JSON with trailing junk */
	ck_assert_int_eq(verify(a, mint(SECRET_A, "not json", p), &c, &why), TOKEN_EMALFORMED);
	ck_assert_str_eq(why, "header is not a JSON object");
	ck_assert_int_eq(verify(a, mint(SECRET_A, "[\"HS256\"]", p), &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR "x", p), &c, &why), TOKEN_EMALFORMED);
	/* signed payload that is not JSON, an array, an empty segment, dups */
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, "nope"), &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, "[1]"), &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, ""), &c, &why), TOKEN_EMALFORMED);
	ck_assert_int_eq(verify(a, mint(SECRET_A, HDR, "{\"sub\":\"bob\",\"sub\":\"alice\","
					"\"exp\":1764162000}"), &c, &why), TOKEN_EMALFORMED);
	/* huge token: refused before any work, even if validly signed */
	char big[4000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char payload[4200];
	snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":1764162000,\"pad\":\"%s\"}", big);
	const char *t = mint(SECRET_A, HDR, payload);
	ck_assert_uint_gt(strlen(t), TOKEN_TOKEN_MAX);
	ck_assert_int_eq(verify(a, t, &c, &why), TOKEN_EMALFORMED);
	ck_assert_str_eq(why, "token too long");
	/* just under the limit is fine */
	snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":1764162000,\"pad\":\"%.2900s\"}", big);
	t = mint(SECRET_A, HDR, payload);
	ck_assert_uint_le(strlen(t), TOKEN_TOKEN_MAX);
	ck_assert_int_eq(verify(a, t, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	/* length is honoured: bytes after len are not read */
	strcpy(tok, mint(SECRET_A, HDR, p));
	size_t n = strlen(tok);
	strcat(tok, "garbage");
	ck_assert_int_eq(token_verify(a, tok, n, NOW, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	/* why may be NULL */
	ck_assert_int_eq(token_verify(a, "x", 1, NOW, &c, NULL), TOKEN_EMALFORMED);
	token_free(&a);
}
END_TEST

/* Every single-byte change of a valid token is refused, and nothing
 * crashes (run it under ASan). Bounded: token length x 4 changes. */
START_TEST(mutations_refused)
{
	struct token_keys *a = load_str(SECRET_A);
	struct token_claims c;
	const char *why;
	char tok[1024];
	static const char repl[] = { 'A', '_', '.', '=' };

	strcpy(tok, mint(SECRET_A, HDR, "{\"sub\":\"alice\",\"exp\":1764162000,"
			 "\"rooms\":{\"join\":[\"a*\"]}}"));
	size_t n = strlen(tok);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(repl); k++) {
			char save = tok[i];
			if (save == repl[k])
				continue;
			tok[i] = repl[k];
			ck_assert_msg(token_verify(a, tok, n, NOW, &c, &why) != TOKEN_OK,
				      "byte %zu -> %c accepted", i, repl[k]);
			tok[i] = save;
		}
	/* every truncation is refused too */
	for (size_t l = 0; l < n; l++)
		ck_assert(token_verify(a, tok, l, NOW, &c, &why) != TOKEN_OK);
	ck_assert_int_eq(token_verify(a, tok, n, NOW, &c, &why), TOKEN_OK);
	token_claims_clear(&c);
	token_free(&a);
}
END_TEST

/* ------------------------------------------------------------- rooms */

START_TEST(room_patterns)
{
	struct token_claims c;
	const char *why;

	ck_assert_int_eq(verify_payload("{\"sub\":\"alice\",\"exp\":1764162000,\"rooms\":"
		"{\"join\":[\"lobby\",\"team-42:*\",\"@dm:*\",\"@alice*\"],"
		"\"publish\":[\"lobby\",\"team-42:general\",\"@*\"]}}", &c, &why), TOKEN_OK);
	ck_assert_int_eq(c.has_rooms, 1);
	ck_assert_uint_eq(c.njoin, 4);
	ck_assert_uint_eq(c.npublish, 3);
	/* exact */
	ck_assert(join(&c, NULL, "lobby"));
	ck_assert(!join(&c, NULL, "lobby2"));
	ck_assert(!join(&c, NULL, "lobb"));
	ck_assert(!join(&c, NULL, "Lobby"));
	/* prefix */
	ck_assert(join(&c, NULL, "team-42:"));
	ck_assert(join(&c, NULL, "team-42:general"));
	ck_assert(join(&c, NULL, "team-42:random"));
	ck_assert(!join(&c, NULL, "team-42"));
	ck_assert(!join(&c, NULL, "team-421:x"));
	/* publish needs join and publish */
	ck_assert(pub(&c, NULL, "lobby"));
	ck_assert(pub(&c, NULL, "team-42:general"));
	ck_assert(!pub(&c, NULL, "team-42:random"));
	ck_assert(!pub(&c, NULL, "elsewhere"));
	/* private rooms still need the patterns, and the patterns do not
	 * open other users' rooms */
	ck_assert(join(&c, NULL, "@alice"));
	ck_assert(join(&c, NULL, "@alice:inbox"));
	ck_assert(pub(&c, NULL, "@alice:inbox"));
	ck_assert(!join(&c, NULL, "@alicex"));          /* pattern yes, owner no */
	ck_assert(join(&c, NULL, "@dm:alice:bob"));
	ck_assert(pub(&c, NULL, "@dm:alice:bob"));
	ck_assert(!join(&c, NULL, "@dm:bob:carol"));
	/* with claims the user is sub, whatever the caller passes */
	ck_assert(join(&c, "bob", "@alice"));
	ck_assert(!join(&c, "bob", "@bob"));
	token_claims_clear(&c);

	/* rooms with no lists: nothing; "*": everything public */
	ck_assert_int_eq(verify_payload("{\"sub\":\"alice\",\"exp\":1764162000,\"rooms\":{}}",
					&c, &why), TOKEN_OK);
	ck_assert(!join(&c, NULL, "lobby"));
	ck_assert(!join(&c, NULL, "@alice"));
	token_claims_clear(&c);
	ck_assert_int_eq(verify_payload("{\"sub\":\"alice\",\"exp\":1764162000,\"rooms\":"
					"{\"join\":[\"*\"],\"publish\":[]}}", &c, &why), TOKEN_OK);
	ck_assert(join(&c, NULL, "anything"));
	ck_assert(join(&c, NULL, "@alice"));
	ck_assert(!join(&c, NULL, "@bob"));
	ck_assert(!pub(&c, NULL, "anything"));
	token_claims_clear(&c);
	ck_assert_int_eq(verify_payload("{\"sub\":\"alice\",\"exp\":1764162000,\"rooms\":"
					"{\"join\":[\"lobby\"]}}", &c, &why), TOKEN_OK);
	ck_assert(join(&c, NULL, "lobby"));
	ck_assert(!pub(&c, NULL, "lobby"));           /* read-only */
	token_claims_clear(&c);
	/* unknown keys inside rooms are ignored (they grant nothing) */
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"joins\":[\"x\"]}}"),
			 TOKEN_OK);

	/* invalid claims */
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":[\"lobby\"]}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":\"lobby\"}}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[1]}}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"\"]}}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"a*b\"]}}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"a**\"]}}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"a b\"]}}"),
			 TOKEN_ECLAIMS);
	ck_assert_int_eq(payload_rc("{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"publish\":[\"a/b\"]}}"),
			 TOKEN_ECLAIMS);

	/* bounds: 128-byte pattern ok, 129 not; 256 patterns ok, 257 not */
	char p[4096], x[200];
	memset(x, 'r', 128);
	x[128] = '\0';
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"%s\"]}}", x);
	ck_assert_int_eq(payload_rc(p), TOKEN_OK);
	x[127] = '*';
	ck_assert_int_eq(payload_rc(p), TOKEN_OK);
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"%s\"]}}", x);
	ck_assert_int_eq(payload_rc(p), TOKEN_OK);
	x[128] = 'r';
	x[129] = '\0';
	snprintf(p, sizeof(p), "{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[\"%s\"]}}", x);
	ck_assert_int_eq(payload_rc(p), TOKEN_ECLAIMS);

	for (int total = 256; total <= 257; total++) {
		strcpy(p, "{\"sub\":\"a\",\"exp\":1764162000,\"rooms\":{\"join\":[");
		for (int i = 0; i < 200; i++)
			strcat(p, i ? ",\"r\"" : "\"r\"");
		strcat(p, "],\"publish\":[");
		for (int i = 0; i < total - 200; i++)
			strcat(p, i ? ",\"r\"" : "\"r\"");
		strcat(p, "]}}");
		ck_assert_int_eq(payload_rc(p), (total == 256 ? TOKEN_OK : TOKEN_ECLAIMS));
	}
}
END_TEST

START_TEST(private_rooms)
{
	/* auth = none: the rule applies to the display name */
	ck_assert(join(NULL, "alice", "lobby"));
	ck_assert(pub(NULL, "alice", "lobby"));
	ck_assert(join(NULL, "alice", "@alice"));
	ck_assert(join(NULL, "alice", "@alice:inbox"));
	ck_assert(join(NULL, "alice", "@alice:inbox:2026"));
	ck_assert(pub(NULL, "alice", "@alice:"));
	ck_assert(!join(NULL, "bob", "@alice"));
	ck_assert(!join(NULL, "bob", "@alice:inbox"));
	ck_assert(!pub(NULL, "bob", "@alice:inbox"));
	ck_assert(!join(NULL, "alice", "@alice2"));
	ck_assert(!join(NULL, "alice", "@alic"));
	ck_assert(!join(NULL, "alice", "@Alice"));       /* case matters */
	ck_assert(!join(NULL, "Alice", "@alice"));
	ck_assert(!join(NULL, NULL, "@alice"));
	ck_assert(join(NULL, NULL, "lobby"));
	/* reserved shapes nobody may join */
	ck_assert(!join(NULL, "alice", "@"));
	ck_assert(!join(NULL, "alice", "@:x"));
	ck_assert(!join(NULL, "dm", "@dm"));
	ck_assert(!join(NULL, "dm", "@dm:x"));
	ck_assert(!join(NULL, "alice", "@@alice"));
	/* names that cannot own private rooms */
	ck_assert(!token_name_private_ok("dm", 2));
	ck_assert(!token_name_private_ok("a:b", 3));
	ck_assert(!token_name_private_ok("a@b", 3));
	ck_assert(!token_name_private_ok("Zo\xc3\xab", 4));
	ck_assert(!token_name_private_ok("bob smith", 9));
	ck_assert(!token_name_private_ok("", 0));
	ck_assert(token_name_private_ok("A.b_c-9", 7));
	ck_assert(token_name_private_ok("dmx", 3));
	ck_assert(token_name_private_ok("abcdefghijabcdefghijabcdefghijab", 32));
	ck_assert(!token_name_private_ok("abcdefghijabcdefghijabcdefghijabc", 33));
	/* "a:b" would own "@a:b"... but "@a:b" is a's room, not a:b's */
	ck_assert(!join(NULL, "a:b", "@a:b"));
	ck_assert(join(NULL, "a", "@a:b"));
	ck_assert(!join(NULL, "a@b", "@a@b"));
	/* names without private rooms still use public rooms */
	ck_assert(join(NULL, "Zo\xc3\xab", "lobby"));
	ck_assert(!join(NULL, "Zo\xc3\xab", "@Zo"));
	/* the room length given is honoured */
	ck_assert(token_may_join(NULL, "bob", "@alice", 0) == 1);  /* empty: not reserved */
	ck_assert(token_may_join(NULL, "alice", "@alicex", 6) == 1);
}
END_TEST

START_TEST(dm_rooms)
{
	char room[80];

	ck_assert_int_eq(token_dm_room("bob", "alice", room, sizeof(room)), 13);
	ck_assert_str_eq(room, "@dm:alice:bob");
	ck_assert_int_eq(token_dm_room("alice", "bob", room, sizeof(room)), 13);
	ck_assert_str_eq(room, "@dm:alice:bob");
	/* bytewise: uppercase sorts before lowercase, shorter prefix first */
	ck_assert_int_eq(token_dm_room("bob", "Zed", room, sizeof(room)), 11);
	ck_assert_str_eq(room, "@dm:Zed:bob");
	ck_assert_int_eq(token_dm_room("ann", "an", room, sizeof(room)), 10);
	ck_assert_str_eq(room, "@dm:an:ann");
	/* refused: same user, names that cannot DM, buffer too small */
	ck_assert_int_eq(token_dm_room("alice", "alice", room, sizeof(room)), -1);
	ck_assert_int_eq(token_dm_room("alice", "Zo\xc3\xab", room, sizeof(room)), -1);
	ck_assert_int_eq(token_dm_room("alice", "a:b", room, sizeof(room)), -1);
	ck_assert_int_eq(token_dm_room("alice", "dm", room, sizeof(room)), -1);
	ck_assert_int_eq(token_dm_room("alice", "", room, sizeof(room)), -1);
	ck_assert_int_eq(token_dm_room("alice", NULL, room, sizeof(room)), -1);
	ck_assert_int_eq(token_dm_room("alice", "bob", room, 13), -1);
	ck_assert_int_eq(token_dm_room("alice", "bob", room, 14), 13);
	/* the longest DM room fits in 72 bytes and is a valid room name */
	char a[33], b[33];
	memset(a, 'a', 32); a[32] = '\0';
	memset(b, 'b', 32); b[32] = '\0';
	ck_assert_int_eq(token_dm_room(a, b, room, 72), 69);

	/* who may join */
	token_dm_room("alice", "bob", room, sizeof(room));
	ck_assert(join(NULL, "alice", room));
	ck_assert(join(NULL, "bob", room));
	ck_assert(pub(NULL, "bob", room));
	ck_assert(!join(NULL, "carol", room));
	ck_assert(!join(NULL, "ali", room));
	ck_assert(!join(NULL, "alice:bob", room));
	ck_assert(!join(NULL, "dm", room));
	/* only the canonical spelling exists */
	ck_assert(!join(NULL, "alice", "@dm:bob:alice"));
	ck_assert(!join(NULL, "bob", "@dm:bob:alice"));
	ck_assert(!join(NULL, "alice", "@dm:alice:alice"));
	ck_assert(!join(NULL, "alice", "@dm:alice"));
	ck_assert(!join(NULL, "alice", "@dm:alice:"));
	ck_assert(!join(NULL, "alice", "@dm::alice"));
	ck_assert(!join(NULL, "alice", "@dm:alice:bob:extra"));
	ck_assert(!join(NULL, "bob", "@dm:alice:bob:extra"));
	ck_assert(!join(NULL, "alice", "@dm:alice:b@b"));
	ck_assert(!join(NULL, "alice", "@dm:alice:dm"));

	/* with claims: sub decides */
	struct token_claims c;
	const char *why;
	ck_assert_int_eq(verify_payload("{\"sub\":\"carol\",\"exp\":1764162000}", &c, &why), TOKEN_OK);
	ck_assert(!join(&c, "alice", "@dm:alice:bob"));
	ck_assert(join(&c, "alice", "@dm:bob:carol"));
	token_claims_clear(&c);
}
END_TEST

/* ------------------------------------------------------------- secrets */

START_TEST(rotation)
{
	struct token_keys *a = NULL;
	const char *p = "{\"sub\":\"alice\",\"exp\":1764162000}";
	char tok_a[1024], tok_b[1024], tok_c[1024];

	strcpy(tok_a, mint(SECRET_A, HDR, p));
	strcpy(tok_b, mint(SECRET_B, HDR, p));
	strcpy(tok_c, mint(SECRET_C, HDR, p));

	/* before: only B */
	a = load_str(SECRET_B "\n");
	ck_assert_int_eq(token_secret_count(a), 1);
	ck_assert_int_eq(verify_rc(a, tok_b), TOKEN_OK);
	ck_assert_int_eq(verify_rc(a, tok_a), TOKEN_ESIG);
	token_free(&a);
	/* during: A current, B previous; both verify, C does not */
	a = load_str(SECRET_A "\n" SECRET_B "\n");
	ck_assert_int_eq(token_secret_count(a), 2);
	ck_assert_int_eq(verify_rc(a, tok_a), TOKEN_OK);
	ck_assert_int_eq(verify_rc(a, tok_b), TOKEN_OK);
	ck_assert_int_eq(verify_rc(a, tok_c), TOKEN_ESIG);
	token_free(&a);
	/* CRLF line ends work as well, no final newline too */
	a = load_str(SECRET_A "\r\n" SECRET_B);
	ck_assert_int_eq(verify_rc(a, tok_a), TOKEN_OK);
	ck_assert_int_eq(verify_rc(a, tok_b), TOKEN_OK);
	token_free(&a);
	/* after: only A */
	a = load_str(SECRET_A "\n");
	ck_assert_int_eq(verify_rc(a, tok_a), TOKEN_OK);
	ck_assert_int_eq(verify_rc(a, tok_b), TOKEN_ESIG);
	token_free(&a);
}
END_TEST

static int load_rc(const char *content, size_t len, char *err, size_t errlen)
{
	struct token_keys *a = (struct token_keys *)&a;     /* must stay untouched on failure */
	struct token_keys *before = a;
	const char *path = write_file("s", content, len);
	int rc = token_load(&a, path, err, errlen);
	if (rc == 0)
		token_free(&a);
	else
		ck_assert_ptr_eq(a, before);
	return rc;
}

START_TEST(secret_file_rules)
{
	char err[256];
	char s[16384];

	/* 31 bytes refused with a clear message, 32 accepted */
	ck_assert_int_eq(load_rc("0123456789012345678901234567890\n", 32, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "31 bytes") && strstr(err, "32"), "message: %s", err);
	ck_assert_int_eq(load_rc("01234567890123456789012345678901\n", 33, err, sizeof(err)), 0);
	ck_assert_int_eq(load_rc("01234567890123456789012345678901", 32, err, sizeof(err)), 0);
	/* the newline is not part of the secret: 31 bytes + \r\n is short */
	ck_assert_int_eq(load_rc("0123456789012345678901234567890\r\n", 33, err, sizeof(err)), -1);
	/* empty, only a newline */
	ck_assert_int_eq(load_rc("", 0, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "empty"), "message: %s", err);
	ck_assert_int_eq(load_rc("\n", 1, err, sizeof(err)), -1);
	/* second line short, empty second line, three lines */
	ck_assert_int_eq(load_rc(SECRET_A "\nshort\n", strlen(SECRET_A) + 7, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "line 2"), "message: %s", err);
	ck_assert_int_eq(load_rc(SECRET_A "\n\n", strlen(SECRET_A) + 2, err, sizeof(err)), -1);
	snprintf(s, sizeof(s), "%s\n%s\n%s\n", SECRET_A, SECRET_B, SECRET_C);
	ck_assert_int_eq(load_rc(s, strlen(s), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "more than 2 lines"), "message: %s", err);
	/* 4096 bytes ok, 4097 not, a huge file not */
	memset(s, 'k', 4096);
	ck_assert_int_eq(load_rc(s, 4096, err, sizeof(err)), 0);
	ck_assert_int_eq(load_rc(s, 4097, err, sizeof(err)), -1);
	memset(s, 'k', sizeof(s));
	ck_assert_int_eq(load_rc(s, sizeof(s), err, sizeof(err)), -1);
	/* missing file, a directory */
	struct token_keys *a = NULL;
	char path[128];
	snprintf(path, sizeof(path), "%s/nope", tmpdir);
	ck_assert_int_eq(token_load(&a, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "No such file"), "message: %s", err);
	ck_assert_int_eq(token_load(&a, tmpdir, err, sizeof(err)), -1);
	ck_assert_ptr_null(a);
	/* a short err buffer is still NUL-ended */
	ck_assert_int_eq(load_rc("short", 5, err, 8), -1);
	ck_assert_uint_eq(strlen(err), 7);
}
END_TEST

START_TEST(error_table)
{
	ck_assert_str_eq(token_err_name(TOKEN_OK), "ok");
	ck_assert_str_eq(token_err_name(TOKEN_EEXPIRED), "expired");
	ck_assert_str_eq(token_err_name(TOKEN_ESIG), "bad_signature");
	ck_assert_str_eq(token_strerror(TOKEN_EALG), "unsupported token algorithm");
	ck_assert_str_eq(token_err_name(-99), "unknown");
	for (int e = -1; e >= TOKEN_ECLAIMS; e--)
		ck_assert_str_ne(token_err_name(e), "unknown");
}
END_TEST

static Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *tc = tcase_create("tokens");
	tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
	tcase_add_test(tc, valid_token);
	tcase_add_test(tc, expiry_and_leeway);
	tcase_add_test(tc, not_yet_valid);
	tcase_add_test(tc, wrong_signature);
	tcase_add_test(tc, algorithms_refused);
	tcase_add_test(tc, claims_required);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, mutations_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("rooms");
	tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
	tcase_add_test(tc, room_patterns);
	tcase_add_test(tc, private_rooms);
	tcase_add_test(tc, dm_rooms);
	suite_add_tcase(s, tc);
	tc = tcase_create("secrets");
	tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
	tcase_add_test(tc, rotation);
	tcase_add_test(tc, secret_file_rules);
	tcase_add_test(tc, error_table);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(token_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
