/*
 * fuzz_config.c - libFuzzer harness for the configuration file parser:
 * bytes go into config_parse_text() as the contents of "fuzz.conf".
 *
 * Invariants checked (abort() on violation):
 *  - a failure leaves a NUL-terminated message "fuzz.conf:LINE: ..." that
 *    fits the buffer;
 *  - a success round-trips: writing every setting back out as key = value
 *    (quoted unless the value holds a '"') and parsing that gives the same
 *    settings.
 *
 * Also built without libFuzzer by tests/unit/meson.build (with replay.c) to
 * replay the seed corpus as a regression test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_config: invariant failed: %s (line %d)\n", #cond, __LINE__); \
	abort(); } } while (0)

/* Appends "key = value\n" lines for every set setting of c to a malloc'd
 * string; returns it and its length. */
static char *write_back(const struct config *c, size_t *len)
{
	size_t cap = 256, n = 0;
	char *out = malloc(cap), buf[32];

	CHECK(out != NULL);
	for (size_t i = 0; config_key(i); i++) {
		const char *k = config_key(i), *v = config_value(c, k, buf, sizeof(buf));
		if (!v)
			continue;
		/* A value holding '"' was not quoted (a quoted one cannot
		 * hold '"'), so it has no " #" and no outer blanks: write it
		 * bare, and right after '=' in case it starts with '#'. */
		int bare = strchr(v, '"') != NULL;
		size_t need = strlen(k) + strlen(v) + 8;
		while (cap - n < need)
			out = realloc(out, cap *= 2);
		CHECK(out != NULL);
		n += (size_t)sprintf(out + n, bare ? "%s =%s\n" : "%s = \"%s\"\n", k, v);
	}
	*len = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c, d;
	char err[256], buf1[32], buf2[32];

	config_defaults(&c);
	memset(err, 'X', sizeof(err));
	if (config_parse_text(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err)) < 0) {
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(strncmp(err, "fuzz.conf:", 10) == 0);
		config_free(&c);
		return 0;
	}

	size_t len;
	char *text = write_back(&c, &len);
	config_defaults(&d);
	if (config_parse_text(&d, "again.conf", text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_config: written-back file fails: %s\n%s", err, text);
		abort();
	}
	for (size_t i = 0; config_key(i); i++) {
		const char *k = config_key(i);
		const char *a = config_value(&c, k, buf1, sizeof(buf1));
		const char *b = config_value(&d, k, buf2, sizeof(buf2));
		if (!a != !b || (a && strcmp(a, b))) {
			fprintf(stderr, "fuzz_config: %s changed on the round trip: '%s' -> '%s'\n",
				k, a ? a : "(unset)", b ? b : "(unset)");
			abort();
		}
	}
	free(text);
	config_free(&d);
	config_free(&c);
	return 0;
}
