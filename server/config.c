/* config.c - settings table, configuration file and command-line parsing
 * (config.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "netaddr.h"
#include "rurl.h"
#include "util.h"

#ifndef PARLEY_WEB_ROOT
#define PARLEY_WEB_ROOT "/usr/local/share/parley/web-client"
#endif
/* meson passes both from the install prefix; builds without it (the fuzzers) get these. */
#ifndef PARLEY_ADMIN_ROOT
#define PARLEY_ADMIN_ROOT "/usr/local/share/parley/web-admin"
#endif

#define ADMIN_LISTEN_DEFAULT "127.0.0.1:9180"

enum opt_type { OPT_STR, OPT_U32, OPT_OCTAL };

struct opt {
	const char *key;             /* config key; the flag is --key with '-' */
	char shortopt;
	enum opt_type type;
	size_t off;
	uint32_t min, max;
	const char *arg, *help;
};

#define O(field) offsetof(struct config, field)
static const struct opt opts[] = {
	{ "host", 0, OPT_STR, O(host), 0, 0, "ADDR", "listen address (default: all interfaces)" },
	{ "port", 'p', OPT_U32, O(port), 0, 65535, "N", "TCP port; 0 picks a free one (default 8080)" },
	{ "data_dir", 'd', OPT_STR, O(data_dir), 0, 0, "DIR", "directory of parley.db (default /var/lib/parley)" },
	{ "web_root", 0, OPT_STR, O(web_root), 0, 0, "DIR", "directory served at / (default " PARLEY_WEB_ROOT ")" },
	{ "max_message_size", 0, OPT_U32, O(max_message_size), 256, 16u << 20, "BYTES", "largest inbound message (default 65536)" },
	{ "send_queue_messages", 0, OPT_U32, O(send_queue_messages), 1, 1u << 24, "N", "per-connection send queue limit, messages (default 1000)" },
	{ "send_queue_bytes", 0, OPT_U32, O(send_queue_bytes), 1024, 1u << 30, "BYTES", "per-connection send queue limit, bytes (default 1048576)" },
	{ "max_rooms", 0, OPT_U32, O(max_rooms), 1, 1u << 20, "N", "rooms per connection (default 128)" },
	{ "presence_window_ms", 0, OPT_U32, O(presence_window_ms), 1, 60000, "MS", "presence batching window (default 100)" },
	{ "ping_interval", 0, OPT_U32, O(ping_interval), 1, 3600, "S", "idle seconds before a WebSocket ping (default 30)" },
	{ "ping_timeout", 0, OPT_U32, O(ping_timeout), 2, 7200, "S", "idle seconds before hang-up, > ping-interval (default 60)" },
	{ "history_cache", 0, OPT_U32, O(history_cache), 0, 1u << 20, "N", "recent messages kept in memory per room (default 256)" },
	{ "history_cache_bytes", 0, OPT_U32, O(history_cache_bytes), 0, UINT32_MAX, "BYTES", "memory of all rooms' history caches together; least recently used rooms are evicted first (default 67108864)" },
	{ "flush_interval_ms", 0, OPT_U32, O(flush_interval_ms), 1, 10000, "MS", "storage commit interval (default 50)" },
	{ "store_queue_messages", 0, OPT_U32, O(store_queue_messages), 16, 1u << 24, "N", "messages waiting for the disk at most (default 65536)" },
	{ "store_queue_bytes", 0, OPT_U32, O(store_queue_bytes), 65536, 1u << 31, "BYTES", "bytes waiting for the disk at most (default 67108864)" },
	{ "retain_messages", 0, OPT_U32, O(retain_messages), 0, UINT32_MAX, "N", "messages kept per room; 0 keeps all (default 0)" },
	{ "retain_seconds", 0, OPT_U32, O(retain_seconds), 0, UINT32_MAX, "S", "age of messages kept; 0 keeps all (default 0)" },
	{ "idempotency_window", 0, OPT_U32, O(idempotency_window), 1, 86400, "S", "seconds a publish key dedupes retries, per room (default 300)" },
	{ "drain_timeout", 0, OPT_U32, O(drain_timeout), 1, 600, "S", "seconds a shutdown waits for clients to take their queued frames (default 10); storage is flushed after it" },
	{ "log_level", 0, OPT_STR, O(log_level), 0, 0, "LEVEL", "debug, info, warn or error (default info)" },
	{ "log_file", 0, OPT_STR, O(log_file), 0, 0, "PATH", "append logs here instead of stderr; reopened on SIGHUP" },
	{ "unix_socket", 0, OPT_STR, O(unix_socket), 0, 0, "PATH", "also listen on this Unix socket (for a local proxy)" },
	{ "unix_socket_mode", 0, OPT_OCTAL, O(unix_socket_mode), 0, 0777, "MODE", "permissions of the Unix socket (default 0660)" },
	{ "no_tcp", 0, OPT_U32, O(no_tcp), 0, 1, "0|1", "1: listen only on the Unix socket (default 0)" },
	{ "tls_cert", 0, OPT_STR, O(tls_cert), 0, 0, "PATH", "PEM certificate chain: serve https/wss" },
	{ "tls_key", 0, OPT_STR, O(tls_key), 0, 0, "PATH", "PEM private key for tls_cert" },
	{ "trusted_proxies", 0, OPT_STR, O(trusted_proxies), 0, 0, "LIST", "addresses/CIDRs whose X-Forwarded-For is believed" },
	{ "admin_listen", 0, OPT_STR, O(admin_listen), 0, 0, "ADDR", "admin listener for /metrics and /healthz: HOST:PORT, unix:/PATH or off (default 127.0.0.1:9180)" },
	{ "public_metrics", 0, OPT_U32, O(public_metrics), 0, 1, "0|1", "1: also serve /metrics on the public listener (default 0)" },
	{ "reuse_port", 0, OPT_U32, O(reuse_port), 0, 1, "0|1", "1: share the public port with other parleyd (SO_REUSEPORT); each needs its own admin_listen (default 0)" },
	{ "auth", 0, OPT_STR, O(auth), 0, 0, "MODE", "none or token (HS256 JWT) (default none)" },
	{ "auth_secret_file", 0, OPT_STR, O(auth_secret_file), 0, 0, "PATH", "file holding the HS256 secret (auth = token)" },
	{ "auth_timeout", 0, OPT_U32, O(auth_timeout), 1, 300, "S", "seconds a connection has to authenticate (default 5)" },
	{ "token_grace", 0, OPT_U32, O(token_grace), 0, 86400, "S", "seconds a connection outlives its token's exp unless it sends refresh (default 60)" },
	{ "origins", 0, OPT_STR, O(origins), 0, 0, "LIST", "allowed browser Origins, comma-separated (default: any)" },
	{ "max_connections", 0, OPT_U32, O(max_connections), 0, UINT32_MAX, "N", "connections at most; 0: no limit (default 0)" },
	{ "max_connections_per_ip", 0, OPT_U32, O(max_connections_per_ip), 0, UINT32_MAX, "N", "connections per client address; 0: no limit (default 0)" },
	{ "rate_messages", 0, OPT_U32, O(rate_messages), 1, 1000000, "N", "commands per second per connection (default 1000)" },
	{ "rate_burst", 0, OPT_U32, O(rate_burst), 1, 1000000, "N", "command burst per connection (default 2000)" },
	{ "rate_joins", 0, OPT_U32, O(rate_joins), 1, 1000000, "N", "joins per second per connection (default 20)" },
	{ "rate_history", 0, OPT_U32, O(rate_history), 1, 1000000, "N", "history requests per second per connection (default 20)" },
	{ "rate_names", 0, OPT_U32, O(rate_names), 1, 1000000, "N", "name changes per minute per connection (default 10)" },
	{ "api_keys_file", 0, OPT_STR, O(api_keys_file), 0, 0, "PATH", "HTTP API keys, \"name key\" per line; unset: API off" },
	{ "api_public", 0, OPT_U32, O(api_public), 0, 1, "0|1", "1: serve /api on the public listener too (default 0)" },
	{ "admin_root", 0, OPT_STR, O(admin_root), 0, 0, "DIR", "the /admin dashboard's files, served on the admin listener only (default " PARLEY_ADMIN_ROOT ")" },
	{ "admin_feed_max", 0, OPT_U32, O(admin_feed_max), 1, 1000, "N", "live dashboard feeds (GET /api/admin/feed) open at once (default 8)" },
	{ "api_max_body", 0, OPT_U32, O(api_max_body), 1024, 64u << 20, "BYTES", "largest API request body (default 1048576)" },
	{ "api_body_timeout", 0, OPT_U32, O(api_body_timeout), 1, 300, "S", "seconds to send an API request body (default 10)" },
	{ "sio", 0, OPT_U32, O(sio), 0, 1, "0|1", "1: serve Socket.IO clients at /socket.io/ (default 1)" },
	{ "sio_ping_interval", 0, OPT_U32, O(sio_ping_interval), 50, 3600000, "MS", "Socket.IO (Engine.IO) pingInterval (default 25000)" },
	{ "sio_ping_timeout", 0, OPT_U32, O(sio_ping_timeout), 50, 3600000, "MS", "Socket.IO pong wait after a ping (default 20000)" },
	{ "sio_max_payload", 0, OPT_U32, O(sio_max_payload), 1024, 64u << 20, "BYTES", "Socket.IO maxPayload: largest frame (default 1000000)" },
	{ "sio_connect_timeout", 0, OPT_U32, O(sio_connect_timeout), 100, 3600000, "MS", "Socket.IO: time to send CONNECT after the handshake (default 45000)" },
	{ "sio_max_sessions", 0, OPT_U32, O(sio_max_sessions), 0, UINT32_MAX, "N", "Socket.IO sessions at most, polling or WebSocket; 0: no limit of its own (default 100000)" },
	{ "sio_recovery", 0, OPT_U32, O(sio_recovery), 0, 1, "0|1", "1: Socket.IO connection state recovery (default 1)" },
	{ "sio_recovery_window", 0, OPT_U32, O(sio_recovery_window), 1, 86400, "S", "Socket.IO: seconds a dropped session stays recoverable (default 120)" },
	{ "allow_self_delete", 0, OPT_U32, O(allow_self_delete), 0, 1, "0|1", "1: users may delete their own stored messages (default 1)" },
	{ "erase_step_rows", 0, OPT_U32, O(erase_step_rows), 1, 100000, "N", "rows an erase job looks at per transaction (default 2048)" },
	{ "cluster", 0, OPT_STR, O(cluster), 0, 0, "URL", "Redis of the cluster: redis://HOST:PORT[/DB] or unix:/PATH[?db=N]; unset: single node (docs/cluster.md)" },
	{ "cluster_password_file", 0, OPT_STR, O(cluster_password_file), 0, 0, "PATH", "file holding Redis's AUTH password (a password in --cluster is refused on the command line)" },
	{ "node_id", 0, OPT_STR, O(node_id), 0, 0, "ID", "this node's name in the cluster, unique (default HOSTNAME:PORT)" },
	{ "cluster_shards", 0, OPT_U32, O(cluster_shards), 1, 1024, "K", "log streams rooms are spread over; the same on every node, fixed for the cluster's life (default 16)" },
	{ "cluster_log_window", 0, OPT_U32, O(cluster_log_window), 1000, UINT32_MAX, "N", "entries kept per shard stream (XADD MAXLEN ~) (default 100000)" },
	{ "cluster_pending_max", 0, OPT_U32, O(cluster_pending_max), 1, 1u << 20, "N", "publishes waiting for Redis and their own apply at most; past it: overloaded (default 10000)" },
	{ "cluster_timeout_ms", 0, OPT_U32, O(cluster_timeout_ms), 100, 60000, "MS", "Redis connect and command timeout; a publish unanswered this long fails with unavailable (default 2000)" },
	{ "cluster_read_count", 0, OPT_U32, O(cluster_read_count), 1, 100000, "N", "log entries read per shard per XREAD (default 512)" },
	{ "cluster_read_delay_us", 0, OPT_U32, O(cluster_read_delay_us), 0, 100000, "US", "after an XREAD that brought entries, wait this long before the next one, so one read brings several (adds at most this to delivery latency; 0: read at once) (default 1000)" },
	{ "cluster_hold_ms", 0, OPT_U32, O(cluster_hold_ms), 100, 600000, "MS", "after a Redis restart, publishes wait this long (unavailable) while nodes restore what Redis lost (default 3000)" },
	{ "cluster_presence_ttl", 0, OPT_U32, O(cluster_presence_ttl), 3, 3600, "S", "seconds a node may go unheard before its members leave the rooms on the other nodes (default 15)" },
	{ "cluster_tls_ca", 0, OPT_STR, O(cluster_tls_ca), 0, 0, "PATH", "rediss://: PEM CA file Redis's certificate is checked against (default: the system store)" },
	{ "cluster_tls_cert", 0, OPT_STR, O(cluster_tls_cert), 0, 0, "PATH", "rediss://: PEM client certificate chain, for Redis's tls-auth-clients (with cluster_tls_key)" },
	{ "cluster_tls_key", 0, OPT_STR, O(cluster_tls_key), 0, 0, "PATH", "rediss://: PEM private key of cluster_tls_cert" },
	{ "cluster_tls_server_name", 0, OPT_STR, O(cluster_tls_server_name), 0, 0, "NAME", "rediss://: name or IP address Redis's certificate must carry, sent as SNI if a name (default: the URL's host)" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* --help sections (and deploy/parley.conf's): each starts at its key. */
static const struct {
	const char *key, *title;
} sections[] = {
	{ "host", "Listening and files" },
	{ "max_message_size", "Limits" },
	{ "history_cache", "Storage" },
	{ "drain_timeout", "Shutdown and logging" },
	{ "unix_socket", "Listeners, TLS and proxies" },
	{ "auth", "Who may connect, and how much" },
	{ "api_keys_file", "HTTP API for backends" },
	{ "sio", "Socket.IO clients" },
	{ "allow_self_delete", "Moderation" },
	{ "cluster", "Cluster through Redis" },
};

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->port = 8080;
	c->data_dir = xstrndup("/var/lib/parley", 15);
	c->web_root = xstrndup(PARLEY_WEB_ROOT, strlen(PARLEY_WEB_ROOT));
	c->admin_root = xstrndup(PARLEY_ADMIN_ROOT, strlen(PARLEY_ADMIN_ROOT));
	c->admin_feed_max = 8;
	c->max_message_size = 65536;
	c->send_queue_messages = 1000;
	c->send_queue_bytes = 1048576;
	c->max_rooms = 128;
	c->presence_window_ms = 100;
	c->ping_interval = 30;
	c->ping_timeout = 60;
	c->history_cache = 256;
	c->history_cache_bytes = 64u << 20;
	c->flush_interval_ms = 50;
	c->store_queue_messages = 65536;
	c->store_queue_bytes = 64u << 20;
	c->idempotency_window = 300;
	c->drain_timeout = 10;
	c->log_level = xstrndup("info", 4);
	c->unix_socket_mode = 0660;
	c->auth = xstrndup("none", 4);
	c->auth_timeout = 5;
	c->token_grace = 60;
	c->rate_messages = 1000;
	c->rate_burst = 2000;
	c->rate_joins = 20;
	c->rate_history = 20;
	c->rate_names = 10;
	c->api_max_body = 1048576;
	c->api_body_timeout = 10;
	c->sio = 1;
	c->sio_ping_interval = 25000;
	c->sio_ping_timeout = 20000;
	c->sio_max_payload = 1000000;
	c->sio_connect_timeout = 45000;
	c->sio_max_sessions = 100000;
	c->sio_recovery = 1;
	c->sio_recovery_window = 120;
	c->admin_listen = xstrndup(ADMIN_LISTEN_DEFAULT, strlen(ADMIN_LISTEN_DEFAULT));
	c->allow_self_delete = 1;
	c->erase_step_rows = 2048;
	c->cluster_shards = 16;
	c->cluster_log_window = 100000;
	c->cluster_pending_max = 10000;
	c->cluster_timeout_ms = 2000;
	c->cluster_read_count = 512;
	c->cluster_read_delay_us = 1000;
	c->cluster_hold_ms = 3000;
	c->cluster_presence_ttl = 15;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].type == OPT_STR) {
			char **p = (char **)((char *)c + opts[i].off);
			free(*p);
			*p = NULL;
		}
}

