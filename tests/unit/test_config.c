/* test_config.c - the configuration file, flags over the file,
 * --check-config, and deploy/parley.conf kept in step with the table.
 * Sample files go into a fresh mkdtemp directory per test. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

#ifndef DEPLOY_DIR
#error "DEPLOY_DIR must name the deploy/ directory"
#endif

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/parley-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Teardown: removes the test's directory (files only, no subdirectories). */
static void rm_tmpdir(void)
{
	DIR *d;
	struct dirent *e;
	char p[400];

	if (!tmpdir[0] || !(d = opendir(tmpdir)))
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

/* Writes text to tmpdir/name; returns the path (static, one per call site
 * is enough: tests use at most two at a time). */
static const char *write_file(const char *name, const char *text)
{
	static char paths[2][256];
	static int next;
	char *p = paths[next++ & 1];

	if (!tmpdir[0])
		make_tmpdir();
	snprintf(p, sizeof(paths[0]), "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	char *s = calloc(1, 1 << 16);
	size_t n = fread(s, 1, (1 << 16) - 1, f);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Runs config_parse_args on a NULL-terminated argument list with stdout
 * and stderr captured into out/err (caller frees). Returns its result. */
static int run_args(struct config *c, char **out, char **err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "parleyd";
	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)) != NULL && argc < 31)
		argc++;
	va_end(ap);

	char op[300], ep[300];
	if (!tmpdir[0])
		make_tmpdir();
	snprintf(op, sizeof(op), "%s/stdout", tmpdir);
	snprintf(ep, sizeof(ep), "%s/stderr", tmpdir);
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fo, 1);
	dup2(fe, 2);
	int rc = config_parse_args(c, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so), close(se), close(fo), close(fe);
	*out = slurp(op);
	*err = slurp(ep);
	return rc;
}

/* Parses text as file "t.conf" into a default config; returns the result
 * and leaves the message in err. */
static int parse(struct config *c, const char *text, char *err, size_t errlen)
{
	config_defaults(c);
	err[0] = '\0';
	return config_parse_text(c, "t.conf", text, strlen(text), err, errlen);
}

/* Asserts that text fails with exactly the message want. */
#define ck_parse_fails(text, want) do { \
		struct config c_; char e_[256]; \
		ck_assert_int_eq(parse(&c_, (text), e_, sizeof(e_)), -1); \
		ck_assert_str_eq(e_, (want)); \
		config_free(&c_); \
	} while (0)

/* ---- good files ---- */

START_TEST(file_good)
{
	struct config c;
	char err[256];
	const char *text =
		"# parleyd test\n"
		"\n"
		"host = 127.0.0.1\n"
		"port=9000\n"
		"\t data_dir\t=\t/srv/parley \t\n"
		"max_rooms = 7\n"
		"unix_socket_mode = 0600\n"
		"log_level = debug\n"
		"retain_messages = 4294967295\n";
	ck_assert_int_eq(parse(&c, text, err, sizeof(err)), 0);
	ck_assert_str_eq(c.host, "127.0.0.1");
	ck_assert_uint_eq(c.port, 9000);
	ck_assert_str_eq(c.data_dir, "/srv/parley");
	ck_assert_uint_eq(c.max_rooms, 7);
	ck_assert_uint_eq(c.unix_socket_mode, 0600);
	ck_assert_str_eq(c.log_level, "debug");
	ck_assert_uint_eq(c.retain_messages, 4294967295u);
	/* untouched keys keep their defaults */
	ck_assert_uint_eq(c.max_message_size, 65536);
	ck_assert_str_eq(c.auth, "none");
	config_free(&c);
}
END_TEST

