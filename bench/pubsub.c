/* pubsub: the engine behind `fanout` and `chat`: rooms x members, publishers, latency.
 *
 * Layout: connection i is a member of room i % rooms (so rooms fill evenly while the ramp
 * is still going). Publishers are the first P connections (fanout) or every connection in
 * turn (chat, P = 0). Every publisher is a member of the room it publishes to, and every
 * server under test echoes to the publisher, so one publish is worth exactly `members`
 * deliveries.
 *
 * Latency: the payload carries the send time {"t":NS,...} (CLOCK_MONOTONIC since loop
 * start); publisher and receivers share this process, so receive time - t is the full
 * publish -> deliver path including both kernels' loopback hops.
 *
 * Rate: open loop at --rate msg/s (publishes are due at fixed times whatever the server
 * does), or with --rate 0 closed loop: at most --window messages not yet fully delivered,
 * which finds the saturation throughput without piling up unbounded server queues.
 */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define ACK_RING (1u << 20)

static const struct ps_cfg *C;
static struct ps_result *R;
static uint32_t g_nconn;
static bool g_publishing;
static uint64_t g_t0, g_last_delivery;
static char *g_data;      /* payload JSON being built */
static size_t g_fill_at;  /* where the "t" digits go */
static uint64_t *g_ack_t; /* send time by id % ACK_RING */
static int64_t *g_maxseq; /* per room */
static uint32_t g_next_id = 2;

static void room_name(char *dst, size_t n, uint32_t room)
{
    snprintf(dst, n, "%s%u", C->room_prefix, room);
}

static void on_ready(struct conn *c)
{
    char room[64];
    c->user = c->idx % C->rooms;
    room_name(room, sizeof room, c->user);
    wire_join(c, room, 1);
}

static void on_msg(struct conn *c, const struct minfo *mi)
{
    uint64_t now = now_ns();
    switch (mi->kind) {
    case MK_MESSAGE: {
        R->delivered++;
        g_last_delivery = now;
        int64_t t;
        uint64_t lat = 0;
        if (mi->data && js_int(mi->data, mi->data_n, "t", &t) && t > 0) {
            lat = now - g_loop_start - (uint64_t)t;
            hist_add(R->lat, lat);
        }
        series_delivery(lat);
        if (mi->seq > g_maxseq[c->user])
            g_maxseq[c->user] = mi->seq;
        break;
    }
    case MK_REPLY:
        if (mi->id == 1) {
            if (mi->ok)
                R->joined++;
            else
                R->join_err++, series_error();
            break;
        }
        if (mi->ok) {
            R->pub_ok++;
            if (mi->seq > 0) {
                R->pub_seq++;
                if (mi->seq > g_maxseq[c->user])
                    g_maxseq[c->user] = mi->seq;
            }
        } else {
            R->pub_err++;
            series_error();
            if (mi->data && R->first_error[0] == 0)
                snprintf(R->first_error, sizeof R->first_error, "%.*s",
                         (int)(mi->data_n < 100 ? mi->data_n : 100), mi->data);
        }
        if (mi->id && g_ack_t[mi->id % ACK_RING])
            hist_add(R->ack, now - g_ack_t[mi->id % ACK_RING]);
        break;
    case MK_ERROR:
        R->errors++;
        series_error();
        if (mi->data && R->first_error[0] == 0)
            snprintf(R->first_error, sizeof R->first_error, "%.*s",
                     (int)(mi->data_n < 100 ? mi->data_n : 100), mi->data);
        break;
    default:
        break;
    }
}

static void on_close(struct conn *c, const char *why)
{
    if (R->first_close[0] == 0)
        snprintf(R->first_close, sizeof R->first_close, "conn %u: %s", c->idx, why);
}

