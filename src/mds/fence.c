/* fence.c - leader fencing of MDS writes; see fence.h. */
#include "mds/fence.h"

#include <stdio.h>
#include <string.h>

#include "base/errors.h"

void spl_mds_fence_from_leader(struct spl_mds_fence *f, const struct spl_etcd_leader_key *lk)
{
    memset(f, 0, sizeof *f);
    f->set = true;
    snprintf(f->key, sizeof f->key, "%s", lk->key);
    f->rev = lk->rev;
}

void spl_mds_fence_guard(const struct spl_mds_fence *f, struct spl_etcd_txn *t)
{
    if (f && f->set)
        spl_etcd_txn_cmp(t, f->key, SPL_ETCD_CMP_CREATE, SPL_ETCD_EQ, f->rev);
}

int spl_mds_fence_check(const struct spl_mds_fence *f, spl_etcd *e, int rc)
{
    if (rc != SPL_EETCD_TXNFAIL || !f || !f->set)
        return rc;
    struct spl_etcd_kv kv;
    int grc = spl_etcd_get(e, f->key, &kv);
    if (grc == -ENOENT)
        return SPL_EMDS_NOTLEADER;
    if (grc < 0)
        return grc;
    bool ours = kv.create_revision == f->rev;
    spl_etcd_kv_free(&kv);
    return ours ? rc : SPL_EMDS_NOTLEADER;
}