/* Copies s[0..n) into out for an error message: at most 60 bytes, control
 * characters shown as '?', "..." when cut. Returns out. */
static const char *show(const char *s, size_t n, char out[64])
{
	size_t k = n > 60 ? 57 : n;

	for (size_t i = 0; i < k; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (k < n)
		memcpy(out + k, "...", 3), k += 3;
	out[k] = '\0';
	return out;
}

/* Sets one option from its text value. Returns 0, or -1 with the reason
 * ("must be a whole number", ...) written to why. */
static int opt_set(struct config *c, const struct opt *o, const char *val,
		   char *why, size_t whylen)
{
	void *p = (char *)c + o->off;

	if (o->type == OPT_STR) {
		if (!*val) {
			snprintf(why, whylen, "must not be empty");
			return -1;
		}
		free(*(char **)p);
		*(char **)p = xstrndup(val, strlen(val));
		return 0;
	}
	/* Digits only: strtoull alone would take blanks, a sign and 0x. */
	const char *digits = o->type == OPT_OCTAL ? "01234567" : "0123456789";
	if (!*val || val[strspn(val, digits)]) {
		snprintf(why, whylen, "%s", o->type == OPT_OCTAL ?
			 "must be an octal number such as 0660" : "must be a whole number");
		return -1;
	}
	errno = 0;
	unsigned long long v = strtoull(val, NULL, o->type == OPT_OCTAL ? 8 : 10);
	if (errno || v < o->min || v > o->max) {
		if (o->type == OPT_OCTAL)
			snprintf(why, whylen, "is out of range (%#o to %#o)", o->min, o->max);
		else
			snprintf(why, whylen, "is out of range (%u to %u)", o->min, o->max);
		return -1;
	}
	*(uint32_t *)p = (uint32_t)v;
	return 0;
}

/* Finds the option for a flag name (dashes or underscores). */
static const struct opt *opt_find(const char *name, size_t n)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const char *k = opts[i].key;
		if (strlen(k) != n)
			continue;
		size_t j;
		for (j = 0; j < n; j++)
			if (!(k[j] == name[j] || (k[j] == '_' && name[j] == '-')))
				break;
		if (j == n)
			return &opts[i];
	}
	return NULL;
}

