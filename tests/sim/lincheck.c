/* lincheck.c - WGL linearizability search per key with a (linearized set, value) memo. */
#include "lincheck.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

static void *lin_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    ASSERTF(q != NULL, "out of memory (%zu bytes)", size);
    return q;
}

void spl_lin_history_init(struct spl_lin_history *h)
{
    memset(h, 0, sizeof(*h));
}

void spl_lin_history_free(struct spl_lin_history *h)
{
    free(h->ops);
    memset(h, 0, sizeof(*h));
}

size_t spl_lin_invoke(struct spl_lin_history *h, uint32_t client, enum spl_lin_kind kind,
                      uint64_t key, uint64_t value, uint64_t call_ns)
{
    ASSERT(kind == SPL_LIN_PUT || kind == SPL_LIN_GET);
    if (h->count == h->capacity) {
        h->capacity = h->capacity ? h->capacity * 2 : 256;
        h->ops = lin_xrealloc(h->ops, h->capacity * sizeof(h->ops[0]));
    }
    struct spl_lin_op *op = &h->ops[h->count];
    memset(op, 0, sizeof(*op));
    op->key = key;
    op->value = kind == SPL_LIN_PUT ? value : 0;
    op->call_ns = call_ns;
    op->client = client;
    op->kind = (uint8_t)kind;
    op->pending = true;
    return h->count++;
}

void spl_lin_complete(struct spl_lin_history *h, size_t index, uint64_t value_read,
                      uint64_t return_ns)
{
    ASSERT(index < h->count);
    struct spl_lin_op *op = &h->ops[index];
    ASSERT(op->pending);
    ASSERT_CMP(return_ns, >=, op->call_ns);
    op->pending = false;
    op->return_ns = return_ns;
    if (op->kind == SPL_LIN_GET)
        op->value = value_read;
}

/* ---- the memo: a hash set of (bitset of linearized ops, register value) ---- */

struct lin_memo {
    size_t words;        /* u64 words per bitset */
    uint64_t *arena;     /* stored bitsets, `words` each */
    size_t arena_used;   /* bitsets stored */
    size_t arena_cap;
    uint64_t *slot_hash; /* 0 = empty */
    uint64_t *slot_state;
    size_t *slot_bits;   /* index of the bitset in the arena */
    size_t slot_cap;     /* power of two */
};

static uint64_t lin_hash(const uint64_t *bits, size_t words, uint64_t state)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ state * 0xff51afd7ed558ccdull;
    for (size_t i = 0; i < words; i++) {
        h ^= bits[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0xc4ceb9fe1a85ec53ull;
    }
    return h | 1; /* never 0: 0 marks an empty slot */
}

static void lin_memo_init(struct lin_memo *m, size_t words)
{
    memset(m, 0, sizeof(*m));
    m->words = words;
    m->slot_cap = 1024;
    m->slot_hash = lin_xrealloc(NULL, m->slot_cap * sizeof(uint64_t));
    m->slot_state = lin_xrealloc(NULL, m->slot_cap * sizeof(uint64_t));
    m->slot_bits = lin_xrealloc(NULL, m->slot_cap * sizeof(size_t));
    memset(m->slot_hash, 0, m->slot_cap * sizeof(uint64_t));
}

static void lin_memo_free(struct lin_memo *m)
{
    free(m->arena);
    free(m->slot_hash);
    free(m->slot_state);
    free(m->slot_bits);
}

static void lin_memo_place(struct lin_memo *m, uint64_t h, uint64_t state, size_t bits)
{
    size_t mask = m->slot_cap - 1;
    size_t i = (size_t)h & mask;
    while (m->slot_hash[i] != 0)
        i = (i + 1) & mask;
    m->slot_hash[i] = h;
    m->slot_state[i] = state;
    m->slot_bits[i] = bits;
}

static void lin_memo_grow(struct lin_memo *m)
{
    size_t old_cap = m->slot_cap;
    uint64_t *old_hash = m->slot_hash, *old_state = m->slot_state;
    size_t *old_bits = m->slot_bits;
    m->slot_cap = old_cap * 2;
    m->slot_hash = lin_xrealloc(NULL, m->slot_cap * sizeof(uint64_t));
    m->slot_state = lin_xrealloc(NULL, m->slot_cap * sizeof(uint64_t));
    m->slot_bits = lin_xrealloc(NULL, m->slot_cap * sizeof(size_t));
    memset(m->slot_hash, 0, m->slot_cap * sizeof(uint64_t));
    for (size_t i = 0; i < old_cap; i++)
        if (old_hash[i] != 0)
            lin_memo_place(m, old_hash[i], old_state[i], old_bits[i]);
    free(old_hash);
    free(old_state);
    free(old_bits);
}

