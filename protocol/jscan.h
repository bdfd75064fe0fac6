/*
 * jscan.h - a validating JSON scanner for command frames (jscan_ prefix).
 *
 * One pass over the text, no allocation, no tree: it checks the whole frame
 * against RFC 8259 and records the span of each top-level member's value.
 * The command decoder needs a few small fields (type, id, room, ...) and
 * forwards `data` as the text it was sent in, so building a tree (jansson)
 * would be wasted work: on a small publish it cost ten times the rest of
 * the loop's work per message.
 *
 * Bounds: nesting depth, object members in all, top-level members.
 */
#ifndef PARLEY_JSCAN_H
#define PARLEY_JSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum jtype { JT_NONE, JT_OBJECT, JT_ARRAY, JT_STRING, JT_NUMBER, JT_TRUE, JT_FALSE, JT_NULL };

/* A value: its type and its text (strings include their quotes). */
struct jval {
	enum jtype type;
	const char *p;
	size_t n;
};

#define JSCAN_TOP_MAX 64   /* members of the top-level object */

struct jtop {
	size_t count;
	struct {
		char key[24];     /* unescaped, its first 8 bytes zero-padded; longer
				   * keys are kept as "" (never looked up) */
		struct jval val;
		/* 1 if the scan skipped white space inside the value (outside
		 * its strings): its text is not compact as it stands, and a
		 * caller that wants it compact must copy it with
		 * pbuf_add_json_compact, not as it is */
		unsigned char spaced;
	} m[JSCAN_TOP_MAX];
};

enum jscan_err {
	JSCAN_OK = 0,
	JSCAN_SYNTAX,         /* not JSON */
	JSCAN_NOT_OBJECT,     /* the text is not an object */
	JSCAN_DUPLICATE,      /* a top-level key twice */
	JSCAN_DEPTH,          /* nested deeper than max_depth */
	JSCAN_KEYS,           /* more than max_keys members in all */
	JSCAN_TOP,            /* more than JSCAN_TOP_MAX top-level members */
};

/* Scans text[0..n) which must be one JSON object, in UTF-8 (checked). On
 * JSCAN_OK, top holds its members. On failure *pos is the byte offset of
 * the problem and *why a static description. */
enum jscan_err jscan_object(const char *text, size_t n, unsigned max_depth, unsigned max_keys,
				struct jtop *top, size_t *pos, const char **why);

/* Scans text[0..n) as one JSON value of any type (Socket.IO payloads are
 * arrays, strings or objects), with the same checks and bounds as
 * jscan_object. On JSCAN_OK, *out spans the value without the white space
 * around it. */
enum jscan_err jscan_value(const char *text, size_t n, unsigned max_depth, unsigned max_keys,
			   struct jval *out, size_t *pos, const char **why);

/* The value of the top-level member named key, or NULL. */
const struct jval *jscan_get_slow(const struct jtop *top, const char *key);
static inline const struct jval *jscan_get(const struct jtop *top, const char *key)
{
	/* Decoders ask for a handful of short fields by literal name, several
	 * per command: inlined, a name of 1 to 7 bytes becomes one 8-byte
	 * constant compared with each member's zero-padded first 8 bytes. */
	size_t kl = strlen(key);
	if (kl == 0 || kl >= 8)
		return jscan_get_slow(top, key);
	uint64_t w = 0, t;
	memcpy(&w, key, kl);
	for (size_t i = 0; i < top->count; i++) {
		memcpy(&t, top->m[i].key, 8);
		if (t == w)
			return &top->m[i].val;
	}
	return NULL;
}

/* The spaced flag of a member value v that jscan_get(top, ...) returned. */
static inline int jscan_spaced(const struct jtop *top, const struct jval *v)
{
	size_t i = (size_t)((const char *)v - (const char *)&top->m[0].val) / sizeof(top->m[0]);
	return top->m[i].spaced;
}

/* Unescapes a string value into out (cap bytes, NUL-terminated); *len
 * gets its length (it may contain NUL bytes from \u0000). Returns 0, or -1
 * if it does not fit. Surrogate pairs become one UTF-8 character (the
 * scanner refuses lone surrogates). */
int jscan_string(const struct jval *v, char *out, size_t cap, size_t *len);

/* An integer value in [0, 2^64): 0 with *out set, or -1 for a negative,
 * fractional or exponent number, one too large, or another type. */
int jscan_uint(const struct jval *v, uint64_t *out);

#endif
