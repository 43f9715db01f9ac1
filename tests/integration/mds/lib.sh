# lib.sh - shared by the MDS integration scripts (bash). Source it after setting
# BIN (the build directory holding spline-mds, spline, spline-simcs, itest_tool).
#
# Starts real processes on free 127.0.0.1 ports in a fresh temporary directory and kills
# every one of them (by pid) on exit, also when a check fails. Set KEEP=1 to keep the
# directory (logs) afterwards.
set -euo pipefail

MDS_BIN=$BIN/src/mds/spline-mds
CLI_BIN=$BIN/src/cli/spline
SIMCS_BIN=$BIN/src/simcs/spline-simcs
TOOL=$BIN/tests/integration/mds/itest_tool
ETCD_BIN=${SPL_ETCD_BIN:-etcd}
T=$(mktemp -d /tmp/spl-mdsit.XXXXXX)
declare -a PIDS=()
declare -A MDS_PID MDS_ADDR MDS_HTTP
LEASE_TTL_MS=${LEASE_TTL_MS:-3000}
FENCE_MARGIN_MS=${FENCE_MARGIN_MS:-1000}

cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$rc" != 0 ]; then
        echo "--- FAILED (rc $rc); logs in $T" >&2
        for f in "$T"/*.log; do echo "--- $f (tail)" >&2; tail -n 25 "$f" >&2 || true; done
        grep -l "Sanitizer" "$T"/*.err 2>/dev/null | while read -r f; do
            echo "--- $f" >&2; grep -A 30 "Sanitizer" "$f" | head -60 >&2; done
    fi
    if [ "${KEEP:-0}" != 1 ] && [ "$rc" = 0 ]; then rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
now_ms() { date +%s%3N; }
freeport() { "$TOOL" freeport "${1:-1}"; }

# start_etcd - a real etcd on free ports; sets ETCD_PORT, ETCD_EP, ETCD_PID.
start_etcd() {
    local ports
    ports=($(freeport 2))
    ETCD_PORT=${ports[0]}
    ETCD_PEER=${ports[1]}
    ETCD_EP=http://127.0.0.1:$ETCD_PORT
    run_etcd
}

run_etcd() {
    "$ETCD_BIN" --name itest --data-dir "$T/etcd" \
        --listen-client-urls "$ETCD_EP" --advertise-client-urls "$ETCD_EP" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-cluster "itest=http://127.0.0.1:$ETCD_PEER" >>"$T/etcd.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
    for _ in $(seq 1 200); do
        curl -sf "$ETCD_EP/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "etcd did not become healthy"
}

kill_etcd() { kill -9 "$ETCD_PID"; wait "$ETCD_PID" 2>/dev/null || true; }

# A TCP proxy to etcd on PROXY_PORT, steered through $T/proxy.ctl (open, cut, hold, ...).
start_etcd_proxy() {
  PROXY_PORT=$(freeport)
  echo open >"$T/proxy.ctl"
  "$TOOL" proxy "$PROXY_PORT" "$ETCD_PORT" "$T/proxy.ctl" >"$T/proxy.log" 2>&1 &
  PIDS+=("$!")
}

# start_mds NAME [ETCD_ENDPOINT] [extra flags...] - sets MDS_PID/ADDR/HTTP[NAME].
start_mds() {
    local name=$1 ep=${2:-$ETCD_EP}
    shift $(( $# >= 2 ? 2 : 1 ))
    local http
    http=$(freeport)
    rm -f "$T/$name.port"
    "$MDS_BIN" --name="$name" --listen=127.0.0.1:0 --port_file="$T/$name.port" \
        --etcd="$ep" --http_port="$http" --lease_ttl="${LEASE_TTL_MS}ms" \
        --fence_margin="${FENCE_MARGIN_MS}ms" --log_file="$T/$name.log" "$@" \
        >/dev/null 2>"$T/$name.err" &
    MDS_PID[$name]=$!
    PIDS+=("$!")
    MDS_HTTP[$name]=$http
    for _ in $(seq 1 100); do
        [ -s "$T/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$T/$name.port" ] || fail "mds $name did not start"
    MDS_ADDR[$name]=127.0.0.1:$(cat "$T/$name.port")
}

kill_mds() { kill -9 "${MDS_PID[$1]}"; wait "${MDS_PID[$1]}" 2>/dev/null || true; }

# mds_status NAME FIELD - a field of the MDS's /status JSON ("" when unreachable).
mds_status() {
    curl -s --max-time 1 "http://127.0.0.1:${MDS_HTTP[$1]}/status" 2>/dev/null |
        jq -r ".$2 // empty" 2>/dev/null || true
}

# leader_of NAMES... - prints the name of the MDS that reports role leader (or nothing).
leader_of() {
    for n in "$@"; do
        if [ "$(mds_status "$n" role)" = leader ]; then echo "$n"; return 0; fi
    done
    return 0
}

# wait_leader TIMEOUT_S NAMES... - prints the leader's name once one leads.
wait_leader() {
    local t=$1; shift
    local end=$(( $(now_ms) + t * 1000 )) l
    while [ "$(now_ms)" -lt "$end" ]; do
        l=$(leader_of "$@")
        [ -n "$l" ] && { echo "$l"; return 0; }
        sleep 0.05
    done
    return 1
}

all_mds() { local s=""; for n in "$@"; do s+="${s:+,}${MDS_ADDR[$n]}"; done; echo "$s"; }

# cli ARGS... - run the spline CLI against SPLINE_MDS.
cli() { "$CLI_BIN" --timeout=10 "$@"; }

# expect_fail CODE NAME ARGS... - the CLI exits with CODE and prints NAME (stable error).
expect_fail() {
    local code=$1 name=$2; shift 2
    local out rc=0
    out=$("$CLI_BIN" --timeout=10 "$@" 2>&1) || rc=$?
    [ "$rc" = "$code" ] || fail "spline $* exited $rc, want $code: $out"
    grep -q "$name" <<<"$out" || fail "spline $*: no $name in: $out"
}

# wait_for TIMEOUT_S DESCRIPTION COMMAND... - until COMMAND succeeds.
wait_for() {
    local t=$1 what=$2; shift 2
    local end=$(( $(now_ms) + t * 1000 ))
    while [ "$(now_ms)" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "timed out after ${t}s waiting for: $what"
}
