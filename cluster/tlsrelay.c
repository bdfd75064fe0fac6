/*
 * tlsrelay.c - the TLS relay under hiredis (tlsrelay.h).
 *
 * One thread, one poll() loop over: the wake pipe (stop), the listening
 * Unix socket, and for each link its Unix side (hiredis) and its TCP side
 * (Redis, through an SSL). A link goes
 *   CONNECT (non-blocking TCP connect) -> HANDSHAKE (SSL_connect) -> OPEN
 * and is closed on the first error, on either side's end, or when the
 * connect + handshake deadline passes. Closing the Unix side is how the
 * rconn learns of any failure.
 *
 * Buffers: 'up' holds what hiredis wrote and Redis has not taken yet,
 * 'down' what Redis sent and hiredis has not read yet, each at most
 * TLSRELAY_BUF bytes. A side is polled for reading only while its buffer
 * has room, so a slow reader slows the writer (TCP backpressure both
 * ways) instead of growing a queue. What hiredis sends during the
 * handshake (AUTH, SELECT...) waits in 'up'.
 *
 * An OPEN link is pumped when poll() reports one of its sockets, until
 * neither direction moves. poll() is level-triggered, so bytes left
 * unread (a full buffer) are reported again once there is room; what it
 * cannot see, decrypted bytes OpenSSL already holds, SSL_has_pending()
 * tells. A TLS write may need a read and the reverse (w_want_*, r_want_w
 * say which, and the next poll asks for it).
 *
 * Who owns what:
 *   field                         written by        read by
 *   ctx, dir, path, target, sa,   tlsrelay_start    the thread (read-only
 *   server_name, timeout, lfd                         while it runs)
 *   links[], nlinks, every rlink  the thread        the thread only
 *   nlinks_pub                    the thread        anyone (a statistic)
 *   ring[], r_head, r_len,        the thread (post) the loop (log_cb),
 *   r_dropped                                         both under mu
 *   seen[]                        the loop          the loop
 *   wake[1]                       tlsrelay_stop     the thread (wake[0])
 * The thread is joined before anything it reads is freed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tlsrelay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

enum link_state { L_CONNECT, L_HANDSHAKE, L_OPEN };

struct rbuf {
	size_t len;
	char d[TLSRELAY_BUF];
};

struct rlink {
	int ufd, tfd;
	SSL *ssl;
	enum link_state st;
	double deadline;             /* CONNECT and HANDSHAKE only */
	int want_r, want_w;          /* HANDSHAKE: SSL_connect's wish for the TCP side */
	int w_want_r, w_want_w;      /* OPEN: the blocked SSL_write's wish */
	int r_want_w;                /* OPEN: the last SSL_read's wish to write */
	size_t wpend;                /* an SSL_write to repeat with this length; 0: none */
	int t_eof;                   /* Redis ended: flush 'down', then close */
	int cert_asked;              /* Redis asked for a client certificate; none is set */
	int dead;
	struct rbuf up, down;
};

#define LOG_RING 8
#define LOG_LINE 320

struct tlsrelay {
	/* set at start, read-only while the thread runs */
	struct ev_loop *loop;
	SSL_CTX *ctx;
	char dir[96], path[108];
	char target[300];            /* host:port, for the logs */
	char server_name[256];
	int name_is_ip;
	struct sockaddr_storage sa;
	socklen_t salen;
	double timeout;
	void (*on_log)(int, const char *, const char *, void *);
	void *ud;
	int lfd, wake[2];
	pthread_t thread;

	/* the thread's own */
	struct rlink *links[TLSRELAY_MAX_LINKS];
	unsigned nlinks;
	volatile unsigned nlinks_pub;

	/* the log ring: thread -> loop, under mu */
	pthread_mutex_t mu;
	struct {
		int level;
		const char *msg;
		char line[LOG_LINE];
	} ring[LOG_RING];
	unsigned r_head, r_len, r_dropped;
	ev_async log_w;

