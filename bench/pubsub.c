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
 * --procs N: the parent forks N workers before connecting. Worker w owns the global
 * connections w, w+N, w+2N... (its local connection j is global j*N+w), so rooms, targets
 * and publishers are laid out exactly as in one process. Publishing is open loop only: each
 * worker publishes from the publishers it owns at its share of --rate. The workers meet the
 * parent three times over pipes: R (connected and joined) -> G (publish now), S (what each
 * published, per room) -> T (the totals, from which each worker knows how many deliveries
 * its members must see), then F (its counters, histograms and per-room highest seq), which
 * the parent merges: counts add up, histograms add bucket by bucket (percentiles of the
 * merge are those of all samples, never an average of percentiles), times take the max.
 * Latency stays exact across processes: every worker's clock origin is the parent's
 * g_epoch (CLOCK_MONOTONIC is one clock for the whole machine).
 *
 * Rate: open loop at --rate msg/s (publishes are due at fixed times whatever the server
 * does), or with --rate 0 closed loop: at most --window messages not yet fully delivered,
 * which finds the saturation throughput without piling up unbounded server queues.
 */
#define _GNU_SOURCE /* pipe2 */
#include "pubsub.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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
/* --procs: this process's place (1 and 0 without it), its publishers and rate share */
static uint32_t g_np = 1, g_w;
static uint32_t g_pubs;       /* publishers among this process's connections */
static double g_rate;         /* this process's share of --rate */
static uint64_t *g_sent_room; /* --procs: publishes per room by this worker */
static uint32_t *g_local_members; /* --procs: this worker's connections per room */
static int g_up = -1, g_down = -1; /* --procs worker: pipes to and from the parent */

/* Room of local connection idx: by its global index, as in one process. */
static uint32_t conn_room(uint32_t idx)
{
    return (uint32_t)(((uint64_t)idx * g_np + g_w) % C->rooms);
}

static void room_name(char *dst, size_t n, uint32_t room)
{
    snprintf(dst, n, "%s%u", C->room_prefix, room);
}

static void on_ready(struct conn *c)
{
    char room[64];
    c->user = conn_room(c->idx);
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
    uint32_t pubs = g_pubs;
    struct conn *c = NULL;
    if (!pubs)
        return; /* --procs: this worker owns no publisher */
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
    if (g_sent_room)
        g_sent_room[c->user]++;
}

static void tick(uint64_t now)
{
    loop_ramp(now);
    if (!g_publishing)
        return;
    if (C->rate > 0) {
        uint64_t due = (uint64_t)(g_rate * (double)(now - g_t0) / 1e9);
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
        s->rss_kib = ps_rss_all_kib();
        ps_cpu_all(&s->user, &s->sys);
        for (int i = 0; i < g_opts.nserver_pids; i++) {
            s->pid_rss_kib[i] = ps_rss_kib(g_opts.server_pids[i]);
            ps_cpu(g_opts.server_pids[i], &s->pid_user[i], &s->pid_sys[i]);
        }
    }
}

/* ---------------- --procs: messages between the parent and its workers ----------------
 * One message: a tag byte, a 32-bit length, the payload. The parent reads blocking; a
 * worker reads without blocking from inside its loop (deliveries keep arriving meanwhile). */

