/*
 * itest_tool.c - helpers for the MDS integration scripts.
 *
 *   itest_tool freeport [N]          print N (default 1) free 127.0.0.1 TCP ports
 *   itest_tool proxy LISTEN TARGET CONTROL_FILE
 *       a TCP proxy 127.0.0.1:LISTEN -> 127.0.0.1:TARGET. While CONTROL_FILE exists and
 *       holds "cut", every proxied connection is closed and new ones are refused at
 *       once (a network partition of whoever talks through it); "hold" keeps
 *       connections and forwards replies but holds every byte clients send (in the
 *       kernel's buffers) until "open", when they go through in order (requests delayed
 *       in the network); "open" (or no file) passes traffic. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAIRS_MAX 256

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

static int freeport(int n)
{
    int fds[64];
    if (n < 1 || n > 64)
        return 2;
    for (int i = 0; i < n; i++) {
        fds[i] = listen_on(0);
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        getsockname(fds[i], (struct sockaddr *)&a, &len);
        printf("%d\n", ntohs(a.sin_port));
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

enum proxy_mode { MODE_OPEN, MODE_CUT, MODE_HOLD };

static enum proxy_mode read_mode(const char *control)
{
    FILE *f = fopen(control, "r");
    if (!f)
        return MODE_OPEN;
    char buf[16] = "";
    enum proxy_mode m = MODE_OPEN;
    if (fgets(buf, sizeof buf, f))
        m = strncmp(buf, "cut", 3) == 0 ? MODE_CUT
            : strncmp(buf, "hold", 4) == 0 ? MODE_HOLD : MODE_OPEN;
    fclose(f);
    return m;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int proxy(int lport, int tport, const char *control)
{
    int lfd = listen_on(lport);
    int pairs[PAIRS_MAX][2];
    int count = 0;
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        enum proxy_mode mode = read_mode(control);
        bool cut = mode == MODE_CUT;
        short client_events = mode == MODE_HOLD ? 0 : POLLIN;
        if (cut)
            for (int i = 0; i < count; i++) {
                close(pairs[i][0]);
                close(pairs[i][1]);
            }
        if (cut)
            count = 0;
        struct pollfd p[1 + 2 * PAIRS_MAX];
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < count; i++) {
            p[1 + 2 * i] = (struct pollfd){.fd = pairs[i][0], .events = client_events};
            p[2 + 2 * i] = (struct pollfd){.fd = pairs[i][1], .events = POLLIN};
        }
        if (poll(p, (nfds_t)(1 + 2 * count), 50) < 0 && errno != EINTR)
            return 1;
        if (p[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            int t = c >= 0 && !cut && count < PAIRS_MAX ? connect_to(tport) : -1;
            if (t < 0) {
                if (c >= 0)
                    close(c);
            } else {
                pairs[count][0] = c;
                pairs[count][1] = t;
                count++;
                continue; /* p[] no longer matches pairs[] */
            }
        }
        for (int i = count - 1; i >= 0; i--) {
            bool dead = false;
            for (int side = 0; side < 2 && !dead; side++) {
                short ev = p[1 + 2 * i + side].revents;
                if (!ev || (side == 0 && mode == MODE_HOLD))
                    continue;
                char buf[65536];
                ssize_t n = read(pairs[i][side], buf, sizeof buf);
                if (n <= 0) {
                    dead = true;
                    break;
                }
                for (ssize_t off = 0; off < n;) {
                    ssize_t w = write(pairs[i][1 - side], buf + off, (size_t)(n - off));
                    if (w <= 0) {
                        dead = true;
                        break;
                    }
                    off += w;
                }
            }
            if (dead) {
                close(pairs[i][0]);
                close(pairs[i][1]);
                pairs[i][0] = pairs[count - 1][0];
                pairs[i][1] = pairs[count - 1][1];
                count--;
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "freeport") == 0)
        return freeport(argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1);
    if (argc == 5 && strcmp(argv[1], "proxy") == 0)
        return proxy((int)strtol(argv[2], NULL, 10), (int)strtol(argv[3], NULL, 10), argv[4]);
    fprintf(stderr, "usage: itest_tool freeport [N] | proxy LISTEN TARGET CONTROL_FILE\n");
    return 2;
}
