/* parley-bench main: common flags, subcommand dispatch, result reporting.
 *
 * Results are collected as an ordered list of (key, value, unit) and printed once at the
 * end, either as a two-column table or (--json) as one flat JSON object so scripts such as
 * bench/compare/run.sh can pick fields with jq. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct opts g_opts = {
    .host = "127.0.0.1", .port = 8080, .path = "/ws", .proto = PROTO_PARLEY,
    .sources = 4, .ramp = 5000, .max_pending = 256, .duration = 10, .procs = 1,
};

const char *COMMON_HELP =
    "Common options:\n"
    "  --url ws://HOST:PORT/PATH   target (default ws://127.0.0.1:8080/ws; for socketio the\n"
    "                              path is replaced by /socket.io/?EIO=4&transport=websocket).\n"
    "                              Repeat it, or give a comma list, for several targets (nodes):\n"
    "                              connection i goes to target i %% N (every scenario but api)\n"
    "  --protocol parley|socketio  wire protocol (default parley)\n"
    "  --server-pid PID            sample the server's RSS and CPU from /proc/PID; repeat it or\n"
    "                              give a comma list for several nodes (CPU and RSS are summed,\n"
    "                              and reported per pid too)\n"
    "  --procs N                   fanout, chat: N worker processes, each with every Nth\n"
    "                              connection (the descriptor limit is per process); counts and\n"
    "                              latency histograms are merged (default 1)\n"
    "  --sources N                 loopback source addresses 127.0.0.2.. to spread ports (default 4;\n"
    "                              0 = let the kernel choose, only for non-loopback targets)\n"
    "  --ramp N                    new connections per second (default 5000)\n"
    "  --max-pending N             connects/upgrades in flight at most (default 256)\n"
    "  --duration S                measured phase in seconds (default 10)\n"
    "  --series FILE.csv           write one row per second: t_s, ready, deliveries/s, p50/p99/max\n"
    "                              latency (ms) of that second's deliveries, errors, closed\n"
    "  --json                      print results as one JSON object instead of a table\n"
    "  --quiet                     no progress line on stderr\n";

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------- buffers ---------------- */

void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    /* Slide live bytes to the front before growing: input buffers are consumed from the
     * front and would otherwise creep forever. */
    if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap)
            return;
    }
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) {
        fprintf(stderr, "parley-bench: out of memory\n");
        abort();
    }
    b->p = np;
    b->cap = ncap;
}

void buf_append(struct buf *b, const void *d, size_t n)
{
    if (!n)
        return; /* b->p may still be NULL: memcpy must not see it */
    buf_reserve(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------- results ---------------- */

#define RES_MAX 160
static struct res {
    char key[48];
    char unit[16];
    char str[128];
    double v;
    bool is_str;
} g_res[RES_MAX];
static int g_nres;

void res_num(const char *key, double v, const char *unit)
{
    if (g_nres == RES_MAX)
        return;
    struct res *r = &g_res[g_nres++];
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->unit, sizeof r->unit, "%s", unit ? unit : "");
    r->v = v;
    r->is_str = false;
}

void res_str(const char *key, const char *v)
{
    if (g_nres == RES_MAX)
        return;
    struct res *r = &g_res[g_nres++];
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->str, sizeof r->str, "%s", v);
    r->unit[0] = 0;
    r->is_str = true;
}

