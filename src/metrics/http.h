/*
 * http.h - the embedded HTTP server every daemon runs: /metrics, /status, /healthz.
 *
 * Owns: one libmicrohttpd daemon with its own thread, bound to 127.0.0.1 by default,
 * serving GET (and HEAD)
 *   /metrics  the registry in Prometheus text format 0.0.4 (metrics.h);
 *   /status   a JSON object: {"component", "version", "commit", "pid", "uptime_seconds"}
 *             plus whatever the daemon's status callback adds (json-c);
 *   /healthz  200 "ok\n", or 503 with the reason from the daemon's health callback;
 *   extra paths the daemon registers (spl_http_server_handle), e.g. MDS topology dumps;
 *   404 for anything else, 405 for methods other than GET/HEAD.
 * Leaves to others: what the status/health/extra handlers say, TLS and authentication
 * (bind to loopback or a management network instead).
 *
 * Threads: the set-up calls (new, set_*_cb, handle, start) come from one thread before
 * start; every callback then runs on the server's own thread, one request at a time, so
 * a callback must be safe against the daemon's other threads (read atomics, take the
 * daemon's own lock, or read a snapshot the daemon publishes). stop/free from the thread
 * that started it; once stop returns no callback is running or will run.
 */
#ifndef SPL_METRICS_HTTP_H
#define SPL_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct spl_metrics;
struct json_object;
struct spl_http_server;   /* opaque */
struct spl_http_exchange; /* one request being answered (opaque; valid in the callback) */

struct spl_http_options {
    const char *bind_address;    /* IPv4 literal; NULL: "127.0.0.1" */
    uint16_t port;               /* 0: the kernel picks a free port (spl_http_server_port) */
    struct spl_metrics *metrics; /* served at /metrics; NULL: spl_metrics_global() */
    const char *component;       /* "mds", "chunkserver" ... for /status; NULL: "spline" */
};

/* A handler for an extra path: write the body to spl_http_body(x); the status defaults
 * to 200 and the content type to text/plain. Return 0, or a negative code to answer 500
 * with spl_strerror(code) (whatever was written is dropped). */
typedef int (*spl_http_handler_cb)(struct spl_http_exchange *x, void *arg);

/* Fill *status (a JSON object that already holds the standard fields) with the daemon's
 * state. Return 0, or a negative code to answer 500. */
typedef int (*spl_http_status_cb)(struct json_object *status, void *arg);

/* true when healthy. When not, write a short reason (NUL-terminated, truncated to
 * reason_size) for the 503 body. */
typedef bool (*spl_http_health_cb)(char *reason, size_t reason_size, void *arg);

/* spl_http_server_new - a server, not yet listening. opts is copied (the strings too).
 * Returns 0 and *server_out, -EINVAL for a bad bind_address, or -ENOMEM. */
int spl_http_server_new(const struct spl_http_options *opts,
                        struct spl_http_server **server_out);

/* spl_http_server_set_status_cb / _set_health_cb - the daemon's /status and /healthz
 * callbacks (NULL: status has only the standard fields; health is always "ok").
 * Before start only. */
void spl_http_server_set_status_cb(struct spl_http_server *s, spl_http_status_cb status_cb,
                                   void *arg);
void spl_http_server_set_health_cb(struct spl_http_server *s, spl_http_health_cb health_cb,
                                   void *arg);

/* spl_http_server_handle - answer GET path (exact match, e.g. "/topology"; the query
 * string is not part of it) with handler_cb. Before start only. path is copied.
 * Returns 0, -EEXIST when path is already served (the built-in ones included), or
 * -ENOSPC beyond SPL_HTTP_HANDLERS_MAX. ASSERTs that path starts with '/'. */
int spl_http_server_handle(struct spl_http_server *s, const char *path,
                           spl_http_handler_cb handler_cb, void *arg);

/* spl_http_server_start - bind, listen and start the server thread. Returns 0,
 * -EADDRINUSE when the port is taken, or -EIO for any other failure (logged). */
int spl_http_server_start(struct spl_http_server *s);

/* spl_http_server_port - the bound port (the real one when options asked for 0); 0
 * before a successful start. */
uint16_t spl_http_server_port(const struct spl_http_server *s);

/* spl_http_server_stop - stop listening, close connections, join the thread. Idempotent;
 * a stopped server cannot be restarted. */
void spl_http_server_stop(struct spl_http_server *s);

/* spl_http_server_free - stop (if running) and free. NULL is a no-op. */
void spl_http_server_free(struct spl_http_server *s);

/* ---- for handlers ---- */

/* The request path, without the query string. */
const char *spl_http_path(const struct spl_http_exchange *x);
/* The value of query argument key (?key=value, URL-decoded), or NULL. */
const char *spl_http_query_arg(const struct spl_http_exchange *x, const char *key);
/* Response status (100..599) and content type (a static string). */
void spl_http_set_status(struct spl_http_exchange *x, unsigned status);
void spl_http_set_content_type(struct spl_http_exchange *x, const char *content_type);
/* The response body stream (in memory). */
FILE *spl_http_body(struct spl_http_exchange *x);

#endif