static void publish_one(uint64_t now)
{
    uint32_t pubs = C->publishers ? C->publishers : g_nconn;
    struct conn *c = NULL;
    /* Skip publishers that are gone; give up after one lap. */
    for (uint32_t tries = 0; tries < pubs; tries++) {
        uint32_t k = (uint32_t)((R->sent + R->skipped + tries) % pubs);
        if (!C->publishers) {
            /* Stride by a prime so consecutive publishes land in different rooms; the
             * stride must not divide the connection count or it would skip publishers. */
            uint64_t stride = g_nconn % 7919u ? 7919u : 7907u;
            k = (uint32_t)(((uint64_t)k * stride) % g_nconn);
        }
        struct conn *cand = loop_conn(k);
        if (cand->state == CS_READY) {
            c = cand;
            break;
        }
        R->skipped++;
    }
    if (!c)
        return;
    char room[64];
    room_name(room, sizeof room, c->user);
    /* {"t":<20 chars>,"p":"..."}: the number is rewritten in place for each message,
     * right-aligned in spaces (JSON allows whitespace before a value, not leading zeros). */
    snprintf(g_data + 5, 21, "%20llu", (unsigned long long)(now - g_loop_start));
    g_data[25] = ',';
    uint32_t id = 0;
    if (C->acks) {
        id = g_next_id++;
        if (g_next_id == 0 || g_next_id > 2000000000u)
            g_next_id = 2;
        g_ack_t[id % ACK_RING] = now;
    }
    wire_publish(c, room, g_data, g_fill_at, id, C->persist);
    R->sent++;
}

static void tick(uint64_t now)
{
    loop_ramp(now);
    if (!g_publishing)
        return;
    if (C->rate > 0) {
        uint64_t due = (uint64_t)(C->rate * (double)(now - g_t0) / 1e9);
        for (int burst = 0; R->sent < due && burst < 20000; burst++)
            publish_one(now);
    } else {
        uint64_t m = C->members ? C->members : 1;
        for (int burst = 0; burst < 20000; burst++) {
            uint64_t done_msgs = R->delivered / m;
            if (R->sent - (done_msgs < R->sent ? done_msgs : R->sent) >= C->window)
                break;
            publish_one(now);
        }
    }
}

static void progress(char *line, size_t n)
{
    snprintf(line, n, "ready %u/%u joined %llu sent %llu delivered %llu closed %u p99 %.2f ms",
             g_ready, g_nconn, (unsigned long long)R->joined, (unsigned long long)R->sent,
             (unsigned long long)R->delivered, g_closed,
             hist_count(R->lat) ? hist_pct(R->lat, 99) / 1e6 : 0.0);
}

static bool setup_done(void)
{
    return R->joined + R->join_err + g_failed >= g_nconn;
}

static bool drained(void)
{
    return R->delivered >= R->expected_now && (!C->acks || R->pub_ok + R->pub_err >= R->sent);
}

static void sample(struct ps_sample *s)
{
    struct rusage ru;
    s->t = now_ns();
    s->rss_kib = -1;
    getrusage(RUSAGE_SELF, &ru);
    s->self_cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                  ru.ru_stime.tv_usec / 1e6;
    if (g_opts.server_pid > 0) {
        s->rss_kib = ps_rss_kib(g_opts.server_pid);
        ps_cpu(g_opts.server_pid, &s->user, &s->sys);
    }
}

int ps_opt(int ch, const char *arg, struct ps_cfg *cfg)
{
    switch (ch) {
    case 'r': cfg->rooms = (uint32_t)atoi(arg); return 0;
    case 'm': cfg->members = (uint32_t)atoi(arg); return 0;
    case 'R': cfg->rate = atof(arg); return 0;
    case 's': cfg->size = (size_t)atol(arg); return 0;
    case 'D': cfg->drain = atof(arg); return 0;
    }
    return -1;
}

