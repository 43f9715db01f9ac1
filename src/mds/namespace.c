/* namespace.c - volumes and segments in etcd; see namespace.h and docs/mds-keys.md. */
#include "mds/namespace.h"

#include <ctype.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/random.h"
#include "mds/idalloc.h"

#define NS_PREFIX "/spline/ns/"
#define NS_RECORD_VERSION 1
#define NS_RECYCLE_TTL_MS_DEFAULT (7ull * 24 * 3600 * 1000)
#define NS_VOLUME_ID_BATCH 16

struct spl_ns {
    spl_etcd *e;
    spl_topo *topo;
    const struct spl_clock *clock;
    uint64_t recycle_ttl_ms;
    struct spl_idalloc volume_ids;
    struct spl_idalloc chunk_ids;
    pthread_mutex_t lock; /* guards rng and fence */
    struct spl_rand rng;
    struct spl_mds_fence fence;
};

/* ---- keys ---- */

static void key_volume(char *buf, size_t cap, uint64_t id)
{
    snprintf(buf, cap, NS_PREFIX "volume/%020" PRIu64, id);
}

static void key_name(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, NS_PREFIX "name/%s", name);
}

static void key_recycle(char *buf, size_t cap, uint64_t id)
{
    snprintf(buf, cap, NS_PREFIX "recycle/%020" PRIu64, id);
}

static void key_gc(char *buf, size_t cap, uint64_t id)
{
    snprintf(buf, cap, NS_PREFIX "gc/%020" PRIu64, id);
}

static void key_segment(char *buf, size_t cap, uint64_t volume_id, uint32_t index)
{
    snprintf(buf, cap, NS_PREFIX "segment/%020" PRIu64 "/%010" PRIu32, volume_id, index);
}

/* ---- records ---- */

static char *json_text(json_object *o)
{
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    ASSERT(s != NULL);
    return s;
}

static char *enc_volume(const struct spl_volume *v)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int(NS_RECORD_VERSION));
    json_object_object_add(o, "id", json_object_new_uint64(v->id));
    json_object_object_add(o, "name", json_object_new_string(v->name));
    json_object_object_add(o, "owner", json_object_new_string(v->owner));
    json_object_object_add(o, "size", json_object_new_uint64(v->size_bytes));
    json_object_object_add(o, "lpool", json_object_new_uint64(v->lpool_id));
    const char *status = v->status == SPL_VOLUME_ACTIVE ? "active" : "recycled";
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "ctime_ms", json_object_new_uint64(v->ctime_ms));
    json_object_object_add(o, "dtime_ms", json_object_new_uint64(v->dtime_ms));
    return json_text(o);
}

static bool get_u64(json_object *o, const char *k, uint64_t *v)
{
    json_object *x;
    if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int))
        return false;
    *v = json_object_get_uint64(x);
    return true;
}

static bool get_str(json_object *o, const char *k, char *dst, size_t cap)
{
    json_object *x;
    if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_string) ||
        (size_t)json_object_get_string_len(x) >= cap)
        return false;
    memcpy(dst, json_object_get_string(x), (size_t)json_object_get_string_len(x) + 1);
    return true;
}

static int dec_volume(const struct spl_etcd_kv *kv, struct spl_volume *v)
{
    memset(v, 0, sizeof *v);
    json_object *o = json_tokener_parse(kv->value);
    uint64_t lpool = 0;
    char status[16];
    bool ok = o && get_u64(o, "id", &v->id) && get_str(o, "name", v->name, sizeof v->name) &&
              get_str(o, "owner", v->owner, sizeof v->owner) &&
              get_u64(o, "size", &v->size_bytes) && get_u64(o, "lpool", &lpool) &&
              get_str(o, "status", status, sizeof status) &&
              get_u64(o, "ctime_ms", &v->ctime_ms) && get_u64(o, "dtime_ms", &v->dtime_ms);
    json_object_put(o);
    v->lpool_id = (uint32_t)lpool;
    v->status = strcmp(status, "active") == 0 ? SPL_VOLUME_ACTIVE : SPL_VOLUME_RECYCLED;
    v->mod_revision = kv->mod_revision;
    if (!ok || lpool > UINT32_MAX) {
        LOG_ERROR("mds", "volume record %s does not parse", kv->key);
        return SPL_EETCD_PROTO;
    }
    return 0;
}

