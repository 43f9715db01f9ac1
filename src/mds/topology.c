/* topology.c - the topology model, in etcd and in memory; see topology.h. */
#include "mds/topology.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/random.h"
#include "mds/idalloc.h"
#include "mds/placement.h"

#define TOPO_PREFIX "/spline/topology/"
#define TOPO_ID_BATCH 8       /* topology ids reserved per counter transaction */
#define TOPO_APPLY_TRIES 3    /* apply_cluster restarts after losing a creation race */
#define TOPO_RECORD_VERSION 1 /* "v" field of every record */

enum id_kind { ID_POOL, ID_ZONE, ID_SERVER, ID_CS, ID_LPOOL, ID_KINDS };
static const char *const id_kind_names[ID_KINDS] = {"pool", "zone", "server", "chunkserver",
                                                    "lpool"};

/* ---- sorted vectors (records start with their uint32 id, copysets with (lpool, id)) ---- */

struct vec {
    void *data;
    size_t count, cap, elem;
};

static int cmp_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_copyset(const void *a, const void *b)
{
    const struct spl_topo_copyset *x = a, *y = b;
    if (x->lpool_id != y->lpool_id)
        return x->lpool_id < y->lpool_id ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void *vec_at(const struct vec *v, size_t i) { return (char *)v->data + i * v->elem; }

/* Index of the first element >= key. */
static size_t vec_lower(const struct vec *v, const void *key,
                        int (*cmp)(const void *, const void *))
{
    size_t lo = 0, hi = v->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp(vec_at(v, mid), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void *vec_find(const struct vec *v, const void *key,
                      int (*cmp)(const void *, const void *))
{
    size_t i = vec_lower(v, key, cmp);
    return i < v->count && cmp(vec_at(v, i), key) == 0 ? vec_at(v, i) : NULL;
}

/* Inserts or replaces elem. -ENOMEM. */
static int vec_put(struct vec *v, const void *elem, int (*cmp)(const void *, const void *))
{
    size_t i = vec_lower(v, elem, cmp);
    if (i < v->count && cmp(vec_at(v, i), elem) == 0) {
        memcpy(vec_at(v, i), elem, v->elem);
        return 0;
    }
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *d = realloc(v->data, cap * v->elem);
        if (!d)
            return -ENOMEM;
        v->data = d;
        v->cap = cap;
    }
    memmove(vec_at(v, i + 1), vec_at(v, i), (v->count - i) * v->elem);
    memcpy(vec_at(v, i), elem, v->elem);
    v->count++;
    return 0;
}

static void vec_free(struct vec *v)
{
    free(v->data);
    v->data = NULL;
    v->count = v->cap = 0;
}

/* The whole in-memory model (swapped as one on reload). */
struct model {
    struct vec pools, zones, servers, css, lpools, copysets;
};

static void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    m->pools.elem = sizeof(struct spl_topo_pool);
    m->zones.elem = sizeof(struct spl_topo_zone);
    m->servers.elem = sizeof(struct spl_topo_server);
    m->css.elem = sizeof(struct spl_topo_chunkserver);
    m->lpools.elem = sizeof(struct spl_topo_lpool);
    m->copysets.elem = sizeof(struct spl_topo_copyset);
}

static void model_free(struct model *m)
{
    vec_free(&m->pools);
    vec_free(&m->zones);
    vec_free(&m->servers);
    vec_free(&m->css);
    vec_free(&m->lpools);
    vec_free(&m->copysets);
}

struct spl_topo {
    spl_etcd *e;
    struct spl_rand rng;            /* placement; under write_lock */
    struct spl_mds_fence fence;     /* under write_lock */
    struct spl_idalloc ids[ID_KINDS];
    pthread_mutex_t write_lock;     /* serializes writers, held across etcd calls */
    pthread_rwlock_t lock;          /* guards m */
    struct model m;
};

/* ---- keys and records ---- */

static void key_obj(char *buf, size_t cap, const char *kind, uint32_t id)
{
    snprintf(buf, cap, TOPO_PREFIX "%s/%010" PRIu32, kind, id);
}

static void key_copyset(char *buf, size_t cap, uint32_t lpool, uint32_t id)
{
    snprintf(buf, cap, TOPO_PREFIX "copyset/%010" PRIu32 "/%010" PRIu32, lpool, id);
}

static void key_copyset_prefix(char *buf, size_t cap, uint32_t lpool)
{
    snprintf(buf, cap, TOPO_PREFIX "copyset/%010" PRIu32 "/", lpool);
}

static void key_name(char *buf, size_t cap, const char *kind, const char *name)
{
    snprintf(buf, cap, TOPO_PREFIX "names/%s/%s", kind, name);
}

static void key_cs_identity(char *buf, size_t cap, const char *host, uint16_t port,
                            const char *disk)
{
    snprintf(buf, cap, TOPO_PREFIX "names/chunkserver/%s:%u:%s", host, port, disk);
}

static const char *const cs_state_names[] = {"active", "retired"};
static const char *const lpool_state_names[] = {"pending", "placing", "ready"};

static json_object *rec_new(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int(TOPO_RECORD_VERSION));
    return o;
}

static void rec_u64(json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, json_object_new_uint64(v));
}

static void rec_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

/* Serializes o (and puts it) into a malloc'd string. */
static char *rec_text(json_object *o)
{
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    ASSERT(s != NULL);
    return s;
}

static char *enc_pool(const struct spl_topo_pool *p)
{
    json_object *o = rec_new();
    rec_u64(o, "id", p->id);
    rec_str(o, "name", p->name);
    return rec_text(o);
}

static char *enc_zone(const struct spl_topo_zone *z)
{
    json_object *o = rec_new();
    rec_u64(o, "id", z->id);
    rec_str(o, "name", z->name);
    rec_u64(o, "pool", z->pool_id);
    return rec_text(o);
}

static char *enc_server(const struct spl_topo_server *s)
{
    json_object *o = rec_new();
    rec_u64(o, "id", s->id);
    rec_str(o, "name", s->name);
    rec_str(o, "ip", s->ip);
    rec_u64(o, "zone", s->zone_id);
    return rec_text(o);
}

static char *enc_cs(const struct spl_topo_chunkserver *c)
{
    json_object *o = rec_new();
    rec_u64(o, "id", c->id);
    rec_u64(o, "server", c->server_id);
    rec_str(o, "host", c->host);
    rec_u64(o, "port", c->port);
    rec_str(o, "disk", c->disk);
    rec_u64(o, "capacity", c->capacity_bytes);
    rec_str(o, "state", cs_state_names[c->state]);
    return rec_text(o);
}

