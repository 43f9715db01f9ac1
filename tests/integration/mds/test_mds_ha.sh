#!/usr/bin/env bash
# test_mds_ha.sh BUILD_DIR - MDS high availability with a real etcd and real processes:
# one leader among three; standbys redirect to it; kill -9 of the leader elects a new one
# within lease TTL + 2 s (measured); a leader cut off from etcd (TCP proxy) stops serving
# before its lease can expire and before anyone else leads (fencing).
BIN=$1
source "$(dirname "$0")/lib.sh"

start_etcd
for n in m1 m2 m3; do start_mds $n; done
L=$(wait_leader 15 m1 m2 m3) || fail "no leader elected"
leaders=0
for n in m1 m2 m3; do [ "$(mds_status $n role)" = leader ] && leaders=$((leaders + 1)); done
[ "$leaders" = 1 ] || fail "$leaders leaders"
ok "one leader: $L (${MDS_ADDR[$L]})"

# standbys answer with SPL_EMDS_NOTLEADER and the leader's address
for n in m1 m2 m3; do
    [ "$n" = "$L" ] && continue
    wait_for 10 "$n observes the leader" \
        bash -c "[ \"\$(curl -s http://127.0.0.1:${MDS_HTTP[$n]}/status | jq -r .leader)\" = ${MDS_ADDR[$L]} ]"
    expect_fail 3 SPL_EMDS_NOTLEADER --mds="${MDS_ADDR[$n]}" --no-follow cluster status
    expect_fail 3 "${MDS_ADDR[$L]}" --mds="${MDS_ADDR[$n]}" --no-follow cluster status
    out=$(cli --mds="${MDS_ADDR[$n]}" cluster status) || fail "redirect not followed"
    grep -q "mds leader: *${MDS_ADDR[$L]}" <<<"$out" || fail "status not from the leader: $out"
done
ok "standbys redirect to the leader; the CLI follows"

# kill -9 the leader: a standby leads within TTL + 2 s
t0=$(now_ms)
kill_mds "$L"
rest=()
for n in m1 m2 m3; do [ "$n" != "$L" ] && rest+=("$n"); done
L2=$(wait_leader 20 "${rest[@]}") || fail "no new leader after killing $L"
dt=$(( $(now_ms) - t0 ))
[ "$dt" -le $(( LEASE_TTL_MS + 2000 )) ] ||
    fail "new leader after ${dt} ms > TTL ${LEASE_TTL_MS} + 2000 ms"
ok "kill -9 leader $L -> $L2 leads after ${dt} ms (lease TTL ${LEASE_TTL_MS} ms)"
cli --mds="$(all_mds m1 m2 m3)" cluster status >/dev/null || fail "CLI cannot find the new leader"
ok "CLI with all addresses finds the new leader"

# fencing: put a fresh MDS behind a TCP proxy to etcd and make it the leader
for n in "${rest[@]}"; do kill_mds "$n"; done
start_etcd_proxy
start_mds mp "http://127.0.0.1:$PROXY_PORT"
wait_leader $(( LEASE_TTL_MS / 1000 + 10 )) mp >/dev/null || fail "proxied MDS did not lead"
start_mds m5
start_mds m6
sleep 1
[ "$(leader_of mp m5 m6)" = mp ] || fail "proxied MDS lost leadership before the cut"
ok "proxied MDS mp leads; m5 m6 stand by"

t0=$(now_ms)
echo cut >"$T/proxy.ctl"
t_stop=0 t_new=0 newl=""
end=$(( t0 + LEASE_TTL_MS + 10000 ))
while [ "$(now_ms)" -lt "$end" ]; do
    t=$(now_ms)
    if [ "$t_stop" = 0 ] && [ "$(mds_status mp role)" != leader ]; then t_stop=$t; fi
    if [ "$t_new" = 0 ]; then
        newl=$(leader_of m5 m6)
        [ -n "$newl" ] && t_new=$t
    fi
    [ "$t_stop" != 0 ] && [ "$t_new" != 0 ] && break
    sleep 0.02
done
[ "$t_stop" != 0 ] || fail "partitioned leader never stopped serving"
[ "$t_new" != 0 ] || fail "no new leader after the partition"
stop_after=$(( t_stop - t0 )) new_after=$(( t_new - t0 ))
echo "partition: old leader stopped after ${stop_after} ms, $newl leads after ${new_after} ms"
[ "$t_stop" -lt "$t_new" ] || fail "two leaders at once: mp still led when $newl took over"
[ "$stop_after" -le "$LEASE_TTL_MS" ] ||
    fail "mp stopped after ${stop_after} ms, not before its lease (${LEASE_TTL_MS} ms) could expire"
expect_fail 3 SPL_E --mds="${MDS_ADDR[mp]}" --no-follow volume list
ok "fencing: the cut-off leader stopped ${stop_after} ms after the cut, before $newl led (${new_after} ms)"

echo open >"$T/proxy.ctl"
wait_for 20 "mp rejoins as a standby following $newl" \
    bash -c "[ \"\$(curl -s http://127.0.0.1:${MDS_HTTP[mp]}/status | jq -r .leader)\" = ${MDS_ADDR[$newl]} ]"
[ "$(mds_status mp role)" = standby ] || fail "mp should be a standby"
ok "healed: mp is a standby redirecting to $newl"
echo PASS
