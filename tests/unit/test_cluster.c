/* test_cluster.c - the cluster's Redis address parser and shard hash
 * (cluster/rurl.c), and the self-reconnecting async connection
 * (cluster/rconn.c) against a real redis-server this test starts on a free
 * port: handshake and run_id, AUTH, a lost server (down, then ready again
 * with a new run_id), a connect refused, and a server that stops answering
 * (command timeout); and the arena reply objects (cluster/rreply.c) through
 * a bare hiredis reader: whole and byte by byte, pipelined, larger than a
 * chunk, a protocol error half way, a reader freed half way. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rconn.h"
#include "rreply.h"
#include "rurl.h"

/* ---- rurl ---- */

START_TEST(url_tcp)
{
	struct rurl_addr a;
	char why[128];

	ck_assert_int_eq(rurl_parse("redis://127.0.0.1:6379", &a, why, sizeof(why)), 0);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_int_eq(a.port, 6379);
	ck_assert_uint_eq(a.db, 0);
	ck_assert_str_eq(a.password, "");
	ck_assert_int_eq(rurl_parse("redis://:s3cr@t@10.0.0.1:7000/3", &a, why, sizeof(why)), 0);
	ck_assert_str_eq(a.password, "s3cr@t");
	ck_assert_str_eq(a.host, "10.0.0.1");
	ck_assert_int_eq(a.port, 7000);
	ck_assert_uint_eq(a.db, 3);
	ck_assert_int_eq(rurl_parse("redis://[::1]:6380/15", &a, why, sizeof(why)), 0);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_int_eq(a.port, 6380);
	ck_assert_uint_eq(a.db, 15);
	ck_assert_int_eq(rurl_parse("redis://localhost:1", &a, why, sizeof(why)), 0);
	ck_assert_int_eq(rurl_resolve(&a, why, sizeof(why)), 0);
	ck_assert_msg(!strcmp(a.ip, "127.0.0.1") || !strcmp(a.ip, "::1"), "%s", a.ip);
	ck_assert_int_eq(rurl_parse("redis://localhost:65535", &a, why, sizeof(why)), 0);
}
END_TEST

START_TEST(url_unix)
{
	struct rurl_addr a;
	char why[128];

	ck_assert_int_eq(rurl_parse("unix:/run/redis.sock", &a, why, sizeof(why)), 0);
	ck_assert(a.is_unix);
	ck_assert_str_eq(a.path, "/run/redis.sock");
	ck_assert_uint_eq(a.db, 0);
	ck_assert_int_eq(rurl_parse("unix:/run/redis.sock?db=2", &a, why, sizeof(why)), 0);
	ck_assert_uint_eq(a.db, 2);
}
END_TEST

START_TEST(url_bad)
{
	static const char *bad[] = {
		"", "redis://", "redis://host", "redis://host:", "redis://host:0",
		"redis://host:65536", "redis://host:12x", "redis://:@host:1", "redis://user:pw@host:1",
		"redis://host:1/", "redis://host:1/x", "redis://host:1/65536", "rediss://host", "rediss://host:0", "rediss://:@host:1",
		"rediss://[::1]6379", "redisss://host:1", "rediss:/host:1",
		"http://host:1", "unix:", "unix:relative", "unix:/p?db=", "unix:/p?x=1",
		"redis://::1:6379", "redis://[::1]6379", "redis://:1",
	};
	struct rurl_addr a;
	char why[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		ck_assert_msg(rurl_parse(bad[i], &a, why, sizeof(why)) == -1, "accepted '%s'", bad[i]);
		ck_assert_msg(why[0], "no reason for '%s'", bad[i]);
	}
	ck_assert_int_eq(rurl_parse("http://h:1", &a, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "rediss://"));
}
END_TEST

/* rediss:// is redis:// with TLS (through cluster/tlsrelay.c): the same
 * syntax, tls set; redis:// and unix: leave it clear. */
