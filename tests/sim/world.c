/* world.c - true time, event heap, node clocks and trace ring of the simulation. */
#include "world.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define SIM_PPM ((uint64_t)1000000)

void sim_world_init(struct sim_world *w, uint64_t seed, bool verbose, FILE *out)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    w->verbose = verbose;
    w->out = out;
    spl_rand_seed(&w->rand, seed);
    for (int n = 0; n < SIM_NODES_MAX; n++) {
        /* Clocks of different nodes disagree from the start. */
        w->clock[n].mono_ns = spl_rand_below(&w->rand, 1000) * SPL_SIM_MS;
        w->clock[n].wall_offset_ns = (int64_t)(1800000000ull * 1000000000ull);
    }
}

static void world_free_payloads(struct sim_world *w, void (*free_payload)(struct sim_event *))
{
    for (size_t i = 0; i < w->heap_len && free_payload; i++)
        free_payload(&w->heap[i]);
}

void sim_world_free(struct sim_world *w, void (*free_payload)(struct sim_event *ev))
{
    world_free_payloads(w, free_payload);
    free(w->heap);
    w->heap = NULL;
    w->heap_len = w->heap_cap = 0;
}

static bool ev_less(const struct sim_event *a, const struct sim_event *b)
{
    return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

static void heap_up(struct sim_event *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&h[i], &h[p]))
            break;
        struct sim_event t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void heap_down(struct sim_event *h, size_t len, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < len && ev_less(&h[l], &h[m]))
            m = l;
        if (r < len && ev_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct sim_event t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void sim_schedule(struct sim_world *w, uint64_t at_ns, int kind, int node, uint64_t arg,
                  void *ptr)
{
    ASSERT_CMP(at_ns, >=, w->now_ns);
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
        w->heap = realloc(w->heap, w->heap_cap * sizeof(w->heap[0]));
        ASSERT(w->heap != NULL);
    }
    w->heap[w->heap_len] = (struct sim_event){
        .at_ns = at_ns, .seq = w->next_seq++, .kind = kind, .node = node, .arg = arg,
        .ptr = ptr};
    heap_up(w->heap, w->heap_len++);
}

bool sim_next(struct sim_world *w, struct sim_event *ev)
{
    if (w->heap_len == 0)
        return false;
    *ev = w->heap[0];
    w->heap[0] = w->heap[--w->heap_len];
    heap_down(w->heap, w->heap_len, 0);
    ASSERT(ev->at_ns >= w->now_ns);
    w->now_ns = ev->at_ns;
    w->steps++;
    return true;
}

uint64_t sim_peek_ns(const struct sim_world *w)
{
    return w->heap_len ? w->heap[0].at_ns : UINT64_MAX;
}

void sim_drop_events(struct sim_world *w, bool (*match)(const struct sim_event *ev, void *ctx),
                     void *ctx, void (*free_payload)(struct sim_event *ev))
{
    size_t kept = 0;
    for (size_t i = 0; i < w->heap_len; i++) {
        if (match(&w->heap[i], ctx)) {
            if (free_payload)
                free_payload(&w->heap[i]);
            continue;
        }
        w->heap[kept++] = w->heap[i];
    }
    w->heap_len = kept;
    for (size_t i = kept / 2 + 1; i-- > 0;)
        heap_down(w->heap, w->heap_len, i);
}

uint64_t sim_rand_below(struct sim_world *w, uint64_t bound)
{
    return spl_rand_below(&w->rand, bound);
}

uint64_t sim_rand_range(struct sim_world *w, uint64_t lo, uint64_t hi)
{
    return spl_rand_range(&w->rand, lo, hi);
}

bool sim_chance(struct sim_world *w, uint64_t num, uint64_t den)
{
    return spl_rand_chance(&w->rand, num, den) != 0;
}

/* ---- clocks ---- */

static struct sim_clock *clock_of(struct sim_world *w, int node)
{
    ASSERT(node >= 0 && node < SIM_NODES_MAX);
    return &w->clock[node];
}

/* Brings the clock forward to the current true time. The fractional ns carried in
 * frac (units of 1/1e6 ns) keeps piecewise advances exact. */
