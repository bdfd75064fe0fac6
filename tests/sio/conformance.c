/*
 * conformance.c - parley-sio-conformance: parleyd's Engine.IO/Socket.IO edge
 * (server/sio/, protocol/sio/) set up as the server the public Socket.IO
 * protocol test suite (socket.io-protocol, test-suite/) expects:
 *
 *   port 3000, pingInterval 300, pingTimeout 200, maxPayload 1000000,
 *   connectTimeout 1000; on connection it emits "auth" with the handshake
 *   auth; "message" is echoed as "message-back"; "message-with-ack" is
 *   acked with its arguments; a "/custom" namespace.
 *
 * Test-only (built by meson, not installed). Any parleyd flag may follow to
 * override (e.g. --port 0 for tests, --data-dir: storage is opened but
 * unused; the default is a fresh directory under /tmp).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "sio/sio_edge.h"
#include "util.h"

static void set(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrndup(v, strlen(v)) : NULL;
}

int main(int argc, char **argv)
{
	struct config cfg;
	char dir[] = "/tmp/parley-sio-conformance-XXXXXX";
	int rc;

	config_defaults(&cfg);
	cfg.port = 3000;
	cfg.sio_ping_interval = 300;
	cfg.sio_ping_timeout = 200;
	cfg.sio_max_payload = 1000000;
	cfg.sio_connect_timeout = 1000;
	cfg.sio_recovery = 0;
	set(&cfg.admin_listen, "off");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	set(&cfg.data_dir, dir);
	rc = config_parse_args(&cfg, argc, argv);
	if (rc == 0 && config_validate(&cfg) < 0)
		rc = -1;
	if (rc != 0) {
		config_free(&cfg);
		return rc > 0 ? 0 : 2;
	}
	log_parse_level(cfg.log_level, &log_min_level);
	sio_edge_conformance();
	rc = server_run(&cfg);
	config_free(&cfg);
	return rc;
}