	/* the loop's: a line seen in the last 30 s is counted, not written
	 * again. Several slots, since one failure can alternate between two
	 * texts (a reset, or the alert, whichever is read first). */
	struct {
		char line[LOG_LINE];
		ev_tstamp at;
		unsigned repeats;
	} seen[4];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- logging: the thread queues, the loop writes ---- */

/* Called by the thread. A full ring drops the line (counted): logging must
 * never block the relay or grow without bound. */
static void post(struct tlsrelay *r, int level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void post(struct tlsrelay *r, int level, const char *msg, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->mu);
	if (r->r_len == LOG_RING) {
		r->r_dropped++;
	} else {
		unsigned i = (r->r_head + r->r_len++) % LOG_RING;
		r->ring[i].level = level;
		r->ring[i].msg = msg;
		va_start(ap, fmt);
		vsnprintf(r->ring[i].line, LOG_LINE, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&r->mu);
	ev_async_send(r->loop, &r->log_w);
}

static void log_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct tlsrelay *r = w->data;
	char line[LOG_LINE + 40];
	int level;
	const char *msg;

	(void)revents;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		if (!r->r_len) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		level = r->ring[r->r_head].level;
		msg = r->ring[r->r_head].msg;
		memcpy(line, r->ring[r->r_head].line, LOG_LINE);
		r->r_head = (r->r_head + 1) % LOG_RING;
		r->r_len--;
		unsigned dropped = r->r_dropped;
		r->r_dropped = 0;
		pthread_mutex_unlock(&r->mu);
		/* The same failure on every retry (every 2 s at most, on each of
		 * the node's connections) would fill the log: write it when it
		 * is new, or once per 30 s with the count of the others. */
		if (level >= 2) {
			unsigned i, oldest = 0;
			for (i = 0; i < 4; i++) {
				if (!strcmp(line, r->seen[i].line))
					break;
				if (r->seen[i].at < r->seen[oldest].at)
					oldest = i;
			}
			if (i < 4 && ev_now(loop) - r->seen[i].at < 30) {
				r->seen[i].repeats++;
				continue;
			}
			unsigned reps = i < 4 ? r->seen[i].repeats : 0;
			if (i == 4)
				i = oldest;
			memcpy(r->seen[i].line, line, LOG_LINE);
			r->seen[i].at = ev_now(loop);
			r->seen[i].repeats = 0;
			if (reps)
				snprintf(line + strlen(line), sizeof(line) - strlen(line), " repeated=%u", reps);
		}
		size_t n = strlen(line);
		if (dropped)
			snprintf(line + n, sizeof(line) - n, " dropped_lines=%u", dropped);
		if (r->on_log)
			r->on_log(level, msg, line, r->ud);
	}
}

/* Writes s into out as a logfmt value: quoted, with '"' and '\' escaped
 * and control bytes replaced (the log module's log_q is not for threads). */
static const char *q(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *s && n + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			out[n++] = '\\';
		out[n++] = ch < 0x20 ? '?' : (char)ch;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

/* The reason of a failed SSL call: the certificate check's when it failed,
 * else OpenSSL's error queue, else errno or what the peer did. */
static void ssl_why(struct rlink *l, int ret, int err, char *why, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	long v = l->ssl ? SSL_get_verify_result(l->ssl) : X509_V_OK;

	(void)ret;
	if (v != X509_V_OK && l->st == L_HANDSHAKE) {
		snprintf(why, cap, "certificate verify failed: %s", X509_verify_cert_error_string(v));
	} else if (e) {
		char b[200];
		ERR_error_string_n(e, b, sizeof(b));
		const char *reason = ERR_reason_error_string(e);
		snprintf(why, cap, "TLS: %s (%s)", reason ? reason : "error", b);
	} else if (err == SSL_ERROR_SYSCALL && errno) {
		snprintf(why, cap, "TLS: %s", strerror(errno));
	} else if (l->st == L_HANDSHAKE) {
		snprintf(why, cap, "Redis closed the connection during the TLS handshake");
	} else {
		snprintf(why, cap, "TLS: connection closed");
	}
	ERR_clear_error();
}

/* A link failed: it is closed after this round, and the reason logged.
 * net: Redis could not be reached (warn, as Redis being down is an
 * operational state the rconn reports too); else a TLS failure (error:
 * a configuration that will not fix itself). */
static void link_fail_as(struct tlsrelay *r, struct rlink *l, const char *why, int net)
{
	char qb[260];

	l->dead = 1;
	post(r, net ? 2 : 3, net ? "cluster_tls_connect_failed" : "cluster_tls_error", "redis=%s server_name=%s error=%s%s", r->target, r->server_name, q(qb, sizeof(qb), why),
	     l->cert_asked ? " hint=\"Redis asked for a client certificate and none is set "
			     "(cluster_tls_cert, cluster_tls_key; Redis's tls-auth-clients)\"" : "");
}

#define link_fail(r, l, why) link_fail_as(r, l, why, 0)
#define link_fail_net(r, l, why) link_fail_as(r, l, why, 1)

/* ---- one link ---- */

/* Called by OpenSSL when Redis asks for a client certificate and none is
 * configured (with one, OpenSSL sends it without asking). Remembered for
 * the log: under TLS 1.3 Redis checks the certificate after our handshake
 * has completed, and may reset the connection before its alert can be
 * read, so the error alone would only say "connection reset". */
static int no_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
	struct rlink *l = SSL_get_app_data(ssl);

	(void)x509, (void)pkey;
	if (l)
		l->cert_asked = 1;
	return 0;   /* continue without a certificate */
}

