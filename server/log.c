/* log.c - logfmt lines on stderr (log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum log_level log_min_level = LOG_INFO;

static FILE *log_fp;          /* NULL: stderr */
static char *log_path;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_event(enum log_level lvl, const char *msg, const char *fmt, ...)
{
	char line[1024], tbuf[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl < log_min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s msg=%s", tbuf,
		     ts.tv_nsec / 1000000, level_names[lvl], msg);
	if (fmt && *fmt && n < (int)sizeof(line) - 2) {
		line[n++] = ' ';
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		n = m < 0 ? n : n + m;
	}
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, log_fp ? log_fp : stderr);
}

int log_open(const char *path)
{
	FILE *f = fopen(path, "a");
	if (!f)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_fp)
		fclose(log_fp);
	log_fp = f;
	if (path != log_path) {
		free(log_path);
		log_path = strdup(path);
	}
	return 0;
}

int log_reopen(void)
{
	return log_path ? log_open(log_path) : 0;
}

const char *log_q(const char *s)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ & 3], *o = b;

	*o++ = '"';
	for (; *s && o < b + sizeof(bufs[0]) - 3; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			*o++ = '\\';
		*o++ = c < 0x20 ? '?' : (char)c;
	}
	*o++ = '"';
	*o = '\0';
	return b;
}
