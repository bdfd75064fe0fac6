/*
 * server.c - process setup: the libev loop, the lws context on it, signals,
 * the output flush pass, graceful drain.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "authn.h"
#include "cmd.h"
#include "catchup.h"
#include "conn.h"
#include "linger.h"
#include "cluster.h"
#include "log.h"
#include "proto.h"
#include "reuseport.h"
#include "presence.h"   /* cluster/: clp_* */
#include "sio/sio_edge.h"
#include "store.h"
#include "users.h"
#include "util.h"
#include "ws.h"
#include "moderation.h"

#define WBUF_SIZE (64 * 1024)

const struct store_handlers server_store_handlers = {
	.durable_done = cmd_durable_done,
	.page_done = cmd_page_done,
	.mod_done = moderation_mod_done,
	.erased = moderation_erased,
};

/* ---- output flush list ---- */

void server_want_flush(struct server *s, struct conn *c)
{
	if (c->pending)
		return;
	c->pending = true;
	c->pprev = NULL;
	c->pnext = s->pending;
	if (s->pending)
		s->pending->pprev = c;
	s->pending = c;
}

void server_unlink_flush(struct server *s, struct conn *c)
{
	if (!c->pending)
		return;
	if (c->pprev)
		c->pprev->pnext = c->pnext;
	else
		s->pending = c->pnext;
	if (c->pnext)
		c->pnext->pprev = c->pprev;
	c->pending = false;
	c->pnext = c->pprev = NULL;
}

/* Runs before the loop sleeps: writes out what this iteration queued. */
static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct server *s = w->data;

	if (s->lag_poke)
		catchup_lag_pump(s); /* (queues frames: before the flush) */
	while (s->pending) {
		struct conn *c = s->pending;
		server_unlink_flush(s, c);
		if (s->pending) {
			/* the next one's hot lines (conn.h), while this one's
			 * send is in the kernel */
			__builtin_prefetch(s->pending, 1);
			__builtin_prefetch((char *)s->pending + 64, 1);
		}
		if (c->close_code) {
			/* Closing: out of its rooms now; its WRITEABLE
			 * callback sends what is left and the close frame. */
			conn_leave_all(c);
			continue;
		}
		if (c->hangup == HANGUP_QUEUED)
			continue; /* its peer is gone: hangup.c releases it */
		if (conn_flush(c) < 0) {
			/* The socket failed: let lws close it from its own
			 * callback. */
			conn_close_later(c, LWS_CLOSE_STATUS_GOINGAWAY);
			c->close_reason = CLOSE_R_ERROR;
		}
	}
}

/*
 * lws keeps its timers (ping/hang-up, close timeouts) in a sorted list and
 * arms one libev timer for the earliest. In lws 4.1 the libev glue calls
 * ev_timer_set() on that timer while it is active, which libev ignores, so
 * a timer earlier than the one armed waits for it (up to the 30 s ping
 * interval). lws also services every ripe timer whenever any of its fds
 * fires, so a wake-up every 100 ms bounds the lateness.
 */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;
	lws_cancel_service(s->ctx);
	authn_expire(s);
	if (s->nlag)
		s->lag_poke = true; /* a lagging catch-up's time-out */
	/* The keep-alive sweep: each connection twice a second, a fifth of
	 * them per tick, so that the pings and hang-ups of thousands that
	 * went quiet together (a partition, a reconnect storm) are spread
	 * over five ticks, not queued in one iteration (15,000 pings at once
	 * held the loop about 0.1 s). The fifth is the next stretch of the
	 * list from where the last tick stopped (sweep_at), not every fifth
	 * connection of the whole list: a walk over all of them on every
	 * tick, two cache lines each, was half of a native chat's user time
	 * at 10,000 connections. Not the Socket.IO sessions (Engine.IO has its
	 * own heartbeat), except those with a close deadline: the list holds
	 * the native connections and those first, the others after them
	 * (server.h). */
	int64_t now = (int64_t)(util_mono_us() / 1000);
	uint32_t n = s->nconns / 5 + 1;
	struct conn *c = s->sweep_at ? s->sweep_at : s->conns;
	for (; n && c && (c->kind != CONN_SIO || c->close_code); n--) {
		struct conn *next = c->next;
		conn_keepalive(c, now);
		c = next;
	}
	s->sweep_at = c && (c->kind != CONN_SIO || c->close_code) ? c : NULL;
}