START_TEST(file_empty_crlf_bom_no_final_newline)
{
	struct config c;
	char err[256];

	ck_assert_int_eq(parse(&c, "", err, sizeof(err)), 0);
	config_free(&c);
	ck_assert_int_eq(parse(&c, "\n\n   \n\t\n# only comments\n", err, sizeof(err)), 0);
	config_free(&c);
	ck_assert_int_eq(parse(&c, "\xef\xbb\xbfport = 1\r\nmax_rooms = 2\r\nhost = h\r\n",
			       err, sizeof(err)), 0);
	ck_assert_uint_eq(c.port, 1);
	ck_assert_uint_eq(c.max_rooms, 2);
	ck_assert_str_eq(c.host, "h");
	config_free(&c);
	ck_assert_int_eq(parse(&c, "port = 3", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.port, 3);
	config_free(&c);
}
END_TEST

START_TEST(file_comments)
{
	struct config c;
	char err[256];
	const char *text =
		"   # indented comment\n"
		"#port = 1\n"
		"max_rooms = 9 # rooms\n"
		"host = ::1\t# tab before the hash\n"
		"origins = https://a.example/#frag # '#' after '/' is kept\n"
		"log_file =#x\n"
		"data_dir = /d#\n"
		/* found by fuzz_config: a bare value may start with '#' and hold '"' */
		"auth_secret_file =#\"a\"\t# c\n";
	ck_assert_int_eq(parse(&c, text, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.port, 8080);
	ck_assert_uint_eq(c.max_rooms, 9);
	ck_assert_str_eq(c.host, "::1");
	ck_assert_str_eq(c.origins, "https://a.example/#frag");
	ck_assert_str_eq(c.log_file, "#x");
	ck_assert_str_eq(c.data_dir, "/d#");
	ck_assert_str_eq(c.auth_secret_file, "#\"a\"");
	config_free(&c);
}
END_TEST

START_TEST(file_quotes)
{
	struct config c;
	char err[256];
	const char *text =
		"host = \"127.0.0.1\"\n"
		"data_dir = \"  /with blanks  \"   # kept inside the quotes\n"
		"origins = \"https://a #b\"\n"
		"log_file = \"x\"\t\n"
		"max_rooms = \"12\"\n"
		"auth_secret_file = a\"b\"\n";
	ck_assert_int_eq(parse(&c, text, err, sizeof(err)), 0);
	ck_assert_str_eq(c.host, "127.0.0.1");
	ck_assert_str_eq(c.data_dir, "  /with blanks  ");
	ck_assert_str_eq(c.origins, "https://a #b");
	ck_assert_str_eq(c.log_file, "x");
	ck_assert_uint_eq(c.max_rooms, 12);
	/* quotes count only around the whole value */
	ck_assert_str_eq(c.auth_secret_file, "a\"b\"");
	config_free(&c);
}
END_TEST

/* ---- errors, with their exact messages ---- */

START_TEST(file_unknown_key)
{
	ck_parse_fails("port = 1\nmax_room = 5\n", "t.conf:2: unknown key 'max_room'");
	ck_parse_fails("max-rooms = 5\n",
		       "t.conf:1: unknown key 'max-rooms' (keys use '_': max_rooms)");
	ck_parse_fails("MAX_ROOMS = 5\n", "t.conf:1: unknown key 'MAX_ROOMS'");
	ck_parse_fails("config = x\n", "t.conf:1: unknown key 'config'");
}
END_TEST

START_TEST(file_bad_values)
{
	ck_parse_fails("\n\nmax_rooms = abc\n",
		       "t.conf:3: max_rooms: value 'abc' must be a whole number");
	ck_parse_fails("port = -1\n", "t.conf:1: port: value '-1' must be a whole number");
	ck_parse_fails("port = +1\n", "t.conf:1: port: value '+1' must be a whole number");
	ck_parse_fails("port = 0x10\n", "t.conf:1: port: value '0x10' must be a whole number");
	ck_parse_fails("port = 1 2\n", "t.conf:1: port: value '1 2' must be a whole number");
	ck_parse_fails("port = 1.5\n", "t.conf:1: port: value '1.5' must be a whole number");
	ck_parse_fails("unix_socket_mode = 0989\n",
		       "t.conf:1: unix_socket_mode: value '0989' must be an octal number such as 0660");
	ck_parse_fails("port = \"\"\n", "t.conf:1: port: missing value");
	ck_parse_fails("host =\n", "t.conf:1: host: missing value");
	ck_parse_fails("host = # nothing\n", "t.conf:1: host: missing value");
	ck_parse_fails("host = \"x\n", "t.conf:1: host: missing closing quote");
	ck_parse_fails("host = \"x\"y\n", "t.conf:1: host: unexpected text after the closing quote");
	ck_parse_fails("host = \"x\"#y\n", "t.conf:1: host: unexpected text after the closing quote");
	/* a long value is cut in the message */
	ck_parse_fails("port = 1234567890123456789012345678901234567890123456789012345678901234567890\n",
		       "t.conf:1: port: value '123456789012345678901234567890123456789012345678901234567...' "
		       "is out of range (0 to 65535)");
	/* control characters are not echoed to the terminal */
	ck_parse_fails("port = a\x1b[2Jb\n", "t.conf:1: port: value 'a?[2Jb' must be a whole number");
}
END_TEST

START_TEST(file_out_of_range)
{
	ck_parse_fails("max_rooms = 0\n", "t.conf:1: max_rooms: value '0' is out of range (1 to 1048576)");
	ck_parse_fails("port = 65536\n", "t.conf:1: port: value '65536' is out of range (0 to 65535)");
	ck_parse_fails("retain_seconds = 4294967296\n",
		       "t.conf:1: retain_seconds: value '4294967296' is out of range (0 to 4294967295)");
	ck_parse_fails("port = 99999999999999999999999\n",
		       "t.conf:1: port: value '99999999999999999999999' is out of range (0 to 65535)");
	ck_parse_fails("unix_socket_mode = 01000\n",
		       "t.conf:1: unix_socket_mode: value '01000' is out of range (0 to 0777)");
	ck_parse_fails("no_tcp = 2\n", "t.conf:1: no_tcp: value '2' is out of range (0 to 1)");
}
END_TEST

/* history_cache_bytes and token_grace: defaults and both ends of their
 * ranges (docs/configuration.md). */
START_TEST(cache_budget_and_token_grace)
{
	struct config c;
	char err[256];

	config_defaults(&c);
	ck_assert_uint_eq(c.history_cache_bytes, 64u << 20);
	ck_assert_uint_eq(c.token_grace, 60);
	config_free(&c);
	ck_assert_int_eq(parse(&c, "history_cache_bytes = 0\ntoken_grace = 0\n", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.history_cache_bytes, 0);
	ck_assert_uint_eq(c.token_grace, 0);
	config_free(&c);
	ck_assert_int_eq(parse(&c, "history_cache_bytes = 4294967295\ntoken_grace = 86400\n", err,
			       sizeof(err)), 0);
	ck_assert_uint_eq(c.history_cache_bytes, 4294967295u);
	ck_assert_uint_eq(c.token_grace, 86400);
	config_free(&c);
	ck_parse_fails("token_grace = 86401\n",
		       "t.conf:1: token_grace: value '86401' is out of range (0 to 86400)");
	ck_parse_fails("history_cache_bytes = 4294967296\n",
		       "t.conf:1: history_cache_bytes: value '4294967296' is out of range (0 to 4294967295)");
}
END_TEST

START_TEST(file_duplicate_key)
{
	ck_parse_fails("port = 1\n# again:\nhost = h\nport = 1\n",
		       "t.conf:4: duplicate key 'port' (first set on line 1)");
}
END_TEST

START_TEST(file_missing_equals)
{
	ck_parse_fails("port 80\n", "t.conf:1: expected 'key = value', got 'port 80'");
	ck_parse_fails("\nmax_rooms # = 5\n", "t.conf:2: unknown key 'max_rooms #'");
	ck_parse_fails("= 5\n", "t.conf:1: missing key before '='");
	ck_parse_fails("  \t= 5\n", "t.conf:1: missing key before '='");
}
END_TEST

START_TEST(file_nul_byte)
{
	struct config c;
	char err[256];
	static const char text[] = "port = 1\nhost = a\0b\n";

	config_defaults(&c);
	ck_assert_int_eq(config_parse_text(&c, "t.conf", text, sizeof(text) - 1, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "t.conf:2: NUL byte in the line");
	config_free(&c);
}
END_TEST

START_TEST(file_missing)
{
	struct config c;
	char *out, *err;

	make_tmpdir();
	char path[300];
	snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", path, NULL), -1);
	char want[400];
	snprintf(want, sizeof(want), "parleyd: %s: cannot open: No such file or directory\n", path);
	ck_assert_str_eq(err, want);
	ck_assert_str_eq(out, "");
	free(out), free(err);
	config_free(&c);

	/* config_parse_file gives the same text without the prefix */
	char e[400];
	config_defaults(&c);
	ck_assert_int_eq(config_parse_file(&c, path, e, sizeof(e)), -1);
	want[strlen(want) - 1] = '\0';
	ck_assert_str_eq(e, want + strlen("parleyd: "));
	config_free(&c);
}
END_TEST

START_TEST(file_error_via_args)
{
	struct config c;
	char *out, *err, want[400];
	const char *p = write_file("bad.conf", "port = 1\n\nmax_room = 3\n");

	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--config", p, NULL), -1);
	snprintf(want, sizeof(want), "parleyd: %s:3: unknown key 'max_room'\n", p);
	ck_assert_str_eq(err, want);
	free(out), free(err);
	config_free(&c);
}
END_TEST

/* ---- flags and the file ---- */

START_TEST(flags_override_file)
{
	struct config c;
	char *out, *err;
	const char *p = write_file("a.conf", "port = 1111\nmax_rooms = 5\nhost = filehost\n");

	/* flag after -c */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", p, "--port", "2222", NULL), 0);
	ck_assert_uint_eq(c.port, 2222);
	ck_assert_uint_eq(c.max_rooms, 5);
	ck_assert_str_eq(c.host, "filehost");
	free(out), free(err);
	config_free(&c);

	/* flag before -c: still wins */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-p", "3333", "--host=flaghost",
				  "--config=", NULL), -1);   /* empty name: cannot open */
	free(out), free(err);
	config_free(&c);
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-p", "3333", "--host=flaghost",
				  "--max_rooms", "6", "--config", p, NULL), 0);
	ck_assert_uint_eq(c.port, 3333);
	ck_assert_str_eq(c.host, "flaghost");
	ck_assert_uint_eq(c.max_rooms, 6);
	ck_assert_str_eq(err, "");
	free(out), free(err);
	config_free(&c);

	/* --config=FILE form */
	char eq[300];
	snprintf(eq, sizeof(eq), "--config=%s", p);
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--max-rooms=8", eq, NULL), 0);
	ck_assert_uint_eq(c.port, 1111);
	ck_assert_uint_eq(c.max_rooms, 8);
	free(out), free(err);
	config_free(&c);
}
END_TEST