static char *enc_segment(const struct spl_segment *s)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(o, "v", json_object_new_int(NS_RECORD_VERSION));
    json_object_object_add(o, "volume", json_object_new_uint64(s->volume_id));
    json_object_object_add(o, "index", json_object_new_uint64(s->index));
    json_object_object_add(o, "lpool", json_object_new_uint64(s->lpool_id));
    for (size_t i = 0; i < SPL_CHUNKS_PER_SEGMENT; i++) {
        json_object *pair = json_object_new_array();
        json_object_array_add(pair, json_object_new_uint64(s->chunks[i].chunk_id));
        json_object_array_add(pair, json_object_new_uint64(s->chunks[i].copyset_id));
        json_object_array_add(arr, pair);
    }
    json_object_object_add(o, "chunks", arr);
    return json_text(o);
}

static int dec_segment(const struct spl_etcd_kv *kv, struct spl_segment *s)
{
    memset(s, 0, sizeof *s);
    json_object *o = json_tokener_parse(kv->value), *arr;
    uint64_t index = 0, lpool = 0;
    bool ok = o && get_u64(o, "volume", &s->volume_id) && get_u64(o, "index", &index) &&
              get_u64(o, "lpool", &lpool) && json_object_object_get_ex(o, "chunks", &arr) &&
              json_object_is_type(arr, json_type_array) &&
              json_object_array_length(arr) == SPL_CHUNKS_PER_SEGMENT;
    for (size_t i = 0; ok && i < SPL_CHUNKS_PER_SEGMENT; i++) {
        json_object *pair = json_object_array_get_idx(arr, i);
        ok = json_object_is_type(pair, json_type_array) && json_object_array_length(pair) == 2;
        if (ok) {
            s->chunks[i].chunk_id = json_object_get_uint64(json_object_array_get_idx(pair, 0));
            s->chunks[i].copyset_id =
                (uint32_t)json_object_get_uint64(json_object_array_get_idx(pair, 1));
        }
    }
    json_object_put(o);
    s->index = (uint32_t)index;
    s->lpool_id = (uint32_t)lpool;
    if (!ok) {
        LOG_ERROR("mds", "segment record %s does not parse", kv->key);
        return SPL_EETCD_PROTO;
    }
    return 0;
}

/* ---- open / close ---- */

