#!/usr/bin/env bash
# The inference anchor (issue 14; not part of CI): llama.cpp's llama-bench and
# lldl generating with the same random-weight GPT-2 124M, F32, on the CPU.
#
#   bench/llama_cpp_anchor.sh            # THREADS="2 1" REPEATS=5 by default
#
# 1. llama.cpp from the llama-cpp-python==0.3.36 sdist (pip download
#    --no-binary :all: into .cache/sdists, reused if there; dev.sh puts it
#    there too), its vendored llama.cpp extracted into .cache/llama.cpp
#    (gitignored; nothing of it enters the repository);
# 2. only llama-bench built there (Release, CPU, GGML_NATIVE, no CURL/OpenSSL,
#    -j2); skipped when the binary exists;
# 3. a Hugging Face directory .cache/anchor/gpt2-random: GPT2LMHeadModel(
#    GPT2Config()) after torch.manual_seed(0), with GPT-2's tokenizer
#    (vocab.json, merges.txt, tokenizer.json) recovered from whisper's
#    gpt2.tiktoken (.cache/gpt2, dev.sh's step; downloaded here otherwise),
#    converted with the sdist's convert_hf_to_gguf.py --outtype f32;
# 4. llama-bench -m model.gguf -p 0 -n 128 -r 5 -t T (tg128: 128 tokens
#    generated one at a time from an empty context, prompt processing not
#    included; tokens/s, mean +- std of 5 runs), and again at depth 32
#    (-d 32: the same 128 tokens after a 32-token context, as lldl's);
# 5. lldl on the same directory (cppapi.GPT.from_pretrained): 128 new tokens
#    after a 32-token prompt, batch 1, greedy, one process per repeat,
#    OMP_NUM_THREADS=T set before import, median and range; both the whole
#    call (prefill included, as in gpt2_vs_torch.py) and decode only.
# Output: bench/results/cpu-2core/llama_cpp_anchor.txt
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
export PYTHONPATH=${PYTHONPATH:-$ROOT/build/python}
THREADS=${THREADS:-"2 1"}
REPEATS=${REPEATS:-5}
VER=0.3.36
SDISTS=$ROOT/.cache/sdists
TGZ=$SDISTS/llama_cpp_python-$VER.tar.gz
LCPP=$ROOT/.cache/llama.cpp
BENCH=$LCPP/build/bin/llama-bench
HF=$ROOT/.cache/anchor/gpt2-random
GGUF=$ROOT/.cache/anchor/gpt2-random-f32.gguf
TIK=$ROOT/.cache/gpt2/gpt2.tiktoken
OUT=$ROOT/bench/results/cpu-2core/llama_cpp_anchor.txt
say() { echo "== $*" >&2; }

mkdir -p "$SDISTS" "$(dirname "$OUT")" "$ROOT/.cache/anchor"
if [ ! -f "$TGZ" ]; then
  say "pip download llama-cpp-python==$VER (sdist)"
  "$PY" -m pip download -q --disable-pip-version-check --no-input --no-deps --no-binary :all: \
    "llama-cpp-python==$VER" -d "$SDISTS"
fi
if [ ! -f "$LCPP/CMakeLists.txt" ]; then
  say "extracting vendor/llama.cpp into $LCPP"
  tmp=$(mktemp -d "$ROOT/.cache/llama.XXXXXX")
  tar -xzf "$TGZ" -C "$tmp" "llama_cpp_python-$VER/vendor/llama.cpp"
  rm -rf "$LCPP"; mv "$tmp/llama_cpp_python-$VER/vendor/llama.cpp" "$LCPP"; rm -rf "$tmp"
fi
if [ ! -x "$BENCH" ]; then
  say "building llama-bench (a few minutes on 2 cores)"
  cmake -S "$LCPP" -B "$LCPP/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >/dev/null
  cmake --build "$LCPP/build" --target llama-bench -j2 >/dev/null
