/* test_http.c - the embedded HTTP server, fetched with libcurl on a port the kernel picks:
 * /metrics, /status, /healthz (200 and 503), extra handlers, 404, 405, start errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <unistd.h>

#include "metrics/http.h"
#include "metrics/metrics.h"

struct reply {
    long status;
    char content_type[128];
    char *body;
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    struct reply *r = arg;
    size_t n = size * count;
    char *grown = realloc(r->body, r->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, data, n);
    r->body = grown;
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* method NULL: GET. Fills *r (free r->body). */
static void fetch(uint16_t port, const char *method, const char *path, struct reply *r)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
    memset(r, 0, sizeof(*r));
    r->body = calloc(1, 1);
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (method)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    char *type = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    snprintf(r->content_type, sizeof(r->content_type), "%s", type ? type : "");
    curl_easy_cleanup(curl);
}

struct daemon_state {
    atomic_bool healthy;
    atomic_int status_calls;
    struct spl_metrics *reg;
    struct spl_counter *requests;
    struct spl_http_server *server;
};

static int status_cb(struct json_object *status, void *arg)
{
    struct daemon_state *d = arg;
    atomic_fetch_add(&d->status_calls, 1);
    json_object_object_add(status, "role", json_object_new_string("leader"));
    json_object_object_add(status, "term", json_object_new_int64(7));
    return 0;
}

static bool health_cb(char *reason, size_t reason_size, void *arg)
{
    struct daemon_state *d = arg;
    if (atomic_load(&d->healthy))
        return true;
    snprintf(reason, reason_size, "disk %s is read-only", "/data/0");
    return false;
}

static int echo_handler(struct spl_http_exchange *x, void *arg)
{
    const char *who = spl_http_query_arg(x, "who");
    spl_http_set_content_type(x, "text/x-echo");
    spl_http_set_status(x, 202);
    fprintf(spl_http_body(x), "path=%s who=%s\n", spl_http_path(x), who ? who : "(none)");
    return 0;
}

static int failing_handler(struct spl_http_exchange *x, void *arg)
{
    fputs("partial output that must not be sent", spl_http_body(x));
    return -EIO;
}

static int setup(void **state)
{
    struct daemon_state *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    atomic_init(&d->healthy, true);
    d->reg = spl_metrics_new();
    d->requests = spl_counter_get(
        spl_counter_family(d->reg, "spline_test_requests_total", "Requests", "method"), "Echo");
    spl_metrics_register_build_info(d->reg, "testd");
    struct spl_http_options opts = {.port = 0, .metrics = d->reg, .component = "testd"};
    assert_int_equal(spl_http_server_new(&opts, &d->server), 0);
    assert_int_equal(spl_http_server_port(d->server), 0);
    spl_http_server_set_status_cb(d->server, status_cb, d);
    spl_http_server_set_health_cb(d->server, health_cb, d);
    assert_int_equal(spl_http_server_handle(d->server, "/echo", echo_handler, NULL), 0);
    assert_int_equal(spl_http_server_handle(d->server, "/fail", failing_handler, NULL), 0);
    assert_int_equal(spl_http_server_handle(d->server, "/echo", echo_handler, NULL), -EEXIST);
    assert_int_equal(spl_http_server_handle(d->server, "/metrics", echo_handler, NULL),
                     -EEXIST);
    assert_int_equal(spl_http_server_start(d->server), 0);
    assert_true(spl_http_server_port(d->server) > 0);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct daemon_state *d = *state;
    spl_http_server_stop(d->server);
    spl_http_server_stop(d->server); /* idempotent */
    spl_http_server_free(d->server);
    spl_metrics_free(d->reg);
    free(d);
    return 0;
}