/* Finds the option for a config-file key, spelled exactly as in the table. */
static const struct opt *opt_find_key(const char *key, size_t n)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].key) == n && memcmp(opts[i].key, key, n) == 0)
			return &opts[i];
	return NULL;
}

const char *config_key(size_t i)
{
	return i < NOPTS ? opts[i].key : NULL;
}

const char *config_value(const struct config *c, const char *key, char *buf, size_t len)
{
	const struct opt *o = opt_find_key(key, strlen(key));

	if (!o)
		return NULL;
	const void *p = (const char *)c + o->off;
	if (o->type == OPT_STR)
		return *(char *const *)p;
	snprintf(buf, len, o->type == OPT_OCTAL ? "%#04o" : "%u", *(const uint32_t *)p);
	return buf;
}

/* ---- the configuration file ----
 *
 * One setting per line, `key = value`, keys exactly as in the table
 * (max_rooms, not max-rooms). Blank lines and lines whose first non-blank
 * character is '#' are ignored; elsewhere '#' starts a comment only when a
 * blank precedes it, so `origins = https://a.example/#x` keeps its '#'.
 * A value may be wrapped in double quotes to keep leading or trailing
 * blanks or a " #"; there are no escapes, so a quoted value cannot hold '"'.
 * A key given twice is an error: with flags for overrides, a second line is
 * far more likely a forgotten edit than an intent.
 */