static int start_tls(struct tlsrelay *r, struct rlink *l, char *why, size_t cap)
{
	l->ssl = SSL_new(r->ctx);
	if (l->ssl)
		SSL_set_app_data(l->ssl, l);
	if (!l->ssl || !SSL_set_fd(l->ssl, l->tfd)) {
		snprintf(why, cap, "TLS: cannot make a session");
		ERR_clear_error();
		return -1;
	}
	if (r->name_is_ip) {
		/* An IP address is checked against the certificate's IP SANs;
		 * SNI carries names only (RFC 6066), so none is sent. */
		X509_VERIFY_PARAM *p = SSL_get0_param(l->ssl);
		if (!X509_VERIFY_PARAM_set1_ip_asc(p, r->server_name)) {
			snprintf(why, cap, "TLS: bad server address %.200s", r->server_name);
			return -1;
		}
	} else {
		SSL_set_hostflags(l->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(l->ssl, r->server_name) ||
		    !SSL_set_tlsext_host_name(l->ssl, r->server_name)) {
			snprintf(why, cap, "TLS: bad server name %.200s", r->server_name);
			ERR_clear_error();
			return -1;
		}
	}
	l->st = L_HANDSHAKE;
	l->want_w = 1;   /* the ClientHello goes first */
	return 0;
}

static void link_close(struct rlink *l)
{
	if (l->ssl) {
		/* a close_notify if the socket takes it now; never waits */
		if (l->st == L_OPEN && !l->t_eof)
			SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
		ERR_clear_error();
	}
	if (l->ufd >= 0)
		close(l->ufd);
	if (l->tfd >= 0)
		close(l->tfd);
	free(l);
}

/* Reads what hiredis wrote into 'up' while it has room. Returns bytes read;
 * marks the link dead when hiredis closed (its side is done, so is ours).
 * *more: 1 when it stopped on a full buffer (more may wait), 0 when the
 * socket is empty. */
static size_t read_unix(struct rlink *l, int *more)
{
	size_t got = 0;

	*more = 1;
	while (!l->dead && l->up.len < TLSRELAY_BUF) {
		ssize_t n = read(l->ufd, l->up.d + l->up.len, TLSRELAY_BUF - l->up.len);
		if (n > 0) {
			l->up.len += (size_t)n;
			got += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			l->dead = 1;   /* hiredis closed or reset: no log, it knows */
		} else if (errno == EAGAIN) {
			*more = 0;
			break;
		}
	}
	return got;
}

static size_t write_unix(struct rlink *l)
{
	size_t put = 0;

	while (!l->dead && l->down.len) {
		ssize_t n = send(l->ufd, l->down.d, l->down.len, MSG_NOSIGNAL);
		if (n > 0) {
			memmove(l->down.d, l->down.d + n, l->down.len - (size_t)n);
			l->down.len -= (size_t)n;
			put += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			break;
		} else {
			l->dead = 1;
		}
	}
	return put;
}

/* Moves bytes both ways until neither moves. urev, trev: what poll()
 * said of the Unix and the TCP side. A side is read only when poll said
 * so, or when the last read stopped on a full buffer (or OpenSSL holds
 * decrypted bytes): on a busy relay most wake-ups concern one side of
 * one link, and each needless read is a syscall returning EAGAIN. */
