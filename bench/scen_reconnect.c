/* scen_reconnect: a reconnect storm (Parley protocol only).
 *
 * N clients are spread over R rooms (client i -> room i % R) and remember the seq of their
 * join reply. They all disconnect; while they are away, publisher connections (one per 50
 * rooms, so joins and publishes stay inside the per-connection bursts) post M messages to every room and
 * then leave, so every room is cold (no member, no cache) like after a server restart. Then
 * all N reconnect within --window seconds and re-join with since. A probe room with its own
 * publisher and subscriber carries live traffic through the storm.
 *
 * Measured: time from the first reconnect to the last join reply (full recovery), per-client
 * join latency, clients recovered (recovered:true and exactly the M missed messages, in order,
 * once), closed clients, and the probe's live latency during the storm.
 *
 * Connection layout: [0, P) publishers, P probe publisher, P+1 probe subscriber, then the
 * N clients; only the clients reconnect (loop_restart_from).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOMS_PER_PUBLISHER 50
#define ID_JOIN 1
#define ID_REJOIN 2
#define ID_PUB 3

static uint32_t g_clients = 1000, g_nrooms = 200, g_missed = 20, g_npub;
static double g_window = 1.0, g_probe_rate = 100, g_settle = 0.5, g_p99_target = 50;
static uint32_t g_first;           /* index of the first client */
static int g_phase;                /* 0 setup, 1 away, 2 publish, 3 storm, 4 done */
static uint64_t g_joined, g_join_err, g_pub_sent, g_pub_ok, g_pub_err;
static uint64_t g_recovered, g_not_recovered, g_gaps, g_dups, g_storm_closed, g_storm_failed;
static uint64_t g_reready, g_probe_sent, g_probe_recv;
static uint64_t g_t0, g_last_reply, g_last_ready, g_next_probe;
static int64_t *g_last, *g_next;   /* per client: seq of the join reply; next expected seq */
static uint32_t *g_pub_room, *g_pub_left; /* per publisher: room cursor, messages left in it */
static uint32_t *g_inflight;
static struct hist *g_join_lat, *g_probe_lat;
static char g_err[128];

static bool is_client(const struct conn *c) { return c->idx >= g_first; }
static uint32_t client_room(const struct conn *c) { return (c->idx - g_first) % g_nrooms; }

static void note_err(const struct minfo *mi)
{
    if (!g_err[0] && mi->data)
        snprintf(g_err, sizeof g_err, "%.*s", (int)(mi->data_n < 100 ? mi->data_n : 100), mi->data);
}

static void on_ready(struct conn *c)
{
    char room[32];
    if (c->idx == g_npub || c->idx == g_npub + 1) {
        wire_join(c, "rc-probe", ID_JOIN);
        return;
    }
    if (!is_client(c))
        return;
    snprintf(room, sizeof room, "rc-%u", client_room(c));
    if (g_phase == 0) {
        wire_join(c, room, ID_JOIN);
        return;
    }
    /* Reconnected: catch up from the last seq seen. */
    g_reready++;
    g_last_ready = now_ns();
    uint32_t i = c->idx - g_first;
    g_next[i] = g_last[i] + 1;
    c->t_sent = now_ns();
    wire_join_since(c, room, g_last[i], ID_REJOIN);
}

/* Keeps up to 64 publishes in flight on publisher p: M per room, room after room. */
static void publish_more(struct conn *c)
{
    static const char data[] = "{\"p\":\"reconnect-storm-missed-message\"}";
    uint32_t p = c->idx;
    char room[32];
    while (g_inflight[p] < 64 && g_pub_room[p] < g_nrooms) {
        if (g_pub_left[p] == 0) {
            g_pub_room[p] += g_npub;
            g_pub_left[p] = g_missed;
            if (g_pub_room[p] >= g_nrooms)
                break;
            snprintf(room, sizeof room, "rc-%u", g_pub_room[p]);
            wire_join(c, room, 0);
            continue;
        }
        snprintf(room, sizeof room, "rc-%u", g_pub_room[p]);
        wire_publish(c, room, data, sizeof data - 1, ID_PUB, true);
        g_pub_left[p]--;
        g_inflight[p]++;
        g_pub_sent++;
    }
}

