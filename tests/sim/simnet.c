/* simnet.c - links, loss, duplication, delay/reorder, late delivery, bit flips, clogs. */
#include "simnet.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define SIM_PPM_ONE 1000000u

void sim_net_init(struct sim_net *net, struct sim_world *w, int deliver_kind,
                  const struct sim_net_params *params)
{
    memset(net, 0, sizeof(*net));
    net->world = w;
    net->deliver_kind = deliver_kind;
    net->params = *params;
    ASSERT(params->delay_min_ns <= params->delay_max_ns);
    sim_net_heal(net);
}

static struct sim_packet *packet_new(int from, int to, uint64_t inc, int tag, uint64_t now,
                                     const void *bytes, size_t len)
{
    struct sim_packet *p = malloc(sizeof(*p) + len);
    ASSERT(p != NULL);
    p->from = from;
    p->to = to;
    p->sent_ns = now;
    p->sender_incarnation = inc;
    p->flipped = false;
    p->tag = tag;
    p->len = len;
    memcpy(p->bytes, bytes, len);
    return p;
}

static uint64_t packet_delay(struct sim_net *net)
{
    struct sim_world *w = net->world;
    if (net->params.late_ppm && sim_chance(w, net->params.late_ppm, SIM_PPM_ONE)) {
        net->stats.late++;
        return sim_rand_range(w, net->params.delay_max_ns, net->params.late_max_ns);
    }
    return sim_rand_range(w, net->params.delay_min_ns, net->params.delay_max_ns);
}

static void packet_schedule(struct sim_net *net, struct sim_packet *p)
{
    struct sim_world *w = net->world;
    uint64_t at = w->now_ns + packet_delay(net);
    if (net->clog_until_ns[p->from] > at)
        at = net->clog_until_ns[p->from] + sim_rand_below(w, SPL_SIM_MS);
    sim_schedule(w, at, net->deliver_kind, p->to, 0, p);
}

bool sim_net_send(struct sim_net *net, int from, int to, uint64_t sender_incarnation, int tag,
                  const void *bytes, size_t len)
{
    struct sim_world *w = net->world;
    ASSERT(from > 0 && from < SIM_NODES_MAX && to > 0 && to < SIM_NODES_MAX);
    net->stats.sent++;
    if (!net->link[from][to] ||
        (net->params.drop_ppm && sim_chance(w, net->params.drop_ppm, SIM_PPM_ONE))) {
        net->stats.dropped++;
        return false;
    }
    struct sim_packet *p = packet_new(from, to, sender_incarnation, tag, w->now_ns, bytes,
                                      len);
    if (len > 0 && net->params.flip_ppm && sim_chance(w, net->params.flip_ppm, SIM_PPM_ONE)) {
        size_t bit = sim_rand_below(w, len * 8);
        p->bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        p->flipped = true;
        net->stats.flipped++;
    }
    packet_schedule(net, p);
    if (net->params.dup_ppm && sim_chance(w, net->params.dup_ppm, SIM_PPM_ONE)) {
        struct sim_packet *q = packet_new(from, to, sender_incarnation, tag, w->now_ns,
                                          p->bytes, len);
        q->flipped = p->flipped;
        packet_schedule(net, q);
        net->stats.duplicated++;
    }
    return true;
}

bool sim_net_arrives(struct sim_net *net, const struct sim_packet *p)
{
    if (!net->link[p->from][p->to]) {
        net->stats.cut++;
        return false;
    }
    net->stats.delivered++;
    return true;
}

void sim_packet_free(struct sim_packet *p)
{
    free(p);
}

void sim_net_heal(struct sim_net *net)
{
    for (int a = 0; a < SIM_NODES_MAX; a++) {
        for (int b = 0; b < SIM_NODES_MAX; b++)
            net->link[a][b] = true;
        net->clog_until_ns[a] = 0;
    }
}

void sim_net_partition(struct sim_net *net, uint32_t side_mask)
{
    for (int a = 0; a < SIM_NODES_MAX; a++)
        for (int b = 0; b < SIM_NODES_MAX; b++)
            net->link[a][b] = ((side_mask >> a) & 1u) == ((side_mask >> b) & 1u);
}

void sim_net_isolate(struct sim_net *net, int node)
{
    sim_net_partition(net, 1u << node);
}

void sim_net_set_link(struct sim_net *net, int from, int to, bool up)
{
    ASSERT(from >= 0 && from < SIM_NODES_MAX && to >= 0 && to < SIM_NODES_MAX);
    net->link[from][to] = up;
}

void sim_net_clog(struct sim_net *net, int node, uint64_t until_ns)
{
    ASSERT(node >= 0 && node < SIM_NODES_MAX);
    net->clog_until_ns[node] = until_ns;
}

void sim_net_describe(const struct sim_net *net, int nodes, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int a = 1; a <= nodes && a < SIM_NODES_MAX; a++)
        for (int b = 1; b <= nodes && b < SIM_NODES_MAX; b++) {
            if (a == b || net->link[a][b])
                continue;
            int n = snprintf(buf + used, size - used, "%d>%d ", a, b);
            if (n < 0 || (size_t)n >= size - used)
                return;
            used += (size_t)n;
        }
    if (used == 0)
        snprintf(buf, size, "all up");
}
