/* test_tlsrelay.c - the TLS relay under hiredis (cluster/tlsrelay.c) at its
 * edges, without Redis: its private directory (0700, removed at stop), the
 * bound on relayed connections (TLSRELAY_MAX_LINKS held, one more closed at
 * once), the connect and handshake deadlines against a peer that accepts
 * and never speaks TLS, a refused connect, a local connection from another
 * process refused, and unreadable files refusing the start. The full path
 * (TLS to a real redis-server, verification, AUTH) is
 * tests/e2e/test_cluster_tls.py. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tlsrelay.h"

static char logbuf[8192];

static void on_log(int level, const char *msg, const char *line, void *ud)
{
	size_t n = strlen(logbuf);

	(void)ud;
	snprintf(logbuf + n, sizeof(logbuf) - n, "%d %s %s\n", level, msg, line);
}

/* A TCP listener on 127.0.0.1 that accepts nothing itself (the kernel
 * completes the connects into its backlog) and never speaks TLS. */
static int silent_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static struct rurl_addr addr_for(int port)
{
	struct rurl_addr a;
	char why[128], url[64];

	snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", port);
	ck_assert_int_eq(rurl_parse(url, &a, why, sizeof(why)), 0);
	ck_assert_int_eq(rurl_resolve(&a, why, sizeof(why)), 0);
	return a;
}

static struct tlsrelay *start(struct ev_loop *loop, int port, double timeout)
{
	struct rurl_addr a = addr_for(port);
	struct tlsrelay_opts o = { .timeout = timeout, .on_log = on_log };
	char why[256] = "";
	struct tlsrelay *r = tlsrelay_start(loop, &a, &o, why, sizeof(why));

	ck_assert_msg(r != NULL, "start: %s", why);
	return r;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Waits up to ms for fd to be closed by the relay: 1 when read() saw the
 * end (or a reset), 0 when still open. */
static int closed_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b[64];