static void on_client_msg(struct conn *c, const struct minfo *mi)
{
    uint32_t i = c->idx - g_first;
    if (mi->kind == MK_MESSAGE && g_phase == 3) {
        if (mi->seq == g_next[i])
            g_next[i]++;
        else if (mi->seq >= 0 && mi->seq < g_next[i])
            g_dups++;
        else if (mi->seq > g_next[i]) {
            g_gaps++;
            g_next[i] = mi->seq + 1;
        }
        return;
    }
    if (mi->kind != MK_REPLY)
        return;
    if (mi->id == ID_JOIN) {
        if (mi->ok) {
            g_joined++;
            g_last[i] = mi->seq;
        } else {
            g_join_err++;
            note_err(mi);
        }
        return;
    }
    if (mi->id != ID_REJOIN)
        return;
    uint64_t now = now_ns();
    const char *v;
    size_t vn;
    bool rec = mi->ok && js_find(mi->data, mi->data_n, "recovered", &v, &vn) && vn == 4 &&
               !memcmp(v, "true", 4);
    /* Recovered means: the reply says so, and exactly the M missed messages came, in order. */
    if (rec && mi->seq == g_next[i] - 1 && mi->seq - g_last[i] == (int64_t)g_missed) {
        g_recovered++;
    } else {
        g_not_recovered++;
        if (!g_err[0])
            snprintf(g_err, sizeof g_err, "client %u: last %lld next %lld reply seq %lld rec %d",
                     i, (long long)g_last[i], (long long)g_next[i], (long long)mi->seq, rec);
    }
    g_last[i] = mi->seq;
    hist_add(g_join_lat, now - c->t_sent);
    g_last_reply = now;
}

static void on_msg(struct conn *c, const struct minfo *mi)
{
    if (mi->kind == MK_ERROR) {
        note_err(mi);
        if (!is_client(c) && c->idx < g_npub)
            g_pub_err++;
        return;
    }
    if (is_client(c)) {
        on_client_msg(c, mi);
        return;
    }
    if (c->idx == g_npub + 1 && mi->kind == MK_MESSAGE) {
        int64_t t;
        if (mi->data && js_int(mi->data, mi->data_n, "t", &t)) {
            g_probe_recv++;
            if (g_phase == 3)
                hist_add(g_probe_lat, now_ns() - (uint64_t)t);
        }
        return;
    }
    if (mi->kind != MK_REPLY)
        return;
    if (mi->id == ID_JOIN) {
        if (mi->ok) g_joined++; else { g_join_err++; note_err(mi); }
        return;
    }
    if (mi->id == ID_PUB && c->idx < g_npub) {
        g_inflight[c->idx]--;
        if (mi->ok) g_pub_ok++; else { g_pub_err++; note_err(mi); }
        publish_more(c);
    }
}

static void on_close(struct conn *c, const char *why)
{
    (void)why;
    if (g_phase != 3 || !is_client(c))
        return;
    /* A client closed during the storm: failed to connect, or closed by the server. */
    if (g_next[c->idx - g_first] > 0)
        g_storm_closed++;
    else
        g_storm_failed++;
}

static void tick(uint64_t now)
{
    loop_ramp(now);
    if (g_phase == 3 && g_probe_rate > 0 && now >= g_next_probe) {
        struct conn *p = loop_conn(g_npub);
        char data[64];
        int n = snprintf(data, sizeof data, "{\"t\":%llu}", (unsigned long long)now);
        if (p->state == CS_READY) {
            wire_publish(p, "rc-probe", data, (size_t)n, 0, true);
            loop_mark_dirty(p);
            g_probe_sent++;
        }
        g_next_probe = now + (uint64_t)(1e9 / g_probe_rate);
    }
}

static void progress(char *line, size_t n)
{
    snprintf(line, n, "phase %d joined %llu published %llu reconnected %llu recovered %llu "
             "closed %llu probe p99 %.2f ms", g_phase, (unsigned long long)g_joined,
             (unsigned long long)g_pub_ok, (unsigned long long)g_reready,
             (unsigned long long)g_recovered, (unsigned long long)g_storm_closed,
             hist_count(g_probe_lat) ? hist_pct(g_probe_lat, 99) / 1e6 : 0.0);
}