int spl_ns_open(spl_etcd *e, spl_topo *topo, const struct spl_ns_options *opt, spl_ns **out)
{
    ASSERT(e && topo && out);
    struct spl_ns_options o = opt ? *opt : (struct spl_ns_options){0};
    spl_ns *ns = calloc(1, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    ns->e = e;
    ns->topo = topo;
    ns->clock = o.clock ? o.clock : spl_clock_real();
    ns->recycle_ttl_ms = o.recycle_ttl_ms ? o.recycle_ttl_ms : NS_RECYCLE_TTL_MS_DEFAULT;
    uint64_t batch = o.chunk_id_batch ? o.chunk_id_batch : SPL_NS_CHUNK_ID_BATCH_DEFAULT;
    if (batch < SPL_CHUNKS_PER_SEGMENT)
        batch = SPL_CHUNKS_PER_SEGMENT;
    spl_idalloc_init(&ns->volume_ids, e, "volume", NS_VOLUME_ID_BATCH);
    spl_idalloc_init(&ns->chunk_ids, e, "chunk", batch);
    pthread_mutex_init(&ns->lock, NULL);
    if (o.seed)
        spl_rand_seed(&ns->rng, o.seed);
    else
        spl_rand_seed_from_os(&ns->rng);
    *out = ns;
    return 0;
}

void spl_ns_close(spl_ns *ns)
{
    if (!ns)
        return;
    spl_idalloc_destroy(&ns->volume_ids);
    spl_idalloc_destroy(&ns->chunk_ids);
    pthread_mutex_destroy(&ns->lock);
    free(ns);
}

void spl_ns_set_fence(spl_ns *ns, const struct spl_mds_fence *f)
{
    pthread_mutex_lock(&ns->lock);
    if (f)
        ns->fence = *f;
    else
        memset(&ns->fence, 0, sizeof ns->fence);
    pthread_mutex_unlock(&ns->lock);
    spl_idalloc_set_fence(&ns->volume_ids, f);
    spl_idalloc_set_fence(&ns->chunk_ids, f);
}

bool spl_volume_name_valid(const char *name)
{
    size_t n = strnlen(name, SPL_VOLUME_NAME_MAX);
    if (n == 0 || n >= SPL_VOLUME_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

static bool size_valid(uint64_t size)
{
    return size > 0 && size % SPL_SEGMENT_SIZE == 0 && size <= SPL_VOLUME_SIZE_MAX;
}

static uint64_t now_ms(spl_ns *ns)
{
    return spl_clock_wall_ns(ns->clock) / SPL_NS_PER_MS;
}

/* Runs txn with the fence; sorts out a failed compare. */
static int commit(spl_ns *ns, struct spl_etcd_txn *t, struct spl_etcd_txn_result *res)
{
    struct spl_mds_fence f;
    pthread_mutex_lock(&ns->lock);
    f = ns->fence;
    pthread_mutex_unlock(&ns->lock);
    spl_mds_fence_guard(&f, t);
    int rc = spl_etcd_txn(ns->e, t, res);
    return spl_mds_fence_check(&f, ns->e, rc);
}

/* ---- reads ---- */

static int read_volume_id(spl_ns *ns, uint64_t id, int64_t revision, struct spl_volume *v)
{
    char k[96];
    key_volume(k, sizeof k, id);
    struct spl_etcd_kvs r;
    int rc = spl_etcd_range(ns->e, k, NULL, 0, revision, &r);
    if (rc < 0)
        return rc;
    rc = r.count == 1 ? dec_volume(&r.kvs[0], v) : SPL_EVOL_NOTFOUND;
    spl_etcd_kvs_free(&r);
    return rc;
}

/* The active volume called name: the name key and the volume record read at the same
 * revision, so a concurrent rename cannot mix two states. */
static int read_volume_name(spl_ns *ns, const char *name, struct spl_volume *v)
{
    if (!spl_volume_name_valid(name))
        return SPL_EVOL_BADNAME;
    char k[256];
    key_name(k, sizeof k, name);
    struct spl_etcd_kvs r;
    int rc = spl_etcd_range(ns->e, k, NULL, 0, 0, &r);
    if (rc < 0)
        return rc;
    if (r.count != 1) {
        spl_etcd_kvs_free(&r);
        return SPL_EVOL_NOTFOUND;
    }
    uint64_t id = strtoull(r.kvs[0].value, NULL, 10);
    int64_t revision = r.revision;
    spl_etcd_kvs_free(&r);
    rc = read_volume_id(ns, id, revision, v);
    if (rc == 0 && (v->status != SPL_VOLUME_ACTIVE || strcmp(v->name, name) != 0)) {
        LOG_ERROR("mds", "name index '%s' points at volume %" PRIu64 " named '%s'", name, id,
                  v->name);
        rc = SPL_EETCD_PROTO;
    }
    return rc;
}

int spl_ns_stat(spl_ns *ns, const char *name, struct spl_volume *out)
{
    ASSERT(ns && name && out);
    return read_volume_name(ns, name, out);
}

int spl_ns_open_volume(spl_ns *ns, const char *name, struct spl_volume *out)
{
    return spl_ns_stat(ns, name, out);
}

int spl_ns_stat_id(spl_ns *ns, uint64_t id, struct spl_volume *out)
{
    ASSERT(ns && out);
    return read_volume_id(ns, id, 0, out);
}

struct collect {
    struct spl_volume *vols;
    size_t count, cap;
    enum spl_volume_status status;
};

static int collect_cb(void *arg, const struct spl_etcd_kv *kv)
{
    struct collect *c = arg;
    struct spl_volume v;
    int rc = dec_volume(kv, &v);
    if (rc < 0)
        return rc;
    if (v.status != c->status)
        return 0;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct spl_volume *n = realloc(c->vols, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->vols = n;
        c->cap = cap;
    }
    c->vols[c->count++] = v;
    return 0;
}

static int list_status(spl_ns *ns, enum spl_volume_status status, struct spl_volume **out,
                       size_t *count)
{
    ASSERT(ns && out && count);
    struct collect c = {.status = status};
    int rc = spl_etcd_foreach(ns->e, NS_PREFIX "volume/", 1000, NULL, collect_cb, &c);
    if (rc < 0) {
        free(c.vols);
        c.vols = NULL;
        c.count = 0;
    }
    *out = c.vols;
    *count = c.count;
    return rc;
}

int spl_ns_list(spl_ns *ns, struct spl_volume **out, size_t *count)
{
    return list_status(ns, SPL_VOLUME_ACTIVE, out, count);
}

int spl_ns_recycle_list(spl_ns *ns, struct spl_volume **out, size_t *count)
{
    return list_status(ns, SPL_VOLUME_RECYCLED, out, count);
}

/* ---- volume changes ---- */

static int pick_lpool(spl_ns *ns, const char *lpool_name, struct spl_topo_lpool *out)
{
    if (lpool_name && lpool_name[0]) {
        int rc = spl_topo_find_lpool(ns->topo, lpool_name, out);
        if (rc < 0)
            return rc;
        return out->state == SPL_LPOOL_READY ? 0 : SPL_ELPOOL_NOTREADY;
    }
    struct spl_topo_lpool *all;
    size_t n;
    int rc = spl_topo_list_lpools(ns->topo, &all, &n);
    if (rc < 0)
        return rc;
    rc = n ? SPL_ELPOOL_NOTREADY : SPL_ENOSPACE;
    for (size_t i = 0; i < n; i++)
        if (all[i].state == SPL_LPOOL_READY) {
            *out = all[i];
            rc = 0;
            break;
        }
    free(all);
    return rc;
}

int spl_ns_create(spl_ns *ns, const char *name, uint64_t size_bytes, const char *owner,
                  const char *lpool_name, struct spl_volume *out)
{
    ASSERT(ns && name);
    if (!spl_volume_name_valid(name))
        return SPL_EVOL_BADNAME;
    if (!size_valid(size_bytes))
        return SPL_EVOL_BADSIZE;
    if (owner && strlen(owner) >= SPL_VOLUME_OWNER_MAX)
        return SPL_EINVAL_ARG;
    struct spl_topo_lpool lpool;
    int rc = pick_lpool(ns, lpool_name, &lpool);
    if (rc < 0)
        return rc;
    struct spl_volume v = {.size_bytes = size_bytes, .lpool_id = lpool.id,
                           .status = SPL_VOLUME_ACTIVE, .ctime_ms = now_ms(ns)};
    snprintf(v.name, sizeof v.name, "%s", name);
    snprintf(v.owner, sizeof v.owner, "%s", owner ? owner : "");
    if ((rc = spl_idalloc_next(&ns->volume_ids, &v.id)) < 0)
        return rc;
    char nk[256], vk[96], idtext[24];
    key_name(nk, sizeof nk, name);
    key_volume(vk, sizeof vk, v.id);
    snprintf(idtext, sizeof idtext, "%" PRIu64, v.id);
    char *value = enc_volume(&v);
    struct spl_etcd_txn t;
    struct spl_etcd_txn_result res;
    spl_etcd_txn_init(&t);
    spl_etcd_txn_cmp(&t, nk, SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
    spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, nk, idtext, strlen(idtext), 0);
    spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, vk, value, strlen(value), 0);
    free(value);
    rc = commit(ns, &t, &res);
    if (rc == 0)
        v.mod_revision = res.revision;
    spl_etcd_txn_result_free(&res);
    spl_etcd_txn_free(&t);
    if (rc == SPL_EETCD_TXNFAIL)
        return SPL_EVOL_EXISTS;
    if (rc == 0) {
        LOG_INFO("mds", "volume '%s' created: id %" PRIu64 ", %" PRIu64 " bytes, lpool %u",
                 name, v.id, size_bytes, lpool.id);
        if (out)
            *out = v;
    }
    return rc;
}

/* The shape of every read-modify-write on a volume: read it by name, let change() decide
 * and fill the transaction (it returns 1 for "nothing to do"), commit with the record's
 * mod_revision as a compare, retry a lost race. on_fail() maps a failed compare that is
 * not a lost race (e.g. a taken name); it returns 0 to retry. */
struct vol_change {
    const char *name;
    uint64_t id; /* when name is NULL: by id */
    int (*change)(struct vol_change *c, struct spl_volume *v, struct spl_etcd_txn *t);
    int (*on_fail)(struct vol_change *c);
    spl_ns *ns;
    const void *arg;
    struct spl_volume result;
};

static int vol_change_run(struct vol_change *c)
{
    struct spl_etcd_txn t;
    spl_etcd_txn_init(&t);
    int rc = SPL_EETCD_TXNFAIL;
    for (int attempt = 0; attempt < SPL_NS_RETRIES_MAX && rc == SPL_EETCD_TXNFAIL; attempt++) {
        struct spl_volume v;
        rc = c->name ? read_volume_name(c->ns, c->name, &v)
                     : read_volume_id(c->ns, c->id, 0, &v);
        if (rc < 0)
            break;
        char vk[96];
        key_volume(vk, sizeof vk, v.id);
        spl_etcd_txn_reset(&t);
        spl_etcd_txn_cmp(&t, vk, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, v.mod_revision);
        rc = c->change(c, &v, &t);
        if (rc == 1) {
            c->result = v;
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        struct spl_etcd_txn_result res;
        rc = commit(c->ns, &t, &res);
        if (rc == 0) {
            v.mod_revision = res.revision;
            c->result = v;
        }
        spl_etcd_txn_result_free(&res);
        if (rc == SPL_EETCD_TXNFAIL && c->on_fail) {
            int frc = c->on_fail(c);
            if (frc < 0)
                rc = frc;
        }
    }
    spl_etcd_txn_free(&t);
    return rc;
}

static void put_volume(struct spl_etcd_txn *t, const struct spl_volume *v)
{
    char vk[96];
    key_volume(vk, sizeof vk, v->id);
    char *value = enc_volume(v);
    spl_etcd_txn_put(t, SPL_ETCD_SUCCESS, vk, value, strlen(value), 0);
    free(value);
}

static int extend_change(struct vol_change *c, struct spl_volume *v, struct spl_etcd_txn *t)
{
    uint64_t size = *(const uint64_t *)c->arg;
    if (size == v->size_bytes)
        return 1;
    if (size < v->size_bytes)
        return SPL_EVOL_BADSIZE;
    v->size_bytes = size;
    put_volume(t, v);
    return 0;
}

int spl_ns_extend(spl_ns *ns, const char *name, uint64_t new_size_bytes,
                  struct spl_volume *out)
{
    ASSERT(ns && name);
    if (!size_valid(new_size_bytes))
        return SPL_EVOL_BADSIZE;
    struct vol_change c = {.ns = ns, .name = name, .change = extend_change,
                           .arg = &new_size_bytes};
    int rc = vol_change_run(&c);
    if (rc == 0 && out)
        *out = c.result;
    return rc;
}

static int rename_change(struct vol_change *c, struct spl_volume *v, struct spl_etcd_txn *t)
{
    const char *to = c->arg;
    if (strcmp(v->name, to) == 0)
        return 1;
    char ok[256], nk[256], idtext[24];
    key_name(ok, sizeof ok, v->name);
    key_name(nk, sizeof nk, to);
    snprintf(idtext, sizeof idtext, "%" PRIu64, v->id);
    spl_etcd_txn_cmp(t, nk, SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
    spl_etcd_txn_delete(t, SPL_ETCD_SUCCESS, ok, NULL);
    spl_etcd_txn_put(t, SPL_ETCD_SUCCESS, nk, idtext, strlen(idtext), 0);
    snprintf(v->name, sizeof v->name, "%s", to);
    put_volume(t, v);
    return 0;
}

/* A failed rename/restore compare: the target name is taken, or the record changed. */
static int name_taken_check(struct vol_change *c)
{
    char nk[256];
    key_name(nk, sizeof nk, (const char *)c->arg);
    struct spl_etcd_kv kv;
    int rc = spl_etcd_get(c->ns->e, nk, &kv);
    if (rc == 0) {
        spl_etcd_kv_free(&kv);
        return SPL_EVOL_EXISTS;
    }
    return rc == -ENOENT ? 0 : rc;
}

int spl_ns_rename(spl_ns *ns, const char *from, const char *to)
{
    ASSERT(ns && from && to);
    if (!spl_volume_name_valid(from) || !spl_volume_name_valid(to))
        return SPL_EVOL_BADNAME;
    struct vol_change c = {.ns = ns, .name = from, .change = rename_change,
                           .on_fail = name_taken_check, .arg = to};
    int rc = vol_change_run(&c);
    if (rc == 0)
        LOG_INFO("mds", "volume '%s' renamed to '%s'", from, to);
    return rc;
}

static int delete_change(struct vol_change *c, struct spl_volume *v, struct spl_etcd_txn *t)
{
    char nk[256], rk[96];
    key_name(nk, sizeof nk, v->name);
    key_recycle(rk, sizeof rk, v->id);
    v->status = SPL_VOLUME_RECYCLED;
    v->dtime_ms = now_ms(c->ns);
    spl_etcd_txn_delete(t, SPL_ETCD_SUCCESS, nk, NULL);
    put_volume(t, v);
    char entry[64];
    snprintf(entry, sizeof entry, "%" PRIu64, v->dtime_ms);
    spl_etcd_txn_put(t, SPL_ETCD_SUCCESS, rk, entry, strlen(entry), 0);
    return 0;
}

int spl_ns_delete(spl_ns *ns, const char *name, uint64_t *id_out)
{
    ASSERT(ns && name);
    struct vol_change c = {.ns = ns, .name = name, .change = delete_change};
    int rc = vol_change_run(&c);
    if (rc == 0) {
        LOG_INFO("mds", "volume '%s' (id %" PRIu64 ") moved to the recycle bin", name,
                 c.result.id);
        if (id_out)
            *id_out = c.result.id;
    }
    return rc;
}

static int restore_change(struct vol_change *c, struct spl_volume *v, struct spl_etcd_txn *t)
{
    char *name = (char *)c->arg; /* spl_ns_restore's buffer of SPL_VOLUME_NAME_MAX */
    if (v->status != SPL_VOLUME_RECYCLED)
        return SPL_ERECYCLE_NOTFOUND;
    if (!name[0]) /* the old name; kept for name_taken_check and later attempts */
        memcpy(name, v->name, sizeof v->name);
    char nk[256], rk[96], idtext[24];
    key_name(nk, sizeof nk, name);
    key_recycle(rk, sizeof rk, v->id);
    snprintf(idtext, sizeof idtext, "%" PRIu64, v->id);
    spl_etcd_txn_cmp(t, nk, SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
    spl_etcd_txn_put(t, SPL_ETCD_SUCCESS, nk, idtext, strlen(idtext), 0);
    spl_etcd_txn_delete(t, SPL_ETCD_SUCCESS, rk, NULL);
    memcpy(v->name, name, sizeof v->name);
    v->status = SPL_VOLUME_ACTIVE;
    v->dtime_ms = 0;
    put_volume(t, v);
    return 0;
}

int spl_ns_restore(spl_ns *ns, uint64_t id, const char *new_name, struct spl_volume *out)
{
    ASSERT(ns);
    if (new_name && new_name[0] && !spl_volume_name_valid(new_name))
        return SPL_EVOL_BADNAME;
    char name[SPL_VOLUME_NAME_MAX];
    snprintf(name, sizeof name, "%s", new_name ? new_name : "");
    struct vol_change c = {.ns = ns, .id = id, .change = restore_change,
                           .on_fail = name_taken_check, .arg = name};
    int rc = vol_change_run(&c);
    if (rc == SPL_EVOL_NOTFOUND)
        rc = SPL_ERECYCLE_NOTFOUND;
    if (rc == 0) {
        LOG_INFO("mds", "volume %" PRIu64 " restored as '%s'", id, c.result.name);
        if (out)
            *out = c.result;
    }
    return rc;
}

static int purge_change(struct vol_change *c, struct spl_volume *v, struct spl_etcd_txn *t)
{
    if (v->status != SPL_VOLUME_RECYCLED)
        return SPL_ERECYCLE_NOTFOUND;
    const uint64_t *older_than_ms = c->arg;
    if (older_than_ms && v->dtime_ms > *older_than_ms)
        return 1; /* restored and deleted again since: not expired */
    char vk[96], rk[96], gk[96];
    key_volume(vk, sizeof vk, v->id);
    key_recycle(rk, sizeof rk, v->id);
    key_gc(gk, sizeof gk, v->id);
    spl_etcd_txn_delete(t, SPL_ETCD_SUCCESS, vk, NULL);
    spl_etcd_txn_delete(t, SPL_ETCD_SUCCESS, rk, NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_uint64(v->id));
    json_object_object_add(o, "lpool", json_object_new_uint64(v->lpool_id));
    json_object_object_add(o, "purged_ms", json_object_new_uint64(now_ms(c->ns)));
    char *value = json_text(o);
    spl_etcd_txn_put(t, SPL_ETCD_SUCCESS, gk, value, strlen(value), 0);
    free(value);
    return 0;
}

int spl_ns_purge(spl_ns *ns, uint64_t id)
{
    ASSERT(ns);
    struct vol_change c = {.ns = ns, .id = id, .change = purge_change};
    int rc = vol_change_run(&c);
    if (rc == SPL_EVOL_NOTFOUND)
        rc = SPL_ERECYCLE_NOTFOUND;
    if (rc == 0)
        LOG_INFO("mds", "volume %" PRIu64 " purged", id);
    return rc;
}

struct expired {
    uint64_t *ids;
    size_t count, cap;
    uint64_t cutoff_ms;
};

static int expired_cb(void *arg, const struct spl_etcd_kv *kv)
{
    struct expired *x = arg;
    uint64_t dtime = strtoull(kv->value, NULL, 10);
    const char *slash = strrchr(kv->key, '/');
    if (!slash || dtime > x->cutoff_ms)
        return 0;
    if (x->count == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 32;
        uint64_t *n = realloc(x->ids, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        x->ids = n;
        x->cap = cap;
    }
    x->ids[x->count++] = strtoull(slash + 1, NULL, 10);
    return 0;
}

int spl_ns_purge_expired(spl_ns *ns, size_t *purged_out)
{
    ASSERT(ns);
    uint64_t now = now_ms(ns);
    struct expired x = {.cutoff_ms = now >= ns->recycle_ttl_ms ? now - ns->recycle_ttl_ms : 0};
    int rc = spl_etcd_foreach(ns->e, NS_PREFIX "recycle/", 1000, NULL, expired_cb, &x);
    size_t purged = 0;
    for (size_t i = 0; rc == 0 && i < x.count; i++) {
        struct vol_change c = {.ns = ns, .id = x.ids[i], .change = purge_change,
                               .arg = &x.cutoff_ms};
        rc = vol_change_run(&c);
        if (rc == SPL_EVOL_NOTFOUND || rc == SPL_ERECYCLE_NOTFOUND)
            rc = 0; /* purged or restored meanwhile */
        else if (rc == 0 && c.result.status == SPL_VOLUME_RECYCLED &&
                 c.result.dtime_ms <= x.cutoff_ms)
            purged++;
    }
    free(x.ids);
    if (purged_out)
        *purged_out = purged;
    return rc;
}

/* ---- segments ---- */

int spl_ns_get_segment(spl_ns *ns, uint64_t volume_id, uint32_t index, struct spl_segment *out)
{
    ASSERT(ns && out);
    char sk[128];
    key_segment(sk, sizeof sk, volume_id, index);
    struct spl_etcd_kv kv;
    int rc = spl_etcd_get(ns->e, sk, &kv);
    if (rc < 0)
        return rc;
    rc = dec_segment(&kv, out);
    spl_etcd_kv_free(&kv);
    return rc;
}

/* Fills seg's chunks: fresh chunk ids, copysets spread over the pool from a random start. */
static int plan_segment(spl_ns *ns, const struct spl_volume *v, uint32_t index,
                        struct spl_segment *seg)
{
    struct spl_topo_lpool l;
    int rc = spl_topo_get_lpool(ns->topo, v->lpool_id, &l);
    if (rc < 0)
        return rc;
    if (l.state != SPL_LPOOL_READY)
        return SPL_ELPOOL_NOTREADY;
    struct spl_topo_copyset *sets;
    size_t n;
    if ((rc = spl_topo_list_copysets(ns->topo, l.id, &sets, &n)) < 0)
        return rc;
    if (n == 0) {
        free(sets);
        return SPL_ELPOOL_NOTREADY;
    }
    uint64_t ids[SPL_CHUNKS_PER_SEGMENT];
    rc = spl_idalloc_many(&ns->chunk_ids, SPL_CHUNKS_PER_SEGMENT, ids);
    if (rc == 0) {
        pthread_mutex_lock(&ns->lock);
        size_t start = (size_t)spl_rand_below(&ns->rng, n);
        pthread_mutex_unlock(&ns->lock);
        *seg = (struct spl_segment){.volume_id = v->id, .index = index, .lpool_id = l.id};
        for (size_t i = 0; i < SPL_CHUNKS_PER_SEGMENT; i++)
            seg->chunks[i] = (struct spl_chunk_loc){.chunk_id = ids[i],
                                                    .copyset_id = sets[(start + i) % n].id};
    }
    free(sets);
    return rc;
}

int spl_ns_get_or_alloc_segment(spl_ns *ns, uint64_t volume_id, uint32_t index,
                                struct spl_segment *out, bool *allocated_out)
{
    ASSERT(ns && out);
    if (allocated_out)
        *allocated_out = false;
    int rc = spl_ns_get_segment(ns, volume_id, index, out);
    if (rc != -ENOENT)
        return rc;
    char sk[128], vk[96];
    key_segment(sk, sizeof sk, volume_id, index);
    key_volume(vk, sizeof vk, volume_id);
    struct spl_etcd_txn t;
    spl_etcd_txn_init(&t);
    rc = SPL_EETCD_TXNFAIL;
    for (int attempt = 0; attempt < SPL_NS_RETRIES_MAX && rc == SPL_EETCD_TXNFAIL; attempt++) {
        struct spl_volume v;
        if ((rc = read_volume_id(ns, volume_id, 0, &v)) < 0)
            break;
        if (v.status != SPL_VOLUME_ACTIVE) {
            rc = SPL_EVOL_NOTFOUND;
            break;
        }
        if ((uint64_t)index >= v.size_bytes / SPL_SEGMENT_SIZE) {
            rc = SPL_ESEG_OUTOFRANGE;
            break;
        }
        struct spl_segment seg;
        if ((rc = plan_segment(ns, &v, index, &seg)) < 0)
            break;
        char *value = enc_segment(&seg);
        spl_etcd_txn_reset(&t);
        /* create only if absent, and only while the volume is as we read it (not deleted) */
        spl_etcd_txn_cmp(&t, sk, SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
        spl_etcd_txn_cmp(&t, vk, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, v.mod_revision);
        spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, sk, value, strlen(value), 0);
        spl_etcd_txn_range(&t, SPL_ETCD_FAILURE, sk, NULL);
        free(value);
        struct spl_etcd_txn_result res;
        rc = commit(ns, &t, &res);
        if (rc == 0) {
            *out = seg;
            if (allocated_out)
                *allocated_out = true;
        } else if (rc == SPL_EETCD_TXNFAIL && res.op_count == 1 && res.ranges[0].count == 1) {
            rc = dec_segment(&res.ranges[0].kvs[0], out); /* someone else won: theirs */
        }
        spl_etcd_txn_result_free(&res);
    }
    spl_etcd_txn_free(&t);
    return rc;
}
