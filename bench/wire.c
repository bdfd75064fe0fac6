/* wire: the few commands the scenarios send, in either protocol, and the parse of the
 * Parley protocol's inbound frames into a struct minfo (sio.c does the same for
 * Socket.IO). Scenarios never see protocol text, so every scenario runs against parleyd,
 * the ws peer (Parley JSON subset) and the Socket.IO peer unchanged.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#define SCRATCH (256 * 1024)
static char g_scratch[SCRATCH];

static bool span_eq(const char *v, size_t vn, const char *lit)
{
    size_t l = strlen(lit);
    return vn == l && memcmp(v, lit, l) == 0;
}

void wire_deliver(struct conn *c, const struct minfo *mi)
{
    if (c->state == CS_OPEN) {
        if (mi->kind == MK_WELCOME)
            loop_conn_ready(c);
        return;
    }
    if (c->state == CS_READY && g_ops->on_msg)
        g_ops->on_msg(c, mi);
}

void wire_text(struct conn *c, const char *p, size_t n)
{
    struct minfo mi = {.kind = MK_OTHER, .seq = -1};
    const char *v;
    size_t vn;
    if (!js_find(p, n, "type", &v, &vn)) {
        mi.kind = MK_ERROR;
        wire_deliver(c, &mi);
        return;
    }
    if (span_eq(v, vn, "\"message\"")) {
        mi.kind = MK_MESSAGE;
        if (js_find(p, n, "room", &v, &vn) && vn >= 2) {
            mi.room = v + 1;
            mi.room_n = vn - 2;
        }
        js_int(p, n, "seq", &mi.seq);
        js_find(p, n, "data", &mi.data, &mi.data_n);
    } else if (span_eq(v, vn, "\"reply\"")) {
        int64_t id = 0;
        mi.kind = MK_REPLY;
        if (js_int(p, n, "id", &id))
            mi.id = (uint32_t)id;
        mi.ok = js_find(p, n, "ok", &v, &vn) && span_eq(v, vn, "true");
        if (mi.ok)
            js_find(p, n, "data", &mi.data, &mi.data_n);
        else
            js_find(p, n, "error", &mi.data, &mi.data_n);
        if (mi.data)
            js_int(mi.data, mi.data_n, "seq", &mi.seq);
    } else if (span_eq(v, vn, "\"welcome\"")) {
        mi.kind = MK_WELCOME;
    } else if (span_eq(v, vn, "\"error\"")) {
        mi.kind = MK_ERROR;
        js_find(p, n, "error", &mi.data, &mi.data_n);
    }
    wire_deliver(c, &mi);
}

static void id_field(char *dst, size_t n, uint32_t id)
{
    if (id)
        snprintf(dst, n, "\"id\":%u,", id);
    else
        dst[0] = 0;
}

void wire_join(struct conn *c, const char *room, uint32_t id)
{
    if (g_opts.proto == PROTO_SOCKETIO) {
        /* {room}: parleyd's /socket.io/ mapping (docs/socketio.md); the Node
         * comparison server takes it too */
        int n = snprintf(g_scratch, SCRATCH, "{\"room\":\"%s\"}", room);
        sio_emit(c, "join", g_scratch, (size_t)n, id);
        return;
    }
    char idf[32];
    id_field(idf, sizeof idf, id);
    int n = snprintf(g_scratch, SCRATCH, "{\"type\":\"join\",%s\"room\":\"%s\"}", idf, room);
    wsc_frame(c, 1, g_scratch, (size_t)n);
}

void wire_publish(struct conn *c, const char *room, const char *data, size_t dn, uint32_t id,
                  bool persist)
{
    int n;
    if (g_opts.proto == PROTO_SOCKETIO) {
        /* parleyd's /socket.io/ stores by default, like its native
         * publish: say volatile the same way, so both protocols do the
         * same work (the Node peer ignores the field). */
        n = snprintf(g_scratch, SCRATCH, "{\"room\":\"%s\",%s\"data\":", room,
                     persist ? "" : "\"persist\":false,");
        if ((size_t)n + dn + 2 > SCRATCH)
            return;
        memcpy(g_scratch + n, data, dn);
        n += (int)dn;
        g_scratch[n++] = '}';
        sio_emit(c, "publish", g_scratch, (size_t)n, id);
        return;
    }
    char idf[32];
    id_field(idf, sizeof idf, id);
    n = snprintf(g_scratch, SCRATCH, "{\"type\":\"publish\",%s\"room\":\"%s\",%s\"data\":", idf,
                 room, persist ? "" : "\"persist\":false,");
    if ((size_t)n + dn + 2 > SCRATCH)
        return;
    memcpy(g_scratch + n, data, dn);
    n += (int)dn;
    g_scratch[n++] = '}';
    wsc_frame(c, 1, g_scratch, (size_t)n);
}

void wire_join_since(struct conn *c, const char *room, int64_t since, uint32_t id)
{
    char idf[32];
    id_field(idf, sizeof idf, id);
    int n = snprintf(g_scratch, SCRATCH, "{\"type\":\"join\",%s\"room\":\"%s\",\"since\":%lld}",
                     idf, room, (long long)since);
    wsc_frame(c, 1, g_scratch, (size_t)n);
}

void wire_history(struct conn *c, const char *room, int64_t before, int limit, uint32_t id)
{
    char idf[32];
    id_field(idf, sizeof idf, id);
    int n;
    if (before > 0)
        n = snprintf(g_scratch, SCRATCH,
                     "{\"type\":\"history\",%s\"room\":\"%s\",\"before\":%lld,\"limit\":%d}", idf,
                     room, (long long)before, limit);
    else
        n = snprintf(g_scratch, SCRATCH, "{\"type\":\"history\",%s\"room\":\"%s\",\"limit\":%d}",
                     idf, room, limit);
    wsc_frame(c, 1, g_scratch, (size_t)n);
}
