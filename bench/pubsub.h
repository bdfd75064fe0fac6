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
    double user, sys;   /* server */
    double self_cpu;    /* this process, user + system */
    long rss_kib;
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

/* Runs setup, the measured phase and the drain. Returns 0, -1 on setup failure. */
int  ps_run(const struct ps_cfg *cfg, struct ps_result *res);
void ps_report(const struct ps_cfg *cfg, const struct ps_result *res);

#endif
