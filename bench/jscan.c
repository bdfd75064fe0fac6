/* jscan: a minimal JSON scanner for the hot path.
 *
 * The bench reads a handful of fields (type, id, ok, room, seq, data, t) out of every
 * inbound message. A real parser would allocate a tree per message; this walks the
 * top-level object once, skipping values by bracket depth and string escapes. It trusts
 * the input to be well-formed JSON (it comes from the server under test) and stops
 * without reading past n on malformed input.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* Index just past the closing quote of the string opening at p[i], or n. */
static size_t skip_string(const char *p, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return n;
}

size_t js_value_len(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] == '"') {
        size_t e = skip_string(p, n, 0);
        return e <= n && p[e - 1] == '"' ? e : 0;
    }
    if (p[0] == '{' || p[0] == '[') {
        int depth = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = p[i];
            if (ch == '"') {
                i = skip_string(p, n, i) - 1;
            } else if (ch == '{' || ch == '[') {
                depth++;
            } else if (ch == '}' || ch == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return 0;
    }
    size_t i = 0;
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\n')
        i++;
    return i;
}

bool js_find(const char *p, size_t n, const char *key, const char **v, size_t *vn)
{
    size_t kl = strlen(key);
    size_t i = skip_ws(p, n, 0);
    if (i >= n || p[i] != '{')
        return false;
    i++;
    for (;;) {
        i = skip_ws(p, n, i);
        if (i >= n || p[i] != '"')
            return false;
        size_t ks = i + 1;
        size_t ke = skip_string(p, n, i); /* one past closing quote */
        if (ke >= n)
            return false;
        bool match = (ke - 1 - ks) == kl && memcmp(p + ks, key, kl) == 0;
        i = skip_ws(p, n, ke);
        if (i >= n || p[i] != ':')
            return false;
        i = skip_ws(p, n, i + 1);
        size_t vl = js_value_len(p + i, n - i);
        if (vl == 0)
            return false;
        if (match) {
            *v = p + i;
            *vn = vl;
            return true;
        }
        i = skip_ws(p, n, i + vl);
        if (i >= n || p[i] != ',')
            return false;
        i++;
    }
}

bool js_int(const char *p, size_t n, const char *key, int64_t *out)
{
    const char *v;
    size_t vn;
    if (!js_find(p, n, key, &v, &vn) || vn == 0 || vn > 20)
        return false;
    int64_t x = 0;
    bool neg = false;
    size_t i = 0;
    if (v[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i >= vn)
        return false;
    for (; i < vn; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = neg ? -x : x;
    return true;
}
