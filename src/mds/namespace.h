/*
 * namespace.h - volumes, their segments and chunk ids, kept in etcd.
 *
 * Owns the namespace keys under /spline/ns/ (layout in docs/mds-keys.md) and the counters
 * /spline/ids/volume and /spline/ids/chunk: volume create / open / stat / list / extend /
 * rename / delete into a recycle bin / restore / purge (by hand or after a configurable
 * time), and lazy segment allocation. Every change is one etcd transaction whose compares
 * make it race-free against other threads, other clients of the same MDS and other MDS
 * processes (and, with a fence set, against a deposed leader); nothing is cached between
 * calls, so an MDS restarted at any moment serves exactly what etcd holds.
 * Leaves to others: copysets and their placement (topology.h, read-only here), deleting
 * the chunk files of purged volumes on chunkservers (purge leaves a /spline/ns/gc/ record
 * for that collector), client sessions and open handles.
 *
 * Threads: thread-safe; calls run in parallel (each is a few etcd round trips).
 */
#ifndef SPL_MDS_NAMESPACE_H
#define SPL_MDS_NAMESPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/limits.h"
#include "mds/etcd.h"
#include "mds/fence.h"
#include "mds/topology.h"

#define SPL_VOLUME_OWNER_MAX 64          /* bytes in an owner name, with the NUL */
#define SPL_NS_CHUNK_ID_BATCH_DEFAULT 4096 /* chunk ids reserved per counter transaction */

enum spl_volume_status {
    SPL_VOLUME_ACTIVE = 0,
    SPL_VOLUME_RECYCLED = 1, /* deleted: in the recycle bin, restorable until purged */
};

struct spl_volume {
    uint64_t id; /* never reused; stays the same across renames */
    char name[SPL_VOLUME_NAME_MAX];
    char owner[SPL_VOLUME_OWNER_MAX];
    uint64_t size_bytes; /* a multiple of SPL_SEGMENT_SIZE */
    uint32_t lpool_id;   /* the logical pool its segments are allocated in */
    enum spl_volume_status status;
    uint64_t ctime_ms;   /* creation, wall clock */
    uint64_t dtime_ms;   /* when it went to the recycle bin (RECYCLED only) */
    int64_t mod_revision;
};

struct spl_chunk_loc {
    uint64_t chunk_id;
    uint32_t copyset_id; /* within the segment's logical pool */
};

struct spl_segment {
    uint64_t volume_id;
    uint32_t index;    /* byte offset / SPL_SEGMENT_SIZE */
    uint32_t lpool_id;
    struct spl_chunk_loc chunks[SPL_CHUNKS_PER_SEGMENT];
};

struct spl_ns_options {
    const struct spl_clock *clock; /* NULL: spl_clock_real() (timestamps, recycle bin) */
    uint64_t recycle_ttl_ms;       /* how long deleted volumes stay restorable; 0: 7 days */
    uint64_t chunk_id_batch;       /* 0: SPL_NS_CHUNK_ID_BATCH_DEFAULT */
    uint64_t seed;                 /* copyset choice for segments; 0: from the OS */
};

typedef struct spl_ns spl_ns;

/* spl_ns_open - a namespace over etcd e, choosing copysets from topo (both owned by the
 * caller and outliving the namespace). opt may be NULL. Does not contact etcd. */
int spl_ns_open(spl_etcd *e, spl_topo *topo, const struct spl_ns_options *opt, spl_ns **out);
void spl_ns_close(spl_ns *ns);

/* spl_ns_set_fence - guard every later write with f (copied); NULL clears it. Call before
 * serving. */
void spl_ns_set_fence(spl_ns *ns, const struct spl_mds_fence *f);

/* spl_volume_name_valid - 1..SPL_VOLUME_NAME_MAX-1 bytes of [A-Za-z0-9_.-], starting with a
 * letter or digit. */
bool spl_volume_name_valid(const char *name);

