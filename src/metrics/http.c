/*
 * http.c - the embedded HTTP server (libmicrohttpd): /metrics, /status, /healthz and
 * the daemon's extra GET paths.
 *
 * We open the listening socket ourselves (so that a taken port is -EADDRINUSE, and port
 * 0 resolves through getsockname) and hand it to MHD, which runs one internal polling
 * thread and closes the socket on stop. Every path, the three built-in ones included,
 * is an entry of one handler table fixed before start, so the server thread reads the
 * table without a lock.
 */
#include "metrics/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "metrics/metrics.h"

#define BUILTIN_HANDLERS 3
#define HANDLERS_MAX (SPL_HTTP_HANDLERS_MAX + BUILTIN_HANDLERS)
#define HEALTH_REASON_MAX 256

struct handler {
    char *path;
    spl_http_handler_cb cb;
    void *arg;
};

struct spl_http_server {
    char *bind_address;
    char *component;
    uint16_t port_wanted;
    uint16_t port;
    struct spl_metrics *metrics;
    spl_http_status_cb status_cb;
    void *status_arg;
    spl_http_health_cb health_cb;
    void *health_arg;
    struct handler handlers[HANDLERS_MAX];
    size_t handler_count;
    struct MHD_Daemon *daemon;
    uint64_t start_mono_ns;
    bool started;
    bool stopped;
};

struct spl_http_exchange {
    struct MHD_Connection *conn;
    const char *path;
    unsigned status;
    const char *content_type;
    FILE *body;
};

/* ---- built-in handlers ---- */

static int handle_metrics(struct spl_http_exchange *x, void *arg)
{
    struct spl_http_server *s = arg;
    spl_http_set_content_type(x, SPL_METRICS_CONTENT_TYPE);
    return spl_metrics_write(s->metrics, x->body);
}

static int handle_status(struct spl_http_exchange *x, void *arg)
{
    struct spl_http_server *s = arg;
    struct json_object *root = json_object_new_object();
    if (!root)
        return -ENOMEM;
    json_object_object_add(root, "component", json_object_new_string(s->component));
    json_object_object_add(root, "version", json_object_new_string(spl_metrics_version()));
    json_object_object_add(root, "commit", json_object_new_string(spl_metrics_commit()));
    json_object_object_add(root, "pid", json_object_new_int64(getpid()));
    json_object_object_add(
        root, "uptime_seconds",
        json_object_new_double((double)(spl_mono_ns() - s->start_mono_ns) / SPL_NS_PER_SEC));
    int rc = s->status_cb ? s->status_cb(root, s->status_arg) : 0;
    if (rc == 0) {
        spl_http_set_content_type(x, "application/json");
        fputs(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE),
              x->body);
        fputc('\n', x->body);
    }
    json_object_put(root);
    return rc;
}

static int handle_healthz(struct spl_http_exchange *x, void *arg)
{
    struct spl_http_server *s = arg;
    char reason[HEALTH_REASON_MAX] = "";
    if (!s->health_cb || s->health_cb(reason, sizeof(reason), s->health_arg)) {
        fputs("ok\n", x->body);
        return 0;
    }
    reason[sizeof(reason) - 1] = '\0';
    spl_http_set_status(x, MHD_HTTP_SERVICE_UNAVAILABLE);
    fprintf(x->body, "unhealthy: %s\n", reason[0] ? reason : "(no reason given)");
    return 0;
}

/* ---- set-up ---- */

static void handler_add(struct spl_http_server *s, const char *path, spl_http_handler_cb cb,
                        void *arg)
{
    ASSERT_CMP(s->handler_count, <, HANDLERS_MAX);
    char *copy = strdup(path);
    ASSERTF(copy, "out of memory");
    s->handlers[s->handler_count++] = (struct handler){copy, cb, arg};
}

int spl_http_server_new(const struct spl_http_options *opts,
                        struct spl_http_server **server_out)
{
    struct in_addr probe;
    ASSERT(opts && server_out);
    const char *bind_address = opts->bind_address ? opts->bind_address : "127.0.0.1";
    if (inet_pton(AF_INET, bind_address, &probe) != 1)
        return -EINVAL;
    struct spl_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->bind_address = strdup(bind_address);
    s->component = strdup(opts->component ? opts->component : "spline");
    if (!s->bind_address || !s->component) {
        spl_http_server_free(s);
        return -ENOMEM;
    }
    s->port_wanted = opts->port;
    s->metrics = opts->metrics ? opts->metrics : spl_metrics_global();
    handler_add(s, "/metrics", handle_metrics, s);
    handler_add(s, "/status", handle_status, s);
    handler_add(s, "/healthz", handle_healthz, s);
    *server_out = s;
    return 0;
}

void spl_http_server_set_status_cb(struct spl_http_server *s, spl_http_status_cb status_cb,
                                   void *arg)
{
    ASSERT(s && !s->started);
    s->status_cb = status_cb;
    s->status_arg = arg;
}

void spl_http_server_set_health_cb(struct spl_http_server *s, spl_http_health_cb health_cb,
                                   void *arg)
{
    ASSERT(s && !s->started);
    s->health_cb = health_cb;
    s->health_arg = arg;
}

