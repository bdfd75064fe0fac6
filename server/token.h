/*
 * token.h - token authentication (auth = token) and room access rules.
 *
 * Clients present an HS256 JSON Web Token (RFC 7519) in `hello` ("token")
 * or as ?token= on the upgrade URL. token_verify() checks it against the
 * secrets loaded by token_load() and returns its claims: the user name (sub)
 * and optional room patterns. token_may_join()/token_may_publish() then decide
 * each join and publish, in both auth modes (claims NULL in auth = none).
 * The scheme is specified in docs/security.md; token.c's header comment
 * explains it once more next to the code.
 *
 * No sockets and no global state: everything is callable from unit tests and
 * fuzzers. A struct token_keys is immutable after token_load(), so a reload builds a
 * new one and swaps it in (see token_load).
 */
#ifndef PARLEY_TOKEN_H
#define PARLEY_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_TOKEN_MAX       4096  /* bytes of a token, all three segments */
#define TOKEN_SECRET_MIN      32    /* bytes of a secret */
#define TOKEN_SECRET_MAX      4096  /* bytes of a secret */
#define TOKEN_SECRETS_MAX     2     /* current and previous (rotation) */
#define TOKEN_PATTERNS_MAX    256   /* room patterns of a token, join + publish */
#define TOKEN_PATTERN_MAX     128   /* bytes of one room pattern */
#define TOKEN_LEEWAY_DEFAULT  30    /* seconds of clock skew allowed on exp/nbf */
#define TOKEN_SUB_MAX         128   /* bytes of sub: 32 code points of UTF-8 */

/* One table for the verification results: code, value, name (for logs)
 * and default human reason. token_verify() may give a more precise reason
 * through *why. libuv-style: 0 is success, failures are negative. */
#define TOKEN_ERRNO_MAP(X)                                                   \
	X(TOKEN_EMALFORMED, -1, "malformed",     "malformed token")            \
	X(TOKEN_EALG,       -2, "bad_alg",       "unsupported token algorithm") \
	X(TOKEN_ESIG,       -3, "bad_signature", "bad signature")              \
	X(TOKEN_EEXPIRED,   -4, "expired",       "token expired")              \
	X(TOKEN_ENOTYET,    -5, "not_yet_valid", "token not yet valid")        \
	X(TOKEN_ECLAIMS,    -6, "bad_claims",    "missing or invalid claim")

enum token_err {
	TOKEN_OK = 0,
#define TOKEN_X_ENUM(code, val, name, msg) code = val,
	TOKEN_ERRNO_MAP(TOKEN_X_ENUM)
#undef TOKEN_X_ENUM
};

/* The code's short name ("expired", ...) for logs; "ok" for 0. */
const char *token_err_name(int err);
/* The code's default human reason. */
const char *token_strerror(int err);

/* Loaded secrets, immutable after token_load(). Opaque. */
struct token_keys;

/* Reads secret_file: one line (the current secret) or two lines (current,
 * then previous, during a rotation). Each line is used as is, as the HMAC
 * key (bytes, not decoded); a final newline (and a CR before a newline) is
 * stripped. Each secret must be 32-4096 bytes.
 * Returns 0 with *out set to a new struct token_keys (the caller owns it: release
 * with token_free), or -1 with a message in err (errlen bytes, NUL-ended)
 * and *out untouched. The leeway starts at TOKEN_LEEWAY_DEFAULT.
 * Reload (SIGHUP): load into a new pointer; on success free the old one and
 * use the new one; on failure keep the old one and log err. */
int token_load(struct token_keys **out, const char *secret_file, char *err, size_t errlen);
/* Wipes and frees the secrets and sets *a to NULL. NULL or *a NULL: no-op. */
void token_free(struct token_keys **a);
/* Seconds of clock skew tolerated on exp and nbf (default 30). */
void token_set_leeway(struct token_keys *a, unsigned seconds);
/* Number of secrets loaded (1 or 2). */
int token_secret_count(const struct token_keys *a);

/* The claims of a verified token. Owns its pattern strings: release with
 * token_claims_clear(). A zeroed struct is a valid empty one. */
struct token_claims {
	char sub[TOKEN_SUB_MAX + 1];  /* user name, valid per proto_name_valid */
	int64_t exp;                 /* seconds since the epoch */
	int64_t nbf, iat;            /* 0 when absent */
	int has_rooms;               /* 0: no "rooms" claim (no restriction) */
	char **join;                 /* owned; njoin NUL-ended patterns */
	size_t njoin;
	char **publish;              /* owned; npublish NUL-ended patterns */
	size_t npublish;
};

/* Verifies token[0..len) at time now (seconds since the epoch). Returns 0
 * with *out filled (the caller clears it), or a negative TOKEN_E* code with
 * *out empty (never use it for access checks then) and *why (if why is not
 * NULL) set to a static human reason ("token expired", "bad signature",
 * ...) that never contains token bytes: fit for the 4001 close reason and
 * logs. Never log the token itself. Reentrant: a is only read. */
int token_verify(const struct token_keys *a, const char *token, size_t len, int64_t now,
		struct token_claims *out, const char **why);
/* Frees the patterns and zeroes c. Safe on a zeroed or cleared struct. */
void token_claims_clear(struct token_claims *c);

/* Room access. c: the verified claims of the connection, or NULL in
 * auth = none. user: the connection's display name, used only when c is
 * NULL (with claims, the user is c->sub). room[0..room_len) must already be
 * a valid room name (proto_room_valid). Returns 1 if allowed, 0 if not.
 * A room is allowed when the claims' patterns allow it (no "rooms" claim
 * allows every room) AND the private-room rule allows the user. */
int token_may_join(const struct token_claims *c, const char *user,
		  const char *room, size_t room_len);
/* Publishing needs the join permission and a match in "publish" (no
 * "rooms" claim: the join permission alone). */
int token_may_publish(const struct token_claims *c, const char *user,
		     const char *room, size_t room_len);

/* 1 if name can own private rooms and take part in DM rooms: 1-32 bytes of
 * ASCII letters, digits and _ - . (no ':' or '@'), and not "dm". */
int token_name_private_ok(const char *name, size_t len);

/* Writes the DM room of users a and b, "@dm:<lesser>:<greater>" (bytewise
 * order), NUL-ended, to out. Returns its length, or -1 if a or b cannot
 * take part in DMs (token_name_private_ok), a equals b, or outlen is too
 * small (72 bytes always suffice). */
int token_dm_room(const char *a, const char *b, char *out, size_t outlen);

#endif
