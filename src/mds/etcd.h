/*
 * etcd.h - an etcd v3 client over etcd's JSON gateway (libcurl + json-c).
 *
 * Owns: the HTTP conversation with etcd (http://host:port/v3/...): key-value reads and
 * writes, ranges with pagination, transactions, leases and a lease keeper thread,
 * watches and election observers (each on its own thread), election campaign / leader /
 * proclaim / resign. Keys and values are byte strings (keys are passed as C strings;
 * values as pointer + length); base64 and the gateway's 64-bit-integers-as-strings are
 * handled here. Leaves to others: what the keys mean (topology.h, namespace.h), retries
 * of failed transactions, leadership policy.
 *
 * Endpoints and failover: a client knows several endpoints and sends to the current one;
 * when a request cannot be delivered (connect failure, etcd "unavailable") it moves to the
 * next endpoint and retries, at most once per endpoint. Reads are also retried after a
 * timeout; writes are not (they may have been applied), so a timed-out write returns
 * SPL_EETCD_UNAVAILABLE and the caller must re-read to learn the outcome.
 *
 * Errors: SPL_EETCD_UNAVAILABLE (no endpoint answered within the timeout),
 * SPL_EETCD_TXNFAIL (a transaction's compare failed), SPL_EETCD_PROTO (an answer we cannot
 * parse), SPL_EETCD_REJECTED (etcd refused the request as invalid), SPL_ETOOBIG (request
 * too large), SPL_EETCD_NOLEASE, SPL_EETCD_NOLEADER, SPL_EETCD_COMPACTED, -ENOENT (no such
 * key), -ETIMEDOUT (a blocking call's own deadline passed), -ECANCELED. The message of the
 * last failure on the calling thread is kept by spl_etcd_errmsg().
 *
 * Threads: a client is thread-safe. Unary calls take a libcurl easy handle from a small
 * pool guarded by a mutex (so concurrent calls run in parallel and keep their connections
 * alive); blocking calls (campaign) and streams (watch, observe) use their own handle.
 * Watch and observe callbacks run on the stream's own thread, one call at a time; a
 * callback must not stop its own stream. The lease keeper runs on its own thread.
 * spl_etcd_global_init() must run once before any thread uses a client (libcurl's rule).
 */
#ifndef SPL_MDS_ETCD_H
#define SPL_MDS_ETCD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"


typedef struct spl_etcd spl_etcd;

struct spl_etcd_config {
    /* "http://127.0.0.1:2379,http://10.0.0.2:2379" (a bare host:port means http). */
    const char *endpoints;
    uint32_t timeout_ms;         /* per request; 0: 5000 */
    uint32_t connect_timeout_ms; /* per connection attempt; 0: 1000 */
};

/* One key-value as etcd reports it. key and value are NUL-terminated copies owned by the
 * struct (value may also contain NULs: value_len is authoritative). */
struct spl_etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

/* The answer to a range: kvs[0..count), sorted by key. more: etcd has more keys past the
 * last one (ask again from last key + "\0"). total: keys in the whole range. */
struct spl_etcd_kvs {
    struct spl_etcd_kv *kvs;
    size_t count;
    bool more;
    int64_t total;
    int64_t revision; /* the store revision the answer was read at */
};

/* spl_etcd_global_init - libcurl's global init; call once from main before threads. */
void spl_etcd_global_init(void);

/* spl_etcd_open - a client for cfg->endpoints. Does not contact etcd. 0, SPL_ECONFIG for a
 * malformed endpoint list, -ENOMEM. *out is freed with spl_etcd_close. */
int spl_etcd_open(const struct spl_etcd_config *cfg, spl_etcd **out);

/* spl_etcd_close - free the client. No call on it may be running; watches, observers
 * and keepers started from it must be stopped first. NULL is fine. */
void spl_etcd_close(spl_etcd *e);

/* spl_etcd_errmsg - the message of the last etcd failure on the calling thread ("" if
 * none). Valid until the thread's next etcd call. */
const char *spl_etcd_errmsg(void);

/* spl_etcd_endpoint - the endpoint the client currently sends to (for logs). */
const char *spl_etcd_endpoint(spl_etcd *e);

void spl_etcd_kv_free(struct spl_etcd_kv *kv);
void spl_etcd_kvs_free(struct spl_etcd_kvs *kvs);

