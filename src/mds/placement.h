/*
 * placement.h - where the replicas of a logical pool's copysets go.
 *
 * Owns the pure placement algorithm: given the chunkservers of a physical pool (id and
 * zone), a replica count and a copyset count, choose the members of every copyset so that
 *   - the replicas of one copyset are in distinct zones (a copyset survives a zone loss),
 *   - every chunkserver holds about the same number of copysets (greedy on the count:
 *     the spread is at most a couple of copysets, well inside +-10% of the mean),
 *   - each chunkserver shares copysets with as many different peers as possible (high
 *     scatter width, so a failed disk is recovered from many sources in parallel): among
 *     equally loaded candidates the one sharing fewest copysets with the members already
 *     chosen wins, ties broken by the seeded generator.
 * Capacity is not weighed: chunkservers of one pool are expected to have like disks.
 * Leaves to topology.c: reading and writing the result. No I/O, no clock, no globals:
 * any thread may call it, with its own generator.
 */
#ifndef SPL_MDS_PLACEMENT_H
#define SPL_MDS_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/random.h"

struct spl_place_cs {
    uint32_t id;
    uint32_t zone_id;
};

/* spl_placement_compute - fill members[c * replicas + r] (chunkserver ids) for every copyset
 * c < copyset_count. SPL_EPLACEMENT when fewer than `replicas` zones have chunkservers or
 * the mean copysets per chunkserver would exceed SPL_MDS_COPYSETS_PER_CS_MAX; SPL_EINVAL_ARG
 * for a zero count or replicas outside 1..SPL_REPLICAS_MAX; -ENOMEM. */
int spl_placement_compute(const struct spl_place_cs *cs, size_t cs_count, uint32_t replicas,
                          uint32_t copyset_count, struct spl_rand *rng, uint32_t *members);

/* Properties of a placement, for tests and logs. scatter: distinct peers per chunkserver. */
struct spl_placement_stats {
    double mean;          /* copysets per chunkserver */
    uint32_t min, max;    /* fewest / most copysets on one chunkserver */
    uint32_t scatter_min; /* smallest scatter width */
    double scatter_mean;
    uint32_t zone_violations; /* copysets with two replicas in one zone (must be 0) */
};

/* spl_placement_stats - measure members (as spl_placement_compute fills it). -ENOMEM. */
int spl_placement_stats(const struct spl_place_cs *cs, size_t cs_count, uint32_t replicas,
                        uint32_t copyset_count, const uint32_t *members,
                        struct spl_placement_stats *out);

#endif
