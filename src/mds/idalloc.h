/*
 * idalloc.h - unique 64-bit ids from an etcd counter, handed out in batches.
 *
 * Owns one counter key /spline/ids/<kind> holding the highest id ever reserved (decimal
 * text). A batch is reserved with a compare-and-swap transaction on that key, then ids are
 * handed out from memory. Ids are unique across batches, allocators, MDS processes and
 * restarts (an unused rest of a batch is simply skipped); they start at 1 and are never
 * reused. Ids are increasing within one allocator but not across allocators. With a
 * fence set (fence.h) a reservation is a leader's write like any other: it fails with
 * SPL_EMDS_NOTLEADER once the leadership is gone, so a deposed MDS moves no counter.
 * Thread-safe (one mutex per allocator; etcd is called with it held).
 */
#ifndef SPL_MDS_IDALLOC_H
#define SPL_MDS_IDALLOC_H

#include <pthread.h>
#include <stdint.h>

#include "base/limits.h"
#include "mds/etcd.h"
#include "mds/fence.h"

struct spl_idalloc {
    spl_etcd *e;
    struct spl_mds_fence fence; /* the owner's; every reservation carries it */
    char key[128];
    uint64_t batch;
    uint64_t next, end; /* ids in [next, end) are reserved for this allocator */
    pthread_mutex_t lock;
};

/* spl_idalloc_init - an allocator for kind ([a-z0-9_.]+) reserving batch ids at a time
 * (1..SPL_IDALLOC_BATCH_MAX). Does not contact etcd. */
void spl_idalloc_init(struct spl_idalloc *a, spl_etcd *e, const char *kind, uint64_t batch);
void spl_idalloc_destroy(struct spl_idalloc *a);

/* spl_idalloc_set_fence - later reservations carry fence f (NULL: none). Ids already
 * reserved stay usable: they are unique whoever reserved them. */
void spl_idalloc_set_fence(struct spl_idalloc *a, const struct spl_mds_fence *f);

/* spl_idalloc_next - one new id into *id. Etcd errors; SPL_EETCD_TXNFAIL after
 * SPL_IDALLOC_RETRIES_MAX lost races; SPL_EETCD_PROTO if the counter holds garbage;
 * SPL_EMDS_NOTLEADER when the fence no longer holds. */
int spl_idalloc_next(struct spl_idalloc *a, uint64_t *id);

/* spl_idalloc_many - n (<= batch) new ids into ids[]. Same errors; on error none is used. */
int spl_idalloc_many(struct spl_idalloc *a, uint64_t n, uint64_t *ids);

#endif