/* Adds (bits, state); returns false when it was already there. */
static bool lin_memo_add(struct lin_memo *m, const uint64_t *bits, uint64_t state)
{
    uint64_t h = lin_hash(bits, m->words, state);
    size_t mask = m->slot_cap - 1;
    for (size_t i = (size_t)h & mask; m->slot_hash[i] != 0; i = (i + 1) & mask) {
        if (m->slot_hash[i] == h && m->slot_state[i] == state &&
            memcmp(&m->arena[m->slot_bits[i] * m->words], bits, m->words * 8) == 0)
            return false;
    }
    if (m->arena_used == m->arena_cap) {
        m->arena_cap = m->arena_cap ? m->arena_cap * 2 : 256;
        m->arena = lin_xrealloc(m->arena, m->arena_cap * m->words * 8);
    }
    memcpy(&m->arena[m->arena_used * m->words], bits, m->words * 8);
    if ((m->arena_used + 1) * 2 > m->slot_cap)
        lin_memo_grow(m);
    lin_memo_place(m, h, state, m->arena_used);
    m->arena_used++;
    return true;
}

/* ---- the event list ---- */

struct lin_event {
    uint64_t time_ns;
    uint32_t op;       /* index into the key's op list */
    bool is_call;
    struct lin_event *prev, *next;
    struct lin_event *match; /* call -> its return (NULL when pending) */
};

static int lin_event_cmp(const void *a, const void *b)
{
    const struct lin_event *x = a, *y = b;
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1; /* calls first: equal times are concurrent */
    return x->op < y->op ? -1 : x->op > y->op;
}

static void lin_lift(struct lin_event *e)
{
    e->prev->next = e->next;
    if (e->next)
        e->next->prev = e->prev;
    struct lin_event *r = e->match;
    if (r) {
        r->prev->next = r->next;
        if (r->next)
            r->next->prev = r->prev;
    }
}

static void lin_unlift(struct lin_event *e)
{
    struct lin_event *r = e->match;
    if (r) {
        r->prev->next = r;
        if (r->next)
            r->next->prev = r;
    }
    e->prev->next = e;
    if (e->next)
        e->next->prev = e;
}

struct lin_frame {
    struct lin_event *call;
    uint64_t state;
};

/* Builds the sorted, linked event list for ops[0..n); returns the array (head is [0]). */
static struct lin_event *lin_build_events(const struct spl_lin_op *const *ops, size_t n,
                                          size_t *completed)
{
    struct lin_event *ev = lin_xrealloc(NULL, (2 * n + 1) * sizeof(*ev));
    size_t k = 1;
    *completed = 0;
    for (size_t i = 0; i < n; i++) {
        ev[k++] = (struct lin_event){.time_ns = ops[i]->call_ns, .op = (uint32_t)i,
                                     .is_call = true};
        if (!ops[i]->pending) {
            ev[k++] = (struct lin_event){.time_ns = ops[i]->return_ns, .op = (uint32_t)i};
            (*completed)++;
        }
    }
    qsort(&ev[1], k - 1, sizeof(*ev), lin_event_cmp);
    struct lin_event **call_of = lin_xrealloc(NULL, n * sizeof(*call_of));
    memset(&ev[0], 0, sizeof(ev[0]));
    for (size_t i = 0; i < k; i++) {
        ev[i].prev = i ? &ev[i - 1] : NULL;
        ev[i].next = i + 1 < k ? &ev[i + 1] : NULL;
        if (i == 0)
            continue;
        if (ev[i].is_call)
            call_of[ev[i].op] = &ev[i];
        else
            call_of[ev[i].op]->match = &ev[i]; /* calls sort before their returns */
    }
    free(call_of);
    return ev;
}