/* spl_etcd_prefix_end - the range_end that makes [prefix, end) every key starting with
 * prefix, into buf (cap bytes). 0 or SPL_ETOOBIG. An empty result means "to the end". */
int spl_etcd_prefix_end(const char *prefix, char *buf, size_t cap);

/* ---- key-value ---- */

/* spl_etcd_get - read one key into *out (caller frees with spl_etcd_kv_free).
 * 0, -ENOENT when absent, or a transport error. */
int spl_etcd_get(spl_etcd *e, const char *key, struct spl_etcd_kv *out);

/* spl_etcd_put - write key = value[0..len), attached to lease (0: none).
 * revision_out (may be NULL) receives the store revision of the write.
 * SPL_EETCD_NOLEASE when the lease does not exist. */
int spl_etcd_put(spl_etcd *e, const char *key, const void *value, size_t len, int64_t lease,
                 int64_t *revision_out);

/* spl_etcd_delete - delete key, or every key starting with key when prefix is true.
 * deleted_out (may be NULL) receives how many keys went. Deleting nothing is 0. */
int spl_etcd_delete(spl_etcd *e, const char *key, bool prefix, int64_t *deleted_out);

/* spl_etcd_range - keys in [key, range_end) (range_end NULL: just key; "" : to the end of
 * the key space), at most limit of them (0: no limit, but at most what etcd sends),
 * read at revision (0: the latest). *out is freed by spl_etcd_kvs_free.
 * SPL_EETCD_COMPACTED when revision was compacted away. */
int spl_etcd_range(spl_etcd *e, const char *key, const char *range_end, int64_t limit,
                   int64_t revision, struct spl_etcd_kvs *out);

/* spl_etcd_foreach_cb - called for each key of a spl_etcd_foreach; a non-zero return
 * stops the walk and becomes spl_etcd_foreach's result. */
typedef int (*spl_etcd_foreach_cb)(void *arg, const struct spl_etcd_kv *kv);

/* spl_etcd_foreach - every key starting with prefix, in key order, read page by page
 * (page_limit keys per request, 0: 1000), all pages at the revision of the first one so
 * the walk is a consistent snapshot. revision_out (may be NULL) gets that revision.
 * Returns 0, the callback's non-zero value, or a transport error. */
int spl_etcd_foreach(spl_etcd *e, const char *prefix, int64_t page_limit,
                     int64_t *revision_out, spl_etcd_foreach_cb cb, void *arg);

/* ---- transactions ---- */

enum spl_etcd_cmp_target {
    SPL_ETCD_CMP_VALUE,
    SPL_ETCD_CMP_VERSION,  /* 0 means "the key does not exist" */
    SPL_ETCD_CMP_CREATE,   /* create_revision */
    SPL_ETCD_CMP_MOD,      /* mod_revision */
    SPL_ETCD_CMP_LEASE,
};

enum spl_etcd_cmp_op {
    SPL_ETCD_EQ,
    SPL_ETCD_NE,
    SPL_ETCD_GT,
    SPL_ETCD_LT,
};

enum spl_etcd_op_type {
    SPL_ETCD_OP_PUT,
    SPL_ETCD_OP_DELETE,
    SPL_ETCD_OP_RANGE,
};

struct spl_etcd_cmp {
    char *key;
    enum spl_etcd_cmp_target target;
    enum spl_etcd_cmp_op op;
    int64_t number; /* VERSION/CREATE/MOD/LEASE */
    char *value;    /* VALUE */
    size_t value_len;
};

struct spl_etcd_op {
    enum spl_etcd_op_type type;
    char *key;
    char *range_end; /* DELETE/RANGE: NULL for one key */
    char *value;     /* PUT */
    size_t value_len;
    int64_t lease;   /* PUT */
};

/* A transaction under construction. Every string given to the builder is copied, so
 * callers may build keys in temporary buffers. Capacity: SPL_ETCD_TXN_CMP_MAX compares,
 * SPL_ETCD_TXN_OPS_MAX operations per branch (etcd's own limit); exceeding them is a
 * programmer error (ASSERT). Initialise with spl_etcd_txn_init; spl_etcd_txn_reset empties
 * it for reuse; spl_etcd_txn_free releases everything. */
struct spl_etcd_txn {
    struct spl_etcd_cmp cmp[SPL_ETCD_TXN_CMP_MAX];
    int cmp_count;
    struct spl_etcd_op *ops[2];   /* [0] success, [1] failure; SPL_ETCD_TXN_OPS_MAX each */
    int op_count[2];
};