/* spl_ns_create - a new volume of size_bytes in logical pool lpool_name (NULL or "": the
 * first ready logical pool). SPL_EVOL_BADNAME, SPL_EVOL_BADSIZE (not a positive multiple of
 * the segment size, or above SPL_VOLUME_SIZE_MAX), SPL_EVOL_EXISTS, SPL_ETOPO_NOTFOUND (no
 * such pool), SPL_ELPOOL_NOTREADY / SPL_ENOSPACE (no ready pool), etcd errors. out may be
 * NULL. */
int spl_ns_create(spl_ns *ns, const char *name, uint64_t size_bytes, const char *owner,
                  const char *lpool_name, struct spl_volume *out);

/* spl_ns_stat - the active volume called name. SPL_EVOL_BADNAME, SPL_EVOL_NOTFOUND. */
int spl_ns_stat(spl_ns *ns, const char *name, struct spl_volume *out);

/* spl_ns_open_volume - what a client opening name needs to start I/O (today: stat). */
int spl_ns_open_volume(spl_ns *ns, const char *name, struct spl_volume *out);

/* spl_ns_stat_id - any volume (active or recycled) by id. SPL_EVOL_NOTFOUND. */
int spl_ns_stat_id(spl_ns *ns, uint64_t id, struct spl_volume *out);

/* spl_ns_list - every active volume, by id, read as one consistent snapshot; a malloc'd
 * array the caller frees (NULL when empty). */
int spl_ns_list(spl_ns *ns, struct spl_volume **out, size_t *count);

/* spl_ns_extend - grow name to new_size_bytes. Growing to the current size is a no-op;
 * shrinking is SPL_EVOL_BADSIZE. out (may be NULL) gets the new record. */
int spl_ns_extend(spl_ns *ns, const char *name, uint64_t new_size_bytes,
                  struct spl_volume *out);

/* spl_ns_rename - rename from -> to (same id, same data). SPL_EVOL_EXISTS when `to` is
 * taken, SPL_EVOL_NOTFOUND, SPL_EVOL_BADNAME. Renaming to the same name is a no-op. */
int spl_ns_rename(spl_ns *ns, const char *from, const char *to);

/* spl_ns_delete - move name to the recycle bin: the name is free at once, the volume and
 * its data stay until purged. id_out (may be NULL) gets its id for a later restore. */
int spl_ns_delete(spl_ns *ns, const char *name, uint64_t *id_out);

/* spl_ns_recycle_list - volumes in the recycle bin (malloc'd array, by id). */
int spl_ns_recycle_list(spl_ns *ns, struct spl_volume **out, size_t *count);

/* spl_ns_restore - bring recycled volume id back as new_name (NULL or "": its old name).
 * SPL_ERECYCLE_NOTFOUND, SPL_EVOL_EXISTS when the name is taken meanwhile. */
int spl_ns_restore(spl_ns *ns, uint64_t id, const char *new_name, struct spl_volume *out);

/* spl_ns_purge - forget recycled volume id for good (its segments go to the chunk
 * collector's queue /spline/ns/gc/). SPL_ERECYCLE_NOTFOUND. */
int spl_ns_purge(spl_ns *ns, uint64_t id);

/* spl_ns_purge_expired - purge every recycled volume older than the recycle TTL;
 * purged_out (may be NULL) gets how many. */
int spl_ns_purge_expired(spl_ns *ns, size_t *purged_out);

/* spl_ns_get_segment - segment index of volume id, if allocated: -ENOENT otherwise. */
int spl_ns_get_segment(spl_ns *ns, uint64_t volume_id, uint32_t index, struct spl_segment *out);

/* spl_ns_get_or_alloc_segment - segment index of active volume id, allocating it (chunk
 * ids and copysets for its SPL_CHUNKS_PER_SEGMENT chunks) if needed. Idempotent and
 * race-free: concurrent callers, in any process, all get the one segment that won.
 * allocated_out (may be NULL): true when this call created it. SPL_EVOL_NOTFOUND (no
 * such active volume), SPL_ESEG_OUTOFRANGE, SPL_ELPOOL_NOTREADY, etcd errors. */
int spl_ns_get_or_alloc_segment(spl_ns *ns, uint64_t volume_id, uint32_t index,
                                struct spl_segment *out, bool *allocated_out);

#endif