/* The search for one key's ops. Returns OK, VIOLATION or GAVE_UP. */
static enum spl_lin_result lin_check_key(const struct spl_lin_op *const *ops, size_t n,
                                         uint64_t budget, uint64_t *steps)
{
    size_t remaining;
    struct lin_event *ev = lin_build_events(ops, n, &remaining);
    size_t words = (n + 63) / 64;
    uint64_t *bits = lin_xrealloc(NULL, words * 8);
    memset(bits, 0, words * 8);
    struct lin_frame *stack = lin_xrealloc(NULL, (n + 1) * sizeof(*stack));
    size_t depth = 0;
    struct lin_memo memo;
    lin_memo_init(&memo, words);
    enum spl_lin_result result = SPL_LIN_OK;
    uint64_t state = 0;
    struct lin_event *e = ev[0].next;
    while (remaining > 0) {
        if (budget && ++*steps > budget) {
            result = SPL_LIN_GAVE_UP;
            break;
        }
        if (e != NULL && e->is_call) {
            const struct spl_lin_op *op = ops[e->op];
            bool legal = op->kind == SPL_LIN_PUT || op->value == state;
            uint64_t next = op->kind == SPL_LIN_PUT ? op->value : state;
            if (legal) {
                bits[e->op / 64] |= 1ull << (e->op % 64);
                if (lin_memo_add(&memo, bits, next)) {
                    stack[depth++] = (struct lin_frame){.call = e, .state = state};
                    state = next;
                    remaining -= op->pending ? 0 : 1;
                    lin_lift(e);
                    e = ev[0].next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
            continue;
        }
        /* A return (or the end) reached with its op not linearized: backtrack. */
        if (depth == 0) {
            result = SPL_LIN_VIOLATION;
            break;
        }
        struct lin_frame f = stack[--depth];
        state = f.state;
        bits[f.call->op / 64] &= ~(1ull << (f.call->op % 64));
        remaining += ops[f.call->op]->pending ? 0 : 1;
        lin_unlift(f.call);
        e = f.call->next;
    }
    lin_memo_free(&memo);
    free(stack);
    free(bits);
    free(ev);
    return result;
}

static int lin_ptr_cmp(const void *a, const void *b)
{
    const struct spl_lin_op *x = *(const struct spl_lin_op *const *)a;
    const struct spl_lin_op *y = *(const struct spl_lin_op *const *)b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->call_ns != y->call_ns)
        return x->call_ns < y->call_ns ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Orders completed gets by (key, value read) for lin_value_read's binary search. */
static int lin_read_cmp(const void *a, const void *b)
{
    const struct spl_lin_op *x = *(const struct spl_lin_op *const *)a;
    const struct spl_lin_op *y = *(const struct spl_lin_op *const *)b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* True when some completed get of put's key returned put's value. */
static bool lin_value_read(const struct spl_lin_op *const *reads, size_t n,
                           const struct spl_lin_op *put)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct spl_lin_op *r = reads[mid];
        if (r->key < put->key || (r->key == put->key && r->value < put->value))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && reads[lo]->key == put->key && reads[lo]->value == put->value;
}

enum spl_lin_result spl_lin_check(const struct spl_lin_op *ops, size_t count,
                                  uint64_t step_budget, struct spl_lin_report *report)
{
    struct spl_lin_report local;
    if (!report)
        report = &local;
    memset(report, 0, sizeof(*report));
    /* Pending gets observe nothing and constrain nothing: leave them out. So do pending
     * puts whose value no completed get of their key returned: in any linearization
     * nothing reads between such a put and the next one, so dropping it keeps every read
     * legal (and "never took effect" is allowed for it). This keeps the search from
     * trying every subset of timed-out writes. */
    const struct spl_lin_op **sorted = lin_xrealloc(NULL, (count + 1) * sizeof(*sorted));
    const struct spl_lin_op **reads = lin_xrealloc(NULL, (count + 1) * sizeof(*reads));
    size_t nreads = 0;
    for (size_t i = 0; i < count; i++)
        if (ops[i].kind == SPL_LIN_GET && !ops[i].pending)
            reads[nreads++] = &ops[i];
    qsort(reads, nreads, sizeof(*reads), lin_read_cmp);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        ASSERT(ops[i].kind == SPL_LIN_PUT || ops[i].kind == SPL_LIN_GET);
        if (ops[i].pending && ops[i].kind == SPL_LIN_GET)
            continue;
        if (ops[i].pending && !lin_value_read(reads, nreads, &ops[i]))
            continue;
        ASSERT(ops[i].pending || ops[i].return_ns >= ops[i].call_ns);
        sorted[n++] = &ops[i];
    }
    free(reads);
    qsort(sorted, n, sizeof(*sorted), lin_ptr_cmp);
    enum spl_lin_result result = SPL_LIN_OK;
    for (size_t lo = 0; lo < n && result == SPL_LIN_OK;) {
        size_t hi = lo;
        while (hi < n && sorted[hi]->key == sorted[lo]->key)
            hi++;
        report->keys++;
        result = lin_check_key(&sorted[lo], hi - lo, step_budget, &report->steps);
        if (result != SPL_LIN_OK) {
            report->key = sorted[lo]->key;
            report->key_ops = hi - lo;
        }
        lo = hi;
    }
    free(sorted);
    return result;
}

void spl_lin_print_key(FILE *out, const struct spl_lin_op *ops, size_t count, uint64_t key)
{
    const struct spl_lin_op **sorted = lin_xrealloc(NULL, (count + 1) * sizeof(*sorted));
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (ops[i].key == key)
            sorted[n++] = &ops[i];
    qsort(sorted, n, sizeof(*sorted), lin_ptr_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct spl_lin_op *op = sorted[i];
        char ret[32];
        if (op->pending)
            snprintf(ret, sizeof(ret), "unknown");
        else
            snprintf(ret, sizeof(ret), "%" PRIu64, op->return_ns);
        fprintf(out, "  client %-3u %s(k%" PRIu64 ")%s%-20" PRIu64 " [%" PRIu64 ", %s]\n",
                op->client, op->kind == SPL_LIN_PUT ? "put" : "get", op->key,
                op->kind == SPL_LIN_PUT ? " <- " : " -> ", op->value, op->call_ns, ret);
    }
    free(sorted);
}
