/* Unit checks for the bench's pure pieces: the JSON scan and the histogram.
 * Run by `meson test --suite unit` (bench-selftest). Exit status 0 = pass. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_fail;
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            g_fail++;                                                        \
        }                                                                    \
    } while (0)

/* The scenarios never run here; these satisfy the linker for symbols main.c owns. */
struct opts g_opts;
uint64_t g_loop_start;

static void test_jscan(void)
{
    const char *m = "{\"type\":\"message\",\"room\":\"r1\",\"seq\":131,\"ts\":1,"
                    "\"from\":\"a\\\"b\",\"data\":{\"t\":   42,\"p\":\"x}y\",\"n\":[1,{\"t\":7}]}}";
    const char *v;
    size_t vn;
    int64_t x;
    CHECK(js_find(m, strlen(m), "type", &v, &vn) && vn == 9 && !memcmp(v, "\"message\"", 9));
    CHECK(js_int(m, strlen(m), "seq", &x) && x == 131);
    CHECK(js_find(m, strlen(m), "data", &v, &vn) && v[0] == '{' && v[vn - 1] == '}');
    CHECK(js_int(v, vn, "t", &x) && x == 42);           /* whitespace before a value */
    CHECK(!js_find(m, strlen(m), "t", &v, &vn));        /* nested keys are not top level */
    CHECK(!js_find(m, strlen(m), "missing", &v, &vn));
    CHECK(js_find(m, strlen(m), "from", &v, &vn) && vn == 6); /* escaped quote */
    const char *r = "{ \"type\" : \"reply\" , \"id\" : 7 , \"ok\" : true }";
    CHECK(js_int(r, strlen(r), "id", &x) && x == 7);
    CHECK(js_find(r, strlen(r), "ok", &v, &vn) && vn == 4 && !memcmp(v, "true", 4));
    CHECK(!js_find("[1,2]", 5, "a", &v, &vn));
    CHECK(!js_find("{\"a\":", 5, "a", &v, &vn));       /* truncated: no read past n */
    CHECK(js_value_len("\"abc\\\"d\"xyz", 11) == 8);
    CHECK(js_value_len("[1,[2],\"]\"]", 11) == 11);
    CHECK(js_value_len("{\"a\":1", 6) == 0);
}

static void test_hist(void)
{
    struct hist *h = hist_new();
    for (uint64_t i = 1; i <= 100000; i++)
        hist_add(h, i * 1000); /* 1 us .. 100 ms, uniform */
    CHECK(hist_count(h) == 100000);
    CHECK(hist_max(h) == 100000000ull);
    uint64_t p50 = hist_pct(h, 50), p99 = hist_pct(h, 99);
    CHECK(p50 > 50000000ull * 98 / 100 && p50 < 50000000ull * 102 / 100);
    CHECK(p99 > 99000000ull * 98 / 100 && p99 < 99000000ull * 102 / 100);
    CHECK(hist_pct(h, 100) <= hist_max(h));
    hist_free(h);
    h = hist_new();
    hist_add(h, 5);
    CHECK(hist_pct(h, 50) == 5 && hist_pct(h, 99.9) == 5);
    hist_free(h);
}

/* --procs merges workers' histograms: the merge must be the histogram of all samples
 * together (same percentiles, count, max, mean), not an average of each one's percentiles. */
static void test_hist_merge(void)
{
    struct hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *m = hist_new();
    /* a: 9,900 fast samples (1 ms); b: 100 slow ones (200 ms). Together p99 is 1 ms and
     * p99.9 is 200 ms; averaging the two p99s would give about 100 ms. */
    for (int i = 0; i < 9900; i++) {
        hist_add(a, 1000000);
        hist_add(all, 1000000);
    }
    for (int i = 0; i < 100; i++) {
        hist_add(b, 200000000);
        hist_add(all, 200000000);
    }
    char *blob = malloc(hist_blob_size());
    CHECK(blob != NULL);
    hist_to_blob(a, blob);
    hist_merge_blob(m, blob);
    hist_to_blob(b, blob);
    hist_merge_blob(m, blob);
    CHECK(hist_count(m) == 10000 && hist_count(m) == hist_count(all));
    CHECK(hist_max(m) == hist_max(all));
    CHECK(hist_mean(m) == hist_mean(all));
    static const double pcts[] = {1, 50, 90, 99, 99.5, 99.9, 100};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        CHECK(hist_pct(m, pcts[i]) == hist_pct(all, pcts[i]));
    CHECK(hist_pct(m, 99) < 2000000 && hist_pct(m, 99.9) > 190000000);
    /* merging an empty one changes nothing */
    struct hist *e = hist_new();
    hist_to_blob(e, blob);
    hist_merge_blob(m, blob);
    CHECK(hist_count(m) == 10000 && hist_pct(m, 50) == hist_pct(all, 50));
    free(blob);
    hist_free(a);
    hist_free(b);
    hist_free(all);
    hist_free(m);
    hist_free(e);
}

int main(void)
{
    test_jscan();
    test_hist();
    test_hist_merge();
    if (g_fail)
        fprintf(stderr, "%d check(s) failed\n", g_fail);
    else
        printf("bench selftest: ok\n");
    return g_fail ? 1 : 0;
}
