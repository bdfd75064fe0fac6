/*
 * config.h - parleyd settings: defaults, the option table, the configuration
 * file and command-line parsing. Every setting is one row of the table in
 * config.c, which gives its key (also its --flag, with '-' for '_'), type,
 * range and help text. Precedence: defaults, then the file (-c), then flags.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
	char *host;                  /* NULL: all interfaces */
	uint32_t port;
	char *data_dir;
	char *web_root;
	uint32_t max_message_size;
	uint32_t send_queue_messages;
	uint32_t send_queue_bytes;
	uint32_t max_rooms;
	uint32_t presence_window_ms;
	uint32_t ping_interval;
	uint32_t ping_timeout;
	uint32_t history_cache;
	uint32_t history_cache_bytes; /* all rooms' caches together */
	uint32_t flush_interval_ms;
	uint32_t store_queue_messages;
	uint32_t store_queue_bytes;
	uint32_t retain_messages;
	uint32_t retain_seconds;
	uint32_t idempotency_window; /* seconds a publish key is remembered */
	uint32_t drain_timeout;
	char *log_level;
	char *log_file;              /* NULL: stderr; reopened on SIGHUP */

	/* listeners and TLS */
	char *unix_socket;           /* NULL: none */
	uint32_t unix_socket_mode;   /* octal, e.g. 0660 */
	uint32_t no_tcp;             /* 1: only the Unix socket */
	char *tls_cert, *tls_key;    /* both set: TLS on the TCP listener */
	char *trusted_proxies;       /* comma-separated addresses/CIDRs */
	char *admin_listen;          /* /metrics, /healthz: HOST:PORT, unix:/PATH or off */
	uint32_t public_metrics;     /* 1: /metrics on the public listener too */
	uint32_t reuse_port;         /* 1: SO_REUSEPORT on the public TCP listener */

	/* who may connect, and how much */
	char *auth;                  /* "none" or "token" */
	char *auth_secret_file;      /* HS256 secret, for auth = token */
	uint32_t auth_timeout;       /* seconds to authenticate */
	uint32_t token_grace;        /* seconds an open connection outlives its token's exp */
	char *origins;               /* comma-separated allowed Origin values; NULL: any */
	uint32_t max_connections;    /* 0: no limit */
	uint32_t max_connections_per_ip;
	uint32_t rate_messages;      /* per second, per connection */
	uint32_t rate_burst;
	uint32_t rate_joins;         /* per second */
	uint32_t rate_history;       /* per second */
	uint32_t rate_names;         /* name changes per minute */
	uint32_t sio;                /* 1: serve Socket.IO clients at /socket.io/ */
	uint32_t sio_ping_interval;  /* Engine.IO pingInterval, ms */
	uint32_t sio_ping_timeout;   /* Engine.IO pingTimeout, ms */
	uint32_t sio_max_payload;    /* Engine.IO maxPayload, bytes */
	uint32_t sio_connect_timeout; /* ms from the open packet to CONNECT */
	uint32_t sio_recovery;       /* 1: connection state recovery (pid/offset) */
	uint32_t sio_max_sessions;   /* Engine.IO sessions at most; 0: no own limit */
	uint32_t sio_recovery_window; /* s a dropped session stays recoverable */

	/* the HTTP API for backends (docs/api.md) */
	char *api_keys_file;         /* "name key" lines; NULL: the API is off */
	uint32_t api_public;         /* 1: also on the public listener */
	uint32_t api_max_body;       /* bytes of a request body at most */
	char *admin_root;            /* /admin dashboard files (admin listener only) */
	uint32_t admin_feed_max;     /* GET /api/admin/feed streams open at once */
	uint32_t api_body_timeout;   /* seconds to send a whole body */

	/* moderation */
	uint32_t allow_self_delete;  /* 1: users may delete their own messages */
	uint32_t erase_step_rows;    /* rows an erase step looks at */

	/* cluster through Redis (docs/cluster.md) */
	char *cluster;               /* redis://... or unix:...; NULL: single node */
	char *cluster_password_file; /* AUTH password, first line */
	char *node_id;               /* NULL: HOSTNAME:PORT */
	uint32_t cluster_shards;     /* K log streams */
	uint32_t cluster_log_window; /* entries kept per stream */
	uint32_t cluster_pending_max; /* publishes waiting for their apply */
	uint32_t cluster_timeout_ms; /* connect, command and publish timeout */
	uint32_t cluster_read_count; /* XREAD COUNT per shard */
	uint32_t cluster_read_delay_us; /* pause before the next XREAD after entries */
	uint32_t cluster_hold_ms;    /* publish hold after a Redis restart */
	uint32_t cluster_presence_ttl; /* s without a heartbeat before a node's members leave */
	char *cluster_tls_ca;        /* rediss://: CA file; NULL: the system store */
	char *cluster_tls_cert;      /* rediss://: client certificate (with its key) */
	char *cluster_tls_key;
	char *cluster_tls_server_name; /* rediss://: name checked; NULL: the URL's host */
};

/* Bytes of a history reply frame besides its messages (frame header,
 * {"type":"reply","id":..,"ok":true,"data":{"messages":[ ... ],"more":..}}),
 * rounded up. A page must fit the send queue: config_validate checks that
 * one page with one largest message does. */
#define REPLY_PAGE_OVERHEAD 128

void config_defaults(struct config *c);
void config_free(struct config *c);

/* Parses argv: reads the file named by -c/--config first, then applies the
 * flags, so a flag overrides the file wherever it stands. Returns 0 to run,
 * 1 when --help/--version was handled or --check-config passed (it runs
 * config_validate and prints "parleyd: FILE: ok" on stdout; exit 0), or -1
 * after printing an error to stderr (exit 2). */
int config_parse_args(struct config *c, int argc, char **argv);

/* Applies the `key = value` lines of text[0..len) (need not be
 * NUL-terminated) to c; name is the file name used in messages. Returns 0,
 * or -1 with "NAME:LINE: reason" in err (no "parleyd: " prefix); c may then
 * hold some of the file's values and must still be released with
 * config_free. */
int config_parse_text(struct config *c, const char *name, const char *text, size_t len,
		      char *err, size_t errlen);
/* Reads the file at path and applies it as config_parse_text does; an
 * unreadable file gives "PATH: cannot open: REASON". */
int config_parse_file(struct config *c, const char *path, char *err, size_t errlen);

/* The i-th setting's key in table order, or NULL past the last. */
const char *config_key(size_t i);
/* The value of setting key in c as config-file text: a string setting's
 * own text (NULL when unset), or a number formatted into buf (octal ones as
 * 0660). NULL for an unknown key. */
const char *config_value(const struct config *c, const char *key, char *buf, size_t len);
/* Checks relations between settings; -1 after printing an error. */
int config_validate(const struct config *c);
void config_usage(FILE *f);

#endif
