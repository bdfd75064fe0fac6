/* jscan.c - validating one-pass JSON scanner (jscan.h). */
#include "jscan.h"
#include "utf8.h"

#include <string.h>

struct scan {
	const char *p;
	size_t n, i;
	unsigned depth, max_depth;
	unsigned keys, max_keys;
	enum jscan_err err;
	const char *why;
	unsigned spaces;  /* runs of white space skipped so far (jtop's gaps) */
	struct jtop *top; /* where the first JSCAN_GAPS runs go, or NULL */
	int esc;          /* the last string scanned held a backslash escape */
};

static int fail(struct scan *s, enum jscan_err e, const char *why)
{
	if (!s->err) {
		s->err = e;
		s->why = why;
	}
	return -1;
}

static void ws_run(struct scan *s)
{
	size_t start = s->i;

	/* runs of spaces (indentation, padding) eight at a time */
	while (s->n - s->i >= 8 && !memcmp(s->p + s->i, "        ", 8))
		s->i += 8;
	while (s->i < s->n) {
		char c = s->p[s->i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		s->i++;
	}
	if (s->i != start) {
		if (s->top && s->spaces < JSCAN_GAPS) {
			s->top->gap[s->spaces].at = (uint32_t)start;
			s->top->gap[s->spaces].len = (uint32_t)(s->i - start);
		}
		s->spaces++;
	}
}

/* Skips white space. Called between every two tokens, and mostly there
 * is none: a byte above ' ' ends it at once. */
static inline void ws(struct scan *s)
{
	if (s->i < s->n && (unsigned char)s->p[s->i] > ' ')
		return;
	ws_run(s);
}

/*
 * Nonzero if any of the 8 bytes in w (loaded little-endian) needs a look
 * inside a string: '"', '\\', a control character or a byte above 0x7F.
 * The lowest set bit marks the first such byte exactly: the borrows of
 * the subtractions only spread upwards from a byte that is itself one.
 */
static inline uint64_t str_special8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

	return (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Inside a string, at s->i, after plain ASCII only: the rest of it,
 * checking escapes, control characters and UTF-8 (string() below takes
 * the plain start). */
static __attribute__((noinline)) int string_rest(struct scan *s)
{
	/* Bytes above 0x7F are legal only inside strings (anywhere else
	 * they are a syntax error), so UTF-8 is checked here, and only for
	 * them: ASCII text costs nothing extra. */
	struct utf8_state u8 = { 0 };

	while (s->i < s->n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		/* Plain ASCII, the bulk of most strings, eight bytes a step:
		 * only a byte str_special8 marks takes the checks below. */
		if (!u8.need) {
			uint64_t w, m = 0;
			while (s->n - s->i >= 8) {
				memcpy(&w, s->p + s->i, 8);
				if ((m = str_special8(w)) != 0)
					break;
				s->i += 8;
			}
			if (m)
				s->i += (size_t)__builtin_ctzll(m) / 8;
			else if (s->i >= s->n)
				break;
		}
#endif
		unsigned char c = (unsigned char)s->p[s->i];
		if (c >= 0x80) {
			if (utf8_feed(&u8, &c, 1) < 0)
				return fail(s, JSCAN_SYNTAX, "invalid UTF-8 in a string");
			s->i++;
			continue;
		}
		if (u8.need)
			return fail(s, JSCAN_SYNTAX, "invalid UTF-8 in a string");
		if (c == '"') {
			s->i++;
			return 0;
		}
		if (c < 0x20)
			return fail(s, JSCAN_SYNTAX, "control character in a string");
		if (c != '\\') {
			s->i++;
			continue;
		}
		if (s->i + 1 >= s->n)
			break;
		s->esc = 1;
		switch (s->p[s->i + 1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			s->i += 2;
			break;
		case 'u': {
			unsigned long cp = 0;
			if (s->i + 5 >= s->n)
				return fail(s, JSCAN_SYNTAX, "truncated \\u escape");
			for (int k = 2; k < 6; k++) {
				int h = hexval(s->p[s->i + (size_t)k]);
				if (h < 0)
					return fail(s, JSCAN_SYNTAX, "bad \\u escape");
				cp = cp << 4 | (unsigned long)h;
			}
			s->i += 6;
			/* UTF-16 surrogates only in pairs: a lone one has no
			 * character to stand for (jansson refuses it too). */
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(s, JSCAN_SYNTAX, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned long lo = 0;
				if (s->i + 5 >= s->n || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u')
					return fail(s, JSCAN_SYNTAX, "lone high surrogate");
				for (int k = 2; k < 6; k++) {
					int h = hexval(s->p[s->i + (size_t)k]);
					if (h < 0)
						return fail(s, JSCAN_SYNTAX, "bad \\u escape");
					lo = lo << 4 | (unsigned long)h;
				}
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(s, JSCAN_SYNTAX, "lone high surrogate");
				s->i += 6;
			}
			break;
		}
		default:
			return fail(s, JSCAN_SYNTAX, "bad escape in a string");
		}
	}
	return fail(s, JSCAN_SYNTAX, "unterminated string");
}

/* At '"': skips the string. Inlined where strings are met: most are
 * short and plain (keys, names), and end at the first byte str_special8
 * marks; anything else goes on in string_rest. */
static inline int string(struct scan *s)
{
	size_t i = s->i + 1;

	s->esc = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (s->n - i >= 8) {
		uint64_t w, m;
		memcpy(&w, s->p + i, 8);
		if ((m = str_special8(w)) != 0) {
			i += (size_t)__builtin_ctzll(m) / 8;
			if (s->p[i] == '"') {
				s->i = i + 1;
				return 0;
			}
			break;
		}
		i += 8;
	}
#endif
	s->i = i;
	return string_rest(s);
}

static int digits(struct scan *s)
{
	size_t start = s->i;
	while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
		s->i++;
	return s->i > start ? 0 : -1;
}

static int number(struct scan *s)
{
	if (s->p[s->i] == '-')
		s->i++;
	if (s->i < s->n && s->p[s->i] == '0')
		s->i++;
	else if (digits(s) < 0)
		return fail(s, JSCAN_SYNTAX, "bad number");
	if (s->i < s->n && s->p[s->i] == '.') {
		s->i++;
		if (digits(s) < 0)
			return fail(s, JSCAN_SYNTAX, "bad number");
	}
	if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
		s->i++;
		if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
			s->i++;
		if (digits(s) < 0)
			return fail(s, JSCAN_SYNTAX, "bad number");
	}
	return 0;
}

static int literal(struct scan *s, const char *word)
{
	size_t k = strlen(word);
	if (s->n - s->i < k || memcmp(s->p + s->i, word, k))
		return fail(s, JSCAN_SYNTAX, "unexpected token");
	s->i += k;
	return 0;
}

static int value(struct scan *s, struct jval *out, struct jtop *top);

/* The member named k (NUL-terminated) among those so far. */
static const struct jval *top_find(const struct jtop *top, const char *k)
{
	for (size_t i = 0; i < top->count; i++)
		if (top->m[i].key[0] == k[0] && !strcmp(top->m[i].key, k))
			return &top->m[i].val;
	return NULL;
}

/* At '{' or '['. top is non-NULL only for the frame's own object. */
static int container(struct scan *s, struct jtop *top)
{
	char close = s->p[s->i] == '{' ? '}' : ']';
	int first = 1;

	if (++s->depth > s->max_depth)
		return fail(s, JSCAN_DEPTH, "nested too deep");
	s->i++;
	for (;;) {
		ws(s);
		if (s->i >= s->n)
			return fail(s, JSCAN_SYNTAX, "unexpected end");
		if (s->p[s->i] == close && first) {
			s->i++;
			break;
		}
		if (!first) {
			if (s->p[s->i] == close) {
				s->i++;
				break;
			}
			if (s->p[s->i] != ',')
				return fail(s, JSCAN_SYNTAX, "expected ',' or a closing bracket");
			s->i++;
			ws(s);
		}
		first = 0;
		struct jval v;
		if (close == '}') {
			if (s->i >= s->n || s->p[s->i] != '"')
				return fail(s, JSCAN_SYNTAX, "expected a string key");
			struct jval key = { JT_STRING, s->p + s->i, 0 };
			if (string(s) < 0)
				return -1;
			key.n = (size_t)(s->p + s->i - key.p);
			int key_esc = s->esc;
			if (++s->keys > s->max_keys)
				return fail(s, JSCAN_KEYS, "too many keys");
			ws(s);
			if (s->i >= s->n || s->p[s->i] != ':')
				return fail(s, JSCAN_SYNTAX, "expected ':'");
			s->i++;
			ws(s);
			unsigned spaces = s->spaces;
			if (value(s, &v, NULL) < 0)
				return -1;
			if (top) {
				if (top->count == JSCAN_TOP_MAX)
					return fail(s, JSCAN_TOP, "too many fields");
				/* the key goes straight into the next slot, which
				 * top_find does not see until count moves on; its
				 * first 8 bytes are zero-padded (jscan_get) */
				char *k = top->m[top->count].key;
				size_t klen = key.n - 2;
				const size_t ksz = sizeof(top->m[0].key);
				memset(k, 0, 8);
				if (!key_esc && klen < 8 && (size_t)(s->p + s->n - (key.p + 1)) >= 8) {
					/* the usual short key, as one word: its text (no
					 * escape, and no NUL: the scan refuses control
					 * characters) with the bytes past it cleared */
					uint64_t w;
					memcpy(&w, key.p + 1, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
					w &= klen ? ~0ULL >> (64 - 8 * klen) : 0;
					memcpy(k, &w, 8);
#else
					memcpy(k, key.p + 1, klen);
#endif
				} else if (!key_esc && klen < ksz) {
					memcpy(k, key.p + 1, klen);
					k[klen] = '\0';
				} else if (jscan_string(&key, k, ksz, &klen) < 0 ||
					   klen != strlen(k)) {
					memset(k, 0, 8); /* long or with NUL: never a field we read */
				}
				if (k[0] && top_find(top, k))
					return fail(s, JSCAN_DUPLICATE, "duplicate key");
				top->m[top->count].val = v;
				top->m[top->count].gap0 = spaces;
				top->m[top->count].ngap = s->spaces - spaces;
				top->count++;
			}
		} else if (value(s, &v, NULL) < 0) {
			return -1;
		}
	}
	s->depth--;
	return 0;
}

static int value(struct scan *s, struct jval *out, struct jtop *top)
{
	size_t start = s->i;
	int r;

	if (s->i >= s->n)
		return fail(s, JSCAN_SYNTAX, "unexpected end");
	switch (s->p[s->i]) {
	case '{': out->type = JT_OBJECT; r = container(s, top); break;
	case '[': out->type = JT_ARRAY; r = container(s, NULL); break;
	case '"': out->type = JT_STRING; r = string(s); break;
	case 't': out->type = JT_TRUE; r = literal(s, "true"); break;
	case 'f': out->type = JT_FALSE; r = literal(s, "false"); break;
	case 'n': out->type = JT_NULL; r = literal(s, "null"); break;
	default:
		if (s->p[s->i] == '-' || (s->p[s->i] >= '0' && s->p[s->i] <= '9')) {
			out->type = JT_NUMBER;
			r = number(s);
		} else {
			r = fail(s, JSCAN_SYNTAX, "unexpected character");
		}
	}
	out->p = s->p + start;
	out->n = s->i - start;
	return r;
}

enum jscan_err jscan_object(const char *text, size_t n, unsigned max_depth, unsigned max_keys,
				struct jtop *top, size_t *pos, const char **why)
{
	struct scan s = { text, n, 0, 0, max_depth, 0, max_keys, JSCAN_OK, NULL, 0, NULL, 0 };
	struct jval v;

	top->count = 0;
	s.top = top;
	ws(&s);
	if (s.i >= n || text[s.i] != '{') {
		/* Valid JSON that is not an object, or not JSON at all. */
		if (value(&s, &v, NULL) == 0) {
			ws(&s);
			if (s.i == n) {
				s.err = JSCAN_NOT_OBJECT;
				s.why = "a frame must be a JSON object";
				s.i = 0;
			} else {
				fail(&s, JSCAN_SYNTAX, "unexpected text after the value");
			}
		}
	} else if (value(&s, &v, top) == 0) {
		ws(&s);
		if (s.i != n)
			fail(&s, JSCAN_SYNTAX, "unexpected text after the object");
	}
	*pos = s.i;
	*why = s.why;
	return s.err;
}

const struct jval *jscan_get_slow(const struct jtop *top, const char *key)
{
	/* the first byte first: a decoder asks for several fields, and most
	 * members differ from each in it, so strcmp is seldom called */
	for (size_t i = 0; i < top->count; i++)
		if (top->m[i].key[0] == key[0] && !strcmp(top->m[i].key, key))
			return &top->m[i].val;
	return NULL;
}

static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static unsigned long hex4(const char *p)
{
	return (unsigned long)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int jscan_string(const struct jval *v, char *out, size_t cap, size_t *len)
{
	const char *p = v->p + 1, *end = v->p + v->n - 1; /* inside the quotes */
	size_t o = 0;

	if (v->type != JT_STRING || v->n < 2 || !cap)
		return -1;
	while (p < end) {
		char tmp[4];
		size_t k;
		if (*p != '\\') {
			/* a plain byte, most of them: no detour through tmp */
			if (o + 1 >= cap)
				return -1;
			out[o++] = *p++;
			continue;
		} else {
			char e = p[1];
			p += 2;
			switch (e) {
			case 'b': tmp[0] = '\b'; k = 1; break;
			case 'f': tmp[0] = '\f'; k = 1; break;
			case 'n': tmp[0] = '\n'; k = 1; break;
			case 'r': tmp[0] = '\r'; k = 1; break;
			case 't': tmp[0] = '\t'; k = 1; break;
			case 'u': {
				unsigned long cp = hex4(p);
				p += 4;
				if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' &&
				    p[1] == 'u') {
					unsigned long lo = hex4(p + 2);
					if (lo >= 0xdc00 && lo <= 0xdfff) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						p += 6;
					}
				}
				if (cp >= 0xd800 && cp <= 0xdfff)
					cp = 0xfffd; /* a lone surrogate */
				k = put_utf8(tmp, cp);
				break;
			}
			default: tmp[0] = e; k = 1; break; /* " \ / */
			}
		}
		if (o + k >= cap)
			return -1;
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o] = '\0';
	*len = o;
	return 0;
}

int jscan_uint(const struct jval *v, uint64_t *out)
{
	uint64_t x = 0;

	if (!v || v->type != JT_NUMBER || v->p[0] == '-')
		return -1;
	for (size_t i = 0; i < v->n; i++) {
		char c = v->p[i];
		if (c < '0' || c > '9')
			return -1; /* fraction or exponent: not an integer */
		unsigned d = (unsigned)(c - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

enum jscan_err jscan_value(const char *text, size_t n, unsigned max_depth, unsigned max_keys,
			   struct jval *out, size_t *pos, const char **why)
{
	struct scan s = { text, n, 0, 0, max_depth, 0, max_keys, JSCAN_OK, NULL, 0, NULL, 0 };

	ws(&s);
	if (value(&s, out, NULL) == 0) {
		ws(&s);
		if (s.i != n)
			fail(&s, JSCAN_SYNTAX, "unexpected text after the value");
	}
	*pos = s.i;
	*why = s.why;
	return s.err;
}
