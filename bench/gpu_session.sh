#!/bin/bash
# One device session, as one short command: the gpu suite (every op kind,
# silu included, in both tiers against the CPU, through the device table that
# Graph and the optimisers now use), the host-emulated kernel tests, the whole
# CPU suite at 16 threads from the x86-64-v3 build, whole MLP steps CPU
# against GPU, and bench_cuda's large examples. Binaries from
# bench/gpu_pack.sh, carried to the GPU machine as build-gpu-pack/.
#
#   OUT=dir bench/gpu_session.sh     (P=pack dir, default build-gpu-pack)
set -u
P=${P:-build-gpu-pack}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /usr/share/games && cp -r $P/fortunes /usr/share/games/ 2>/dev/null
libs="$P/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [[ -d $d ]] && libs="$libs:$d"; done
for f in $(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -3); do libs="$libs:$(dirname "$f")"; done
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}" OPENBLAS_NUM_THREADS=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$OUT/device.txt"
run() {  # run NAME SECONDS CMD...: CMD under a limit, its output in $OUT/NAME.log
  local name=$1 limit=$2 t0=$SECONDS rc=0
  shift 2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s"; tail -3 "$OUT/$name.log"
  grep -B2 -A10 "ERROR" "$OUT/$name.log" | head -30
}
run gpu_tests 150 $P/lldl_tests -ts=gpu
run host_tests 60 $P/lldl_tests -sf='*test_cuda_host*'
OMP_NUM_THREADS=16 run cpu_suite_16thr 200 $P/lldl_tests -tse=gpu
run bench_step_device 90 $P/bench_step_device
OMP_NUM_THREADS=8 run bench_cuda_quick 100 $P/bench_cuda --quick
# GPT-2 124M training (batch 8 x 1024, tf32 and bf16) and KV-cache generation,
# lldl-gpt --device cuda against PyTorch eager and torch.compile on this GPU
# (the device's own torch); cut at 235 s whatever happens.
run gpt2_gpu_vs_torch 250 /opt/torch/.venv/bin/python3 bench/gpt2_gpu_vs_torch.py \
  --lldl-gpt $P/lldl-gpt --out "$OUT/gpt2_gpu_vs_torch.json" --deadline 235
