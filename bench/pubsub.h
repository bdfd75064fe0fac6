/* pubsub: engine shared by the fanout and chat scenarios (see pubsub.c). */
#ifndef PARLEY_BENCH_PUBSUB_H
#define PARLEY_BENCH_PUBSUB_H

#include "bench.h"

struct ps_cfg {
    uint32_t rooms, members;
    uint32_t publishers;   /* 0 = every connection publishes in turn */
    double rate;           /* total msg/s; 0 = closed loop with `window` */
    uint32_t window;       /* messages in flight (not yet fully delivered), rate 0 only */
    size_t size;           /* filler bytes in each payload */
    bool persist;          /* parley: default publish (stored) vs "persist":false */
    bool acks;             /* publish with an id and time the reply */
    double duration, drain;
    const char *room_prefix;
};

struct ps_sample {
    uint64_t t;
    double user, sys;   /* server: every --server-pid together */
    double self_cpu;    /* this process (with --procs: every worker), user + system */
    long rss_kib;
    double pid_user[BENCH_MAX_PIDS], pid_sys[BENCH_MAX_PIDS]; /* each --server-pid */
    long pid_rss_kib[BENCH_MAX_PIDS];
};

struct ps_result {
    uint64_t joined, join_err, sent, skipped, delivered, expected, expected_now;
    uint64_t pub_ok, pub_err, pub_seq, errors, seq_sum;
    uint32_t closed, failed;
    double setup_s, pub_s, deliver_s;
    struct hist *lat, *ack;
    struct ps_sample s_before_conn, s_start, s_end;
    char first_error[128], first_close[96];
};

/* The flags fanout and chat both take, straight into ps_cfg fields (defaults are each
 * scenario's own). Put PS_LONGOPTS in the scenario's long options and call ps_opt from its
 * opts_parse callback: 0 if ch was one of them, -1 if not. */
#define PS_LONGOPTS \
    {"rooms", required_argument, 0, 'r'}, {"members", required_argument, 0, 'm'}, \
    {"rate", required_argument, 0, 'R'}, {"size", required_argument, 0, 's'}, \
    {"drain", required_argument, 0, 'D'}
int  ps_opt(int ch, const char *arg, struct ps_cfg *cfg);

/* Runs setup, the measured phase and the drain. Returns 0, -1 on setup failure. */
int  ps_run(const struct ps_cfg *cfg, struct ps_result *res);
void ps_report(const struct ps_cfg *cfg, const struct ps_result *res);
/* ps_run, then the results "scenario" = name and ps_report's. Returns 0, -1 on setup
 * failure (nothing reported). The caller adds its own results, then ps_result_free. */
int  ps_run_report(const char *name, const struct ps_cfg *cfg, struct ps_result *res);
void ps_result_free(struct ps_result *res);   /* the histograms */

#endif
