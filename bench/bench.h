/* parley-bench: shared declarations.
 *
 * Map of the tool (one module per file, prefix = file):
 *   main.c      flags common to all scenarios, dispatch, result table / --json, progress line
 *   loop.c      loop_*  one epoll loop, client connections, source addresses, write batching
 *   wsc.c       wsc_*   WebSocket client: upgrade request, frame parse, masked frame encode
 *   sio.c       sio_*   Engine.IO v4 / Socket.IO v5 packets carried in WebSocket text frames
 *   wire.c      wire_*  protocol-neutral commands (join, publish, history) for parley|socketio
 *   jscan.c     js_*    tiny JSON scanner: find a top-level key, read ints, no allocation
 *   hist.c      hist_*  log-linear latency histogram (ns), percentiles
 *   series.c    series_* per-second CSV time series (--series)
 *   procstat.c  ps_*    server RSS (/proc/PID/status) and CPU (/proc/PID/stat)
 *   pubsub.c    ps_*    engine shared by fanout and chat (rooms x members, rate, latency)
 *   scen_*.c    one scenario per file: connect, fanout, chat, history, floor, reconnect,
 *               api (HTTP API; its own epoll loop)
 *   test_bench.c  unit checks of jscan and hist (meson test suite `unit`)
 */
#ifndef PARLEY_BENCH_H
#define PARLEY_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <netinet/in.h>

/* ---- time ---- */
uint64_t now_ns(void); /* CLOCK_MONOTONIC */

/* ---- growable byte buffer ---- */
struct buf {
    char *p;
    size_t len, cap, off; /* bytes [off, len) are live */
};
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *d, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

/* ---- options shared by all scenarios ---- */
enum proto { PROTO_PARLEY, PROTO_SOCKETIO };
#define BENCH_MAX_TARGETS 16
#define BENCH_MAX_PIDS 16
struct target {            /* one --url */
    char host[64];
    int port;
    char path[256];
};
struct opts {
    char host[64];         /* the first --url (scenarios with one target use these) */
    int port;
    char path[256];        /* request path, e.g. /ws */
    struct target targets[BENCH_MAX_TARGETS]; /* every --url; connections round-robin */
    int ntargets;          /* 0 until a --url is given: then targets[0] is the default */
    enum proto proto;
    int json;
    int server_pid;        /* 0 = none; the first of server_pids */
    int server_pids[BENCH_MAX_PIDS];
    int nserver_pids;
    int procs;             /* --procs: worker processes (1 = this one) */
    int proc_index;        /* in a worker: its index 0..procs-1 (global conn = idx*procs+index) */
    int sources;           /* loopback source addresses 127.0.0.2 .. */
    double ramp;           /* new connections per second */
    int max_pending;       /* connects in flight at most */
    double duration;       /* seconds of measured phase */
    int quiet;             /* no progress line */
};
extern struct opts g_opts;

/* ---- connections and the loop (loop.c) ---- */
enum cstate { CS_IDLE, CS_CONNECTING, CS_UPGRADING, CS_OPEN, CS_READY, CS_CLOSED };

struct conn {
    int fd;
    enum cstate state;
    uint32_t idx;          /* index in the loop's table */
    struct buf in;         /* raw bytes from the socket */
    struct buf out;        /* frames waiting for write() */
    struct buf frag;       /* reassembly of a fragmented message */
    int frag_op;
    bool dirty;            /* queued on the flush list */
    bool want_out;         /* EPOLLOUT armed */
    uint32_t user;         /* scenario-defined */
    uint32_t pending_id;   /* scenario-defined: last command id in flight */
    uint64_t t_sent;       /* scenario-defined: send time of the command in flight */
};

struct minfo;
/* Scenario callbacks. on_ready: protocol greeting done (welcome / Socket.IO connect).
 * on_msg: one inbound message, already parsed by wire.c (parley) or sio.c (socketio). */
