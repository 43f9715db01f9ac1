/*
 * metrics_demo.c - a tiny daemon that serves metrics the way Spline's daemons do, for
 * the integration test (check_metrics.sh scrapes it and runs `promtool check metrics`).
 *
 * It declares its metrics in one X-macro table (the pattern components follow), adds
 * build info and process metrics, and runs a worker thread that "serves requests" so
 * that counters and histograms have data. It serves /metrics, /status, /healthz and an
 * extra /demo path on 127.0.0.1, writes the bound port to --port-file, and exits 0 on
 * SIGTERM/SIGINT or after --seconds (default 30, at most 600).
 *
 * Usage: metrics_demo [--port N] [--port-file PATH] [--seconds N]
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/random.h"
#include "metrics/http.h"
#include "metrics/metrics.h"

#define DEMO_SECONDS_MAX 600

/* XX(kind, field, name, help, unit, labels...) - the demo's metrics, declared once. */
#define DEMO_METRICS(XX)                                                                  \
    XX(counter, requests, "spline_demo_requests_total",                                   \
       "Requests served, by method and result code", 0, "method", "code")                 \
    XX(gauge, inflight, "spline_demo_requests_inflight", "Requests being served now", 0,   \
       "method")                                                                          \
    XX(histogram, latency, "spline_demo_request_duration_seconds",                        \
       "Time to serve a request, by method", SPL_METRIC_UNIT_SECONDS, "method")           \
    XX(histogram, size, "spline_demo_request_size_bytes", "Request payload sizes",        \
       SPL_METRIC_UNIT_BYTES, "method")

struct demo_families {
#define XX(kind, field, name, help, unit, ...) struct spl_##kind##_family *field;
    DEMO_METRICS(XX)
#undef XX
};

static const char *const methods[] = {"Read", "Write", "Echo \"quoted\""};

struct demo {
    struct demo_families fam;
    atomic_bool stop;
    atomic_uint_fast64_t served;
};

static void register_families(struct spl_metrics *reg, struct demo_families *fam)
{
#define counter_family(reg, name, help, unit, ...) spl_counter_family(reg, name, help, __VA_ARGS__)
#define gauge_family(reg, name, help, unit, ...) spl_gauge_family(reg, name, help, __VA_ARGS__)
#define histogram_family(reg, name, help, unit, ...)                                      \
    spl_histogram_family(reg, name, help, unit, __VA_ARGS__)
#define XX(kind, field, name, help, unit, ...)                                            \
    fam->field = kind##_family(reg, name, help, unit, __VA_ARGS__);
    DEMO_METRICS(XX)
#undef XX
#undef counter_family
#undef gauge_family
#undef histogram_family
}

/* Serves made-up requests: about 2000 a second, log-normal-ish latencies. */
static void *worker_main(void *arg)
{
    struct demo *d = arg;
    struct spl_rand r;
    spl_rand_seed(&r, 42);
    struct spl_counter *ok[3], *failed[3];
    struct spl_gauge *inflight[3];
    struct spl_histogram *latency[3], *size[3];
    for (size_t m = 0; m < SPL_ARRAY_SIZE(methods); m++) {
        ok[m] = spl_counter_get(d->fam.requests, methods[m], "OK");
        failed[m] = spl_counter_get(d->fam.requests, methods[m], "SPL_ENOTLEADER");
        inflight[m] = spl_gauge_get(d->fam.inflight, methods[m]);
        latency[m] = spl_histogram_get(d->fam.latency, methods[m]);
        size[m] = spl_histogram_get(d->fam.size, methods[m]);
    }
    while (!atomic_load(&d->stop)) {
        size_t m = spl_rand_below(&r, SPL_ARRAY_SIZE(methods));
        spl_gauge_inc(inflight[m]);
        uint64_t ns = 20000 + spl_rand_below(&r, 200000);
        if (spl_rand_chance(&r, 1, 100))
            ns *= 50;
        spl_histogram_record(latency[m], ns);
        spl_histogram_record(size[m], 4096u << spl_rand_below(&r, 9));
        spl_counter_inc(spl_rand_chance(&r, 1, 50) ? failed[m] : ok[m]);
        spl_gauge_dec(inflight[m]);
        atomic_fetch_add(&d->served, 1);
        spl_sleep_ns(500 * SPL_NS_PER_US);
    }
    return NULL;
}

static int status_cb(struct json_object *status, void *arg)
{
    struct demo *d = arg;
    int64_t served = (int64_t)atomic_load(&d->served);
    json_object_object_add(status, "served", json_object_new_int64(served));
    return 0;
}

static bool health_cb(char *reason, size_t reason_size, void *arg) { return true; }

static int demo_handler(struct spl_http_exchange *x, void *arg)
{
    struct demo *d = arg;
    fprintf(spl_http_body(x), "served %llu\n", (unsigned long long)atomic_load(&d->served));
    return 0;
}

static int write_port_file(const char *path, uint16_t port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%u\n", (unsigned)port);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -errno;
    return 0;
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    unsigned long port = 0, seconds = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtoul(argv[i + 1], NULL, 10);
    }
    if (port > 65535 || seconds == 0 || seconds > DEMO_SECONDS_MAX || argc % 2 == 0) {
        fprintf(stderr, "usage: %s [--port N] [--port-file PATH] [--seconds 1..%d]\n",
                argv[0], DEMO_SECONDS_MAX);
        return 2;
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL); /* threads inherit; sigtimedwait below */

    static struct demo d;
    struct spl_metrics *reg = spl_metrics_global();
    register_families(reg, &d.fam);
    spl_metrics_register_build_info(reg, "demo");
    spl_metrics_register_process(reg);

    struct spl_http_server *server = NULL;
    struct spl_http_options opts = {.port = (uint16_t)port, .metrics = reg, .component = "demo"};
    ASSERT(spl_http_server_new(&opts, &server) == 0);
    spl_http_server_set_status_cb(server, status_cb, &d);
    spl_http_server_set_health_cb(server, health_cb, &d);
    ASSERT(spl_http_server_handle(server, "/demo", demo_handler, &d) == 0);
    int rc = spl_http_server_start(server);
    if (rc != 0) {
        LOG_ERROR("demo", "cannot start the HTTP server: %d", rc);
        spl_http_server_free(server);
        return 1;
    }
    pthread_t worker;
    ASSERT(pthread_create(&worker, NULL, worker_main, &d) == 0);
    if (port_file && write_port_file(port_file, spl_http_server_port(server)) != 0) {
        LOG_ERROR("demo", "cannot write %s", port_file);
        rc = 1;
    }
    if (rc == 0) {
        struct timespec timeout = {.tv_sec = (time_t)seconds};
        int sig = sigtimedwait(&signals, NULL, &timeout);
        LOG_INFO("demo", "stopping (%s)", sig > 0 ? "signal" : "time is up");
    }
    atomic_store(&d.stop, true);
    pthread_join(worker, NULL);
    spl_http_server_free(server);
    return rc;
}
