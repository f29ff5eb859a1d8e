#!/usr/bin/env bash
# The GPU checks, as one script for a machine with an NVIDIA GPU: the doctest
# "gpu" suite (every op in both tiers against the CPU, training loss curves),
# bench_cuda (kernel times, CSV), bench_step_device (whole MLP training steps,
# CPU against GPU) and the study with the CUDA tiers (CSV for
# bench/study_report.py's CPU-vs-GPU crossover).
#
#   bench/gpu_check.sh [BIN_DIR] [OUT_DIR]
#
# BIN_DIR holds lldl_tests, bench_cuda and study from a CUDA build
# (default build-gpu; see bench/gpu_pack.sh for building them on a machine
# without a GPU and carrying them over). Results go to OUT_DIR (default
# bench/out/gpu). Each step has a time limit; a step that fails does not stop
# the next, and the exit status says whether any failed.
set -u
BIN=${1:-build-gpu}
OUT_DIR=${2:-bench/out/gpu}
mkdir -p "$OUT_DIR"
# cuBLAS and the CUDA runtime: the binaries' own folder first (gpu_pack.sh
# copies libcudart there), then wherever this machine keeps CUDA's libraries.
libs="$BIN/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d $d ]] && libs="$libs:$d"
done
for f in $(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -3); do
  libs="$libs:$(dirname "$f")"
done
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}"
export OPENBLAS_NUM_THREADS=1
status=0
step() {  # step NAME SECONDS CMD...: runs CMD under a limit, logs to OUT_DIR/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  local t0=$SECONDS rc=0
  timeout "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1 || rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
  [[ $rc == 0 ]] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 | tee "$OUT_DIR/device.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$OUT_DIR/device.txt"
ldd "$BIN/lldl_tests" | grep -E 'cublas|cudart' | tee -a "$OUT_DIR/device.txt"

step gpu_tests 120 "$BIN/lldl_tests" -ts=gpu -d
tail -4 "$OUT_DIR/gpu_tests.log"
grep -B2 -A12 "ERROR\|FAILED\|CHECK.*failed" "$OUT_DIR/gpu_tests.log" | head -60
step host_tests 40 "$BIN/lldl_tests" -sf='*test_cuda_host*'
tail -3 "$OUT_DIR/host_tests.log"

OMP_NUM_THREADS=8 step bench_cuda 100 "$BIN/bench_cuda"
cp "$OUT_DIR/bench_cuda.log" "$OUT_DIR/bench_cuda.csv"

step bench_step_device 90 "$BIN/bench_step_device"
cp "$OUT_DIR/bench_step_device.log" "$OUT_DIR/bench_step_device.csv"
cat "$OUT_DIR/bench_step_device.csv"

OMP_NUM_THREADS=16 step study 240 "$BIN/study" --config bench/study_gpu.json --backends cpu,cuda \
  --csv "$OUT_DIR/study.csv" --peak "$OUT_DIR/peak.csv"
tail -3 "$OUT_DIR/study.log"
exit $status
