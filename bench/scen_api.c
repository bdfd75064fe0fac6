/* scen_api: the HTTP API's publish. N keep-alive HTTP/1.1 connections POST /api/publish
 * to one room, each with one request in flight. --rate 0 (default) runs closed-loop, as
 * fast as the server answers (publishes/s); --rate R paces a total of R requests per second
 * and measures each request's latency from its scheduled time, so a server that falls
 * behind shows it (no coordinated omission). --members M WebSocket connections join the
 * room first and receive every message: deliveries/s and publish -> delivery latency (the
 * data carries the send time; same host, CLOCK_MONOTONIC).
 *
 * This scenario keeps its own small epoll loop (HTTP and a minimal WebSocket reader)
 * instead of loop.c, which is built around WebSocket clients only. */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct hconn {
    int fd;
    bool busy;
    uint64_t t0;            /* scheduled (rate) or send time (closed loop) */
    struct buf in;
};

struct member {
    int fd;
    struct buf in;
};

static char g_api_host[64] = "127.0.0.1";
static int g_api_port = 9180;
static char g_key[300];
static char g_room[64] = "api-bench";
static uint32_t g_nconns = 8, g_members;
static double g_rate;
static int g_size = 100;
static bool g_persist;

static struct hist *g_lat, *g_dlat;
static uint64_t g_done, g_errors, g_sent, g_delivered, g_reconnects;
static bool g_listen_only;
static uint64_t g_first_err_status;

static int tcp_connect(const char *host, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Blocking read until "\r\n\r\n" (setup only). */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return (int)n;
    }
    return -1;
}

/* ---- WebSocket members: upgrade, join, then read frames ---- */

static void ws_send_text(int fd, const char *p, size_t n)
{
    char f[512];
    unsigned char mask[4] = { 1, 2, 3, 4 };
    size_t h = 0;
    f[h++] = (char)0x81;
    f[h++] = (char)(0x80 | n); /* n < 126 here */
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = (char)(p[i] ^ mask[i % 4]);
    write_all(fd, f, h + n);
}

static int member_open(struct member *m)
{
    char req[512], head[4096];
    m->fd = tcp_connect(g_opts.host, g_opts.port);
    if (m->fd < 0)
        return -1;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     g_opts.path, g_opts.host, g_opts.port);
    if (write_all(m->fd, req, (size_t)n) < 0 || read_head(m->fd, head, sizeof head) < 0 ||
        strncmp(head, "HTTP/1.1 101", 12))
        return -1;
    n = snprintf(req, sizeof req, "{\"type\":\"join\",\"room\":\"%s\",\"id\":1}", g_room);
    ws_send_text(m->fd, req, (size_t)n);
    /* whatever followed the 101 (welcome, join reply) is read by the loop */
    char *body = strstr(head, "\r\n\r\n") + 4;
    buf_append(&m->in, body, strlen(body));
    return 0;
}

/* Consumes complete frames from m->in; a message frame's "t" is its send time. */
static void member_frames(struct member *m)
{
    for (;;) {
        const unsigned char *p = (const unsigned char *)m->in.p + m->in.off;
        size_t avail = m->in.len - m->in.off, h = 2;
        if (avail < 2)
            return;
        uint64_t len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4)
                return;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                return;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (avail < h + len)
            return;
        const char *t = (const char *)p + h;
        if ((p[0] & 0x0f) == 1 && len > 20 && !memcmp(t, "{\"type\":\"message\"", 17)) {
            const char *d = memmem(t, len, "\"t\":", 4);
            if (d) {
                uint64_t sent = strtoull(d + 4, NULL, 10);
                hist_add(g_dlat, now_ns() - sent);
            }
            g_delivered++;
        }
        buf_consume(&m->in, h + len);
    }
}

/* ---- HTTP publishers ---- */

