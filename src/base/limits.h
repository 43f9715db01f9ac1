/*
 * limits.h - every limit in Spline, with its reason and hard maximum (STYLE 7).
 *
 * Every loop and queue is bounded by one of these. Relations between limits are pinned
 * by static assertions at the bottom, so an incompatible change fails the build.
 * Each component edits only its own section.
 */
#ifndef SPL_BASE_LIMITS_H
#define SPL_BASE_LIMITS_H

#include "base/assert.h"

/* ---- storage geometry (DESIGN §1) ---- */
#define SPL_CHUNK_SIZE (16u << 20)           /* bytes in a chunk */
#define SPL_SEGMENT_SIZE (1ull << 30)        /* bytes in a segment */
#define SPL_CHUNKS_PER_SEGMENT (SPL_SEGMENT_SIZE / SPL_CHUNK_SIZE)
#define SPL_BLOCK_SIZE 4096u                 /* smallest I/O unit and alignment */
#define SPL_VOLUME_SIZE_MAX (1ull << 50)     /* 1 PiB: 2^20 segments */
#define SPL_VOLUME_NAME_MAX 128              /* bytes in a volume name */
#define SPL_REPLICAS_MAX 5                   /* replicas per copyset (3 by default) */

/* ---- base ---- */
#define SPL_CONFIG_LINE_MAX 4096             /* bytes in one config file line */
#define SPL_CONFIG_KEYS_MAX 256              /* keys in one config table */
#define SPL_CONFIG_FILE_MAX (1u << 20)       /* bytes in one config file */
#define SPL_IOBUF_BLOCK_SIZE (64u << 10)     /* default iobuf block: a socket read unit */
#define SPL_IOBUF_CACHE_BLOCKS_MAX 64        /* freed blocks kept per thread: 4 MiB */

/* ---- rpc ---- */
#define SPL_RPC_META_MAX (1u << 20)          /* protobuf metadata per frame: 1 MiB */
#define SPL_RPC_ATTACH_MAX (32u << 20)       /* raw attachment per frame: > 1 chunk write */
#define SPL_RPC_INFLIGHT_PER_CONN_MAX 4096   /* requests being served per server conn */
#define SPL_RPC_PENDING_PER_CHANNEL_MAX 65536 /* calls outstanding on one client channel */
#define SPL_RPC_SERVICES_MAX 32
#define SPL_RPC_METHODS_PER_SERVICE_MAX 64
#define SPL_RPC_CONNS_MAX 4096               /* accepted connections per server */
#define SPL_RPC_IO_THREADS_MAX 16            /* IO threads (libuv loops) per runtime */

/* ---- raft ---- */
#define SPL_RAFT_ENTRY_MAX (SPL_RPC_ATTACH_MAX) /* one proposal's bytes */
#define SPL_RAFT_BATCH_ENTRIES_MAX 256       /* entries per AppendEntries */
#define SPL_RAFT_BATCH_BYTES_MAX (8u << 20)  /* bytes per AppendEntries */
#define SPL_RAFT_INFLIGHT_MSGS_MAX 64        /* AppendEntries in flight per follower */
#define SPL_RAFT_PROPOSALS_MAX 4096          /* uncommitted proposals per group */
#define SPL_RAFT_GROUPS_MAX 4096             /* groups per process */
#define SPL_RAFT_PEERS_MAX (SPL_REPLICAS_MAX + 1) /* voters + learners per group, plus one */
#define SPL_RAFT_READS_MAX 1024              /* pending read-index requests per group */
#define SPL_RAFT_CATCHUP_LAG_MAX 64          /* entries a learner may lag to be promoted */
#define SPL_RAFT_SNAP_DATA_MAX (16u << 20)   /* app part of a snapshot's meta (chunk list) */
#define SPL_RAFT_HB_ROUNDS 64                /* heartbeat rounds remembered for the lease */
/* raft host (src/raftnode) */
#define SPL_RAFTNODE_WORKERS_MAX 64          /* Raft worker threads per host */
#define SPL_RAFTNODE_APPLY_THREADS_MAX 64    /* apply threads per host */
#define SPL_RAFTNODE_NODES_MAX 1024          /* peer processes one host talks to */
#define SPL_RAFTNODE_ADDR_MAX 128            /* bytes in "host:port" */
#define SPL_RAFTNODE_BATCH_MSGS_MAX 4096     /* Raft messages in one Send RPC */
#define SPL_RAFTNODE_BATCH_BYTES_MAX (16u << 20) /* bytes of one Send RPC's attachment */
#define SPL_RAFTNODE_APPLY_WINDOW 8192       /* entries of a group applying at once */
#define SPL_RAFTNODE_PENDING_MAX 8192        /* proposals + reads waiting per group */
#define SPL_RAFTNODE_PIECE_MAX (4u << 20)    /* bytes per GetFile */
#define SPL_RAFTNODE_FSM_BLOB_MAX (1u << 20) /* FSM part of a snapshot's metadata */

