/* scen_fanout: R rooms x M members, P publishers, total rate msg/s, volatile by default.
 * Measures delivered/expected, deliveries/s, publish -> deliver latency and, with
 * --server-pid, the server's CPU per delivery. --rate 0 --window W finds saturation. */
#include "pubsub.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void help(void)
{
    printf("usage: parley-bench fanout [options]\n"
           "  --rooms R        rooms (default 1)\n"
           "  --members M      connections per room, publishers included (default 5000)\n"
           "  --publishers P   publishing connections, the first P (default 1; <= R*M)\n"
           "  --rate N         total publishes per second (default 10; 0 = saturate, see --window)\n"
           "  --window W       with --rate 0: messages in flight at most (default 32)\n"
           "  --size B         payload filler bytes (default 100)\n"
           "  --persist        parley: store messages (default: \"persist\":false, volatile)\n"
           "  --drain S        seconds to wait for stragglers after publishing (default 5)\n"
           "%s", COMMON_HELP);
}

int scen_fanout(int argc, char **argv)
{
    struct ps_cfg cfg = {
        .rooms = 1, .members = 5000, .publishers = 1, .rate = 10, .window = 32, .size = 100,
        .persist = false, .acks = false, .drain = 5, .room_prefix = "fan-",
    };
    static const struct option lo[] = {
        {"rooms", required_argument, 0, 'r'}, {"members", required_argument, 0, 'm'},
        {"publishers", required_argument, 0, 'P'}, {"rate", required_argument, 0, 'R'},
        {"window", required_argument, 0, 'w'}, {"size", required_argument, 0, 's'},
        {"persist", no_argument, 0, 'S'}, {"drain", required_argument, 0, 'D'},
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
        case 'P': cfg.publishers = (uint32_t)atoi(optarg); break;
        case 'R': cfg.rate = atof(optarg); break;
        case 'w': cfg.window = (uint32_t)atoi(optarg); break;
        case 's': cfg.size = (size_t)atol(optarg); break;
        case 'S': cfg.persist = true; break;
        case 'D': cfg.drain = atof(optarg); break;
        case 'h': help(); return 3;
        default: help(); return 2;
        }
    }
    cfg.duration = g_opts.duration;
    if (!cfg.rooms || !cfg.members || !cfg.publishers ||
        cfg.publishers > cfg.rooms * cfg.members || cfg.size > 60000 || cfg.window == 0) {
        fprintf(stderr, "parley-bench fanout: bad sizes (see --help)\n");
        return 2;
    }
    struct ps_result res = {0};
    if (ps_run(&cfg, &res) != 0)
        return 1;
    res_str("scenario", "fanout");
    ps_report(&cfg, &res);
    hist_free(res.lat);
    hist_free(res.ack);
    return res.delivered == res.expected ? 0 : 1;
}