START_TEST(url_tls)
{
	struct rurl_addr a;
	char why[128];

	ck_assert_int_eq(rurl_parse("rediss://redis.example:6380/3", &a, why, sizeof(why)), 0);
	ck_assert_int_eq(a.tls, 1);
	ck_assert_int_eq(a.is_unix, 0);
	ck_assert_str_eq(a.host, "redis.example");
	ck_assert_int_eq(a.port, 6380);
	ck_assert_uint_eq(a.db, 3);
	ck_assert_int_eq(rurl_parse("rediss://:pw@[::1]:6380", &a, why, sizeof(why)), 0);
	ck_assert_int_eq(a.tls, 1);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_str_eq(a.password, "pw");
	ck_assert_int_eq(rurl_parse("redis://h:1", &a, why, sizeof(why)), 0);
	ck_assert_int_eq(a.tls, 0);
	ck_assert_int_eq(rurl_parse("unix:/run/r.sock", &a, why, sizeof(why)), 0);
	ck_assert_int_eq(a.tls, 0);
}
END_TEST

START_TEST(shard_hash)
{
	/* FNV-1a 64 published values: "" -> cbf29ce484222325, "a" ->
	 * af63dc4c8601ec8c, "foobar" -> 85944171f73967e8. */
	ck_assert_uint_eq(rurl_shard("", 0, 1u << 31), (unsigned)(0xcbf29ce484222325ULL % (1u << 31)));
	ck_assert_uint_eq(rurl_shard("a", 1, 1000003), (unsigned)(0xaf63dc4c8601ec8cULL % 1000003));
	ck_assert_uint_eq(rurl_shard("foobar", 6, 16), (unsigned)(0x85944171f73967e8ULL % 16));
	ck_assert_uint_eq(rurl_shard("anything", 8, 1), 0);
	/* rooms spread: 16 shards, 1600 names, each shard gets 50-150 */
	unsigned n[16] = { 0 };
	char name[32];
	for (int i = 0; i < 1600; i++) {
		int l = snprintf(name, sizeof(name), "room-%d", i);
		unsigned s = rurl_shard(name, (size_t)l, 16);
		ck_assert_uint_lt(s, 16);
		n[s]++;
	}
	for (int i = 0; i < 16; i++)
		ck_assert_msg(n[i] >= 50 && n[i] <= 150, "shard %d got %u", i, n[i]);
}
END_TEST


/* ---- rreply: hiredis reply objects in an arena ---- */

/* An XREAD-shaped reply: [[stream, [[id, [f, v, f, v]]]]], then an
 * integer, a nil, a status and an error in one array. */
static const char xread_resp[] =
	"*2\r\n"
	"*2\r\n$12\r\nparley:log:3\r\n"
	"*1\r\n*2\r\n$15\r\n1700000000000-0\r\n*4\r\n$1\r\nr\r\n$4\r\nroom\r\n$1\r\nd\r\n$0\r\n\r\n"
	"*4\r\n:-42\r\n$-1\r\n+OK\r\n-ERR no\r\n";

static void check_xread(const redisReply *r)
{
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, 2);
	const redisReply *st = r->element[0];
	ck_assert_int_eq(st->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(st->elements, 2);
	ck_assert_int_eq(st->element[0]->type, REDIS_REPLY_STRING);
	ck_assert_uint_eq(st->element[0]->len, 12);
	ck_assert_str_eq(st->element[0]->str, "parley:log:3");
	const redisReply *e = st->element[1]->element[0];
	ck_assert_uint_eq(e->elements, 2);
	ck_assert_str_eq(e->element[0]->str, "1700000000000-0");
	const redisReply *f = e->element[1];
	ck_assert_uint_eq(f->elements, 4);
	ck_assert_str_eq(f->element[1]->str, "room");
	ck_assert_int_eq(f->element[3]->type, REDIS_REPLY_STRING);
	ck_assert_uint_eq(f->element[3]->len, 0);
	ck_assert_str_eq(f->element[3]->str, "");
	const redisReply *m = r->element[1];
	ck_assert_uint_eq(m->elements, 4);
	ck_assert_int_eq(m->element[0]->type, REDIS_REPLY_INTEGER);
	ck_assert_int_eq(m->element[0]->integer, -42);
	ck_assert_int_eq(m->element[1]->type, REDIS_REPLY_NIL);
	ck_assert_int_eq(m->element[2]->type, REDIS_REPLY_STATUS);
	ck_assert_str_eq(m->element[2]->str, "OK");
	ck_assert_int_eq(m->element[3]->type, REDIS_REPLY_ERROR);
	ck_assert_str_eq(m->element[3]->str, "ERR no");
}

