/* hangup.c - hung-up clients closed a bounded number per iteration (hangup.h). */
#include "hangup.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "util.h"

/* Our lws_rx_flow_control() reason: lws-misc.h leaves b5..b0 to the
 * application, and conn.c's back-pressure uses b0 (the plain bool form). */
#define HANGUP_RXFLOW (1 << 1)

static void unlink_queued(struct hangup_set *hs, struct conn *c)
{
	if (c->hprev)
		c->hprev->hnext = c->hnext;
	else
		hs->head = c->hnext;
	if (c->hnext)
		c->hnext->hprev = c->hprev;
	else
		hs->tail = c->hprev;
	c->hnext = c->hprev = NULL;
	hs->n--;
}

/*
 * Hangs up on c: not with lws_set_timeout(LWS_TO_KILL_ASYNC), after which
 * lws closes an established WebSocket as a live one, sending a close
 * frame and waiting for its answer under a timeout of its own (lws 4.1
 * keeps timeouts in one sorted list walked at each insert: 15,000 such
 * closes at once held the loop for 2.6 s, test_mass_close.py). After
 * shutdown() our read side is at EOF: the hang-up watch sees it
 * (EPOLLRDHUP) as a peer that hung up, and c goes through the queue
 * again to be closed as lws closes a dead peer. What was written to the
 * socket before still goes, ahead of our FIN.
 */
static void kill_now(struct hangup_set *hs, struct conn *c)
{
	int fd = (int)lws_get_socket_fd(c->wsi);

	(void)hs;
	if (fd < 0)
		return;
	if (c->close_code)
		log_info("close_timeout", "session=%s peer=%s code=%u", c->session, c->peer,
			 (unsigned)c->close_code);
	else
		log_info("ping_timeout", "session=%s peer=%s quiet_ms=%lld", c->session, c->peer,
			 (long long)((int64_t)(util_mono_us() / 1000) - c->heard_ms));
	shutdown(fd, SHUT_RDWR);
}

static void enqueue(struct hangup_set *hs, struct conn *c)
{
	c->hprev = hs->tail;
	c->hnext = NULL;
	if (hs->tail)
		hs->tail->hnext = c;
	else
		hs->head = c;
	hs->tail = c;
	hs->n++;
	ev_idle_start(hs->loop, &hs->idle_w);
}

/* Reading off, to the back of the queue. Stopping lws's read watcher
 * also takes it off libev's pending list for this iteration. */
