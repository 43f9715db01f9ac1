/*
 * sim_raft.c - run the deterministic Raft simulation over a range of seeds.
 *
 *   sim_raft --seeds N [--start S] [--steps K] [--verbose] [--plant BUG]
 *            [--expect-violation | --expect-invariant N,M] [--trace-lines L] [--keep-going]
 *            [--prevote on|off] [--ignore-invariant N,M] [--allow-empty-ready] [--trace]
 *            [--fork] [--rude-campaign]
 *            [--atomic-ready on|off] [--silent-loss]
 *
 * Each seed is one complete, replayable run (sim.h). On a violation the seed is printed
 * first, then the run is repeated with the trace on: the last L trace lines, then the
 * violated invariant with its values. `sim_raft --seeds 1 --start S --verbose` replays
 * seed S printing every event. --plant runs with a bug planted from the outside and
 * --expect-violation turns the exit status around: success means some seed within N
 * caught it (the checker has teeth); --expect-invariant 2,14 also requires the violation
 * to be one of those invariants (seeds failing otherwise are listed and skipped).
 * Exit status: 0 success, 1 failure, 2 usage.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static char g_replay[512]; /* the replay hint printed if the code under test crashes */

static void on_fatal_signal(int sig)
{
    signal(sig, SIG_DFL);
    sim_crash_report(stdout);
    printf("%s\n", g_replay);
    fflush(stdout);
    raise(sig);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: sim_raft --seeds N [--start S] [--steps K] [--verbose] [--plant BUG]\n"
            "                [--expect-violation | --expect-invariant N,M..] [--trace-lines L]\n"
            "                [--keep-going] [--ignore-invariant N,M..] [--allow-empty-ready]\n"
            "                [--trace] [--fork] [--rude-campaign]\n"
            "                [--prevote on|off] [--atomic-ready on|off] [--silent-loss]\n"
            "bugs:");
    for (int i = 1; i < SIM_PLANT_COUNT; i++)
        fprintf(stderr, " %s", sim_plant_name(i));
    fprintf(stderr, "\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    *out = strtoull(s, &end, 0);
    return *end == 0;
}

/* "2,14,25" -> bit mask of invariant numbers (0..63). */
static bool parse_invariants(const char *s, uint64_t *mask)
{
    if (!s || !*s)
        return false;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v > 63)
            return false;
        *mask |= 1ull << v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return false;
    }
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct totals {
    uint64_t steps, sim_ns, ops_ok, ops_unknown, ops_failed, reads_lease, reads_index;
    uint64_t elections, restarts, snapshots, conf_changes, transfers, torn, lin_ops;
};

static void add_totals(struct totals *t, const struct sim_result *r)
{
    t->steps += r->steps;
    t->sim_ns += r->sim_ns;
    t->ops_ok += r->ops_ok;
    t->ops_unknown += r->ops_unknown;
    t->ops_failed += r->ops_failed;
    t->reads_lease += r->reads_lease;
    t->reads_index += r->reads_index;
    t->elections += r->elections;
    t->restarts += r->restarts;
    t->snapshots += r->snapshots_sent;
    t->conf_changes += r->conf_changes;
    t->transfers += r->transfers;
    t->torn += r->torn_tails;
    t->lin_ops += r->lin_ops;
}

/* Runs one seed in a child process (--fork), so that a crash of the code under test is
 * counted as a failure of that seed and the run goes on. */
static bool run_forked(const struct sim_options *opt, struct sim_result *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        return sim_run(opt, r);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return sim_run(opt, r);
    }
    if (pid == 0) {
        close(fds[0]);
        struct sim_result cr;
        bool ok = sim_run(opt, &cr);
        ssize_t w = write(fds[1], &cr, sizeof(cr));
        fflush(stdout);
        _exit(ok && w == (ssize_t)sizeof(cr) ? 0 : 1);
    }
    close(fds[1]);
    memset(r, 0, sizeof(*r));
    size_t got = 0;
    while (got < sizeof(*r)) {
        ssize_t n = read(fds[0], (char *)r + got, sizeof(*r) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got == sizeof(*r))
        return !r->failed;
    memset(r, 0, sizeof(*r));
    r->failed = true;
    r->invariant = 0;
    snprintf(r->what, sizeof(r->what), "the code under test crashed (%s %d)",
             WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status)
                                                                          : WEXITSTATUS(status));
    return false;
}