static char *enc_lpool(const struct spl_topo_lpool *l)
{
    json_object *o = rec_new();
    rec_u64(o, "id", l->id);
    rec_str(o, "name", l->name);
    rec_u64(o, "pool", l->pool_id);
    rec_u64(o, "replicas", l->replicas);
    rec_u64(o, "copysets", l->copyset_count);
    rec_str(o, "state", lpool_state_names[l->state]);
    return rec_text(o);
}

static char *enc_copyset(const struct spl_topo_copyset *c)
{
    json_object *o = rec_new(), *m = json_object_new_array();
    rec_u64(o, "lpool", c->lpool_id);
    rec_u64(o, "id", c->id);
    for (uint32_t i = 0; i < c->member_count; i++)
        json_object_array_add(m, json_object_new_uint64(c->members[i]));
    json_object_object_add(o, "members", m);
    rec_u64(o, "epoch", c->epoch);
    rec_u64(o, "leader", c->leader_hint);
    return rec_text(o);
}

/* Decoding: a failed field lookup marks the record bad. */
struct dec {
    json_object *o;
    bool bad;
};

static uint64_t dec_u64(struct dec *d, const char *k, uint64_t max)
{
    json_object *v;
    if (!json_object_object_get_ex(d->o, k, &v) || !json_object_is_type(v, json_type_int)) {
        d->bad = true;
        return 0;
    }
    uint64_t x = json_object_get_uint64(v);
    d->bad |= x > max;
    return x;
}