void res_hist(const char *prefix, const struct hist *h)
{
    static const struct { const char *name; double pct; } pcts[] = {
        {"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9},
    };
    char key[48];
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        snprintf(key, sizeof key, "%s_%s_ms", prefix, pcts[i].name);
        res_num(key, hist_count(h) ? hist_pct(h, pcts[i].pct) / 1e6 : -1, "ms");
    }
    snprintf(key, sizeof key, "%s_max_ms", prefix);
    res_num(key, hist_count(h) ? hist_max(h) / 1e6 : -1, "ms");
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void res_print(void)
{
    if (g_opts.json) {
        printf("{");
        for (int i = 0; i < g_nres; i++) {
            struct res *r = &g_res[i];
            printf("%s\"%s\":", i ? "," : "", r->key);
            if (r->is_str)
                print_json_string(r->str);
            else if (r->v == (double)(int64_t)r->v && r->v < 9e15 && r->v > -9e15)
                printf("%lld", (long long)r->v);
            else
                printf("%.6g", r->v);
        }
        printf("}\n");
        return;
    }
    printf("%-34s %16s  %s\n", "metric", "value", "unit");
    printf("%-34s %16s  %s\n", "----------------------------------", "----------------", "----");
    for (int i = 0; i < g_nres; i++) {
        struct res *r = &g_res[i];
        if (r->is_str)
            printf("%-34s %16s\n", r->key, r->str);
        else if (r->v == (double)(int64_t)r->v && r->v < 9e15 && r->v > -9e15)
            printf("%-34s %16lld  %s\n", r->key, (long long)r->v, r->unit);
        else
            printf("%-34s %16.3f  %s\n", r->key, r->v, r->unit);
    }
}

/* ---------------- common flags ---------------- */

/* Parses one ws://HOST:PORT/PATH into t. */
static int parse_one_url(const char *url, size_t n, struct target *t)
{
    char u[512];
    if (n >= sizeof u) {
        fprintf(stderr, "parley-bench: --url too long\n");
        return -1;
    }
    memcpy(u, url, n);
    u[n] = 0;
    const char *p = u;
    if (strncmp(p, "ws://", 5) != 0) {
        fprintf(stderr, "parley-bench: --url must start with ws:// (no TLS)\n");
        return -1;
    }
    p += 5;
    const char *colon = strchr(p, ':');
    const char *slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    const char *hend = (colon && colon < slash) ? colon : slash;
    if ((size_t)(hend - p) >= sizeof t->host || hend == p) {
        fprintf(stderr, "parley-bench: bad host in --url\n");
        return -1;
    }
    memcpy(t->host, p, (size_t)(hend - p));
    t->host[hend - p] = 0;
    t->port = (colon && colon < slash) ? atoi(colon + 1) : 80;
    snprintf(t->path, sizeof t->path, "%s", *slash ? slash : "/");
    if (t->port <= 0 || t->port > 65535) {
        fprintf(stderr, "parley-bench: bad port in --url\n");
        return -1;
    }
    return 0;
}

/* --url, repeated or a comma list: appends to g_opts.targets; the first also fills
 * g_opts.host/port/path, which the single-target scenarios use. */
static int parse_url(const char *arg)
{
    for (const char *p = arg;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (g_opts.ntargets == BENCH_MAX_TARGETS) {
            fprintf(stderr, "parley-bench: at most %d --url\n", BENCH_MAX_TARGETS);
            return -1;
        }
        struct target *t = &g_opts.targets[g_opts.ntargets];
        if (parse_one_url(p, n, t) != 0)
            return -1;
        if (g_opts.ntargets++ == 0) {
            memcpy(g_opts.host, t->host, sizeof g_opts.host);
            g_opts.port = t->port;
            memcpy(g_opts.path, t->path, sizeof g_opts.path);
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}

/* --server-pid, repeated or a comma list. */
static int parse_pids(const char *arg)
{
    for (const char *p = arg;;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || pid <= 0 || pid > 0x7fffffff || (*end && *end != ',')) {
            fprintf(stderr, "parley-bench: --server-pid takes PID[,PID...]\n");
            return -1;
        }
        if (g_opts.nserver_pids == BENCH_MAX_PIDS) {
            fprintf(stderr, "parley-bench: at most %d server pids\n", BENCH_MAX_PIDS);
            return -1;
        }
        bool dup = false; /* the same pid twice would count its CPU twice */
        for (int i = 0; i < g_opts.nserver_pids; i++)
            dup |= g_opts.server_pids[i] == (int)pid;
        if (!dup)
            g_opts.server_pids[g_opts.nserver_pids++] = (int)pid;
        g_opts.server_pid = g_opts.server_pids[0];
        if (!*end)
            return 0;
        p = end + 1;
    }
}

int opts_common(int c, const char *arg)
{
    switch (c) {
    case 1001: return parse_url(arg) ? -1 : 1;
    case 1002:
        if (!strcmp(arg, "parley")) g_opts.proto = PROTO_PARLEY;
        else if (!strcmp(arg, "socketio")) g_opts.proto = PROTO_SOCKETIO;
        else { fprintf(stderr, "parley-bench: --protocol parley|socketio\n"); return -1; }
        return 1;
    case 1003: g_opts.json = 1; return 1;
    case 1004: return parse_pids(arg) ? -1 : 1;
    case 1005: g_opts.sources = atoi(arg); return 1;
    case 1006: g_opts.ramp = atof(arg); return g_opts.ramp > 0 ? 1 : -1;
    case 1007: g_opts.duration = atof(arg); return g_opts.duration > 0 ? 1 : -1;
    case 1008: g_opts.quiet = 1; return 1;
    case 1009: g_opts.max_pending = atoi(arg); return g_opts.max_pending > 0 ? 1 : -1;
    case 1010: return series_open(arg) ? -1 : 1;
    case 1011:
        g_opts.procs = atoi(arg);
        if (g_opts.procs < 1 || g_opts.procs > 64) {
            fprintf(stderr, "parley-bench: --procs 1..64\n");
            return -1;
        }
        return 1;
    }
    return 0;
}

int opts_parse(int argc, char **argv, const struct option *lo, opts_own_fn own, void *ctx,
               void (*help)(void))
{
    int ch;
    optind = 1; /* getopt's state is global: start over for this argv */
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int k = opts_common(ch, optarg);
        if (k < 0)
            return 2;
        if (k > 0)
            continue;
        if (ch == 'h') {
            help();
            return 3;
        }
        if (own(ch, optarg, ctx) != 0) {
            help();
            return 2;
        }
    }
    return 0;
}

int opts_no_procs(const char *scenario)
{
    if (g_opts.procs <= 1)
        return 0;
    fprintf(stderr, "parley-bench %s: --procs is for fanout and chat\n", scenario);
    return 2;
}

/* Raises RLIMIT_NOFILE toward need (+ slack) within the hard limit. */
void raise_nofile(uint32_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)need + 64;
    if (want > rl.rlim_max)
        want = rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)need + 16)
        fprintf(stderr, "parley-bench: warning: RLIMIT_NOFILE %llu is too low for %u connections\n",
                (unsigned long long)rl.rlim_cur, need);
}