/* Re-runs a failed seed with the trace on and checks that it fails the same way. */
static bool replay_failure(const struct sim_options *base, const struct sim_result *first)
{
    struct sim_options opt = *base;
    opt.trace = true;
    struct sim_result again;
    sim_run(&opt, &again);
    if (!again.failed || again.invariant != first->invariant || again.steps != first->steps) {
        fprintf(base->out, "NONDETERMINISTIC: the re-run of seed %" PRIu64 " %s (invariant %d "
                "at step %" PRIu64 ", first run: %d at %" PRIu64 ")\n", base->seed,
                again.failed ? "failed differently" : "passed", again.invariant, again.steps,
                first->invariant, first->steps);
        return false;
    }
    return true;
}

struct cli {
    uint64_t seeds, start, steps, trace_lines;
    bool verbose, trace, expect, keep_going, fork_each, silent_loss, allow_empty, rude;
    int plant, pre_vote, atomic_ready;
    uint64_t expect_mask; /* invariants that count as catching the planted bug */
    uint64_t ignore_mask; /* invariants not enforced */
};

/* "on" -> 1, "off" -> 0, else false. */
static bool parse_on_off(const char *v, int *out)
{
    if (v && strcmp(v, "on") == 0)
        *out = 1;
    else if (v && strcmp(v, "off") == 0)
        *out = 0;
    else
        return false;
    return true;
}

/* Fills *c from argv; false on a usage error. */
static bool parse_args(int argc, char **argv, struct cli *c)
{
    *c = (struct cli){.start = 1, .steps = 20000, .trace_lines = 60, .pre_vote = -1,
                      .atomic_ready = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes_value = true;
        if (strcmp(a, "--seeds") == 0)
            ok = parse_u64(v, &c->seeds);
        else if (strcmp(a, "--start") == 0)
            ok = parse_u64(v, &c->start);
        else if (strcmp(a, "--steps") == 0)
            ok = parse_u64(v, &c->steps);
        else if (strcmp(a, "--trace-lines") == 0)
            ok = parse_u64(v, &c->trace_lines);
        else if (strcmp(a, "--plant") == 0)
            ok = v && (c->plant = sim_plant_parse(v)) >= 0;
        else if (strcmp(a, "--prevote") == 0)
            ok = parse_on_off(v, &c->pre_vote);
        else if (strcmp(a, "--atomic-ready") == 0)
            ok = parse_on_off(v, &c->atomic_ready);
        else if (strcmp(a, "--ignore-invariant") == 0)
            ok = parse_invariants(v, &c->ignore_mask);
        else if (strcmp(a, "--expect-invariant") == 0)
            ok = c->expect = parse_invariants(v, &c->expect_mask);
        else {
            takes_value = false;
            bool *flag = strcmp(a, "--allow-empty-ready") == 0 ? &c->allow_empty
                       : strcmp(a, "--silent-loss") == 0       ? &c->silent_loss
                       : strcmp(a, "--rude-campaign") == 0     ? &c->rude
                       : strcmp(a, "--verbose") == 0           ? &c->verbose
                       : strcmp(a, "--trace") == 0             ? &c->trace
                       : strcmp(a, "--fork") == 0              ? &c->fork_each
                       : strcmp(a, "--expect-violation") == 0  ? &c->expect
                       : strcmp(a, "--keep-going") == 0        ? &c->keep_going
                                                               : NULL;
            ok = flag != NULL;
            if (flag)
                *flag = true;
        }
        if (!ok)
            return false;
        i += takes_value;
    }
    return c->seeds > 0;
}

