#!/usr/bin/env bash
# Weight formats for generation (issue 18; not part of CI): lldl's fp32, bf16
# and int8 decode of the random-weight GPT-2 124M against the triad
# bandwidth roofline and against llama.cpp at F32, BF16 and Q8_0.
#
#   flock /work/notes/big.lock bench/lowp_vs_llama.sh   # THREADS=2 REPEATS=5
#
# 1. bench/llama_cpp_anchor.sh PREP_ONLY=1: llama-bench built from the
#    llama-cpp-python sdist, the random 124M HF directory, its F32 GGUF;
# 2. BF16 and Q8_0 GGUFs of the same directory (convert_hf_to_gguf.py
#    --outtype bf16 / q8_0: the same weights, rounded / quantised by llama.cpp);
# 3. REPEATS rounds; each round runs, in an order rotated per round, for every
#    format: one lldl process (OMP_NUM_THREADS set before import; 32-token
#    prompt + 128 new tokens, greedy: bench/lowp_vs_llama.py once) and one
#    llama-bench -p 0 -n 128 -d 32 -r 1 (128 tokens after a 32-token context);
# 4. the table: medians and ranges, bytes of weights per token
#    (GPT.inference_weight_bytes), achieved GB/s = bytes x tokens/s, fraction
#    of the roofline (triad GB/s / bytes per token), speed-ups, ratios.
# Output: bench/results/cpu-2core/lowp_vs_llama.{txt,jsonl,json}
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
export PYTHONPATH=${PYTHONPATH:-$ROOT/build/python}
THREADS=${THREADS:-2}
REPEATS=${REPEATS:-5}
LCPP=$ROOT/.cache/llama.cpp
BENCH=$LCPP/build/bin/llama-bench
HF=$ROOT/.cache/anchor/gpt2-random
OUT=$ROOT/bench/results/cpu-2core/lowp_vs_llama
say() { echo "== $*" >&2; }

PREP_ONLY=1 bash bench/llama_cpp_anchor.sh
declare -A GGUF=([fp32]=$ROOT/.cache/anchor/gpt2-random-f32.gguf
                 [bf16]=$ROOT/.cache/anchor/gpt2-random-bf16.gguf
                 [int8]=$ROOT/.cache/anchor/gpt2-random-q8_0.gguf)
declare -A OUTTYPE=([bf16]=bf16 [int8]=q8_0)
for p in bf16 int8; do
  if [ ! -f "${GGUF[$p]}" ]; then
    say "converting to ${OUTTYPE[$p]} GGUF"
    "$PY" "$LCPP/convert_hf_to_gguf.py" "$HF" --outtype "${OUTTYPE[$p]}" --outfile "${GGUF[$p]}" 2>&1 | tail -2 >&2
  fi
done

: >"$OUT.jsonl"
FORMATS=(fp32 bf16 int8)
for ((r = 0; r < REPEATS; ++r)); do
  for ((i = 0; i < 3; ++i)); do
    p=${FORMATS[$(((i + r) % 3))]}
    say "round $((r + 1))/$REPEATS: $p"
    OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS \
      "$PY" bench/lowp_vs_llama.py once "$HF" "$p" | tail -1 >>"$OUT.jsonl"
    tps=$("$BENCH" -m "${GGUF[$p]}" -p 0 -n 128 -d 32 -t "$THREADS" -r 1 -o json 2>/dev/null |
          "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')
    echo "{\"kind\": \"llama.cpp\", \"precision\": \"$p\", \"tps\": $tps}" >>"$OUT.jsonl"
  done
done
{
  echo "# lldl weight formats vs the triad roofline and llama.cpp (bench/lowp_vs_llama.sh)"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "# lldl $(git -C "$ROOT" rev-parse --short HEAD), cpu isa $("$PY" -c 'import cppapi; print(cppapi.cpu_isa())'), $THREADS threads, $REPEATS rounds; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# model: random GPT-2 124M (bench/llama_cpp_anchor.py make-hf); llama.cpp: llama-bench -p 0 -n 128 -d 32 -r 1 per round, GGUF F32 / BF16 / Q8_0"
  echo
  "$PY" bench/lowp_vs_llama.py table "$OUT.jsonl"
} | tee "$OUT.txt"
