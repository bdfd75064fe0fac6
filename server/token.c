/*
 * token.c - HS256 token verification and room access rules (token.h).
 *
 * Tokens. A token is a compact JWS (RFC 7515) with HS256 (RFC 7519):
 *   BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(HMAC-SHA256)
 * Each segment is unpadded base64url, decoded strictly (no '=', no other
 * characters, unused bits zero). The header must be a JSON object with
 * "alg":"HS256"; "typ", if present, must be "JWT"; "crit" is refused. Every
 * other algorithm is refused, "none" included, before the signature is
 * looked at: the algorithm is fixed by the server, never chosen by the
 * token. The signature is checked (CRYPTO_memcmp) against every loaded
 * secret before the payload is parsed, so unauthenticated bytes never
 * reach the claims code. Then the claims: exp (required), nbf and iat
 * (optional) are NumericDates; sub (required) is a Parley user name; rooms
 * (optional) restricts rooms:
 *   "rooms": {"join": ["lobby", "team-42:*"], "publish": ["lobby"]}
 * A pattern is a room name (exact match) or a prefix followed by one '*'
 * (prefix match; "*" alone matches every room). With a "rooms" claim, a
 * list left out is empty: the token restricts to what it lists.
 *
 * Private rooms. Every room whose name starts with '@' is reserved:
 *   @U  and  @U:<anything>     belong to user U alone;
 *   @dm:<A>:<B>                is the DM room of users A and B, A < B
 *                              (bytewise), joinable by A and B alone.
 * Anything else starting with '@' ("@", "@dm", "@dm:bob:alice" in the
 * wrong order, "@dm:a:b:c", "@Zoë", ...) nobody may join. U, A and B are
 * names that can own private rooms: 1-32 of [A-Za-z0-9_.-], not "dm".
 * Excluding ':' and '@' makes the owner unambiguous (the text up to the
 * first ':'); other names (spaces, accents, ':') simply have no private
 * rooms. The private rule applies on top of the patterns, whatever they
 * say: "join":["*"] does not open another user's room.
 *
 * In auth = none the same rules apply to the display name, which anyone can
 * take: there they keep honest clients apart and protect nothing.
 */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proto.h"
#include "util.h"

#define HS256_LEN 32

struct token_keys {
	unsigned leeway;
	int nsecrets;
	size_t len[TOKEN_SECRETS_MAX];
	unsigned char key[TOKEN_SECRETS_MAX][TOKEN_SECRET_MAX];
};

/* ------------------------------------------------------------------ errors */

const char *token_err_name(int err)
{
	switch (err) {
	case TOKEN_OK: return "ok";
#define TOKEN_X_NAME(code, val, name, msg) case code: return name;
	TOKEN_ERRNO_MAP(TOKEN_X_NAME)
#undef TOKEN_X_NAME
	}
	return "unknown";
}

const char *token_strerror(int err)
{
	switch (err) {
	case TOKEN_OK: return "ok";
#define TOKEN_X_MSG(code, val, name, msg) case code: return msg;
	TOKEN_ERRNO_MAP(TOKEN_X_MSG)
#undef TOKEN_X_MSG
	}
	return "unknown error";
}

/* ----------------------------------------------------------------- secrets */

/* Reads at most max bytes of path into buf. Returns the length, or -1 with
 * err set. Refuses anything but a regular file (a FIFO would block). */
static ssize_t read_small_file(const char *path, unsigned char *buf, size_t max,
			       char *err, size_t errlen)
{
	struct stat st;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "auth_secret_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "auth_secret_file %s: not a regular file", path);
		goto error;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "auth_secret_file %s: %s", path, strerror(errno));
			goto error;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			snprintf(err, errlen, "auth_secret_file %s: larger than %zu bytes "
				 "(expected one or two lines of %d-%d bytes)",
				 path, max, TOKEN_SECRET_MIN, TOKEN_SECRET_MAX);
			goto error;
		}
	}
	close(fd);
	return (ssize_t)n;
error:
	close(fd);
	return -1;
}