static void pump(struct tlsrelay *r, struct rlink *l, short urev, short trev)
{
	char why[256];
	int moved;
	int u_more = (urev & (POLLIN | POLLHUP | POLLERR)) != 0;
	int t_more = (trev & (POLLIN | POLLHUP | POLLERR)) != 0 || (l->r_want_w && (trev & POLLOUT));

	do {
		moved = 0;
		if (u_more && read_unix(l, &u_more))
			moved = 1;
		if (l->dead)
			return;
		if (l->up.len && !l->t_eof) {
			l->w_want_r = l->w_want_w = 0;
			size_t len = l->wpend ? l->wpend : l->up.len;
			ERR_clear_error();
			int n = SSL_write(l->ssl, l->up.d, (int)len);
			if (n > 0) {
				memmove(l->up.d, l->up.d + n, l->up.len - (size_t)n);
				l->up.len -= (size_t)n;
				l->wpend = 0;
				moved = 1;
			} else {
				int e = SSL_get_error(l->ssl, n);
				/* OpenSSL wants the same write repeated */
				l->wpend = len;
				if (e == SSL_ERROR_WANT_READ) {
					l->w_want_r = 1;
				} else if (e == SSL_ERROR_WANT_WRITE) {
					l->w_want_w = 1;
				} else {
					ssl_why(l, n, e, why, sizeof(why));
					link_fail(r, l, why);
					return;
				}
			}
		}
		while (!l->t_eof && l->down.len < TLSRELAY_BUF && (t_more || SSL_has_pending(l->ssl))) {
			ERR_clear_error();
			int n = SSL_read(l->ssl, l->down.d + l->down.len, (int)(TLSRELAY_BUF - l->down.len));
			if (n > 0) {
				l->down.len += (size_t)n;
				moved = 1;
				continue;
			}
			int e = SSL_get_error(l->ssl, n);
			t_more = 0;
			l->r_want_w = e == SSL_ERROR_WANT_WRITE;
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				/* poll says when (see relay_main) */
			} else if (e == SSL_ERROR_ZERO_RETURN ||
				   (e == SSL_ERROR_SYSCALL && !ERR_peek_error() && n == 0)) {
				/* Redis closed (QUIT, a restart): hand hiredis what
				 * came before, then close its side. */
				l->t_eof = 1;
				ERR_clear_error();
			} else {
				ssl_why(l, n, e, why, sizeof(why));
				link_fail(r, l, why);
				return;
			}
			break;
		}
		if (write_unix(l))
			moved = 1;
		if (l->dead)
			return;
	} while (moved);
	if (l->t_eof && !l->down.len)
		l->dead = 1;
}

/* Advances a link through CONNECT and HANDSHAKE; pumps an OPEN one. */
static void step(struct tlsrelay *r, struct rlink *l, short urev, short trev, double now)
{
	char why[256];

	if (l->st != L_OPEN) {
		/* buffer what hiredis sends meanwhile; notice if it gave up */
		int more;
		if (urev)
			read_unix(l, &more);
		if (l->dead) {
			/* The rconn's own timeout (connect + handshake + AUTH...)
			 * ran out first: say where the time went, or the log
			 * would show nothing at all (a TLS client at a plain
			 * port may wait for an answer that never comes). */
			snprintf(why, sizeof(why), "%s", l->st == L_CONNECT ? "no TCP connection before the "
				 "cluster timeout" : "no TLS handshake before the cluster timeout (is it "
				 "Redis's TLS port?)");
			link_fail_as(r, l, why, l->st == L_CONNECT);
			return;
		}
		if (now >= l->deadline) {
			snprintf(why, sizeof(why), l->st == L_CONNECT ? "connect timeout"
				 : "TLS handshake timeout (is it Redis's TLS port?)");
			link_fail_as(r, l, why, l->st == L_CONNECT);
			return;
		}
	}
	if (l->st == L_CONNECT) {
		if (!(trev & (POLLOUT | POLLERR | POLLHUP)))
			return;
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(l->tfd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			link_fail_net(r, l, why);
			return;
		}
		if (start_tls(r, l, why, sizeof(why)) < 0) {
			link_fail(r, l, why);
			return;
		}
	}
	if (l->st == L_HANDSHAKE) {
		ERR_clear_error();
		int n = SSL_connect(l->ssl);
		if (n != 1) {
			int e = SSL_get_error(l->ssl, n);
			l->want_r = e == SSL_ERROR_WANT_READ;
			l->want_w = e == SSL_ERROR_WANT_WRITE;
			if (!l->want_r && !l->want_w) {
				ssl_why(l, n, e, why, sizeof(why));
				link_fail(r, l, why);
			}
			return;
		}
		l->st = L_OPEN;
		/* hiredis's first commands may wait in 'up' already; what
		 * came with the handshake's last record, OpenSSL holds
		 * (SSL_has_pending) */
		urev = trev = 0;
	}
	pump(r, l, urev, trev);
}