START_TEST(flags_value_like_option)
{
	struct config c;
	char *out, *err;

	/* "-c" as the value of another flag is that flag's value */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--data-dir", "-c", NULL), 0);
	ck_assert_str_eq(c.data_dir, "-c");
	free(out), free(err);
	config_free(&c);
}
END_TEST

START_TEST(flags_config_errors)
{
	struct config c;
	char *out, *err;
	const char *p = write_file("a.conf", "port = 1\n");

	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", NULL), -1);
	ck_assert_str_eq(err, "parleyd: option '-c' needs a value\n");
	free(out), free(err);
	config_free(&c);

	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", p, "-c", p, NULL), -1);
	ck_assert_str_eq(err, "parleyd: only one configuration file (-c) may be given\n");
	free(out), free(err);
	config_free(&c);

	/* a bad flag value after a good file */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", p, "--max-rooms", "0", NULL), -1);
	ck_assert_str_eq(err, "parleyd: option '--max-rooms': value '0' is out of range (1 to 1048576)\n");
	free(out), free(err);
	config_free(&c);
}
END_TEST

START_TEST(help_mentions_config)
{
	struct config c;
	char *out, *err;

	/* help wins even over a file that does not exist */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", "/nonexistent/x.conf", "--help", NULL), 1);
	ck_assert_ptr_nonnull(strstr(out, "-c, --config FILE"));
	ck_assert_ptr_nonnull(strstr(out, "--check-config"));
	ck_assert_ptr_nonnull(strstr(out, "--max-rooms N"));
	ck_assert_str_eq(err, "");
	free(out), free(err);
	config_free(&c);
}
END_TEST

