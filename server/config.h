/*
 * config.h - parleyd settings: defaults, the option table, command-line
 * parsing. Every setting is one row of the table in config.c, which gives
 * its key (also its --flag, with '-' for '_'), type, range and help text.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdint.h>
#include <stdio.h>

struct config {
	char *host;                  /* NULL: all interfaces */
	uint32_t port;
	char *data_dir;
	char *web_root;
	uint32_t max_message_size;
	uint32_t send_queue_messages;
	uint32_t send_queue_bytes;
	uint32_t max_rooms;
	uint32_t presence_window_ms;
	uint32_t ping_interval;
	uint32_t ping_timeout;
	uint32_t history_cache;
	uint32_t flush_interval_ms;
	uint32_t store_queue_messages;
	uint32_t store_queue_bytes;
	uint32_t retain_messages;
	uint32_t retain_seconds;
	uint32_t drain_timeout;
	char *log_level;
};

void config_defaults(struct config *c);
void config_free(struct config *c);

/* Parses argv. Returns 0 to run, 1 when --help/--version was handled (exit
 * 0), or -1 after printing an error to stderr (exit 2). */
int config_parse_args(struct config *c, int argc, char **argv);
/* Checks relations between settings; -1 after printing an error. */
int config_validate(const struct config *c);
void config_usage(FILE *f);

#endif
