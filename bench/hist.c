/* hist: log-linear latency histogram in nanoseconds (HdrHistogram's idea, tiny).
 *
 * Values below 128 ns get one bucket each; above, each power of two is split into 64
 * sub-buckets, so a reported percentile is within 1/64 (1.6%) of the true value, and
 * 3,776 counters cover everything up to 2^64 ns. Adding is a few instructions.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define SUB 64
#define NBUCKETS (128 + (64 - 7) * SUB)

struct hist {
    uint64_t n, max;
    double sum;
    uint64_t b[NBUCKETS];
};

struct hist *hist_new(void)
{
    struct hist *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    return h;
}

void hist_free(struct hist *h) { free(h); }

static unsigned bucket_of(uint64_t v)
{
    if (v < 128)
        return (unsigned)v;
    unsigned k = 63u - (unsigned)__builtin_clzll(v); /* 7..63 */
    unsigned sub = (unsigned)(v >> (k - 6)) & (SUB - 1);
    return 128 + (k - 7) * SUB + sub;
}

/* Midpoint of bucket i, the value reported for it. */
static uint64_t value_of(unsigned i)
{
    if (i < 128)
        return i;
    unsigned k = (i - 128) / SUB + 7, sub = (i - 128) % SUB;
    uint64_t lo = ((uint64_t)(SUB + sub)) << (k - 6);
    return lo + (((uint64_t)1 << (k - 6)) >> 1);
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->n++;
    h->sum += (double)ns;
    if (ns > h->max)
        h->max = ns;
}

uint64_t hist_count(const struct hist *h) { return h->n; }
uint64_t hist_max(const struct hist *h) { return h->max; }
double hist_mean(const struct hist *h) { return h->n ? h->sum / (double)h->n : 0; }

uint64_t hist_pct(const struct hist *h, double pct)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)(pct / 100.0 * (double)h->n + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

size_t hist_blob_size(void) { return sizeof(struct hist); }

void hist_to_blob(const struct hist *h, void *blob) { memcpy(blob, h, sizeof *h); }

void hist_merge_blob(struct hist *dst, const void *blob)
{
    struct hist src;
    memcpy(&src, blob, sizeof src);
    for (unsigned i = 0; i < NBUCKETS; i++)
        dst->b[i] += src.b[i];
    dst->n += src.n;
    dst->sum += src.sum;
    if (src.max > dst->max)
        dst->max = src.max;
}
