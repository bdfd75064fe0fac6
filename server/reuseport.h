/*
 * reuseport.h - the public TCP listener shared by several parleyd
 * (reuse_port = 1), through SO_REUSEPORT.
 *
 * libwebsockets 4.1 sets SO_REUSEPORT on its listening socket only when a
 * context runs more than one service thread, never for our single-threaded
 * libev loop (LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE alone does nothing in
 * the Debian build, LWS_MAX_SMP 1). So parleyd opens the listening socket
 * itself, with SO_REUSEPORT before bind(), accepts on the loop, and hands
 * each accepted socket to lws (lws_adopt_descriptor_vhost) on the public
 * vhost, which then listens on nothing of its own. Linux hashes every new
 * connection's addresses to one of the sockets bound to the port: each
 * node gets its share, and a node that dies or drains leaves the group
 * when its socket closes.
 */
#ifndef PARLEY_REUSEPORT_H
#define PARLEY_REUSEPORT_H

#include <stdbool.h>

struct server;

/* Opens, binds and listens on host:port (host NULL: every address, IPv6
 * and IPv4) with SO_REUSEPORT, and starts accepting into s->vhost.
 * Returns the port bound (port 0 picks one), or -1 after logging. */
int reuseport_listen(struct server *s, const char *host, unsigned port, bool tls);
/* Closes the listening socket: new connections go to the other nodes
 * (drain). Safe to call twice, or when reuseport_listen was not. */
void reuseport_close(struct server *s);

#endif