int ps_run(const struct ps_cfg *cfg, struct ps_result *res)
{
    static const struct scen_ops ops = {
        .on_ready = on_ready, .on_msg = on_msg, .on_close = on_close,
        .tick = tick, .progress = progress,
    };
    C = cfg;
    R = res;
    g_nconn = cfg->rooms * cfg->members;
    R->lat = hist_new();
    R->ack = hist_new();
    g_ack_t = calloc(ACK_RING, sizeof *g_ack_t);
    g_maxseq = calloc(cfg->rooms, sizeof *g_maxseq);
    g_data = malloc(cfg->size + 64);
    if (!g_ack_t || !g_maxseq || !g_data)
        return -1;
    static const char head[] = "{\"t\":                   0,\"p\":\"";
    size_t hl = sizeof head - 1; /* 31: the number occupies [5, 25) */
    memcpy(g_data, head, hl);
    fill_payload(g_data + hl, cfg->size);
    memcpy(g_data + hl + cfg->size, "\"}", 2);
    g_fill_at = hl + cfg->size + 2;

    sample(&R->s_before_conn);
    if (loop_init(g_nconn, &ops) != 0)
        return -1;
    uint64_t t_setup = now_ns();
    double setup_s = g_nconn / g_opts.ramp + 30;
    if (loop_run(setup_done, t_setup + (uint64_t)(setup_s * 1e9)) != 0)
        fprintf(stderr, "parley-bench: setup timed out (%llu of %u joined)\n",
                (unsigned long long)R->joined, g_nconn);
    R->setup_s = (now_ns() - t_setup) / 1e9;

    sample(&R->s_start);
    g_t0 = R->s_start.t;
    g_publishing = true;
    loop_run(NULL, g_t0 + (uint64_t)(cfg->duration * 1e9));
    g_publishing = false;
    R->expected_now = R->sent * cfg->members;
    R->expected = R->expected_now;
    uint64_t t_pub_end = now_ns();
    loop_run(drained, t_pub_end + (uint64_t)(cfg->drain * 1e9));
    sample(&R->s_end);
    R->pub_s = (t_pub_end - g_t0) / 1e9;
    uint64_t last = g_last_delivery > t_pub_end ? g_last_delivery : t_pub_end;
    R->deliver_s = (last - g_t0) / 1e9;
    for (uint32_t r = 0; r < cfg->rooms; r++)
        if (g_maxseq[r] > 0)
            R->seq_sum += (uint64_t)g_maxseq[r];
    R->closed = g_closed;
    R->failed = g_failed;
    loop_free();
    free(g_ack_t);
    free(g_maxseq);
    free(g_data);
    return 0;
}

void ps_report(const struct ps_cfg *cfg, const struct ps_result *r)
{
    res_str("protocol", g_opts.proto == PROTO_SOCKETIO ? "socketio" : "parley");
    res_num("rooms", cfg->rooms, "");
    res_num("members", cfg->members, "");
    res_num("connections", (double)cfg->rooms * cfg->members, "");
    res_num("rate_target", cfg->rate, "msg/s");
    res_num("payload_bytes", (double)cfg->size, "B");
    res_num("setup_s", r->setup_s, "s");
    res_num("joined", (double)r->joined, "");
    res_num("closed", r->closed, "");
    res_num("published", (double)r->sent, "msg");
    res_num("publish_rate", r->pub_s > 0 ? r->sent / r->pub_s : 0, "msg/s");
    res_num("expected", (double)r->expected, "deliveries");
    res_num("delivered", (double)r->delivered, "deliveries");
    res_num("delivered_ratio", r->expected ? (double)r->delivered / (double)r->expected : 0, "");
    res_num("deliveries_per_s", r->deliver_s > 0 ? r->delivered / r->deliver_s : 0, "1/s");
    res_hist("latency", r->lat);
    if (cfg->acks)
        res_hist("ack", r->ack);
    if (g_opts.server_pid > 0) {
        double du = r->s_end.user - r->s_start.user, ds = r->s_end.sys - r->s_start.sys;
        res_num("server_user_s", du, "s");
        res_num("server_sys_s", ds, "s");
        res_num("server_user_us_per_delivery", r->delivered ? du * 1e6 / r->delivered : 0, "us");
        res_num("server_total_us_per_delivery",
                r->delivered ? (du + ds) * 1e6 / r->delivered : 0, "us");
        res_num("server_rss_kib_before", (double)r->s_before_conn.rss_kib, "KiB");
        res_num("server_rss_kib_end", (double)r->s_end.rss_kib, "KiB");
    }
    /* If the bench itself was near 100% of a CPU, the server was not the bottleneck. */
    double wall = (r->s_end.t - r->s_start.t) / 1e9;
    res_num("bench_cpu_pct", wall > 0 ? 100 * (r->s_end.self_cpu - r->s_start.self_cpu) / wall : 0, "%");
    res_num("errors", (double)(r->errors + r->join_err + r->pub_err), "");
    if (r->first_error[0])
        res_str("first_error", r->first_error);
    if (r->first_close[0])
        res_str("first_close", r->first_close);
}

int ps_run_report(const char *name, const struct ps_cfg *cfg, struct ps_result *res)
{
    if (ps_run(cfg, res) != 0)
        return -1;
    res_str("scenario", name);
    ps_report(cfg, res);
    return 0;
}

void ps_result_free(struct ps_result *res)
{
    hist_free(res->lat);
    hist_free(res->ack);
    res->lat = res->ack = NULL;
}