static void accept_links(struct tlsrelay *r, double now)
{
	for (;;) {
		int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;   /* EAGAIN, or a transient error: poll again */
		/* Only this process: the directory is 0700 already, and a
		 * relayed connection carries our client certificate. */
		struct ucred cr = { 0 };
		socklen_t cl = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid != getpid()) {
			post(r, 2, "cluster_tls_relay", "redis=%s error=\"refused a relay connection from another process\" pid=%d",
			     r->target, (int)cr.pid);
			close(fd);
			continue;
		}
		if (r->nlinks == TLSRELAY_MAX_LINKS) {
			post(r, 2, "cluster_tls_relay", "redis=%s error=\"too many relayed connections\" max=%d", r->target,
			     TLSRELAY_MAX_LINKS);
			close(fd);
			continue;
		}
		struct rlink *l = xcalloc(1, sizeof(*l));
		l->ufd = fd;
		l->deadline = now + r->timeout;
		l->tfd = socket(r->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		r->links[r->nlinks++] = l;
		char why[256];
		if (l->tfd < 0) {
			snprintf(why, sizeof(why), "socket: %s", strerror(errno));
			link_fail_net(r, l, why);
			continue;
		}
		int one = 1;
		setsockopt(l->tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(l->tfd, (struct sockaddr *)&r->sa, r->salen) == 0) {
			if (start_tls(r, l, why, sizeof(why)) < 0)
				link_fail(r, l, why);
		} else if (errno != EINPROGRESS) {
			snprintf(why, sizeof(why), "connect: %s", strerror(errno));
			link_fail_net(r, l, why);
		}
	}
}