#define CONFIG_FILE_MAX (1u << 20)

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Writes "NAME:LINE: message" to err. Returns -1. */
__attribute__((format(printf, 5, 6)))
static int line_err(char *err, size_t errlen, const char *name, unsigned line,
		    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return -1;
	n = snprintf(err, errlen, "%s:%u: ", name, line);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int config_parse_text(struct config *c, const char *name, const char *text, size_t len,
		      char *err, size_t errlen)
{
	unsigned seen[NOPTS] = { 0 };   /* line that set each key; 0: not yet */
	unsigned lineno = 0;
	size_t pos = 0;
	char s1[64], s2[96];

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;                /* a UTF-8 byte order mark, as some editors write */
	while (pos < len) {
		const char *l = text + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - l) : len - pos;

		pos += n + 1;
		lineno++;
		if (memchr(l, '\0', n))
			return line_err(err, errlen, name, lineno, "NUL byte in the line");
		while (n && is_blank(*l))
			l++, n--;
		while (n && is_blank(l[n - 1]))
			n--;
		if (!n || *l == '#')
			continue;

		const char *eq = memchr(l, '=', n);
		if (!eq)
			return line_err(err, errlen, name, lineno,
					"expected 'key = value', got '%s'", show(l, n, s1));
		size_t klen = (size_t)(eq - l);
		while (klen && is_blank(l[klen - 1]))
			klen--;
		if (!klen)
			return line_err(err, errlen, name, lineno, "missing key before '='");
		const struct opt *o = opt_find_key(l, klen);
		if (!o) {
			const struct opt *alt = opt_find(l, klen);
			if (alt)
				return line_err(err, errlen, name, lineno,
						"unknown key '%s' (keys use '_': %s)",
						show(l, klen, s1), alt->key);
			return line_err(err, errlen, name, lineno, "unknown key '%s'",
					show(l, klen, s1));
		}
		size_t oi = (size_t)(o - opts);
		if (seen[oi])
			return line_err(err, errlen, name, lineno,
					"duplicate key '%s' (first set on line %u)", o->key, seen[oi]);
		seen[oi] = lineno;

		const char *v = eq + 1, *vs;
		size_t vn = (size_t)(l + n - v), i = 0, vl;
		while (i < vn && is_blank(v[i]))
			i++;
		if (i < vn && v[i] == '"') {
			const char *q = memchr(v + i + 1, '"', vn - i - 1);
			if (!q)
				return line_err(err, errlen, name, lineno,
						"%s: missing closing quote", o->key);
			vs = v + i + 1;
			vl = (size_t)(q - vs);
			size_t j = (size_t)(q + 1 - v);
			while (j < vn && is_blank(v[j]))
				j++;
			if (j < vn && !(v[j] == '#' && is_blank(v[j - 1])))
				return line_err(err, errlen, name, lineno,
						"%s: unexpected text after the closing quote", o->key);
		} else {
			size_t j = i;
			while (j < vn && !(v[j] == '#' && j > 0 && is_blank(v[j - 1])))
				j++;
			while (j > i && is_blank(v[j - 1]))
				j--;
			vs = v + i;
			vl = j - i;
		}
		if (!vl)
			return line_err(err, errlen, name, lineno, "%s: missing value", o->key);

		char *val = xstrndup(vs, vl), why[64];
		int rc = opt_set(c, o, val, why, sizeof(why));
		free(val);
		if (rc < 0)
			return line_err(err, errlen, name, lineno, "%s: value '%s' %s",
					o->key, show(vs, vl, s2), why);
	}
	return 0;
}

