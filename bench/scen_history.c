/* scen_history: concurrent history paging (Parley protocol only: the peers keep no history).
 *
 * Setup: C clients join R rooms (client i -> room i % R); one client per room prefills K
 * stored messages (at most 64 publishes in flight per room) and the run waits --settle
 * seconds so the storage writer has committed them. Then every client loops: history
 * {room, before: uniform random in [2, latest+1], limit L}, wait for the reply, repeat.
 * Random `before` makes most pages come from disk rather than the in-memory tail.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t g_nrooms = 10, g_clients = 50, g_prefill = 2000, g_limit = 50;
static double g_settle = 1.0;
static int g_phase; /* 0 setup, 1 prefill, 2 settle, 3 paging, 4 stopping */
static uint64_t g_joined, g_join_err, g_pub_sent, g_pub_ok, g_pub_err;
static uint64_t g_pages, g_msgs, g_hist_err, g_in_flight;
static int64_t *g_maxseq;
static uint32_t *g_room_sent, *g_room_acked;
static struct hist *g_lat;
static uint64_t g_rng = 88172645463325252ull;
static char g_err[128];

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void room_of(const struct conn *c, char *dst, size_t n)
{
    snprintf(dst, n, "hist-%u", c->idx % g_nrooms);
}

static void on_ready(struct conn *c)
{
    char room[32];
    room_of(c, room, sizeof room);
    wire_join(c, room, 1);
}

static void prefill_more(struct conn *c)
{
    static const char data[] = "{\"t\":0,\"p\":\"history-bench-filler-0123456789abcdef\"}";
    uint32_t r = c->idx;
    char room[32];
    room_of(c, room, sizeof room);
    while (g_room_sent[r] < g_prefill && g_room_sent[r] - g_room_acked[r] < 64) {
        wire_publish(c, room, data, sizeof data - 1, 2 + g_room_sent[r], true);
        g_room_sent[r]++;
        g_pub_sent++;
    }
}

static void page(struct conn *c)
{
    char room[32];
    room_of(c, room, sizeof room);
    int64_t top = g_maxseq[c->idx % g_nrooms];
    int64_t before = top >= 1 ? 2 + (int64_t)(rnd() % (uint64_t)top) : 0;
    c->t_sent = now_ns();
    c->pending_id = 1000000000u;
    g_in_flight++;
    wire_history(c, room, before, (int)g_limit, c->pending_id);
}

static void on_msg(struct conn *c, const struct minfo *mi)
{
    if (mi->kind == MK_ERROR) {
        if (!g_err[0] && mi->data)
            snprintf(g_err, sizeof g_err, "%.*s", (int)(mi->data_n < 100 ? mi->data_n : 100),
                     mi->data);
        g_hist_err++;
        series_error();
        return;
    }
    if (mi->kind != MK_REPLY)
        return;
    if (mi->id == 1) {
        if (mi->ok) g_joined++; else g_join_err++;
        return;
    }
    if (!mi->ok && !g_err[0] && mi->data)
        snprintf(g_err, sizeof g_err, "%.*s", (int)(mi->data_n < 100 ? mi->data_n : 100),
                 mi->data);
    if (mi->id == 1000000000u) {
        g_in_flight--;
        if (!mi->ok) {
            g_hist_err++;
            series_error();
        } else {
            g_pages++;
            uint64_t lat = now_ns() - c->t_sent;
            hist_add(g_lat, lat);
            series_delivery(lat); /* a page is this scenario's delivery */
            const char *p = mi->data;
            size_t n = mi->data_n;
            for (const char *q = p; (q = memmem(q, n - (size_t)(q - p), "\"seq\":", 6)); q += 6)
                g_msgs++;
        }
        /* A failed page ends this client's loop: an unsupported or failing history
         * command must not turn into a busy loop of errors. */
        if (g_phase == 3 && mi->ok)
            page(c);
        return;
    }
    /* publish reply (prefill) */
    uint32_t r = c->idx % g_nrooms;
    g_room_acked[r]++;
    if (mi->ok) {
        g_pub_ok++;
        if (mi->seq > g_maxseq[r])
            g_maxseq[r] = mi->seq;
    } else {
        g_pub_err++;
    }
    prefill_more(c);
}

static void tick(uint64_t now) { loop_ramp(now); }

static void progress(char *line, size_t n)
{
    snprintf(line, n, "phase %d ready %u joined %llu prefilled %llu pages %llu p99 %.2f ms",
             g_phase, g_ready, (unsigned long long)g_joined, (unsigned long long)g_pub_ok,
             (unsigned long long)g_pages, hist_count(g_lat) ? hist_pct(g_lat, 99) / 1e6 : 0.0);
}

static bool setup_done(void) { return g_joined + g_join_err + g_failed >= g_clients; }
static bool prefill_done(void) { return g_pub_ok + g_pub_err >= (uint64_t)g_prefill * g_nrooms; }
static bool idle(void) { return g_in_flight == 0; }

