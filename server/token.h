/*
 * token.h - token authentication (auth = token) and room access rules.
 *
 * Clients present an HS256 JSON Web Token (RFC 7519) in `hello` ("token")
 * or as ?token= on the upgrade URL. auth_verify() checks it against the
 * secrets loaded by auth_load() and returns its claims: the user name (sub)
 * and optional room patterns. auth_may_join()/auth_may_publish() then decide
 * each join and publish, in both auth modes (claims NULL in auth = none).
 * The scheme is specified in docs/security.md; token.c's header comment
 * explains it once more next to the code.
 *
 * No sockets and no global state: everything is callable from unit tests and
 * fuzzers. A struct auth is immutable after auth_load(), so a reload builds a
 * new one and swaps it in (see auth_load).
 */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_MAX       4096  /* bytes of a token, all three segments */
#define AUTH_SECRET_MIN      32    /* bytes of a secret */
#define AUTH_SECRET_MAX      4096  /* bytes of a secret */
#define AUTH_SECRETS_MAX     2     /* current and previous (rotation) */
#define AUTH_PATTERNS_MAX    256   /* room patterns of a token, join + publish */
#define AUTH_PATTERN_MAX     128   /* bytes of one room pattern */
#define AUTH_LEEWAY_DEFAULT  30    /* seconds of clock skew allowed on exp/nbf */
#define AUTH_SUB_MAX         128   /* bytes of sub: 32 code points of UTF-8 */

/* One table for the verification results: code, value, name (for logs)
 * and default human reason. auth_verify() may give a more precise reason
 * through *why. libuv-style: 0 is success, failures are negative. */
#define AUTH_ERRNO_MAP(X)                                                   \
	X(AUTH_EMALFORMED, -1, "malformed",     "malformed token")            \
	X(AUTH_EALG,       -2, "bad_alg",       "unsupported token algorithm") \
	X(AUTH_ESIG,       -3, "bad_signature", "bad signature")              \
	X(AUTH_EEXPIRED,   -4, "expired",       "token expired")              \
	X(AUTH_ENOTYET,    -5, "not_yet_valid", "token not yet valid")        \
	X(AUTH_ECLAIMS,    -6, "bad_claims",    "missing or invalid claim")

enum auth_err {
	AUTH_OK = 0,
#define AUTH_X_ENUM(code, val, name, msg) code = val,
	AUTH_ERRNO_MAP(AUTH_X_ENUM)
#undef AUTH_X_ENUM
};

/* The code's short name ("expired", ...) for logs; "ok" for 0. */
const char *auth_err_name(int err);
/* The code's default human reason. */
const char *auth_strerror(int err);

/* Loaded secrets, immutable after auth_load(). Opaque. */
struct auth;

/* Reads secret_file: one line (the current secret) or two lines (current,
 * then previous, during a rotation). Each line is used as is, as the HMAC
 * key (bytes, not decoded); a final newline (and a CR before a newline) is
 * stripped. Each secret must be 32-4096 bytes.
 * Returns 0 with *out set to a new struct auth (the caller owns it: release
 * with auth_free), or -1 with a message in err (errlen bytes, NUL-ended)
 * and *out untouched. The leeway starts at AUTH_LEEWAY_DEFAULT.
 * Reload (SIGHUP): load into a new pointer; on success free the old one and
 * use the new one; on failure keep the old one and log err. */
int auth_load(struct auth **out, const char *secret_file, char *err, size_t errlen);
/* Wipes and frees the secrets and sets *a to NULL. NULL or *a NULL: no-op. */
void auth_free(struct auth **a);
/* Seconds of clock skew tolerated on exp and nbf (default 30). */
void auth_set_leeway(struct auth *a, unsigned seconds);
/* Number of secrets loaded (1 or 2). */
int auth_secret_count(const struct auth *a);

/* The claims of a verified token. Owns its pattern strings: release with
 * auth_claims_clear(). A zeroed struct is a valid empty one. */
struct auth_claims {
	char sub[AUTH_SUB_MAX + 1];  /* user name, valid per proto_name_valid */
	int64_t exp;                 /* seconds since the epoch */
	int64_t nbf, iat;            /* 0 when absent */
	int has_rooms;               /* 0: no "rooms" claim (no restriction) */
	char **join;                 /* owned; njoin NUL-ended patterns */
	size_t njoin;
	char **publish;              /* owned; npublish NUL-ended patterns */
	size_t npublish;
};

/* Verifies token[0..len) at time now (seconds since the epoch). Returns 0
 * with *out filled (the caller clears it), or a negative AUTH_E* code with
 * *out empty (never use it for access checks then) and *why (if why is not
 * NULL) set to a static human reason ("token expired", "bad signature",
 * ...) that never contains token bytes: fit for the 4001 close reason and
 * logs. Never log the token itself. Reentrant: a is only read. */
int auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
		struct auth_claims *out, const char **why);
/* Frees the patterns and zeroes c. Safe on a zeroed or cleared struct. */
void auth_claims_clear(struct auth_claims *c);

/* Room access. c: the verified claims of the connection, or NULL in
 * auth = none. user: the connection's display name, used only when c is
 * NULL (with claims, the user is c->sub). room[0..room_len) must already be
 * a valid room name (proto_room_valid). Returns 1 if allowed, 0 if not.
 * A room is allowed when the claims' patterns allow it (no "rooms" claim
 * allows every room) AND the private-room rule allows the user. */
int auth_may_join(const struct auth_claims *c, const char *user,
		  const char *room, size_t room_len);
/* Publishing needs the join permission and a match in "publish" (no
 * "rooms" claim: the join permission alone). */
int auth_may_publish(const struct auth_claims *c, const char *user,
		     const char *room, size_t room_len);

/* 1 if name can own private rooms and take part in DM rooms: 1-32 bytes of
 * ASCII letters, digits and _ - . (no ':' or '@'), and not "dm". */
int auth_name_private_ok(const char *name, size_t len);

/* Writes the DM room of users a and b, "@dm:<lesser>:<greater>" (bytewise
 * order), NUL-ended, to out. Returns its length, or -1 if a or b cannot
 * take part in DMs (auth_name_private_ok), a equals b, or outlen is too
 * small (72 bytes always suffice). */
int auth_dm_room(const char *a, const char *b, char *out, size_t outlen);

#endif
