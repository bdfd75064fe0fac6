/* procstat: what the bench reads about the server process from /proc.
 * RSS is VmRSS in /proc/PID/status (KiB); CPU is utime/stime (fields 14 and 15 of
 * /proc/PID/stat, in clock ticks, usually 10 ms: runs must be seconds long for a useful
 * reading). */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long ps_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

int ps_cpu(int pid, double *user_s, double *sys_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* comm may contain spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *user_s = (double)ut / hz;
    *sys_s = (double)st / hz;
    return 0;
}

long ps_rss_all_kib(void)
{
    long sum = 0;
    for (int i = 0; i < g_opts.nserver_pids; i++) {
        long k = ps_rss_kib(g_opts.server_pids[i]);
        if (k < 0)
            return -1;
        sum += k;
    }
    return g_opts.nserver_pids ? sum : -1;
}

int ps_cpu_all(double *user_s, double *sys_s)
{
    double u = 0, s = 0;
    *user_s = *sys_s = -1;
    for (int i = 0; i < g_opts.nserver_pids; i++) {
        double pu, psys;
        if (ps_cpu(g_opts.server_pids[i], &pu, &psys) != 0)
            return -1;
        u += pu;
        s += psys;
    }
    if (!g_opts.nserver_pids)
        return -1;
    *user_s = u;
    *sys_s = s;
    return 0;
}