static void *relay_main(void *arg)
{
	struct tlsrelay *r = arg;
	struct pollfd pf[2 + 2 * TLSRELAY_MAX_LINKS];

	/* named for top -H and /proc/PID/task: its CPU is the TLS cost */
	pthread_setname_np(pthread_self(), "parleyd-tls");

	for (;;) {
		double now = now_s(), next = -1;
		nfds_t n = 0;

		pf[n++] = (struct pollfd){ .fd = r->wake[0], .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
		for (unsigned i = 0; i < r->nlinks; i++) {
			struct rlink *l = r->links[i];
			short ue = 0, te = 0;
			if (l->up.len < TLSRELAY_BUF)
				ue |= POLLIN;
			if (l->down.len)
				ue |= POLLOUT;
			if (l->st == L_CONNECT) {
				te = POLLOUT;
			} else if (l->st == L_HANDSHAKE) {
				te = (short)((l->want_r ? POLLIN : 0) | (l->want_w ? POLLOUT : 0));
			} else {
				/* read Redis whenever 'down' has room (level-triggered:
				 * bytes left unread are reported again) */
				if ((!l->t_eof && l->down.len < TLSRELAY_BUF) || l->w_want_r)
					te |= POLLIN;
				if (l->w_want_w || l->r_want_w)
					te |= POLLOUT;
			}
			if (l->st != L_OPEN && (next < 0 || l->deadline < next))
				next = l->deadline;
			/* a side with nothing to wait for is left out (fd -1):
			 * poll reports POLLHUP even unasked, which would spin
			 * while the other side's buffer is full */
			pf[n++] = (struct pollfd){ .fd = ue ? l->ufd : -1, .events = ue };
			pf[n++] = (struct pollfd){ .fd = te ? l->tfd : -1, .events = te };
		}
		int ms = -1;
		if (next >= 0)
			ms = next <= now ? 0 : (int)((next - now) * 1000) + 1;
		if (poll(pf, n, ms) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;   /* tlsrelay_stop */
		now = now_s();
		unsigned old = r->nlinks;
		for (unsigned i = 0; i < old; i++) {
			struct rlink *l = r->links[i];
			short urev = pf[2 + 2 * i].revents, trev = pf[3 + 2 * i].revents;
			/* an OPEN link moves only on an event; the others also
			 * have a deadline to check */
			if (!l->dead && (urev || trev || l->st != L_OPEN))
				step(r, l, urev, trev, now);
		}
		if (pf[1].revents)
			accept_links(r, now);
		/* free the dead ones here, outside step(): nothing is freed
		 * while a loop over the links still holds it */
		unsigned k = 0;
		for (unsigned i = 0; i < r->nlinks; i++) {
			if (r->links[i]->dead)
				link_close(r->links[i]);
			else
				r->links[k++] = r->links[i];
		}
		r->nlinks = k;
		r->nlinks_pub = k;
	}
	for (unsigned i = 0; i < r->nlinks; i++)
		link_close(r->links[i]);
	r->nlinks = r->nlinks_pub = 0;
	/* OpenSSL keeps per-thread state (the error queue): free it now, or
	 * it shows as a leak at exit. */
	OPENSSL_thread_stop();
	return NULL;
}

/* ---- start and stop (the loop thread) ---- */

/* A file the relay needs: unreadable is said plainly (OpenSSL's own
 * "system lib" hides the errno). */
static int readable(const char *key, const char *path, char *why, size_t cap)
{
	FILE *f = path ? fopen(path, "r") : NULL;

	if (path && !f) {
		snprintf(why, cap, "%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	if (f)
		fclose(f);
	return 0;
}

static int load_ctx(struct tlsrelay *r, const struct tlsrelay_opts *o, char *why, size_t cap)
{
	char b[200];

	if (readable("cluster_tls_ca", o->ca_file, why, cap) < 0 ||
	    readable("cluster_tls_cert", o->cert_file, why, cap) < 0 ||
	    readable("cluster_tls_key", o->key_file, why, cap) < 0)
		return -1;
	ERR_clear_error();
	r->ctx = SSL_CTX_new(TLS_client_method());
	if (!r->ctx) {
		snprintf(why, cap, "cannot make a TLS context");
		return -1;
	}
	SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(r->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Redis closing without close_notify (a restart, kill -9) is an end,
	 * not an error to log: hiredis sees the end either way, and a reply
	 * cut short is an error for it (RESP frames its own lengths). */
	SSL_CTX_set_options(r->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (o->ca_file ? !SSL_CTX_load_verify_locations(r->ctx, o->ca_file, NULL)
		       : !SSL_CTX_set_default_verify_paths(r->ctx)) {
		ERR_error_string_n(ERR_peek_last_error(), b, sizeof(b));
		snprintf(why, cap, "cluster_tls_ca %s: cannot load it (%s)", o->ca_file ? o->ca_file : "(system store)", b);
		return -1;
	}
	if (!o->cert_file)
		SSL_CTX_set_client_cert_cb(r->ctx, no_cert_cb);
	if (o->cert_file) {
		if (!SSL_CTX_use_certificate_chain_file(r->ctx, o->cert_file)) {
			ERR_error_string_n(ERR_peek_last_error(), b, sizeof(b));
			snprintf(why, cap, "cluster_tls_cert %s: cannot load it (%s)", o->cert_file, b);
			return -1;
		}
		if (!o->key_file || !SSL_CTX_use_PrivateKey_file(r->ctx, o->key_file, SSL_FILETYPE_PEM)) {
			ERR_error_string_n(ERR_peek_last_error(), b, sizeof(b));
			snprintf(why, cap, "cluster_tls_key %s: cannot load it (%s)",
				 o->key_file ? o->key_file : "(unset)", b);
			return -1;
		}
		if (!SSL_CTX_check_private_key(r->ctx)) {
			snprintf(why, cap, "cluster_tls_key %s does not match cluster_tls_cert %s", o->key_file,
				 o->cert_file);
			return -1;
		}
	}
	ERR_clear_error();
	return 0;
}

static int make_socket(struct tlsrelay *r, char *why, size_t cap)
{
	const char *base = getenv("TMPDIR");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	/* "<base>/parleyd-redis-XXXXXX/s" must fit sun_path */
	if (!base || !*base || strlen(base) + 24 >= sizeof(r->dir) || strlen(base) + 24 >= sizeof(sun.sun_path))
		base = "/tmp";
	snprintf(r->dir, sizeof(r->dir), "%s/parleyd-redis-XXXXXX", base);
	if (!mkdtemp(r->dir)) {
		snprintf(why, cap, "cannot make a private directory in %s: %s", base, strerror(errno));
		r->dir[0] = '\0';
		return -1;
	}
	snprintf(r->path, sizeof(r->path), "%s/s", r->dir);
	memcpy(sun.sun_path, r->path, strlen(r->path) + 1);
	r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(r->lfd, TLSRELAY_MAX_LINKS) < 0) {
		snprintf(why, cap, "cannot listen on %s: %s", r->path, strerror(errno));
		return -1;
	}
	return 0;
}

static void free_relay(struct tlsrelay *r)
{
	if (r->lfd >= 0)
		close(r->lfd);
	if (r->path[0])
		unlink(r->path);
	if (r->dir[0])
		rmdir(r->dir);
	for (int i = 0; i < 2; i++)
		if (r->wake[i] >= 0)
			close(r->wake[i]);
	if (r->ctx)
		SSL_CTX_free(r->ctx);
	ERR_clear_error();
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct tlsrelay *tlsrelay_start(struct ev_loop *loop, const struct rurl_addr *addr,
				const struct tlsrelay_opts *o, char *why, size_t whylen)
{
	struct tlsrelay *r = xcalloc(1, sizeof(*r));
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[16];
	unsigned char tmp[sizeof(struct in6_addr)];

	r->loop = loop;
	r->lfd = r->wake[0] = r->wake[1] = -1;
	pthread_mutex_init(&r->mu, NULL);
	r->timeout = o->timeout > 0 ? o->timeout : 2;
	r->on_log = o->on_log;
	r->ud = o->ud;
	snprintf(r->target, sizeof(r->target), strchr(addr->host, ':') ? "[%s]:%d" : "%s:%d", addr->host,
		 addr->port);
	const char *name = o->server_name && *o->server_name ? o->server_name : addr->host;
	if (strlen(name) >= sizeof(r->server_name)) {
		snprintf(why, whylen, "cluster_tls_server_name is too long");
		goto fail;
	}
	memcpy(r->server_name, name, strlen(name) + 1);
	r->name_is_ip = inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
	snprintf(port, sizeof(port), "%d", addr->port);
	if (getaddrinfo(addr->ip, port, &hints, &res) != 0 || !res) {
		snprintf(why, whylen, "bad Redis address %s", addr->ip);
		goto fail;
	}
	memcpy(&r->sa, res->ai_addr, res->ai_addrlen);
	r->salen = res->ai_addrlen;
	freeaddrinfo(res);
	if (load_ctx(r, o, why, whylen) < 0 || make_socket(r, why, whylen) < 0)
		goto fail;
	if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		goto fail;
	}
	ev_async_init(&r->log_w, log_cb);
	r->log_w.data = r;
	ev_async_start(loop, &r->log_w);
	/* The thread takes no signal: SIGTERM and friends stay the loop's. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&r->thread, NULL, relay_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		ev_async_stop(loop, &r->log_w);
		snprintf(why, whylen, "cannot start the relay thread: %s", strerror(e));
		goto fail;
	}
	return r;
fail:
	free_relay(r);
	return NULL;
}

const char *tlsrelay_path(const struct tlsrelay *r)
{
	return r->path;
}

void tlsrelay_route(const struct tlsrelay *r, struct rurl_addr *a)
{
	a->is_unix = 1;
	memcpy(a->path, r->path, sizeof(a->path));
}

unsigned tlsrelay_links(const struct tlsrelay *r)
{
	return r->nlinks_pub;
}

void tlsrelay_stop(struct tlsrelay **rp)
{
	struct tlsrelay *r = *rp;

	if (!r)
		return;
	*rp = NULL;
	ssize_t n;
	do
		n = write(r->wake[1], "x", 1);
	while (n < 0 && errno == EINTR);
	pthread_join(r->thread, NULL);
	/* Lines the thread queued since the loop last ran are dropped: at
	 * shutdown they only say that the node's own connections went away
	 * mid-handshake (a Redis that was down), which is no error. */
	ev_async_stop(r->loop, &r->log_w);
	free_relay(r);
}
