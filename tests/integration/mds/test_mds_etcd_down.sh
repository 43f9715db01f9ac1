#!/usr/bin/env bash
# test_mds_etcd_down.sh BUILD_DIR - etcd dies under 2 MDS: requests fail with a clear
# etcd error and exit code 3, no MDS keeps leading past its lease, /healthz says why,
# nothing half-written appears; when etcd returns, a leader is elected again and the
# service resumes with exactly the state from before.
BIN=$1
source "$(dirname "$0")/lib.sh"

start_etcd
start_mds m1
start_mds m2
export SPLINE_MDS=$(all_mds m1 m2)
wait_leader 15 m1 m2 >/dev/null || fail "no leader"
"$SIMCS_BIN" --print_cluster_file --count=3 --zones=3 --cs_per_server=1 --copysets_per_cs=10 \
    --listen=127.0.0.1:$(freeport) >"$T/cluster.yaml"
cli cluster init "$T/cluster.yaml" >/dev/null
cli volume create keep1 --size=1G >/dev/null
ok "cluster with volume keep1"

kill_etcd
t0=$(now_ms)
rc=0
out=$("$CLI_BIN" --timeout=6 volume create lost1 --size=1G 2>&1) || rc=$?
echo "during the outage: $out"
[ "$rc" = 3 ] || fail "volume create during the outage exited $rc, want 3"
grep -qi "etcd" <<<"$out" || fail "the error does not name etcd: $out"
wait_for 10 "no MDS leads without etcd" bash -c "[ -z \"\$(curl -s http://127.0.0.1:${MDS_HTTP[m1]}/status | jq -r 'select(.role == \"leader\") | .role')\" ] && [ -z \"\$(curl -s http://127.0.0.1:${MDS_HTTP[m2]}/status | jq -r 'select(.role == \"leader\") | .role')\" ]"
[ "$(leader_of m1 m2)" = "" ] || fail "an MDS leads without etcd"
code=$(curl -s -o "$T/healthz" -w '%{http_code}' "http://127.0.0.1:${MDS_HTTP[m1]}/healthz")
[ "$code" = 503 ] && grep -q "etcd" "$T/healthz" || fail "/healthz during the outage: $code $(cat "$T/healthz")"
rc=0
out=$("$CLI_BIN" --timeout=3 volume list 2>&1) || rc=$?
[ "$rc" = 3 ] && grep -q "SPL_EETCD_UNAVAILABLE" <<<"$out" || fail "volume list without etcd: rc $rc: $out"
ok "etcd down: clear errors (exit 3, SPL_EETCD_UNAVAILABLE), no leader, /healthz 503"

run_etcd
t1=$(now_ms)
wait_leader 20 m1 m2 >/dev/null || fail "no leader after etcd returned"
ok "leader again $(( $(now_ms) - t1 )) ms after etcd returned"
cli volume stat keep1 >/dev/null || fail "keep1 lost"
expect_fail 1 SPL_EVOL_NOTFOUND volume stat lost1
[ "$(cli volume list | wc -l)" = 2 ] || fail "volume list: $(cli volume list)"
[ "$(cli volume recycle | wc -l)" = 1 ] || fail "recycle bin not empty"
cli volume create after1 --size=1G >/dev/null || fail "create after etcd returned"
ok "no partial state; the service resumed"
echo PASS
