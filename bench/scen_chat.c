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

int scen_chat(int argc, char **argv)
{
    struct ps_cfg cfg = {
        .rooms = 2000, .members = 5, .publishers = 0, .rate = 2000, .window = 32, .size = 40,
        .persist = true, .acks = true, .drain = 5, .room_prefix = "chat-",
    };
    static const struct option lo[] = {
        {"rooms", required_argument, 0, 'r'}, {"members", required_argument, 0, 'm'},
        {"rate", required_argument, 0, 'R'}, {"size", required_argument, 0, 's'},
        {"volatile", no_argument, 0, 'V'}, {"drain", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'}, COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int k = opts_common(ch, optarg);
        if (k < 0)
            return 2;
        if (k > 0)
            continue;
        switch (ch) {
        case 'r': cfg.rooms = (uint32_t)atoi(optarg); break;
        case 'm': cfg.members = (uint32_t)atoi(optarg); break;
        case 'R': cfg.rate = atof(optarg); break;
        case 's': cfg.size = (size_t)atol(optarg); break;
        case 'V': cfg.persist = false; break;
        case 'D': cfg.drain = atof(optarg); break;
        case 'h': help(); return 3;
        default: help(); return 2;
        }
    }
    cfg.duration = g_opts.duration;
    if (!cfg.rooms || !cfg.members || cfg.rate <= 0 || cfg.size > 60000) {
        fprintf(stderr, "parley-bench chat: bad sizes (see --help)\n");
        return 2;
    }
    struct ps_result res = {0};
    if (ps_run(&cfg, &res) != 0)
        return 1;
    res_str("scenario", "chat");
    ps_report(&cfg, &res);
    res_num("publish_ok", (double)res.pub_ok, "");
    res_num("publish_err", (double)res.pub_err, "");
    res_num("replies_with_seq", (double)res.pub_seq, "");
    res_num("persisted_seq_sum", (double)res.seq_sum, "msg");
    hist_free(res.lat);
    hist_free(res.ack);
    return res.delivered == res.expected && res.pub_err == 0 ? 0 : 1;
}