static void clock_advance(struct sim_world *w, struct sim_clock *c)
{
    if (w->now_ns <= c->last_true_ns)
        return;
    uint64_t from = c->last_true_ns;
    if (c->stall_until_ns > from)
        from = c->stall_until_ns < w->now_ns ? c->stall_until_ns : w->now_ns;
    unsigned __int128 scaled = (unsigned __int128)(w->now_ns - from) *
                                   (uint64_t)((int64_t)SIM_PPM + c->rate_ppm) +
                               c->frac;
    c->mono_ns += (uint64_t)(scaled / SIM_PPM);
    c->frac = (uint64_t)(scaled % SIM_PPM);
    c->last_true_ns = w->now_ns;
}

uint64_t sim_mono_ns(struct sim_world *w, int node)
{
    struct sim_clock *c = clock_of(w, node);
    clock_advance(w, c);
    return c->mono_ns;
}

uint64_t sim_wall_ns(struct sim_world *w, int node)
{
    struct sim_clock *c = clock_of(w, node);
    clock_advance(w, c);
    return (uint64_t)((int64_t)c->mono_ns + c->wall_offset_ns);
}

uint64_t sim_true_after(struct sim_world *w, int node, uint64_t mono_target_ns)
{
    struct sim_clock *c = clock_of(w, node);
    clock_advance(w, c);
    if (mono_target_ns <= c->mono_ns)
        return w->now_ns;
    uint64_t start = c->stall_until_ns > w->now_ns ? c->stall_until_ns : w->now_ns;
    uint64_t rate = (uint64_t)((int64_t)SIM_PPM + c->rate_ppm);
    unsigned __int128 need = (unsigned __int128)(mono_target_ns - c->mono_ns) * SIM_PPM;
    need = need > c->frac ? need - c->frac : 0;
    return start + (uint64_t)((need + rate - 1) / rate);
}

void sim_clock_set_rate(struct sim_world *w, int node, int64_t rate_ppm)
{
    struct sim_clock *c = clock_of(w, node);
    ASSERT(rate_ppm > -(int64_t)SIM_PPM / 2 && rate_ppm < (int64_t)SIM_PPM);
    clock_advance(w, c);
    c->rate_ppm = rate_ppm;
}

void sim_clock_stall(struct sim_world *w, int node, uint64_t until_true_ns)
{
    struct sim_clock *c = clock_of(w, node);
    clock_advance(w, c);
    if (until_true_ns > c->stall_until_ns)
        c->stall_until_ns = until_true_ns;
}

void sim_clock_jump_mono(struct sim_world *w, int node, uint64_t forward_ns)
{
    struct sim_clock *c = clock_of(w, node);
    clock_advance(w, c);
    c->mono_ns += forward_ns;
}

void sim_clock_jump_wall(struct sim_world *w, int node, int64_t delta_ns)
{
    struct sim_clock *c = clock_of(w, node);
    c->wall_offset_ns += delta_ns;
}

/* ---- trace ---- */

void sim_trace(struct sim_world *w, int node, const char *fmt, ...)
{
    char *line = w->trace[w->trace_count % SIM_TRACE_LINES];
    int n = snprintf(line, SIM_TRACE_LINE_MAX, "%8" PRIu64 ".%06" PRIu64 " n%d ",
                     w->now_ns / SPL_SIM_MS, w->now_ns % SPL_SIM_MS, node);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && n < SIM_TRACE_LINE_MAX)
        vsnprintf(line + n, (size_t)(SIM_TRACE_LINE_MAX - n), fmt, ap);
    va_end(ap);
    w->trace_count++;
    if (w->verbose)
        fprintf(w->out, "%s\n", line);
}

void sim_trace_dump(struct sim_world *w, size_t lines)
{
    if (lines > SIM_TRACE_LINES)
        lines = SIM_TRACE_LINES;
    if (lines > w->trace_count)
        lines = (size_t)w->trace_count;
    fprintf(w->out, "--- last %zu of %" PRIu64 " trace lines (true ms.ns, node, event)\n",
            lines, w->trace_count);
    for (uint64_t i = w->trace_count - lines; i < w->trace_count; i++)
        fprintf(w->out, "%s\n", w->trace[i % SIM_TRACE_LINES]);
}
