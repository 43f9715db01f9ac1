#!/usr/bin/env bash
# playground.sh start|stop|status - a local Spline cluster on 127.0.0.1 for trying things:
# a real etcd, 3 spline-mds (one leads, two stand by), and spline-simcs holding simulated
# chunkservers (until the real chunkserver exists) on the servers of
# conf/cluster.example.yaml, which `spline cluster init` applies; then a demo volume.
# The simulated chunkservers register themselves (two per server, like the example's two
# disks per server), so the cluster file must not declare chunkservers of its own: nothing
# would run them and the cluster would stay HEALTH_WARN. `start` returns once the cluster
# is HEALTH_OK.
#
# Everything lives in ${SPLINE_PLAYGROUND:-/tmp/spline-playground} (data, logs, pids);
# `start` begins from an empty directory and returns with the daemons in the background;
# `stop` kills exactly the processes it recorded. Binaries come from ${SPLINE_BUILD:-build}
# (tools/build.sh). Ports are free ones picked at start and written to $DIR/env.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SPLINE_PLAYGROUND:-/tmp/spline-playground}
BUILD=${SPLINE_BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
MDS_BIN=$BUILD/src/mds/spline-mds
CLI_BIN=$BUILD/src/cli/spline
SIMCS_BIN=$BUILD/src/simcs/spline-simcs
CLUSTER_FILE=${SPLINE_CLUSTER_FILE:-$ROOT/conf/cluster.example.yaml}
PIDS=$DIR/pids

die() { echo "playground: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A TAKEN
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if [ -z "${TAKEN[$p]:-}" ] && port_free "$p"; then TAKEN[$p]=1; echo "$p"; return 0; fi
    done
    die "no free port found"
}

running() { [ -f "$PIDS" ] && while read -r _ pid; do kill -0 "$pid" 2>/dev/null && return 0; done <"$PIDS"; return 1; }

spawn() { # spawn NAME LOG CMD... - start in the background, detached, pid recorded
    local name=$1 log=$2; shift 2
    setsid "$@" </dev/null >>"$log" 2>&1 &
    echo "$name $!" >>"$PIDS"
}

wait_until() { # wait_until SECONDS WHAT CMD...
    local t=$1 what=$2; shift 2
    for _ in $(seq 1 $(( t * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "timed out waiting for $what (logs in $DIR)"
}

health_ok() { "$CLI_BIN" --timeout=2 cluster status | grep -q '^health: *HEALTH_OK'; }

start() {
    for b in "$MDS_BIN" "$CLI_BIN" "$SIMCS_BIN"; do
        [ -x "$b" ] || die "$b missing: run tools/build.sh first (or set SPLINE_BUILD)"
    done
    command -v etcd >/dev/null || die "etcd not found: run tools/install-deps.sh"
    [ -f "$CLUSTER_FILE" ] || die "no cluster file $CLUSTER_FILE"
    if grep -Eq '^[[:space:]]*chunkservers:' "$CLUSTER_FILE"; then
        die "$CLUSTER_FILE declares chunkservers: the playground runs only simulated ones" \
            "(they register themselves), so declared ones would stay offline"
    fi
    if running; then die "already running (tools/playground.sh status; stop first)"; fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    : >"$PIDS"
    local etcd_port etcd_peer sim_port sim_http mds_ports=() mds_http=()
    etcd_port=$(free_port); etcd_peer=$(free_port); sim_port=$(free_port); sim_http=$(free_port)
    for i in 1 2 3; do mds_ports+=("$(free_port)"); mds_http+=("$(free_port)"); done
    local ep=http://127.0.0.1:$etcd_port
    spawn etcd "$DIR/etcd.log" etcd --name playground --data-dir "$DIR/etcd" \
        --listen-client-urls "$ep" --advertise-client-urls "$ep" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-cluster "playground=http://127.0.0.1:$etcd_peer"
    wait_until 20 "etcd" curl -sf "$ep/health"
    local mds=""
    for i in 1 2 3; do
        spawn "mds$i" "$DIR/mds$i.out" "$MDS_BIN" --name="mds$i" \
            --listen="127.0.0.1:${mds_ports[$((i - 1))]}" --etcd="$ep" \
            --http_port="${mds_http[$((i - 1))]}" --log_file="$DIR/mds$i.log" \
            --offline_timeout=20s --remove_grace=20s
        mds+="${mds:+,}127.0.0.1:${mds_ports[$((i - 1))]}"
    done
    export SPLINE_MDS=$mds
    cat >"$DIR/env" <<EOF
export SPLINE_MDS=$mds
export SPLINE_ETCD=$ep
export SPLINE_SIMCS_HTTP=http://127.0.0.1:$sim_http
EOF
    wait_until 30 "an MDS leader" "$CLI_BIN" --timeout=2 cluster status
    "$CLI_BIN" cluster init "$CLUSTER_FILE"
    spawn simcs "$DIR/simcs.log" "$SIMCS_BIN" --mds="$mds" --listen="127.0.0.1:$sim_port" \
        --from_mds --cs_per_server=2 --hb_interval=1s --http_port="$sim_http"
    echo "waiting for chunkservers to register and the logical pool to be placed ..."
    wait_until 60 "the demo volume" "$CLI_BIN" --timeout=2 volume create demo --size=10G \
        --owner=playground
    "$CLI_BIN" volume stat demo
    wait_until 60 "HEALTH_OK (see: $CLI_BIN cluster status)" health_ok
    "$CLI_BIN" cluster status
    cat <<EOF

Spline playground is running (data and logs in $DIR).
  etcd:          $ep
  MDS:           $mds   (one leads; the others redirect to it)
  MDS HTTP:      $(for h in "${mds_http[@]}"; do printf 'http://127.0.0.1:%s/status  ' "$h"; done)
  simcs:         http://127.0.0.1:$sim_http/status   (kill one: /kill?cs=ID, back: /revive?cs=ID)

Try:
  source $DIR/env
  $CLI_BIN cluster status
  $CLI_BIN chunkserver list
  $CLI_BIN volume list
Stop with: tools/playground.sh stop
EOF
}

stop() {
    [ -f "$PIDS" ] || { echo "playground: not running"; return 0; }
    local name pid
    while read -r name pid; do kill -TERM "$pid" 2>/dev/null && echo "stopping $name ($pid)" || true; done <"$PIDS"
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
    while read -r name pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$PIDS"
    rm -f "$PIDS"
    echo "playground stopped (logs kept in $DIR)"
}

status() {
    [ -f "$PIDS" ] || { echo "playground: not running"; return 1; }
    local name pid
    while read -r name pid; do
        if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: DEAD (pid $pid)"; fi
    done <"$PIDS"
    # shellcheck disable=SC1091
    source "$DIR/env"
    "$CLI_BIN" --timeout=3 cluster status || true
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: tools/playground.sh start|stop|status" >&2; exit 2 ;;
esac
