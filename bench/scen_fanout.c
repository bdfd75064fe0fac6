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

static int fanout_opt(int ch, const char *arg, void *ctx)
{
    struct ps_cfg *cfg = ctx;
    switch (ch) {
    case 'P': cfg->publishers = (uint32_t)atoi(arg); return 0;
    case 'w': cfg->window = (uint32_t)atoi(arg); return 0;
    case 'S': cfg->persist = true; return 0;
    }
    return ps_opt(ch, arg, cfg);
}

int scen_fanout(int argc, char **argv)
{
    struct ps_cfg cfg = {
        .rooms = 1, .members = 5000, .publishers = 1, .rate = 10, .window = 32, .size = 100,
        .persist = false, .acks = false, .drain = 5, .room_prefix = "fan-",
    };
    static const struct option lo[] = {
        PS_LONGOPTS, {"publishers", required_argument, 0, 'P'},
        {"window", required_argument, 0, 'w'}, {"persist", no_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'}, COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    int rc = opts_parse(argc, argv, lo, fanout_opt, &cfg, help);
    if (rc != 0)
        return rc;
    cfg.duration = g_opts.duration;
    if (!cfg.rooms || !cfg.members || !cfg.publishers ||
        cfg.publishers > cfg.rooms * cfg.members || cfg.size > 60000 || cfg.window == 0) {
        fprintf(stderr, "parley-bench fanout: bad sizes (see --help)\n");
        return 2;
    }
    struct ps_result res = {0};
    int k = ps_run_report("fanout", &cfg, &res);
    if (k != 0)
        return k == -2 ? 2 : 1;
    ps_result_free(&res);
    return res.delivered == res.expected ? 0 : 1;
}