static void test_metrics(void **state)
{
    struct daemon_state *d = *state;
    struct reply r;
    spl_counter_add(d->requests, 5);
    fetch(spl_http_server_port(d->server), NULL, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, SPL_METRICS_CONTENT_TYPE);
    assert_non_null(strstr(r.body, "# TYPE spline_test_requests_total counter\n"));
    assert_non_null(strstr(r.body, "\nspline_test_requests_total{method=\"Echo\"} 5\n"));
    assert_non_null(strstr(r.body, "spline_build_info{component=\"testd\""));
    free(r.body);
    spl_counter_inc(d->requests);
    fetch(spl_http_server_port(d->server), NULL, "/metrics", &r);
    assert_non_null(strstr(r.body, "\nspline_test_requests_total{method=\"Echo\"} 6\n"));
    free(r.body);
    fetch(spl_http_server_port(d->server), "HEAD", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    free(r.body);
}

static void test_status(void **state)
{
    struct daemon_state *d = *state;
    struct reply r;
    fetch(spl_http_server_port(d->server), NULL, "/status", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    struct json_object *root = json_tokener_parse(r.body);
    assert_non_null(root);
    struct json_object *v;
    assert_true(json_object_object_get_ex(root, "component", &v));
    assert_string_equal(json_object_get_string(v), "testd");
    assert_true(json_object_object_get_ex(root, "version", &v));
    assert_string_equal(json_object_get_string(v), spl_metrics_version());
    assert_true(json_object_object_get_ex(root, "commit", &v));
    assert_string_equal(json_object_get_string(v), spl_metrics_commit());
    assert_true(json_object_object_get_ex(root, "pid", &v));
    assert_int_equal(json_object_get_int64(v), getpid());
    assert_true(json_object_object_get_ex(root, "uptime_seconds", &v));
    assert_true(json_object_get_double(v) >= 0 && json_object_get_double(v) < 60);
    assert_true(json_object_object_get_ex(root, "role", &v));
    assert_string_equal(json_object_get_string(v), "leader");
    assert_true(json_object_object_get_ex(root, "term", &v));
    assert_int_equal(json_object_get_int64(v), 7);
    json_object_put(root);
    free(r.body);
    assert_int_equal(atomic_load(&d->status_calls), 1);
}

static void test_healthz(void **state)
{
    struct daemon_state *d = *state;
    struct reply r;
    fetch(spl_http_server_port(d->server), NULL, "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    free(r.body);
    atomic_store(&d->healthy, false);
    fetch(spl_http_server_port(d->server), NULL, "/healthz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "unhealthy: disk /data/0 is read-only\n");
    free(r.body);
    atomic_store(&d->healthy, true);
    fetch(spl_http_server_port(d->server), NULL, "/healthz", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_extra_handlers(void **state)
{
    struct daemon_state *d = *state;
    struct reply r;
    fetch(spl_http_server_port(d->server), NULL, "/echo?who=mds%201&x=y", &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.content_type, "text/x-echo");
    assert_string_equal(r.body, "path=/echo who=mds 1\n");
    free(r.body);
    fetch(spl_http_server_port(d->server), NULL, "/fail", &r);
    assert_int_equal(r.status, 500);
    assert_null(strstr(r.body, "partial"));
    assert_non_null(strstr(r.body, "internal error"));
    free(r.body);
}

static void test_not_found_and_bad_method(void **state)
{
    struct daemon_state *d = *state;
    struct reply r;
    fetch(spl_http_server_port(d->server), NULL, "/nope", &r);
    assert_int_equal(r.status, 404);
    free(r.body);
    fetch(spl_http_server_port(d->server), NULL, "/metrics/extra", &r);
    assert_int_equal(r.status, 404);
    free(r.body);
    fetch(spl_http_server_port(d->server), "POST", "/metrics", &r);
    assert_int_equal(r.status, 405);
    free(r.body);
    fetch(spl_http_server_port(d->server), "DELETE", "/status", &r);
    assert_int_equal(r.status, 405);
    free(r.body);
}

static void test_start_errors(void **state)
{
    struct daemon_state *d = *state;
    struct spl_http_server *other = NULL;
    struct spl_http_options opts = {.port = spl_http_server_port(d->server), .metrics = d->reg};
    assert_int_equal(spl_http_server_new(&opts, &other), 0);
    assert_int_equal(spl_http_server_start(other), -EADDRINUSE);
    assert_int_equal(spl_http_server_port(other), 0);
    spl_http_server_free(other);

    struct spl_http_options bad = {.bind_address = "localhost"};
    assert_int_equal(spl_http_server_new(&bad, &other), -EINVAL);

    /* a server that never started frees cleanly; the global registry is the default */
    struct spl_http_options defaults = {0};
    assert_int_equal(spl_http_server_new(&defaults, &other), 0);
    spl_http_server_free(other);
    spl_http_server_free(NULL);
}

static void test_stop_releases_port(void **state)
{
    struct spl_http_server *s = NULL;
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_http_options opts = {.metrics = reg};
    assert_int_equal(spl_http_server_new(&opts, &s), 0);
    assert_int_equal(spl_http_server_start(s), 0);
    uint16_t port = spl_http_server_port(s);
    struct reply r;
    fetch(port, NULL, "/healthz", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    spl_http_server_free(s);
    /* the same port is free again */
    opts.port = port;
    assert_int_equal(spl_http_server_new(&opts, &s), 0);
    assert_int_equal(spl_http_server_start(s), 0);
    assert_int_equal(spl_http_server_port(s), port);
    spl_http_server_free(s);
    spl_metrics_free(reg);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_handlers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_bad_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test(test_stop_releases_port),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
