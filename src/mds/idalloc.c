/* idalloc.c - batched id allocation from an etcd counter; see idalloc.h. */
#include "mds/idalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"

void spl_idalloc_init(struct spl_idalloc *a, spl_etcd *e, const char *kind, uint64_t batch)
{
    ASSERT(a && e && kind && batch >= 1 && batch <= SPL_IDALLOC_BATCH_MAX);
    memset(a, 0, sizeof *a);
    a->e = e;
    a->batch = batch;
    int n = snprintf(a->key, sizeof a->key, "/spline/ids/%s", kind);
    ASSERT(n > 0 && (size_t)n < sizeof a->key);
    pthread_mutex_init(&a->lock, NULL);
}

void spl_idalloc_set_fence(struct spl_idalloc *a, const struct spl_mds_fence *f)
{
    pthread_mutex_lock(&a->lock);
    if (f)
        a->fence = *f;
    else
        memset(&a->fence, 0, sizeof a->fence);
    pthread_mutex_unlock(&a->lock);
}

void spl_idalloc_destroy(struct spl_idalloc *a)
{
    pthread_mutex_destroy(&a->lock);
}

/* Reserves a fresh batch of at least want ids: [next, end). Lock held. */
static int reserve(struct spl_idalloc *a, uint64_t want)
{
    uint64_t size = want > a->batch ? want : a->batch;
    struct spl_etcd_txn t;
    spl_etcd_txn_init(&t);
    int rc = SPL_EETCD_TXNFAIL;
    for (int attempt = 0; attempt < SPL_IDALLOC_RETRIES_MAX && rc == SPL_EETCD_TXNFAIL;
         attempt++) {
        struct spl_etcd_kv kv;
        uint64_t last = 0;
        int64_t mod = 0;
        rc = spl_etcd_get(a->e, a->key, &kv);
        if (rc == 0) {
            char *end;
            last = strtoull(kv.value, &end, 10);
            mod = kv.mod_revision;
            bool bad = *end != '\0' || kv.value_len == 0;
            spl_etcd_kv_free(&kv);
            if (bad) {
                rc = SPL_EETCD_PROTO;
                break;
            }
        } else if (rc != -ENOENT) {
            break;
        }
        char value[32];
        snprintf(value, sizeof value, "%" PRIu64, last + size);
        spl_etcd_txn_reset(&t);
        if (mod)
            spl_etcd_txn_cmp(&t, a->key, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, mod);
        else
            spl_etcd_txn_cmp(&t, a->key, SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
        spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, a->key, value, strlen(value), 0);
        spl_mds_fence_guard(&a->fence, &t);
        rc = spl_mds_fence_check(&a->fence, a->e, spl_etcd_txn(a->e, &t, NULL));
        if (rc == 0) {
            a->next = last + 1;
            a->end = last + size + 1;
        }
    }
    spl_etcd_txn_free(&t);
    if (rc < 0)
        LOG_WARN("mds", "id counter %s: %s", a->key, spl_strerror(rc));
    return rc;
}

int spl_idalloc_many(struct spl_idalloc *a, uint64_t n, uint64_t *ids)
{
    ASSERT(a && ids && n >= 1 && n <= SPL_IDALLOC_BATCH_MAX);
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    if (a->end - a->next < n)
        rc = reserve(a, n);
    if (rc == 0) {
        for (uint64_t i = 0; i < n; i++)
            ids[i] = a->next++;
        ASSERT(a->next <= a->end);
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int spl_idalloc_next(struct spl_idalloc *a, uint64_t *id)
{
    return spl_idalloc_many(a, 1, id);
}