/* ---- signals and drain ---- */

static void drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;

	/* Closed connections linger (linger.h) until their peer has read
	 * the 1001 and hung up; the drain waits for that too. */
	if ((s->nconns == 0 && s->linger.n == 0) || ev_now(loop) >= s->drain_deadline) {
		if (s->nconns || s->linger.n)
			log_warn("drain_timeout", "connections=%u lingering=%u", s->nconns,
				 s->linger.n);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void begin_drain(struct server *s, const char *why)
{
	if (s->draining)
		return;
	s->draining = true;
	log_info("draining", "signal=%s connections=%u", why, s->nconns);
	/* With reuse_port the listener can go at once: the kernel sends new
	 * connections to the other nodes sharing the port. */
	reuseport_close(s);
	clp_drain(s); /* the other nodes drop our members now */
	/* New connections are dropped as they are accepted (ws.c,
	 * FILTER_NETWORK_CONNECTION). lws_context_deprecate() would close the
	 * listening socket, but in lws 4.1 it touches the listener after freeing
	 * it. */
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close_later(c, LWS_CLOSE_STATUS_GOINGAWAY);
	/* Every connection now lingers as it closes: no descriptor budget
	 * (nothing new is accepted, each linger replaces its connection). */
	s->linger.max = UINT32_MAX;
	s->drain_deadline = ev_now(s->loop) + s->cfg->drain_timeout;
	ev_timer_init(&s->drain_w, drain_tick, 0.02, 0.02);
	s->drain_w.data = s;
	ev_timer_start(s->loop, &s->drain_w);
}

void server_stop(struct server *s, int exit_code, const char *why)
{
	if (!s->exit_code)
		s->exit_code = exit_code;
	begin_drain(s, why);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *s = w->data;

	if (w->signum == SIGHUP) {
		/* What can change safely at run time: the log file (after
		 * logrotate) and the token secrets (rotation). */
		int lr = log_reopen();
		int ar = authn_reload(s);
		int kr = api_reload(s);
		log_info("sighup", "log_reopen=%s auth_reload=%s api_keys_reload=%s",
			 lr < 0 ? "failed" : "ok", ar < 0 ? "failed" : ar > 0 ? "ok" : "none",
			 kr < 0 ? "failed" : kr > 0 ? "ok" : "none");
		return;
	}
	begin_drain(s, w->signum == SIGTERM ? "TERM" : "INT");
}

/* ---- lws ---- */

static void lws_log_emit(int level, const char *line)
{
	char msg[256];
	size_t n = strlen(line);

	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, line, n);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		n--;
	msg[n] = '\0';
	log_event(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "text=%s", log_q(msg));
}

static const struct lws_protocols protocols[] = {
	{
		.name = "parley",
		.callback = ws_callback,
		.per_session_data_size = CONN_PSS_SIZE,
		/* lws reads at most this much of a frame per callback;
		 * bigger messages are reassembled in conn->rx. */
		.rx_buffer_size = 1024,
		/* one send() may carry a whole coalesced batch */
		.tx_packet_size = WBUF_SIZE * 4,
	},
	{
		/* the HTTP API (api_http.c), mounted at /api: its own
		 * per-request state, never a struct conn */
		.name = "parley-api",
		.callback = api_callback,
		.per_session_data_size = sizeof(struct api_call),
		.rx_buffer_size = 16384,
	},
	{ 0 }
};

static void build_limits(struct server *s)
{
	const struct config *c = s->cfg;

	snprintf(s->welcome_limits, sizeof(s->welcome_limits),
		 "{\"max_message_size\":%u,\"max_rooms\":%u,\"max_name_length\":%d,"
		 "\"max_room_length\":%d,\"send_queue_messages\":%u,"
		 "\"send_queue_bytes\":%u,\"presence_window_ms\":%u,\"history_page\":%d}",
		 c->max_message_size, c->max_rooms, PROTO_NAME_MAX_CHARS, PROTO_ROOM_MAX,
		 c->send_queue_messages, c->send_queue_bytes, c->presence_window_ms,
		 PROTO_HISTORY_MAX);
}

