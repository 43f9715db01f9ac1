/*
 * lincheck.h - linearizability checker for a key/value register history (invariant 25).
 *
 * Owns: a history of client operations (put(k, v), get(k) -> v, each with an invoke and a
 * return time) and the decision whether some linearization of it is legal for a map of
 * independent registers. The check is Wing & Gong's search as improved by Lowe (WGL):
 * a backtracking search over a linked list of call/return events, with a memo of
 * (set of linearized operations, register value) pairs already explored. Registers are
 * independent, so the history is split per key and each key is checked on its own
 * (P-compositionality), which keeps the search small.
 *
 * Operations whose outcome is unknown (the client timed out, the node crashed) stay
 * "pending": a pending put may take effect at any moment after its invoke, or never; a
 * pending get observes nothing and is ignored. Real-time order is strict: an operation
 * precedes another only when it returned strictly before the other was invoked; equal
 * times count as concurrent. A get of a key never written returns 0, so put values
 * should be nonzero (and are best unique, which makes violations easy to read).
 *
 * Leaves to others: producing the history (the simulator's clients), the time base (any
 * monotonic u64, here the simulator's true time). Single-threaded; no global state.
 */
#ifndef SPL_SIM_LINCHECK_H
#define SPL_SIM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum spl_lin_kind {
    SPL_LIN_PUT = 1,
    SPL_LIN_GET = 2,
};

struct spl_lin_op {
    uint64_t key;
    uint64_t value;     /* put: the value written; get: the value read (0 = absent) */
    uint64_t call_ns;   /* invoke time */
    uint64_t return_ns; /* return time; meaningless while pending */
    uint32_t client;    /* for printing only */
    uint8_t kind;       /* enum spl_lin_kind */
    bool pending;       /* outcome unknown: may take effect after call_ns, or never */
};

/* A growable history. The caller owns the struct; spl_lin_history_free releases ops. */
struct spl_lin_history {
    struct spl_lin_op *ops;
    size_t count;
    size_t capacity;
};

enum spl_lin_result {
    SPL_LIN_OK = 0,        /* a legal linearization exists for every key */
    SPL_LIN_VIOLATION = 1, /* some key has no legal linearization (report says which) */
    SPL_LIN_GAVE_UP = 2,   /* the search exceeded its step budget on some key */
};

struct spl_lin_report {
    uint64_t key;       /* the first key that failed (VIOLATION or GAVE_UP) */
    size_t key_ops;     /* operations of that key that took part in the search */
    uint64_t steps;     /* search steps used in total */
    size_t keys;        /* keys checked */
};

void spl_lin_history_init(struct spl_lin_history *h);
void spl_lin_history_free(struct spl_lin_history *h);

/* spl_lin_invoke - record the invocation of an operation at call_ns; returns its index.
 * The operation is pending until spl_lin_complete. For a get, value is ignored. Aborts on
 * allocation failure (test code). */
size_t spl_lin_invoke(struct spl_lin_history *h, uint32_t client, enum spl_lin_kind kind,
                      uint64_t key, uint64_t value, uint64_t call_ns);

/* spl_lin_complete - the operation at index returned at return_ns (>= its call_ns) with
 * a definite outcome; for a get, value_read is what it read (0 = absent). An operation
 * that never completes stays pending ("unknown"). */
void spl_lin_complete(struct spl_lin_history *h, size_t index, uint64_t value_read,
                      uint64_t return_ns);

/* spl_lin_check - decide linearizability of ops[0..count) as a map of registers that
 * all start at 0. step_budget bounds the total search steps over all keys (0 = no
 * bound). report (may be NULL) says which key failed and how much work was done. */
enum spl_lin_result spl_lin_check(const struct spl_lin_op *ops, size_t count,
                                  uint64_t step_budget, struct spl_lin_report *report);

/* spl_lin_print_key - print the operations of one key in invoke order, one per line. */
void spl_lin_print_key(FILE *out, const struct spl_lin_op *ops, size_t count, uint64_t key);

#endif
