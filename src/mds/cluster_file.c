/* cluster_file.c - the YAML cluster description (libyaml document API); see cluster_file.h. */
#include "mds/cluster_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/limits.h"

struct parse {
    yaml_document_t *doc;
    char *why;
    size_t why_len;
    size_t objects;
};

__attribute__((format(printf, 3, 4))) static int fail(struct parse *p, yaml_node_t *n,
                                                      const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->why && p->why_len)
        snprintf(p->why, p->why_len, "line %zu: %s", n ? n->start_mark.line + 1 : 0, msg);
    return SPL_ETOPO_INVALID;
}

bool spl_cluster_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= SPL_CLUSTER_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Copies a scalar into dst (cap bytes). */
static int get_text(struct parse *p, yaml_node_t *n, const char *what, char *dst, size_t cap)
{
    const char *s = scalar(n);
    if (!s)
        return fail(p, n, "%s must be a plain value", what);
    if (strlen(s) == 0 || strlen(s) >= cap)
        return fail(p, n, "%s must be 1..%zu bytes", what, cap - 1);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int get_name(struct parse *p, yaml_node_t *n, const char *what, char *dst)
{
    int rc = get_text(p, n, what, dst, SPL_CLUSTER_NAME_MAX);
    if (rc == 0 && !spl_cluster_name_valid(dst))
        return fail(p, n, "%s '%s' is not a valid name ([A-Za-z0-9_.-], starting with a "
                    "letter or digit, at most %d bytes)", what, dst, SPL_CLUSTER_NAME_MAX - 1);
    return rc;
}

static int get_u64(struct parse *p, yaml_node_t *n, const char *what, uint64_t min,
                   uint64_t max, bool size_suffix, uint64_t *out)
{
    const char *s = scalar(n);
    if (!s || !isdigit((unsigned char)s[0]))
        return fail(p, n, "%s must be a number", what);
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (size_suffix && *end) {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (u) {
            shift = 10u * (unsigned)(u - units + 1);
            end++;
            if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
                end += strlen(end);
        }
    }
    if (errno || *end || (shift && v > (UINT64_MAX >> shift)))
        return fail(p, n, "%s: '%s' is not a valid number", what, s);
    v <<= shift;
    if (v < min || v > max)
        return fail(p, n, "%s must be in %llu..%llu", what, (unsigned long long)min,
                    (unsigned long long)max);
    *out = v;
    return 0;
}

typedef int (*field_fn)(struct parse *p, const char *key, yaml_node_t *val, void *obj);

/* Walks a mapping, calling fn for each key; fn returns 1 for an unknown key. */
static int each_field(struct parse *p, yaml_node_t *n, const char *what, field_fn fn, void *obj)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return fail(p, n, "%s must be a mapping (key: value lines)", what);
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(p->doc, pr->value);
        const char *key = scalar(k);
        if (!key)
            return fail(p, k, "%s: keys must be plain words", what);
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pr; q++)
            if (strcmp(key, scalar(yaml_document_get_node(p->doc, q->key))) == 0)
                return fail(p, k, "%s: key '%s' appears twice", what, key);
        int rc = fn(p, key, v, obj);
        if (rc == 1)
            return fail(p, k, "%s: unknown key '%s'", what, key);
        if (rc < 0)
            return rc;
    }
    return 0;
}

typedef int (*item_fn)(struct parse *p, yaml_node_t *item, void *elem);

/* Parses a sequence into a fresh array of elem_size elements. */
static int each_item(struct parse *p, yaml_node_t *n, const char *what, size_t elem_size,
                     void **array, size_t *count, item_fn fn)
{
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(p, n, "%s must be a list", what);
    ASSERT(*array == NULL && *count == 0); /* each_field refuses a repeated key */
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    p->objects += len;
    if (p->objects > SPL_CLUSTER_OBJECTS_MAX)
        return fail(p, n, "too many objects (at most %d)", SPL_CLUSTER_OBJECTS_MAX);
    *array = calloc(len ? len : 1, elem_size);
    if (!*array)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, n->data.sequence.items.start[i]);
        (*count)++;
        int rc = fn(p, item, (char *)*array + i * elem_size);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cs_field(struct parse *p, const char *key, yaml_node_t *v, void *obj)
{
    struct spl_cluster_cs *cs = obj;
    uint64_t x;
    if (strcmp(key, "port") == 0) {
        int rc = get_u64(p, v, "port", 1, 65535, false, &x);
        cs->port = (uint16_t)x;
        return rc;
    }
    if (strcmp(key, "disk") == 0)
        return get_text(p, v, "disk", cs->disk, sizeof cs->disk);
    if (strcmp(key, "capacity") == 0)
        return get_u64(p, v, "capacity", 0, UINT64_MAX, true, &cs->capacity_bytes);
    return 1;
}

