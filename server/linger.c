/* linger.c - lingering close of client sockets (linger.h). */
#include "linger.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

struct lingering {
	ev_io io;            /* first: the watcher is the entry */
	ev_timer timer;
	struct linger_set *set;
	struct lingering *next, *prev;
};

/* The loop's epoll descriptor. libev does not export it; it is the one
 * descriptor of the process that is an epoll instance when this runs
 * (hangup.c creates its own set after). -1 if not found: then nothing
 * lingers. */
static int find_epoll_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], link[64];
	int found = -1, n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		if (k < 0)
			continue;
		link[k] = '\0';
		if (!strcmp(link, "anon_inode:[eventpoll]")) {
			found = atoi(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n == 1 ? found : -1;
}

void linger_init(struct linger_set *ls, struct ev_loop *loop, uint32_t max)
{
	ls->loop = loop;
	ls->epfd = loop ? find_epoll_fd() : -1;
	ls->head = NULL;
	ls->n = 0;
	ls->max = max;
	ls->total = 0;
	ls->off = 0;
}

/* Reads and discards what is queued. Returns 1 once the peer is gone
 * (EOF or an error), 0 when the queue is empty for now. */
static int discard(int fd)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return 1;
	}
}

static void finish(struct lingering *l)
{
	struct linger_set *ls = l->set;

	ev_io_stop(ls->loop, &l->io);
	ev_timer_stop(ls->loop, &l->timer);
	/* Last bytes that came since the last read: read them too, so this
	 * close() finds an empty queue where it can. */
	discard(l->io.fd);
	close(l->io.fd);
	if (l->prev)
		l->prev->next = l->next;
	else
		ls->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	ls->n--;
	free(l);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	if (discard(w->fd))
		finish((struct lingering *)w);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	finish(w->data);
}

void linger_start(struct linger_set *ls, int fd)
{
	if (fd < 0 || ls->off || ls->n >= ls->max)
		return;
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (d < 0)
		return;
	/* The loop's epoll set still holds lws's descriptor: libev leaves a
	 * stopped watcher registered, counting on close() to drop it. With
	 * our duplicate open, close() no longer does (epoll forgets an entry
	 * only when its last descriptor is closed), and input on the socket
	 * would come back as events for a number lws closed, which makes
	 * libev rebuild its whole epoll set. So drop it here; libev copes with
	 * an fd that vanished behind its back (ENOENT on the next change). */
	if (ls->epfd < 0 || (epoll_ctl(ls->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT)) {
		close(d);
		return;
	}
	/* Our last bytes, then FIN. (lws has usually done this already.) */
	shutdown(d, SHUT_WR);
	if (discard(d)) {
		close(d);
		return;
	}
	struct lingering *l = xcalloc(1, sizeof(*l));
	l->set = ls;
	ev_io_init(&l->io, on_read, d, EV_READ);
	ev_timer_init(&l->timer, on_timeout, LINGER_SECONDS, 0);
	l->timer.data = l;
	ev_io_start(ls->loop, &l->io);
	ev_timer_start(ls->loop, &l->timer);
	l->next = ls->head;
	if (ls->head)
		ls->head->prev = l;
	ls->head = l;
	ls->n++;
	ls->total++;
}

void linger_stop_all(struct linger_set *ls)
{
	ls->off = 1;
	while (ls->head)
		finish(ls->head);
}