/* Mounts of the public listener: /healthz (and /metrics with
 * public_metrics) answered by ws.c, the rest static files. */
static void build_mounts(struct server *s, const struct config *cfg)
{
	memset(&s->mounts, 0, sizeof(s->mounts));
	struct lws_http_mount *health = &s->mounts[0], *metrics = &s->mounts[1],
			      *root = &s->mounts[2];

	health->mountpoint = "/healthz";
	health->mountpoint_len = 8;
	health->origin = "parley";
	health->origin_protocol = LWSMPRO_CALLBACK;

	*metrics = *health;
	metrics->mountpoint = "/metrics";
	metrics->mountpoint_len = 8;
	if (cfg->public_metrics)
		health->mount_next = metrics;

	/* /api (api_http.c): always on the admin listener (its only mount:
	 * everything else there goes to ws.c), on the public one only with
	 * api_public. */
	struct lws_http_mount *api = &s->mounts[3], *admin_api = &s->mounts[4];
	api->mountpoint = "/api";
	api->mountpoint_len = 4;
	api->origin = "parley-api";
	api->origin_protocol = LWSMPRO_CALLBACK;
	*admin_api = *api;
	if (cfg->api_public)
		(cfg->public_metrics ? metrics : health)->mount_next = api;

	/* /admin: the dashboard's files, on the admin listener only (never
	 * under web_root, so the public listener cannot serve them). */
	struct lws_http_mount *admin_page = &s->mounts[5];
	admin_page->mountpoint = "/admin";
	admin_page->mountpoint_len = 6;
	admin_page->origin = cfg->admin_root;
	admin_page->def = "index.html";
	admin_page->origin_protocol = LWSMPRO_FILE;
	admin_api->mount_next = admin_page;

	root->mount_next = cfg->sio ? sio_edge_mount(health) : health;
	root->mountpoint = "/";
	root->mountpoint_len = 1;
	root->origin = cfg->web_root;
	root->def = "index.html";
	root->origin_protocol = LWSMPRO_FILE;
}

/* The public TCP listener, with TLS if configured. */
static int listen_tcp(struct server *s, struct lws_context_creation_info *info)
{
	const struct config *cfg = s->cfg;
	struct lws_context_creation_info t = *info;

	t.ssl_cert_filepath = cfg->tls_cert;
	t.ssl_private_key_filepath = cfg->tls_key;
	/* HTTP/1.1 only: lws 4.1's HTTP/2 crashes on the replies we write
	 * (ws.c) and we do not offer WebSockets over HTTP/2 (RFC 8441). */
	t.alpn = "http/1.1";
	/* reuse_port: the vhost listens on nothing; reuseport.c accepts on
	 * its own SO_REUSEPORT socket and hands each connection to it. */
	if (cfg->reuse_port)
		t.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	s->vhost = lws_create_vhost(s->ctx, &t);
	if (!s->vhost) {
		log_error("listen", "host=%s port=%u tls=%d error=\"cannot listen (address in use, or a bad certificate)\"",
			  cfg->host ? cfg->host : "*", cfg->port, cfg->tls_cert != NULL);
		return -1;
	}
	int port = lws_get_vhost_listen_port(s->vhost);
	if (cfg->reuse_port) {
		port = reuseport_listen(s, cfg->host, cfg->port, cfg->tls_cert != NULL);
		if (port < 0)
			return -1;
		log_info("reuse_port", "port=%d pid=%ld", port, (long)getpid());
	}
	log_info("listening", "host=%s port=%d tls=%s web_root=%s data_dir=%s version=%s",
		 cfg->host ? cfg->host : "*", port,
		 cfg->tls_cert ? "on" : "off", log_q(cfg->web_root), log_q(cfg->data_dir),
		 PARLEY_VERSION);
	return 0;
}