int config_parse_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc = -1;

	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			text = xrealloc(text, cap);
		}
		size_t got = fread(text + len, 1, cap - len, f);
		len += got;
		if (len > CONFIG_FILE_MAX) {
			snprintf(err, errlen, "%s: larger than %u bytes", path, CONFIG_FILE_MAX);
			goto out;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	rc = config_parse_text(c, path, text, len, err, errlen);
out:
	free(text);
	fclose(f);
	return rc;
}

/* ---- the command line ---- */

void config_usage(FILE *f)
{
	fprintf(f, "usage: parleyd [options]\n\n"
		   "Parley real-time chat and pub/sub server.\n\n"
		   "  -h, --help                       show this help and exit\n"
		   "  -V, --version                    show the version and exit\n"
		   "  -c, --config FILE                read settings from FILE (key = value; flags win)\n"
		   "      --check-config               check the settings, print 'ok' and exit\n");
	for (size_t i = 0; i < NOPTS; i++) {
		char flag[64], *o = flag;
		for (size_t g = 0; g < sizeof(sections) / sizeof(sections[0]); g++)
			if (!strcmp(sections[g].key, opts[i].key))
				fprintf(f, "\n%s:\n", sections[g].title);
		if (opts[i].shortopt)
			o += sprintf(o, "-%c, ", opts[i].shortopt);
		else
			o += sprintf(o, "    ");
		o += sprintf(o, "--");
		for (const char *k = opts[i].key; *k; k++)
			*o++ = *k == '_' ? '-' : *k;
		sprintf(o, " %s", opts[i].arg);
		fprintf(f, "  %-32s %s\n", flag, opts[i].help);
	}
	fprintf(f, "\nEvery option is also a config-file key, spelled with '_' (max_rooms).\n"
		   "Documentation: docs/configuration.md, docs/protocol.md\n");
}

