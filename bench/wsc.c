/* wsc: the WebSocket client side of RFC 6455, just enough for a load tool.
 *
 * - The upgrade response is only checked for "101"; Sec-WebSocket-Accept is not verified
 *   (we talk to servers we started ourselves; SHA-1 would be dead weight here).
 * - Client frames must be masked (RFC 6455 5.3). The mask key comes from a xorshift PRNG
 *   instead of getrandom(): no syscall per frame. The mask protects proxies from
 *   cache poisoning, which does not apply on loopback, but servers reject unmasked frames.
 * - Server frames are delivered zero-copy when complete and unfragmented; fragments are
 *   reassembled in c->frag.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <stdio.h>
#include <string.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static inline uint32_t rng32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

void wsc_request(struct conn *c)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0; i < 21; i++)
        key[i] = b64[rng32() & 63];
    key[21] = 'A'; /* 16 bytes encode to 22 chars + "=="; last char carries 4 zero bits */
    key[22] = '=';
    key[23] = '=';
    key[24] = 0;
    const struct target *t = loop_target(c->idx);
    const char *path = t->path;
    if (g_opts.proto == PROTO_SOCKETIO && strncmp(path, "/socket.io", 10) != 0)
        path = "/socket.io/?EIO=4&transport=websocket";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: parley-bench\r\n\r\n",
                     path, t->host, t->port, key);
    buf_append(&c->out, req, (size_t)n);
}

void wsc_frame(struct conn *c, int opcode, const void *p, size_t n)
{
    buf_reserve(&c->out, n + 14);
    unsigned char *h = (unsigned char *)c->out.p + c->out.len;
    size_t hl;
    h[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (n < 126) {
        h[1] = (unsigned char)(0x80 | n);
        hl = 2;
    } else if (n < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t mk = rng32();
    unsigned char mask[4];
    memcpy(mask, &mk, 4);
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *dst = h + hl;
    const unsigned char *src = p;
    /* Word-at-a-time XOR: the mask repeats every 4 bytes, so an 8-byte mask word works
     * for every 8-byte aligned offset of the payload. */
    uint64_t m8;
    memcpy(&m8, mask, 4);
    memcpy((char *)&m8 + 4, mask, 4);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= m8;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ mask[i & 3];
    c->out.len += hl + n;
    loop_mark_dirty(c);
}

static void deliver_text(struct conn *c, const char *p, size_t n)
{
    if (g_opts.proto == PROTO_SOCKETIO)
        sio_message(c, p, n);
    else
        wire_text(c, p, n);
}

/* Parses the HTTP response of the upgrade. Returns bytes consumed, 0 if incomplete,
 * -1 if refused. */
static long upgrade_response(struct conn *c, const char *p, size_t n)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > 8192 ? -1 : 0;
    if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
        char why[64];
        snprintf(why, sizeof why, "upgrade refused: %.*s", (int)(n < 24 ? n : 24), p);
        for (char *q = why; *q; q++)
            if (*q == '\r' || *q == '\n')
                *q = ' ';
        loop_close(c, why);
        return -1;
    }
    c->state = CS_OPEN;
    return (long)(end + 4 - p);
}

long wsc_input(struct conn *c, const char *p, size_t n)
{
    size_t pos = 0;
    if (c->state == CS_UPGRADING) {
        long used = upgrade_response(c, p, n);
        if (used <= 0)
            return used;
        pos = (size_t)used;
    }
    while (c->fd >= 0 && n - pos >= 2) {
        const unsigned char *h = (const unsigned char *)p + pos;
        size_t avail = n - pos;
        int fin = h[0] & 0x80, op = h[0] & 0x0f;
        int masked = h[1] & 0x80;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
            hl = 10;
        }
        if (masked)
            hl += 4; /* servers must not mask; tolerate it anyway */
        if (len > (64u << 20)) {
            loop_close(c, "frame too large");
            return -1;
        }
        if (avail < hl + len)
            break;
        char *pl = (char *)h + hl;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                pl[i] ^= (char)h[hl - 4 + (i & 3)];
        pos += hl + (size_t)len;
        switch (op) {
        case 0x1: case 0x2: case 0x0:
            if (op != 0 && fin && c->frag.len == 0) {
                if (op == 1)
                    deliver_text(c, pl, (size_t)len);
                break;
            }
            if (op != 0)
                c->frag_op = op;
            buf_append(&c->frag, pl, (size_t)len);
            if (fin) {
                if (c->frag_op == 1)
                    deliver_text(c, c->frag.p + c->frag.off, c->frag.len - c->frag.off);
                c->frag.off = c->frag.len = 0;
            }
            break;
        case 0x8: {
            char why[48];
            int code = len >= 2 ? ((unsigned char)pl[0] << 8 | (unsigned char)pl[1]) : 1005;
            snprintf(why, sizeof why, "close %d", code);
            /* No close echo: the TCP close right after says the same to a load tool. */
            loop_close(c, why);
            return -1;
        }
        case 0x9:
            wsc_frame(c, 0xA, pl, (size_t)len);
            break;
        default:
            break; /* pong, reserved */
        }
    }
    if (c->fd < 0)
        return -1;
    return (long)pos;
}
