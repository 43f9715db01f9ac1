#!/usr/bin/env bash
# bench_mds.sh BUILD_DIR [COUNT [COPYSETS_PER_CS [HB_INTERVAL_MS]]] - MDS benchmarks with
# a real etcd (figures for docs/performance.md, section MDS):
#  1. namespace: volume create / stat / segment allocation ops/s (bench_mds_ops), with
#     GetCopysets of one copyset (no etcd) as the same-run baseline;
#  2. heartbeats: COUNT (1000) simulated chunkservers x COPYSETS_PER_CS (100) heartbeating
#     every HB_INTERVAL_MS (2000) to one MDS: MDS CPU time per heartbeat round (from
#     /proc/<pid>/stat), the MDS's own handling time per heartbeat, and the round latency
#     seen by spline-simcs (first request sent -> last reply).
BIN=$1
COUNT=${2:-1000}
PER=${3:-100}
HB_MS=${4:-2000}
source "$(dirname "$0")/../../tests/integration/mds/lib.sh"

start_etcd
start_mds m1 "$ETCD_EP" --offline_timeout=30s --remove_grace=60s --workers=8
export SPLINE_MDS=${MDS_ADDR[m1]}
wait_leader 15 m1 >/dev/null || fail "no leader"

echo "== namespace (8 client threads, one MDS, one etcd)"
SIMPORT=$(freeport)
"$SIMCS_BIN" --print_cluster_file --count="$COUNT" --zones=3 --cs_per_server=10 \
    --copysets_per_cs="$PER" --listen=127.0.0.1:$SIMPORT >"$T/cluster.yaml"
t0=$(now_ms)
cli --timeout=600 cluster init "$T/cluster.yaml"
echo "cluster init ($COUNT chunkservers, $(( COUNT * PER / 3 )) copysets placed): $(( $(now_ms) - t0 )) ms"
"$BIN/bench/mds/bench_mds_ops" "$SPLINE_MDS" 8 200

echo "== heartbeats: $COUNT chunkservers x $PER copysets, every ${HB_MS} ms"
"$SIMCS_BIN" --mds="$SPLINE_MDS" --listen=127.0.0.1:$SIMPORT --count="$COUNT" --zones=3 \
    --cs_per_server=10 --hb_interval="${HB_MS}ms" --port_file="$T/simcs.port" \
    --log_level=warn >"$T/simcs.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "simcs control port" test -s "$T/simcs.port"
SIMHTTP=http://127.0.0.1:$(cat "$T/simcs.port")
total=$(( COUNT * PER / 3 ))
t0=$(now_ms)
settled() {
    local j; j=$($CLI_BIN --json cluster status) || return 1
    [ "$(echo "$j" | jq .chunkservers_online)" = "$COUNT" ] &&
        [ "$(echo "$j" | jq .copysets_healthy)" = "$total" ] &&
        [ "$(curl -s "$SIMHTTP/status" | jq .groups_with_leader)" = "$total" ] &&
        [ "$(echo "$j" | jq '.operators_leader_balance + .operators_recover')" = 0 ] &&
        [ "$(curl -s "http://127.0.0.1:${MDS_HTTP[m1]}/status" | jq .cluster.epoch_updates_pending)" = 0 ] &&
        [ "$(curl -s "http://127.0.0.1:${MDS_HTTP[m1]}/status" | jq .cluster.epoch_updates)" -ge "$total" ]
}
wait_for 900 "all $COUNT online, $total copysets healthy with leaders, no operators" settled
echo "settled (registered, created, elected, first epochs stored, leaders balanced): $(( $(now_ms) - t0 )) ms"
sleep $(( HB_MS * 2 / 1000 + 1 ))

mds_pid=${MDS_PID[m1]}
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
st() { curl -s "http://127.0.0.1:${MDS_HTTP[m1]}/status" | jq -r ".cluster.$1"; }
c0=$(cpu "$mds_pid"); r0=$(curl -s "$SIMHTTP/status" | jq .rounds)
h0=$(st heartbeats); n0=$(st heartbeat_ns_total); w0=$(now_ms)
lat=()
for _ in $(seq 1 10); do
    sleep $(( HB_MS / 1000 )).$(( HB_MS % 1000 / 100 ))
    lat+=("$(curl -s "$SIMHTTP/status" | jq .last_round_ms)")
done
c1=$(cpu "$mds_pid"); r1=$(curl -s "$SIMHTTP/status" | jq .rounds)
h1=$(st heartbeats); n1=$(st heartbeat_ns_total); w1=$(now_ms)
rounds=$(( r1 - r0 )); hbs=$(( h1 - h0 ))
cpu_ms=$(( (c1 - c0) * 1000 / tick ))
echo "window: $(( w1 - w0 )) ms, $rounds rounds, $hbs heartbeats handled"
echo "MDS CPU: ${cpu_ms} ms total = $(( cpu_ms / (rounds > 0 ? rounds : 1) )) ms per round of $COUNT heartbeats ($(( cpu_ms * 100 / (w1 - w0) ))% of one core)"
echo "MDS handling per heartbeat ($PER reports, lock held): $(( (n1 - n0) / (hbs > 0 ? hbs : 1) / 1000 )) us"
sorted=$(printf '%s\n' "${lat[@]}" | sort -n | tr '\n' ' ')
echo "round latency (simcs: first send -> last reply), 10 samples, ms: $sorted"
echo "simcs: $(curl -s "$SIMHTTP/status" | jq -c '{groups, groups_with_leader, heartbeats_failed, elections, orders_applied}')"