/* Recognises a settings flag (--key, --key=value, -p). Returns its option,
 * with *val set for the --key=value form, or NULL. */
static const struct opt *arg_opt(const char *a, const char **val)
{
	*val = NULL;
	if (a[0] == '-' && a[1] == '-') {
		const char *eq = strchr(a + 2, '=');
		size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (eq)
			*val = eq + 1;
		return opt_find(a + 2, n);
	}
	if (a[0] == '-' && a[1] && !a[2])
		for (size_t k = 0; k < NOPTS; k++)
			if (opts[k].shortopt == a[1])
				return &opts[k];
	return NULL;
}

/* -c FILE, --config FILE or --config=FILE at argv[*i]: returns the file
 * name and advances *i past a separate value; NULL if argv[*i] is another
 * argument. *missing is set when the value is absent. */
static const char *arg_config(int argc, char **argv, int *i, int *missing)
{
	const char *a = argv[*i];

	*missing = 0;
	if (!strncmp(a, "--config=", 9))
		return a + 9;
	if (strcmp(a, "-c") && strcmp(a, "--config"))
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

int config_parse_args(struct config *c, int argc, char **argv)
{
	const char *file = NULL, *val, *f;
	int check = 0, missing;
	char err[512], why[64], s[64];

	/* Pass 1: help, version, the file and --check-config. The file is
	 * read before any flag, so flags win whatever their order. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			config_usage(stdout);
			return 1;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("parleyd %s\n", PARLEY_VERSION);
			return 1;
		}
		if (!strcmp(a, "--check-config")) {
			check = 1;
		} else if ((f = arg_config(argc, argv, &i, &missing)) || missing) {
			if (missing) {
				fprintf(stderr, "parleyd: option '%s' needs a value\n", a);
				return -1;
			}
			if (file) {
				fprintf(stderr, "parleyd: only one configuration file (-c) may be given\n");
				return -1;
			}
			file = f;
		} else if (arg_opt(a, &val) && !val) {
			i++;    /* its value, which may start with '-' */
		}
	}
	if (file && config_parse_file(c, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "parleyd: %s\n", err);
		return -1;
	}

	/* Pass 2: the flags. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o;

		if (!strcmp(a, "--check-config") || arg_config(argc, argv, &i, &missing))
			continue;
		o = arg_opt(a, &val);
		if (!o) {
			fprintf(stderr, "parleyd: unknown option '%s' (see --help)\n", a);
			return -1;
		}
		if (!val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "parleyd: option '%s' needs a value\n", a);
				return -1;
			}
			val = argv[++i];
		}
		/* A password in argv is visible to every local user (ps, /proc):
		 * the command line takes it from a file only. */
		if (!strcmp(o->key, "cluster") && strchr(val, '@')) {
			fprintf(stderr, "parleyd: option '%s': a password on the command line is visible "
				"in ps; put it in cluster_password_file (or in the configuration file)\n", a);
			return -1;
		}
		if (opt_set(c, o, val, why, sizeof(why)) < 0) {
			fprintf(stderr, "parleyd: option '%s': value '%s' %s\n", a,
				show(val, strlen(val), s), why);
			return -1;
		}
	}

	if (check) {
		if (config_validate(c) < 0)
			return -1;
		printf("parleyd: %s: ok\n", file ? file : "command line");
		return 1;
	}
	return 0;
}

