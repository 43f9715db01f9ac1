/*
 * ha.c - MDS leadership: one leader among several spline-mds through etcd's election.
 *
 * The election thread grants a lease, starts a keeper thread renewing it, and campaigns
 * with the lease, the value being this MDS's advertised address. When elected it loads
 * state (on_lead) and serves until the lease is no longer surely valid. Validity is
 * judged by the monotonic clock here, not by etcd: the lease is valid while the last
 * successful renewal was *sent* less than TTL - fence_margin ago, so serving stops at
 * least fence_margin before etcd can expire the lease and elect someone else. Every
 * write is also fenced in etcd (fence.h), so even a leader frozen past that point cannot
 * write. An observer thread follows the election to know whom standbys redirect to.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "mds/mdsd.h"

struct spl_ha {
    struct spl_mdsd *d;
    int (*on_lead)(struct spl_mdsd *d);
    void (*on_step_down)(struct spl_mdsd *d);
    pthread_t election_thread;
    pthread_t keeper_thread;
    bool keeper_running;
    bool running;
    spl_etcd_observer *observer;

    atomic_bool stop;            /* the whole HA machinery */
    atomic_bool campaign_cancel; /* stop campaigning (lease trouble or stop) */
    atomic_bool keeper_stop;
    atomic_int_least64_t lease;  /* current lease id, 0: none */
    atomic_uint_least64_t renewed_ns; /* mono time the last successful renewal was sent */
    atomic_bool lease_lost;      /* etcd said the lease is gone */
    atomic_bool serving;         /* elected and loaded */
    atomic_bool loading;
    atomic_bool etcd_ok;
    atomic_uint_least64_t term;
    atomic_uint_least64_t leader_since_ms;
    uint64_t valid_ns;           /* TTL - margin */
    int64_t ttl_s;

    pthread_mutex_t lock;        /* leader_addr, fence */
    char leader_addr[SPL_MDSD_ADDR_MAX];
    struct spl_mds_fence fence;
};

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* lease_valid - the lease surely lives for at least fence_margin more. */
static bool lease_valid(struct spl_ha *ha)
{
    if (atomic_load(&ha->lease_lost) || atomic_load(&ha->lease) == 0)
        return false;
    uint64_t renewed = atomic_load(&ha->renewed_ns);
    return renewed != 0 && spl_mono_ns() - renewed < ha->valid_ns;
}

/* The keeper: renew every TTL/4 (at least every 250 ms); record when a successful
 * renewal was sent. Stops at keeper_stop or when etcd says the lease is gone. */
static void *keeper_main(void *arg)
{
    struct spl_ha *ha = arg;
    uint64_t period_ms = (uint64_t)ha->ttl_s * 1000 / 4;
    if (period_ms < 250)
        period_ms = 250;
    while (!atomic_load(&ha->keeper_stop)) {
        uint64_t sent = spl_mono_ns();
        int64_t ttl = 0;
        int rc = spl_etcd_lease_keepalive(ha->d->etcd_ha, atomic_load(&ha->lease), &ttl);
        if (rc == 0 && ttl > 0) {
            atomic_store(&ha->renewed_ns, sent);
            atomic_store(&ha->etcd_ok, true);
        } else if (rc == SPL_EETCD_NOLEASE || (rc == 0 && ttl <= 0)) {
            LOG_WARN("mds.ha", "lease %" PRIx64 " is gone", (uint64_t)atomic_load(&ha->lease));
            atomic_store(&ha->lease_lost, true);
            atomic_store(&ha->campaign_cancel, true);
            break;
        } else {
            atomic_store(&ha->etcd_ok, false);
            LOG_WARN("mds.ha", "lease renewal failed: %s (%s)", spl_errname(rc),
                     spl_etcd_errmsg());
        }
        if (!lease_valid(ha))
            atomic_store(&ha->campaign_cancel, true); /* a campaign on a doubtful lease */
        /* sleep the rest of the period, in small steps to notice stop */
        uint64_t next = sent + period_ms * 1000000;
        while (!atomic_load(&ha->keeper_stop) && spl_mono_ns() < next)
            sleep_ms(20);
    }
    return NULL;
}