int token_load(struct token_keys **out, const char *secret_file, char *err, size_t errlen)
{
	/* two secrets, each with CR LF */
	enum { FILE_MAX = TOKEN_SECRETS_MAX * (TOKEN_SECRET_MAX + 2) };
	unsigned char *buf = xmalloc(FILE_MAX + 1);
	struct token_keys *a = NULL;
	ssize_t n;

	n = read_small_file(secret_file, buf, FILE_MAX, err, errlen);
	if (n < 0)
		goto error;
	size_t len = (size_t)n;
	/* One final newline ends the last line; it is not part of a secret. */
	if (len && buf[len - 1] == '\n')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "auth_secret_file %s: empty; put a secret of at least "
			 "%d bytes in it (e.g. openssl rand -base64 48)", secret_file, TOKEN_SECRET_MIN);
		goto error;
	}

	a = xcalloc(1, sizeof(*a));
	a->leeway = TOKEN_LEEWAY_DEFAULT;
	size_t pos = 0;
	while (pos <= len) {
		const unsigned char *line = buf + pos;
		const unsigned char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;
		size_t next = pos + ll + 1;

		if (ll && line[ll - 1] == '\r')
			ll--;
		if (a->nsecrets == TOKEN_SECRETS_MAX) {
			snprintf(err, errlen, "auth_secret_file %s: more than %d lines (current "
				 "secret, then optionally the previous one)", secret_file,
				 TOKEN_SECRETS_MAX);
			goto error;
		}
		if (ll < TOKEN_SECRET_MIN || ll > TOKEN_SECRET_MAX) {
			snprintf(err, errlen, "auth_secret_file %s: the secret on line %d is %zu "
				 "bytes; it must be %d-%d bytes (e.g. openssl rand -base64 48)",
				 secret_file, a->nsecrets + 1, ll, TOKEN_SECRET_MIN, TOKEN_SECRET_MAX);
			goto error;
		}
		memcpy(a->key[a->nsecrets], line, ll);
		a->len[a->nsecrets++] = ll;
		if (!nl)
			break;
		pos = next;
	}
	OPENSSL_cleanse(buf, FILE_MAX + 1);
	free(buf);
	*out = a;
	return 0;
error:
	OPENSSL_cleanse(buf, FILE_MAX + 1);
	free(buf);
	token_free(&a);
	return -1;
}

void token_free(struct token_keys **a)
{
	if (!a || !*a)
		return;
	OPENSSL_cleanse(*a, sizeof(**a));
	free(*a);
	*a = NULL;
}

void token_set_leeway(struct token_keys *a, unsigned seconds)
{
	a->leeway = seconds;
}

int token_secret_count(const struct token_keys *a)
{
	return a->nsecrets;
}

/* --------------------------------------------------------------- base64url */

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

/* Decodes unpadded base64url s[0..n) into out (room for n * 3 / 4 bytes).
 * Strict: only the 64 characters, no length of 1 mod 4, unused low bits of
 * the last character zero (so each value has exactly one encoding).
 * Returns the decoded length or -1. */
static ssize_t b64url_decode(const char *s, size_t n, unsigned char *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)      /* leftover bits must be zero */
		return -1;
	return (ssize_t)o;
}

/* ------------------------------------------------------------------ claims */

void token_claims_clear(struct token_claims *c)
{
	for (size_t i = 0; i < c->njoin; i++)
		free(c->join[i]);
	for (size_t i = 0; i < c->npublish; i++)
		free(c->publish[i]);
	free(c->join);
	free(c->publish);
	memset(c, 0, sizeof(*c));
}

static int room_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
	       c == ':' || c == '@';
}

/* 1 if p[0..n) is a room pattern: a room name, or a prefix of room
 * characters (possibly empty) followed by one '*'. */
static int pattern_valid(const char *p, size_t n)
{
	if (n < 1 || n > TOKEN_PATTERN_MAX)
		return 0;
	if (p[n - 1] != '*')
		return proto_room_valid(p, n);
	for (size_t i = 0; i + 1 < n; i++)
		if (!room_char((unsigned char)p[i]))
			return 0;
	return 1;
}

static int pattern_match(const char *p, const char *room, size_t n)
{
	size_t pl = strlen(p);

	if (pl && p[pl - 1] == '*')
		return n >= pl - 1 && !memcmp(p, room, pl - 1);
	return pl == n && !memcmp(p, room, n);
}

static int match_any(char *const *list, size_t count, const char *room, size_t n)
{
	for (size_t i = 0; i < count; i++)
		if (pattern_match(list[i], room, n))
			return 1;
	return 0;
}

/* Copies the patterns of array v (NULL: none) into *list. *budget counts
 * the patterns still allowed. Returns 0 or -1 with *why set. */
static int load_patterns(json_t *v, char ***list, size_t *count, size_t *budget,
			 const char **why)
{
	size_t n;

	if (!v)
		return 0;
	if (!json_is_array(v)) {
		*why = "rooms.join and rooms.publish must be arrays";
		return -1;
	}
	n = json_array_size(v);
	if (n > *budget) {
		*why = "too many room patterns";
		return -1;
	}
	*budget -= n;
	*list = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s) ||
		    !pattern_valid(json_string_value(s), json_string_length(s))) {
			*why = "invalid room pattern";
			return -1;
		}
		(*list)[i] = xstrndup(json_string_value(s), json_string_length(s));
		(*count)++;
	}
	return 0;
}