/* The cluster_tls_* options fit together and with the URL: they mean
 * something with rediss:// only (set without it, the user believes the
 * link is encrypted when it is not), and a certificate needs its key. */
static int config_check_cluster_tls(const struct config *c, int tls)
{
	const char *set = c->cluster_tls_ca ? "cluster_tls_ca" : c->cluster_tls_cert ? "cluster_tls_cert"
			: c->cluster_tls_key ? "cluster_tls_key"
			: c->cluster_tls_server_name ? "cluster_tls_server_name" : NULL;

	if (set && !tls) {
		fprintf(stderr, "parleyd: %s is set but cluster is not a rediss:// URL: the connection to "
			"Redis would not be TLS\n", set);
		return -1;
	}
	if (!c->cluster_tls_cert != !c->cluster_tls_key) {
		fprintf(stderr, "parleyd: cluster_tls_cert and cluster_tls_key go together\n");
		return -1;
	}
	if (c->cluster_tls_server_name &&
	    (!c->cluster_tls_server_name[0] || strlen(c->cluster_tls_server_name) > 253)) {
		fprintf(stderr, "parleyd: cluster_tls_server_name must be 1 to 253 bytes\n");
		return -1;
	}
	return 0;
}

int config_validate(const struct config *c)
{
	enum log_level l;

	if (c->ping_timeout <= c->ping_interval) {
		fprintf(stderr, "parleyd: ping_timeout (%u) must be greater than ping_interval (%u)\n",
			c->ping_timeout, c->ping_interval);
		return -1;
	}
	if (strcmp(c->auth, "none") && strcmp(c->auth, "token")) {
		fprintf(stderr, "parleyd: auth '%s' must be none or token\n", c->auth);
		return -1;
	}
	if (!strcmp(c->auth, "token") && !c->auth_secret_file) {
		fprintf(stderr, "parleyd: auth = token needs auth_secret_file\n");
		return -1;
	}
	if (!c->tls_cert != !c->tls_key) {
		fprintf(stderr, "parleyd: tls_cert and tls_key go together\n");
		return -1;
	}
	if (c->no_tcp && !c->unix_socket) {
		fprintf(stderr, "parleyd: no_tcp = 1 needs unix_socket\n");
		return -1;
	}
	struct listen_addr la;
	char why[128];
	if (netaddr_parse_listen(c->admin_listen, &la, why, sizeof(why)) < 0) {
		fprintf(stderr, "parleyd: admin_listen '%s': %s\n", c->admin_listen, why);
		return -1;
	}
	/* Nodes sharing the public port must not share an admin listener:
	 * the second would fail to bind the default one, or, worse, scrapes
	 * would reach whichever node answers. Refuse the default outright, on
	 * every node, rather than let the first start and the second fail. */
	if (c->reuse_port && !la.off && !la.path[0] && !strcmp(c->admin_listen, ADMIN_LISTEN_DEFAULT)) {
		fprintf(stderr, "parleyd: reuse_port = 1 needs a per-node admin_listen (its own HOST:PORT, "
			"unix:/PATH or off), not the default %s that every node would claim\n",
			ADMIN_LISTEN_DEFAULT);
		return -1;
	}
	/* The default node_id is HOSTNAME:PORT: the same for every node
	 * sharing the port, and node ids must be unique in a cluster. */
	if (c->reuse_port && c->cluster && !c->node_id) {
		fprintf(stderr, "parleyd: reuse_port = 1 in a cluster needs node_id: the default "
			"HOSTNAME:PORT would be the same on every node sharing the port\n");
		return -1;
	}
	if (log_parse_level(c->log_level, &l) < 0) {
		fprintf(stderr, "parleyd: log_level '%s' must be debug, info, warn or error\n",
			c->log_level);
		return -1;
	}
	/* One largest message must fit an empty send queue, or every member
	 * of a room would be closed with 4008 by one publish; and so must a
	 * history page holding one (pages are cut to the queue's bytes). */
	if ((uint64_t)c->send_queue_bytes < (uint64_t)c->max_message_size + REPLY_PAGE_OVERHEAD) {
		fprintf(stderr, "parleyd: send_queue_bytes (%u) must be at least max_message_size (%u) + %d: "
			"one largest message, or a history page holding it, would close its reader with 4008\n",
			c->send_queue_bytes, c->max_message_size, REPLY_PAGE_OVERHEAD);
		return -1;
	}
	if (c->cluster) {
		struct rurl_addr ra;
		if (rurl_parse(c->cluster, &ra, why, sizeof(why)) < 0) {
			fprintf(stderr, "parleyd: cluster '%s': %s\n", ra.password[0] ? "(hidden)" : c->cluster, why);
			return -1;
		}
		if (ra.password[0] && c->cluster_password_file) {
			fprintf(stderr, "parleyd: cluster has a password and cluster_password_file is set: give one\n");
			return -1;
		}
		if (config_check_cluster_tls(c, ra.tls) < 0)
			return -1;
		/* Every pending publish becomes a store append when it is applied:
		 * more of them than the store queue holds would overflow it. */
		if (c->cluster_pending_max > c->store_queue_messages) {
			fprintf(stderr, "parleyd: cluster_pending_max (%u) must not exceed store_queue_messages (%u)\n",
				c->cluster_pending_max, c->store_queue_messages);
			return -1;
		}
		/* A node reads up to K x count entries per XREAD; the window must
		 * keep far more than one read's worth or a short stall trims away
		 * what a node has not read yet. */
		if ((uint64_t)c->cluster_log_window < 4ull * c->cluster_read_count) {
			fprintf(stderr, "parleyd: cluster_log_window (%u) must be at least 4 x cluster_read_count (%u)\n",
				c->cluster_log_window, 4 * c->cluster_read_count);
			return -1;
		}
		if (c->cluster_hold_ms < c->cluster_timeout_ms) {
			fprintf(stderr, "parleyd: cluster_hold_ms (%u) must be at least cluster_timeout_ms (%u): "
				"nodes need one timeout to notice the restart\n", c->cluster_hold_ms, c->cluster_timeout_ms);
			return -1;
		}
	} else if (c->cluster_password_file) {
		fprintf(stderr, "parleyd: cluster_password_file is set without cluster\n");
		return -1;
	} else if (config_check_cluster_tls(c, 0) < 0) {
		return -1;
	}
	/* Rate limits that make a reconnect fail: a client in max_rooms rooms
	 * re-joins each and reads one history page of each, all commands. */
	if ((uint64_t)c->rate_burst < 2ull * c->max_rooms + 2)
		fprintf(stderr, "parleyd: warning: rate_burst (%u) is below 2 x max_rooms + 2 (%u): a client "
			"in max_rooms rooms cannot re-join and page each of them after a reconnect without "
			"rate_limited\n", c->rate_burst, 2 * c->max_rooms + 2);
	return 0;
}