static void observe_cb(void *arg, const struct spl_etcd_kv *leader)
{
    struct spl_ha *ha = arg;
    pthread_mutex_lock(&ha->lock);
    size_t n = leader->value_len < sizeof ha->leader_addr - 1 ? leader->value_len
                                                              : sizeof ha->leader_addr - 1;
    if (n)
        memcpy(ha->leader_addr, leader->value, n);
    ha->leader_addr[n] = '\0';
    pthread_mutex_unlock(&ha->lock);
    LOG_INFO("mds.ha", "observed leader %s", ha->leader_addr);
}

/* start_lease - grant a lease and start keeping it alive. */
static int start_lease(struct spl_ha *ha)
{
    int64_t id = 0, granted = 0;
    int rc = spl_etcd_lease_grant(ha->d->etcd_ha, ha->ttl_s, &id, &granted);
    if (rc < 0) {
        atomic_store(&ha->etcd_ok, false);
        return rc;
    }
    atomic_store(&ha->etcd_ok, true);
    atomic_store(&ha->lease, id);
    atomic_store(&ha->lease_lost, false);
    atomic_store(&ha->renewed_ns, spl_mono_ns()); /* grant counts as a renewal (sent
                                                   * before now) - conservative enough:
                                                   * etcd started the TTL after we sent */
    atomic_store(&ha->keeper_stop, false);
    atomic_store(&ha->campaign_cancel, false);
    rc = pthread_create(&ha->keeper_thread, NULL, keeper_main, ha);
    if (rc != 0) {
        spl_etcd_lease_revoke(ha->d->etcd_ha, id);
        atomic_store(&ha->lease, 0);
        return -rc;
    }
    ha->keeper_running = true;
    return 0;
}

static void stop_lease(struct spl_ha *ha, bool revoke)
{
    if (ha->keeper_running) {
        atomic_store(&ha->keeper_stop, true);
        pthread_join(ha->keeper_thread, NULL);
        ha->keeper_running = false;
    }
    int64_t id = atomic_exchange(&ha->lease, 0);
    if (revoke && id && !atomic_load(&ha->lease_lost))
        (void)spl_etcd_lease_revoke(ha->d->etcd_ha, id);
}

/* lead - we won: load, serve until the lease is in doubt, then step down. */
static void lead(struct spl_ha *ha, const struct spl_etcd_leader_key *lk)
{
    struct spl_mdsd *d = ha->d;
    pthread_mutex_lock(&ha->lock);
    spl_mds_fence_from_leader(&ha->fence, lk);
    pthread_mutex_unlock(&ha->lock);
    atomic_fetch_add(&ha->term, 1);
    atomic_store(&ha->loading, true);
    uint64_t t0 = spl_mono_ns();
    LOG_INFO("mds.ha", "elected leader (key %s rev %" PRId64 "); loading state", lk->key,
             lk->rev);
    int rc = ha->on_lead(d);
    atomic_store(&ha->loading, false);
    if (rc == 0 && lease_valid(ha)) {
        atomic_store(&ha->leader_since_ms, spl_wall_ns() / 1000000);
        atomic_store(&ha->serving, true);
        LOG_INFO("mds.ha", "serving as leader (loaded in %" PRIu64 " ms)",
                 (spl_mono_ns() - t0) / 1000000);
        while (!atomic_load(&ha->stop) && lease_valid(ha))
            sleep_ms(20);
        atomic_store(&ha->serving, false);
        if (!atomic_load(&ha->stop))
            LOG_WARN("mds.ha", "lease not renewed in time (or lost): stopped serving");
    } else {
        LOG_WARN("mds.ha", "could not take over: %s (%s)", spl_errname(rc), spl_etcd_errmsg());
    }
    atomic_store(&ha->leader_since_ms, 0);
    ha->on_step_down(d);
    pthread_mutex_lock(&ha->lock);
    ha->fence.set = false;
    pthread_mutex_unlock(&ha->lock);
    if (lease_valid(ha))
        (void)spl_etcd_resign(d->etcd_ha, lk);
}

