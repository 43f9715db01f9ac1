/*
 * stats.c - per-method RPC metrics in the runtime's registry:
 *   spline_rpc_{server,client}_requests_total{method}
 *   spline_rpc_{server,client}_errors_total{method,code}
 *   spline_rpc_{server,client}_received_bytes_total{method}
 *   spline_rpc_{server,client}_sent_bytes_total{method}
 *   spline_rpc_{server,client}_request_duration_seconds{method}
 * `method` is "service.Method" ("unknown" for frames that name no known method or
 * cannot be parsed), `code` the error's stable name (SPL_ERPC_TIMEDOUT ...).
 *
 * Children are created once per method (registry lock) and cached: in a direct table for
 * service ids below SPL__RPC_STATS_DIRECT (lock-free lookup on the call path), in a list
 * under a lock otherwise. Error children are created on a method's first error with a
 * given code, under the method's own lock (errors are not the hot path).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/errors.h"
#include "rpc/rpc_internal.h"

#define SPL__RPC_STATS_DIRECT 64

struct spl_rpc_stats_node {
    struct spl_rpc_stats_node *next;
    bool server;
    uint16_t service_id;
    uint32_t method_index;
    struct spl__rpc_method_stats stats;
};

struct spl_rpc_stats_side {
    struct spl_counter_family *requests, *errors, *bytes_in, *bytes_out;
    struct spl_histogram_family *latency;
};

struct spl__rpc_stats_table {
    struct spl_rpc_stats_side side[2]; /* [0] client, [1] server */
    pthread_mutex_t mu;
    struct spl_rpc_stats_node *all;    /* every node, for lookups beyond the table and free */
    _Atomic(struct spl__rpc_method_stats *) direct[2][SPL__RPC_STATS_DIRECT]
                                                  [SPL_RPC_METHODS_PER_SERVICE_MAX];
    _Atomic(struct spl__rpc_method_stats *) unknown[2];
};

static void spl_rpc_stats_side_init(struct spl_metrics *reg, struct spl_rpc_stats_side *s,
                                    const char *side)
{
    char name[96];
    snprintf(name, sizeof(name), "spline_rpc_%s_requests_total", side);
    s->requests = spl_counter_family(reg, name, "RPC requests completed, by method", "method");
    snprintf(name, sizeof(name), "spline_rpc_%s_errors_total", side);
    s->errors = spl_counter_family(reg, name, "RPC requests that ended in an error, by code",
                                   "method", "code");
    snprintf(name, sizeof(name), "spline_rpc_%s_received_bytes_total", side);
    s->bytes_in = spl_counter_family(reg, name, "RPC frame bytes received", "method");
    snprintf(name, sizeof(name), "spline_rpc_%s_sent_bytes_total", side);
    s->bytes_out = spl_counter_family(reg, name, "RPC frame bytes sent", "method");
    snprintf(name, sizeof(name), "spline_rpc_%s_request_duration_seconds", side);
    s->latency = spl_histogram_family(reg, name, "RPC request latency (server: arrival to "
                                      "reply written; client: call to completion)",
                                      SPL_METRIC_UNIT_SECONDS, "method");
}

int spl__rpc_stats_init(spl_rpc_runtime *rt)
{
    struct spl__rpc_stats_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    spl_rpc_stats_side_init(rt->metrics, &t->side[0], "client");
    spl_rpc_stats_side_init(rt->metrics, &t->side[1], "server");
    rt->stats = t;
    return 0;
}

void spl__rpc_stats_free(spl_rpc_runtime *rt)
{
    struct spl__rpc_stats_table *t = rt->stats;
    if (t == NULL)
        return;
    while (t->all != NULL) {
        struct spl_rpc_stats_node *n = t->all;
        t->all = n->next;
        pthread_mutex_destroy(&n->stats.errors_mu);
        free(n);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
    rt->stats = NULL;
}

/* Under t->mu: the node for (server, svc, method), created when missing. */
static struct spl__rpc_method_stats *spl_rpc_stats_node(struct spl__rpc_stats_table *t,
                                                        bool server,
                                                        const struct spl_rpc_service *svc,
                                                        uint32_t method_index)
{
    uint16_t id = svc != NULL ? svc->id : UINT16_MAX;
    uint32_t mi = svc != NULL ? method_index : UINT32_MAX;
    for (struct spl_rpc_stats_node *n = t->all; n != NULL; n = n->next)
        if (n->server == server && n->service_id == id && n->method_index == mi)
            return &n->stats;
    struct spl_rpc_stats_node *n = calloc(1, sizeof(*n));
    ASSERTF(n != NULL, "out of memory for rpc metrics");
    n->server = server;
    n->service_id = id;
    n->method_index = mi;
    struct spl__rpc_method_stats *s = &n->stats;
    if (svc != NULL)
        snprintf(s->label, sizeof(s->label), "%s.%s", svc->name, svc->methods[mi].name);
    else
        snprintf(s->label, sizeof(s->label), "unknown");
    const struct spl_rpc_stats_side *side = &t->side[server];
    s->requests = spl_counter_get(side->requests, s->label);
    s->bytes_in = spl_counter_get(side->bytes_in, s->label);
    s->bytes_out = spl_counter_get(side->bytes_out, s->label);
    s->latency = spl_histogram_get(side->latency, s->label);
    s->errors_family = side->errors;
    pthread_mutex_init(&s->errors_mu, NULL);
    n->next = t->all;
    t->all = n;
    return s;
}

struct spl__rpc_method_stats *spl__rpc_stats_get(spl_rpc_runtime *rt, bool server,
                                                 const struct spl_rpc_service *svc,
                                                 uint32_t method_index)
{
    struct spl__rpc_stats_table *t = rt->stats;
    _Atomic(struct spl__rpc_method_stats *) *slot = NULL;
    if (svc == NULL)
        slot = &t->unknown[server];
    else if (svc->id < SPL__RPC_STATS_DIRECT && method_index < SPL_RPC_METHODS_PER_SERVICE_MAX)
        slot = &t->direct[server][svc->id][method_index];
    if (slot != NULL) {
        struct spl__rpc_method_stats *s = atomic_load_explicit(slot, memory_order_acquire);
        if (s != NULL)
            return s;
    }
    pthread_mutex_lock(&t->mu);
    struct spl__rpc_method_stats *s = spl_rpc_stats_node(t, server, svc, method_index);
    if (slot != NULL)
        atomic_store_explicit(slot, s, memory_order_release);
    pthread_mutex_unlock(&t->mu);
    return s;
}

void spl__rpc_stats_error(struct spl__rpc_method_stats *s, int code)
{
    if (s == NULL)
        return;
    ASSERT(code < 0);
    struct spl_counter *c = NULL;
    pthread_mutex_lock(&s->errors_mu);
    for (uint32_t i = 0; i < s->error_count && c == NULL; i++)
        if (s->errors[i].code == code)
            c = s->errors[i].counter;
    if (c == NULL && s->error_count < SPL_ARRAY_SIZE(s->errors)) {
        c = spl_counter_get(s->errors_family, s->label, spl_errname(code));
        s->errors[s->error_count].code = code;
        s->errors[s->error_count++].counter = c;
    }
    if (c == NULL) {
        if (s->errors_other == NULL)
            s->errors_other = spl_counter_get(s->errors_family, s->label, "OTHER");
        c = s->errors_other;
    }
    pthread_mutex_unlock(&s->errors_mu);
    spl_counter_inc(c);
}