void fill_payload(char *dst, size_t n)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < n; i++)
        dst[i] = alpha[i % (sizeof alpha - 1)];
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: parley-bench SCENARIO [options]\n"
        "Scenarios:\n"
        "  connect   open N connections, join rooms, hold; connect rate and server RSS/conn\n"
        "  fanout    R rooms x M members, P publishers at a total rate; delivery latency, CPU\n"
        "  chat      many small rooms, every member publishes (persisted); latency, seq count\n"
        "  history   concurrent history paging (parley protocol only); pages/s and latency\n"        "  reconnect reconnect storm: N clients re-join with since after missing M messages each\n"

        "  floor     kernel floor: one process writes 150 bytes to 5,000 loopback sockets\n"
        "  api       HTTP API publish over keep-alive connections; publishes/s, latency\n"
        "Run 'parley-bench SCENARIO --help' for the scenario's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sc = argv[1];
    int rc;
    if (!strcmp(sc, "-h") || !strcmp(sc, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sc, "connect")) rc = scen_connect(argc - 1, argv + 1);
    else if (!strcmp(sc, "fanout")) rc = scen_fanout(argc - 1, argv + 1);
    else if (!strcmp(sc, "chat")) rc = scen_chat(argc - 1, argv + 1);
    else if (!strcmp(sc, "history")) rc = scen_history(argc - 1, argv + 1);
    else if (!strcmp(sc, "floor")) rc = scen_floor(argc - 1, argv + 1);
    else if (!strcmp(sc, "reconnect")) rc = scen_reconnect(argc - 1, argv + 1);
    else if (!strcmp(sc, "api")) rc = scen_api(argc - 1, argv + 1);
    else {
        usage(stderr);
        return 2;
    }
    /* rc: 0 ok, 1 ran but targets missed (still report), 2 usage, 3 help printed */
    if (rc == 3)
        return 0;
    if (rc == 2)
        return 2;
    series_close();
    res_print();
    fflush(stdout);
    return rc;
}
