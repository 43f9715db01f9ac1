/*
 * readindex.c - the leader's queue of read-index requests, oldest first.
 *
 * A request waits until a quorum acknowledged a heartbeat round that started after it
 * (raft.c assigns rounds; rounds only grow, so confirmation always pops a prefix).
 * Requests made before the leader committed an entry of its term wait with index 0.
 * The ring grows on demand up to SPL_RAFT_READS_MAX (control-plane allocation).
 */
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/raft_int.h"

void spl__readq_init(struct spl__readq *q)
{
    memset(q, 0, sizeof(*q));
}

void spl__readq_destroy(struct spl__readq *q)
{
    free(q->v);
    memset(q, 0, sizeof(*q));
}

void spl__readq_clear(struct spl__readq *q)
{
    q->head = 0;
    q->count = 0;
}

static void spl__readq_grow(struct spl__readq *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 8;
    if (cap > SPL_RAFT_READS_MAX)
        cap = SPL_RAFT_READS_MAX;
    struct spl__read_req *v = spl__raft_xrealloc(NULL, cap, sizeof(*v));
    for (uint32_t i = 0; i < q->count; i++)
        v[i] = q->v[(q->head + i) % q->cap];
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
}

int spl__readq_push(struct spl__readq *q, const struct spl__read_req *req)
{
    if (q->count >= SPL_RAFT_READS_MAX)
        return SPL_ERAFT_OVERLOAD;
    if (q->count == q->cap)
        spl__readq_grow(q);
    ASSERT_CMP(q->count, <, q->cap);
    q->v[(q->head + q->count) % q->cap] = *req;
    q->count++;
    return 0;
}

struct spl__read_req *spl__readq_at(struct spl__readq *q, uint32_t i)
{
    ASSERT_CMP(i, <, q->count);
    return &q->v[(q->head + i) % q->cap];
}

void spl__readq_pop(struct spl__readq *q)
{
    ASSERT(q->count > 0);
    q->head = (q->head + 1) % q->cap;
    q->count--;
}
