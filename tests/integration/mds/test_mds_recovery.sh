#!/usr/bin/env bash
# test_mds_recovery.sh BUILD_DIR - heartbeats, copyset creation, recovery and leader
# balance with 18 simulated chunkservers (3 zones x 3 servers x 2) over the real RPC
# layer: all get created and come online; leaders balance to max - min <= 1; one
# chunkserver stops -> offline -> recover operators move its copysets to chunkservers of
# its zone (zone rule kept) and cluster status shows the progress to completion; it comes
# back: stale replicas removed, copyset balance refills it; MDS failover keeps the view.
BIN=$1
source "$(dirname "$0")/lib.sh"

SCHED=(--offline_timeout=3s --unstable_timeout=1s --remove_grace=4s --sched_period=100ms
       --recover_period=200ms --leader_balance_period=300ms --copyset_balance_period=500ms
       --operators_per_chunkserver=2 --place_settle=1s --operator_timeout=10s)
start_etcd
start_mds m1 "$ETCD_EP" "${SCHED[@]}"
start_mds m2 "$ETCD_EP" "${SCHED[@]}"
export SPLINE_MDS=$(all_mds m1 m2)
wait_leader 15 m1 m2 >/dev/null || fail "no leader"

SIMPORT=$(freeport)
"$SIMCS_BIN" --print_cluster_file --count=18 --zones=3 --cs_per_server=2 --copysets_per_cs=30 \
    --listen=127.0.0.1:$SIMPORT >"$T/cluster.yaml"
cli cluster init "$T/cluster.yaml" | tee "$T/init.out"
grep -q "created 1 pools, 3 zones, 9 servers, 18 chunkservers, 1 logical pools" "$T/init.out" ||
    fail "unexpected init report"
"$SIMCS_BIN" --mds="$SPLINE_MDS" --listen=127.0.0.1:$SIMPORT --count=18 --zones=3 \
    --cs_per_server=2 --hb_interval=300ms --port_file="$T/simcs.port" \
    >"$T/simcs.log" 2>&1 &
PIDS+=("$!")
wait_for 10 "simcs control port" test -s "$T/simcs.port"
SIMHTTP=http://127.0.0.1:$(cat "$T/simcs.port")

st() { cli --json cluster status | jq -r ".$1"; }
sim() { curl -s "$SIMHTTP/status" | jq -r ".$1"; }

wait_for 30 "18 chunkservers online" bash -c "[ \"\$($CLI_BIN --json cluster status | jq .chunkservers_online)\" = 18 ]"
total=$(st copysets_total)
[ "$total" = 180 ] || fail "copysets_total $total"
wait_for 30 "all copysets created and healthy" \
    bash -c "[ \"\$($CLI_BIN --json cluster status | jq .copysets_healthy)\" = $total ]"
wait_for 30 "every simulated group has a leader" \
    bash -c "[ \"\$(curl -s $SIMHTTP/status | jq .groups_with_leader)\" = $total ]"
ok "18 chunkservers online, $total copysets created on them, all with leaders"

lb_ok() {
    local j
    j=$($CLI_BIN --json cluster status)
    [ $(( $(echo "$j" | jq .leaders_max) - $(echo "$j" | jq .leaders_min) )) -le 1 ] &&
        [ "$(echo "$j" | jq .operators_leader_balance)" = 0 ]
}
t0=$(now_ms)
wait_for 60 "leader balance max - min <= 1" lb_ok
ok "leaders balanced in $(( $(now_ms) - t0 )) ms: $(st leaders_min)..$(st leaders_max) per chunkserver (simcs sees $(sim leaders_min)..$(sim leaders_max))"
[ $(( $(sim leaders_max) - $(sim leaders_min) )) -le 1 ] || fail "simcs disagrees on leaders"