/* A reader whose replies go to arena a (as rconn does it). */
static redisReader *arena_reader(struct rreply_arena *a)
{
	redisReader *rd = redisReaderCreate();

	ck_assert_ptr_nonnull(rd);
	rreply_attach(rd, a);
	return rd;
}

START_TEST(rreply_whole_and_bytewise)
{
	struct rreply_arena *a = rreply_arena_new();
	redisReader *rd = arena_reader(a);
	void *r = NULL;
	size_t base = rreply_arena_bytes(a);

	ck_assert_int_eq(redisReaderFeed(rd, xread_resp, sizeof(xread_resp) - 1), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	ck_assert_ptr_nonnull(r);
	check_xread(r);
	rd->fn->freeObject(r);

	/* one byte at a time: a reply half built between two feeds */
	for (int round = 0; round < 3; round++) {
		r = NULL;
		for (size_t i = 0; i < sizeof(xread_resp) - 1; i++) {
			ck_assert_ptr_null(r);
			ck_assert_int_eq(redisReaderFeed(rd, xread_resp + i, 1), REDIS_OK);
			ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
		}
		ck_assert_ptr_nonnull(r);
		check_xread(r);
		rd->fn->freeObject(r);
	}
	/* pipelined: three replies in one feed, each used and freed before
	 * the next is parsed (hiredis's async order) */
	char three[3 * sizeof(xread_resp)];
	size_t n = 0;
	for (int i = 0; i < 3; i++, n += sizeof(xread_resp) - 1)
		memcpy(three + n, xread_resp, sizeof(xread_resp) - 1);
	ck_assert_int_eq(redisReaderFeed(rd, three, n), REDIS_OK);
	for (int i = 0; i < 3; i++) {
		r = NULL;
		ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
		ck_assert_ptr_nonnull(r);
		check_xread(r);
		rd->fn->freeObject(r);
	}
	r = NULL;
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	ck_assert_ptr_null(r);
	/* 20,000 replies later the arena has not grown */
	for (int i = 0; i < 20000; i++) {
		ck_assert_int_eq(redisReaderFeed(rd, xread_resp, sizeof(xread_resp) - 1), REDIS_OK);
		ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
		rd->fn->freeObject(r);
	}
	ck_assert_uint_eq(rreply_arena_bytes(a), base);
	redisReaderFree(rd);
	rreply_arena_free(&a);
	ck_assert_ptr_null(a);
}
END_TEST

START_TEST(rreply_large)
{
	struct rreply_arena *a = rreply_arena_new();
	redisReader *rd = arena_reader(a);
	size_t base = rreply_arena_bytes(a);
	void *r = NULL;
	char hdr[32];

	/* one string of 100,000 bytes (more than a chunk), then an array of
	 * 5,000 small strings (many chunks' worth of objects) */
	size_t big = 100000;
	char *s = malloc(big);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < big; i++)
		s[i] = (char)('a' + i % 26);
	int hl = snprintf(hdr, sizeof(hdr), "$%zu\r\n", big);
	ck_assert_int_eq(redisReaderFeed(rd, hdr, (size_t)hl), REDIS_OK);
	ck_assert_int_eq(redisReaderFeed(rd, s, big), REDIS_OK);
	ck_assert_int_eq(redisReaderFeed(rd, "\r\n", 2), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	redisReply *rr = r;
	ck_assert_int_eq(rr->type, REDIS_REPLY_STRING);
	ck_assert_uint_eq(rr->len, big);
	ck_assert_int_eq(memcmp(rr->str, s, big), 0);
	ck_assert_int_eq(rr->str[big], '\0');
	ck_assert_uint_gt(rreply_arena_bytes(a), base);
	rd->fn->freeObject(r);
	ck_assert_uint_eq(rreply_arena_bytes(a), base); /* the big chunk is gone */
	free(s);

	ck_assert_int_eq(redisReaderFeed(rd, "*5000\r\n", 7), REDIS_OK);
	for (int i = 0; i < 5000; i++) {
		char item[32];
		char v[16];
		int vl = snprintf(v, sizeof(v), "v%d", i);
		int il = snprintf(item, sizeof(item), "$%d\r\n%s\r\n", vl, v);
		ck_assert_int_eq(redisReaderFeed(rd, item, (size_t)il), REDIS_OK);
	}
	r = NULL;
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	rr = r;
	ck_assert_ptr_nonnull(rr);
	ck_assert_uint_eq(rr->elements, 5000);
	for (int i = 0; i < 5000; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		ck_assert_str_eq(rr->element[i]->str, v);
	}
	rd->fn->freeObject(r);
	ck_assert_uint_eq(rreply_arena_bytes(a), base);
	redisReaderFree(rd);
	rreply_arena_free(&a);
}
END_TEST

START_TEST(rreply_error_and_free_half_way)
{
	struct rreply_arena *a = rreply_arena_new();
	redisReader *rd = arena_reader(a);
	size_t base = rreply_arena_bytes(a);
	void *r = NULL;

	/* a protocol error inside an array: the half-built reply is dropped
	 * (the reader frees its root) and nothing leaks (ASan) */
	const char bad[] = "*3\r\n$1\r\nx\r\n:7\r\n!oops\r\n";
	ck_assert_int_eq(redisReaderFeed(rd, bad, sizeof(bad) - 1), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_ERR);
	ck_assert_ptr_null(r);
	ck_assert_uint_eq(rreply_arena_bytes(a), base);
	redisReaderFree(rd);

	/* a reader freed with a reply half read (a connection lost mid-reply),
	 * with a chunk beyond the first in use */
	rd = arena_reader(a);
	ck_assert_int_eq(redisReaderFeed(rd, "*4000\r\n", 7), REDIS_OK);
	for (int i = 0; i < 3000; i++)
		ck_assert_int_eq(redisReaderFeed(rd, "$3\r\nabc\r\n", 9), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	ck_assert_ptr_null(r);
	ck_assert_uint_gt(rreply_arena_bytes(a), base);
	redisReaderFree(rd);
	ck_assert_uint_eq(rreply_arena_bytes(a), base);

	/* the arena serves a new reader (a reconnect) as before */
	rd = arena_reader(a);
	ck_assert_int_eq(redisReaderFeed(rd, xread_resp, sizeof(xread_resp) - 1), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
	check_xread(r);
	rd->fn->freeObject(r);
	redisReaderFree(rd);
	rreply_arena_free(&a);
}
END_TEST

/* ---- rconn against a real redis-server ---- */

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static pid_t redis_start(int port, const char *pass)
{
	char p[16];
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (pass)
			execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1",
			       "--save", "", "--appendonly", "no", "--requirepass", pass,
			       "--loglevel", "warning", "--dir", "/tmp", (char *)NULL);
		else
			execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1",
			       "--save", "", "--appendonly", "no", "--loglevel", "warning",
			       "--dir", "/tmp", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void redis_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

struct probe {
	int ready, down, down_was_ready, replies, nulls;
	char why[160], run_id[48], got[64];
	struct ev_loop *loop;
	int stop_on;                 /* 1: ready, 2: down, 3: a reply */
};

static void p_ready(struct rconn *rc, void *ud)
{
	struct probe *p = ud;

	p->ready++;
	snprintf(p->run_id, sizeof(p->run_id), "%s", rconn_run_id(rc));
	if (p->stop_on == 1)
		ev_break(p->loop, EVBREAK_ALL);
}

static void p_down(struct rconn *rc, void *ud, int was_ready, const char *why)
{
	struct probe *p = ud;

	(void)rc;
	p->down++;
	p->down_was_ready += was_ready;
	snprintf(p->why, sizeof(p->why), "%s", why);
	if (p->stop_on == 2)
		ev_break(p->loop, EVBREAK_ALL);
}

static void p_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct probe *p = priv;

	(void)rc;
	if (!r)
		p->nulls++;
	else {
		p->replies++;
		if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
			snprintf(p->got, sizeof(p->got), "%s", r->str);
	}
	if (p->stop_on == 3)
		ev_break(p->loop, EVBREAK_ALL);
}

static void watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until the probe's stop condition or `secs`. */
static void run_for(struct probe *p, int stop_on, double secs)
{
	ev_timer t;

	p->stop_on = stop_on;
	ev_timer_init(&t, watchdog, secs, 0);
	ev_timer_start(p->loop, &t);
	ev_run(p->loop, 0);
	ev_timer_stop(p->loop, &t);
}

static struct rconn *open_rc(struct probe *p, int port, const char *pass, double cmd_timeout)
{
	static const struct rconn_cbs cbs = { p_ready, p_down };
	struct rconn_opts o = { .connect_timeout = 1, .cmd_timeout = cmd_timeout,
				.backoff_min = 0.05, .backoff_max = 0.2 };
	struct rurl_addr a;
	char url[64], why[128];

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/1", port);
	ck_assert_int_eq(rurl_parse(url, &a, why, sizeof(why)), 0);
	ck_assert_int_eq(rurl_resolve(&a, why, sizeof(why)), 0);
	p->loop = ev_loop_new(EVFLAG_AUTO);
	return rconn_new(p->loop, &a, pass, "test node/1", &o, &cbs, p);
}

START_TEST(rconn_lifecycle)
{
	int port = free_port();
	pid_t rp = redis_start(port, NULL);
	struct probe p = { 0 };
	struct rconn *rc = open_rc(&p, port, NULL, 1);

	/* redis may take a moment to listen: refused attempts are retried */
	run_for(&p, 1, 10);
	ck_assert_int_eq(p.ready, 1);
	ck_assert(rconn_ready(rc));
	ck_assert_uint_eq(strlen(p.run_id), 40);
	char first[48];
	strcpy(first, p.run_id);

	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "SET k %s", "v1"), 0);
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "GET k"), 0);
	ck_assert_uint_eq(rconn_inflight(rc), 2);
	while (p.replies < 2)
		run_for(&p, 3, 5);
	ck_assert_str_eq(p.got, "v1");
	/* SELECT 1 was sent: the key is in db 1 */
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "CLIENT GETNAME"), 0);
	run_for(&p, 3, 5);
	ck_assert_str_eq(p.got, "test_node_1");

	/* Redis dies with a command in flight: NULL reply, down(was_ready), then
	 * refused reconnects (down again, not ready) until it is back */
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "BLPOP nothing 5"), 0);
	redis_stop(rp);
	run_for(&p, 2, 5);
	ck_assert_int_eq(p.nulls, 1);
	ck_assert_int_eq(p.down_was_ready, 1);
	ck_assert(!rconn_ready(rc));
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "PING"), -1);
	run_for(&p, 2, 5);
	ck_assert_int_ge(p.down, 2);
	ck_assert_int_eq(p.down_was_ready, 1);

	rp = redis_start(port, NULL);
	run_for(&p, 1, 10);
	ck_assert_int_eq(p.ready, 2);
	ck_assert_str_ne(p.run_id, first);      /* a restart shows as a new run_id */

	/* a Redis that stops answering: the command timeout drops the connection */
	kill(rp, SIGSTOP);
	int downs = p.down;
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "PING"), 0);
	run_for(&p, 2, 5);
	ck_assert_int_eq(p.down, downs + 1);
	ck_assert_str_eq(p.why, "command timeout");
	ck_assert_int_eq(p.nulls, 2);
	kill(rp, SIGCONT);
	run_for(&p, 1, 10);
	ck_assert_int_eq(p.ready, 3);

	/* free with a command in flight: its callback gets NULL */
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "BLPOP nothing 5"), 0);
	struct ev_loop *loop = p.loop;
	rconn_free(&rc);
	ck_assert_ptr_null(rc);
	ck_assert_int_eq(p.nulls, 3);
	ev_loop_destroy(loop);
	redis_stop(rp);
}
END_TEST


