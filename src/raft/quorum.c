/*
 * quorum.c - majority arithmetic over the voters of one configuration.
 *
 * One helper serves four questions: the commit index (values = match indexes), the
 * lease start (values = acknowledged heartbeat send ticks), the read-index round
 * (values = acknowledged rounds) and check-quorum (values = 0/1 activity). Pure.
 */
#include "raft/raft_int.h"

static void spl__sort_desc(uint64_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) { /* n <= SPL_RAFT_PEERS_MAX: insertion sort */
        uint64_t x = v[i];
        uint32_t j = i;
        while (j > 0 && v[j - 1] < x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

uint64_t spl__quorum_index(uint64_t *vals, uint32_t n)
{
    ASSERT_CMP(n, <=, SPL_RAFT_PEERS_MAX);
    if (n == 0)
        return UINT64_MAX;
    spl__sort_desc(vals, n);
    /* n/2 + 1 values are >= vals[n/2] and that is a majority. */
    return vals[n / 2];
}

enum spl__vote_result spl__quorum_vote(uint32_t granted, uint32_t rejected, uint32_t voters)
{
    ASSERT_CMP(granted + rejected, <=, voters);
    uint32_t majority = voters / 2 + 1;
    if (voters == 0)
        return SPL__VOTE_WON; /* an empty configuration never blocks */
    if (granted >= majority)
        return SPL__VOTE_WON;
    if (voters - rejected < majority)
        return SPL__VOTE_LOST;
    return SPL__VOTE_PENDING;
}