# stop one chunkserver with copysets
victim=$(cli chunkserver list | awk 'NR > 1 && $8 > 0 { print $1; exit }')
[ -n "$victim" ] || fail "no chunkserver with copysets"
had=$(cli chunkserver list | awk -v v="$victim" '$1 == v { print $7 }')
curl -sf "$SIMHTTP/kill?cs=$victim" >/dev/null || fail "kill $victim"
t0=$(now_ms)
wait_for 20 "chunkserver $victim offline" \
    bash -c "$CLI_BIN chunkserver list | awk -v v=$victim '\$1 == v && \$6 == \"offline\"' | grep -q ."
ok "chunkserver $victim (zone $(cli chunkserver list | awk -v v="$victim" '$1 == v {print $3}'), $had copysets) offline after $(( $(now_ms) - t0 )) ms"
saw_progress=0
end=$(( $(now_ms) + 90000 ))
while [ "$(now_ms)" -lt "$end" ]; do
    j=$(cli --json cluster status)
    left=$(echo "$j" | jq "[.recovery[] | select(.chunkserver == $victim)][0].copysets_left // -1")
    atoff=$(echo "$j" | jq "[.recovery[] | select(.chunkserver == $victim)][0].copysets_at_offline // -1")
    if [ "$left" -gt 0 ] && [ "$left" -lt "$atoff" ]; then saw_progress=1; fi
    [ "$left" = 0 ] && [ "$(echo "$j" | jq .copysets_degraded)" = 0 ] && break
    sleep 0.2
done
[ "$left" = 0 ] || fail "recovery did not finish: $left of $atoff left"
[ "$atoff" = "$had" ] || fail "recovery counted $atoff copysets at offline, chunkserver had $had"
[ "$saw_progress" = 1 ] || fail "cluster status never showed partial recovery progress"
cli cluster status | tee "$T/status.out"
grep -q "recovery: *chunkserver $victim offline: $had/$had copysets moved (100%)" "$T/status.out" ||
    fail "status does not show the finished recovery"
[ "$(st copysets_healthy)" = "$total" ] || fail "not every copyset healthy after recovery"
ok "recovery of $had copysets finished in $(( $(now_ms) - t0 )) ms; all $total copysets healthy"
[ "$(sim zone_violations)" = 0 ] || fail "zone rule broken: $(sim zone_violations) pairs share a zone"
ok "zone rule kept (simulated groups: no two members in one zone)"
wait_for 60 "leader balance after recovery" lb_ok
ok "leaders balanced again: $(st leaders_min)..$(st leaders_max)"

# the chunkserver comes back: its stale replicas are removed (REMOVE_REPLICA), then copyset
# balance moves copysets of its zone back to it
curl -sf "$SIMHTTP/revive?cs=$victim" >/dev/null || fail "revive $victim"
zone=$(cli chunkserver list | awk -v v="$victim" '$1 == v {print $3}')
zone_balanced() {
    $CLI_BIN chunkserver list | awk -v z="$zone" 'NR > 1 && $3 == z && $6 == "online" {
        n++; if (min == "" || $7 < min) min = $7; if ($7 > max) max = $7 }
        END { exit !(n == 6 && max - min <= 1) }'
}
wait_for 60 "stale replicas on $victim removed" bash -c "[ \"\$(curl -s $SIMHTTP/status | jq .stale_replicas)\" = 0 ]"
wait_for 90 "copyset balance in zone $zone (max - min <= 1)" zone_balanced
wait_for 30 "all copysets healthy after balancing" \
    bash -c "[ \"\$($CLI_BIN --json cluster status | jq .copysets_healthy)\" = $total ]"
[ "$(sim zone_violations)" = 0 ] || fail "zone rule broken by balancing"
ok "revived $victim: stale replicas removed ($(sim replicas_removed)), zone $zone rebalanced: $(cli chunkserver list | awk -v z="$zone" 'NR > 1 && $3 == z {printf "%s ", $7}')"

# MDS failover keeps the view: the new leader rebuilds it from etcd and heartbeats
L=$(leader_of m1 m2)
kill_mds "$L"
wait_for 30 "the other MDS serves a healthy status" \
    bash -c "[ \"\$($CLI_BIN --json cluster status | jq .copysets_healthy)\" = $total ]"
ok "after MDS failover the new leader sees all $total copysets healthy"
echo PASS