static void dec_str(struct dec *d, const char *k, char *dst, size_t cap)
{
    json_object *v;
    if (!json_object_object_get_ex(d->o, k, &v) || !json_object_is_type(v, json_type_string) ||
        (size_t)json_object_get_string_len(v) >= cap) {
        d->bad = true;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
}

static int dec_enum(struct dec *d, const char *k, const char *const *names, int n)
{
    char s[32];
    dec_str(d, k, s, sizeof s);
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    d->bad = true;
    return 0;
}

/* Parses one record of the load walk into model m. */
static int load_record(struct model *m, const struct spl_etcd_kv *kv)
{
    const char *rest = kv->key + strlen(TOPO_PREFIX);
    if (strncmp(rest, "names/", 6) == 0)
        return 0;
    struct dec d = {.o = json_tokener_parse(kv->value)};
    if (!d.o || !json_object_is_type(d.o, json_type_object)) {
        json_object_put(d.o);
        LOG_ERROR("mds", "topology record %s is not JSON", kv->key);
        return SPL_EETCD_PROTO;
    }
    int rc = 0;
    if (strncmp(rest, "pool/", 5) == 0) {
        struct spl_topo_pool p = {.mod_revision = kv->mod_revision};
        p.id = (uint32_t)dec_u64(&d, "id", UINT32_MAX);
        dec_str(&d, "name", p.name, sizeof p.name);
        rc = d.bad ? 0 : vec_put(&m->pools, &p, cmp_id);
    } else if (strncmp(rest, "zone/", 5) == 0) {
        struct spl_topo_zone z = {.mod_revision = kv->mod_revision};
        z.id = (uint32_t)dec_u64(&d, "id", UINT32_MAX);
        z.pool_id = (uint32_t)dec_u64(&d, "pool", UINT32_MAX);
        dec_str(&d, "name", z.name, sizeof z.name);
        rc = d.bad ? 0 : vec_put(&m->zones, &z, cmp_id);
    } else if (strncmp(rest, "server/", 7) == 0) {
        struct spl_topo_server s = {.mod_revision = kv->mod_revision};
        s.id = (uint32_t)dec_u64(&d, "id", UINT32_MAX);
        s.zone_id = (uint32_t)dec_u64(&d, "zone", UINT32_MAX);
        dec_str(&d, "name", s.name, sizeof s.name);
        dec_str(&d, "ip", s.ip, sizeof s.ip);
        rc = d.bad ? 0 : vec_put(&m->servers, &s, cmp_id);
    } else if (strncmp(rest, "chunkserver/", 12) == 0) {
        struct spl_topo_chunkserver c = {.mod_revision = kv->mod_revision};
        c.id = (uint32_t)dec_u64(&d, "id", UINT32_MAX);
        c.server_id = (uint32_t)dec_u64(&d, "server", UINT32_MAX);
        c.port = (uint16_t)dec_u64(&d, "port", 65535);
        c.capacity_bytes = dec_u64(&d, "capacity", UINT64_MAX);
        dec_str(&d, "host", c.host, sizeof c.host);
        dec_str(&d, "disk", c.disk, sizeof c.disk);
        c.state = (enum spl_cs_state)dec_enum(&d, "state", cs_state_names, 2);
        rc = d.bad ? 0 : vec_put(&m->css, &c, cmp_id);
    } else if (strncmp(rest, "lpool/", 6) == 0) {
        struct spl_topo_lpool l = {.mod_revision = kv->mod_revision};
        l.id = (uint32_t)dec_u64(&d, "id", UINT32_MAX);
        l.pool_id = (uint32_t)dec_u64(&d, "pool", UINT32_MAX);
        l.replicas = (uint32_t)dec_u64(&d, "replicas", SPL_REPLICAS_MAX);
        l.copyset_count = (uint32_t)dec_u64(&d, "copysets", UINT32_MAX);
        dec_str(&d, "name", l.name, sizeof l.name);
        l.state = (enum spl_lpool_state)dec_enum(&d, "state", lpool_state_names, 3);
        rc = d.bad ? 0 : vec_put(&m->lpools, &l, cmp_id);
    } else if (strncmp(rest, "copyset/", 8) == 0) {
        struct spl_topo_copyset c = {.mod_revision = kv->mod_revision};
        c.lpool_id = (uint32_t)dec_u64(&d, "lpool", UINT32_MAX);
        c.id = (uint32_t)dec_u64(&d, "id", UINT32_MAX);
        c.epoch = dec_u64(&d, "epoch", UINT64_MAX);
        c.leader_hint = (uint32_t)dec_u64(&d, "leader", UINT32_MAX);
        json_object *arr;
        if (!json_object_object_get_ex(d.o, "members", &arr) ||
            !json_object_is_type(arr, json_type_array) ||
            json_object_array_length(arr) > SPL_REPLICAS_MAX)
            d.bad = true;
        for (size_t i = 0; !d.bad && i < json_object_array_length(arr); i++)
            c.members[c.member_count++] =
                (uint32_t)json_object_get_uint64(json_object_array_get_idx(arr, i));
        rc = d.bad ? 0 : vec_put(&m->copysets, &c, cmp_copyset);
    } else {
        LOG_WARN("mds", "unknown topology key %s (ignored)", kv->key);
    }
    json_object_put(d.o);
    if (d.bad) {
        LOG_ERROR("mds", "topology record %s has missing or bad fields", kv->key);
        return SPL_EETCD_PROTO;
    }
    return rc;
}

static int load_cb(void *arg, const struct spl_etcd_kv *kv)
{
    return load_record(arg, kv);
}

/* Derived fields and the rule that only READY pools have copysets in memory. */
static void model_fixup(struct model *m)
{
    for (size_t i = 0; i < m->css.count; i++) {
        struct spl_topo_chunkserver *c = vec_at(&m->css, i);
        const struct spl_topo_server *s = vec_find(&m->servers, &c->server_id, cmp_id);
        c->zone_id = s ? s->zone_id : 0;
        if (!s)
            LOG_ERROR("mds", "chunkserver %u names unknown server %u", c->id, c->server_id);
    }
    size_t keep = 0;
    for (size_t i = 0; i < m->copysets.count; i++) {
        struct spl_topo_copyset *c = vec_at(&m->copysets, i);
        const struct spl_topo_lpool *l = vec_find(&m->lpools, &c->lpool_id, cmp_id);
        if (l && l->state == SPL_LPOOL_READY)
            memmove(vec_at(&m->copysets, keep++), c, m->copysets.elem);
    }
    m->copysets.count = keep;
}

static int topo_load(spl_topo *t)
{
    struct model m;
    model_init(&m);
    int rc = spl_etcd_foreach(t->e, TOPO_PREFIX, 1000, NULL, load_cb, &m);
    if (rc < 0) {
        model_free(&m);
        return rc;
    }
    model_fixup(&m);
    pthread_rwlock_wrlock(&t->lock);
    model_free(&t->m);
    t->m = m;
    pthread_rwlock_unlock(&t->lock);
    LOG_INFO("mds", "topology loaded: %zu pools, %zu zones, %zu servers, %zu chunkservers, "
             "%zu logical pools, %zu copysets", m.pools.count, m.zones.count, m.servers.count,
             m.css.count, m.lpools.count, m.copysets.count);
    return 0;
}

int spl_topo_open(spl_etcd *e, uint64_t seed, spl_topo **out)
{
    ASSERT(e && out);
    spl_topo *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->e = e;
    if (seed)
        spl_rand_seed(&t->rng, seed);
    else
        spl_rand_seed_from_os(&t->rng);
    for (int k = 0; k < ID_KINDS; k++)
        spl_idalloc_init(&t->ids[k], e, id_kind_names[k], TOPO_ID_BATCH);
    pthread_mutex_init(&t->write_lock, NULL);
    pthread_rwlock_init(&t->lock, NULL);
    model_init(&t->m);
    int rc = topo_load(t);
    if (rc < 0) {
        spl_topo_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

void spl_topo_close(spl_topo *t)
{
    if (!t)
        return;
    model_free(&t->m);
    for (int k = 0; k < ID_KINDS; k++)
        spl_idalloc_destroy(&t->ids[k]);
    pthread_mutex_destroy(&t->write_lock);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

int spl_topo_reload(spl_topo *t)
{
    pthread_mutex_lock(&t->write_lock);
    int rc = topo_load(t);
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

void spl_topo_set_fence(spl_topo *t, const struct spl_mds_fence *f)
{
    pthread_mutex_lock(&t->write_lock);
    if (f)
        t->fence = *f;
    else
        memset(&t->fence, 0, sizeof t->fence);
    pthread_mutex_unlock(&t->write_lock);
    for (int k = 0; k < ID_KINDS; k++)
        spl_idalloc_set_fence(&t->ids[k], f);
}

/* ---- writing (write_lock held) ---- */

static int commit(spl_topo *t, struct spl_etcd_txn *txn, int64_t *revision_out)
{
    struct spl_etcd_txn_result res;
    spl_mds_fence_guard(&t->fence, txn);
    int rc = spl_etcd_txn(t->e, txn, &res);
    if (rc == 0 && revision_out)
        *revision_out = res.revision;
    spl_etcd_txn_result_free(&res);
    return spl_mds_fence_check(&t->fence, t->e, rc);
}

/* Applies a record to memory (under the write lock). */
static int mem_put(spl_topo *t, struct vec *v, const void *rec,
                   int (*cmp)(const void *, const void *))
{
    pthread_rwlock_wrlock(&t->lock);
    int rc = vec_put(v, rec, cmp);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static int new_id(spl_topo *t, enum id_kind k, uint32_t *id)
{
    uint64_t x;
    int rc = spl_idalloc_next(&t->ids[k], &x);
    if (rc == 0 && x > UINT32_MAX)
        rc = SPL_ETOOBIG;
    *id = (uint32_t)x;
    return rc;
}

/* One creation transaction: the name (or identity) key must be absent; both keys are put. */
static int create_named(spl_topo *t, const char *name_key, uint32_t id, const char *obj_key,
                        char *value, int64_t *revision_out)
{
    char idtext[16];
    snprintf(idtext, sizeof idtext, "%" PRIu32, id);
    struct spl_etcd_txn txn;
    spl_etcd_txn_init(&txn);
    spl_etcd_txn_cmp(&txn, name_key, SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
    spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, name_key, idtext, strlen(idtext), 0);
    spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, obj_key, value, strlen(value), 0);
    int rc = commit(t, &txn, revision_out);
    spl_etcd_txn_free(&txn);
    free(value);
    return rc;
}

/* One update transaction: the record must still be at mod_revision. */
static int update_record(spl_topo *t, const char *key, int64_t mod_revision, char *value,
                         int64_t *revision_out)
{
    struct spl_etcd_txn txn;
    spl_etcd_txn_init(&txn);
    spl_etcd_txn_cmp(&txn, key, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, mod_revision);
    spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, key, value, strlen(value), 0);
    int rc = commit(t, &txn, revision_out);
    spl_etcd_txn_free(&txn);
    free(value);
    return rc;
}

/* ---- lookups on the model (caller holds a lock) ---- */

#define FIND_BY_NAME(vecp, type, nm)                                                     \
    ({                                                                                   \
        type *found_ = NULL;                                                             \
        for (size_t i_ = 0; i_ < (vecp)->count && !found_; i_++) {                      \
            type *x_ = vec_at((vecp), i_);                                               \
            if (strcmp(x_->name, (nm)) == 0)                                             \
                found_ = x_;                                                             \
        }                                                                                \
        found_;                                                                          \
    })

static struct spl_topo_chunkserver *find_cs_identity(struct model *m, const char *host,
                                                     uint16_t port, const char *disk)
{
    for (size_t i = 0; i < m->css.count; i++) {
        struct spl_topo_chunkserver *c = vec_at(&m->css, i);
        if (c->port == port && strcmp(c->host, host) == 0 && strcmp(c->disk, disk) == 0)
            return c;
    }
    return NULL;
}

static const char *pool_name_of(struct model *m, uint32_t pool_id)
{
    const struct spl_topo_pool *p = vec_find(&m->pools, &pool_id, cmp_id);
    return p ? p->name : "?";
}

static const char *zone_name_of(struct model *m, uint32_t zone_id)
{
    const struct spl_topo_zone *z = vec_find(&m->zones, &zone_id, cmp_id);
    return z ? z->name : "?";
}

/* ---- cluster description ---- */

__attribute__((format(printf, 4, 5))) static int refuse(int rc, char *why, size_t why_len,
                                                        const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Pass 1: everything the file says that already exists must agree with etcd. */
static int check_cluster(spl_topo *t, const struct spl_cluster_desc *d, char *why,
                         size_t why_len)
{
    struct model *m = &t->m;
    for (size_t i = 0; i < d->pool_count; i++) {
        const struct spl_cluster_pool *p = &d->pools[i];
        for (size_t z = 0; z < p->zone_count; z++) {
            const struct spl_cluster_zone *cz = &p->zones[z];
            struct spl_topo_zone *zone = FIND_BY_NAME(&m->zones, struct spl_topo_zone, cz->name);
            if (zone && strcmp(pool_name_of(m, zone->pool_id), p->name) != 0)
                return refuse(SPL_ETOPO_EXISTS, why, why_len,
                              "zone '%s' exists in physical pool '%s', the file puts it in '%s'",
                              cz->name, pool_name_of(m, zone->pool_id), p->name);
            for (size_t s = 0; s < cz->server_count; s++) {
                const struct spl_cluster_server *cs = &cz->servers[s];
                struct spl_topo_server *srv =
                    FIND_BY_NAME(&m->servers, struct spl_topo_server, cs->name);
                if (srv && (strcmp(srv->ip, cs->ip) != 0 ||
                            strcmp(zone_name_of(m, srv->zone_id), cz->name) != 0))
                    return refuse(SPL_ETOPO_EXISTS, why, why_len,
                                  "server '%s' exists with ip %s in zone '%s', the file says "
                                  "ip %s in zone '%s'", cs->name, srv->ip,
                                  zone_name_of(m, srv->zone_id), cs->ip, cz->name);
                for (size_t c = 0; c < cs->chunkserver_count; c++) {
                    const struct spl_cluster_cs *cc = &cs->chunkservers[c];
                    struct spl_topo_chunkserver *ch =
                        find_cs_identity(m, cs->ip, cc->port, cc->disk);
                    if (!ch)
                        continue;
                    const struct spl_topo_server *owner =
                        vec_find(&m->servers, &ch->server_id, cmp_id);
                    if (!owner || strcmp(owner->name, cs->name) != 0)
                        return refuse(SPL_ETOPO_EXISTS, why, why_len,
                                      "chunkserver %u (%s:%u %s) belongs to server '%s', the "
                                      "file puts it on '%s'", ch->id, cs->ip, cc->port,
                                      cc->disk, owner ? owner->name : "?", cs->name);
                }
            }
        }
    }
    for (size_t i = 0; i < d->lpool_count; i++) {
        const struct spl_cluster_lpool *cl = &d->lpools[i];
        bool pool_known = FIND_BY_NAME(&m->pools, struct spl_topo_pool, cl->pool) != NULL;
        for (size_t j = 0; j < d->pool_count && !pool_known; j++)
            pool_known = strcmp(d->pools[j].name, cl->pool) == 0;
        if (!pool_known)
            return refuse(SPL_ETOPO_INVALID, why, why_len,
                          "logical pool '%s' names unknown physical pool '%s'", cl->name,
                          cl->pool);
        struct spl_topo_lpool *l = FIND_BY_NAME(&m->lpools, struct spl_topo_lpool, cl->name);
        if (l && (strcmp(pool_name_of(m, l->pool_id), cl->pool) != 0 ||
                  l->replicas != cl->replicas || l->copyset_count != cl->copysets))
            return refuse(SPL_ETOPO_EXISTS, why, why_len,
                          "logical pool '%s' exists (physical pool '%s', %u replicas, %u "
                          "copysets), the file says ('%s', %u, %u)", cl->name,
                          pool_name_of(m, l->pool_id), l->replicas, l->copyset_count,
                          cl->pool, cl->replicas, cl->copysets);
    }
    return 0;
}

static int ensure_pool(spl_topo *t, const char *name, uint32_t *id, size_t *created)
{
    struct spl_topo_pool *p = FIND_BY_NAME(&t->m.pools, struct spl_topo_pool, name);
    if (p) {
        *id = p->id;
        return 0;
    }
    struct spl_topo_pool rec = {0};
    snprintf(rec.name, sizeof rec.name, "%s", name);
    char nk[256], ok[128];
    int rc = new_id(t, ID_POOL, &rec.id);
    if (rc < 0)
        return rc;
    key_name(nk, sizeof nk, "pool", name);
    key_obj(ok, sizeof ok, "pool", rec.id);
    rc = create_named(t, nk, rec.id, ok, enc_pool(&rec), &rec.mod_revision);
    if (rc == 0) {
        rc = mem_put(t, &t->m.pools, &rec, cmp_id);
        *id = rec.id;
        (*created)++;
    }
    return rc;
}

static int ensure_zone(spl_topo *t, const char *name, uint32_t pool_id, uint32_t *id,
                       size_t *created)
{
    struct spl_topo_zone *z = FIND_BY_NAME(&t->m.zones, struct spl_topo_zone, name);
    if (z) {
        *id = z->id;
        return 0;
    }
    struct spl_topo_zone rec = {.pool_id = pool_id};
    snprintf(rec.name, sizeof rec.name, "%s", name);
    char nk[256], ok[128];
    int rc = new_id(t, ID_ZONE, &rec.id);
    if (rc < 0)
        return rc;
    key_name(nk, sizeof nk, "zone", name);
    key_obj(ok, sizeof ok, "zone", rec.id);
    rc = create_named(t, nk, rec.id, ok, enc_zone(&rec), &rec.mod_revision);
    if (rc == 0) {
        rc = mem_put(t, &t->m.zones, &rec, cmp_id);
        *id = rec.id;
        (*created)++;
    }
    return rc;
}

static int ensure_server(spl_topo *t, const struct spl_cluster_server *cs, uint32_t zone_id,
                         uint32_t *id, size_t *created)
{
    struct spl_topo_server *s = FIND_BY_NAME(&t->m.servers, struct spl_topo_server, cs->name);
    if (s) {
        *id = s->id;
        return 0;
    }
    struct spl_topo_server rec = {.zone_id = zone_id};
    snprintf(rec.name, sizeof rec.name, "%s", cs->name);
    snprintf(rec.ip, sizeof rec.ip, "%s", cs->ip);
    char nk[256], ok[128];
    int rc = new_id(t, ID_SERVER, &rec.id);
    if (rc < 0)
        return rc;
    key_name(nk, sizeof nk, "server", cs->name);
    key_obj(ok, sizeof ok, "server", rec.id);
    rc = create_named(t, nk, rec.id, ok, enc_server(&rec), &rec.mod_revision);
    if (rc == 0) {
        rc = mem_put(t, &t->m.servers, &rec, cmp_id);
        *id = rec.id;
        (*created)++;
    }
    return rc;
}

/* Creates chunkserver (host, port, disk) on server; the identity must be new. */
static int create_cs(spl_topo *t, const struct spl_topo_server *srv, const char *host,
                     uint16_t port, const char *disk, uint64_t capacity, uint32_t *id)
{
    struct spl_topo_chunkserver rec = {.server_id = srv->id, .zone_id = srv->zone_id,
                                       .port = port, .capacity_bytes = capacity,
                                       .state = SPL_CS_ACTIVE};
    snprintf(rec.host, sizeof rec.host, "%s", host);
    snprintf(rec.disk, sizeof rec.disk, "%s", disk);
    char nk[512], ok[128];
    int rc = new_id(t, ID_CS, &rec.id);
    if (rc < 0)
        return rc;
    key_cs_identity(nk, sizeof nk, host, port, disk);
    key_obj(ok, sizeof ok, "chunkserver", rec.id);
    rc = create_named(t, nk, rec.id, ok, enc_cs(&rec), &rec.mod_revision);
    if (rc == 0) {
        rc = mem_put(t, &t->m.css, &rec, cmp_id);
        *id = rec.id;
        LOG_INFO("mds", "chunkserver %u registered: %s:%u %s on server '%s'", rec.id, host,
                 port, disk, srv->name);
    }
    return rc;
}

static int ensure_lpool(spl_topo *t, const struct spl_cluster_lpool *cl, uint32_t *id,
                        size_t *created)
{
    struct spl_topo_lpool *l = FIND_BY_NAME(&t->m.lpools, struct spl_topo_lpool, cl->name);
    if (l) {
        *id = l->id;
        return 0;
    }
    const struct spl_topo_pool *p = FIND_BY_NAME(&t->m.pools, struct spl_topo_pool, cl->pool);
    ASSERT(p != NULL); /* checked, and pools are created first */
    struct spl_topo_lpool rec = {.pool_id = p->id, .replicas = cl->replicas,
                                 .copyset_count = cl->copysets, .state = SPL_LPOOL_PENDING};
    snprintf(rec.name, sizeof rec.name, "%s", cl->name);
    char nk[256], ok[128];
    int rc = new_id(t, ID_LPOOL, &rec.id);
    if (rc < 0)
        return rc;
    key_name(nk, sizeof nk, "lpool", cl->name);
    key_obj(ok, sizeof ok, "lpool", rec.id);
    rc = create_named(t, nk, rec.id, ok, enc_lpool(&rec), &rec.mod_revision);
    if (rc == 0) {
        rc = mem_put(t, &t->m.lpools, &rec, cmp_id);
        *id = rec.id;
        (*created)++;
    }
    return rc;
}

static int apply_servers(spl_topo *t, const struct spl_cluster_zone *cz, uint32_t zone_id,
                         struct spl_topo_init_report *rep)
{
    for (size_t s = 0; s < cz->server_count; s++) {
        const struct spl_cluster_server *cs = &cz->servers[s];
        uint32_t server_id = 0;
        int rc = ensure_server(t, cs, zone_id, &server_id, &rep->created.servers);
        if (rc < 0)
            return rc;
        struct spl_topo_server srv = *(struct spl_topo_server *)vec_find(&t->m.servers,
                                                                         &server_id, cmp_id);
        for (size_t c = 0; c < cs->chunkserver_count; c++) {
            const struct spl_cluster_cs *cc = &cs->chunkservers[c];
            if (find_cs_identity(&t->m, cs->ip, cc->port, cc->disk))
                continue;
            uint32_t id = 0;
            rc = create_cs(t, &srv, cs->ip, cc->port, cc->disk, cc->capacity_bytes, &id);
            if (rc < 0)
                return rc;
            rep->created.chunkservers++;
        }
    }
    return 0;
}

static int place_locked(spl_topo *t, uint32_t lpool_id);

static int apply_once(spl_topo *t, const struct spl_cluster_desc *d,
                      struct spl_topo_init_report *rep, char *why, size_t why_len)
{
    int rc = check_cluster(t, d, why, why_len);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < d->pool_count; i++) {
        const struct spl_cluster_pool *p = &d->pools[i];
        uint32_t pool_id = 0, zone_id = 0;
        if ((rc = ensure_pool(t, p->name, &pool_id, &rep->created.pools)) < 0)
            return rc;
        for (size_t z = 0; z < p->zone_count; z++) {
            if ((rc = ensure_zone(t, p->zones[z].name, pool_id, &zone_id,
                                  &rep->created.zones)) < 0)
                return rc;
            if ((rc = apply_servers(t, &p->zones[z], zone_id, rep)) < 0)
                return rc;
        }
    }
    for (size_t i = 0; i < d->lpool_count; i++) {
        uint32_t id = 0;
        if ((rc = ensure_lpool(t, &d->lpools[i], &id, &rep->created.lpools)) < 0)
            return rc;
        const struct spl_topo_lpool *l = vec_find(&t->m.lpools, &id, cmp_id);
        if (l->state == SPL_LPOOL_READY)
            continue;
        rc = place_locked(t, id);
        if (rc == SPL_EPLACEMENT) {
            rep->lpools_pending++;
            continue;
        }
        if (rc < 0)
            return rc;
        rep->lpools_placed++;
    }
    return 0;
}

int spl_topo_apply_cluster(spl_topo *t, const struct spl_cluster_desc *d,
                           struct spl_topo_init_report *rep, char *why, size_t why_len)
{
    ASSERT(t && d);
    struct spl_topo_init_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (why && why_len)
        why[0] = '\0';
    pthread_mutex_lock(&t->write_lock);
    int rc = SPL_EETCD_TXNFAIL;
    for (int attempt = 0; attempt < TOPO_APPLY_TRIES && rc == SPL_EETCD_TXNFAIL; attempt++) {
        rc = apply_once(t, d, rep, why, why_len);
        if (rc == SPL_EETCD_TXNFAIL) { /* someone else created a name first: look again */
            int lrc = topo_load(t);
            if (lrc < 0)
                rc = lrc;
        }
    }
    pthread_mutex_unlock(&t->write_lock);
    if (rc < 0 && why && why_len && !why[0])
        snprintf(why, why_len, "%s (%s)", spl_strerror(rc), spl_etcd_errmsg());
    return rc;
}

/* ---- registration ---- */

static int find_server_for(struct model *m, const struct spl_topo_cs_registration *reg,
                           struct spl_topo_server *out)
{
    const struct spl_topo_server *found = NULL;
    if (reg->server_name[0]) {
        found = FIND_BY_NAME(&m->servers, struct spl_topo_server, reg->server_name);
        if (!found)
            return SPL_ETOPO_NOTFOUND;
    } else {
        for (size_t i = 0; i < m->servers.count; i++) {
            const struct spl_topo_server *s = vec_at(&m->servers, i);
            if (strcmp(s->ip, reg->host) != 0)
                continue;
            if (found)
                return SPL_ETOPO_INVALID; /* ambiguous: the chunkserver must name it */
            found = s;
        }
        if (!found)
            return SPL_ETOPO_NOTFOUND;
    }
    *out = *found;
    return 0;
}

static int register_locked(spl_topo *t, const struct spl_topo_cs_registration *reg,
                           uint32_t *id_out)
{
    struct spl_topo_chunkserver *c = find_cs_identity(&t->m, reg->host, reg->port, reg->disk);
    if (c) {
        *id_out = c->id;
        if (reg->capacity_bytes == 0 || reg->capacity_bytes == c->capacity_bytes)
            return 0;
        struct spl_topo_chunkserver rec = *c;
        rec.capacity_bytes = reg->capacity_bytes;
        char ok[128];
        key_obj(ok, sizeof ok, "chunkserver", rec.id);
        int rc = update_record(t, ok, c->mod_revision, enc_cs(&rec), &rec.mod_revision);
        return rc == 0 ? mem_put(t, &t->m.css, &rec, cmp_id) : rc;
    }
    struct spl_topo_server srv;
    int rc = find_server_for(&t->m, reg, &srv);
    if (rc < 0)
        return rc;
    return create_cs(t, &srv, reg->host, reg->port, reg->disk, reg->capacity_bytes, id_out);
}

int spl_topo_register_chunkserver(spl_topo *t, const struct spl_topo_cs_registration *reg,
                                  uint32_t *id_out)
{
    ASSERT(t && reg && id_out);
    if (!reg->host[0] || reg->port == 0 || !reg->disk[0] ||
        strnlen(reg->host, sizeof reg->host) == sizeof reg->host ||
        strnlen(reg->disk, sizeof reg->disk) == sizeof reg->disk)
        return SPL_ETOPO_INVALID;
    pthread_mutex_lock(&t->write_lock);
    int rc = register_locked(t, reg, id_out);
    if (rc == SPL_EETCD_TXNFAIL) { /* raced with another registration: reload, look again */
        rc = topo_load(t);
        if (rc == 0)
            rc = register_locked(t, reg, id_out);
    }
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

/* ---- placement ---- */

static int place_write(spl_topo *t, struct spl_topo_lpool *l, const uint32_t *members,
                       struct spl_topo_copyset *sets)
{
    char lk[128], pk[128], pe[128];
    key_obj(lk, sizeof lk, "lpool", l->id);
    key_copyset_prefix(pk, sizeof pk, l->id);
    spl_etcd_prefix_end(pk, pe, sizeof pe);
    /* claim: PLACING, and no copysets from an earlier attempt */
    struct spl_topo_lpool rec = *l;
    rec.state = SPL_LPOOL_PLACING;
    struct spl_etcd_txn txn;
    spl_etcd_txn_init(&txn);
    char *v = enc_lpool(&rec);
    spl_etcd_txn_cmp(&txn, lk, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, l->mod_revision);
    spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, lk, v, strlen(v), 0);
    spl_etcd_txn_delete(&txn, SPL_ETCD_SUCCESS, pk, pe);
    free(v);
    int64_t claim = 0;
    int rc = commit(t, &txn, &claim);
    for (uint32_t c = 0; rc == 0 && c < l->copyset_count;) {
        spl_etcd_txn_reset(&txn);
        spl_etcd_txn_cmp(&txn, lk, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, claim);
        uint32_t first = c;
        for (; c < l->copyset_count && spl_etcd_txn_ops_left(&txn, SPL_ETCD_SUCCESS) > 0; c++) {
            struct spl_topo_copyset *s = &sets[c];
            *s = (struct spl_topo_copyset){.lpool_id = l->id, .id = c + 1,
                                           .member_count = l->replicas};
            memcpy(s->members, &members[(size_t)c * l->replicas],
                   l->replicas * sizeof *members);
            char ck[128];
            key_copyset(ck, sizeof ck, l->id, s->id);
            v = enc_copyset(s);
            spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, ck, v, strlen(v), 0);
            free(v);
        }
        int64_t rev = 0;
        rc = commit(t, &txn, &rev);
        for (uint32_t i = first; i < c; i++)
            sets[i].mod_revision = rev;
    }
    if (rc == 0) {
        spl_etcd_txn_reset(&txn);
        rec.state = SPL_LPOOL_READY;
        v = enc_lpool(&rec);
        spl_etcd_txn_cmp(&txn, lk, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, claim);
        spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, lk, v, strlen(v), 0);
        free(v);
        rc = commit(t, &txn, &rec.mod_revision);
    }
    spl_etcd_txn_free(&txn);
    if (rc < 0)
        return rc;
    *l = rec;
    return 0;
}

static int place_locked(spl_topo *t, uint32_t lpool_id)
{
    struct spl_topo_lpool *lp = vec_find(&t->m.lpools, &lpool_id, cmp_id);
    if (!lp)
        return SPL_ETOPO_NOTFOUND;
    if (lp->state == SPL_LPOOL_READY)
        return 0;
    struct spl_topo_lpool l = *lp;
    struct spl_place_cs *cands = calloc(t->m.css.count + 1, sizeof *cands);
    uint32_t *members = calloc((size_t)l.copyset_count * l.replicas, sizeof *members);
    struct spl_topo_copyset *sets = calloc(l.copyset_count, sizeof *sets);
    int rc = -ENOMEM;
    if (!cands || !members || !sets)
        goto out_free;
    size_t n = 0;
    for (size_t i = 0; i < t->m.css.count; i++) {
        const struct spl_topo_chunkserver *c = vec_at(&t->m.css, i);
        const struct spl_topo_zone *z = vec_find(&t->m.zones, &c->zone_id, cmp_id);
        if (c->state == SPL_CS_ACTIVE && z && z->pool_id == l.pool_id)
            cands[n++] = (struct spl_place_cs){.id = c->id, .zone_id = c->zone_id};
    }
    rc = spl_placement_compute(cands, n, l.replicas, l.copyset_count, &t->rng, members);
    if (rc < 0)
        goto out_free;
    rc = place_write(t, &l, members, sets);
    if (rc < 0)
        goto out_free;
    pthread_rwlock_wrlock(&t->lock);
    vec_put(&t->m.lpools, &l, cmp_id); /* replaces: no allocation */
    for (uint32_t c = 0; c < l.copyset_count && rc == 0; c++)
        rc = vec_put(&t->m.copysets, &sets[c], cmp_copyset);
    pthread_rwlock_unlock(&t->lock);
    LOG_INFO("mds", "logical pool '%s' placed: %u copysets on %zu chunkservers", l.name,
             l.copyset_count, n);
out_free:
    free(cands);
    free(members);
    free(sets);
    return rc;
}

int spl_topo_place_lpool(spl_topo *t, uint32_t lpool_id)
{
    pthread_mutex_lock(&t->write_lock);
    int rc = place_locked(t, lpool_id);
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

/* ---- other writes ---- */

int spl_topo_set_chunkserver_state(spl_topo *t, uint32_t cs_id, enum spl_cs_state state)
{
    ASSERT(state == SPL_CS_ACTIVE || state == SPL_CS_RETIRED);
    pthread_mutex_lock(&t->write_lock);
    struct spl_topo_chunkserver *c = vec_find(&t->m.css, &cs_id, cmp_id);
    int rc = 0;
    if (!c)
        rc = SPL_ETOPO_NOTFOUND;
    else if (c->state != state) {
        struct spl_topo_chunkserver rec = *c;
        rec.state = state;
        char ok[128];
        key_obj(ok, sizeof ok, "chunkserver", cs_id);
        rc = update_record(t, ok, c->mod_revision, enc_cs(&rec), &rec.mod_revision);
        if (rc == 0)
            rc = mem_put(t, &t->m.css, &rec, cmp_id);
    }
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

static int check_members(struct model *m, const struct spl_topo_copyset *cs)
{
    if (cs->member_count == 0 || cs->member_count > SPL_REPLICAS_MAX)
        return SPL_ETOPO_INVALID;
    for (uint32_t i = 0; i < cs->member_count; i++) {
        const struct spl_topo_chunkserver *a = vec_find(&m->css, &cs->members[i], cmp_id);
        if (!a)
            return SPL_ETOPO_INVALID;
        for (uint32_t j = 0; j < i; j++) {
            const struct spl_topo_chunkserver *b = vec_find(&m->css, &cs->members[j], cmp_id);
            if (a->id == b->id || a->zone_id == b->zone_id)
                return SPL_ETOPO_INVALID;
        }
    }
    return 0;
}

/* The model's checks of one update; *cur the stored copyset when it may be written. */
static int update_check(spl_topo *t, const struct spl_topo_copyset *cs, uint64_t expect_epoch,
                        struct spl_topo_copyset **cur)
{
    *cur = vec_find(&t->m.copysets, cs, cmp_copyset);
    if (!*cur)
        return SPL_ECOPYSET_NOTFOUND;
    if ((*cur)->epoch != expect_epoch)
        return SPL_EETCD_TXNFAIL;
    return check_members(&t->m, cs);
}

static int update_one_locked(spl_topo *t, const struct spl_topo_copyset *cs,
                             uint64_t expect_epoch)
{
    struct spl_topo_copyset *cur;
    int rc = update_check(t, cs, expect_epoch, &cur);
    if (rc == 0) {
        struct spl_topo_copyset rec = *cs;
        char ck[128];
        key_copyset(ck, sizeof ck, cs->lpool_id, cs->id);
        rc = update_record(t, ck, cur->mod_revision, enc_copyset(&rec), &rec.mod_revision);
        if (rc == 0)
            rc = mem_put(t, &t->m.copysets, &rec, cmp_copyset);
    }
    return rc;
}

int spl_topo_update_copyset(spl_topo *t, const struct spl_topo_copyset *cs,
                            uint64_t expect_epoch)
{
    ASSERT(t && cs);
    pthread_mutex_lock(&t->write_lock);
    int rc = update_one_locked(t, cs, expect_epoch);
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

/* Writes updates ups[idx[0..n)] (checked, distinct copysets) in one transaction, then into
 * memory. */
static int update_chunk_locked(spl_topo *t, const struct spl_topo_copyset_update *ups,
                               const size_t *idx, size_t n)
{
    struct spl_etcd_txn txn;
    spl_etcd_txn_init(&txn);
    for (size_t j = 0; j < n; j++) {
        const struct spl_topo_copyset *cs = &ups[idx[j]].rec;
        const struct spl_topo_copyset *cur = vec_find(&t->m.copysets, cs, cmp_copyset);
        char ck[128];
        key_copyset(ck, sizeof ck, cs->lpool_id, cs->id);
        char *v = enc_copyset(cs);
        spl_etcd_txn_cmp(&txn, ck, SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, cur->mod_revision);
        spl_etcd_txn_put(&txn, SPL_ETCD_SUCCESS, ck, v, strlen(v), 0);
        free(v);
    }
    int64_t rev = 0;
    int rc = commit(t, &txn, &rev);
    spl_etcd_txn_free(&txn);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&t->lock);
    for (size_t j = 0; j < n; j++) {
        struct spl_topo_copyset rec = ups[idx[j]].rec;
        rec.mod_revision = rev;
        vec_put(&t->m.copysets, &rec, cmp_copyset); /* replaces: no allocation */
    }
    pthread_rwlock_unlock(&t->lock);
    return 0;
}

static bool in_chunk(const struct spl_topo_copyset_update *ups, const size_t *idx, size_t n,
                     const struct spl_topo_copyset *cs)
{
    for (size_t j = 0; j < n; j++)
        if (cmp_copyset(&ups[idx[j]].rec, cs) == 0)
            return true;
    return false;
}

int spl_topo_update_copysets(spl_topo *t, const struct spl_topo_copyset_update *ups, size_t n,
                             int *results)
{
    ASSERT(t && (n == 0 || (ups && results)));
    SPL_STATIC_ASSERT(SPL_TOPO_TXN_UPDATES >= 1, "room for one update and the fence");
    size_t idx[SPL_TOPO_TXN_UPDATES];
    size_t i = 0;
    int stop = 0; /* an etcd error or lost leadership: the rest is not tried */
    pthread_mutex_lock(&t->write_lock);
    while (i < n && !stop) {
        size_t k = 0;
        for (; i < n && k < SPL_TOPO_TXN_UPDATES; i++) {
            if (in_chunk(ups, idx, k, &ups[i].rec))
                break; /* named twice: the second goes to the next transaction */
            struct spl_topo_copyset *cur;
            results[i] = update_check(t, &ups[i].rec, ups[i].expect_epoch, &cur);
            if (results[i] == 0)
                idx[k++] = i;
        }
        int rc = k ? update_chunk_locked(t, ups, idx, k) : 0;
        if (rc == SPL_EETCD_TXNFAIL) { /* some record moved behind the model: one by one */
            LOG_INFO("mds", "copyset batch of %zu refused by etcd: writing one by one", k);
            for (size_t j = 0; j < k; j++)
                results[idx[j]] = update_one_locked(t, &ups[idx[j]].rec,
                                                    ups[idx[j]].expect_epoch);
        } else if (rc < 0) {
            for (size_t j = 0; j < k; j++)
                results[idx[j]] = rc;
            stop = rc;
        }
    }
    pthread_mutex_unlock(&t->write_lock);
    for (; i < n; i++)
        results[i] = stop;
    for (i = 0; i < n; i++)
        if (results[i] < 0)
            return results[i];
    return 0;
}

/* ---- reads ---- */

void spl_topo_get_counts(spl_topo *t, struct spl_topo_counts *out)
{
    pthread_rwlock_rdlock(&t->lock);
    *out = (struct spl_topo_counts){
        .pools = t->m.pools.count, .zones = t->m.zones.count, .servers = t->m.servers.count,
        .chunkservers = t->m.css.count, .lpools = t->m.lpools.count,
        .copysets = t->m.copysets.count};
    pthread_rwlock_unlock(&t->lock);
}

static int get_one(spl_topo *t, struct vec *v, const void *key, void *out, int notfound,
                   int (*cmp)(const void *, const void *))
{
    pthread_rwlock_rdlock(&t->lock);
    const void *x = vec_find(v, key, cmp);
    if (x)
        memcpy(out, x, v->elem);
    pthread_rwlock_unlock(&t->lock);
    return x ? 0 : notfound;
}

int spl_topo_get_pool(spl_topo *t, uint32_t id, struct spl_topo_pool *out)
{
    return get_one(t, &t->m.pools, &id, out, SPL_ETOPO_NOTFOUND, cmp_id);
}

int spl_topo_get_zone(spl_topo *t, uint32_t id, struct spl_topo_zone *out)
{
    return get_one(t, &t->m.zones, &id, out, SPL_ETOPO_NOTFOUND, cmp_id);
}

int spl_topo_get_server(spl_topo *t, uint32_t id, struct spl_topo_server *out)
{
    return get_one(t, &t->m.servers, &id, out, SPL_ETOPO_NOTFOUND, cmp_id);
}

int spl_topo_get_chunkserver(spl_topo *t, uint32_t id, struct spl_topo_chunkserver *out)
{
    return get_one(t, &t->m.css, &id, out, SPL_ECS_UNKNOWN, cmp_id);
}

int spl_topo_get_lpool(spl_topo *t, uint32_t id, struct spl_topo_lpool *out)
{
    return get_one(t, &t->m.lpools, &id, out, SPL_ETOPO_NOTFOUND, cmp_id);
}

int spl_topo_find_lpool(spl_topo *t, const char *name, struct spl_topo_lpool *out)
{
    pthread_rwlock_rdlock(&t->lock);
    struct spl_topo_lpool *l = FIND_BY_NAME(&t->m.lpools, struct spl_topo_lpool, name);
    if (l)
        *out = *l;
    pthread_rwlock_unlock(&t->lock);
    return l ? 0 : SPL_ETOPO_NOTFOUND;
}

int spl_topo_get_copyset(spl_topo *t, uint32_t lpool_id, uint32_t copyset_id,
                         struct spl_topo_copyset *out)
{
    struct spl_topo_copyset key = {.lpool_id = lpool_id, .id = copyset_id};
    return get_one(t, &t->m.copysets, &key, out, SPL_ECOPYSET_NOTFOUND, cmp_copyset);
}

/* Copies elements [from, to) of v into a fresh array. */
static int copy_range(spl_topo *t, const struct vec *v, size_t from, size_t to, void **out,
                      size_t *count)
{
    *out = NULL;
    *count = 0;
    if (to <= from)
        return 0;
    *out = malloc((to - from) * v->elem);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, vec_at(v, from), (to - from) * v->elem);
    *count = to - from;
    return 0;
}

int spl_topo_list_pools(spl_topo *t, struct spl_topo_pool **out, size_t *count)
{
    pthread_rwlock_rdlock(&t->lock);
    int rc = copy_range(t, &t->m.pools, 0, t->m.pools.count, (void **)out, count);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int spl_topo_list_zones(spl_topo *t, struct spl_topo_zone **out, size_t *count)
{
    pthread_rwlock_rdlock(&t->lock);
    int rc = copy_range(t, &t->m.zones, 0, t->m.zones.count, (void **)out, count);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int spl_topo_list_servers(spl_topo *t, struct spl_topo_server **out, size_t *count)
{
    pthread_rwlock_rdlock(&t->lock);
    int rc = copy_range(t, &t->m.servers, 0, t->m.servers.count, (void **)out, count);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int spl_topo_list_chunkservers(spl_topo *t, struct spl_topo_chunkserver **out, size_t *count)
{
    pthread_rwlock_rdlock(&t->lock);
    int rc = copy_range(t, &t->m.css, 0, t->m.css.count, (void **)out, count);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int spl_topo_list_lpools(spl_topo *t, struct spl_topo_lpool **out, size_t *count)
{
    pthread_rwlock_rdlock(&t->lock);
    int rc = copy_range(t, &t->m.lpools, 0, t->m.lpools.count, (void **)out, count);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int spl_topo_list_copysets(spl_topo *t, uint32_t lpool_id, struct spl_topo_copyset **out,
                           size_t *count)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t from = 0, to = t->m.copysets.count;
    if (lpool_id) {
        struct spl_topo_copyset lo = {.lpool_id = lpool_id}, hi = {.lpool_id = lpool_id + 1};
        from = vec_lower(&t->m.copysets, &lo, cmp_copyset);
        to = lpool_id == UINT32_MAX ? to : vec_lower(&t->m.copysets, &hi, cmp_copyset);
    }
    int rc = copy_range(t, &t->m.copysets, from, to, (void **)out, count);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int spl_topo_list_copysets_of(spl_topo *t, uint32_t cs_id, struct spl_topo_copyset **out,
                              size_t *count)
{
    ASSERT(t && out && count);
    *out = NULL;
    *count = 0;
    pthread_rwlock_rdlock(&t->lock);
    int rc = 0;
    size_t cap = 0;
    for (size_t i = 0; i < t->m.copysets.count && rc == 0; i++) {
        const struct spl_topo_copyset *c = vec_at(&t->m.copysets, i);
        bool member = false;
        for (uint32_t r = 0; r < c->member_count; r++)
            member |= c->members[r] == cs_id;
        if (!member)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            struct spl_topo_copyset *n = realloc(*out, cap * sizeof *n);
            if (!n) {
                rc = -ENOMEM;
                break;
            }
            *out = n;
        }
        (*out)[(*count)++] = *c;
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *count = 0;
    }
    return rc;
}
