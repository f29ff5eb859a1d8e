#!/usr/bin/env bash
# Fuzzes parse_safetensors with libFuzzer (+ ASan/UBSan) for a number of
# seconds (default 20): configures build-fuzz with clang++, builds the
# target, seeds a corpus from the test suite's handcrafted files and runs.
# Crash inputs land in build-fuzz/artifacts/. Not part of the doctest suite.
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
shift || true
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DLLDL_BUILD_FUZZ=ON -DLLDL_BUILD_TESTS=OFF -DLLDL_BUILD_BENCH=OFF \
  -DLLDL_BUILD_EXAMPLES=OFF -DLLDL_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build" -j2 --target fuzz_safetensors st_make_corpus
mkdir -p "$build/corpus" "$build/artifacts"
"$build/st_make_corpus" "$build/corpus"
# -max_len: large enough for headers with several entries.
exec "$build/fuzz_safetensors" "$build/corpus" -max_total_time="$secs" -max_len=4096 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1 "$@"