	if (poll(&p, 1, ms) <= 0)
		return 0;
	ssize_t n = read(fd, b, sizeof(b));
	return n <= 0;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the loop until the relay's log lines (ev_async) are in logbuf. */
static void drain_log(struct ev_loop *loop, const char *want)
{
	for (int i = 0; i < 200 && !strstr(logbuf, want); i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(10000);
	}
	ck_assert_msg(strstr(logbuf, want) != NULL, "no '%s' in the log:\n%s", want, logbuf);
}

START_TEST(private_dir)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	int port, lfd = silent_listener(&port);
	struct tlsrelay *r = start(loop, port, 2);
	char dir[108];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", tlsrelay_path(r));
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(st.st_uid, getuid());
	ck_assert_int_eq(stat(tlsrelay_path(r), &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	/* route: a TLS address becomes the socket, its host stays for logs */
	struct rurl_addr a = addr_for(port);
	tlsrelay_route(r, &a);
	ck_assert_int_eq(a.is_unix, 1);
	ck_assert_str_eq(a.path, tlsrelay_path(r));
	ck_assert_str_eq(a.host, "127.0.0.1");
	char path[108];
	snprintf(path, sizeof(path), "%s", tlsrelay_path(r));
	tlsrelay_stop(&r);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(stat(dir, &st), -1);
	close(lfd);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(max_links)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	int port, lfd = silent_listener(&port);
	struct tlsrelay *r = start(loop, port, 10);
	int fds[TLSRELAY_MAX_LINKS + 1];

	logbuf[0] = '\0';
	/* at the limit: all held (their handshakes wait on the silent peer) */
	for (int i = 0; i < TLSRELAY_MAX_LINKS; i++)
		fds[i] = unix_connect(tlsrelay_path(r));
	double t0 = mono();
	while (tlsrelay_links(r) < TLSRELAY_MAX_LINKS && mono() - t0 < 5)
		usleep(10000);
	ck_assert_uint_eq(tlsrelay_links(r), TLSRELAY_MAX_LINKS);
	/* one past it: closed at once, and said */
	fds[TLSRELAY_MAX_LINKS] = unix_connect(tlsrelay_path(r));
	ck_assert_int_eq(closed_within(fds[TLSRELAY_MAX_LINKS], 2000), 1);
	drain_log(loop, "too many relayed connections");
	for (int i = 0; i < TLSRELAY_MAX_LINKS; i++)
		ck_assert_int_eq(closed_within(fds[i], 0), 0);
	ck_assert_uint_eq(tlsrelay_links(r), TLSRELAY_MAX_LINKS);
	/* one closes: room for one more */
	close(fds[0]);
	t0 = mono();
	while (tlsrelay_links(r) >= TLSRELAY_MAX_LINKS && mono() - t0 < 5)
		usleep(10000);
	fds[0] = unix_connect(tlsrelay_path(r));
	ck_assert_int_eq(closed_within(fds[0], 300), 0);
	/* stop with every link open: joined, all closed, nothing leaks */
	tlsrelay_stop(&r);
	for (int i = 0; i <= TLSRELAY_MAX_LINKS; i++)
		close(fds[i]);
	close(lfd);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(handshake_timeout)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	int port, lfd = silent_listener(&port);
	struct tlsrelay *r = start(loop, port, 0.3);

	logbuf[0] = '\0';
	int fd = unix_connect(tlsrelay_path(r));
	double t0 = mono();
	ck_assert_int_eq(closed_within(fd, 3000), 1);
	double took = mono() - t0;
	ck_assert_msg(took >= 0.25 && took < 2, "closed after %.2f s", took);
	drain_log(loop, "TLS handshake timeout");
	ck_assert_ptr_nonnull(strstr(logbuf, "3 cluster_tls_error"));
	close(fd);
	tlsrelay_stop(&r);
	close(lfd);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(connect_refused)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	int port, lfd = silent_listener(&port);

	close(lfd);   /* nothing listens there now */
	struct tlsrelay *r = start(loop, port, 2);
	logbuf[0] = '\0';
	int fd = unix_connect(tlsrelay_path(r));
	ck_assert_int_eq(closed_within(fd, 1000), 1);
	drain_log(loop, "Connection refused");
	ck_assert_ptr_nonnull(strstr(logbuf, "2 cluster_tls_connect_failed"));
	/* the same failure again within 30 s: not written again */
	close(fd);
	fd = unix_connect(tlsrelay_path(r));
	ck_assert_int_eq(closed_within(fd, 1000), 1);
	for (int i = 0; i < 20; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(10000);
	}
	ck_assert_ptr_null(strstr(strstr(logbuf, "Connection refused") + 1, "Connection refused"));
	close(fd);
	tlsrelay_stop(&r);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(other_process_refused)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	int port, lfd = silent_listener(&port);
	struct tlsrelay *r = start(loop, port, 10);

	logbuf[0] = '\0';
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", tlsrelay_path(r));
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			_exit(2);
		_exit(closed_within(fd, 2000) ? 0 : 1);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	drain_log(loop, "refused a relay connection from another process");
	ck_assert_uint_eq(tlsrelay_links(r), 0);
	/* this process still may */
	int fd = unix_connect(tlsrelay_path(r));
	ck_assert_int_eq(closed_within(fd, 300), 0);
	close(fd);
	tlsrelay_stop(&r);
	close(lfd);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(bad_files)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rurl_addr a = addr_for(6379);
	char why[256];

	struct tlsrelay_opts o = { .ca_file = "/nonexistent/ca.pem" };
	ck_assert_ptr_null(tlsrelay_start(loop, &a, &o, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "cluster_tls_ca /nonexistent/ca.pem: No such file"));
	char junk[] = "/tmp/parley-tlsrelay-junk-XXXXXX";
	int fd = mkstemp(junk);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "junk\n", 5), 5);
	close(fd);
	struct tlsrelay_opts o2 = { .ca_file = junk };
	ck_assert_ptr_null(tlsrelay_start(loop, &a, &o2, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "cluster_tls_ca"));
	struct tlsrelay_opts o3 = { .cert_file = junk, .key_file = junk };
	ck_assert_ptr_null(tlsrelay_start(loop, &a, &o3, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "cluster_tls_cert"));
	unlink(junk);
	ev_loop_destroy(loop);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tlsrelay");
	TCase *t = tcase_create("relay");

	tcase_set_timeout(t, 30);
	tcase_add_test(t, private_dir);
	tcase_add_test(t, max_links);
	tcase_add_test(t, handshake_timeout);
	tcase_add_test(t, connect_refused);
	tcase_add_test(t, other_process_refused);
	tcase_add_test(t, bad_files);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
