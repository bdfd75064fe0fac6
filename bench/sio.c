/* sio: Engine.IO v4 / Socket.IO v5 over the WebSocket transport, default namespace only.
 *
 * Engine.IO packets are one text frame each, first char = type:
 *   0 open {sid,pingInterval,...}   2 ping (server -> client; we answer 3 pong)   4 message
 * A Socket.IO packet rides in an Engine.IO message ("4" + packet):
 *   40            CONNECT (we send it after the open packet; the server answers 40{"sid":..})
 *   42[ID]["ev",arg]  EVENT, optional ack id digits before the array
 *   43ID[arg]     ACK
 * Events shared with bench/compare/socketio-server.js (the contract, see docs/benchmarks.md):
 *   client -> server  "join"    {"room":"r"}           ack: {"room":"r","members":N}
 *   client -> server  "publish" {"room":"r","data":D}  ack (if asked): {}
 *   server -> client  "message" {"room":"r","from":"<sid>","data":D}
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static char g_sbuf[256 * 1024];

void sio_emit(struct conn *c, const char *event, const char *arg, size_t an, uint32_t id)
{
    int n;
    if (id)
        n = snprintf(g_sbuf, sizeof g_sbuf, "42%u[\"%s\",", id, event);
    else
        n = snprintf(g_sbuf, sizeof g_sbuf, "42[\"%s\",", event);
    if ((size_t)n + an + 2 > sizeof g_sbuf)
        return;
    memcpy(g_sbuf + n, arg, an);
    n += (int)an;
    g_sbuf[n++] = ']';
    wsc_frame(c, 1, g_sbuf, (size_t)n);
}

/* Returns the span of the idx-th element (0-based) of the JSON array at p, or false. */
static bool array_elem(const char *p, size_t n, int idx, const char **v, size_t *vn)
{
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    if (i >= n || p[i] != '[')
        return false;
    i++;
    for (int k = 0; i < n; k++) {
        while (i < n && (p[i] == ' ' || p[i] == ','))
            i++;
        size_t l = js_value_len(p + i, n - i);
        if (l == 0)
            return false;
        if (k == idx) {
            *v = p + i;
            *vn = l;
            return true;
        }
        i += l;
    }
    return false;
}

void sio_message(struct conn *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    switch (p[0]) {
    case '0': /* open */
        if (c->state == CS_OPEN)
            wsc_frame(c, 1, "40", 2);
        return;
    case '2': /* ping */
        wsc_frame(c, 1, "3", 1);
        return;
    case '4':
        break;
    default:
        return;
    }
    if (n < 2)
        return;
    struct minfo mi = {.kind = MK_OTHER, .seq = -1};
    size_t i = 2;
    uint32_t id = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        id = id * 10 + (uint32_t)(p[i++] - '0');
    const char *body = p + i;
    size_t bn = n - i;
    switch (p[1]) {
    case '0': /* CONNECT ack */
        if (c->state == CS_OPEN)
            loop_conn_ready(c);
        return;
    case '2': { /* EVENT */
        const char *ev, *arg;
        size_t evn, argn;
        if (!array_elem(body, bn, 0, &ev, &evn) || !array_elem(body, bn, 1, &arg, &argn))
            return;
        if (evn == 9 && memcmp(ev, "\"message\"", 9) == 0) {
            const char *v;
            size_t vn;
            mi.kind = MK_MESSAGE;
            if (js_find(arg, argn, "room", &v, &vn) && vn >= 2) {
                mi.room = v + 1;
                mi.room_n = vn - 2;
            }
            js_find(arg, argn, "data", &mi.data, &mi.data_n);
            js_int(arg, argn, "seq", &mi.seq); /* parleyd's: the stored message's seq */
        }
        break;
    }
    case '3': /* ACK */
        mi.kind = MK_REPLY;
        mi.id = id;
        array_elem(body, bn, 0, &mi.data, &mi.data_n);
        {
            const char *ev;
            size_t evn;
            mi.ok = !(mi.data && js_find(mi.data, mi.data_n, "error", &ev, &evn));
        }
        if (mi.data) {
            /* parleyd acks with the native reply, {ok, data:{room, seq}}; the
             * Node server with {} or a flat object */
            const char *d;
            size_t dn;
            if (js_find(mi.data, mi.data_n, "data", &d, &dn) && dn && d[0] == '{')
                js_int(d, dn, "seq", &mi.seq);
            else
                js_int(mi.data, mi.data_n, "seq", &mi.seq);
        }
        break;
    case '4': /* CONNECT_ERROR */
        loop_close(c, "socket.io connect error");
        return;
    default:
        return;
    }
    wire_deliver(c, &mi);
}