fi
if [ ! -f "$TIK" ]; then
  say "pip download openai-whisper==20250625 (sdist, for gpt2.tiktoken)"
  [ -f "$SDISTS/openai_whisper-20250625.tar.gz" ] ||
    "$PY" -m pip download -q --disable-pip-version-check --no-input --no-deps --no-binary :all: \
      openai-whisper==20250625 -d "$SDISTS"
  mkdir -p "$(dirname "$TIK")"
  tar -xzf "$SDISTS/openai_whisper-20250625.tar.gz" -O \
    openai_whisper-20250625/whisper/assets/gpt2.tiktoken >"$TIK"
fi
if [ ! -f "$HF/model.safetensors" ]; then
  say "writing the random GPT-2 124M directory $HF"
  "$PY" bench/llama_cpp_anchor.py make-hf "$HF" "$TIK"
fi
if [ ! -f "$GGUF" ]; then
  say "converting to F32 GGUF with the sdist's convert_hf_to_gguf.py"
  "$PY" "$LCPP/convert_hf_to_gguf.py" "$HF" --outtype f32 --outfile "$GGUF" 2>&1 | tail -3 >&2
fi

# PREP_ONLY=1: stop here, everything built and converted (bench/lowp_vs_llama.sh
# reuses the build and the model this way).
[ "${PREP_ONLY:-0}" = 1 ] && exit 0

{
  echo "# The inference anchor: llama.cpp (llama-cpp-python==$VER's vendored copy) vs lldl"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "# model: random GPT-2 124M (transformers GPT2Config(), torch seed 0), F32; GGUF from convert_hf_to_gguf.py --outtype f32"
  echo "# lldl: $(git -C "$ROOT" rev-parse --short HEAD), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$OUT"
for t in $THREADS; do
  say "llama-bench, $t thread(s)"
  {
    echo "## llama-bench -m gpt2-random-f32.gguf -p 0 -n 128 -t $t -r $REPEATS"
    "$BENCH" -m "$GGUF" -p 0 -n 128 -t "$t" -r "$REPEATS" 2>&1 | grep '^|'
    echo
    echo "## llama-bench -m gpt2-random-f32.gguf -p 0 -n 128 -d 32 -t $t -r $REPEATS"
    "$BENCH" -m "$GGUF" -p 0 -n 128 -d 32 -t "$t" -r "$REPEATS" 2>&1 | grep '^|'
    echo
  } | tee -a "$OUT"
done
for t in $THREADS; do
  say "lldl, $t thread(s)"
  { echo "## lldl: cppapi.GPT.from_pretrained, generate(32-token prompt, 128 new, greedy), OMP_NUM_THREADS=$t"
    "$PY" bench/llama_cpp_anchor.py lldl "$HF" "$REPEATS" "$t"
    echo; } | tee -a "$OUT"
done
"$PY" - "$OUT" <<'PYEOF' | tee -a "$OUT"
import json, re, sys
text = open(sys.argv[1]).read()
lldl = {r["threads"]: r for r in map(json.loads, re.findall(r"^RESULT (.*)$", text, re.M))}
llama = {}
for block in re.split(r"^## ", text, flags=re.M):
    m = re.match(r"llama-bench .* -t (\d+) ", block)
    if not m:
        continue
    depth = 32 if " -d 32 " in block.splitlines()[0] else 0
    for line in block.splitlines():
        g = re.search(r"\|\s*tg128(?: @ d32)?\s*\|\s*([\d.]+) ± ([\d.]+)", line)
        if g:
            llama[(int(m.group(1)), depth)] = float(g.group(1))
print("## ratios lldl / llama.cpp (tokens/s over tokens/s)")
for t in sorted(lldl):
    r = lldl[t]
    a, b = llama.get((t, 0)), llama.get((t, 32))
    if a and b:
        print(f"{t} thread(s): lldl decode-only {r['decode']:.1f} / llama.cpp tg128 @ d32 {b:.1f} = {r['decode'] / b:.2f}x; "
              f"lldl whole call {r['whole']:.1f} / llama.cpp tg128 {a:.1f} = {r['whole'] / a:.2f}x")
PYEOF
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
say "wrote $OUT"
