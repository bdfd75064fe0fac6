/* loop: one epoll loop driving every client connection of a scenario.
 *
 * Why it looks like this:
 * - Thousands of sockets on loopback need more than the ~28k ephemeral ports of one
 *   (src, dst) address pair, so connection i binds to 127.0.0.(2 + i % sources) with
 *   IP_BIND_ADDRESS_NO_PORT (the port is then picked at connect() against the full 4-tuple).
 * - Reads go into one shared 256 KiB buffer; only an incomplete tail frame is copied into
 *   the connection's own buffer. 20,000 idle clients therefore cost almost no memory here.
 * - Writes are batched: scenarios append frames to c->out and mark the connection dirty;
 *   one write() per dirty connection happens at the end of the loop turn.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define RBUF_SIZE (256 * 1024)
#define MAX_EVENTS 1024

const struct scen_ops *g_ops;
uint64_t g_loop_start;
uint64_t g_epoch;
uint32_t g_ready, g_closed, g_started, g_failed;

static struct conn *g_conns;
static uint32_t g_n;
static int g_ep = -1;
static uint32_t *g_dirty;
static uint32_t g_ndirty;
static uint32_t g_pending; /* started, not yet ready or closed */
static uint64_t g_ramp_t0;
static uint32_t g_ramp_base; /* connections before it are not part of the current ramp */
static struct sockaddr_in g_dst[BENCH_MAX_TARGETS];
static bool g_loopback[BENCH_MAX_TARGETS];
static int g_ndst;
static char *g_rbuf;

int loop_init(uint32_t nconns, const struct scen_ops *ops)
{
    g_ops = ops;
    g_n = nconns;
    g_conns = calloc(nconns ? nconns : 1, sizeof *g_conns);
    g_dirty = calloc(nconns ? nconns : 1, sizeof *g_dirty);
    g_rbuf = malloc(RBUF_SIZE);
    if (!g_conns || !g_dirty || !g_rbuf)
        return -1;
    for (uint32_t i = 0; i < nconns; i++) {
        g_conns[i].fd = -1;
        g_conns[i].idx = i;
    }
    raise_nofile(nconns);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        return -1;

    if (g_opts.ntargets == 0) { /* no --url: the defaults */
        struct target *t = &g_opts.targets[0];
        memcpy(t->host, g_opts.host, sizeof t->host);
        t->port = g_opts.port;
        memcpy(t->path, g_opts.path, sizeof t->path);
        g_opts.ntargets = 1;
    }
    g_ndst = g_opts.ntargets;
    for (int k = 0; k < g_ndst; k++) {
        const struct target *t = &g_opts.targets[k];
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        if (getaddrinfo(t->host, NULL, &hints, &ai) != 0 || !ai) {
            fprintf(stderr, "parley-bench: cannot resolve %s (IPv4 only)\n", t->host);
            return -1;
        }
        memcpy(&g_dst[k], ai->ai_addr, sizeof g_dst[k]);
        g_dst[k].sin_port = htons((uint16_t)t->port);
        freeaddrinfo(ai);
        g_loopback[k] = (ntohl(g_dst[k].sin_addr.s_addr) >> 24) == 127;
    }
    g_loop_start = g_epoch ? g_epoch : now_ns();
    return 0;
}

void loop_free(void)
{
    for (uint32_t i = 0; i < g_n; i++) {
        struct conn *c = &g_conns[i];
        if (c->fd >= 0)
            close(c->fd);
        buf_free(&c->in);
        buf_free(&c->out);
        buf_free(&c->frag);
    }
    free(g_conns);
    free(g_dirty);
    free(g_rbuf);
    g_conns = NULL;
    g_dirty = NULL;
    g_rbuf = NULL;
    if (g_ep >= 0)
        close(g_ep);
    g_ep = -1;
}

struct conn *loop_conn(uint32_t i) { return &g_conns[i]; }

static int target_index(uint32_t idx)
{
    uint64_t global = (uint64_t)idx * (uint64_t)g_opts.procs + (uint64_t)g_opts.proc_index;
    return g_ndst > 1 ? (int)(global % (uint64_t)g_ndst) : 0;
}

const struct target *loop_target(uint32_t idx) { return &g_opts.targets[target_index(idx)]; }
uint32_t loop_nconns(void) { return g_n; }

void loop_mark_dirty(struct conn *c)
{
    if (!c->dirty && c->fd >= 0) {
        c->dirty = true;
        g_dirty[g_ndirty++] = c->idx;
    }
}

void loop_close(struct conn *c, const char *why)
{
    if (c->state == CS_CLOSED || c->fd < 0)
        return;
    bool was_pending = c->state != CS_READY;
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = CS_CLOSED;
    g_closed++;
    if (was_pending) {
        g_pending--;
        g_failed++;
    }
    c->in.off = c->in.len = 0;
    c->out.off = c->out.len = 0;
    if (g_ops->on_close)
        g_ops->on_close(c, why);
}

