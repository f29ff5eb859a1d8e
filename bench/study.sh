#!/usr/bin/env bash
# The study, start to finish: build bench/study, sweep, write the report.
#
#   bench/study.sh            # default sizes: a few minutes on 2 cores
#   bench/study.sh --quick    # small sweep, well under a minute
#   bench/study.sh --append   # keep bench/out/study.csv and add to it
#   bench/study.sh -- --op matmul=256,512 --threads 1,2,4   # flags for bench/study
#
# Outputs: bench/out/study.csv, peak.csv, report.md and PNG plots.
# Environment: LLDL_BUILD_DIR (default build-study), PYTHON (default .venv/bin/python
# when present, else python3; needs numpy and matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
BUILD=${LLDL_BUILD_DIR:-build-study}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
quick=() append=0 extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --append) append=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "study.sh: unknown argument '$1' (--quick, --append, -- STUDY FLAGS)" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLLDL_BUILD_BENCH=ON \
    -DLLDL_BUILD_TESTS=OFF -DLLDL_BUILD_EXAMPLES=OFF -DLLDL_BUILD_PYTHON=OFF >/dev/null
fi
cmake --build "$BUILD" --target study -j "$(nproc)" >/dev/null

mkdir -p "$OUT"
[[ $append == 1 ]] || rm -f "$OUT/study.csv"
# Unset, OMP_NUM_THREADS would not matter (the study sets the count per run),
# but a BLAS with threads of its own would compete: keep it at one.
export OPENBLAS_NUM_THREADS=1
status=0
"$BUILD/study" "${quick[@]}" --csv "$OUT/study.csv" --peak "$OUT/peak.csv" "${extra[@]}" || status=$?
if [[ -s "$OUT/study.csv" ]]; then
  "$PYTHON" bench/study_report.py --csv "$OUT/study.csv" --peak "$OUT/peak.csv" --out "$OUT"
fi
exit $status