/* A NumericDate claim as whole seconds, rounded down (up when up is set) so
 * a fractional time never widens the validity window. Returns 0, or -1 if v
 * is not a number within +-2^53. */
static int numeric_date(json_t *v, int up, int64_t *out)
{
	const double lim = 9007199254740992.0;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i > (json_int_t)lim || i < -(json_int_t)lim)
			return -1;
		*out = (int64_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(d < lim && d > -lim))
			return -1;
		*out = (int64_t)(up ? ceil(d) : floor(d));
		return 0;
	}
	return -1;
}

/* Checks the payload's claims and fills out. Returns 0 or a negative code
 * with *why set. */
static int check_claims(const struct token_keys *a, json_t *pl, int64_t now,
			struct token_claims *out, const char **why)
{
	json_t *v, *rooms;
	int64_t lw = (int64_t)a->leeway;

	v = json_object_get(pl, "exp");
	if (!v) {
		*why = "token has no exp";
		return TOKEN_ECLAIMS;
	}
	if (numeric_date(v, 0, &out->exp) < 0) {
		*why = "exp must be a number of seconds";
		return TOKEN_ECLAIMS;
	}
	if ((v = json_object_get(pl, "nbf")) && numeric_date(v, 1, &out->nbf) < 0) {
		*why = "nbf must be a number of seconds";
		return TOKEN_ECLAIMS;
	}
	if ((v = json_object_get(pl, "iat")) && numeric_date(v, 0, &out->iat) < 0) {
		*why = "iat must be a number of seconds";
		return TOKEN_ECLAIMS;
	}

	v = json_object_get(pl, "sub");
	if (!v) {
		*why = "token has no sub";
		return TOKEN_ECLAIMS;
	}
	if (!json_is_string(v) || json_string_length(v) > TOKEN_SUB_MAX ||
	    !proto_name_valid(json_string_value(v), json_string_length(v))) {
		*why = "sub is not a valid user name";
		return TOKEN_ECLAIMS;
	}
	memcpy(out->sub, json_string_value(v), json_string_length(v));
	out->sub[json_string_length(v)] = '\0';

	rooms = json_object_get(pl, "rooms");
	if (rooms) {
		size_t budget = TOKEN_PATTERNS_MAX;
		if (!json_is_object(rooms)) {
			*why = "rooms must be an object";
			return TOKEN_ECLAIMS;
		}
		out->has_rooms = 1;
		if (load_patterns(json_object_get(rooms, "join"), &out->join, &out->njoin,
				  &budget, why) < 0 ||
		    load_patterns(json_object_get(rooms, "publish"), &out->publish,
				  &out->npublish, &budget, why) < 0)
			return TOKEN_ECLAIMS;
	}

	/* Time last: a token that is wrong in shape says so even when old. */
	if (now >= out->exp + lw) {
		*why = "token expired";
		return TOKEN_EEXPIRED;
	}
	if (out->nbf > now + lw) {
		*why = "token not yet valid";
		return TOKEN_ENOTYET;
	}
	return 0;
}

/* ------------------------------------------------------------------ verify */

int token_verify(const struct token_keys *a, const char *token, size_t len, int64_t now,
		struct token_claims *out, const char **why)
{
	/* decoded segments are at most 3/4 of the token */
	unsigned char hdr[TOKEN_TOKEN_MAX * 3 / 4 + 1], body[TOKEN_TOKEN_MAX * 3 / 4 + 1];
	unsigned char sig[TOKEN_TOKEN_MAX * 3 / 4 + 1], mac[EVP_MAX_MD_SIZE];
	const char *d1, *d2, *reason = NULL;
	json_t *h = NULL, *pl = NULL, *v;
	ssize_t hl, bl, sl;
	int rc = TOKEN_EMALFORMED, ok = 0;

	memset(out, 0, sizeof(*out));
	if (!token || len == 0) {
		reason = "empty token";
		goto done;
	}
	if (len > TOKEN_TOKEN_MAX) {
		reason = "token too long";
		goto done;
	}
	d1 = memchr(token, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
		reason = "a token has three dot-separated parts";
		goto done;
	}