/* ---- --check-config ---- */

START_TEST(check_config_ok)
{
	struct config c;
	char *out, *err, want[400];
	const char *p = write_file("ok.conf", "port = 1\nping_interval = 5\nping_timeout = 10\n");

	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--check-config", "-c", p, NULL), 1);
	snprintf(want, sizeof(want), "parleyd: %s: ok\n", p);
	ck_assert_str_eq(out, want);
	ck_assert_str_eq(err, "");
	free(out), free(err);
	config_free(&c);

	/* without a file it checks the flags */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--check-config", "--port", "5", NULL), 1);
	ck_assert_str_eq(out, "parleyd: command line: ok\n");
	free(out), free(err);
	config_free(&c);
}
END_TEST

START_TEST(check_config_fails)
{
	struct config c;
	char *out, *err, want[400];
	/* each line is fine alone; together they fail config_validate */
	const char *p = write_file("rel.conf", "ping_interval = 30\nping_timeout = 30\n");

	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "-c", p, "--check-config", NULL), -1);
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "parleyd: ping_timeout (30) must be greater than ping_interval (30)\n");
	free(out), free(err);
	config_free(&c);

	/* ... and a flag can repair it */
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--ping-timeout", "31", "-c", p, "--check-config",
				  NULL), 1);
	free(out), free(err);
	config_free(&c);

	p = write_file("bad.conf", "port = x\n");
	config_defaults(&c);
	ck_assert_int_eq(run_args(&c, &out, &err, "--check-config", "-c", p, NULL), -1);
	snprintf(want, sizeof(want), "parleyd: %s:1: port: value 'x' must be a whole number\n", p);
	ck_assert_str_eq(err, want);
	ck_assert_str_eq(out, "");
	free(out), free(err);
	config_free(&c);
}
END_TEST