static int cs_item(struct parse *p, yaml_node_t *n, void *elem)
{
    struct spl_cluster_cs *cs = elem;
    int rc = each_field(p, n, "chunkserver", cs_field, cs);
    if (rc == 0 && (cs->port == 0 || !cs->disk[0]))
        return fail(p, n, "a chunkserver needs port and disk");
    return rc;
}

static int server_field(struct parse *p, const char *key, yaml_node_t *v, void *obj)
{
    struct spl_cluster_server *s = obj;
    if (strcmp(key, "name") == 0)
        return get_name(p, v, "server name", s->name);
    if (strcmp(key, "ip") == 0)
        return get_text(p, v, "ip", s->ip, sizeof s->ip);
    if (strcmp(key, "chunkservers") == 0)
        return each_item(p, v, "chunkservers", sizeof(struct spl_cluster_cs),
                         (void **)&s->chunkservers, &s->chunkserver_count, cs_item);
    return 1;
}

static int server_item(struct parse *p, yaml_node_t *n, void *elem)
{
    struct spl_cluster_server *s = elem;
    int rc = each_field(p, n, "server", server_field, s);
    if (rc == 0 && (!s->name[0] || !s->ip[0]))
        return fail(p, n, "a server needs name and ip");
    return rc;
}

static int zone_field(struct parse *p, const char *key, yaml_node_t *v, void *obj)
{
    struct spl_cluster_zone *z = obj;
    if (strcmp(key, "name") == 0)
        return get_name(p, v, "zone name", z->name);
    if (strcmp(key, "servers") == 0)
        return each_item(p, v, "servers", sizeof(struct spl_cluster_server),
                         (void **)&z->servers, &z->server_count, server_item);
    return 1;
}

static int zone_item(struct parse *p, yaml_node_t *n, void *elem)
{
    struct spl_cluster_zone *z = elem;
    int rc = each_field(p, n, "zone", zone_field, z);
    if (rc == 0 && !z->name[0])
        return fail(p, n, "a zone needs a name");
    return rc;
}

static int pool_field(struct parse *p, const char *key, yaml_node_t *v, void *obj)
{
    struct spl_cluster_pool *pool = obj;
    if (strcmp(key, "name") == 0)
        return get_name(p, v, "pool name", pool->name);
    if (strcmp(key, "zones") == 0)
        return each_item(p, v, "zones", sizeof(struct spl_cluster_zone), (void **)&pool->zones,
                         &pool->zone_count, zone_item);
    return 1;
}

static int pool_item(struct parse *p, yaml_node_t *n, void *elem)
{
    struct spl_cluster_pool *pool = elem;
    int rc = each_field(p, n, "physical pool", pool_field, pool);
    if (rc == 0 && !pool->name[0])
        return fail(p, n, "a physical pool needs a name");
    return rc;
}

static int lpool_field(struct parse *p, const char *key, yaml_node_t *v, void *obj)
{
    struct spl_cluster_lpool *l = obj;
    uint64_t x;
    int rc;
    if (strcmp(key, "name") == 0)
        return get_name(p, v, "logical pool name", l->name);
    if (strcmp(key, "physical_pool") == 0)
        return get_name(p, v, "physical_pool", l->pool);
    if (strcmp(key, "replicas") == 0) {
        rc = get_u64(p, v, "replicas", 1, SPL_REPLICAS_MAX, false, &x);
        l->replicas = (uint32_t)x;
        return rc;
    }
    if (strcmp(key, "copysets") == 0) {
        rc = get_u64(p, v, "copysets", 1, UINT32_MAX, false, &x);
        l->copysets = (uint32_t)x;
        return rc;
    }
    return 1;
}

static int lpool_item(struct parse *p, yaml_node_t *n, void *elem)
{
    struct spl_cluster_lpool *l = elem;
    l->replicas = 3;
    int rc = each_field(p, n, "logical pool", lpool_field, l);
    if (rc == 0 && (!l->name[0] || !l->pool[0] || l->copysets == 0))
        return fail(p, n, "a logical pool needs name, physical_pool and copysets");
    return rc;
}

static int root_field(struct parse *p, const char *key, yaml_node_t *v, void *obj)
{
    struct spl_cluster_desc *d = obj;
    if (strcmp(key, "physical_pools") == 0)
        return each_item(p, v, "physical_pools", sizeof(struct spl_cluster_pool),
                         (void **)&d->pools, &d->pool_count, pool_item);
    if (strcmp(key, "logical_pools") == 0)
        return each_item(p, v, "logical_pools", sizeof(struct spl_cluster_lpool),
                         (void **)&d->lpools, &d->lpool_count, lpool_item);
    return 1;
}

