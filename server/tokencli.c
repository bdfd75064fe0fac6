/*
 * tokencli.c - `parleyd token` and `parleyd check-token`: make a client
 * token for auth = token, and explain one (tokencli.h).
 *
 * A token made here is checked with token_verify() before it is printed, so
 * it carries exactly the claims the server accepts (a bad --sub or room
 * pattern is refused here, not at connect time). check-token prints what a
 * token says (decoded without trusting it), then the verdict of the same
 * token_verify() the server runs, with the same secret file.
 */
#include "tokencli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "token.h"
#include "proto.h"
#include "util.h"

static void usage_token(FILE *f)
{
	fprintf(f,
		"usage: parleyd token --secret-file FILE --sub USER [--ttl DURATION]\n"
		"                     [--rooms PATTERNS] [--join PATTERNS] [--publish PATTERNS] [--mod]\n"
		"  Prints an HS256 client token signed with FILE's current secret.\n"
		"  --ttl       lifetime: N, Ns, Nm, Nh or Nd (default 1h)\n"
		"  --rooms     comma-separated room patterns to join and publish in ('team-42:*')\n"
		"  --join      patterns to join only; --publish: patterns to publish in\n"
		"              (without --rooms/--join/--publish the token allows every room)\n"
		"  --mod       the user is a moderator (delete any message, erase, ban)\n");
}

static void usage_check(FILE *f)
{
	fprintf(f,
		"usage: parleyd check-token --secret-file FILE TOKEN\n"
		"  Explains TOKEN's claims and checks it as parleyd would (TOKEN '-': read stdin).\n"
		"  Exit status: 0 valid, 1 invalid (the reason is printed), 2 usage error.\n");
}

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 if malformed or over ten years. */
static long long parse_duration(const char *s)
{
	char *end;
	long long n;

	if (!s || *s < '0' || *s > '9')
		return -1;
	n = strtoll(s, &end, 10);
	if (n <= 0)
		return -1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': n *= 60; break;
	case 'h': n *= 3600; break;
	case 'd': n *= 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (n > 315360000LL)
		return -1;
	return n;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
	}
	out[o] = '\0';
}

/* Lenient base64url decode for display only (the verdict comes from
 * token_verify). Returns a malloc'd NUL-ended buffer or NULL. */
static char *b64url_show(const char *s, size_t n)
{
	char *out = xmalloc(n * 3 / 4 + 2);
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
			c >= '0' && c <= '9' ? c - '0' + 52 : c == '-' ? 62 : c == '_' ? 63 : -1;
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	out[o] = '\0';
	return out;
}

/* Adds comma-separated patterns to a JSON array. */
static void add_patterns(json_t *arr, const char *list)
{
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (n)
			json_array_append_new(arr, json_stringn(p, n));
		p += n + (comma ? 1 : 0);
	}
}

static int load_secret(const char *file, struct token_keys **a)
{
	char err[512];
	if (!file) {
		fprintf(stderr, "parleyd: --secret-file is required\n");
		return -1;
	}
	if (token_load(a, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "parleyd: %s\n", err);
		return -1;
	}
	return 0;
}

