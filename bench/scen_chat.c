/* scen_chat: many small rooms where every member publishes now and then, with the
 * default (persisted) publish and an id, so each reply carries the message's seq.
 * Reports delivery latency, reply latency, throughput and how many messages were stored
 * (sum over rooms of the highest seq seen: exact on a fresh data dir). */
#include "pubsub.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void help(void)
{
    printf("usage: parley-bench chat [options]\n"
           "  --rooms R      rooms (default 2000)\n"
           "  --members M    connections per room, all publish (default 5)\n"
           "  --rate N       total publishes per second (default 2000)\n"
           "  --size B       payload filler bytes (default 40)\n"
           "  --volatile     parley: publish with \"persist\":false\n"
           "  --drain S      seconds to wait for stragglers (default 5)\n"
           "%s", COMMON_HELP);
}

static int chat_opt(int ch, const char *arg, void *ctx)
{
    struct ps_cfg *cfg = ctx;
    if (ch == 'V') {
        cfg->persist = false;
        return 0;
    }
    return ps_opt(ch, arg, cfg);
}

int scen_chat(int argc, char **argv)
{
    struct ps_cfg cfg = {
        .rooms = 2000, .members = 5, .publishers = 0, .rate = 2000, .window = 32, .size = 40,
        .persist = true, .acks = true, .drain = 5, .room_prefix = "chat-",
    };
    static const struct option lo[] = {
        PS_LONGOPTS, {"volatile", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'}, COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    int rc = opts_parse(argc, argv, lo, chat_opt, &cfg, help);
    if (rc != 0)
        return rc;
    cfg.duration = g_opts.duration;
    if (!cfg.rooms || !cfg.members || cfg.rate <= 0 || cfg.size > 60000) {
        fprintf(stderr, "parley-bench chat: bad sizes (see --help)\n");
        return 2;
    }
    struct ps_result res = {0};
    int k = ps_run_report("chat", &cfg, &res);
    if (k != 0)
        return k == -2 ? 2 : 1;
    res_num("publish_ok", (double)res.pub_ok, "");
    res_num("publish_err", (double)res.pub_err, "");
    res_num("replies_with_seq", (double)res.pub_seq, "");
    res_num("persisted_seq_sum", (double)res.seq_sum, "msg");
    ps_result_free(&res);
    return res.delivered == res.expected && res.pub_err == 0 ? 0 : 1;
}
