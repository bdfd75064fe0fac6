/* scen_floor: the kernel's floor for fan-out on this machine.
 *
 * A forked "server" process accepts N loopback sockets and writes one B-byte buffer to
 * each, K rounds, with one send() per socket per round: the least a server that makes a
 * syscall per delivery can spend. Its own CPU (getrusage) over the send loop, divided by
 * the sends, is the floor printed next to the servers' CPU per delivery. The parent drains
 * the sockets with epoll (as the bench would), optionally on another CPU.
 * Loopback TCP does most receive-side work in the sender's context, so the floor's system
 * time includes it, exactly as it does for a real server measured the same way.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("sched_setaffinity");
}

static double tv_s(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

/* The sending side; writes "user sys sends eagain wall" to out_fd. */
static void floor_server(int lfd, int n, int size, int rounds, int out_fd)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    char *buf = malloc((size_t)size);
    if (!fds || !buf)
        _exit(1);
    fill_payload(buf, (size_t)size);
    for (int i = 0; i < n; i++) {
        fds[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fds[i] < 0) {
            perror("accept");
            _exit(1);
        }
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    close(lfd);
    usleep(200000);
    struct rusage r0, r1;
    uint64_t eagain = 0, sends = 0;
    getrusage(RUSAGE_SELF, &r0);
    uint64_t t0 = now_ns();
    for (int k = 0; k < rounds; k++)
        for (int i = 0; i < n; i++) {
            ssize_t w = send(fds[i], buf, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w == size)
                sends++;
            else
                eagain++;
        }
    uint64_t t1 = now_ns();
    getrusage(RUSAGE_SELF, &r1);
    char line[160];
    int len = snprintf(line, sizeof line, "%.6f %.6f %llu %llu %.6f\n",
                       tv_s(r1.ru_utime) - tv_s(r0.ru_utime), tv_s(r1.ru_stime) - tv_s(r0.ru_stime),
                       (unsigned long long)sends, (unsigned long long)eagain, (t1 - t0) / 1e9);
    if (write(out_fd, line, (size_t)len) != len)
        _exit(1);
    usleep(300000); /* let the reader drain before the RSTs of exit */
    _exit(0);
}

static void help(void)
{
    printf("usage: parley-bench floor [options]\n"
           "  --sockets N     loopback connections (default 5000)\n"
           "  --size B        bytes per send (default 150)\n"
           "  --rounds K      sends per socket (default 200)\n"
           "  --server-cpu C  pin the sending process to CPU C (default: no pinning)\n"
           "  --client-cpu C  pin the draining process to CPU C\n"
           "  --json          results as JSON\n");
}

int scen_floor(int argc, char **argv)
{
    int n = 5000, size = 150, rounds = 200, scpu = -1, ccpu = -1;
    static const struct option lo[] = {
        {"sockets", required_argument, 0, 'n'}, {"size", required_argument, 0, 's'},
        {"rounds", required_argument, 0, 'k'}, {"server-cpu", required_argument, 0, 'S'},
        {"client-cpu", required_argument, 0, 'C'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'n': n = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'k': rounds = atoi(optarg); break;
        case 'S': scpu = atoi(optarg); break;
        case 'C': ccpu = atoi(optarg); break;
        case 'j': g_opts.json = 1; break;
        case 'h': help(); return 3;
        default: help(); return 2;
        }
    }
    if (n <= 0 || size <= 0 || rounds <= 0 || size > 65536) {
        help();
        return 2;
    }
    raise_nofile((uint32_t)n + 16);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("floor: listen");
        return 1;
    }
    int pfd[2];
    if (pipe(pfd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(pfd[0]);
        pin(scpu);
        floor_server(lfd, n, size, rounds, pfd[1]);
    }
    close(pfd[1]);
    close(lfd);
    pin(ccpu);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int connected = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            perror("floor: connect");
            if (fd >= 0)
                close(fd);
            break;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        connected++;
    }
    /* Drain until the child reports (then a little longer) or 120 s pass. */
    static char rbuf[65536];
    struct epoll_event evs[512];
    uint64_t received = 0, deadline = now_ns() + 120000000000ull;
    char line[160] = "";
    size_t ll = 0;
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    struct epoll_event pev = {.events = EPOLLIN, .data.fd = pfd[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &pev);
    bool have_line = false;
    while (now_ns() < deadline && !(have_line && received >= (uint64_t)connected * size * rounds)) {
        int k = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == pfd[0]) {
                ssize_t r = read(fd, line + ll, sizeof line - 1 - ll);
                if (r > 0)
                    ll += (size_t)r;
                line[ll] = 0;
                if (strchr(line, '\n'))
                    have_line = true;
                if (r == 0 && !have_line)
                    deadline = 0;
                if (r == 0)
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                continue;
            }
            ssize_t r;
            while ((r = read(fd, rbuf, sizeof rbuf)) > 0)
                received += (uint64_t)r;
            if (r == 0)
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        }
    }
    int st;
    waitpid(pid, &st, 0);
    double us = 0, ss = 0, wall = 0;
    unsigned long long sends = 0, eagain = 0;
    if (sscanf(line, "%lf %lf %llu %llu %lf", &us, &ss, &sends, &eagain, &wall) != 5) {
        fprintf(stderr, "parley-bench floor: no result from the sender\n");
        return 1;
    }
    res_str("scenario", "floor");
    res_num("sockets", connected, "");
    res_num("bytes_per_send", size, "B");
    res_num("sends", (double)sends, "");
    res_num("send_failures", (double)eagain, "");
    res_num("received_bytes", (double)received, "B");
    res_num("sender_user_s", us, "s");
    res_num("sender_sys_s", ss, "s");
    res_num("user_us_per_send", sends ? us * 1e6 / sends : 0, "us");
    res_num("total_us_per_send", sends ? (us + ss) * 1e6 / sends : 0, "us");
    res_num("sends_per_s", wall > 0 ? sends / wall : 0, "1/s");
    return 0;
}