/* LRANGE's reply, checked in the callback (the reply lives in the
 * connection's arena only until the callback returns). */
static void lrange_reply(struct rconn *rc, redisReply *r, void *priv)
{
	struct probe *p = priv;

	(void)rc;
	p->replies++;
	if (r && r->type == REDIS_REPLY_ARRAY) {
		int ok = 1;
		for (size_t i = 0; i < r->elements; i++) {
			char v[32];
			snprintf(v, sizeof(v), "value-%zu", i);
			ok &= r->element[i]->type == REDIS_REPLY_STRING && !strcmp(r->element[i]->str, v);
		}
		snprintf(p->got, sizeof(p->got), "%zu %d", r->elements, ok);
	}
	if (p->stop_on == 3)
		ev_break(p->loop, EVBREAK_ALL);
}

START_TEST(rconn_big_replies)
{
	int port = free_port();
	pid_t rp = redis_start(port, NULL);
	struct probe p = { 0 };
	struct rconn *rc = open_rc(&p, port, NULL, 2);

	run_for(&p, 1, 10);
	ck_assert_int_eq(p.ready, 1);
	/* 3,000 pipelined RPUSHes, then a 3,000-element reply (several arena
	 * chunks) twice, then small replies again */
	for (int i = 0; i < 3000; i++) {
		char v[32];
		snprintf(v, sizeof(v), "value-%d", i);
		const char *argv[] = { "RPUSH", "big", v };
		ck_assert_int_eq(rconn_command_argv(rc, p_reply, &p, 3, argv, NULL), 0);
	}
	ck_assert_int_eq(rconn_command(rc, lrange_reply, &p, "LRANGE big 0 -1"), 0);
	ck_assert_int_eq(rconn_command(rc, lrange_reply, &p, "LRANGE big 0 -1"), 0);
	while (p.replies < 3002)
		run_for(&p, 3, 5);
	ck_assert_str_eq(p.got, "3000 1");
	ck_assert_int_eq(rconn_command(rc, p_reply, &p, "LINDEX big 2999"), 0);
	run_for(&p, 3, 5);
	ck_assert_str_eq(p.got, "value-2999");
	struct ev_loop *loop = p.loop;
	rconn_free(&rc);
	ev_loop_destroy(loop);
	redis_stop(rp);
}
END_TEST