enum spl_etcd_branch { SPL_ETCD_SUCCESS = 0, SPL_ETCD_FAILURE = 1 };

void spl_etcd_txn_init(struct spl_etcd_txn *t);
void spl_etcd_txn_reset(struct spl_etcd_txn *t);
void spl_etcd_txn_free(struct spl_etcd_txn *t);

/* Compares: number targets, and the value target. */
void spl_etcd_txn_cmp(struct spl_etcd_txn *t, const char *key, enum spl_etcd_cmp_target target,
                      enum spl_etcd_cmp_op op, int64_t number);
void spl_etcd_txn_cmp_value(struct spl_etcd_txn *t, const char *key, enum spl_etcd_cmp_op op,
                            const void *value, size_t len);

/* Operations, on the given branch. */
void spl_etcd_txn_put(struct spl_etcd_txn *t, enum spl_etcd_branch b, const char *key,
                      const void *value, size_t len, int64_t lease);
void spl_etcd_txn_delete(struct spl_etcd_txn *t, enum spl_etcd_branch b, const char *key,
                         const char *range_end);
void spl_etcd_txn_range(struct spl_etcd_txn *t, enum spl_etcd_branch b, const char *key,
                        const char *range_end);

/* spl_etcd_txn_ops_left - how many more operations fit in branch b. */
int spl_etcd_txn_ops_left(const struct spl_etcd_txn *t, enum spl_etcd_branch b);

/* The outcome: which branch ran, the revision after it, and for each operation of that
 * branch its range answer (empty for puts and deletes). */
struct spl_etcd_txn_result {
    bool succeeded;
    int64_t revision;
    int op_count;
    struct spl_etcd_kvs ranges[SPL_ETCD_TXN_OPS_MAX];
};

void spl_etcd_txn_result_free(struct spl_etcd_txn_result *r);

/* spl_etcd_txn - run t. Returns 0 when the compares held (success branch ran),
 * SPL_EETCD_TXNFAIL when they did not (failure branch ran: its ranges are in *res), or
 * a transport error (res untouched). res may be NULL; when given it must be freed with
 * spl_etcd_txn_result_free after any return. Never retried after a timeout. */
int spl_etcd_txn(spl_etcd *e, const struct spl_etcd_txn *t, struct spl_etcd_txn_result *res);

/* ---- leases ---- */

/* spl_etcd_lease_grant - a new lease of ttl_s seconds. *id_out the lease id; ttl_out (may
 * be NULL) the TTL etcd granted. */
int spl_etcd_lease_grant(spl_etcd *e, int64_t ttl_s, int64_t *id_out, int64_t *ttl_out);

/* spl_etcd_lease_keepalive - renew the lease once; ttl_out (may be NULL) gets the new TTL.
 * SPL_EETCD_NOLEASE when it has expired or was revoked. */
int spl_etcd_lease_keepalive(spl_etcd *e, int64_t id, int64_t *ttl_out);

/* spl_etcd_lease_ttl - seconds the lease has left; SPL_EETCD_NOLEASE when gone. */
int spl_etcd_lease_ttl(spl_etcd *e, int64_t id, int64_t *ttl_out);

/* spl_etcd_lease_revoke - revoke the lease (its keys are deleted). SPL_EETCD_NOLEASE
 * when it was already gone. */
int spl_etcd_lease_revoke(spl_etcd *e, int64_t id);

/* The keeper: a thread renewing one lease every ttl/3. When a renewal says the lease is
 * gone, or no renewal succeeded before the lease would have expired, lost_cb runs once
 * (on the keeper thread) and the keeper stops renewing. */
typedef struct spl_etcd_keeper spl_etcd_keeper;
typedef void (*spl_etcd_lease_lost_cb)(void *arg, int64_t lease, int reason);

/* spl_etcd_keeper_start - keep lease (of ttl_s seconds) alive. lost_cb may be NULL.
 * 0 or -ENOMEM / -errno from pthread_create. */
int spl_etcd_keeper_start(spl_etcd *e, int64_t lease, int64_t ttl_s,
                          spl_etcd_lease_lost_cb lost_cb, void *arg, spl_etcd_keeper **out);