/* ---- raftlog (src/raftlog; layout in docs/format-raftlog.md) ---- */
#define SPL_RAFTLOG_SEGMENT_SIZE_DEFAULT (64u << 20) /* one pool file; a few s of 4 KiB writes */
#define SPL_RAFTLOG_SEGMENT_SIZE_MIN (64u << 10)  /* small segments for tests; >= header + 1 rec */
#define SPL_RAFTLOG_SEGMENT_SIZE_MAX (1u << 30)   /* record offsets are 32-bit */
#define SPL_RAFTLOG_SEGMENT_HEADER_SIZE 4096u     /* two header slots; records start here */
#define SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX 4096   /* live segments of one group */
#define SPL_RAFTLOG_APPEND_ENTRIES_MAX 65536      /* entries in one append call (a ready batch) */
#define SPL_RAFTLOG_READ_BYTES_MAX (64u << 20)    /* bytes one entries() read may return */
#define SPL_RAFTLOG_SYNC_THREADS_MAX 64           /* sync workers per env (per disk) */
#define SPL_RAFTLOG_POOL_FILES_MAX (1u << 20)     /* files in one walpool directory */
#define SPL_RAFTLOG_GROUPS_MAX SPL_RAFT_GROUPS_MAX /* open group logs per env */
#define SPL_RAFTLOG_PATH_MAX 512                  /* bytes in a group dir or pool path */
#define SPL_RAFTLOG_SNAP_FILES_MAX (1u << 20)     /* named files in snapshot metadata */
#define SPL_RAFTLOG_SNAP_NAME_MAX 255             /* bytes in one snapshot file name */
#define SPL_RAFTLOG_SNAP_BLOB_MAX SPL_RAFT_SNAP_DATA_MAX /* app bytes in snapshot meta */
#define SPL_RAFTLOG_SNAP_META_MAX (320u << 20)    /* whole snapshot meta file (files + blob) */

/* ---- mds ---- */
#define SPL_MDS_COPYSETS_PER_CS_MAX 1024     /* copysets one chunkserver may hold */
#define SPL_MDS_CHUNKSERVERS_MAX 65536
#define SPL_ETCD_VALUE_MAX (1u << 20)        /* etcd's default request limit is 1.5 MiB */
#define SPL_ETCD_TXN_OPS_MAX 128             /* etcd's default --max-txn-ops */
#define SPL_ETCD_TXN_CMP_MAX 128             /* compares in one txn (--max-txn-ops too) */
#define SPL_ETCD_ENDPOINTS_MAX 8             /* etcd members one client knows (3 or 5) */
#define SPL_ETCD_KEY_MAX 1024                /* bytes in a key (ours stay under 300) */
#define SPL_ETCD_RANGE_LIMIT_MAX 10000       /* keys per range page: bounds one answer */
#define SPL_ETCD_HANDLES_MAX 16              /* kept-alive connections per etcd client */
#define SPL_ETCD_RESPONSE_MAX (256u << 20)   /* bytes of one etcd answer */
#define SPL_IDALLOC_BATCH_MAX 1000000        /* ids reserved by one counter transaction */
#define SPL_IDALLOC_RETRIES_MAX 64           /* counter CAS attempts before giving up */
#define SPL_NS_RETRIES_MAX 16                /* attempts of a volume change that lost a race */
#define SPL_CLUSTER_FILE_MAX (4u << 20)      /* bytes in a cluster description file */
#define SPL_CLUSTER_OBJECTS_MAX 100000       /* pools+zones+servers+chunkservers+lpools */