#ifdef PARLEYD
/* Runs the real parleyd with args; returns its exit status. */
static int run_parleyd(const char *a1, const char *a2, const char *a3)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(PARLEYD, PARLEYD, a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(check_config_exit_status)
{
	const char *good = write_file("good.conf", "max_rooms = 3\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", good), 0);
	const char *bad = write_file("bad.conf", "max_rooms = 0\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", bad), 2);
	/* without --check-config a bad file also refuses to start */
	ck_assert_int_eq(run_parleyd("-c", bad, "--port=0"), 2);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", "/nonexistent/parley.conf"), 2);
}
END_TEST

/* The cluster keys (docs/cluster.md): the address is checked, a password
 * on the command line is refused (the file may hold it), and the limits
 * that must fit together are checked, at and one past the edge. */
START_TEST(cluster_settings)
{
	const char *ok = write_file("c1.conf", "cluster = redis://127.0.0.1:6379/2\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", ok), 0);
	const char *pw = write_file("c2.conf", "cluster = redis://:secret@127.0.0.1:6379\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", pw), 0);
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster",
				     "redis://:secret@127.0.0.1:6379"), 2);
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster", "unix:/run/redis.sock?db=3"), 0);
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster", "rediss://127.0.0.1:6379"), 0);
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster", "redis://127.0.0.1"), 2);
	const char *edge = write_file("c3.conf", "cluster = redis://127.0.0.1:6379\n"
				      "store_queue_messages = 1000\ncluster_pending_max = 1000\n"
				      "cluster_read_count = 250\ncluster_log_window = 1000\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", edge), 0);
	const char *over = write_file("c4.conf", "cluster = redis://127.0.0.1:6379\n"
				      "store_queue_messages = 1000\ncluster_pending_max = 1001\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", over), 2);
	const char *win = write_file("c5.conf", "cluster = redis://127.0.0.1:6379\n"
				     "cluster_read_count = 251\ncluster_log_window = 1000\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", win), 2);
	const char *hold = write_file("c6.conf", "cluster = redis://127.0.0.1:6379\n"
				      "cluster_timeout_ms = 3001\ncluster_hold_ms = 3000\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", hold), 2);
	const char *both = write_file("c7.conf", "cluster = redis://:x@127.0.0.1:6379\n"
				      "cluster_password_file = /etc/parley/redis.pass\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", both), 2);
	const char *alone = write_file("c8.conf", "cluster_password_file = /etc/parley/redis.pass\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", alone), 2);
	/* the tail's read pause: 0 (off) and 100000 at the edges, one past refused */
	const char *d0 = write_file("c9.conf", "cluster = redis://127.0.0.1:6379\n"
				    "cluster_read_delay_us = 0\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", d0), 0);
	const char *dmax = write_file("c10.conf", "cluster = redis://127.0.0.1:6379\n"
				      "cluster_read_delay_us = 100000\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", dmax), 0);
	const char *dover = write_file("c11.conf", "cluster = redis://127.0.0.1:6379\n"
				       "cluster_read_delay_us = 100001\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", dover), 2);
}
END_TEST