static bool setup_done(void) { return g_joined + g_join_err + g_failed >= g_clients + 2; }
static bool publish_done(void)
{
    return g_pub_ok + g_pub_err >= (uint64_t)g_missed * g_nrooms || g_pub_err > 0;
}
static bool storm_done(void)
{
    return g_recovered + g_not_recovered + g_storm_closed + g_storm_failed >= g_clients;
}

static void help(void)
{
    printf("usage: parley-bench reconnect [options]   (parley protocol only)\n"
           "  --clients N     clients (default 1000)\n"
           "  --rooms R       rooms, R <= N (default 200)\n"
           "  --missed M      messages each room gets while its clients are away (default 20)\n"
           "  --window S      all clients reconnect within S seconds (default 1)\n"
           "  --probe-rate N  live messages per second in the probe room (default 100)\n"
           "  --p99-target MS probe p99 above it counts as a missed target (default 50)\n"
           "  --settle S      pause after publishing, before the storm (default 0.5)\n"
           "Exit 0 when every client recovered, none was closed and the probe p99 met the\n"
           "target; 1 otherwise (results are printed either way).\n"
           "%s", COMMON_HELP);
}

static int reconnect_opt(int ch, const char *arg, void *ctx)
{
    (void)ctx;
    switch (ch) {
    case 'c': g_clients = (uint32_t)atoi(arg); return 0;
    case 'r': g_nrooms = (uint32_t)atoi(arg); return 0;
    case 'm': g_missed = (uint32_t)atoi(arg); return 0;
    case 'w': g_window = atof(arg); return 0;
    case 'p': g_probe_rate = atof(arg); return 0;
    case 't': g_p99_target = atof(arg); return 0;
    case 's': g_settle = atof(arg); return 0;
    }
    return -1;
}

