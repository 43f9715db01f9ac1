/*
 * world.h - the seeded simulated world: true time, an event queue, node clocks, a trace.
 *
 * Owns: the one true clock (ns since the start of the run), a priority queue of future
 * events ordered by (time, sequence number) so that equal times run in a fixed order, one
 * seeded generator from which every random choice of the run is drawn, a model of each
 * node's monotonic clock (rate drift in ppm, stalls, forward jumps) and of its wall clock
 * (which may also jump back), and a ring buffer of the last trace lines for failure
 * reports. Everything derives from one u64 seed, so a run replays exactly.
 *
 * Leaves to others: what events mean (the cluster driver gives them a kind and a payload),
 * the network (simnet.h) and disks (simdisk.h). Single-threaded.
 */
#ifndef SPL_SIM_WORLD_H
#define SPL_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/random.h"

#define SIM_NODES_MAX 8          /* node ids are 1..SIM_NODES_MAX-1 */
#define SIM_TRACE_LINES 256      /* trace lines kept for a failure report */
#define SIM_TRACE_LINE_MAX 240   /* bytes per trace line */
#define SPL_SIM_US ((uint64_t)1000)
#define SPL_SIM_MS ((uint64_t)1000000)
#define SPL_SIM_SEC ((uint64_t)1000000000)

struct sim_event {
    uint64_t at_ns;   /* true time the event fires */
    uint64_t seq;     /* tie-break: insertion order */
    int kind;         /* the driver's event kind */
    int node;         /* the node it concerns (0 = none) */
    uint64_t arg;     /* kind-specific */
    void *ptr;        /* kind-specific payload, owned by the event until it fires */
};

/* A node's monotonic clock: piecewise linear in true time. mono advances at
 * (1e6 + rate_ppm) / 1e6 of true time, except while stalled (it stands still, then
 * resumes from where it stopped: a stall never makes it go back). */
struct sim_clock {
    uint64_t mono_ns;       /* value at true time last_true_ns */
    uint64_t last_true_ns;
    int64_t rate_ppm;       /* drift: + runs fast, - runs slow */
    uint64_t stall_until_ns; /* true time until which mono stands still */
    int64_t wall_offset_ns; /* wall = mono + offset; jumps either way */
    uint64_t frac;          /* sub-ns remainder of mono, in 1e-6 ns */
};

struct sim_world {
    uint64_t seed;
    uint64_t now_ns;         /* true time */
    uint64_t steps;          /* events processed */
    struct spl_rand rand;
    struct sim_event *heap;  /* binary min-heap */
    size_t heap_len, heap_cap;
    uint64_t next_seq;
    struct sim_clock clock[SIM_NODES_MAX];
    char trace[SIM_TRACE_LINES][SIM_TRACE_LINE_MAX];
    uint64_t trace_count;    /* lines ever written */
    bool verbose;            /* also print each trace line as it is written */
    FILE *out;               /* where verbose lines and reports go */
};

/* sim_world_init - a world at true time 0 seeded with seed; all clocks start at a
 * seed-derived offset with no drift. out receives verbose trace lines and reports. */
void sim_world_init(struct sim_world *w, uint64_t seed, bool verbose, FILE *out);
/* sim_world_free - drops pending events; free_payload (may be NULL) is called on each
 * event's ptr. */
void sim_world_free(struct sim_world *w, void (*free_payload)(struct sim_event *ev));

/* sim_schedule - queue an event at absolute true time at_ns (>= now). */
void sim_schedule(struct sim_world *w, uint64_t at_ns, int kind, int node, uint64_t arg,
                  void *ptr);
/* sim_next - pop the earliest event into *ev and advance true time to it; false when the
 * queue is empty. */
bool sim_next(struct sim_world *w, struct sim_event *ev);
/* sim_peek_ns - the time of the earliest event, or UINT64_MAX. */
uint64_t sim_peek_ns(const struct sim_world *w);
/* sim_drop_events - remove every queued event for which match returns true, calling
 * free_payload (may be NULL) on each. */
void sim_drop_events(struct sim_world *w, bool (*match)(const struct sim_event *ev, void *ctx),
                     void *ctx, void (*free_payload)(struct sim_event *ev));

/* Random choices: all drawn from the world's one generator. */
uint64_t sim_rand_below(struct sim_world *w, uint64_t bound);
uint64_t sim_rand_range(struct sim_world *w, uint64_t lo, uint64_t hi);
bool sim_chance(struct sim_world *w, uint64_t num, uint64_t den);

/* Node clocks. sim_mono_ns reads node's monotonic clock at the current true time. */
uint64_t sim_mono_ns(struct sim_world *w, int node);
uint64_t sim_wall_ns(struct sim_world *w, int node);
/* sim_true_after - the true time at which node's mono clock will read mono_target_ns
 * (>= now); a clock that is stalled resumes first. */
uint64_t sim_true_after(struct sim_world *w, int node, uint64_t mono_target_ns);
void sim_clock_set_rate(struct sim_world *w, int node, int64_t rate_ppm);
void sim_clock_stall(struct sim_world *w, int node, uint64_t until_true_ns);
void sim_clock_jump_mono(struct sim_world *w, int node, uint64_t forward_ns);
void sim_clock_jump_wall(struct sim_world *w, int node, int64_t delta_ns);

/* sim_trace - append a formatted line (prefixed with true time) to the ring buffer. */
void sim_trace(struct sim_world *w, int node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sim_trace_dump - print the last `lines` trace lines (oldest first) to w->out. */
void sim_trace_dump(struct sim_world *w, size_t lines);

#endif