/* The cluster_tls_* options (docs/cluster.md, "TLS"): with rediss:// only,
 * a certificate with its key, a server name of 1 to 253 bytes. */
START_TEST(cluster_tls_settings)
{
	static const char tls[] = "cluster = rediss://127.0.0.1:6380\n";
	char buf[600];
#define CONF(name, extra) (snprintf(buf, sizeof(buf), "%s%s", tls, extra), write_file(name, buf))
	/* each alone, and all four together */
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t1.conf", "cluster_tls_ca = /etc/ca.pem\n")), 0);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t2.conf",
		"cluster_tls_server_name = redis.example\n")), 0);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t3.conf",
		"cluster_tls_ca = /c\ncluster_tls_cert = /a\ncluster_tls_key = /b\n"
		"cluster_tls_server_name = r\n")), 0);
	/* a certificate without its key, and a key without its certificate */
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t4.conf", "cluster_tls_cert = /a\n")), 2);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t5.conf", "cluster_tls_key = /b\n")), 2);
	/* the server name: 253 bytes pass, 254 do not, empty does not */
	char name[260];
	memset(name, 'a', 254);
	name[253] = '\0';
	char extra[300];
	snprintf(extra, sizeof(extra), "cluster_tls_server_name = %s\n", name);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t6.conf", extra)), 0);
	name[253] = 'a';
	name[254] = '\0';
	snprintf(extra, sizeof(extra), "cluster_tls_server_name = %s\n", name);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t7.conf", extra)), 2);
	ck_assert_int_eq(run_parleyd("--check-config", "-c", CONF("t8.conf", "cluster_tls_server_name = \n")), 2);
#undef CONF
	/* TLS options without rediss://: with redis://, with unix:, without a cluster */
	const char *plain = write_file("t9.conf", "cluster = redis://127.0.0.1:6379\ncluster_tls_ca = /c\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", plain), 2);
	const char *unx = write_file("t10.conf", "cluster = unix:/run/r.sock\ncluster_tls_server_name = r\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", unx), 2);
	const char *none = write_file("t11.conf", "cluster_tls_cert = /a\ncluster_tls_key = /b\n");
	ck_assert_int_eq(run_parleyd("--check-config", "-c", none), 2);
	/* the command-line flags are the same options */
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster-tls-ca=/c", "--cluster=rediss://h:1"), 0);
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster-tls-ca=/c", "--cluster=redis://h:1"), 2);
	ck_assert_int_eq(run_parleyd("--check-config", "--cluster-tls-cert=/a", "--cluster=rediss://h:1"), 2);
}
END_TEST
#endif

/* ---- accessors and deploy/parley.conf ---- */

START_TEST(accessors)
{
	struct config c;
	char buf[32];
	size_t n = 0;

	while (config_key(n))
		n++;
	ck_assert_uint_ge(n, 30);
	config_defaults(&c);
	ck_assert_str_eq(config_value(&c, "port", buf, sizeof(buf)), "8080");
	ck_assert_str_eq(config_value(&c, "unix_socket_mode", buf, sizeof(buf)), "0660");
	ck_assert_str_eq(config_value(&c, "log_level", buf, sizeof(buf)), "info");
	ck_assert_ptr_null(config_value(&c, "host", buf, sizeof(buf)));
	ck_assert_ptr_null(config_value(&c, "no_such_key", buf, sizeof(buf)));
	config_free(&c);
}
END_TEST

