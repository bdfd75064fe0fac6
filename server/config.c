/* config.c - settings table and command-line parsing (config.h). */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#ifndef PARLEY_WEB_ROOT
#define PARLEY_WEB_ROOT "/usr/local/share/parley/web-client"
#endif

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
	{ "flush_interval_ms", 0, OPT_U32, O(flush_interval_ms), 1, 10000, "MS", "storage commit interval (default 50)" },
	{ "store_queue_messages", 0, OPT_U32, O(store_queue_messages), 16, 1u << 24, "N", "messages waiting for the disk at most (default 65536)" },
	{ "store_queue_bytes", 0, OPT_U32, O(store_queue_bytes), 65536, 1u << 31, "BYTES", "bytes waiting for the disk at most (default 67108864)" },
	{ "retain_messages", 0, OPT_U32, O(retain_messages), 0, UINT32_MAX, "N", "messages kept per room; 0 keeps all (default 0)" },
	{ "retain_seconds", 0, OPT_U32, O(retain_seconds), 0, UINT32_MAX, "S", "age of messages kept; 0 keeps all (default 0)" },
	{ "drain_timeout", 0, OPT_U32, O(drain_timeout), 1, 600, "S", "seconds a shutdown waits for clients and storage (default 10)" },
	{ "log_level", 0, OPT_STR, O(log_level), 0, 0, "LEVEL", "debug, info, warn or error (default info)" },
	{ "log_file", 0, OPT_STR, O(log_file), 0, 0, "PATH", "append logs here instead of stderr; reopened on SIGHUP" },
	{ "unix_socket", 0, OPT_STR, O(unix_socket), 0, 0, "PATH", "also listen on this Unix socket (for a local proxy)" },
	{ "unix_socket_mode", 0, OPT_OCTAL, O(unix_socket_mode), 0, 0777, "MODE", "permissions of the Unix socket (default 0660)" },
	{ "no_tcp", 0, OPT_U32, O(no_tcp), 0, 1, "0|1", "1: listen only on the Unix socket (default 0)" },
	{ "tls_cert", 0, OPT_STR, O(tls_cert), 0, 0, "PATH", "PEM certificate chain: serve https/wss" },
	{ "tls_key", 0, OPT_STR, O(tls_key), 0, 0, "PATH", "PEM private key for tls_cert" },
	{ "trusted_proxies", 0, OPT_STR, O(trusted_proxies), 0, 0, "LIST", "addresses/CIDRs whose X-Forwarded-For is believed" },
	{ "auth", 0, OPT_STR, O(auth), 0, 0, "MODE", "none or token (HS256 JWT) (default none)" },
	{ "auth_secret_file", 0, OPT_STR, O(auth_secret_file), 0, 0, "PATH", "file holding the HS256 secret (auth = token)" },
	{ "auth_timeout", 0, OPT_U32, O(auth_timeout), 1, 300, "S", "seconds a connection has to authenticate (default 5)" },
	{ "origins", 0, OPT_STR, O(origins), 0, 0, "LIST", "allowed browser Origins, comma-separated (default: any)" },
	{ "max_connections", 0, OPT_U32, O(max_connections), 0, UINT32_MAX, "N", "connections at most; 0: no limit (default 0)" },
	{ "max_connections_per_ip", 0, OPT_U32, O(max_connections_per_ip), 0, UINT32_MAX, "N", "connections per client address; 0: no limit (default 0)" },
	{ "rate_messages", 0, OPT_U32, O(rate_messages), 1, 1000000, "N", "commands per second per connection (default 100)" },
	{ "rate_burst", 0, OPT_U32, O(rate_burst), 1, 1000000, "N", "command burst per connection (default 200)" },
	{ "rate_joins", 0, OPT_U32, O(rate_joins), 1, 1000000, "N", "joins per second per connection (default 20)" },
	{ "rate_history", 0, OPT_U32, O(rate_history), 1, 1000000, "N", "history requests per second per connection (default 20)" },
	{ "rate_names", 0, OPT_U32, O(rate_names), 1, 1000000, "N", "name changes per minute per connection (default 10)" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->port = 8080;
	c->data_dir = xstrndup("/var/lib/parley", 15);
	c->web_root = xstrndup(PARLEY_WEB_ROOT, strlen(PARLEY_WEB_ROOT));
	c->max_message_size = 65536;
	c->send_queue_messages = 1000;
	c->send_queue_bytes = 1048576;
	c->max_rooms = 128;
	c->presence_window_ms = 100;
	c->ping_interval = 30;
	c->ping_timeout = 60;
	c->history_cache = 256;
	c->flush_interval_ms = 50;
	c->store_queue_messages = 65536;
	c->store_queue_bytes = 64u << 20;
	c->drain_timeout = 10;
	c->log_level = xstrndup("info", 4);
	c->unix_socket_mode = 0660;
	c->auth = xstrndup("none", 4);
	c->auth_timeout = 5;
	c->rate_messages = 100;
	c->rate_burst = 200;
	c->rate_joins = 20;
	c->rate_history = 20;
	c->rate_names = 10;
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

/* Sets one option from its text value. Returns 0, or -1 with a reason. */
static int opt_set(struct config *c, const struct opt *o, const char *val, const char **why)
{
	void *p = (char *)c + o->off;

	if (o->type == OPT_STR) {
		if (!*val) {
			*why = "must not be empty";
			return -1;
		}
		free(*(char **)p);
		*(char **)p = xstrndup(val, strlen(val));
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(val, &end, o->type == OPT_OCTAL ? 8 : 10);
	if (!*val || *end || errno || val[0] == '-') {
		*why = "must be a whole number";
		return -1;
	}
	if (v < o->min || v > o->max) {
		*why = "is out of range";
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

void config_usage(FILE *f)
{
	fprintf(f, "usage: parleyd [options]\n\n"
		   "Parley real-time chat and pub/sub server.\n\n"
		   "  -h, --help                       show this help and exit\n"
		   "  -V, --version                    show the version and exit\n");
	for (size_t i = 0; i < NOPTS; i++) {
		char flag[64], *o = flag;
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
	fprintf(f, "\nDocumentation: docs/configuration.md, docs/protocol.md\n");
}

int config_parse_args(struct config *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *why;
		const struct opt *o = NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			config_usage(stdout);
			return 1;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("parleyd %s\n", PARLEY_VERSION);
			return 1;
		}
		if (a[0] == '-' && a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			o = opt_find(a + 2, n);
			if (eq)
				val = eq + 1;
		} else if (a[0] == '-' && a[1] && !a[2]) {
			for (size_t k = 0; k < NOPTS; k++)
				if (opts[k].shortopt == a[1])
					o = &opts[k];
		}
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
		if (opt_set(c, o, val, &why) < 0) {
			fprintf(stderr, "parleyd: option '%s': value '%s' %s\n", a, val, why);
			return -1;
		}
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
	if (log_parse_level(c->log_level, &l) < 0) {
		fprintf(stderr, "parleyd: log_level '%s' must be debug, info, warn or error\n",
			c->log_level);
		return -1;
	}
	return 0;
}
