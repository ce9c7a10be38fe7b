#!/usr/bin/env bash
# Builds hearth and runs every test: a release build with warnings as errors, the same tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzzers for a bounded time.
# Usage: scripts/test.sh        (FUZZ_SECONDS=60 by default; HEARTH_SHARED points at ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
export HEARTH_SHARED="${HEARTH_SHARED:-$(cd .. && pwd)/shared}"

echo "== release build (-Werror) and tests"
cmake -S . -B build/test-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_WERROR=ON >/dev/null
cmake --build build/test-release -j "$jobs"
ctest --test-dir build/test-release --output-on-failure -j "$jobs" --timeout 900

echo "== ASan + UBSan build and tests"
cmake -S . -B build/test-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_WERROR=ON -DHEARTH_SANITIZE=ON -DHEARTH_BENCH=OFF >/dev/null
cmake --build build/test-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/test-asan --output-on-failure -j "$jobs" --timeout 1800

echo "== fuzzers (${FUZZ_SECONDS:-60} s each)"
scripts/fuzz.sh