START_TEST(deploy_conf_parses)
{
	struct config c;
	char err[512];

	config_defaults(&c);
	ck_assert_msg(config_parse_file(&c, DEPLOY_DIR "/parley.conf", err, sizeof(err)) == 0,
		      "%s", err);
	config_free(&c);
}
END_TEST

/* Every key appears as a "#key = value" line; the value is the default for
 * keys that have one (web_root's depends on the install prefix), and the
 * file still parses with every such line uncommented. */
START_TEST(deploy_conf_lists_every_key)
{
	char *text = slurp(DEPLOY_DIR "/parley.conf");
	char *uncommented = calloc(1, strlen(text) + 1), *u = uncommented;
	struct config def, c;
	char buf[32], err[512];

	/* uncomment "#key = value" lines */
	for (char *l = text; *l;) {
		char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
		if (l[0] == '#' && l[1] >= 'a' && l[1] <= 'z')
			memcpy(u, l + 1, n - 1), u += n - 1;
		l += n;
	}
	*u = '\0';
	config_defaults(&c);
	ck_assert_msg(config_parse_text(&c, "uncommented", uncommented, strlen(uncommented),
					err, sizeof(err)) == 0, "%s", err);
	config_free(&c);

	config_defaults(&def);
	for (size_t i = 0; config_key(i); i++) {
		const char *k = config_key(i);
		char pat[80];
		snprintf(pat, sizeof(pat), "\n#%s = ", k);
		char *hit = strstr(text, pat);
		ck_assert_msg(hit != NULL, "deploy/parley.conf lacks \"#%s = ...\"", k);
		const char *d = config_value(&def, k, buf, sizeof(buf));
		if (!d || !strcmp(k, "web_root"))
			continue;
		char *v = hit + strlen(pat), *e = strchr(v, '\n');
		ck_assert_msg(strlen(d) == (size_t)(e - v) && !memcmp(v, d, strlen(d)),
			      "deploy/parley.conf: %s should show the default %s", k, d);
	}
	config_free(&def);
	free(uncommented);
	free(text);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("file");
	tcase_add_checked_fixture(tc, NULL, rm_tmpdir);
	tcase_add_test(tc, file_good);
	tcase_add_test(tc, file_empty_crlf_bom_no_final_newline);
	tcase_add_test(tc, file_comments);
	tcase_add_test(tc, file_quotes);
	tcase_add_test(tc, file_unknown_key);
	tcase_add_test(tc, file_bad_values);
	tcase_add_test(tc, file_out_of_range);
	tcase_add_test(tc, cache_budget_and_token_grace);
	tcase_add_test(tc, file_duplicate_key);
	tcase_add_test(tc, file_missing_equals);
	tcase_add_test(tc, file_nul_byte);
	tcase_add_test(tc, file_missing);
	tcase_add_test(tc, file_error_via_args);
	suite_add_tcase(s, tc);
	tc = tcase_create("args");
	tcase_add_checked_fixture(tc, NULL, rm_tmpdir);
	tcase_add_test(tc, flags_override_file);
	tcase_add_test(tc, flags_value_like_option);
	tcase_add_test(tc, flags_config_errors);
	tcase_add_test(tc, help_mentions_config);
	tcase_add_test(tc, check_config_ok);
	tcase_add_test(tc, check_config_fails);
#ifdef PARLEYD
	tcase_add_test(tc, check_config_exit_status);
	tcase_add_test(tc, cluster_settings);
	tcase_add_test(tc, cluster_tls_settings);
#endif
	suite_add_tcase(s, tc);
	tc = tcase_create("deploy");
	tcase_add_checked_fixture(tc, NULL, rm_tmpdir);
	tcase_add_test(tc, accessors);
	tcase_add_test(tc, deploy_conf_parses);
	tcase_add_test(tc, deploy_conf_lists_every_key);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
