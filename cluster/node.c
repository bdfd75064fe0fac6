/*
 * node.c - a cluster node's life: start (password, address, database
 * checks, the two Redis connections), the command connection's handshake
 * (scripts, the shard count, Redis's run_id), failing closed, and what
 * /healthz and /metrics show. docs/cluster.md is the user's side of this.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_int.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define RESYNC_HINT "resynchronise this node from a peer: docs/cluster.md, \"Resynchronising a node\""

void cluster__log_cmd_error(struct cluster *c, const char *what, const redisReply *r)
{
	(void)c;
	/* A Redis that is still loading its AOF answers LOADING: the
	 * connection is reset and retried with backoff; not an error. */
	if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "LOADING", 7)) {
		log_info("cluster_redis_loading", "command=%s", what);
		return;
	}
	log_error("cluster_redis_error", "command=%s error=%s", what,
		  log_q(r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
}

void cluster__fail_closed(struct cluster *c, const char *why)
{
	if (c->failed)
		return;
	c->failed = 1;
	c->st.failed = true;
	c->st.publishing = false;
	snprintf(c->failed_why, sizeof(c->failed_why), "%s", why);
	log_error("cluster_failed_closed", "reason=%s action=%s", log_q(why), log_q(RESYNC_HINT));
	cluster__pending_fail_all(c, PROTO_EUNAVAILABLE);
	if (!c->applied_this_run) {
		/* Found while catching up at start: refuse to run at all. */
		log_error("cluster_refuse_start", "reason=%s exit=3", log_q(why));
		server_stop(c->s, 3, "cluster_gap");
	}
}

/* The command side is ready for publishes (scripts loaded, shard count
 * agreed, run_id ours). */
void cluster__cmd_usable(struct cluster *c)
{
	c->cmd_ready = 1;
	c->st.publishing = !c->failed;
	log_info("cluster_ready", "node=%s redis_run_id=%s", log_q(c->node_id), c->known_run_id);
}

/* ---- the command connection's handshake ---- */

static void meta_cb(struct rconn *rc, redisReply *r, void *priv)
{
	struct cluster *c = rconn_ud(rc);
	char want[16];

	(void)priv;
	if (!r)
		return;
	snprintf(want, sizeof(want), "%u", c->k);
	if (r->type != REDIS_REPLY_STRING) {
		cluster__log_cmd_error(c, "HGET parley:meta shards", r);
		rconn_reset(rc, "meta");
		return;
	}
	if (strcmp(r->str, want)) {
		char why[160];
		snprintf(why, sizeof(why), "cluster_shards is %u here but %s in Redis (it is fixed for "
			 "the cluster's life)", c->k, r->str);
		c->applied_this_run = 0; /* a configuration error: refuse to start */
		cluster__fail_closed(c, why);
		return;
	}
	const char *run_id = rconn_run_id(rc);
	if (!c->known_run_id[0]) {
		/* The first Redis this node has seen: our positions (none, or
		 * a peer's copy) belong to it. */
		snprintf(c->known_run_id, sizeof(c->known_run_id), "%s", run_id);
		store_meta_set(c->s->store, "run_id", run_id);
	}
	if (strcmp(run_id, c->known_run_id)) {
		cluster__restore_begin(c);
		return;
	}
	cluster__cmd_usable(c);
}

static void script_load_cb(struct rconn *rc, redisReply *r, void *priv)
{
	struct cluster *c = rconn_ud(rc);
	char *sha = priv;

	if (!r)
		return;
	if (r->type != REDIS_REPLY_STRING || r->len >= 48) {
		cluster__log_cmd_error(c, "SCRIPT LOAD", r);
		rconn_reset(rc, "SCRIPT LOAD");
		return;
	}
	memcpy(sha, r->str, r->len + 1);
}

static void cmd_ready_cb(struct rconn *rc, void *ud)
{
	struct cluster *c = ud;
	char k[16];

	c->st.redis_connected = true;
	c->st.run_id = rconn_run_id(rc);
	snprintf(k, sizeof(k), "%u", c->k);
	/* Pipelined: the scripts are loaded before meta_cb runs. */
	rconn_command(rc, script_load_cb, c->sha_pub, "SCRIPT LOAD %s", cluster__pub_lua);
	rconn_command(rc, script_load_cb, c->sha_restore, "SCRIPT LOAD %s", cluster__restore_lua);
	rconn_command(rc, script_load_cb, c->sha_mod, "SCRIPT LOAD %s", cluster__mod_lua);
	rconn_command(rc, NULL, NULL, "HSETNX parley:meta shards %s", k);
	rconn_command(rc, meta_cb, NULL, "HGET parley:meta shards");
}

static void cmd_down_cb(struct rconn *rc, void *ud, int was_ready, const char *why)
{
	struct cluster *c = ud;

	(void)rc;
	c->cmd_ready = 0;
	c->st.redis_connected = false;
	c->st.publishing = false;
	if (was_ready) {
		c->st.redis_reconnects++;
		log_warn("cluster_redis_lost", "error=%s note=\"publishes fail with unavailable "
			 "until it is back\"", log_q(why));
	} else {
		log_debug("cluster_redis_connect_failed", "error=%s", log_q(why));
	}
}

/* ---- start and stop ---- */

static int read_password(const char *path, char **out)
{
	FILE *f = fopen(path, "r");
	char line[512];

	if (!f) {
		log_error("cluster", "cluster_password_file=%s error=%s", log_q(path),
			  log_q(strerror(errno)));
		return -1;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!line[0]) {
		log_error("cluster", "cluster_password_file=%s error=\"empty first line\"", log_q(path));
		return -1;
	}
	*out = xstrndup(line, strlen(line));
	memset(line, 0, sizeof(line));
	return 0;
}

/* The relay's lines (on the loop thread): its failures name the TLS
 * error (certificate verify failed: ..., alert ...) that the rconn,
 * which only sees its Unix side closed, cannot know. */
static void relay_log(int level, const char *msg, const char *line, void *ud)
{
	(void)ud;
	log_event((enum log_level)level, msg, "%s", line);
}

int cluster_route(struct server *s, struct rurl_addr *a)
{
	if (!a->tls)
		return 0;
	if (!s->cluster || !s->cluster->relay)
		return -1;
	tlsrelay_route(s->cluster->relay, a);
	return 0;
}

int cluster_start(struct server *s)
{
	const struct config *cfg = s->cfg;
	char why[160];

	if (!cfg->cluster)
		return 0;
	struct cluster *c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->k = cfg->cluster_shards;
	c->started = ev_now(s->loop);
	c->pid_base = c->next_pid = (uint64_t)util_now_ms() << 20;
	if (rurl_parse(cfg->cluster, &c->addr, why, sizeof(why)) < 0 ||
	    rurl_resolve(&c->addr, why, sizeof(why)) < 0) {
		log_error("cluster", "error=%s", log_q(why));
		goto fail;
	}
	if (c->addr.password[0])
		c->password = xstrndup(c->addr.password, strlen(c->addr.password));
	else if (cfg->cluster_password_file && read_password(cfg->cluster_password_file, &c->password) < 0)
		goto fail;
	if (c->addr.tls) {
		/* hiredis 0.14 has no TLS: it talks to the relay's Unix socket,
		 * the relay to Redis over TLS. A bad CA, certificate or key
		 * refuses the start here, before any connection. */
		struct tlsrelay_opts to = {
			.ca_file = cfg->cluster_tls_ca, .cert_file = cfg->cluster_tls_cert,
			.key_file = cfg->cluster_tls_key, .server_name = cfg->cluster_tls_server_name,
			/* shorter than the rconn's connect timeout (which also
			 * covers AUTH...), so the relay's reason is the one logged */
			.timeout = 0.8 * cfg->cluster_timeout_ms / 1000.0, .on_log = relay_log, .ud = c,
		};
		c->relay = tlsrelay_start(s->loop, &c->addr, &to, why, sizeof(why));
		if (!c->relay) {
			log_error("cluster", "redis=%s error=%s", log_q(cfg->cluster_tls_server_name ?
				  cfg->cluster_tls_server_name : c->addr.host), log_q(why));
			goto fail;
		}
		tlsrelay_route(c->relay, &c->addr);
	}
	if (cfg->node_id) {
		snprintf(c->node_id, sizeof(c->node_id), "%s", cfg->node_id);
	} else {
		char host[96];
		if (gethostname(host, sizeof(host)) < 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		int port = s->vhost ? lws_get_vhost_listen_port(s->vhost) : (int)cfg->port;
		snprintf(c->node_id, sizeof(c->node_id), "%s:%d", host, port);
	}
	if (store_has_unpositioned_history(s->store)) {
		log_error("cluster_refuse_start", "data_dir=%s error=%s", log_q(cfg->data_dir),
			  log_q("the database holds single-node history; a cluster node starts from an "
				"empty data_dir or a copy of a peer's database (docs/cluster.md)"));
		goto fail;
	}
	const char *shards = store_meta_get(s->store, "shards");
	if (shards[0] && (unsigned)strtoul(shards, NULL, 10) != c->k) {
		log_error("cluster_refuse_start", "error=%s stored=%s configured=%u",
			  log_q("cluster_shards differs from this database's"), shards, c->k);
		goto fail;
	}
	if (!shards[0]) {
		char k[16];
		snprintf(k, sizeof(k), "%u", c->k);
		store_meta_set(s->store, "shards", k);
	}
	snprintf(c->known_run_id, sizeof(c->known_run_id), "%s", store_meta_get(s->store, "run_id"));
	snprintf(c->db_path, sizeof(c->db_path), "%s/parley.db", cfg->data_dir);

	c->sh = xcalloc(c->k, sizeof(*c->sh));
	c->lag = xcalloc(c->k, sizeof(*c->lag));
	c->stream_keys = xcalloc(c->k, sizeof(*c->stream_keys));
	for (unsigned k = 0; k < c->k; k++) {
		char key[32];
		snprintf(key, sizeof(key), "parley:log:%u", k);
		c->stream_keys[k] = xstrndup(key, strlen(key));
	}
	c->st.shards = c->k;
	c->st.lag_ms = c->lag;
	c->st.node_id = c->node_id;
	c->st.run_id = "";
	s->cluster = c;
	cluster__broker_init(c);
	cluster__tail_init(c);
	cluster__restore_init(c);

	double t = cfg->cluster_timeout_ms / 1000.0;
	struct rconn_opts o = { .connect_timeout = t, .cmd_timeout = t };
	static const struct rconn_cbs cmd_cbs = { cmd_ready_cb, cmd_down_cb };
	static const struct rconn_cbs tail_cbs = { cluster__tail_ready, cluster__tail_down };
	char name[160];
	snprintf(name, sizeof(name), "parley:%s:cmd", c->node_id);
	c->cmd = rconn_new(s->loop, &c->addr, c->password, name, &o, &cmd_cbs, c);
	/* XREAD BLOCK 1000 answers within a second when all is well */
	o.cmd_timeout = 1 + t;
	snprintf(name, sizeof(name), "parley:%s:tail", c->node_id);
	c->tail = rconn_new(s->loop, &c->addr, c->password, name, &o, &tail_cbs, c);
	log_info("cluster_start", "node=%s redis=%s%s%s shards=%u positions_from=%s", log_q(c->node_id),
		 c->addr.tls ? c->addr.ip : c->addr.is_unix ? c->addr.path : c->addr.ip,
		 c->addr.tls ? " tls=1 relay=" : "", c->addr.tls ? c->addr.path : "", c->k,
		 c->known_run_id[0] ? "database" : "empty");
	return 0;
fail:
	tlsrelay_stop(&c->relay);
	free(c->password);
	free(c);
	return -1;
}

void cluster_stop(struct server *s)
{
	struct cluster *c = s->cluster;

	if (!c)
		return;
	cluster__restore_stop(c);
	cluster__tail_stop(c);
	cluster__broker_stop(c);
	rconn_free(&c->tail);       /* NULL replies: the XREAD's is ignored */
	rconn_free(&c->cmd);        /* pending scripts: already failed above */
	tlsrelay_stop(&c->relay);   /* joins its thread; presence's rconns, freed later
				     * (clp_stop), only see their socket closed */
	for (unsigned k = 0; k < c->k; k++)
		free(c->stream_keys[k]);
	free(c->stream_keys);
	free(c->sh);
	free(c->lag);
	if (c->password) {
		memset(c->password, 0, strlen(c->password));
		free(c->password);
	}
	free(c);
	s->cluster = NULL;
}

const struct cluster_stats *cluster_stats(struct server *s)
{
	return s->cluster ? &s->cluster->st : NULL;
}

const char *cluster_unhealthy(struct server *s)
{
	struct cluster *c = s->cluster;

	if (!c || !c->failed)
		return NULL;
	return "cluster failed closed: resynchronise this node (docs/cluster.md)\n";
}

static void line(struct pbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	char t[512];
	snprintf(t, sizeof(t), "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		 (unsigned long long)v);
	pbuf_adds(b, t);
}

void cluster_metrics(struct server *s, struct pbuf *b)
{
	struct cluster *c = s->cluster;
	char t[128];

	if (!c)
		return;
	const struct cluster_stats *st = &c->st;
	line(b, "parley_cluster_redis_connected", "gauge", "1 while the Redis command connection is ready.",
	     st->redis_connected);
	line(b, "parley_cluster_tail_connected", "gauge", "1 while the log tail's connection is ready.",
	     st->tail_connected);
	line(b, "parley_cluster_publishing", "gauge", "1 while publishes are accepted.",
	     c->cmd_ready && !c->failed && !c->restoring && st->redis_connected);
	line(b, "parley_cluster_failed", "gauge", "1 after failing closed (a gap in the log): resynchronise.",
	     st->failed);
	line(b, "parley_cluster_applied_total", "counter", "Log entries applied.", st->applied);
	line(b, "parley_cluster_skipped_total", "counter", "Log entries skipped as already applied.",
	     st->skipped);
	line(b, "parley_cluster_pending", "gauge", "Publishes waiting for their apply.", st->pending);
	line(b, "parley_cluster_unavailable_total", "counter", "Publishes failed with unavailable.",
	     st->unavailable);
	line(b, "parley_cluster_timeouts_total", "counter",
	     "Publishes failed because their entry was not applied within cluster_timeout_ms.", st->timeouts);
	line(b, "parley_cluster_restores_total", "counter", "Redis restarts this node restored after.",
	     st->restores);
	line(b, "parley_cluster_restored_entries_total", "counter", "Log entries this node re-appended.",
	     st->restored_entries);
	line(b, "parley_cluster_redis_reconnects_total", "counter", "Redis connections lost.",
	     st->redis_reconnects);
	pbuf_adds(b, "# HELP parley_cluster_lag_ms Now minus the entry's time at its apply, per shard.\n"
		     "# TYPE parley_cluster_lag_ms gauge\n");
	for (unsigned k = 0; k < c->k; k++) {
		snprintf(t, sizeof(t), "parley_cluster_lag_ms{shard=\"%u\"} %.0f\n", k,
			 c->lag[k] > 0 ? c->lag[k] : 0);
		pbuf_adds(b, t);
	}
}
