/*
 * hangup.h - clients that hang up are closed a bounded number per loop
 * iteration, so a mass disconnect cannot stall the loop.
 *
 * Why: Debian's libwebsockets 4.1 is built with _DEBUG, and its close
 * path scans its whole descriptor table and reads every live connection
 * (sanity_assert_no_sockfd_traces): each close costs O(live connections),
 * about 50 us with 15,000 open. libev hands the loop every descriptor one
 * epoll_wait found ready, and lws closes each hung-up one from its own
 * watcher, so 15,000 clients leaving at once used to hold the loop for
 * about 0.7 s in one or two iterations, and every other client (a ping,
 * a publish) waited for all of them.
 *
 * How: each WebSocket's socket is also in an epoll set of our own, for
 * EPOLLRDHUP only (the peer's FIN or reset, never ordinary input; edge
 * triggered). The loop watches that set at the highest libev priority, so
 * in an iteration where hang-ups arrive our callback runs before lws's
 * watchers: it turns reading off for each hung-up connection with
 * lws_rx_flow_control() (a reason bit of our own, separate from the
 * send-queue back-pressure in conn.c), which stops lws's watcher and drops
 * its pending event, and queues the connection. Before each poll, a
 * prepare watcher turns reading back on for a batch of queued connections;
 * lws reads their EOF in the next iteration and closes them as always (the
 * CLOSED callback, lingering, the disconnect log). The batch adapts so an
 * iteration that closes takes about HANGUP_SLICE_S.
 *
 * Closes parleyd starts without a close frame take the same road
 * (hangup_kill): a ping timeout, and the cut-off of a closing connection
 * whose reader did not take its close frame within CLOSE_WAIT_S (a room
 * of slow consumers closed with 4008 in one fan-out). The keep-alive
 * sweep that finds them queues them; at its turn each is shut down
 * (shutdown(2): our side reads EOF) and so comes back through the
 * hang-up watch, to be closed like a peer that hung up. lws's own kill
 * (lws_set_timeout) would close each as a live WebSocket, with a close
 * handshake under a timeout, and inserting 15,000 timeouts into lws's
 * sorted list is O(n^2): seconds of the loop.
 *
 * Nothing is lost by waiting: the peer has stopped sending, and lws would
 * close the connection as soon as it read the EOF anyway. While queued, a
 * connection is not written to (flush_cb, WRITEABLE): its peer is gone or
 * going. Only native WebSockets (conn_open) are watched; Socket.IO and
 * HTTP clients close as lws reads their EOF.
 */
#ifndef PARLEY_HANGUP_H
#define PARLEY_HANGUP_H

#include <stdint.h>

#include <ev.h>

struct server;
struct conn;

/* How long one loop iteration should take while queued hang-ups are
 * being closed. 2 ms: at about 100 us per close (15,000 open) that is 20
 * closes per iteration; the other clients then wait a few ms, not the
 * whole storm. (5 ms gave a probe's ping p99 of 13-62 ms on a shared
 * 2-core machine, 2 ms 12-23 ms; tests/e2e/test_mass_leave.py.) */
#define HANGUP_SLICE_S 0.002
/* The batch released per iteration: it starts at HANGUP_BATCH_START and
 * shrinks or doubles, within these bounds, with how long the last
 * iteration took. */
#define HANGUP_BATCH_MIN 1
#define HANGUP_BATCH_START 16
#define HANGUP_BATCH_MAX 4096

/* struct conn.hangup */
#define HANGUP_NONE 0     /* not seen to hang up */
#define HANGUP_QUEUED 1   /* reading off, waiting for its turn */
#define HANGUP_RELEASED 2 /* reading on again: lws closes it at its EOF */
#define HANGUP_KILL 3     /* hangup_kill(): waiting for its turn to be shut down */

struct hangup_set {
	struct server *srv;
	struct ev_loop *loop;
	int epfd;               /* our epoll set; -1: off (lws closes at once) */
	ev_io io_w;             /* epfd readable: hang-ups arrived */
	ev_prepare release_w;   /* before each poll: release a batch */
	ev_idle idle_w;         /* while queued: the poll must not sleep */
	struct conn *head, *tail; /* queued, oldest first (conn.hnext) */
	uint32_t n;             /* queued now */
	uint32_t batch;         /* released per iteration */
	uint32_t last;          /* released in the last iteration */
	ev_tstamp last_at;      /* when that was */
	uint64_t total;         /* hang-ups queued since start */
};

/* Call with the loop, after linger_init (linger.c finds the loop's epoll
 * descriptor as the only one). loop NULL: off, every call a no-op. */
void hangup_init(struct hangup_set *hs, struct server *s, struct ev_loop *loop);
/* Watches a connection's socket for the peer hanging up (conn_open). */
void hangup_watch(struct hangup_set *hs, struct conn *c);
/* Hangs up on a connection without a close frame (a ping timeout, a
 * close that waited CLOSE_WAIT_S for a reader that does not read): it is
 * queued, at its turn its socket is shut down (and the ping_timeout or
 * close_timeout line logged), and it is then closed as a client that hung
 * up, a batch per iteration each time, so that thousands found in one
 * sweep (a network partition) do not stall the loop. */
void hangup_kill(struct hangup_set *hs, struct conn *c);
/* The connection is closing (CLOSED, before lws closes its socket):
 * stops watching it and takes it off the queue. */
void hangup_forget(struct hangup_set *hs, struct conn *c);
/* Stops the watchers and closes the set (teardown, before the loop is
 * destroyed; every connection is gone). */
void hangup_stop(struct hangup_set *hs);

#endif