struct scen_ops {
    void (*on_ready)(struct conn *c);
    void (*on_msg)(struct conn *c, const struct minfo *mi);
    void (*on_close)(struct conn *c, const char *why);
    void (*tick)(uint64_t now);          /* called every loop turn (>= every 1 ms) */
    void (*progress)(char *line, size_t n); /* one status line, once a second */
};

int  loop_init(uint32_t nconns, const struct scen_ops *ops);
void loop_free(void);
struct conn *loop_conn(uint32_t i);
uint32_t loop_nconns(void);
/* Starts up to the ramp/pending budget of not-yet-started connections; returns how many
 * connections have been started in total. */
uint32_t loop_ramp(uint64_t now);
/* Runs the loop until done() returns true or deadline (ns, CLOCK_MONOTONIC) passes.
 * Returns 0 if done() became true, -1 on timeout. */
int  loop_run(bool (*done)(void), uint64_t deadline);
/* Connections first.. are all closed: the next loop_ramp() calls start them again, in
 * order, at the ramp rate from now (the reconnect scenario). */
void loop_restart_from(uint32_t first);
void loop_close(struct conn *c, const char *why);
void loop_mark_dirty(struct conn *c);  /* c->out grew: write it at the end of this turn */
void loop_conn_ready(struct conn *c);  /* protocol greeting done: counts it, calls on_ready */
extern uint64_t g_loop_start;
/* Set before forking --procs workers: every worker's g_loop_start, so times carried in
 * payloads mean the same in every process (CLOCK_MONOTONIC is system-wide). */
extern uint64_t g_epoch;
/* The target of local connection idx: round-robin over --url by global index. */
const struct target *loop_target(uint32_t idx);
extern uint32_t g_ready, g_closed, g_started, g_failed;

/* ---- WebSocket client (wsc.c) ---- */
void wsc_request(struct conn *c);    /* appends the HTTP upgrade to c->out */
/* Parses bytes p[0..n) received on c. Returns how many were consumed (the caller keeps the
 * rest for the next read), or -1 when the connection was closed. */
long wsc_input(struct conn *c, const char *p, size_t n);
/* Appends one masked frame (opcode, payload) to c->out. */
void wsc_frame(struct conn *c, int opcode, const void *p, size_t n);

/* ---- Engine.IO / Socket.IO (sio.c) ---- */
/* Handles one WebSocket text message for a socketio connection. */
void sio_message(struct conn *c, const char *p, size_t n);
/* Appends a Socket.IO event: 42[<id>]["event",<arg_json>]. id 0 = no ack. */
void sio_emit(struct conn *c, const char *event, const char *arg, size_t an, uint32_t id);

/* ---- protocol-neutral commands (wire.c) ---- */
void wire_text(struct conn *c, const char *p, size_t n); /* dispatch from wsc */
/* id 0 = no reply wanted. */
void wire_join(struct conn *c, const char *room, uint32_t id);
/* data_json is inserted as-is. persist: parley only. */
void wire_publish(struct conn *c, const char *room, const char *data_json, size_t dn,
                  uint32_t id, bool persist);
void wire_history(struct conn *c, const char *room, int64_t before, int limit, uint32_t id);
/* join with since (parley only). */
void wire_join_since(struct conn *c, const char *room, int64_t since, uint32_t id);

/* Parsed view of an inbound message, shared by both protocols. */
enum mkind { MK_OTHER, MK_WELCOME, MK_MESSAGE, MK_REPLY, MK_ERROR };
struct minfo {
    enum mkind kind;
    uint32_t id;           /* reply id (0 if none) */
    bool ok;               /* reply ok */
    const char *data; size_t data_n;   /* message data / reply data */
    const char *room; size_t room_n;   /* message room */
    int64_t seq;           /* message seq, -1 if none */
};
/* Delivers a parsed message to the scenario (and handles the parley welcome). */
void wire_deliver(struct conn *c, const struct minfo *mi);
extern const struct scen_ops *g_ops;

/* ---- JSON scan (jscan.c) ---- */
/* Finds key in the top-level object p[0..n) and returns its raw value span. */
bool js_find(const char *p, size_t n, const char *key, const char **v, size_t *vn);
bool js_int(const char *p, size_t n, const char *key, int64_t *out);
/* Length of the JSON value starting at p (string-aware, nesting-aware), 0 if malformed. */
size_t js_value_len(const char *p, size_t n);