START_TEST(rconn_auth)
{
	int port = free_port();
	pid_t rp = redis_start(port, "right-password");
	struct probe p = { 0 };
	struct rconn *rc = open_rc(&p, port, "wrong", 1);

	/* wait for the server, then a refused AUTH keeps it from being ready */
	for (int i = 0; i < 50 && !strstr(p.why, "AUTH"); i++)
		run_for(&p, 2, 1);
	ck_assert_msg(strstr(p.why, "AUTH") != NULL, "why: %s", p.why);
	ck_assert_int_eq(p.ready, 0);
	rconn_free(&rc);
	ev_loop_destroy(p.loop);

	struct probe q = { 0 };
	rc = open_rc(&q, port, "right-password", 1);
	run_for(&q, 1, 10);
	ck_assert_int_eq(q.ready, 1);
	rconn_free(&rc);
	ev_loop_destroy(q.loop);
	redis_stop(rp);
}
END_TEST

START_TEST(rconn_connect_timeout)
{
	/* a listening socket that never accepts: the TCP connect completes
	 * (backlog) but no handshake reply ever comes */
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
	struct probe p = { 0 };
	struct rconn *rc = open_rc(&p, ntohs(sa.sin_port), NULL, 5);

	run_for(&p, 2, 5);
	ck_assert_int_eq(p.down, 1);
	ck_assert_str_eq(p.why, "connect timeout");
	ck_assert_int_eq(p.down_was_ready, 0);
	rconn_free(&rc);
	ev_loop_destroy(p.loop);
	close(fd);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *t = tcase_create("rurl");

	tcase_add_test(t, url_tcp);
	tcase_add_test(t, url_unix);
	tcase_add_test(t, url_bad);
	tcase_add_test(t, url_tls);
	tcase_add_test(t, shard_hash);
	suite_add_tcase(s, t);
	t = tcase_create("rreply");
	tcase_add_test(t, rreply_whole_and_bytewise);
	tcase_add_test(t, rreply_large);
	tcase_add_test(t, rreply_error_and_free_half_way);
	suite_add_tcase(s, t);
	t = tcase_create("rconn");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, rconn_lifecycle);
	tcase_add_test(t, rconn_big_replies);
	tcase_add_test(t, rconn_auth);
	tcase_add_test(t, rconn_connect_timeout);
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
