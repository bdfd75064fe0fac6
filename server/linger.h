/*
 * linger.h - lingering close of client sockets, as nginx does it.
 *
 * Closing a socket whose receive queue holds unread bytes makes the kernel
 * answer with a TCP reset, and a reset destroys whatever the peer had not
 * read yet: our close frame (4029, 1001, 1009...) and the last replies.
 * A client that is still sending when it is closed (a flood, a publisher
 * at shutdown) always has unread input. So when lws lets go of a client
 * socket (LWS_CALLBACK_CLOSED), parleyd keeps a duplicate of its
 * descriptor: lws's close() then releases only its own descriptor, the
 * socket stays open, its write side is shut down (the peer reads our last
 * bytes, then EOF), and its input is read and thrown away until the peer
 * closes or LINGER_SECONDS pass. Nothing read here is executed.
 */
#ifndef PARLEY_LINGER_H
#define PARLEY_LINGER_H

#include <stdint.h>

#include <ev.h>

/* How long a closed connection's input is read and discarded at most. */
#define LINGER_SECONDS 2.0

struct lingering;

struct linger_set {
	struct ev_loop *loop;
	struct lingering *head;
	uint32_t n;          /* sockets lingering now */
	uint32_t max;        /* beyond this, close at once (descriptor budget) */
	uint64_t total;      /* lingering closes started */
	int off;             /* 1: shutting down, close at once */
	int epfd;            /* the loop's epoll descriptor; -1: no lingering */
};

/* max: sockets that may linger at once (each holds a descriptor). Call
 * with the loop once its epoll instance exists (and before any other). */
void linger_init(struct linger_set *ls, struct ev_loop *loop, uint32_t max);
/* Takes a duplicate of the client socket fd (the caller keeps and closes
 * its own), shuts down its write side and discards its input until EOF,
 * an error or LINGER_SECONDS; or closes it at once when the set is full,
 * off, or the peer is already gone. */
void linger_start(struct linger_set *ls, int fd);
/* Closes every lingering socket now; later linger_start calls close at
 * once. */
void linger_stop_all(struct linger_set *ls);

#endif