static void fmt_time(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_token(int argc, char **argv)
{
	const char *file = NULL, *sub = NULL, *rooms = NULL, *join = NULL, *publish = NULL;
	const char *ttl_s = "1h";
	int mod = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = !strcmp(a, "--secret-file") ? &file : !strcmp(a, "--sub") ? &sub :
				   !strcmp(a, "--rooms") ? &rooms : !strcmp(a, "--join") ? &join :
				   !strcmp(a, "--publish") ? &publish : !strcmp(a, "--ttl") ? &ttl_s : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage_token(stdout);
			return 0;
		}
		if (!strcmp(a, "--mod")) {
			mod = 1;
			continue;
		}
		if (!dst || i + 1 >= argc) {
			fprintf(stderr, "parleyd token: %s %s\n", a, dst ? "needs a value" : "is not an option");
			usage_token(stderr);
			return 2;
		}
		*dst = argv[++i];
	}
	if (!sub) {
		fprintf(stderr, "parleyd token: --sub is required\n");
		usage_token(stderr);
		return 2;
	}
	long long ttl = parse_duration(ttl_s);
	if (ttl < 0) {
		fprintf(stderr, "parleyd token: --ttl %s: use N, Ns, Nm, Nh or Nd (at most ten years)\n",
			ttl_s);
		return 2;
	}
	struct token_keys *a = NULL;
	if (load_secret(file, &a) < 0)
		return 2;

	int64_t now = util_now_ms() / 1000;
	json_t *claims = json_object();
	json_object_set_new(claims, "sub", json_string(sub));
	json_object_set_new(claims, "iat", json_integer(now));
	json_object_set_new(claims, "exp", json_integer(now + ttl));
	if (rooms || join || publish) {
		json_t *r = json_object(), *j = json_array(), *p = json_array();
		if (rooms) {
			add_patterns(j, rooms);
			add_patterns(p, rooms);
		}
		if (join)
			add_patterns(j, join);
		if (publish) {
			add_patterns(p, publish);
			add_patterns(j, publish); /* publishing needs the join permission */
		}
		json_object_set_new(r, "join", j);
		json_object_set_new(r, "publish", p);
		json_object_set_new(claims, "rooms", r);
	}
	if (mod)
		json_object_set_new(claims, "mod", json_true());
	char *payload = json_dumps(claims, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(claims);
	if (!payload) {
		fprintf(stderr, "parleyd token: --sub must be UTF-8\n");
		token_free(&a);
		return 2;
	}

	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	size_t plen = strlen(payload);
	size_t cap = (sizeof(header) + plen) * 4 / 3 + 64 + 8;
	char *tok = xmalloc(cap);
	b64url((const unsigned char *)header, sizeof(header) - 1, tok);
	size_t n = strlen(tok);
	tok[n++] = '.';
	b64url((const unsigned char *)payload, plen, tok + n);
	n += strlen(tok + n);
	free(payload);
	unsigned char mac[32];
	if (token_sign(a, tok, n, mac) < 0) {
		fprintf(stderr, "parleyd token: signing failed\n");
		free(tok);
		token_free(&a);
		return 2;
	}
	tok[n++] = '.';
	b64url(mac, sizeof(mac), tok + n);

	/* What the server will say about it: refuse to print a token it
	 * would not accept. */
	struct token_claims c;
	const char *why = NULL;
	int rc = token_verify(a, tok, strlen(tok), now, &c, &why);
	token_claims_clear(&c);
	token_free(&a);
	if (rc < 0) {
		fprintf(stderr, "parleyd token: parleyd would refuse this token: %s\n", why);
		free(tok);
		return 2;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}

static void print_patterns(const char *label, char **list, size_t n)
{
	printf("  %-9s", label);
	if (!n)
		printf(" (none)");
	for (size_t i = 0; i < n; i++)
		printf(" %s", list[i]);
	printf("\n");
}

/* Prints a duration from now, "in 59m 58s" or "3h 2m ago". */
static void print_rel(int64_t t, int64_t now)
{
	int64_t d = t - now, a = d < 0 ? -d : d;
	char buf[64];
	if (a >= 86400)
		snprintf(buf, sizeof(buf), "%lldd %lldh", (long long)(a / 86400), (long long)(a % 86400 / 3600));
	else if (a >= 3600)
		snprintf(buf, sizeof(buf), "%lldh %lldm", (long long)(a / 3600), (long long)(a % 3600 / 60));
	else if (a >= 60)
		snprintf(buf, sizeof(buf), "%lldm %llds", (long long)(a / 60), (long long)(a % 60));
	else
		snprintf(buf, sizeof(buf), "%llds", (long long)a);
	printf(d > 0 ? "in %s" : "%s ago", buf);
}

static int cmd_check(int argc, char **argv)
{
	const char *file = NULL, *tok = NULL;
	char line[TOKEN_TOKEN_MAX + 4];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage_check(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--secret-file") && i + 1 < argc) {
			file = argv[++i];
		} else if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
			fprintf(stderr, "parleyd check-token: %s is not an option\n", argv[i]);
			usage_check(stderr);
			return 2;
		} else if (!tok) {
			tok = argv[i];
		} else {
			fprintf(stderr, "parleyd check-token: one token at a time\n");
			return 2;
		}
	}
	if (!tok) {
		usage_check(stderr);
		return 2;
	}
	if (!strcmp(tok, "-")) {
		if (!fgets(line, sizeof(line), stdin)) {
			fprintf(stderr, "parleyd check-token: no token on stdin\n");
			return 2;
		}
		line[strcspn(line, "\r\n")] = '\0';
		tok = line;
	}
	struct token_keys *a = NULL;
	if (load_secret(file, &a) < 0)
		return 2;

	/* What the token says, before any check (do not trust it yet). */
	size_t len = strlen(tok);
	const char *d1 = memchr(tok, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (d1 && d2) {
		char *h = b64url_show(tok, (size_t)(d1 - tok));
		char *p = b64url_show(d1 + 1, (size_t)(d2 - d1 - 1));
		printf("header:  %s\n", h ? h : "(not base64url)");
		printf("payload: %s\n", p ? p : "(not base64url)");
		free(h);
		free(p);
	}

	int64_t now = util_now_ms() / 1000;
	struct token_claims c;
	const char *why = NULL;
	int rc = token_verify(a, tok, len, now, &c, &why);
	token_free(&a);
	if (rc < 0) {
		printf("invalid: %s (%s)\n", why, token_err_name(rc));
		return 1;
	}
	char t[32];
	printf("claims:\n");
	printf("  user      %s\n", c.sub);
	if (c.iat) {
		fmt_time(c.iat, t, sizeof(t));
		printf("  issued    %s (", t);
		print_rel(c.iat, now);
		printf(")\n");
	}
	if (c.nbf) {
		fmt_time(c.nbf, t, sizeof(t));
		printf("  not before %s\n", t);
	}
	fmt_time(c.exp, t, sizeof(t));
	printf("  expires   %s (", t);
	print_rel(c.exp, now);
	printf(")\n");
	if (c.has_rooms) {
		print_patterns("join", c.join, c.njoin);
		print_patterns("publish", c.publish, c.npublish);
	} else {
		printf("  rooms     any (no rooms claim)\n");
	}
	printf("  moderator %s\n", c.mod ? "yes" : "no");
	printf("valid: signature ok with this secret file, within its time window\n");
	token_claims_clear(&c);
	return 0;
}

int tokencli_main(int argc, char **argv)
{
	if (!strcmp(argv[0], "token"))
		return cmd_token(argc, argv);
	return cmd_check(argc, argv);
}

int tokencli_is_command(const char *arg)
{
	return arg && (!strcmp(arg, "token") || !strcmp(arg, "check-token"));
}
