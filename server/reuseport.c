/* reuseport.c - the SO_REUSEPORT public listener (reuseport.h). */
#define _GNU_SOURCE /* accept4 */
#include "reuseport.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "util.h"

/* Accepts per wake-up at most, so one busy listener cannot starve the
 * connections already served. */
#define ACCEPT_BATCH 64

struct reuseport {
	ev_io io;
	ev_timer pause;  /* accept paused after EMFILE/ENFILE */
	int fd;
	bool tls;
	uint64_t failed; /* adoptions lws refused */
};

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

static void resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;

	if (s->reuseport && s->reuseport->fd >= 0)
		ev_io_start(loop, &s->reuseport->io);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *s = w->data;
	struct reuseport *rp = s->reuseport;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(rp->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: the connection stays in the
				 * backlog (or goes to another node). Retry in 100 ms
				 * rather than spin on a readable listener. */
				log_warn("accept", "error=%s", log_q(strerror(errno)));
				ev_io_stop(loop, &rp->io);
				ev_timer_set(&rp->pause, 0.1, 0);
				ev_timer_start(loop, &rp->pause);
			}
			return; /* EAGAIN, or the peer gave up (ECONNABORTED) */
		}
		if (s->draining) {
			/* Between begin_drain and the close below: the same
			 * answer as lws's listener gives (ws.c). */
			close(fd);
			continue;
		}
		int one = 1;
		/* as lws does for the sockets it accepts */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		lws_sock_file_fd_type desc;
		desc.sockfd = fd;
		lws_adoption_type type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
		if (rp->tls)
			type |= LWS_ADOPT_ALLOW_SSL;
		/* lws owns fd from here, and closes it itself on failure */
		if (!lws_adopt_descriptor_vhost(s->vhost, type, desc, NULL, NULL))
			rp->failed++;
	}
}

/* A listening socket for ai with SO_REUSEPORT, or -1 with errno. */
static int open_listener(const struct addrinfo *ai)
{
	int one = 1, zero = 0;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return -1;
	/* V6ONLY off: [::] also takes IPv4, as one socket (one group). */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int reuseport_listen(struct server *s, const char *host, unsigned port, bool tls)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char service[8];
	int fd = -1, err = 0;

	hints.ai_socktype = SOCK_STREAM;
	/* An address, not an interface name (lws takes "eth0"; we do not):
	 * the error below says so. */
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_family = host ? AF_UNSPEC : AF_INET6;
	snprintf(service, sizeof(service), "%u", port);
	int g = getaddrinfo(host, service, &hints, &res);
	if (g != 0 && !host) {
		/* no IPv6 on this machine */
		hints.ai_family = AF_INET;
		g = getaddrinfo(NULL, service, &hints, &res);
	}
	if (g != 0) {
		log_error("listen", "host=%s port=%u reuse_port=on error=%s", host ? host : "*", port,
			  log_q(host ? "reuse_port needs host to be an IP address" : gai_strerror(g)));
		return -1;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = open_listener(ai);
		if (fd < 0)
			err = errno;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		log_error("listen", "host=%s port=%u reuse_port=on error=%s", host ? host : "*", port,
			  log_q(strerror(err)));
		return -1;
	}
	struct reuseport *rp = xcalloc(1, sizeof(*rp));
	rp->fd = fd;
	rp->tls = tls;
	ev_io_init(&rp->io, accept_cb, fd, EV_READ);
	rp->io.data = s;
	ev_init(&rp->pause, resume_cb);
	rp->pause.data = s;
	s->reuseport = rp;
	ev_io_start(s->loop, &rp->io);
	return bound_port(fd);
}

void reuseport_close(struct server *s)
{
	struct reuseport *rp = s->reuseport;

	if (!rp)
		return;
	if (s->loop) {
		ev_io_stop(s->loop, &rp->io);
		ev_timer_stop(s->loop, &rp->pause);
	}
	if (rp->fd >= 0)
		close(rp->fd);
	free(rp);
	s->reuseport = NULL;
}
