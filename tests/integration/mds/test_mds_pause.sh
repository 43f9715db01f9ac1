#!/usr/bin/env bash
# test_mds_pause.sh BUILD_DIR - fencing of a leader MDS that is paused, with real
# processes and a real etcd, judged by etcd's contents and RPC answers (not by logs):
#  1. the leader is frozen (SIGSTOP) for longer than its lease TTL while a client request
#     waits in its socket; a standby takes over; after SIGCONT the old leader never
#     reports or acts as leader, answers "not leader" with the new leader's address, the
#     waiting request fails, and nothing under /spline/ (except election keys) changes;
#  2. a leader's write is delayed in the network (a TCP proxy holds it) while the leader
#     is frozen; a standby takes over, then the write reaches etcd: etcd refuses it (the
#     fence compare), no volume and no id counter change appear, and the client is told
#     the call failed.
BIN=$1
source "$(dirname "$0")/lib.sh"
ETCDCTL=${SPL_ETCDCTL_BIN:-etcdctl}
export ETCDCTL_API=3

# snapshot - every key under /spline/ but the election's, with its mod revision.
snapshot() {
    "$ETCDCTL" --endpoints="$ETCD_EP" get --prefix /spline/ -w json |
        jq -r '.kvs[]? | (.key | @base64d) as $k | select($k | startswith("/spline/mds/") | not)
               | "\($k) \(.mod_revision)"' | sort
}

# etcd_leader - the address in the election's oldest key (the leader in etcd's eyes).
etcd_leader() {
    "$ETCDCTL" --endpoints="$ETCD_EP" get --prefix /spline/mds/election -w json |
        jq -r '[.kvs[]?] | sort_by(.create_revision) | .[0].value // "" | @base64d'
}

etcd_has() { [ -n "$("$ETCDCTL" --endpoints="$ETCD_EP" get "$1" --print-value-only)" ]; }

# never_leader NAME MS - NAME's /status must not say leader for MS milliseconds.
never_leader() {
    local end=$(( $(now_ms) + $2 )) n=0
    while [ "$(now_ms)" -lt "$end" ]; do
        [ "$(mds_status "$1" role)" != leader ] || fail "$1 reports role leader after SIGCONT"
        n=$((n + 1))
        sleep 0.02
    done
    echo "  $1 not leader in $n /status polls over $2 ms"
}

# refused_as_standby NAME LEADER - a leader-only RPC sent straight to NAME (no following)
# is refused with SPL_EMDS_NOTLEADER naming LEADER's address.
refused_as_standby() {
    local out rc=0
    out=$("$CLI_BIN" --timeout=5 --no-follow --mds="${MDS_ADDR[$1]}" volume create \
        "probe$RANDOM" --size=1G 2>&1) || rc=$?
    [ "$rc" = 3 ] && grep -q SPL_EMDS_NOTLEADER <<<"$out" && grep -q "${MDS_ADDR[$2]}" <<<"$out"
}

start_etcd
for n in m1 m2 m3; do start_mds $n; done
export SPLINE_MDS=$(all_mds m1 m2 m3)
L=$(wait_leader 15 m1 m2 m3) || fail "no leader"
rest=()
for n in m1 m2 m3; do [ "$n" != "$L" ] && rest+=("$n"); done
"$SIMCS_BIN" --print_cluster_file --count=3 --zones=3 --cs_per_server=1 --copysets_per_cs=10 \
    --listen=127.0.0.1:$(freeport) >"$T/cluster.yaml"
cli cluster init "$T/cluster.yaml" >/dev/null
cli volume create before --size=1G >/dev/null
for n in "${rest[@]}"; do
    wait_for 10 "$n observes $L" \
        bash -c "[ \"\$(curl -s http://127.0.0.1:${MDS_HTTP[$n]}/status | jq -r .leader)\" = ${MDS_ADDR[$L]} ]"
done
[ "$(etcd_leader)" = "${MDS_ADDR[$L]}" ] || fail "etcd's leader key is not $L's"
ok "$L leads (etcd agrees); volume 'before' exists"

# ---- 1. SIGSTOP longer than the lease TTL ----
snap0=$(snapshot)
t0=$(now_ms)
kill -STOP "${MDS_PID[$L]}"
"$CLI_BIN" --timeout=60 --no-follow --mds="${MDS_ADDR[$L]}" volume create paused1 --size=1G \
    >"$T/paused1.out" 2>&1 &
BG=$!
PIDS+=("$BG")
L2=$(wait_leader 20 "${rest[@]}") || fail "no standby took over from the frozen $L"
dt=$(( $(now_ms) - t0 ))
[ "$(etcd_leader)" = "${MDS_ADDR[$L2]}" ] || fail "etcd's leader key is not $L2's"
"$ETCDCTL" --endpoints="$ETCD_EP" get --prefix /spline/mds/election --print-value-only |
    grep -qx "${MDS_ADDR[$L]}" && fail "$L's election key outlived its lease"
