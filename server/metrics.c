/*
 * metrics.c - the Prometheus exposition. Counters live where they are
 * counted (server_stats, store_stats); this file only formats them.
 */
#include "metrics.h"
#include "cluster.h"

#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "proto.h"
#include "server.h"
#include "presence.h"   /* cluster/: clp_metrics */
#include "sio/sio_edge.h"
#include "store.h"
#include "moderation.h"

static const char *const reason_names[CLOSE_R_COUNT] = {
#define X(e, name) name,
	CLOSE_REASON_MAP(X)
#undef X
};

const char *metrics_reason_name(enum close_reason r)
{
	return (unsigned)r < CLOSE_R_COUNT ? reason_names[r] : "error";
}

void metrics_head(struct pbuf *b, const char *name, const char *type, const char *help)
{
	pbuf_adds(b, "# HELP ");
	pbuf_adds(b, name);
	pbuf_addc(b, ' ');
	pbuf_adds(b, help);
	pbuf_adds(b, "\n# TYPE ");
	pbuf_adds(b, name);
	pbuf_addc(b, ' ');
	pbuf_adds(b, type);
	pbuf_addc(b, '\n');
}

static void metric(struct pbuf *b, const char *name, const char *type, const char *help)
{
	metrics_head(b, name, type, help);
}

static void value(struct pbuf *b, const char *name, const char *labels, uint64_t v)
{
	pbuf_adds(b, name);
	if (labels)
		pbuf_adds(b, labels);
	pbuf_addc(b, ' ');
	pbuf_add_u64(b, v);
	pbuf_addc(b, '\n');
}

#define SIMPLE(b, name, type, help, v) do { metric(b, name, type, help); value(b, name, NULL, v); } while (0)

