#!/usr/bin/env bash
# Builds hearth and runs every test: a release build with warnings as errors, the same tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzzers for a bounded time.
# Usage: scripts/test.sh        (FUZZ_SECONDS=60 by default; HEARTH_SHARED points at ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
export HEARTH_SHARED="${HEARTH_SHARED:-$(cd .. && pwd)/shared}"
log_dir=build/test-logs
mkdir -p "$log_dir"

# Runs ctest on a build tree, keeping its summary for the closing line.
run_ctest() {
  local name=$1
  shift
  ctest --test-dir "build/$name" --output-on-failure -j "$jobs" "$@" 2>&1 | tee "$log_dir/$name.log"
  return "${PIPESTATUS[0]}"
}

echo "== release build (-Werror) and tests"
cmake -S . -B build/test-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_WERROR=ON >/dev/null
cmake --build build/test-release -j "$jobs"
run_ctest test-release --timeout 900

echo "== ASan + UBSan build and tests"
cmake -S . -B build/test-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_WERROR=ON -DHEARTH_SANITIZE=ON -DHEARTH_BENCH=OFF >/dev/null
cmake --build build/test-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest test-asan --timeout 1800

echo "== fuzzers (${FUZZ_SECONDS:-60} s each)"
scripts/fuzz.sh

# One closing line over both test runs (ctest's own lines are above).
total=0
failed=0
for f in "$log_dir"/test-release.log "$log_dir"/test-asan.log; do
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$f" | tail -n 1)
  failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) tests failed.*/\1/')))
  total=$((total + $(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')))
done
echo "tests: $((total - failed)) passed, $failed failed"