/* Called by wire/sio when the protocol greeting completed. */
void loop_conn_ready(struct conn *c)
{
    if (c->state == CS_READY)
        return;
    c->state = CS_READY;
    g_pending--;
    g_ready++;
    if (g_ops->on_ready)
        g_ops->on_ready(c);
}

static int conn_start(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int k = target_index(c->idx);
    if (g_loopback[k] && g_opts.sources > 0) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000002u + (c->idx % (uint32_t)g_opts.sources));
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&g_dst[k], sizeof g_dst[k]) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = c->idx};
    c->want_out = true;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

void loop_restart_from(uint32_t first)
{
    g_started = first;
    g_ramp_base = first;
    g_ramp_t0 = 0;
}

uint32_t loop_ramp(uint64_t now)
{
    if (!g_ramp_t0)
        g_ramp_t0 = now;
    double target = g_opts.ramp * (double)(now - g_ramp_t0) / 1e9 + 1 + g_ramp_base;
    while (g_started < g_n && g_started < target && g_pending < (uint32_t)g_opts.max_pending) {
        struct conn *c = &g_conns[g_started++];
        g_pending++;
        if (conn_start(c) != 0) {
            c->state = CS_CLOSED;
            g_pending--;
            g_failed++;
            g_closed++;
            if (g_ops->on_close)
                g_ops->on_close(c, "connect failed");
        }
    }
    return g_started;
}

static void set_out(struct conn *c, bool on)
{
    if (c->want_out == on || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = c->idx};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Writes what c->out holds; arms EPOLLOUT if the socket is full. */
static void conn_flush(struct conn *c)
{
    while (c->fd >= 0 && c->out.len > c->out.off) {
        ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (w > 0) {
            buf_consume(&c->out, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, true);
            return;
        }
        loop_close(c, "write error");
        return;
    }
    if (c->fd >= 0)
        set_out(c, false);
}

static void conn_readable(struct conn *c)
{
    for (int rounds = 0; rounds < 8 && c->fd >= 0; rounds++) {
        ssize_t r = read(c->fd, g_rbuf, RBUF_SIZE);
        if (r == 0) {
            loop_close(c, "eof");
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                loop_close(c, "read error");
            return;
        }
        if (c->in.len == c->in.off) {
            /* Fast path: parse straight from the shared buffer, keep only the tail. */
            long used = wsc_input(c, g_rbuf, (size_t)r);
            if (used < 0 || c->fd < 0)
                return;
            if ((size_t)used < (size_t)r)
                buf_append(&c->in, g_rbuf + used, (size_t)r - (size_t)used);
        } else {
            buf_append(&c->in, g_rbuf, (size_t)r);
            long used = wsc_input(c, c->in.p + c->in.off, c->in.len - c->in.off);
            if (used < 0 || c->fd < 0)
                return;
            buf_consume(&c->in, (size_t)used);
            if (c->in.len == 0 && c->in.cap > 65536)
                buf_free(&c->in); /* give back a big reassembly buffer */
        }
        if (r < RBUF_SIZE)
            return;
    }
}

static void conn_event(struct conn *c, uint32_t ev)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            loop_close(c, strerror(err));
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLIN)))
            return;
        c->state = CS_UPGRADING;
        wsc_request(c);
        conn_flush(c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_readable(c);
    if (c->fd >= 0 && (ev & EPOLLOUT))
        conn_flush(c);
}

static void flush_dirty(void)
{
    /* A flush may close a connection but never adds to the list, so index walk is safe. */
    for (uint32_t i = 0; i < g_ndirty; i++) {
        struct conn *c = &g_conns[g_dirty[i]];
        c->dirty = false;
        if (c->fd >= 0 && c->state != CS_CONNECTING)
            conn_flush(c);
    }
    g_ndirty = 0;
}

int loop_run(bool (*done)(void), uint64_t deadline)
{
    static struct epoll_event evs[MAX_EVENTS];
    static uint64_t last_progress;
    for (;;) {
        uint64_t now = now_ns();
        if (done && done())
            return 0;
        if (now >= deadline)
            return -1;
        if (g_ops->tick)
            g_ops->tick(now);
        series_tick(now);
        flush_dirty();
        if (!g_opts.quiet && g_ops->progress && now - last_progress >= 1000000000ull) {
            if (last_progress) {
                char line[256];
                g_ops->progress(line, sizeof line);
                fprintf(stderr, "[%6.1fs] %s\n", (now - g_loop_start) / 1e9, line);
            }
            last_progress = now;
        }
        int n = epoll_wait(g_ep, evs, MAX_EVENTS, 1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &g_conns[evs[i].data.u32];
            if (c->fd >= 0)
                conn_event(c, evs[i].events);
        }
        flush_dirty();
    }
}