/* Cross-object checks: unique names per kind, unique chunkserver identities, references. */
static int validate(const struct spl_cluster_desc *d, char *why, size_t why_len)
{
#define BAD(...)                                                                         \
    do {                                                                                 \
        if (why && why_len)                                                              \
            snprintf(why, why_len, __VA_ARGS__);                                         \
        return SPL_ETOPO_INVALID;                                                        \
    } while (0)
    for (size_t i = 0; i < d->pool_count; i++) {
        const struct spl_cluster_pool *a = &d->pools[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->name, d->pools[j].name) == 0)
                BAD("physical pool '%s' is declared twice", a->name);
        for (size_t z = 0; z < a->zone_count; z++) {
            const struct spl_cluster_zone *zone = &a->zones[z];
            for (size_t i2 = 0; i2 <= i; i2++)
                for (size_t z2 = 0; z2 < d->pools[i2].zone_count; z2++) {
                    if (i2 == i && z2 >= z)
                        break;
                    if (strcmp(zone->name, d->pools[i2].zones[z2].name) == 0)
                        BAD("zone '%s' is declared twice", zone->name);
                }
        }
    }
    /* servers and chunkservers: flatten once, compare all pairs (files are small) */
    size_t n = 0;
    for (size_t i = 0; i < d->pool_count; i++)
        for (size_t z = 0; z < d->pools[i].zone_count; z++)
            n += d->pools[i].zones[z].server_count;
    const struct spl_cluster_server **all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return -ENOMEM;
    n = 0;
    for (size_t i = 0; i < d->pool_count; i++)
        for (size_t z = 0; z < d->pools[i].zone_count; z++)
            for (size_t s = 0; s < d->pools[i].zones[z].server_count; s++)
                all[n++] = &d->pools[i].zones[z].servers[s];
    int rc = 0;
    for (size_t a = 0; a < n && rc == 0; a++) {
        for (size_t b = 0; b < a && rc == 0; b++)
            if (strcmp(all[a]->name, all[b]->name) == 0) {
                if (why && why_len)
                    snprintf(why, why_len, "server '%s' is declared twice", all[a]->name);
                rc = SPL_ETOPO_INVALID;
            }
        for (size_t b = 0; b <= a && rc == 0; b++)
            for (size_t c = 0; c < all[a]->chunkserver_count && rc == 0; c++)
                for (size_t c2 = 0; c2 < all[b]->chunkserver_count && rc == 0; c2++) {
                    if (b == a && c2 >= c)
                        break;
                    const struct spl_cluster_cs *x = &all[a]->chunkservers[c];
                    const struct spl_cluster_cs *y = &all[b]->chunkservers[c2];
                    if (strcmp(all[a]->ip, all[b]->ip) == 0 && x->port == y->port &&
                        strcmp(x->disk, y->disk) == 0) {
                        if (why && why_len)
                            snprintf(why, why_len, "chunkserver %s:%u %s is declared twice",
                                     all[a]->ip, x->port, x->disk);
                        rc = SPL_ETOPO_INVALID;
                    }
                }
    }
    free(all);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < d->lpool_count; i++) {
        const struct spl_cluster_lpool *l = &d->lpools[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->name, d->lpools[j].name) == 0)
                BAD("logical pool '%s' is declared twice", l->name);
    }
    return 0;
#undef BAD
}

int spl_cluster_parse(const char *text, size_t len, struct spl_cluster_desc *out, char *why,
                      size_t why_len)
{
    ASSERT(text && out);
    memset(out, 0, sizeof *out);
    if (why && why_len)
        why[0] = '\0';
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (why && why_len)
            snprintf(why, why_len, "line %zu: %s", parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "YAML syntax error");
        yaml_parser_delete(&parser);
        return SPL_ETOPO_INVALID;
    }
    struct parse p = {.doc = &doc, .why = why, .why_len = why_len};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = root ? each_field(&p, root, "the file", root_field, out)
                  : fail(&p, NULL, "the file is empty");
    if (rc == 0)
        rc = validate(out, why, why_len);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int spl_cluster_parse_file(const char *path, struct spl_cluster_desc *out, char *why,
                           size_t why_len)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(SPL_CLUSTER_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, SPL_CLUSTER_FILE_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    int rc;
    if (err)
        rc = -EIO;
    else if (n > SPL_CLUSTER_FILE_MAX)
        rc = SPL_ETOOBIG;
    else
        rc = spl_cluster_parse(buf, n, out, why, why_len);
    free(buf);
    return rc;
}

void spl_cluster_desc_free(struct spl_cluster_desc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->pool_count; i++) {
        struct spl_cluster_pool *p = &d->pools[i];
        for (size_t z = 0; z < p->zone_count; z++) {
            for (size_t s = 0; s < p->zones[z].server_count; s++)
                free(p->zones[z].servers[s].chunkservers);
            free(p->zones[z].servers);
        }
        free(p->zones);
    }
    free(d->pools);
    free(d->lpools);
    memset(d, 0, sizeof *d);
}