ok "$L frozen; $L2 leads after ${dt} ms; $L's election key expired"
sleep_ms=$(( LEASE_TTL_MS + 1000 - ($(now_ms) - t0) ))
[ "$sleep_ms" -gt 0 ] && sleep "$(awk -v m="$sleep_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
snap1=$(snapshot)
[ "$snap1" = "$snap0" ] || echo "  (the new leader wrote on taking over)"
paused_ms=$(( $(now_ms) - t0 ))
kill -CONT "${MDS_PID[$L]}"
echo "  $L resumed after ${paused_ms} ms (lease TTL ${LEASE_TTL_MS} ms)"
never_leader "$L" 3000
wait_for 10 "$L answers SPL_EMDS_NOTLEADER naming $L2" refused_as_standby "$L" "$L2"
rc=0
wait "$BG" || rc=$?
out=$(cat "$T/paused1.out")
[ "$rc" = 3 ] || fail "the request queued at the frozen leader exited $rc, want 3: $out"
grep -Eq "SPL_EMDS_(NOTLEADER|NOLEADER)" <<<"$out" || fail "queued request: $out"
echo "  request queued while frozen: $(head -1 <<<"$out")"
expect_fail 3 SPL_EMDS_NOTLEADER --no-follow --mds="${MDS_ADDR[$L]}" volume list
snap2=$(snapshot)
[ "$snap2" = "$snap1" ] || fail "etcd changed after $L resumed: $(diff <(echo "$snap1") <(echo "$snap2"))"
etcd_has /spline/ns/name/paused1 && fail "paused1 was created"
expect_fail 1 SPL_EVOL_NOTFOUND volume stat paused1
[ "$(mds_status "$L" role)" = standby ] || fail "$L should be a standby"
cli volume create after1 --size=1G >/dev/null
[ "$(snapshot)" != "$snap2" ] || fail "the new leader's write did not show in the snapshot"
ok "resumed $L: never leader, refuses leader-only RPCs naming $L2, wrote nothing to etcd"

# ---- 2. a write delayed in the network while its leader is frozen ----
for n in m1 m2 m3; do kill_mds "$n"; done
start_etcd_proxy
start_mds mp "http://127.0.0.1:$PROXY_PORT"
wait_leader $(( LEASE_TTL_MS / 1000 + 10 )) mp >/dev/null || fail "proxied MDS did not lead"
start_mds m5
wait_for 10 "m5 observes mp" \
    bash -c "[ \"\$(curl -s http://127.0.0.1:${MDS_HTTP[m5]}/status | jq -r .leader)\" = ${MDS_ADDR[mp]} ]"
# a first create reserves a batch of volume ids, so the next one's first etcd request is
# its create transaction
cli --mds="${MDS_ADDR[mp]}" --no-follow volume create warm --size=1G >/dev/null
snap3=$(snapshot)
echo hold >"$T/proxy.ctl"
sleep 0.2
"$CLI_BIN" --timeout=60 --no-follow --mds="${MDS_ADDR[mp]}" volume create inflight --size=1G \
    >"$T/inflight.out" 2>&1 &
BG=$!
PIDS+=("$BG")
sleep 0.5
kill -STOP "${MDS_PID[mp]}"
t0=$(now_ms)
wait_leader 20 m5 >/dev/null || fail "m5 did not take over from the frozen mp"
[ "$(etcd_leader)" = "${MDS_ADDR[m5]}" ] || fail "etcd's leader key is not m5's"
echo open >"$T/proxy.ctl" # the held bytes (mp's transaction, keepalives) reach etcd now
sleep 1
snap4=$(snapshot)
etcd_has /spline/ns/name/inflight && fail "etcd accepted the deposed leader's delayed write"
[ "$snap4" = "$snap3" ] || fail "etcd changed by the delayed write: $(diff <(echo "$snap3") <(echo "$snap4"))"
kill -CONT "${MDS_PID[mp]}"
echo "  mp frozen for $(( $(now_ms) - t0 )) ms; its delayed write was released after m5 led"
never_leader mp 2000
rc=0
wait "$BG" || rc=$?
out=$(cat "$T/inflight.out")
[ "$rc" = 3 ] || fail "the delayed create exited $rc, want 3: $out"
echo "  delayed create: $(head -1 <<<"$out")"
[ "$(snapshot)" = "$snap3" ] || fail "etcd changed after mp resumed"
expect_fail 1 SPL_EVOL_NOTFOUND --mds="${MDS_ADDR[m5]}" volume stat inflight
wait_for 10 "mp answers SPL_EMDS_NOTLEADER naming m5" refused_as_standby mp m5
ok "a write delayed past the takeover is refused by etcd (fence); mp steps down, names m5"
echo PASS