/* Creates a Unix-socket vhost at path with mode; NULL on failure. */
static struct lws_vhost *listen_unix(struct server *s, const struct lws_context_creation_info *info,
				     const char *path, const char *name, uint32_t mode)
{
	struct lws_context_creation_info u = *info;
	struct lws_vhost *vh;
	struct stat st;

	/* A socket left by a crashed run would make bind() fail. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	u.options |= LWS_SERVER_OPTION_UNIX_SOCK;
	u.iface = path;
	u.port = 0;
	u.vhost_name = name;
	vh = lws_create_vhost(s->ctx, &u);
	if (vh && chmod(path, (mode_t)mode) < 0)
		log_warn("unix_socket", "path=%s error=%s", log_q(path), log_q(strerror(errno)));
	return vh;
}

/*
 * The admin listener (admin_listen): /metrics and /healthz, no static
 * files, no WebSocket (ws.c refuses upgrades on it). Plain HTTP: it is
 * meant for loopback or a Unix socket, not the internet.
 */
static int listen_admin(struct server *s, const struct lws_context_creation_info *info)
{
	struct listen_addr *la = &s->admin_addr; /* lws keeps pointers to iface: not on the stack */
	char err[128];

	if (netaddr_parse_listen(s->cfg->admin_listen, la, err, sizeof(err)) < 0) {
		log_error("config", "key=admin_listen error=%s", log_q(err));
		return -1;
	}
	if (la->off)
		return 0;
	struct lws_context_creation_info a = *info;
	a.ssl_cert_filepath = a.ssl_private_key_filepath = NULL;
	a.mounts = &s->mounts[4]; /* /api; everything else goes to ws.c's HTTP callback */
	if (la->path[0]) {
		s->vhost_admin = listen_unix(s, &a, la->path, "parley-admin", 0660);
		if (!s->vhost_admin) {
			log_error("listen", "admin_unix_socket=%s error=\"cannot listen\"", log_q(la->path));
			return -1;
		}
		log_info("admin_listening", "unix_socket=%s", log_q(la->path));
		return 0;
	}
	a.iface = la->host;
	a.port = (int)la->port;
	a.vhost_name = "parley-admin";
	s->vhost_admin = lws_create_vhost(s->ctx, &a);
	if (!s->vhost_admin) {
		log_error("listen", "admin_listen=%s error=\"cannot listen (address in use?)\"",
			  log_q(s->cfg->admin_listen));
		return -1;
	}
	log_info("admin_listening", "host=%s port=%d", la->host,
		 lws_get_vhost_listen_port(s->vhost_admin));
	return 0;
}

/* Creates the admin vhost, the public TCP one and the Unix-socket one.
 * The admin listener comes first so that its log line precedes the
 * public "listening" one, which scripts and tests wait for. */
static int listen_all(struct server *s, struct lws_context_creation_info *info)
{
	const struct config *cfg = s->cfg;

	if (listen_admin(s, info) < 0)
		return -1;
	if (!cfg->no_tcp && listen_tcp(s, info) < 0)
		return -1;
	if (cfg->unix_socket) {
		s->vhost_unix = listen_unix(s, info, cfg->unix_socket, "parley-unix",
					    cfg->unix_socket_mode);
		if (!s->vhost_unix) {
			log_error("listen", "unix_socket=%s error=\"cannot listen\"", log_q(cfg->unix_socket));
			return -1;
		}
		log_info("listening", "unix_socket=%s mode=%04o", log_q(cfg->unix_socket),
			 cfg->unix_socket_mode);
	}
	return 0;
}

static void store_wake(void *opaque)
{
	lws_cancel_service(opaque);
}

/* mkdir -p, mode 0750 for what it creates. */
static int mkdir_p(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int open_store(struct server *s)
{
	struct store_config sc = { 0 };
	char path[4096], err[256];

	if (mkdir_p(s->cfg->data_dir) < 0) {
		log_error("data_dir", "path=%s error=%s", log_q(s->cfg->data_dir),
			  log_q(strerror(errno)));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/parley.db", s->cfg->data_dir);
	sc.path = path;
	sc.queue_max = s->cfg->store_queue_messages;
	sc.queue_max_bytes = s->cfg->store_queue_bytes;
	sc.flush_interval_ms = s->cfg->flush_interval_ms;
	sc.retain_messages = s->cfg->retain_messages;
	sc.retain_seconds = s->cfg->retain_seconds;
	sc.key_window_ms = (uint64_t)s->cfg->idempotency_window * 1000;
	sc.erase_step_rows = s->cfg->erase_step_rows;
	sc.replica = s->cfg->cluster != NULL; /* seqs come from the cluster log */
	sc.wake = store_wake;
	sc.wake_opaque = s->ctx;
	if (store_open(&sc, &s->store, err, sizeof(err)) < 0) {
		log_error("storage", "path=%s error=%s", log_q(path), log_q(err));
		return -1;
	}
	moderation_setup(s); /* the bans on disk, before any connection */
	return 0;
}

/* Descriptors parleyd uses besides its WebSocket connections: listeners,
 * lws's cancel pipe, SQLite's files (two connections, WAL and shm), the
 * log, /proc reads, and HTTP requests and refused upgrades in flight. */
#define FD_RESERVE 256

/*
 * libwebsockets sizes its fd lookup table to the process descriptor limit
 * at context creation, and Debian's build (with _DEBUG) scans that whole
 * table on every accept and every close (sanity_assert_no_sockfd_traces):
 * about 6 instructions per slot, 120,000 per close at a limit of 20,000,
 * whatever the number of connections. With max_connections set, the soft
 * limit is brought to what parleyd can use, so the table (and each scan)
 * is that size. fd_limit_per_thread would shrink the table too, but it
 * switches lws to a linear search of the table on every event.
 * Closed sockets may linger (linger.c) up to a quarter of the limit, on
 * top of max_connections open ones: hence the 4/3.
 */
static void size_fd_table(const struct config *cfg)
{
	struct rlimit rl;

	if (!cfg->max_connections || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t want = (((rlim_t)cfg->max_connections + FD_RESERVE) * 4 + 2) / 3;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (want == rl.rlim_cur)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	log_info("fd_limit", "was=%llu now=%llu max_connections=%u", (unsigned long long)was,
		 (unsigned long long)want, cfg->max_connections);
}

/* Number of open descriptors, by listing /proc/self/fd: once, at start
 * (metrics.c counts from there). */
static uint32_t count_fds(void)
{
	uint32_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n ? n - 1 : 0; /* not counting opendir's own */
}

/* The libev loop and the signal watchers. Signals are caught from here
 * on (libev queues them until ev_run): a SIGTERM that arrives while
 * starting up is a clean shutdown too, not the default action. */
static int start_loop(struct server *s)
{
	s->loop = ev_default_loop(EVBACKEND_EPOLL);
	if (!s->loop) {
		log_error("ev_loop", "%s", "error=\"cannot create the epoll loop\"");
		return -1;
	}
	ev_signal_init(&s->sigterm_w, signal_cb, SIGTERM);
	ev_signal_init(&s->sigint_w, signal_cb, SIGINT);
	ev_signal_init(&s->sighup_w, signal_cb, SIGHUP);
	s->sigterm_w.data = s->sigint_w.data = s->sighup_w.data = s;
	ev_signal_start(s->loop, &s->sigterm_w);
	ev_signal_start(s->loop, &s->sigint_w);
	ev_signal_start(s->loop, &s->sighup_w);
	return 0;
}

/* The lws context on our loop; vhosts are created by listen_all. */
static int create_context(struct server *s, struct lws_context_creation_info *info)
{
	const struct config *cfg = s->cfg;
	struct rlimit rl;

	s->foreign[0] = s->loop;
	build_mounts(s, cfg);
	/* No lws validity timers (secs_since_valid_hangup 0 turns them off):
	 * the keep-alive is conn_keepalive(), swept from tick_cb. */
	s->retry.secs_since_valid_ping = 0;
	s->retry.secs_since_valid_hangup = 0;

	memset(info, 0, sizeof(*info));
	/* UTF-8 is validated in ws.c (utf8.h), not by lws: lws hangs up
	 * at once, and the client then never sees the 1007. */
	info->options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info->foreign_loops = s->foreign;
	info->user = s;
	info->protocols = protocols;
	info->mounts = &s->mounts[2];
	info->port = (int)cfg->port;
	info->iface = cfg->host;
	info->vhost_name = "parley";
	info->server_string = "parley";
	info->retry_and_idle_policy = &s->retry;
	info->timeout_secs = 10;
	info->pt_serv_buf_size = 16384;
	if (cfg->tls_cert)
		info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;

	size_fd_table(cfg);
	s->ctx = lws_create_context(info);
	if (!s->ctx) {
		log_error("lws_context", "%s", "error=\"cannot create the lws context (is libwebsockets-evlib-ev installed?)\"");
		return -1;
	}
	/* A quarter of the descriptors may linger after their connection
	 * closed; past that, sockets close at once (as before lingering). */
	uint32_t max = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = (uint32_t)(rl.rlim_cur / 4 > 64 ? rl.rlim_cur / 4 : 64);
	linger_init(&s->linger, s->loop, max);
	hangup_init(&s->hangup, s, s->loop); /* after: its epoll set is the second */
	return 0;
}

/* The watchers that run while serving: flush before sleeping, the tick. */
static void start_watchers(struct server *s)
{
	ev_prepare_init(&s->flush_w, flush_cb);
	s->flush_w.data = s;
	ev_prepare_start(s->loop, &s->flush_w);

	ev_timer_init(&s->tick_w, tick_cb, 0.1, 0.1);
	s->tick_w.data = s;
	ev_timer_start(s->loop, &s->tick_w);
}

/*
 * Tears down in dependency order. Storage first: its threads wake the
 * loop through the lws context until they are joined, and its last
 * completions may still answer connections that lws then closes. Then
 * lws (which closes every connection: their CLOSED callbacks release
 * them), then what the modules still hold, each freeing its own.
 */
static void teardown(struct server *s)
{
	s->store_closing = true; /* catch-ups issue no more reads */
	cluster_stop(s); /* its pending publishes fail; before the store closes */
	if (s->store)
		store_close(&s->store, &server_store_handlers, s);
	moderation_teardown(s);
	linger_stop_all(&s->linger); /* closes from here on do not linger */
	reuseport_close(s);
	if (s->ctx) {
		lws_context_destroy(s->ctx);
		s->ctx = NULL;
	}
	/* after lws (its closes release API calls), before the loop (it
	 * stops a timer) */
	api_teardown(s);
	clp_stop(s); /* before the loop: it stops timers */
	sio_edge_teardown(s); /* sessions left: after lws, before the rooms */
	hangup_stop(&s->hangup); /* after lws: every connection is gone */
	if (s->loop) {
		ev_prepare_stop(s->loop, &s->flush_w);
		ev_signal_stop(s->loop, &s->sigterm_w);
		ev_signal_stop(s->loop, &s->sigint_w);
		ev_signal_stop(s->loop, &s->sighup_w);
		ev_timer_stop(s->loop, &s->drain_w);
		ev_timer_stop(s->loop, &s->tick_w);
		ev_loop_destroy(s->loop);
	}
	cmd_teardown(s);
	conn_teardown(s);
	netlist_free(&s->trusted);
	authn_teardown(s);
	users_free(s);
	catchup_lag_free(s);
	hmap_free(&s->rooms); /* empty: the last member's leave freed each room */
	pbuf_free(&s->enc);
	pbuf_free(&s->data);
	free(s->wbuf);
}

int server_run(struct config *cfg)
{
	static struct server srv;
	struct server *s = &srv;
	struct lws_context_creation_info info;
	int rc = 1;

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->wbuf_cap = WBUF_SIZE;
	s->wbuf = xmalloc(WBUF_SIZE);
	build_limits(s);
	sio_edge_setup(s);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
	linger_init(&s->linger, NULL, 0);
	hangup_init(&s->hangup, s, NULL);

	if (start_loop(s) < 0)
		goto out;
	if (cfg->trusted_proxies) {
		char err[128];
		if (netlist_parse(&s->trusted, cfg->trusted_proxies, err, sizeof(err)) < 0) {
			log_error("config", "key=trusted_proxies error=%s", log_q(err));
			goto out;
		}
	}
	if (authn_setup(s) < 0 || api_setup(s) < 0 || create_context(s, &info) < 0 || open_store(s) < 0 ||
	    listen_all(s, &info) < 0 || cluster_start(s) < 0 || clp_start(s) < 0)
		goto out;
	s->fds_at_start = count_fds();
	start_watchers(s);

	ev_run(s->loop, 0);
	rc = s->exit_code; /* 0, or server_stop's (a cluster node that cannot serve) */
out:
	teardown(s);
	if (rc == 0)
		log_info("stopped", "%s", "exit=0");
	return rc;
}