/* spl_etcd_keeper_valid - true while the lease is surely alive: the last successful
 * renewal was *sent* less than its TTL ago. A leader serves only while this holds. It is
 * computed from the clock when called, so it turns false on time even while a renewal
 * request hangs (lost_cb only runs once that request returns). Any thread may call it. */
bool spl_etcd_keeper_valid(spl_etcd_keeper *k);

/* spl_etcd_keeper_stop - stop renewing (returns within about a second) and free k. The
 * lease is left to expire; revoke it first for a quick hand-over. NULL is fine. */
void spl_etcd_keeper_stop(spl_etcd_keeper *k);

/* ---- watch ---- */

enum spl_etcd_event_type { SPL_ETCD_EVENT_PUT, SPL_ETCD_EVENT_DELETE };

struct spl_etcd_event {
    enum spl_etcd_event_type type;
    struct spl_etcd_kv kv;      /* for DELETE: key and mod_revision only */
    bool has_prev;
    struct spl_etcd_kv prev_kv; /* when the watch asked for prev_kv and etcd had it */
};

/* Called on the watch thread with the events of one etcd answer (status 0), or once with
 * status SPL_EETCD_COMPACTED when the start revision is gone (the watch then ends; re-read
 * and watch again). Events are valid only during the call. */
typedef void (*spl_etcd_watch_cb)(void *arg, int status, const struct spl_etcd_event *events,
                                  size_t count, int64_t revision);

typedef struct spl_etcd_watch spl_etcd_watch;

/* spl_etcd_watch_start - watch key (prefix true: every key starting with key) from
 * start_revision (0: from now). Returns once etcd confirmed the watch is in place (so a
 * write made after the return is seen), or an error after the client's timeout. The watch
 * survives etcd restarts and endpoint changes: it reconnects and resumes after the last
 * revision it delivered. Stop with spl_etcd_watch_stop. */
int spl_etcd_watch_start(spl_etcd *e, const char *key, bool prefix, int64_t start_revision,
                         bool prev_kv, spl_etcd_watch_cb cb, void *arg, spl_etcd_watch **out);

/* spl_etcd_watch_stop - end the watch, join its thread (within about a second), free it.
 * No callback runs after it returns. NULL is fine. */
void spl_etcd_watch_stop(spl_etcd_watch *w);

/* ---- election ---- */

/* What campaign returns: the key that proves leadership (for proclaim and resign). */
struct spl_etcd_leader_key {
    char name[256];
    char key[512];
    int64_t rev;   /* create revision of key: compare on it to fence writes */
    int64_t lease;
};

/* spl_etcd_campaign - run for leader of election name with value, under lease (the
 * leadership ends when the lease does). Blocks until this campaigner leads, until
 * timeout_ms passes (0: no limit) -> -ETIMEDOUT, or until *cancel becomes true (cancel may
 * be NULL) -> -ECANCELED; in both cases the candidacy is withdrawn. */
int spl_etcd_campaign(spl_etcd *e, const char *name, int64_t lease, const void *value,
                      size_t len, uint32_t timeout_ms, const atomic_bool *cancel,
                      struct spl_etcd_leader_key *out);

/* spl_etcd_leader - the current leader's key and value. SPL_EETCD_NOLEADER when none. */
int spl_etcd_leader(spl_etcd *e, const char *name, struct spl_etcd_kv *out);

/* spl_etcd_proclaim - change the leader's value without an election. SPL_EETCD_NOLEADER
 * when lk no longer leads. */
int spl_etcd_proclaim(spl_etcd *e, const struct spl_etcd_leader_key *lk, const void *value,
                      size_t len);

/* spl_etcd_resign - give up leadership (the next campaigner takes over). */
int spl_etcd_resign(spl_etcd *e, const struct spl_etcd_leader_key *lk);

/* Called on the observer thread with each leader etcd reports (kv valid during the call). */
typedef void (*spl_etcd_observe_cb)(void *arg, const struct spl_etcd_kv *leader);

typedef struct spl_etcd_observer spl_etcd_observer;

/* spl_etcd_observe_start - report every leader change of election name (the current
 * leader first, when there is one). Reconnects by itself. */
int spl_etcd_observe_start(spl_etcd *e, const char *name, spl_etcd_observe_cb cb, void *arg,
                           spl_etcd_observer **out);
void spl_etcd_observe_stop(spl_etcd_observer *o);

#endif