static void *election_main(void *arg)
{
    struct spl_ha *ha = arg;
    struct spl_mdsd *d = ha->d;
    while (!atomic_load(&ha->stop)) {
        int rc = start_lease(ha);
        if (rc < 0) {
            LOG_WARN("mds.ha", "cannot get an etcd lease: %s (%s); retrying", spl_errname(rc),
                     spl_etcd_errmsg());
            sleep_ms(500);
            continue;
        }
        struct spl_etcd_leader_key lk;
        rc = spl_etcd_campaign(d->etcd_ha, d->cfg.election, atomic_load(&ha->lease),
                               d->advertise, strlen(d->advertise), 0, &ha->campaign_cancel,
                               &lk);
        if (rc == 0 && !atomic_load(&ha->stop) && lease_valid(ha))
            lead(ha, &lk);
        else if (rc < 0 && rc != -ECANCELED)
            LOG_WARN("mds.ha", "campaign failed: %s (%s)", spl_errname(rc), spl_etcd_errmsg());
        stop_lease(ha, true);
        if (!atomic_load(&ha->stop) && rc < 0)
            sleep_ms(200);
    }
    return NULL;
}

int spl_ha_new(struct spl_mdsd *d, int (*on_lead)(struct spl_mdsd *d),
               void (*on_step_down)(struct spl_mdsd *d), struct spl_ha **out)
{
    ASSERT(d && on_lead && on_step_down && out);
    ASSERT(d->cfg.fence_margin_ms < d->cfg.lease_ttl_ms);
    struct spl_ha *ha = calloc(1, sizeof *ha);
    if (!ha)
        return -ENOMEM;
    ha->d = d;
    ha->on_lead = on_lead;
    ha->on_step_down = on_step_down;
    ha->ttl_s = (int64_t)((d->cfg.lease_ttl_ms + 999) / 1000);
    ha->valid_ns = (d->cfg.lease_ttl_ms - d->cfg.fence_margin_ms) * 1000000;
    atomic_store(&ha->etcd_ok, true);
    pthread_mutex_init(&ha->lock, NULL);
    *out = ha;
    return 0;
}

int spl_ha_run(struct spl_ha *ha)
{
    struct spl_mdsd *d = ha->d;
    int rc = spl_etcd_observe_start(d->etcd_ha, d->cfg.election, observe_cb, ha, &ha->observer);
    if (rc < 0)
        LOG_WARN("mds.ha", "cannot observe the election yet: %s", spl_errname(rc));
    rc = pthread_create(&ha->election_thread, NULL, election_main, ha);
    if (rc != 0) {
        spl_etcd_observe_stop(ha->observer);
        ha->observer = NULL;
        return -rc;
    }
    ha->running = true;
    return 0;
}

void spl_ha_stop(struct spl_ha *ha)
{
    if (!ha)
        return;
    atomic_store(&ha->stop, true);
    atomic_store(&ha->campaign_cancel, true);
    if (ha->running)
        pthread_join(ha->election_thread, NULL);
    spl_etcd_observe_stop(ha->observer);
    pthread_mutex_destroy(&ha->lock);
    free(ha);
}

enum spl_mdsd_role spl_ha_role(struct spl_ha *ha)
{
    if (atomic_load(&ha->serving) && lease_valid(ha))
        return SPL_MDSD_LEADER;
    if (atomic_load(&ha->loading) && lease_valid(ha))
        return SPL_MDSD_LOADING;
    return SPL_MDSD_STANDBY;
}

void spl_ha_leader_addr(struct spl_ha *ha, char *buf, size_t len)
{
    pthread_mutex_lock(&ha->lock);
    if (strcmp(ha->leader_addr, ha->d->advertise) == 0 && spl_ha_role(ha) == SPL_MDSD_STANDBY)
        snprintf(buf, len, "%s", ""); /* it was us: no longer true */
    else
        snprintf(buf, len, "%s", ha->leader_addr);
    pthread_mutex_unlock(&ha->lock);
}

void spl_ha_fence(struct spl_ha *ha, struct spl_mds_fence *out)
{
    pthread_mutex_lock(&ha->lock);
    *out = ha->fence;
    pthread_mutex_unlock(&ha->lock);
}

bool spl_ha_etcd_ok(struct spl_ha *ha) { return atomic_load(&ha->etcd_ok); }

uint64_t spl_ha_leader_since_ms(struct spl_ha *ha) { return atomic_load(&ha->leader_since_ms); }

uint64_t spl_ha_term(struct spl_ha *ha) { return atomic_load(&ha->term); }
