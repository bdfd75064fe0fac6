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

#define JSCAN_GAPS 8       /* runs of white space whose place is kept */

struct jtop {
	size_t count;
	struct {
		char key[24];     /* unescaped, its first 8 bytes zero-padded; longer
				   * keys are kept as "" (never looked up) */
		struct jval val;
		/* The runs of white space the scan skipped inside the value
		 * (outside its strings): gap[gap0 .. gap0 + ngap) when that is
		 * within JSCAN_GAPS. With none the text is compact as it
		 * stands; with its gaps known a compact copy is the text
		 * between them (jscan_gaps), otherwise pbuf_add_json_compact. */
		uint32_t gap0, ngap;
	} m[JSCAN_TOP_MAX];
	/* the first JSCAN_GAPS runs of white space in the text, in order:
	 * offset from its start and length */
	struct { uint32_t at, len; } gap[JSCAN_GAPS];
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

/* For a member value v that jscan_get(top, ...) returned: how many runs of
 * white space it holds (0: its text is compact), and if they are at most
 * max and known, their places, as offsets from v->p, in at[] and len[].
 * Returns the count, or -1 when it is more than max or not kept. */
static inline int jscan_gaps(const struct jtop *top, const struct jval *v, const char *text,
			     uint32_t *at, uint32_t *len, unsigned max)
{
	size_t i = (size_t)((const char *)v - (const char *)&top->m[0].val) / sizeof(top->m[0]);
	uint32_t g0 = top->m[i].gap0, n = top->m[i].ngap;

	if (n == 0)
		return 0;
	if (n > max || g0 + n > JSCAN_GAPS)
		return -1;
	for (uint32_t k = 0; k < n; k++) {
		at[k] = top->gap[g0 + k].at - (uint32_t)(v->p - text);
		len[k] = top->gap[g0 + k].len;
	}
	return (int)n;
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
