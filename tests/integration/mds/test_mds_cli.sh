#!/usr/bin/env bash
# test_mds_cli.sh BUILD_DIR - the spline CLI against 2 MDS and a real etcd: cluster init
# (idempotent; a contradicting file refused), topology listing, the whole volume
# lifecycle with its error names and exit codes, concurrent GetOrAllocateSegment from two
# clients giving one answer, malformed RPC fields refused with distinct codes, and the
# CLI's bounds: a silent (SIGSTOPped) MDS costs one attempt, no MDS answering gives exit 3
# with a stable error name within --timeout.
BIN=$1
source "$(dirname "$0")/lib.sh"

start_etcd
start_mds m1
start_mds m2
export SPLINE_MDS=$(all_mds m1 m2)
wait_leader 15 m1 m2 >/dev/null || fail "no leader"

"$SIMCS_BIN" --print_cluster_file --count=6 --zones=3 --cs_per_server=1 --copysets_per_cs=10 \
    --listen=127.0.0.1:$(freeport) >"$T/cluster.yaml"
out=$(cli cluster init "$T/cluster.yaml")
grep -q "created 1 pools, 3 zones, 6 servers, 6 chunkservers, 1 logical pools" <<<"$out" ||
    fail "init: $out"
grep -q "logical pools placed: 1" <<<"$out" || fail "init did not place: $out"
out=$(cli cluster init "$T/cluster.yaml")
grep -q "created 0 pools, 0 zones, 0 servers, 0 chunkservers, 0 logical pools" <<<"$out" ||
    fail "second init changed something: $out"
ok "cluster init is idempotent"
sed 's/ip: 127.0.0.1/ip: 127.0.0.9/' "$T/cluster.yaml" >"$T/conflict.yaml"
expect_fail 1 SPL_ETOPO_EXISTS cluster init "$T/conflict.yaml"
echo "not: [valid" >"$T/bad.yaml"
expect_fail 1 SPL_ETOPO_INVALID cluster init "$T/bad.yaml"
expect_fail 1 "cannot read" cluster init "$T/missing.yaml"
ok "contradicting, invalid and missing cluster files refused"
cli topology list | tee "$T/topo.out" | grep "logical pool simlpool (id 1) on pool 1: 3 replicas, 20 copysets, ready" >/dev/null ||
    fail "topology list: $(cat "$T/topo.out")"
[ "$(grep -c "^    server " "$T/topo.out")" = 6 ] || fail "topology list: 6 servers expected"
[ "$(cli chunkserver list | wc -l)" = 7 ] || fail "chunkserver list: 6 rows expected"
ok "topology and chunkserver listings"

# volume lifecycle
cli volume create v1 --size=10G --owner=alice >/dev/null
out=$(cli volume stat v1)
grep -q "size: *10 GiB (10737418240 bytes)" <<<"$out" || fail "stat size: $out"
grep -q "owner: *alice" <<<"$out" || fail "stat owner: $out"
id=$(echo "$out" | awk '/^id:/ {print $2}')
expect_fail 1 SPL_EVOL_EXISTS volume create v1 --size=10G
expect_fail 1 SPL_EVOL_BADSIZE volume create v9 --size=1M
expect_fail 1 SPL_EVOL_BADNAME volume create 'bad/name' --size=1G
expect_fail 2 "give NAME and --size" volume create v9
expect_fail 2 "bad --size" volume create v9 --size=ten
cli volume list | grep "^$id *v1 *10 GiB *alice" >/dev/null || fail "volume list: $(cli volume list)"
cli volume extend v1 --size=20G | grep "size: *20 GiB" >/dev/null || fail "extend"
expect_fail 1 SPL_EVOL_SHRINK volume extend v1 --size=5G
cli volume rename v1 v2 >/dev/null
expect_fail 1 SPL_EVOL_NOTFOUND volume stat v1
[ "$(cli volume stat v2 | awk '/^id:/ {print $2}')" = "$id" ] || fail "rename changed the id"
cli volume delete v2 >/dev/null
expect_fail 1 SPL_EVOL_NOTFOUND volume stat v2
cli volume recycle | grep "^$id *v2 " >/dev/null || fail "recycle bin: $(cli volume recycle)"
cli volume restore "$id" >/dev/null
[ "$(cli volume stat v2 | awk '/^id:/ {print $2}')" = "$id" ] || fail "restore"
cli volume delete v2 >/dev/null
cli volume restore "$id" --name=v3 | grep "name: *v3" >/dev/null || fail "restore under a new name"
expect_fail 1 SPL_ERECYCLE_NOTFOUND volume restore 999999
ok "volume create/stat/list/extend/rename/delete/recycle/restore with error names"

