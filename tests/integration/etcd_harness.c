/* etcd_harness.c - see etcd_harness.h. */
#include "etcd_harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_START_TIMEOUT_MS 20000

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A port the kernel just handed out (free at the time of the call). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static size_t sink_cb(char *p, size_t s, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), add = s * n;
    if (have + add < 256) {
        memcpy(buf + have, p, add);
        buf[have + add] = '\0';
    }
    return s * n;
}

static bool healthy(const struct spl_etcd_harness *h)
{
    char url[128], body[256] = "";
    snprintf(url, sizeof url, "%s/health", h->endpoint);
    CURL *c = curl_easy_init();
    if (!c)
        return false;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)body);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    return cc == CURLE_OK && strstr(body, "\"true\"") != NULL;
}

static int spawn(struct spl_etcd_harness *h)
{
    const char *bin = getenv("SPL_ETCD_BIN");
    if (!bin || !*bin)
        bin = "etcd";
    char data[300], log[300], curl_[64], purl[64], cluster[96];
    snprintf(data, sizeof data, "%s/data", h->dir);
    snprintf(log, sizeof log, "%s/etcd.log", h->dir);
    snprintf(curl_, sizeof curl_, "http://127.0.0.1:%d", h->client_port);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", h->peer_port);
    snprintf(cluster, sizeof cluster, "default=%s", purl);
    snprintf(h->endpoint, sizeof h->endpoint, "%s", curl_);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp(bin, bin, "--name", "default", "--data-dir", data, "--listen-client-urls", curl_,
               "--advertise-client-urls", curl_, "--listen-peer-urls", purl,
               "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
               "--heartbeat-interval", "50", "--election-timeout", "300", "--log-level",
               "warn", "--logger", "zap", (char *)NULL);
        _exit(127);
    }
    h->pid = pid;
    for (int waited = 0; waited < HARNESS_START_TIMEOUT_MS; waited += 50) {
        if (healthy(h))
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { /* died: maybe a port race */
            h->pid = 0;
            return -EADDRINUSE;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "etcd_harness: etcd not healthy; see %s\n", log);
    spl_etcd_harness_kill(h);
    return -ETIMEDOUT;
}

int spl_etcd_harness_start(struct spl_etcd_harness *h)
{
    memset(h, 0, sizeof *h);
    const char *tmp = getenv("TMPDIR");
    snprintf(h->dir, sizeof h->dir, "%s/spl-etcd-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(h->dir))
        return -errno;
    int rc = -EADDRINUSE;
    for (int attempt = 0; attempt < 5 && rc == -EADDRINUSE; attempt++) {
        h->client_port = free_port();
        h->peer_port = free_port();
        if (h->client_port <= 0 || h->peer_port <= 0 || h->client_port == h->peer_port)
            continue;
        rc = spawn(h);
    }
    if (rc < 0)
        spl_etcd_harness_stop(h);
    return rc;
}

void spl_etcd_harness_kill(struct spl_etcd_harness *h)
{
    if (h->pid <= 0)
        return;
    kill(h->pid, SIGKILL);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
}

int spl_etcd_harness_restart(struct spl_etcd_harness *h)
{
    spl_etcd_harness_kill(h);
    return spawn(h);
}

void spl_etcd_harness_stop(struct spl_etcd_harness *h)
{
    spl_etcd_harness_kill(h);
    if (h->dir[0]) {
        char cmd[320];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "etcd_harness: could not remove %s\n", h->dir);
        h->dir[0] = '\0';
    }
}
