/*
 * api_keys.c - the HTTP API's bearer keys (api.h).
 *
 * The file holds one "name key" per line; '#' starts a comment, blank lines
 * are skipped. Several keys may be live at once: to rotate, add the new
 * key, reload (SIGHUP), move the backends over, remove the old key, reload.
 *
 * A presented key is compared with every configured key, each with
 * CRYPTO_memcmp over the same length (the key is padded into a fixed
 * buffer), and the loop never stops early: the time taken does not tell
 * which key, or how much of one, matched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "util.h"

#define KEY_MIN 16        /* bytes: shorter keys are refused at load */
#define KEY_MAX 256
#define NAME_MAX_LEN 32  /* a display name: the default `from` */
#define KEYS_MAX 64

struct api_key {
	char name[NAME_MAX_LEN + 1];
	unsigned char key[KEY_MAX];
	size_t len;
};

struct api_keys {
	int n;
	struct api_key k[KEYS_MAX];
};

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f)
			return 0;
	}
	return 1;
}

int api_keys_load(struct api_keys **out, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;

	*out = NULL;
	if (!f) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return -1;
	}
	struct api_keys *ks = xcalloc(1, sizeof(*ks));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "line %d: too long", lineno);
			goto fail;
		}
		char *p = line, *name, *key;
		char *hash = strchr(p, '#');
		if (hash)
			*hash = '\0';
		name = strtok(p, " \t\r\n");
		if (!name)
			continue;
		key = strtok(NULL, " \t\r\n");
		if (!key || strtok(NULL, " \t\r\n")) {
			snprintf(err, errlen, "line %d: expected \"NAME KEY\"", lineno);
			goto fail;
		}
		if (!name_ok(name, strlen(name))) {
			snprintf(err, errlen, "line %d: names are 1-%d printable characters", lineno,
				 NAME_MAX_LEN);
			goto fail;
		}
		size_t klen = strlen(key);
		if (klen < KEY_MIN || klen > KEY_MAX) {
			snprintf(err, errlen, "line %d: keys are %d to %d bytes", lineno, KEY_MIN, KEY_MAX);
			goto fail;
		}
		for (int i = 0; i < ks->n; i++)
			if (!strcmp(ks->k[i].name, name)) {
				snprintf(err, errlen, "line %d: key name \"%s\" twice", lineno, name);
				goto fail;
			}
		if (ks->n == KEYS_MAX) {
			snprintf(err, errlen, "line %d: more than %d keys", lineno, KEYS_MAX);
			goto fail;
		}
		struct api_key *k = &ks->k[ks->n++];
		memcpy(k->name, name, strlen(name) + 1);
		memcpy(k->key, key, klen);
		k->len = klen;
	}
	fclose(f);
	OPENSSL_cleanse(line, sizeof(line));
	*out = ks;
	return 0;
fail:
	fclose(f);
	OPENSSL_cleanse(line, sizeof(line));
	api_keys_free(&ks);
	return -1;
}

void api_keys_free(struct api_keys **k)
{
	if (!*k)
		return;
	OPENSSL_cleanse(*k, sizeof(**k));
	free(*k);
	*k = NULL;
}

int api_keys_count(const struct api_keys *k)
{
	return k ? k->n : 0;
}

const char *api_keys_check(const struct api_keys *k, const char *key, size_t len)
{
	unsigned char pad[KEY_MAX];
	const char *found = NULL;

	if (!k || len == 0 || len > KEY_MAX)
		return NULL;
	memset(pad, 0, sizeof(pad));
	memcpy(pad, key, len);
	for (int i = 0; i < k->n; i++) {
		/* Whole buffers, same length every time; the length check is
		 * folded in without a branch on the bytes. */
		int diff = CRYPTO_memcmp(pad, k->k[i].key, KEY_MAX) | (k->k[i].len != len);
		if (!diff && !found)
			found = k->k[i].name;
	}
	OPENSSL_cleanse(pad, sizeof(pad));
	return found;
}