static int write_full(int fd, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_full(int fd, void *p, size_t n)
{
    char *q = p;
    while (n) {
        ssize_t r = read(fd, q, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

static int msg_send(int fd, char tag, const void *p, uint32_t n)
{
    char h[5];
    h[0] = tag;
    memcpy(h + 1, &n, 4);
    return write_full(fd, h, 5) || (n && write_full(fd, p, n)) ? -1 : 0;
}

/* Parent side: the next message from fd must be tag with exactly n bytes. */
static int msg_recv(int fd, char tag, void *p, uint32_t n)
{
    char h[5];
    uint32_t len;
    if (read_full(fd, h, 5) != 0)
        return -1;
    memcpy(&len, h + 1, 4);
    if (h[0] != tag || len != n)
        return -1;
    return n ? read_full(fd, p, n) : 0;
}

/* Worker side: what the parent sent so far; msg_poll takes a whole message off it. */
static struct buf g_rx;
static char g_want_tag;
static void *g_want_p;
static uint32_t g_want_n;
static bool g_parent_gone;

static bool msg_poll(void)
{
    char tmp[4096];
    for (;;) {
        ssize_t r = read(g_down, tmp, sizeof tmp);
        if (r > 0) {
            buf_append(&g_rx, tmp, (size_t)r);
            continue;
        }
        if (r == 0)
            g_parent_gone = true;
        break;
    }
    size_t have = g_rx.len - g_rx.off;
    if (have < 5)
        return g_parent_gone;
    uint32_t len;
    memcpy(&len, g_rx.p + g_rx.off + 1, 4);
    if (have < 5 + (size_t)len)
        return g_parent_gone;
    if (g_rx.p[g_rx.off] != g_want_tag || len != g_want_n) {
        g_parent_gone = true; /* out of step: give up on the parent */
        return true;
    }
    if (len)
        memcpy(g_want_p, g_rx.p + g_rx.off + 5, len);
    buf_consume(&g_rx, 5 + (size_t)len);
    return true;
}

/* Worker: runs the loop until the parent's message tag (n bytes into p) arrives. */
static int worker_wait(char tag, void *p, uint32_t n)
{
    g_want_tag = tag;
    g_want_p = p;
    g_want_n = n;
    loop_run(msg_poll, now_ns() + 3600ull * 1000000000ull);
    return g_parent_gone ? -1 : 0;
}

/* What a worker sends at the end (F), before its histograms and per-room seqs. */
struct ps_wire {
    uint64_t joined, join_err, sent, skipped, delivered, expected, expected_now;
    uint64_t pub_ok, pub_err, pub_seq, errors;
    uint32_t closed, failed;
    double setup_s, pub_s, deliver_s, self_cpu;
    char first_error[128], first_close[96];
};

static size_t final_size(const struct ps_cfg *cfg)
{
    return sizeof(struct ps_wire) + 2 * hist_blob_size() + (size_t)cfg->rooms * sizeof(int64_t);
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
    uint32_t ntotal = cfg->rooms * cfg->members;
    g_np = (uint32_t)(g_opts.procs > 1 ? g_opts.procs : 1);
    g_w = (uint32_t)g_opts.proc_index;
    g_nconn = ntotal > g_w ? (ntotal - g_w + g_np - 1) / g_np : 0;
    /* Fanout: publishers are the global connections 0..P-1, so this process's are its
     * first ones. Chat: every connection. The rate is shared in that proportion. */
    if (cfg->publishers)
        g_pubs = cfg->publishers > g_w ? (cfg->publishers - g_w + g_np - 1) / g_np : 0;
    else
        g_pubs = g_nconn;
    g_rate = cfg->rate * (double)g_pubs / (double)(cfg->publishers ? cfg->publishers : ntotal);
    if (g_np > 1) {
        g_sent_room = calloc(cfg->rooms, sizeof *g_sent_room);
        g_local_members = calloc(cfg->rooms, sizeof *g_local_members);
        if (!g_sent_room || !g_local_members)
            return -1;
        for (uint32_t j = 0; j < g_nconn; j++)
            g_local_members[conn_room(j)]++;
    }
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
    if (g_np > 1) {
        /* Everyone joined before anyone publishes: the parent says when. */
        if (msg_send(g_up, 'R', NULL, 0) != 0 || worker_wait('G', NULL, 0) != 0)
            return -1;
    }

    sample(&R->s_start);
    g_t0 = R->s_start.t;
    g_publishing = true;
    loop_run(NULL, g_t0 + (uint64_t)(cfg->duration * 1e9));
    g_publishing = false;
    R->expected_now = R->sent * cfg->members;
    if (g_np > 1) {
        /* Deliveries due here: every worker's publishes to a room, times this worker's
         * members of it. */
        uint32_t n = cfg->rooms * (uint32_t)sizeof(uint64_t);
        if (msg_send(g_up, 'S', g_sent_room, n) != 0 || worker_wait('T', g_sent_room, n) != 0)
            return -1;
        R->expected_now = 0;
        for (uint32_t r = 0; r < cfg->rooms; r++)
            R->expected_now += g_sent_room[r] * g_local_members[r];
    }
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
    if (g_np > 1) {
        size_t n = final_size(cfg);
        char *f = calloc(1, n);
        if (!f)
            return -1;
        struct ps_wire *pw = (struct ps_wire *)f;
        pw->joined = R->joined, pw->join_err = R->join_err, pw->sent = R->sent;
        pw->skipped = R->skipped, pw->delivered = R->delivered, pw->expected = R->expected;
        pw->expected_now = R->expected_now, pw->pub_ok = R->pub_ok, pw->pub_err = R->pub_err;
        pw->pub_seq = R->pub_seq, pw->errors = R->errors, pw->closed = R->closed;
        pw->failed = R->failed, pw->setup_s = R->setup_s, pw->pub_s = R->pub_s;
        pw->deliver_s = R->deliver_s;
        pw->self_cpu = R->s_end.self_cpu - R->s_start.self_cpu;
        memcpy(pw->first_error, R->first_error, sizeof pw->first_error);
        memcpy(pw->first_close, R->first_close, sizeof pw->first_close);
        char *q = f + sizeof *pw;
        hist_to_blob(R->lat, q);
        hist_to_blob(R->ack, q + hist_blob_size());
        memcpy(q + 2 * hist_blob_size(), g_maxseq, (size_t)cfg->rooms * sizeof(int64_t));
        int rc = msg_send(g_up, 'F', f, (uint32_t)n);
        free(f);
        if (rc != 0)
            return -1;
    }
    loop_free();
    free(g_ack_t);
    free(g_maxseq);
    free(g_data);
    free(g_sent_room);
    free(g_local_members);
    g_sent_room = NULL;
    g_local_members = NULL;
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
        res_num("server_pids", g_opts.nserver_pids, "");
        if (g_opts.nserver_pids > 1)
            for (int i = 0; i < g_opts.nserver_pids; i++) {
                char key[48];
                snprintf(key, sizeof key, "server%d_pid", i + 1);
                res_num(key, g_opts.server_pids[i], "");
                snprintf(key, sizeof key, "server%d_cpu_s", i + 1);
                res_num(key, r->s_end.pid_user[i] + r->s_end.pid_sys[i] -
                        r->s_start.pid_user[i] - r->s_start.pid_sys[i], "s");
                snprintf(key, sizeof key, "server%d_rss_kib_end", i + 1);
                res_num(key, (double)r->s_end.pid_rss_kib[i], "KiB");
            }
    }
    res_num("procs", g_opts.procs, "");
    res_num("urls", g_opts.ntargets ? g_opts.ntargets : 1, "");
    /* If the bench itself was near 100% of a CPU, the server was not the bottleneck. */
    double wall = (r->s_end.t - r->s_start.t) / 1e9;
    res_num("bench_cpu_pct", wall > 0 ? 100 * (r->s_end.self_cpu - r->s_start.self_cpu) / wall : 0, "%");
    res_num("errors", (double)(r->errors + r->join_err + r->pub_err), "");
    if (r->first_error[0])
        res_str("first_error", r->first_error);
    if (r->first_close[0])
        res_str("first_close", r->first_close);
}

/* Adds worker result f (an F message) into res; maxseq keeps the per-room highest seq. */
static void merge_final(const struct ps_cfg *cfg, struct ps_result *res, const char *f,
                        int64_t *maxseq, double *cpu)
{
    struct ps_wire pw;
    memcpy(&pw, f, sizeof pw);
    res->joined += pw.joined, res->join_err += pw.join_err, res->sent += pw.sent;
    res->skipped += pw.skipped, res->delivered += pw.delivered, res->expected += pw.expected;
    res->expected_now += pw.expected_now, res->pub_ok += pw.pub_ok, res->pub_err += pw.pub_err;
    res->pub_seq += pw.pub_seq, res->errors += pw.errors;
    res->closed += pw.closed, res->failed += pw.failed;
    if (pw.setup_s > res->setup_s) res->setup_s = pw.setup_s;
    if (pw.pub_s > res->pub_s) res->pub_s = pw.pub_s;
    if (pw.deliver_s > res->deliver_s) res->deliver_s = pw.deliver_s;
    *cpu += pw.self_cpu;
    if (!res->first_error[0] && pw.first_error[0])
        memcpy(res->first_error, pw.first_error, sizeof res->first_error);
    if (!res->first_close[0] && pw.first_close[0])
        memcpy(res->first_close, pw.first_close, sizeof res->first_close);
    const char *q = f + sizeof pw;
    hist_merge_blob(res->lat, q);
    hist_merge_blob(res->ack, q + hist_blob_size());
    q += 2 * hist_blob_size();
    for (uint32_t r = 0; r < cfg->rooms; r++) {
        int64_t v;
        memcpy(&v, q + (size_t)r * sizeof v, sizeof v);
        if (v > maxseq[r])
            maxseq[r] = v;
    }
}

/* --procs N: forks the workers, paces them (R -> G, S -> T), merges their F results into
 * res. Server CPU and RSS are sampled here, around the workers' publishing. Returns 0, or
 * -1 when a worker failed (the others are killed). */
static int ps_run_procs(const struct ps_cfg *cfg, struct ps_result *res)
{
    int n = g_opts.procs;
    pid_t pids[64];
    int up[64], down[64];
    int rc = -1, started = 0;
    uint32_t rbytes = cfg->rooms * (uint32_t)sizeof(uint64_t);
    size_t fsize = final_size(cfg);
    uint64_t *tot = calloc(cfg->rooms, sizeof *tot), *part = calloc(cfg->rooms, sizeof *part);
    int64_t *maxseq = calloc(cfg->rooms, sizeof *maxseq);
    char *f = malloc(fsize);
    double cpu = 0;

    if (!tot || !part || !maxseq || !f)
        goto out;
    res->lat = hist_new();
    res->ack = hist_new();
    g_epoch = now_ns();
    sample(&res->s_before_conn);
    fflush(NULL); /* nothing buffered twice */
    for (int w = 0; w < n; w++) {
        int u[2], d[2];
        if (pipe2(u, O_CLOEXEC) != 0 || pipe2(d, O_CLOEXEC) != 0) {
            perror("parley-bench: pipe");
            goto out;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("parley-bench: fork");
            goto out;
        }
        if (pid == 0) {
            for (int j = 0; j < w; j++) {
                close(up[j]);
                close(down[j]);
            }
            close(u[0]);
            close(d[1]);
            g_up = u[1];
            g_down = d[0];
            fcntl(g_down, F_SETFL, O_NONBLOCK);
            g_opts.proc_index = w;
            if (w > 0)
                g_opts.quiet = 1; /* one progress line: worker 0's */
            /* --ramp and --max-pending stay totals: each worker takes its share */
            g_opts.ramp /= n;
            g_opts.max_pending = g_opts.max_pending / n > 0 ? g_opts.max_pending / n : 1;
            struct ps_result wr = {0};
            int k = ps_run(cfg, &wr);
            fflush(NULL);
            _exit(k == 0 ? 0 : 1);
        }
        close(u[1]);
        close(d[0]);
        pids[w] = pid;
        up[w] = u[0];
        down[w] = d[1];
        started++;
    }
    for (int w = 0; w < n; w++)
        if (msg_recv(up[w], 'R', NULL, 0) != 0) {
            fprintf(stderr, "parley-bench: worker %d failed during setup\n", w);
            goto out;
        }
    sample(&res->s_start);
    for (int w = 0; w < n; w++)
        msg_send(down[w], 'G', NULL, 0);
    for (int w = 0; w < n; w++) {
        if (msg_recv(up[w], 'S', part, rbytes) != 0) {
            fprintf(stderr, "parley-bench: worker %d failed while publishing\n", w);
            goto out;
        }
        for (uint32_t r = 0; r < cfg->rooms; r++)
            tot[r] += part[r];
    }
    for (int w = 0; w < n; w++)
        msg_send(down[w], 'T', tot, rbytes);
    for (int w = 0; w < n; w++) {
        if (msg_recv(up[w], 'F', f, (uint32_t)fsize) != 0) {
            fprintf(stderr, "parley-bench: worker %d failed while draining\n", w);
            goto out;
        }
        merge_final(cfg, res, f, maxseq, &cpu);
    }
    sample(&res->s_end);
    /* The bench's own CPU: all workers' (bench_cpu_pct may exceed 100 with --procs). */
    res->s_start.self_cpu = 0;
    res->s_end.self_cpu = cpu;
    for (uint32_t r = 0; r < cfg->rooms; r++)
        if (maxseq[r] > 0)
            res->seq_sum += (uint64_t)maxseq[r];
    rc = 0;
out:
    for (int w = 0; w < started; w++) {
        if (rc != 0)
            kill(pids[w], SIGKILL);
        close(up[w]);
        close(down[w]);
    }
    for (int w = 0; w < started; w++) {
        int st;
        while (waitpid(pids[w], &st, 0) < 0 && errno == EINTR)
            ;
    }
    free(tot);
    free(part);
    free(maxseq);
    free(f);
    return rc;
}

int ps_run_report(const char *name, const struct ps_cfg *cfg, struct ps_result *res)
{
    if (g_opts.procs > 1) {
        if (cfg->rate <= 0) {
            fprintf(stderr, "parley-bench %s: --procs needs an open-loop --rate (> 0)\n", name);
            return -2;
        }
        if (series_on()) {
            fprintf(stderr, "parley-bench %s: --series is not available with --procs\n", name);
            return -2;
        }
        if ((uint64_t)cfg->rooms * cfg->members < (uint64_t)g_opts.procs) {
            fprintf(stderr, "parley-bench %s: fewer connections than --procs\n", name);
            return -2;
        }
        if (ps_run_procs(cfg, res) != 0)
            return -1;
    } else if (ps_run(cfg, res) != 0)
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
