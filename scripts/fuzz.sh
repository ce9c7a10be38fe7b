#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz-*.cpp) with clang-14 in build/fuzz and runs each one for
# FUZZ_SECONDS (default 60) on a copy of its seed corpus fuzz/corpus/<name>/. Exits non-zero when a
# fuzzer finds a crash; the crashing input is kept as build/fuzz/crash-<name>-*.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/fuzz"
seconds=${FUZZ_SECONDS:-60}

CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Release \
  -DHEARTH_FUZZ=ON -DHEARTH_TESTS=OFF -DHEARTH_BENCH=OFF >/dev/null

names=()
for src in "$root"/fuzz/fuzz-*.cpp; do
  name=$(basename "$src" .cpp)
  names+=("${name#fuzz-}")
done
# Only the fuzzers: the engine library itself is not needed (each fuzzer compiles its sources).
ninja -C "$build" -j2 "${names[@]/#/fuzz-}"

status=0
for name in "${names[@]}"; do
  work=$(mktemp -d)
  if [ -d "$root/fuzz/corpus/$name" ]; then cp -r "$root/fuzz/corpus/$name/." "$work/"; fi
  echo "== fuzz-$name for ${seconds}s on $(ls "$work" | wc -l) seeds"
  if ! "$build/fuzz/fuzz-$name" "$work" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
      -artifact_prefix="$build/crash-$name-" -print_final_stats=1; then
    echo "fuzz-$name FAILED: see $build/crash-$name-*" >&2
    status=1
  fi
  rm -rf "$work"
done
exit $status
