/*
 * simnet.h - the simulated network between the nodes of one simulation.
 *
 * Owns: which directed links are up (so partitions may be symmetric or one-way), the
 * fault knobs (loss, duplication, delay range that reorders, rare very late delivery,
 * bit flips, per-node clogging), and packets in flight. A packet is a copy of the bytes
 * the sender encoded; it becomes a world event of the driver's delivery kind at its
 * arrival time, with a `struct sim_packet` payload that the driver frees with
 * sim_packet_free() after handling it. A link that goes down also loses what is in flight
 * on it (checked again at arrival).
 *
 * Leaves to others: encoding and decoding (the Raft core's wire form), what the driver
 * does on arrival. Single-threaded.
 */
#ifndef SPL_SIM_SIMNET_H
#define SPL_SIM_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world.h"

struct sim_net_params {
    uint32_t drop_ppm;      /* each packet lost with this probability (per million) */
    uint32_t dup_ppm;       /* each packet delivered twice */
    uint32_t late_ppm;      /* each packet delayed by up to late_max_ns instead */
    uint32_t flip_ppm;      /* one bit of the packet flipped (the decoder must notice) */
    uint64_t delay_min_ns;  /* normal one-way delay range: random in it, so it reorders */
    uint64_t delay_max_ns;
    uint64_t late_max_ns;
};

struct sim_packet {
    int from, to;
    uint64_t sent_ns;
    uint64_t sender_incarnation; /* for transport reports back to the sender */
    bool flipped;                /* a bit was flipped in flight */
    int tag;                     /* the driver's label (here: the Raft message type) */
    size_t len;
    uint8_t bytes[];
};

struct sim_net_stats {
    uint64_t sent, delivered, dropped, duplicated, late, flipped, cut;
};

struct sim_net {
    struct sim_world *world;
    int deliver_kind;                           /* world event kind of an arrival */
    bool link[SIM_NODES_MAX][SIM_NODES_MAX];    /* link[a][b]: a's packets reach b */
    uint64_t clog_until_ns[SIM_NODES_MAX];      /* packets from a node held until then */
    struct sim_net_params params;
    struct sim_net_stats stats;
};

/* sim_net_init - every link up, no clogs, the given fault knobs. */
void sim_net_init(struct sim_net *net, struct sim_world *w, int deliver_kind,
                  const struct sim_net_params *params);

/* sim_net_send - hand len bytes from `from` to the network for `to`. Returns false when
 * the packet was lost at once (link down, or dropped); true when it is in flight (it may
 * still be duplicated, delayed or cut by a later partition). */
bool sim_net_send(struct sim_net *net, int from, int to, uint64_t sender_incarnation, int tag,
                  const void *bytes, size_t len);

/* sim_net_arrives - at arrival: true when the packet may be handed to its receiver (its
 * link is up now). */
bool sim_net_arrives(struct sim_net *net, const struct sim_packet *p);

void sim_packet_free(struct sim_packet *p);

/* Topology. Partition: nodes whose bit is set in side_mask can talk only to each other,
 * the rest only to each other (symmetric). */
void sim_net_heal(struct sim_net *net);
void sim_net_partition(struct sim_net *net, uint32_t side_mask);
void sim_net_isolate(struct sim_net *net, int node);
void sim_net_set_link(struct sim_net *net, int from, int to, bool up);
/* sim_net_clog - packets sent by node until until_ns leave no earlier than until_ns. */
void sim_net_clog(struct sim_net *net, int node, uint64_t until_ns);
/* sim_net_describe - "1-2 1-3 ..." of links that are down, into buf. */
void sim_net_describe(const struct sim_net *net, int nodes, char *buf, size_t size);

#endif