/* ---- metrics ---- */
#define SPL_METRICS_FAMILIES_MAX 1024        /* families per registry */
#define SPL_METRICS_CHILDREN_MAX 4096        /* label tuples per family: cardinality cap */
#define SPL_METRICS_LABELS_MAX 4             /* label names per family */
#define SPL_METRICS_NAME_MAX 128             /* bytes in a metric or label name */
#define SPL_METRICS_HELP_MAX 512             /* bytes in a help string */
#define SPL_METRICS_LABEL_VALUE_MAX 256      /* bytes in a label value (a volume name fits) */
#define SPL_METRICS_SHARDS_MAX 16            /* shards per counter/histogram (~8 KiB each) */
#define SPL_HTTP_HANDLERS_MAX 32             /* extra GET paths per HTTP server */
#define SPL_HTTP_CONNS_MAX 64                /* concurrent HTTP connections (scrapers, curl) */
#define SPL_HTTP_TIMEOUT_S 10                /* idle HTTP connection timeout */

SPL_STATIC_ASSERT(SPL_CHUNK_SIZE % SPL_BLOCK_SIZE == 0, "chunk is whole blocks");
SPL_STATIC_ASSERT(SPL_SEGMENT_SIZE % SPL_CHUNK_SIZE == 0, "segment is whole chunks");
SPL_STATIC_ASSERT(SPL_RPC_ATTACH_MAX >= SPL_CHUNK_SIZE, "one frame carries a chunk write");
SPL_STATIC_ASSERT(SPL_RAFT_BATCH_BYTES_MAX <= SPL_RPC_ATTACH_MAX, "a batch fits a frame");
SPL_STATIC_ASSERT(SPL_METRICS_LABEL_VALUE_MAX >= SPL_VOLUME_NAME_MAX, "a volume name is a label");
SPL_STATIC_ASSERT(SPL_IOBUF_BLOCK_SIZE >= SPL_BLOCK_SIZE, "a block holds a 4 KiB write");
SPL_STATIC_ASSERT(SPL_ETCD_RESPONSE_MAX >= SPL_ETCD_TXN_OPS_MAX * (SPL_ETCD_VALUE_MAX / 3 * 4),
                  "a txn answer of max-size values (base64) fits one etcd answer");
SPL_STATIC_ASSERT(SPL_CHUNKS_PER_SEGMENT <= SPL_IDALLOC_BATCH_MAX, "a segment's ids in a batch");
SPL_STATIC_ASSERT(SPL_MDS_CHUNKSERVERS_MAX * SPL_MDS_COPYSETS_PER_CS_MAX / 3 <= 0xffffffffull,
                  "copyset ids of a full cluster fit 32 bits");
SPL_STATIC_ASSERT(SPL_RAFT_PEERS_MAX > SPL_REPLICAS_MAX, "room to add before removing");
SPL_STATIC_ASSERT(SPL_RAFTNODE_BATCH_BYTES_MAX <= SPL_RPC_ATTACH_MAX &&
                      SPL_RAFTNODE_BATCH_BYTES_MAX >= SPL_RAFT_BATCH_BYTES_MAX + (1u << 20),
                  "a Send RPC carries a whole append batch");
SPL_STATIC_ASSERT(SPL_RAFTNODE_PIECE_MAX <= SPL_RPC_ATTACH_MAX, "a file piece fits a frame");
SPL_STATIC_ASSERT(SPL_RAFTNODE_FSM_BLOB_MAX + (64u << 10) <= SPL_RAFT_SNAP_DATA_MAX,
                  "FSM blob fits the snapshot data with room for a file list");

SPL_STATIC_ASSERT(SPL_RAFTLOG_SEGMENT_SIZE_MIN % SPL_BLOCK_SIZE == 0, "segments are blocks");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SEGMENT_SIZE_DEFAULT >= SPL_RAFTLOG_SEGMENT_HEADER_SIZE + 64 +
                      SPL_RAFT_ENTRY_MAX, "a default segment holds the largest entry");
SPL_STATIC_ASSERT(SPL_RAFTLOG_READ_BYTES_MAX >= SPL_RAFT_ENTRY_MAX, "a read returns any entry");
SPL_STATIC_ASSERT(SPL_RAFTLOG_APPEND_ENTRIES_MAX >= SPL_RAFT_BATCH_ENTRIES_MAX *
                      SPL_RAFT_INFLIGHT_MSGS_MAX && SPL_RAFTLOG_APPEND_ENTRIES_MAX >=
                      SPL_RAFT_PROPOSALS_MAX, "an append takes a whole ready's entries");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SNAP_META_MAX >= 64 + SPL_RAFTLOG_SNAP_BLOB_MAX +
                      (uint64_t)SPL_RAFTLOG_SNAP_FILES_MAX * (10 + SPL_RAFTLOG_SNAP_NAME_MAX),
                  "snapshot meta holds every file name and the blob");

#endif
