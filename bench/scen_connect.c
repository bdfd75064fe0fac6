/* scen_connect: open N connections (ramped), each joins K of T rooms, hold them idle.
 * Reports the connect rate (ready and joined per second) and, with --server-pid, the
 * server's RSS growth per connection: VmRSS after the hold minus VmRSS before the first
 * connect, divided by the connections that are still open. */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t g_n, g_rooms = 100, g_per = 1;
static uint64_t g_joined, g_join_err;
static char g_first_close[96];

static void on_ready(struct conn *c)
{
    char room[64];
    for (uint32_t k = 0; k < g_per; k++) {
        snprintf(room, sizeof room, "conn-%u", (c->idx * g_per + k) % g_rooms);
        wire_join(c, room, k + 1);
    }
}

static void on_msg(struct conn *c, const struct minfo *mi)
{
    (void)c;
    if (mi->kind == MK_REPLY) {
        if (mi->ok)
            g_joined++;
        else
            g_join_err++;
    } else if (mi->kind == MK_ERROR) {
        g_join_err++;
    }
}

static void on_close(struct conn *c, const char *why)
{
    if (!g_first_close[0])
        snprintf(g_first_close, sizeof g_first_close, "conn %u: %s", c->idx, why);
}

static void tick(uint64_t now) { loop_ramp(now); }

static void progress(char *line, size_t n)
{
    snprintf(line, n, "started %u ready %u/%u joins %llu closed %u", g_started, g_ready, g_n,
             (unsigned long long)g_joined, g_closed);
}

static bool all_joined(void)
{
    return g_joined + g_join_err + (uint64_t)g_failed * g_per >= (uint64_t)g_n * g_per;
}

static void help(void)
{
    printf("usage: parley-bench connect [options]\n"
           "  --conns N           connections (default 1000; at most the fd limit - 64)\n"
           "  --rooms T           distinct rooms (default 100)\n"
           "  --rooms-per-conn K  rooms each connection joins (default 1; K <= T)\n"
           "  --duration S        hold time once all are joined (default 10)\n"
           "%s", COMMON_HELP);
}

static int connect_opt(int ch, const char *arg, void *ctx)
{
    (void)ctx;
    switch (ch) {
    case 'n': g_n = (uint32_t)atoi(arg); return 0;
    case 'r': g_rooms = (uint32_t)atoi(arg); return 0;
    case 'k': g_per = (uint32_t)atoi(arg); return 0;
    }
    return -1;
}

int scen_connect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"conns", required_argument, 0, 'n'}, {"rooms", required_argument, 0, 'r'},
        {"rooms-per-conn", required_argument, 0, 'k'}, {"help", no_argument, 0, 'h'},
        COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    g_n = 1000;
    int rc = opts_parse(argc, argv, lo, connect_opt, NULL, help);
    if (rc != 0)
        return rc;
    if (opts_no_procs("connect"))
        return 2;
    if (!g_n || !g_rooms || !g_per || g_per > g_rooms) {
        fprintf(stderr, "parley-bench connect: bad sizes (see --help)\n");
        return 2;
    }
    static const struct scen_ops ops = {
        .on_ready = on_ready, .on_msg = on_msg, .on_close = on_close,
        .tick = tick, .progress = progress,
    };
    long rss0 = g_opts.server_pid > 0 ? ps_rss_all_kib() : -1;
    if (loop_init(g_n, &ops) != 0)
        return 1;
    uint64_t t0 = now_ns();
    int to = loop_run(all_joined, t0 + (uint64_t)((g_n / g_opts.ramp + 60) * 1e9));
    uint64_t t1 = now_ns();
    long rss_joined = g_opts.server_pid > 0 ? ps_rss_all_kib() : -1;
    loop_run(NULL, t1 + (uint64_t)(g_opts.duration * 1e9));
    long rss1 = g_opts.server_pid > 0 ? ps_rss_all_kib() : -1;
    uint32_t open_now = g_ready - (g_closed - g_failed);

    res_str("scenario", "connect");
    res_str("protocol", g_opts.proto == PROTO_SOCKETIO ? "socketio" : "parley");
    res_num("connections", g_n, "");
    res_num("rooms", g_rooms, "");
    res_num("rooms_per_conn", g_per, "");
    res_num("ready", g_ready, "");
    res_num("joins_ok", (double)g_joined, "");
    res_num("join_errors", (double)g_join_err, "");
    res_num("failed", g_failed, "");
    res_num("open_after_hold", open_now, "");
    res_num("setup_s", (t1 - t0) / 1e9, "s");
    res_num("connect_rate", (t1 > t0) ? g_ready / ((t1 - t0) / 1e9) : 0, "conn/s");
    if (g_opts.server_pid > 0) {
        res_num("server_rss_kib_before", (double)rss0, "KiB");
        res_num("server_rss_kib_joined", (double)rss_joined, "KiB");
        res_num("server_rss_kib_after_hold", (double)rss1, "KiB");
        res_num("server_rss_bytes_per_conn",
                open_now ? (double)(rss1 - rss0) * 1024.0 / open_now : 0, "B");
    }
    if (g_first_close[0])
        res_str("first_close", g_first_close);
    loop_free();
    return (to == 0 && g_failed == 0 && g_join_err == 0) ? 0 : 1;
}
