#!/bin/bash
# One device session, as one prepared command (binaries from bench/gpu_pack.sh,
# carried to the GPU machine as build-gpu-pack/). Every part runs under
# `timeout` with its output in $OUT/NAME.log, so a part that fails or hangs
# costs only its own limit; the parts run in order of importance and a part
# whose limit would overrun the session's budget (BUDGET seconds, default
# 480: under 9 minutes with the start and the transfers) is skipped, saying so.
#
#  1. gpu_tests         the doctest "gpu" suite: every op in both tiers against
#                       the CPU, the training curves, StepGraph (a captured
#                       CUDA-graph step bit for bit against the eager one)
#  2. host_tests        the host-emulated CUDA kernel tests
#  3. bench_step_device whole MLP steps, both tiers, eager and captured
#                       (widths 16..4096, batches 64 and 1024; GPU rows only)
#  4. bench_cuda_quick  every op kind at one size, CPU against both tiers
#  5. cpu_suite_16thr   the whole CPU suite at 16 threads (x86-64-v3 build)
#  6. hooks             bench/gpu_session.d/*.sh, in name order: each file holds
#                       `part NAME SECONDS CMD...` lines of other work (20-gpt2.sh:
#                       the GPT-2 124M benchmark against PyTorch), run with the
#                       same limits, budget and logs; $P (the pack), $OUT and
#                       $PYDEV (the device's Python with torch,
#                       /opt/torch/.venv/bin/python3 when present) are set
#  7. python            cppapi built there for the device's Python
#                       (bench/gpu_python_check.sh), tests/python/test_cuda.py
#                       and test_step_graph.py on the GPU, if time is left
#
#   OUT=dir bench/gpu_session.sh     (P=pack dir, default build-gpu-pack)
set -u
cd "$(dirname "$0")/.."
P=${P:-build-gpu-pack}
OUT=${OUT:-/tmp/out}
BUDGET=${BUDGET:-480}
PYDEV=${PYDEV:-$( [[ -x /opt/torch/.venv/bin/python3 ]] && echo /opt/torch/.venv/bin/python3 || command -v python3)}
export P OUT PYDEV
mkdir -p "$OUT" /usr/share/games && cp -r $P/fortunes /usr/share/games/ 2>/dev/null
libs="$P/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [[ -d $d ]] && libs="$libs:$d"; done
for f in $(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -3); do libs="$libs:$(dirname "$f")"; done
# NCCL, opened with dlopen by the NCCL tests of the gpu suite (tests/test_nccl_gpu.cpp).
for f in $(find /usr/local /opt /usr/lib -name 'libnccl.so.2' 2>/dev/null | head -3); do libs="$libs:$(dirname "$f")"; done
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}" OPENBLAS_NUM_THREADS=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  nproc | sed 's/^/cpu cores: /'
  echo "python: $PYDEV"; } 2>&1 | tee "$OUT/device.txt"
: > "$OUT/summary.txt"
part() {  # part NAME SECONDS CMD...: CMD under a limit, its output in $OUT/NAME.log
  local name=$1 limit=$2 t0=$SECONDS rc=0
  shift 2
  if (( SECONDS + limit > BUDGET )); then
    echo "== $name: skipped (${SECONDS} s gone, limit ${limit} s, budget ${BUDGET} s)" | tee -a "$OUT/summary.txt"
    return
  fi
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  tail -3 "$OUT/$name.log"
  grep -B2 -A10 "ERROR\|FAILED\|Error" "$OUT/$name.log" | head -30
}
part gpu_tests 90 $P/lldl_tests -ts=gpu
part host_tests 40 $P/lldl_tests -sf='*test_cuda_host*,*test_step_graph.cpp'
part bench_step_device 100 $P/bench_step_device --gpu-only
cp "$OUT/bench_step_device.log" "$OUT/bench_step_device.csv" 2>/dev/null
OMP_NUM_THREADS=8 part bench_cuda_quick 60 $P/bench_cuda --quick
OMP_NUM_THREADS=16 part cpu_suite_16thr 60 $P/lldl_tests -tse=gpu
for hook in bench/gpu_session.d/*.sh; do
  [[ -f $hook ]] || continue
  echo "== hook $hook"
  source "$hook"
done
PY=$PYDEV part python 150 bench/gpu_python_check.sh
echo "== session: $SECONDS s" | tee -a "$OUT/summary.txt"