int scen_reconnect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"clients", required_argument, 0, 'c'}, {"rooms", required_argument, 0, 'r'},
        {"missed", required_argument, 0, 'm'}, {"window", required_argument, 0, 'w'},
        {"probe-rate", required_argument, 0, 'p'}, {"p99-target", required_argument, 0, 't'},
        {"settle", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
        COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    int rc = opts_parse(argc, argv, lo, reconnect_opt, NULL, help);
    if (rc != 0)
        return rc;
    if (opts_no_procs("reconnect"))
        return 2;
    if (g_opts.proto != PROTO_PARLEY || !g_nrooms || g_clients < g_nrooms || !g_missed ||
        g_window <= 0) {
        fprintf(stderr, "parley-bench reconnect: parley protocol, N >= R >= 1, M >= 1, S > 0\n");
        return 2;
    }
    static const struct scen_ops ops = {
        .on_ready = on_ready, .on_msg = on_msg, .on_close = on_close, .tick = tick,
        .progress = progress,
    };
    g_npub = (g_nrooms + ROOMS_PER_PUBLISHER - 1) / ROOMS_PER_PUBLISHER;
    g_first = g_npub + 2;
    g_last = calloc(g_clients, sizeof *g_last);
    g_next = calloc(g_clients, sizeof *g_next);
    g_pub_room = calloc(g_npub, sizeof *g_pub_room);
    g_pub_left = calloc(g_npub, sizeof *g_pub_left);
    g_inflight = calloc(g_npub, sizeof *g_inflight);
    g_join_lat = hist_new();
    g_probe_lat = hist_new();
    if (!g_last || !g_next || !g_pub_room || !g_pub_left || !g_inflight ||
        loop_init(g_first + g_clients, &ops) != 0)
        return 1;

    /* Setup: everyone connects and joins. */
    uint64_t t = now_ns();
    loop_run(setup_done, t + (uint64_t)(((g_clients + g_first) / g_opts.ramp + 60) * 1e9));
    double setup_s = (now_ns() - t) / 1e9;
    bool setup_ok = g_join_err == 0 && g_joined == g_clients + 2;

    /* Away: the clients hang up. */
    g_phase = 1;
    for (uint32_t i = g_first; i < g_first + g_clients; i++)
        loop_close(loop_conn(i), "away");
    loop_run(NULL, now_ns() + 200000000ull);

    /* Publish M to every room, then the publishers leave: every room is cold. */
    g_phase = 2;
    uint64_t tp = now_ns();
    for (uint32_t p = 0; p < g_npub; p++) {
        g_pub_room[p] = p;
        g_pub_left[p] = g_missed;
        char room[32];
        snprintf(room, sizeof room, "rc-%u", p);
        struct conn *c = loop_conn(p);
        if (c->state != CS_READY || p >= g_nrooms) {
            g_pub_room[p] = g_nrooms;
            continue;
        }
        wire_join(c, room, 0);
        publish_more(c);
        loop_mark_dirty(c);
    }
    loop_run(publish_done, tp + 300000000000ull);
    double publish_s = (now_ns() - tp) / 1e9;
    for (uint32_t p = 0; p < g_npub; p++)
        loop_close(loop_conn(p), "done publishing");
    loop_run(NULL, now_ns() + (uint64_t)(g_settle * 1e9));

    /* The storm. */
    g_phase = 3;
    double u0 = 0, s0 = 0, u1 = 0, s1 = 0;
    if (g_opts.server_pid > 0)
        ps_cpu_all(&u0, &s0);
    g_opts.ramp = g_clients / g_window;
    if (g_opts.max_pending < 1024)
        g_opts.max_pending = 1024;
    g_t0 = now_ns();
    g_next_probe = g_t0;
    loop_restart_from(g_first);
    loop_run(storm_done, g_t0 + 120000000000ull);
    uint64_t t_end = now_ns();
    /* Keep the probe going for at least a second of storm. */
    if (t_end - g_t0 < 1000000000ull)
        loop_run(NULL, g_t0 + 1000000000ull);
    if (g_opts.server_pid > 0)
        ps_cpu_all(&u1, &s1);
    g_phase = 4;

    double probe_p99 = hist_count(g_probe_lat) ? hist_pct(g_probe_lat, 99) / 1e6 : -1;
    res_str("scenario", "reconnect");
    res_num("clients", g_clients, "");
    res_num("rooms", g_nrooms, "");
    res_num("missed_per_room", g_missed, "msg");
    res_num("reconnect_window_s", g_window, "s");
    res_num("setup_s", setup_s, "s");
    res_num("publish_s", publish_s, "s");
    res_num("published", (double)g_pub_ok, "msg");
    res_num("publish_errors", (double)g_pub_err, "");
    res_num("reconnected", (double)g_reready, "");
    res_num("reconnect_s", g_last_ready ? (g_last_ready - g_t0) / 1e9 : -1, "s");
    res_num("recovered", (double)g_recovered, "");
    res_num("not_recovered", (double)g_not_recovered, "");
    res_num("gaps", (double)g_gaps, "");
    res_num("duplicates", (double)g_dups, "");
    res_num("closed", (double)g_storm_closed, "");
    res_num("connect_failed", (double)g_storm_failed, "");
    res_num("full_recovery_s", g_last_reply ? (g_last_reply - g_t0) / 1e9 : -1, "s");
    res_hist("join_since", g_join_lat);
    res_num("probe_sent", (double)g_probe_sent, "msg");
    res_num("probe_received", (double)g_probe_recv, "msg");
    res_hist("probe", g_probe_lat);
    if (g_opts.server_pid > 0) {
        res_num("server_user_s", u1 - u0, "s");
        res_num("server_sys_s", s1 - s0, "s");
    }
    if (g_err[0])
        res_str("first_error", g_err);
    bool ok = setup_ok && g_pub_err == 0 && g_recovered == g_clients && g_storm_closed == 0 &&
              g_storm_failed == 0 && g_gaps == 0 && g_dups == 0 && probe_p99 >= 0 &&
              probe_p99 < g_p99_target;
    res_str("targets", ok ? "met" : "missed");
    loop_free();
    free(g_last);
    free(g_next);
    free(g_pub_room);
    free(g_pub_left);
    free(g_inflight);
    hist_free(g_join_lat);
    hist_free(g_probe_lat);
    return ok ? 0 : 1;
}