/* ---- histogram (hist.c) ---- */
struct hist;
struct hist *hist_new(void);
void hist_free(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
uint64_t hist_count(const struct hist *h);
uint64_t hist_pct(const struct hist *h, double pct);   /* ns */
uint64_t hist_max(const struct hist *h);
double hist_mean(const struct hist *h);
/* A histogram as bytes (to send from a --procs worker), and merging one into another:
 * bucket counts add up, so percentiles of the merge are those of all samples together. */
size_t hist_blob_size(void);
void hist_to_blob(const struct hist *h, void *blob);
void hist_merge_blob(struct hist *dst, const void *blob);

/* ---- per-second time series, --series FILE.csv (series.c) ---- */
int  series_open(const char *path);     /* 0, or -1 with a message */
bool series_on(void);
void series_delivery(uint64_t latency_ns); /* one delivery; latency 0 = unknown */
void series_error(void);
void series_tick(uint64_t now);         /* every loop turn: writes a row per second */
void series_close(void);                /* writes the last partial second, closes */

/* ---- server process stats (procstat.c) ---- */
long ps_rss_kib(int pid);                        /* VmRSS, -1 on error */
int  ps_cpu(int pid, double *user_s, double *sys_s); /* 0 or -1 */
/* Sums over every --server-pid (-1 / -1 when none could be read). */
long ps_rss_all_kib(void);
int  ps_cpu_all(double *user_s, double *sys_s);

/* ---- results (main.c) ---- */
void res_num(const char *key, double v, const char *unit);
void res_str(const char *key, const char *v);
void res_hist(const char *prefix, const struct hist *h); /* p50/p90/p99/p99.9/max in ms */

/* ---- scenarios ---- */
int scen_connect(int argc, char **argv);
int scen_fanout(int argc, char **argv);
int scen_chat(int argc, char **argv);
int scen_history(int argc, char **argv);
int scen_floor(int argc, char **argv);
int scen_reconnect(int argc, char **argv);
int scen_api(int argc, char **argv);

/* Parses a common flag (returns 1 if consumed with its argument, 0 if not common, -1 error).
 * opts_parse calls it for the scenarios whose long options include COMMON_LONGOPTS. */
int  opts_common(int c, const char *arg);
struct option;
/* A scenario's own flag ch with its argument (NULL if none) into ctx: 0 if taken, -1 if it
 * is not the scenario's flag. */
typedef int (*opts_own_fn)(int ch, const char *arg, void *ctx);
/* The getopt loop of the load scenarios (floor has its own: no common flags). lo holds the
 * scenario's flags, {"help", .., 'h'} and COMMON_LONGOPTS. Common flags go to opts_common,
 * the others to own(ch, optarg, ctx); --help or a flag own refuses prints help(). Returns 0
 * to run, 2 on a usage error, 3 when help was printed (a scenario's return codes, see main()). */
int  opts_parse(int argc, char **argv, const struct option *lo, opts_own_fn own, void *ctx,
                void (*help)(void));
#define COMMON_LONGOPTS \
    {"url", required_argument, 0, 1001}, {"protocol", required_argument, 0, 1002}, \
    {"json", no_argument, 0, 1003}, {"server-pid", required_argument, 0, 1004}, \
    {"sources", required_argument, 0, 1005}, {"ramp", required_argument, 0, 1006}, \
    {"duration", required_argument, 0, 1007}, {"quiet", no_argument, 0, 1008}, \
    {"max-pending", required_argument, 0, 1009}, {"series", required_argument, 0, 1010}, \
    {"procs", required_argument, 0, 1011}
extern const char *COMMON_HELP;
/* 0, or 2 after a message when --procs > 1 was given to a scenario that runs in one process. */
int  opts_no_procs(const char *scenario);
void raise_nofile(uint32_t need);
void fill_payload(char *dst, size_t n); /* printable filler */

#endif
