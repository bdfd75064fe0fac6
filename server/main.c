/* main.c - parleyd entry point: settings, then the server. */
#include <stdio.h>

#include "config.h"
#include "hash.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
	struct config cfg;
	int rc;

	config_defaults(&cfg);
	rc = config_parse_args(&cfg, argc, argv);
	if (rc == 0 && config_validate(&cfg) < 0)
		rc = -1;
	if (rc != 0) {
		config_free(&cfg);
		return rc > 0 ? 0 : 2;
	}
	log_parse_level(cfg.log_level, &log_min_level);
	if (cfg.log_file && log_open(cfg.log_file) < 0) {
		perror(cfg.log_file);
		config_free(&cfg);
		return 2;
	}
	/* Before any table holds a name: the key of every client-chosen
	 * name's hash (hash flooding, see common/hash.h). */
	if (hash_seed_random() < 0) {
		perror("parleyd: getrandom");
		config_free(&cfg);
		return 2;
	}
	rc = server_run(&cfg);
	config_free(&cfg);
	return rc;
}