static uint64_t process_rss(void)
{
	unsigned long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * Open descriptors, counted rather than listed: listing /proc/self/fd
 * costs O(connections) on the loop at every scrape. The descriptors open
 * when serving began (listeners, storage, logs; listed once at start) plus
 * the client sockets lws holds (HTTP and WebSocket, from its wsi
 * create/destroy callbacks) plus the closed ones still lingering. Files
 * opened later (a static file being sent, SQLite's own) are not counted.
 */
static uint64_t process_fds(const struct server *s)
{
	return (uint64_t)s->fds_at_start + (uint64_t)s->client_sockets + s->linger.n;
}

static uint64_t process_max_fds(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (uint64_t)rl.rlim_cur;
}

void metrics_render(struct server *s, struct pbuf *b)
{
	const struct server_stats *st = &s->stats;
	char labels[96];

	SIMPLE(b, "parley_connections", "gauge", "WebSocket connections now.", s->nconns);
	SIMPLE(b, "parley_connections_total", "counter", "WebSocket connections accepted.", st->conns_total);
	metric(b, "parley_disconnects_total", "counter", "Connections ended, by reason.");
	for (int i = 0; i < CLOSE_R_COUNT; i++) {
		snprintf(labels, sizeof(labels), "{reason=\"%s\"}", reason_names[i]);
		value(b, "parley_disconnects_total", labels, st->disconnects[i]);
	}
	metric(b, "parley_rejected_total", "counter", "Upgrades refused, by HTTP status.");
	/* the order of server_stats.rejected (ws.c, rejected_index) */
	static const char *const statuses[6] = { "400", "403", "404", "426", "429", "503" };
	for (int i = 0; i < 6; i++) {
		snprintf(labels, sizeof(labels), "{status=\"%s\"}", statuses[i]);
		value(b, "parley_rejected_total", labels, st->rejected[i]);
	}
	SIMPLE(b, "parley_rooms", "gauge", "Rooms with at least one member.", s->rooms.len);
	SIMPLE(b, "parley_messages_in_total", "counter", "Client commands received.", st->msgs_in);
	SIMPLE(b, "parley_messages_out_total", "counter", "Frames sent to clients.", st->msgs_out);
	SIMPLE(b, "parley_bytes_in_total", "counter", "Bytes of client commands received.", st->bytes_in);
	SIMPLE(b, "parley_bytes_out_total", "counter", "Bytes of frames sent to clients.", st->bytes_out);
	SIMPLE(b, "parley_published_total", "counter", "Messages published.", st->published);
	SIMPLE(b, "parley_deliveries_total", "counter", "Messages queued for recipients.", st->delivered);
	metric(b, "parley_errors_total", "counter", "Error replies, by code.");
	for (int e = 1; e < PROTO_ERR_COUNT; e++) {
		snprintf(labels, sizeof(labels), "{code=\"%s\"}", proto_err_code((enum proto_err)e));
		value(b, "parley_errors_total", labels, st->errors[e]);
	}
	SIMPLE(b, "parley_slow_consumer_closes_total", "counter",
	       "Connections closed with 4008 for a full send queue.", st->slow_closes);
	SIMPLE(b, "parley_history_cache_hits_total", "counter",
	       "History pages and replays served from memory.", st->cache_hits);
	SIMPLE(b, "parley_history_cache_misses_total", "counter",
	       "History pages and replays read from disk.", st->cache_misses);
	SIMPLE(b, "parley_history_cache_bytes", "gauge",
	       "Memory pinned by all rooms' history caches.", s->cache_bytes);
	SIMPLE(b, "parley_history_cache_budget_bytes", "gauge",
	       "history_cache_bytes: the caches' budget.", (uint64_t)s->cfg->history_cache_bytes);
	SIMPLE(b, "parley_history_cache_evictions_total", "counter",
	       "Rooms whose cache was dropped to stay within the budget.", st->cache_evictions);

	if (s->store) {
		struct store_stats ss;
		store_get_stats(s->store, &ss);
		SIMPLE(b, "parley_store_queue_depth", "gauge", "Messages waiting for the writer.", ss.queue_depth);
		SIMPLE(b, "parley_store_queue_bytes", "gauge", "Bytes waiting for the writer.", ss.queue_bytes);
		SIMPLE(b, "parley_store_appended_total", "counter", "Messages accepted for storage.", ss.appended);
		SIMPLE(b, "parley_store_committed_total", "counter", "Messages committed to disk.", ss.committed);
		SIMPLE(b, "parley_store_overloaded_total", "counter", "Publishes refused for a full writer queue.", ss.overloaded);
		SIMPLE(b, "parley_store_write_errors_total", "counter", "Failed write transactions.", ss.write_errors);
		SIMPLE(b, "parley_store_failing", "gauge", "1 while the disk is failing.", (uint64_t)ss.failing);
		SIMPLE(b, "parley_store_pruned_total", "counter", "Messages removed by retention.", ss.pruned);
		metric(b, "parley_store_commit_seconds", "histogram", "Time of each write transaction.");
		uint64_t cum = 0;
		for (int i = 0; i < 12; i++) {
			cum += ss.commit_ms_bucket[i];
			if (i < 11)
				snprintf(labels, sizeof(labels), "{le=\"%g\"}", store_commit_ms_bounds[i] / 1000.0);
			else
				snprintf(labels, sizeof(labels), "{le=\"+Inf\"}");
			value(b, "parley_store_commit_seconds_bucket", labels, cum);
		}
		char line[96];
		snprintf(line, sizeof(line), "parley_store_commit_seconds_sum %.6f\n", ss.commit_ms_sum / 1000.0);
		pbuf_adds(b, line);
		value(b, "parley_store_commit_seconds_count", NULL, ss.commit_count);
		/* moderation (moderation.c, storage/moderate.c) */
		SIMPLE(b, "parley_deleted_total", "counter", "Messages replaced by a tombstone by delete.", ss.deleted);
		SIMPLE(b, "parley_erase_jobs", "gauge", "Erase jobs running (resumed after a restart).", ss.erase_jobs);
		SIMPLE(b, "parley_erase_scanned_total", "counter", "Rows looked at by erase jobs.", ss.erase_scanned);
		SIMPLE(b, "parley_erase_rows_total", "counter", "Messages replaced by a tombstone by erase jobs.", ss.erase_erased);
		SIMPLE(b, "parley_erase_done_total", "counter", "Erase jobs finished.", ss.erase_done);
		SIMPLE(b, "parley_bans", "gauge", "Bans in force (in memory).", moderation_ban_count(s));
	}
	uint64_t api_n, api_st[6];
	api_stats(s, &api_n, api_st);
	metric(b, "parley_api_requests_total", "counter", "HTTP API requests answered, by status class.");
	static const char *const api_classes[6] = { "2xx", "400", "401", "404", "413", "other" };
	for (int i = 0; i < 6; i++) {
		snprintf(labels, sizeof(labels), "{status=\"%s\"}", api_classes[i]);
		value(b, "parley_api_requests_total", labels, api_st[i]);
	}
	SIMPLE(b, "process_resident_memory_bytes", "gauge", "Resident set size.", process_rss());
	SIMPLE(b, "parley_lingering_sockets", "gauge",
	       "Closed connections whose input is still read and discarded.", s->linger.n);
	SIMPLE(b, "parley_lingering_closes_total", "counter",
	       "Closed connections that lingered (input left after the close frame).", s->linger.total);
	SIMPLE(b, "parley_hangups_queued", "gauge",
	       "Clients that hung up, waiting for their turn to be closed (a mass disconnect).",
	       s->hangup.n);
	SIMPLE(b, "parley_hangups_total", "counter",
	       "Clients seen hanging up (FIN or reset) before lws read it.", s->hangup.total);
	SIMPLE(b, "process_open_fds", "gauge",
	       "Open file descriptors: at start, plus client sockets and lingering ones.",
	       process_fds(s));
	SIMPLE(b, "process_max_fds", "gauge", "Limit of open file descriptors.", process_max_fds());
	sio_edge_metrics(b);
	cluster_metrics(s, b); /* nothing on a single node */
	clp_metrics(s, b);    /* cluster presence; nothing on a single node */
}
