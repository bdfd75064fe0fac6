/*
 * log.h - one logfmt line per event on stderr:
 *   ts=2026-11-26T13:00:00.123Z level=info msg=listening host=* port=8080
 * The fields after msg are written by the caller as "key=value" pairs; use
 * log_q() for values that may contain spaces or quotes.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;

int log_parse_level(const char *s, enum log_level *out);
/* Logs go to path (appended) instead of stderr. Returns 0 or -1. */
int log_open(const char *path);
/* Reopens the log file (after logrotate moved it); 0 without one. */
int log_reopen(void);
void log_event(enum log_level lvl, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Quotes s for a logfmt value into a static rotating buffer. */
const char *log_q(const char *s);

#define log_debug(msg, ...) do { if (log_min_level <= LOG_DEBUG) log_event(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...)  log_event(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_event(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_event(LOG_ERROR, msg, __VA_ARGS__)

#endif