static void http_send(struct hconn *c, uint64_t t0)
{
    char body[70000], req[72000];
    char fill[65536];
    fill_payload(fill, (size_t)g_size);
    int bn = snprintf(body, sizeof body, "{\"room\":\"%s\",\"persist\":%s,\"data\":{\"t\":%llu,\"p\":\"%.*s\"}}",
                      g_room, g_persist ? "true" : "false", (unsigned long long)now_ns(), g_size, fill);
    int n = snprintf(req, sizeof req,
                     "POST /api/publish HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     g_api_host, g_key, bn, body);
    c->busy = true;
    c->t0 = t0;
    g_sent++;
    if (write_all(c->fd, req, (size_t)n) < 0) {
        fprintf(stderr, "parley-bench api: write failed: %s\n", strerror(errno));
        exit(1);
    }
}

/* The blank line ending a response head in p[0..n), or NULL. (Not memmem:
 * GCC's -Wnonnull under the sanitizers cannot see that p is not NULL.) */
static char *head_end(char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

/* Consumes complete responses; returns how many finished. */
static int http_responses(struct hconn *c)
{
    int done = 0;
    for (;;) {
        size_t avail = c->in.len - c->in.off;
        if (avail < 4 || !c->in.p)
            return done;
        char *p = c->in.p + c->in.off;
        char *end = head_end(p, avail);
        if (!end)
            return done;
        size_t hl = (size_t)(end + 4 - p);
        const char *cl = memmem(p, hl, "content-length:", 15);
        size_t bl = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (avail < hl + bl)
            return done;
        int status = atoi(p + 9);
        if (status == 200) {
            hist_add(g_lat, now_ns() - c->t0);
            g_done++;
        } else {
            if (!g_first_err_status)
                g_first_err_status = (uint64_t)status;
            g_errors++;
        }
        buf_consume(&c->in, hl + bl);
        c->busy = false;
        done++;
    }
}

/* A new connection in place of one the server closed while idle. */
static int reconnect(int ep, struct hconn *c, uint32_t i)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->in.len = c->in.off = 0;
    c->fd = tcp_connect(g_api_host, g_api_port);
    if (c->fd < 0)
        return -1;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    g_reconnects++;
    return 0;
}

static void help(void)
{
    printf("usage: parley-bench api --key KEY [options]\n"
           "  --api HOST:PORT  where /api is served (default 127.0.0.1:9180, the admin listener)\n"
           "  --key KEY        an API key (api_keys_file)\n"
           "  --conns N        keep-alive HTTP connections, one request in flight each (default 8)\n"
           "  --rate R         total publishes per second (default 0: as fast as answered)\n"
           "  --members M      WebSocket members of the room receiving (default 0; --url)\n"
           "  --size B         payload filler bytes (default 100)\n"
           "  --room NAME      the room (default api-bench)\n"
           "  --persist        store the messages (default: \"persist\":false)\n"
           "  --listen-only    only the members: no publishing (run the publishing side in\n"
           "                   another process, so neither waits for the other's reading)\n"
           "%s", COMMON_HELP);
}

static int api_opt(int ch, const char *arg, void *ctx)
{
    (void)ctx;
    switch (ch) {
    case 'a': {
        const char *colon = strrchr(arg, ':');
        if (!colon || (size_t)(colon - arg) >= sizeof g_api_host)
            return -1;
        memcpy(g_api_host, arg, (size_t)(colon - arg));
        g_api_host[colon - arg] = '\0';
        g_api_port = atoi(colon + 1);
        return 0;
    }
    case 'k': snprintf(g_key, sizeof g_key, "%s", arg); return 0;
    case 'n': g_nconns = (uint32_t)atoi(arg); return 0;
    case 'r': g_rate = atof(arg); return 0;
    case 'm': g_members = (uint32_t)atoi(arg); return 0;
    case 's': g_size = atoi(arg); return 0;
    case 'R': snprintf(g_room, sizeof g_room, "%s", arg); return 0;
    case 'S': g_persist = true; return 0;
    case 'L': g_listen_only = true; return 0;
    }
    return -1;
}

int scen_api(int argc, char **argv)
{
    static const struct option lo[] = {
        {"api", required_argument, 0, 'a'}, {"key", required_argument, 0, 'k'},
        {"conns", required_argument, 0, 'n'}, {"rate", required_argument, 0, 'r'},
        {"members", required_argument, 0, 'm'}, {"size", required_argument, 0, 's'},
        {"room", required_argument, 0, 'R'}, {"persist", no_argument, 0, 'S'},
        {"listen-only", no_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'}, COMMON_LONGOPTS, {0, 0, 0, 0},
    };
    int rc = opts_parse(argc, argv, lo, api_opt, NULL, help);
    if (rc != 0)
        return rc;
    if (opts_no_procs("api"))
        return 2;
    if (g_listen_only)
        g_nconns = 0;
    if ((!g_key[0] && !g_listen_only) || (!g_nconns && !g_listen_only) || g_size < 1 ||
        g_size > 60000) {
        fprintf(stderr, "parley-bench api: --key is required; sizes out of range (see --help)\n");
        return 2;
    }
    raise_nofile(g_nconns + g_members + 64);
    g_lat = hist_new();
    g_dlat = hist_new();

    int ep = epoll_create1(0);
    struct member *ms = calloc(g_members ? g_members : 1, sizeof *ms);
    for (uint32_t i = 0; i < g_members; i++) {
        if (member_open(&ms[i]) < 0) {
            fprintf(stderr, "parley-bench api: member %u could not connect/upgrade\n", i);
            return 1;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (1ull << 32) | i };
        epoll_ctl(ep, EPOLL_CTL_ADD, ms[i].fd, &ev);
    }
    struct hconn *cs = calloc(g_nconns ? g_nconns : 1, sizeof *cs);
    for (uint32_t i = 0; i < g_nconns; i++) {
        cs[i].fd = tcp_connect(g_api_host, g_api_port);
        if (cs[i].fd < 0) {
            fprintf(stderr, "parley-bench api: cannot connect to %s:%d\n", g_api_host, g_api_port);
            return 1;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    /* let the members' joins land before the first publish */
    usleep(g_members ? 500000 : 0);

    double cpu_u0 = 0, cpu_s0 = 0, cpu_u1 = 0, cpu_s1 = 0;
    if (g_opts.server_pid)
        ps_cpu_all(&cpu_u0, &cpu_s0);
    uint64_t start = now_ns(), end = start + (uint64_t)(g_opts.duration * 1e9);
    uint64_t scheduled = 0, last_progress = start;
    struct epoll_event evs[256];
    char rbuf[65536];

    while (now_ns() < end) {
        uint64_t now = now_ns();
        if (g_rate > 0) {
            uint64_t due = (uint64_t)((double)(now - start) * g_rate / 1e9);
            for (uint32_t i = 0; i < g_nconns && scheduled < due; i++)
                if (!cs[i].busy) {
                    /* request k is due at (k+1)/rate: due counts whole intervals */
                    uint64_t t0 = start + (uint64_t)((double)(scheduled + 1) * 1e9 / g_rate);
                    http_send(&cs[i], t0);
                    scheduled++;
                }
        } else {
            for (uint32_t i = 0; i < g_nconns; i++)
                if (!cs[i].busy)
                    http_send(&cs[i], now_ns());
        }
        /* Paced: sleep exactly until the next request is due (epoll_pwait2
         * takes a timespec; epoll_wait's whole milliseconds would make
         * sends up to 1 ms late, and that would count as server latency). */
        struct timespec ts = { 0, 1000000 };
        if (g_rate > 0) {
            uint64_t next = start + (uint64_t)((double)(scheduled + 1) * 1e9 / g_rate), t = now_ns();
            uint64_t wait = next > t ? next - t : 0;
            ts.tv_nsec = (long)(wait < 1000000 ? wait : 1000000);
        }
        int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
        for (int k = 0; k < n; k++) {
            uint64_t tag = evs[k].data.u64;
            bool is_member = tag >> 32;
            uint32_t i = (uint32_t)tag;
            int fd = is_member ? ms[i].fd : cs[i].fd;
            ssize_t r = read(fd, rbuf, sizeof rbuf);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (!is_member && !cs[i].busy && reconnect(ep, &cs[i], i) == 0)
                    continue; /* the server closed an idle keep-alive connection */
                fprintf(stderr, "parley-bench api: %s %u closed by the server\n",
                        is_member ? "member" : "connection", i);
                return 1;
            }
            if (is_member) {
                buf_append(&ms[i].in, rbuf, (size_t)r);
                member_frames(&ms[i]);
            } else {
                buf_append(&cs[i].in, rbuf, (size_t)r);
                http_responses(&cs[i]);
            }
        }
        if (!g_opts.quiet && now - last_progress > 1000000000ull) {
            last_progress = now;
            fprintf(stderr, "\r%.0fs publishes %llu errors %llu delivered %llu   ",
                    (double)(now - start) / 1e9, (unsigned long long)g_done,
                    (unsigned long long)g_errors, (unsigned long long)g_delivered);
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    if (g_opts.server_pid)
        ps_cpu_all(&cpu_u1, &cpu_s1);
    /* stragglers: deliveries of the last publishes */
    uint64_t drain_end = now_ns() + 1000000000ull;
    while (g_members && !g_listen_only && now_ns() < drain_end && g_delivered < g_sent * g_members) {
        int n = epoll_wait(ep, evs, 256, 10);
        for (int k = 0; k < n; k++) {
            uint64_t tag = evs[k].data.u64;
            uint32_t i = (uint32_t)tag;
            int fd = tag >> 32 ? ms[i].fd : cs[i].fd;
            ssize_t r = read(fd, rbuf, sizeof rbuf);
            if (r <= 0)
                continue;
            if (tag >> 32) {
                buf_append(&ms[i].in, rbuf, (size_t)r);
                member_frames(&ms[i]);
            } else {
                buf_append(&cs[i].in, rbuf, (size_t)r);
                http_responses(&cs[i]);
            }
        }
    }
    if (!g_opts.quiet)
        fprintf(stderr, "\n");

    res_str("scenario", "api");
    res_num("conns", g_nconns, "");
    res_num("members", g_members, "");
    res_num("rate_target", g_rate, "msg/s");
    res_num("sent", (double)g_sent, "");
    res_num("publishes", (double)g_done, "");
    res_num("reconnects", (double)g_reconnects, "");
    res_num("publishes_per_s", (double)g_done / secs, "msg/s");
    res_num("errors", (double)g_errors, "");
    if (g_errors)
        res_num("first_error_status", (double)g_first_err_status, "");
    res_hist("api_latency", g_lat);
    if (g_members) {
        res_num("delivered", (double)g_delivered, "");
        /* requests still unanswered at the end may be delivered too */
        res_num("expected_min", (double)(g_done * g_members), "");
        res_num("expected_max", (double)(g_sent * g_members), "");
        res_num("deliveries_per_s", (double)g_delivered / secs, "msg/s");
        res_hist("delivery_latency", g_dlat);
    }
    if (g_opts.server_pid) {
        double cpu = (cpu_u1 - cpu_u0) + (cpu_s1 - cpu_s0);
        res_num("server_cpu", cpu / secs * 100.0, "%");
        if (g_done)
            res_num("server_cpu_per_publish", cpu / (double)g_done * 1e6, "us");
    }
    for (uint32_t i = 0; i < g_nconns; i++) {
        close(cs[i].fd);
        buf_free(&cs[i].in);
    }
    for (uint32_t i = 0; i < g_members; i++) {
        close(ms[i].fd);
        buf_free(&ms[i].in);
    }
    free(cs);
    free(ms);
    close(ep);
    hist_free(g_lat);
    hist_free(g_dlat);
    return g_errors ? 1 : 0;
}