static void defer(struct hangup_set *hs, struct conn *c)
{
	lws_rx_flow_control(c->wsi, LWS_RXFLOW_REASON_APPLIES_DISABLE | HANGUP_RXFLOW |
					    LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
	c->hangup = HANGUP_QUEUED;
	enqueue(hs, c);
	hs->total++;
}

/* Reading on again: lws reads the EOF (or the reset) at the next poll and
 * closes. Output held while queued goes out first, as far as the peer
 * still takes it. */
static void release(struct hangup_set *hs, struct conn *c)
{
	unlink_queued(hs, c);
	if (c->hangup == HANGUP_KILL) {
		c->hangup = HANGUP_NONE; /* its EOF queues it again */
		kill_now(hs, c);
		return;
	}
	c->hangup = HANGUP_RELEASED;
	lws_rx_flow_control(c->wsi, LWS_RXFLOW_REASON_APPLIES_ENABLE | HANGUP_RXFLOW |
					    LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
	if (c->close_code)
		lws_callback_on_writable(c->wsi);
	else if (c->q.count && !c->pending)
		server_want_flush(hs->srv, c);
}

/* Highest priority: runs before lws's watchers of the same iteration. */
static void on_hangups(struct ev_loop *loop, ev_io *w, int revents)
{
	struct hangup_set *hs = w->data;
	struct epoll_event ev[256];
	int n;

	(void)loop;
	(void)revents;
	do {
		n = epoll_wait(hs->epfd, ev, 256, 0);
		if (n < 0)
			return; /* EINTR: the set stays readable, the loop calls again */
		for (int i = 0; i < n; i++) {
			/* By serial, not pointer: an entry is dropped when its
			 * connection closes, but a reused descriptor number or a
			 * lingering duplicate must never reach a stale conn. */
			struct conn *c = conn_by_serial(hs->srv, ev[i].data.u64);
			if (c && c->hangup == HANGUP_NONE && c->wsi)
				defer(hs, c);
		}
	} while (n == 256);
}

/* Before each poll: release a batch sized so that the iteration that
 * closes it takes about HANGUP_SLICE_S. The last iteration's length (from
 * the previous release to now) is the measure: it holds lws's closes of
 * that batch and whatever else the loop did. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct hangup_set *hs = w->data;

	(void)loop;
	(void)revents;
	if (!hs->n) {
		hs->last = 0;
		ev_idle_stop(hs->loop, &hs->idle_w);
		return;
	}
	ev_tstamp now = ev_time();
	if (hs->last) {
		ev_tstamp took = now - hs->last_at;
		if (took > HANGUP_SLICE_S) {
			double b = (double)hs->batch * HANGUP_SLICE_S / took;
			hs->batch = b < HANGUP_BATCH_MIN ? HANGUP_BATCH_MIN : (uint32_t)b;
		} else if (took < HANGUP_SLICE_S / 2 && hs->last == hs->batch) {
			hs->batch = hs->batch * 2 > HANGUP_BATCH_MAX ? HANGUP_BATCH_MAX : hs->batch * 2;
		}
	}
	uint32_t k = 0;
	while (hs->head && k < hs->batch) {
		release(hs, hs->head);
		k++;
	}
	hs->last = k;
	hs->last_at = now;
}

/* Only keeps the poll from sleeping while connections are queued. */
static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

void hangup_init(struct hangup_set *hs, struct server *s, struct ev_loop *loop)
{
	hs->srv = s;
	hs->loop = loop;
	hs->epfd = -1;
	hs->head = hs->tail = NULL;
	hs->n = 0;
	hs->batch = HANGUP_BATCH_START;
	hs->last = 0;
	hs->total = 0;
	if (!loop)
		return;
	hs->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (hs->epfd < 0) {
		log_warn("hangup", "error=%s", log_q("epoll_create1 failed: hang-ups close at once"));
		return;
	}
	ev_io_init(&hs->io_w, on_hangups, hs->epfd, EV_READ);
	ev_set_priority(&hs->io_w, EV_MAXPRI);
	hs->io_w.data = hs;
	ev_io_start(loop, &hs->io_w);
	ev_prepare_init(&hs->release_w, on_prepare);
	hs->release_w.data = hs;
	ev_prepare_start(loop, &hs->release_w);
	ev_idle_init(&hs->idle_w, on_idle);
	hs->idle_w.data = hs;
}

void hangup_kill(struct hangup_set *hs, struct conn *c)
{
	if (c->hangup != HANGUP_NONE || !c->wsi)
		return; /* already on its way out */
	if (hs->epfd < 0 || !c->hangup_fd) {
		kill_now(hs, c); /* not watched: lws reads the EOF itself */
		return;
	}
	c->hangup = HANGUP_KILL;
	enqueue(hs, c);
}

void hangup_watch(struct hangup_set *hs, struct conn *c)
{
	int fd = c->wsi ? (int)lws_get_socket_fd(c->wsi) : -1;

	if (hs->epfd < 0 || fd < 0)
		return;
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET, .data.u64 = c->serial };
	/* Failing costs only the batching: lws still closes it at its EOF. */
	if (epoll_ctl(hs->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		c->hangup_fd = fd + 1;
}

void hangup_forget(struct hangup_set *hs, struct conn *c)
{
	if (c->hangup == HANGUP_QUEUED || c->hangup == HANGUP_KILL)
		unlink_queued(hs, c);
	c->hangup = HANGUP_NONE;
	/* Explicitly: the socket may outlive lws's descriptor (linger.c
	 * keeps a duplicate), and epoll drops an entry only with the last. */
	if (c->hangup_fd && hs->epfd >= 0)
		epoll_ctl(hs->epfd, EPOLL_CTL_DEL, c->hangup_fd - 1, NULL);
	c->hangup_fd = 0;
}

void hangup_stop(struct hangup_set *hs)
{
	if (hs->epfd < 0)
		return;
	ev_io_stop(hs->loop, &hs->io_w);
	ev_prepare_stop(hs->loop, &hs->release_w);
	ev_idle_stop(hs->loop, &hs->idle_w);
	close(hs->epfd);
	hs->epfd = -1;
}