static void help(void)
{
    printf("usage: parley-bench history [options]   (parley protocol only)\n"
           "  --rooms R      rooms (default 10)\n"
           "  --clients C    paging connections, C >= R (default 50)\n"
           "  --prefill K    stored messages per room before paging (default 2000)\n"
           "  --limit L      page size 1..100 (default 50)\n"
           "  --settle S     wait after prefill so storage commits (default 1)\n"
           "%s", COMMON_HELP);
}

static int history_opt(int ch, const char *arg, void *ctx)
{
    (void)ctx;
    switch (ch) {
    case 'r': g_nrooms = (uint32_t)atoi(arg); return 0;
    case 'c': g_clients = (uint32_t)atoi(arg); return 0;
    case 'k': g_prefill = (uint32_t)atoi(arg); return 0;
    case 'l': g_limit = (uint32_t)atoi(arg); return 0;
    case 's': g_settle = atof(arg); return 0;
    }
    return -1;
}

int scen_history(int argc, char **argv)
{
    static const struct option lo[] = {
        {"rooms", required_argument, 0, 'r'}, {"clients", required_argument, 0, 'c'},
        {"prefill", required_argument, 0, 'k'}, {"limit", required_argument, 0, 'l'},
        {"settle", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
        COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    int rc = opts_parse(argc, argv, lo, history_opt, NULL, help);
    if (rc != 0)
        return rc;
    if (opts_no_procs("history"))
        return 2;
    if (g_opts.proto != PROTO_PARLEY || !g_nrooms || g_clients < g_nrooms || !g_limit ||
        g_limit > 100) {
        fprintf(stderr, "parley-bench history: parley protocol, C >= R >= 1, 1 <= L <= 100\n");
        return 2;
    }
    static const struct scen_ops ops = {
        .on_ready = on_ready, .on_msg = on_msg, .tick = tick, .progress = progress,
    };
    g_maxseq = calloc(g_nrooms, sizeof *g_maxseq);
    g_room_sent = calloc(g_nrooms, sizeof *g_room_sent);
    g_room_acked = calloc(g_nrooms, sizeof *g_room_acked);
    g_lat = hist_new();
    if (!g_maxseq || !g_room_sent || !g_room_acked || loop_init(g_clients, &ops) != 0)
        return 1;
    uint64_t t = now_ns();
    loop_run(setup_done, t + (uint64_t)((g_clients / g_opts.ramp + 30) * 1e9));
    g_phase = 1;
    uint64_t tp = now_ns();
    for (uint32_t r = 0; r < g_nrooms; r++)
        if (loop_conn(r)->state == CS_READY)
            prefill_more(loop_conn(r));
    loop_run(prefill_done, tp + 120000000000ull);
    double prefill_s = (now_ns() - tp) / 1e9;
    g_phase = 2;
    loop_run(NULL, now_ns() + (uint64_t)(g_settle * 1e9));

    g_phase = 3;
    double u0 = 0, s0 = 0, u1 = 0, s1 = 0;
    if (g_opts.server_pid > 0)
        ps_cpu_all(&u0, &s0);
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < g_clients; i++)
        if (loop_conn(i)->state == CS_READY)
            page(loop_conn(i));
    loop_run(NULL, t0 + (uint64_t)(g_opts.duration * 1e9));
    g_phase = 4;
    uint64_t t1 = now_ns();
    loop_run(idle, t1 + 5000000000ull);
    if (g_opts.server_pid > 0)
        ps_cpu_all(&u1, &s1);

    res_str("scenario", "history");
    res_num("rooms", g_nrooms, "");
    res_num("clients", g_clients, "");
    res_num("limit", g_limit, "");
    res_num("prefill_ok", (double)g_pub_ok, "msg");
    res_num("prefill_err", (double)g_pub_err, "msg");
    res_num("prefill_rate", prefill_s > 0 ? g_pub_ok / prefill_s : 0, "msg/s");
    res_num("pages", (double)g_pages, "");
    res_num("pages_per_s", g_pages / ((t1 - t0) / 1e9), "1/s");
    res_num("messages_per_page", g_pages ? (double)g_msgs / g_pages : 0, "");
    res_num("history_errors", (double)g_hist_err, "");
    res_hist("latency", g_lat);
    if (g_opts.server_pid > 0) {
        res_num("server_user_s", u1 - u0, "s");
        res_num("server_sys_s", s1 - s0, "s");
        res_num("server_us_per_page", g_pages ? (u1 - u0 + s1 - s0) * 1e6 / g_pages : 0, "us");
    }
    res_num("closed", g_closed, "");
    if (g_err[0])
        res_str("first_error", g_err);
    loop_free();
    free(g_maxseq);
    free(g_room_sent);
    free(g_room_acked);
    hist_free(g_lat);
    return (g_hist_err == 0 && g_pub_err == 0 && g_pages > 0) ? 0 : 1;
}