/* The options that change a run, as command line text (for replay hints). */
static void cli_run_options(const struct cli *c, char *buf, size_t size)
{
    snprintf(buf, size, "--steps %" PRIu64 "%s%s%s%s%s%s%s", c->steps,
             c->plant ? " --plant " : "", c->plant ? sim_plant_name(c->plant) : "",
             c->pre_vote < 0 ? "" : c->pre_vote ? " --prevote on" : " --prevote off",
             c->atomic_ready < 0 ? "" : c->atomic_ready ? " --atomic-ready on"
                                                        : " --atomic-ready off",
             c->silent_loss ? " --silent-loss" : "",
             c->allow_empty ? " --allow-empty-ready" : "", c->rude ? " --rude-campaign" : "");
}

static void print_totals(const struct totals *t, uint64_t ran, double dt, uint64_t failed,
                         bool other)
{
    printf("sim_raft: %" PRIu64 " seeds in %.1f s (%.1f seeds/s, %.2f M steps/s), %" PRIu64
           " failed%s\n", ran, dt, (double)ran / dt, (double)t->steps / dt / 1e6, failed,
           other ? " (some with other invariants)" : "");
    printf("  simulated %.1f s; client ops %" PRIu64 " ok, %" PRIu64 " unknown, %" PRIu64
           " refused; reads %" PRIu64 " lease, %" PRIu64 " read-index; %" PRIu64
           " ops linearizability-checked\n", (double)t->sim_ns / 1e9, t->ops_ok,
           t->ops_unknown, t->ops_failed, t->reads_lease, t->reads_index, t->lin_ops);
    printf("  elections %" PRIu64 ", crashes %" PRIu64 ", snapshots sent %" PRIu64
           ", membership changes %" PRIu64 ", transfers %" PRIu64 ", torn tails cut %" PRIu64
           "\n", t->elections, t->restarts, t->snapshots, t->conf_changes, t->transfers,
           t->torn);
}

int main(int argc, char **argv)
{
    struct cli c;
    if (!parse_args(argc, argv, &c)) {
        usage();
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
    char run_opts[256];
    cli_run_options(&c, run_opts, sizeof(run_opts));
    printf("sim_raft: seeds %" PRIu64 "..%" PRIu64 ", %s\n", c.start, c.start + c.seeds - 1,
           run_opts);
    struct totals t;
    memset(&t, 0, sizeof(t));
    uint64_t failures = 0, ran = 0, other = 0;
    double t0 = now_s();
    for (uint64_t k = 0; k < c.seeds; k++) {
        struct sim_options opt = {
            .seed = c.start + k, .steps = c.steps, .plant = (enum sim_plant)c.plant,
            .verbose = c.verbose, .trace = c.verbose || c.trace,
            .trace_lines = (size_t)c.trace_lines, .pre_vote = c.pre_vote,
            .atomic_ready = c.atomic_ready, .ignore_mask = c.ignore_mask,
            .silent_loss = c.silent_loss, .allow_empty_ready = c.allow_empty,
            .rude_campaign = c.rude, .out = stdout};
        snprintf(g_replay, sizeof(g_replay), "  replay with its trace: sim_raft --seeds 1 "
                 "--start %" PRIu64 " %s --trace", opt.seed, run_opts);
        struct sim_result r;
        bool ok = c.fork_each ? run_forked(&opt, &r) : sim_run(&opt, &r);
        ran++;
        add_totals(&t, &r);
        if (ok)
            continue;
        if (c.expect_mask && !(c.expect_mask & (1ull << r.invariant))) {
            if (other++ < 5)
                printf("seed %" PRIu64 ": invariant %d (not the planted bug's): %s\n",
                       opt.seed, r.invariant, r.what);
            continue;
        }
        failures++;
        printf("SEED %" PRIu64 " FAILED: invariant %d: %s\n", opt.seed, r.invariant, r.what);
        printf("  replay: sim_raft --seeds 1 --start %" PRIu64 " %s --verbose\n", opt.seed,
               run_opts);
        if (!opt.trace && !c.fork_each && !replay_failure(&opt, &r))
            return 1;
        if (!c.keep_going)
            break;
    }
    print_totals(&t, ran, now_s() - t0, failures + other, other != 0);
    if (!c.expect)
        return failures ? 1 : 0;
    printf("planted bug %s %s %" PRIu64 " seed(s)\n", sim_plant_name(c.plant),
           failures ? "caught after" : "NOT caught in", ran);
    return failures ? 0 : 1;
}