	/* header: the algorithm is ours to choose, not the token's */
	hl = b64url_decode(token, (size_t)(d1 - token), hdr);
	if (hl <= 0) {
		reason = "header is not base64url";
		goto done;
	}
	h = json_loadb((const char *)hdr, (size_t)hl, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(h)) {
		reason = "header is not a JSON object";
		goto done;
	}
	v = json_object_get(h, "alg");
	if (!json_is_string(v) || strcmp(json_string_value(v), "HS256") ||
	    json_string_length(v) != 5) {
		rc = TOKEN_EALG;
		reason = "token algorithm must be HS256";
		goto done;
	}
	v = json_object_get(h, "typ");
	if (v && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT") ||
		  json_string_length(v) != 3)) {
		reason = "token typ must be JWT";
		goto done;
	}
	if (json_object_get(h, "crit")) {
		rc = TOKEN_EALG;
		reason = "critical header extensions are not supported";
		goto done;
	}

	/* signature over "header.payload", against each secret */
	sl = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig);
	if (sl != HS256_LEN) {
		rc = TOKEN_ESIG;
		reason = "bad signature";
		goto done;
	}
	for (int i = 0; i < a->nsecrets; i++) {
		unsigned int ml = 0;
		if (!HMAC(EVP_sha256(), a->key[i], (int)a->len[i],
			  (const unsigned char *)token, (size_t)(d2 - token), mac, &ml) ||
		    ml != HS256_LEN)
			continue;
		/* no early exit: the time taken does not tell which secret matched */
		ok |= !CRYPTO_memcmp(mac, sig, HS256_LEN);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!ok) {
		rc = TOKEN_ESIG;
		reason = "bad signature";
		goto done;
	}

	/* payload: authenticated from here on */
	bl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), body);
	if (bl <= 0) {
		reason = "payload is not base64url";
		goto done;
	}
	pl = json_loadb((const char *)body, (size_t)bl, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(pl)) {
		reason = "payload is not a JSON object";
		goto done;
	}
	rc = check_claims(a, pl, now, out, &reason);

done:
	json_decref(h);
	json_decref(pl);
	if (rc != TOKEN_OK) {
		token_claims_clear(out);
		if (why)
			*why = reason ? reason : token_strerror(rc);
	}
	return rc;
}

/* ---------------------------------------------------------- private rooms */

int token_name_private_ok(const char *name, size_t len)
{
	if (len < 1 || len > PROTO_NAME_MAX_CHARS)
		return 0;
	if (len == 2 && !memcmp(name, "dm", 2))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Bytewise order of two byte strings, like strcmp. */
static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int r = memcmp(a, b, al < bl ? al : bl);
	if (r)
		return r;
	return al < bl ? -1 : al > bl;
}

/* 1 if user may enter room[0..n) as far as the private-room rule goes. */
static int private_ok(const char *user, const char *room, size_t n)
{
	size_t ul;

	if (n == 0 || room[0] != '@')
		return 1;                    /* not reserved */
	if (!user)
		return 0;
	ul = strlen(user);
	if (!token_name_private_ok(user, ul))
		return 0;
	if (n >= 4 && !memcmp(room, "@dm:", 4)) {
		const char *x = room + 4, *colon = memchr(x, ':', n - 4);
		if (!colon)
			return 0;
		size_t xl = (size_t)(colon - x), yl = n - 4 - xl - 1;
		const char *y = colon + 1;
		/* both names valid (so neither holds ':'), in order, distinct */
		if (!token_name_private_ok(x, xl) || !token_name_private_ok(y, yl) ||
		    bytes_cmp(x, xl, y, yl) >= 0)
			return 0;
		return (xl == ul && !memcmp(x, user, ul)) || (yl == ul && !memcmp(y, user, ul));
	}
	/* @U or @U:...: the owner runs to the first ':' */
	const char *colon = memchr(room + 1, ':', n - 1);
	size_t ol = colon ? (size_t)(colon - room - 1) : n - 1;
	return ol == ul && !memcmp(room + 1, user, ul);
}

int token_may_join(const struct token_claims *c, const char *user,
		  const char *room, size_t room_len)
{
	if (!private_ok(c ? c->sub : user, room, room_len))
		return 0;
	if (c && c->has_rooms && !match_any(c->join, c->njoin, room, room_len))
		return 0;
	return 1;
}

int token_may_publish(const struct token_claims *c, const char *user,
		     const char *room, size_t room_len)
{
	if (!token_may_join(c, user, room, room_len))
		return 0;
	if (c && c->has_rooms && !match_any(c->publish, c->npublish, room, room_len))
		return 0;
	return 1;
}

int token_dm_room(const char *a, const char *b, char *out, size_t outlen)
{
	size_t al, bl;
	int r, n;

	if (!a || !b)
		return -1;
	al = strlen(a);
	bl = strlen(b);
	if (!token_name_private_ok(a, al) || !token_name_private_ok(b, bl))
		return -1;
	r = bytes_cmp(a, al, b, bl);
	if (r == 0)
		return -1;
	if (r > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	n = snprintf(out, outlen, "@dm:%s:%s", a, b);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}