# concurrent segment allocation from two clients (one through a standby's redirect)
for seg in 0 1 5 7 19; do
    "$CLI_BIN" --mds="${MDS_ADDR[m1]}" volume segment v3 ${seg}G --allocate >"$T/a.$seg" &
    pa=$!
    "$CLI_BIN" --mds="${MDS_ADDR[m2]}" volume segment v3 ${seg}G --allocate >"$T/b.$seg" &
    pb=$!
    wait $pa || fail "client a, segment $seg"
    wait $pb || fail "client b, segment $seg"
    diff <(sed 's/ (allocated now)//' "$T/a.$seg") <(sed 's/ (allocated now)//' "$T/b.$seg") >/dev/null ||
        fail "segment $seg: two answers"
    n=$(cat "$T/a.$seg" "$T/b.$seg" | grep -c "allocated now" || true)
    [ "$n" = 1 ] || fail "segment $seg allocated $n times"
    [ "$(grep -c '^chunk ' "$T/a.$seg")" = 64 ] || fail "segment $seg: 64 chunks expected"
done
expect_fail 1 SPL_ESEG_OUTOFRANGE volume segment v3 20G --allocate
expect_fail 1 SPL_ESEG_NOTALLOCATED volume segment v3 2G
ok "concurrent GetOrAllocateSegment from two clients: one allocation, one answer (5 segments)"

"$BIN/tests/integration/mds/mds_rpc_check" "$SPLINE_MDS" | tee "$T/rpc.out"
codes=$(grep '^ok' "$T/rpc.out" | awk '{print $NF}' | grep -v '^OK$' | sort -u | wc -l)
ok "malformed requests refused with $codes distinct codes"

# a silent MDS (stopped: the kernel still accepts connections) first in the list costs
# one attempt (a third of --timeout), then the CLI asks the next address
start_mds m3
kill -STOP "${MDS_PID[m3]}"
t0=$(now_ms)
out=$("$CLI_BIN" --timeout=9 --mds="${MDS_ADDR[m3]},$SPLINE_MDS" volume stat v3 2>&1) ||
    fail "the CLI did not get past a silent MDS: $out"
dt=$(( $(now_ms) - t0 ))
grep -q "name: *v3" <<<"$out" || fail "stat through a silent MDS: $out"
[ "$dt" -ge 2500 ] && [ "$dt" -lt 6000 ] || fail "silent MDS then leader took ${dt} ms (want ~3 s)"
ok "a silent MDS first in --mds: answered by the leader after ${dt} ms (--timeout=9)"
# only silent or closed addresses: exit 3 with a stable name, within --timeout
for target in "${MDS_ADDR[m3]}" "127.0.0.1:1" "127.0.0.1:1,${MDS_ADDR[m3]}"; do
    t0=$(now_ms)
    rc=0
    out=$("$CLI_BIN" --timeout=3 --mds="$target" volume create never --size=1G 2>&1) || rc=$?
    dt=$(( $(now_ms) - t0 ))
    [ "$rc" = 3 ] || fail "--mds=$target exited $rc, want 3: $out"
    grep -Eq "\((SPL_ERPC_TIMEDOUT|SPL_ERPC_UNREACHABLE)\)" <<<"$out" ||
        fail "--mds=$target: no stable error name: $out"
    grep -q "no MDS leader answered at $target" <<<"$out" || fail "--mds=$target: $out"
    [ "$dt" -lt 4500 ] || fail "--mds=$target: took ${dt} ms with --timeout=3"
    echo "  --mds=$target: exit 3 after ${dt} ms: $(head -1 <<<"$out")"
done
kill -CONT "${MDS_PID[m3]}"
expect_fail 1 SPL_EVOL_NOTFOUND volume stat never
ok "no MDS answering: exit 3, SPL_ERPC_TIMEDOUT / SPL_ERPC_UNREACHABLE, within --timeout"

expect_fail 3 SPL_ERPC_UNREACHABLE --mds=127.0.0.1:1 --timeout=2 cluster status
expect_fail 2 "unknown command" bogus
expect_fail 2 "unknown option" --bogus cluster status
ok "exit codes: 3 unreachable, 2 usage"
echo PASS