static struct handler *handler_find(struct spl_http_server *s, const char *path)
{
    for (size_t i = 0; i < s->handler_count; i++) {
        if (strcmp(s->handlers[i].path, path) == 0)
            return &s->handlers[i];
    }
    return NULL;
}

int spl_http_server_handle(struct spl_http_server *s, const char *path,
                           spl_http_handler_cb handler_cb, void *arg)
{
    ASSERT(s && !s->started && handler_cb);
    ASSERTF(path && path[0] == '/', "HTTP path \"%s\" must start with '/'", path);
    if (handler_find(s, path))
        return -EEXIST;
    if (s->handler_count >= HANDLERS_MAX)
        return -ENOSPC;
    handler_add(s, path, handler_cb, arg);
    return 0;
}

/* ---- serving ---- */

static enum MHD_Result send_response(struct MHD_Connection *conn, unsigned status,
                                     const char *content_type, char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = vasprintf(&body, fmt, ap);
    va_end(ap);
    if (len < 0)
        return MHD_NO;
    return send_response(conn, status, "text/plain; charset=utf-8", body, (size_t)len);
}

static enum MHD_Result run_handler(struct MHD_Connection *conn, const struct handler *h,
                                   const char *path)
{
    char *body = NULL;
    size_t len = 0;
    struct spl_http_exchange x = {
        .conn = conn,
        .path = path,
        .status = MHD_HTTP_OK,
        .content_type = "text/plain; charset=utf-8",
        .body = open_memstream(&body, &len),
    };
    if (!x.body)
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    int rc = h->cb(&x, h->arg);
    bool write_failed = fclose(x.body) != 0;
    if (rc == 0 && write_failed)
        rc = -ENOMEM;
    if (rc != 0) {
        free(body);
        LOG_WARN("http", "GET %s failed: %s", path, spl_strerror(rc));
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error: %s\n",
                         spl_strerror(rc));
    }
    return send_response(conn, x.status, x.content_type, body, len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct spl_http_server *s = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    const struct handler *h = handler_find(s, url);
    if (!h)
        return send_text(conn, MHD_HTTP_NOT_FOUND, "not found: %s\n", url);
    return run_handler(conn, h, url);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    LOG_WARN("http", "microhttpd: %s", line);
}

/* A listening TCP socket on bind_address:port; *port_out the bound port. */
static int listen_socket(const char *bind_address, uint16_t port, uint16_t *port_out)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    socklen_t addr_len = sizeof(addr);
    int one = 1, rc;
    ASSERT(inet_pton(AF_INET, bind_address, &addr.sin_addr) == 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(fd, SPL_HTTP_CONNS_MAX) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0)
        goto out_close_fd;
    *port_out = ntohs(addr.sin_port);
    return fd;

out_close_fd:
    rc = -errno;
    close(fd);
    return rc;
}

int spl_http_server_start(struct spl_http_server *s)
{
    ASSERT(s && !s->started);
    uint16_t port = 0;
    int fd = listen_socket(s->bind_address, s->port_wanted, &port);
    if (fd < 0) {
        LOG_ERROR("http", "cannot listen on %s:%u: %s", s->bind_address,
                  (unsigned)s->port_wanted, spl_strerror(fd));
        return fd == -EADDRINUSE ? -EADDRINUSE : -EIO;
    }
    s->start_mono_ns = spl_mono_ns();
    s->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)SPL_HTTP_CONNS_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SPL_HTTP_TIMEOUT_S, MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        LOG_ERROR("http", "microhttpd failed to start on %s:%u", s->bind_address,
                  (unsigned)port);
        return -EIO;
    }
    s->port = port;
    s->started = true;
    LOG_INFO("http", "serving /metrics, /status, /healthz on http://%s:%u", s->bind_address,
             (unsigned)port);
    return 0;
}

uint16_t spl_http_server_port(const struct spl_http_server *s)
{
    ASSERT(s);
    return s->started ? s->port : 0;
}

void spl_http_server_stop(struct spl_http_server *s)
{
    ASSERT(s);
    if (!s->started || s->stopped)
        return;
    MHD_stop_daemon(s->daemon); /* joins the thread, closes connections and the socket */
    s->daemon = NULL;
    s->stopped = true;
}

void spl_http_server_free(struct spl_http_server *s)
{
    if (!s)
        return;
    spl_http_server_stop(s);
    for (size_t i = 0; i < s->handler_count; i++)
        free(s->handlers[i].path);
    free(s->bind_address);
    free(s->component);
    free(s);
}

/* ---- for handlers ---- */

const char *spl_http_path(const struct spl_http_exchange *x) { return x->path; }

const char *spl_http_query_arg(const struct spl_http_exchange *x, const char *key)
{
    ASSERT(key);
    return MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, key);
}

void spl_http_set_status(struct spl_http_exchange *x, unsigned status)
{
    ASSERTF(status >= 100 && status <= 599, "HTTP status %u", status);
    x->status = status;
}

void spl_http_set_content_type(struct spl_http_exchange *x, const char *content_type)
{
    ASSERT(content_type);
    x->content_type = content_type;
}

FILE *spl_http_body(struct spl_http_exchange *x) { return x->body; }
