/* series: a per-second time series of a run (--series FILE.csv), so a run's shape can be
 * plotted and not just its summary.
 *
 * One row per elapsed second of the loop, written when the second is over:
 *   t_s,ready,deliveries,deliveries_per_s,p50_ms,p99_ms,max_ms,errors,closed
 * deliveries/errors are counts within that second; p50/p99/max are over the latencies of the
 * deliveries of that second (empty when there were none); ready and closed are running
 * totals. Each second has its own histogram, reset after its row, so a row costs nothing on
 * the delivery path beyond one hist_add. The file is flushed every row: a run that is
 * killed still leaves every finished second on disk.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static FILE *g_f;
static struct hist *g_h;
static uint64_t g_sec_start;   /* ns: start of the second being counted; 0 = not begun */
static uint64_t g_deliveries, g_errors;

int series_open(const char *path)
{
    g_f = fopen(path, "w");
    if (!g_f) {
        fprintf(stderr, "parley-bench: --series %s: %s\n", path, strerror(errno));
        return -1;
    }
    g_h = hist_new();
    fprintf(g_f, "t_s,ready,deliveries,deliveries_per_s,p50_ms,p99_ms,max_ms,errors,closed\n");
    fflush(g_f);
    return 0;
}

bool series_on(void) { return g_f != NULL; }

void series_delivery(uint64_t latency_ns)
{
    if (!g_f)
        return;
    g_deliveries++;
    if (latency_ns)
        hist_add(g_h, latency_ns);
}

void series_error(void)
{
    if (g_f)
        g_errors++;
}

static void write_row(uint64_t sec_end)
{
    double secs = (sec_end - g_sec_start) / 1e9;
    double t = (sec_end - g_loop_start) / 1e9;
    fprintf(g_f, "%.3f,%u,%llu,%.1f,", t, g_ready, (unsigned long long)g_deliveries,
            secs > 0 ? g_deliveries / secs : 0.0);
    if (hist_count(g_h))
        fprintf(g_f, "%.3f,%.3f,%.3f,", hist_pct(g_h, 50) / 1e6, hist_pct(g_h, 99) / 1e6,
                hist_max(g_h) / 1e6);
    else
        fputs(",,,", g_f);
    fprintf(g_f, "%llu,%u\n", (unsigned long long)g_errors, g_closed);
    fflush(g_f);
    hist_free(g_h);
    g_h = hist_new();
    g_deliveries = g_errors = 0;
}

void series_tick(uint64_t now)
{
    if (!g_f)
        return;
    if (!g_sec_start) {
        g_sec_start = now;
        return;
    }
    if (now - g_sec_start >= 1000000000ull) {
        write_row(now);
        g_sec_start = now;
    }
}

void series_close(void)
{
    if (!g_f)
        return;
    uint64_t now = now_ns();
    if (g_sec_start && now > g_sec_start && (g_deliveries || g_errors))
        write_row(now); /* the last, partial second: its rate is per real second */
    fclose(g_f);
    g_f = NULL;
    hist_free(g_h);
    g_h = NULL;
}
