#!/usr/bin/env bash
# Runs every Spline test suite, the way CI does. Usage: tools/test.sh [--quick]
#   1. gcc build, all CTest suites (unit, sim, integration with real etcd and processes)
#   2. ASan+UBSan build, unit tests
#   3. TSan build, the tests of modules whose threads share state (label tsan)
#   4. clang libFuzzer build, each fuzz target for SPL_FUZZ_SECONDS (default 60) s
# --quick: step 1 only. Exit status is non-zero if any step fails; a summary is printed.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_s=${SPL_FUZZ_SECONDS:-60}
declare -a results=()
fail=0

step() { # name, command...
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then results+=("PASS  $name ($((SECONDS - t0)) s)")
  else results+=("FAIL  $name ($((SECONDS - t0)) s)"); fail=1; fi
}

build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$jobs"
}

ctest_in() { # dir, ctest args...
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure --timeout 900 "$@"
}

fuzz_all() {
  local dir=build-fuzz n=0
  for f in "$dir"/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    local name corpus
    name=$(basename "$f")
    corpus=$(mktemp -d)
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$corpus/"
    echo "--- $name for ${fuzz_s} s"
    "$f" -max_total_time="$fuzz_s" -print_final_stats=1 "$corpus" 2>&1 | tail -12 || { rm -rf "$corpus"; return 1; }
    rm -rf "$corpus"
    n=$((n + 1))
  done
  echo "fuzz: $n targets ran"
  [ $n -gt 0 ]
}

step "build (gcc)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
step "tests: all suites" ctest_in build
if [ $quick = 0 ]; then
  step "build (ASan+UBSan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DSPL_SANITIZE=address
  step "tests: unit under ASan+UBSan" ctest_in build-asan -L unit
  step "build (TSan)" build build-tsan -DCMAKE_BUILD_TYPE=Debug -DSPL_SANITIZE=thread
  step "tests: threaded under TSan" ctest_in build-tsan -L tsan
  step "build (clang, libFuzzer)" env CC=clang CXX=clang++ bash -c \
    "cmake -S . -B build-fuzz -DSPL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build-fuzz -j$jobs"
  step "fuzz targets (${fuzz_s} s each)" fuzz_all
fi
echo
echo "=== summary"
printf '%s\n' "${results[@]}"
exit $fail
