#!/usr/bin/env bash
# sim-nightly.sh - run many simulation seeds in parallel slices (docs/simulation.md).
#   tests/sim/sim-nightly.sh [BUILD_DIR] [SEEDS] [START] [STEPS] [-- extra sim_raft options]
# Defaults: build-sim, 100000 seeds from a start derived from the date, 30000 steps each.
# Each slice runs every seed in its own process (--fork) and keeps going after failures;
# the failing seeds (with their replay commands) are collected in BUILD_DIR/sim-nightly.log.
# Exit status: 0 when every seed passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build-sim}
seeds=${2:-100000}
start=${3:-$(( $(date +%Y%m%d) * 1000000 ))}
steps=${4:-30000}
shift $(( $# < 4 ? $# : 4 ))
[ "${1:-}" = "--" ] && shift
bin=$dir/tests/sim/sim_raft
[ -x "$bin" ] || { echo "no $bin: cmake --build $dir --target sim_raft" >&2; exit 2; }
jobs=$(nproc 2>/dev/null || echo 2)
per=$(( (seeds + jobs - 1) / jobs ))
log=$dir/sim-nightly.log
: > "$log"
t0=$SECONDS
pids=()
for j in $(seq 0 $((jobs - 1))); do
  s=$(( start + j * per ))
  n=$(( j == jobs - 1 ? seeds - j * per : per ))
  [ "$n" -gt 0 ] || continue
  "$bin" --seeds "$n" --start "$s" --steps "$steps" --keep-going --fork --trace-lines 0 "$@" \
    > "$dir/sim-nightly.$j.out" 2>&1 &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
cat "$dir"/sim-nightly.*.out | grep -E "^SEED|replay" >> "$log"
grep -h "seeds in" "$dir"/sim-nightly.*.out
echo "sim-nightly: $seeds seeds from $start, $steps steps, $jobs slices, $((SECONDS - t0)) s;" \
     "$(grep -c '^SEED' "$log") failed (see $log)"
rm -f "$dir"/sim-nightly.*.out
exit $fail
