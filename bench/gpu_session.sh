#!/bin/bash
# One device session: the gpu suite (Linear's first run on a GPU), the whole
# CPU suite at 16 threads from the x86-64-v3 build (tile.h's 32-byte path),
# and GPT / LSTM training steps at 1..16 threads.
set -u
P=${P:-build-gpu-pack}  # from bench/gpu_pack.sh, carried to the GPU machine
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /usr/share/games && cp -r $P/fortunes /usr/share/games/ 2>/dev/null
libs="$P/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [[ -d $d ]] && libs="$libs:$d"; done
for f in $(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -3); do libs="$libs:$(dirname "$f")"; done
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}" OPENBLAS_NUM_THREADS=1
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/device.txt"; nproc | tee -a "$OUT/device.txt"
t0=$SECONDS; timeout 150 $P/lldl_tests -ts=gpu > "$OUT/gpu_tests.log" 2>&1; echo "gpu suite rc $? $((SECONDS-t0)) s"; tail -3 "$OUT/gpu_tests.log"
grep -B2 -A10 "ERROR" "$OUT/gpu_tests.log" | head -40
t0=$SECONDS; OMP_NUM_THREADS=16 timeout 180 $P/lldl_tests -tse=gpu > "$OUT/cpu16.log" 2>&1; echo "cpu suite 16 thr rc $? $((SECONDS-t0)) s"; tail -3 "$OUT/cpu16.log"
grep -B2 -A10 "ERROR" "$OUT/cpu16.log" | head -40
for m in gpt lstm; do for t in 1 2 4 8 16; do
  extra=""; [[ $m == lstm ]] && extra="--batch 32 --block 64"
  OMP_NUM_THREADS=$t timeout 30 $P/lldl-gpt train --model $m $extra --data /usr/share/games/fortunes --steps 30 --out /tmp/x.st --eval-every 1000 --eval-batches 1 --threads $t 2>&1 | grep -E "trained" | sed "s/^/$m $t thr: /" | tee -a "$OUT/threads.txt"
done; done
