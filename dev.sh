#!/usr/bin/env bash
# Sets up everything lldl needs, then runs it.
#
#   ./dev.sh run  [diabetes flags]   set up, then the examples: the seed's
#                                    diabetes.py, digits.py, diabetes.cpp,
#                                    and a char GPT trained on the fortunes
#   ./dev.sh test                    set up, then run every test
#
# Setup is idempotent and quick once done: missing apt packages (checked with
# dpkg-query first), the virtual environment .venv with requirements-dev.txt
# (re-installed only when that file changes), and a CMake build in build/
# (configured only when missing or configured differently). Works without a
# terminal (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)
VENV=$ROOT/.venv
PY=$VENV/bin/python
export DEBIAN_FRONTEND=noninteractive

APT_PACKAGES=(build-essential cmake libeigen3-dev doctest-dev libopenblas-dev zlib1g-dev
              nlohmann-json3-dev dataset-fashion-mnist fortunes openmpi-bin libopenmpi-dev)

say() { printf '==> %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@" || die "needs root for: $* (sudo -n failed)"
  else die "needs root for: $* (not root, no sudo)"
  fi
}

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

setup_apt() {
  local want=("${APT_PACKAGES[@]}") missing=() p
  # The venv needs python3's venv module (ensurepip) and the module build
  # needs its headers; Debian splits both out of python3.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then want+=(python3-venv); fi
  if ! python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
       >/dev/null 2>&1; then want+=(python3-dev); fi
  for p in "${want[@]}"; do is_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing apt packages: ${missing[*]}"
  as_root apt-get update -q </dev/null
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

setup_venv() {
  if [ ! -x "$PY" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp=$VENV/.requirements-dev.sha256 sum
  sum=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    say "pip install -r requirements-dev.txt"
    "$PY" -m pip install -q --disable-pip-version-check --no-input -r requirements-dev.txt </dev/null
    echo "$sum" >"$stamp"
  fi
}

# configure DIR ARGS...: runs cmake's configure step only when DIR has no
# cache or was configured with other arguments (recorded in DIR/.dev-args).
configure() {
  local dir=$1; shift
  local args="$*"
  if [ -f "$dir/CMakeCache.txt" ] && [ "$(cat "$dir/.dev-args" 2>/dev/null)" = "$args" ]; then
    return 0
  fi
  say "configuring $dir"
  cmake -S "$ROOT" -B "$dir" "$@"
  echo "$args" >"$dir/.dev-args"
}

setup_build() {
  local pybind11_dir
  pybind11_dir=$("$PY" -m pybind11 --cmakedir)
  configure build -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$PY" \
    -Dpybind11_DIR="$pybind11_dir"
  say "building build/"
  cmake --build build -j"$JOBS"
  # `import cppapi` in the venv finds build/python through a .pth file, so no
  # one sets paths by hand. A pip-installed lldl would shadow it: remove it.
  local site
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ "$(cat "$site/lldl-build.pth" 2>/dev/null)" != "$ROOT/build/python" ]; then
    echo "$ROOT/build/python" >"$site/lldl-build.pth"
  fi
  if "$PY" -m pip show -q lldl >/dev/null 2>&1; then
    say "removing the pip-installed lldl (build/python is used instead)"
    "$PY" -m pip uninstall -y -q lldl </dev/null
  fi
}

# GPT-2's real encoding, offline, from two PyPI source packages kept in
# .cache/sdists (gitignored; downloaded once, then only extracted when the
# files are missing): openai-whisper ships whisper/assets/gpt2.tiktoken (GPT-2's
# 50,256 ranks), llama-cpp-python ships llama.cpp's ggml-vocab-gpt-2.gguf with
# its test strings (.inp) and expected ids (.out), about 77 MB. Versions are
# pinned so the paths inside stay put. Without network the step warns and the
# tests that need the files skip, saying why.
GPT2_SDISTS=(openai-whisper==20250625 llama-cpp-python==0.3.36)
setup_gpt2_assets() {
  local sdists=$ROOT/.cache/sdists out=$ROOT/.cache/gpt2 spec name ver tgz
  mkdir -p "$sdists" "$out"
  for spec in "${GPT2_SDISTS[@]}"; do
    name=${spec%%==*}; ver=${spec##*==}
    tgz=$sdists/${name//-/_}-$ver.tar.gz
    case $name in
      openai-whisper) set -- "whisper/assets/gpt2.tiktoken" ;;
      llama-cpp-python) set -- "vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf" \
          "vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf.inp" "vendor/llama.cpp/models/ggml-vocab-gpt-2.gguf.out" ;;
    esac
    local f missing=0
    for f in "$@"; do [ -f "$out/$(basename "$f")" ] || missing=1; done
    [ "$missing" -eq 0 ] && continue
    if [ ! -f "$tgz" ]; then
      say "pip download $spec (sdist, for GPT-2's tokenizer files)"
      if ! "$PY" -m pip download -q --disable-pip-version-check --no-input --no-deps --no-binary :all: \
          "$spec" -d "$sdists" </dev/null; then
        say "warning: could not download $spec; the tests that need its files will skip"
        continue
      fi
    fi
    for f in "$@"; do
      tar -xzf "$tgz" -O "${name//-/_}-$ver/$f" >"$out/$(basename "$f").tmp" &&
        mv "$out/$(basename "$f").tmp" "$out/$(basename "$f")" ||
        { rm -f "$out/$(basename "$f").tmp"; die "$f not found in $tgz"; }
    done
  done
}

setup() {
  setup_apt
  setup_venv
  setup_gpt2_assets
  setup_build
}

sklearn_data_dir() {
  "$PY" -c 'import os, sklearn; print(os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data"))'
}

cmd_run() {
  setup
  say "the seed's example, unchanged (examples/diabetes.py)"
  (cd examples && "$PY" diabetes.py)
  say "digits: 64 -> 89 tanh -> 10, cross-entropy, SGD (examples/digits.py)"
  "$PY" examples/digits.py
  say "diabetes from C++ (examples/diabetes.cpp)"
  build/diabetes --data-dir "$(sklearn_data_dir)" "$@"
  # A GPT over byte-level BPE tokens (512, trained on the corpus in a few
  # seconds): 3000 steps take about 3.5 minutes on 2 cores (about 29,000
  # tokens/s) and reach a validation loss of about 3.06 nats/token, 1.61
  # nats/char (1.9 chars a token); the samples are mostly real words in
  # fortune-shaped lines. The character tokenizer at the same steps: 1.76
  # nats/char, and fewer real words. LLDL_GPT_STEPS sets another count.
  say "a GPT on the fortunes (byte-level BPE tokens): lldl-gpt train, then sample"
  build/lldl-gpt train --data /usr/share/games/fortunes --tokenizer bpe --bpe-vocab 512 \
    --steps "${LLDL_GPT_STEPS:-3000}" --out build/fortunes-gpt.safetensors --eval-every 250 </dev/null
  build/lldl-gpt sample --ckpt build/fortunes-gpt.safetensors --prompt "The " --tokens 400 </dev/null
}

cmd_test() {
  setup
  say "ctest (build/)"
  ctest --test-dir build --output-on-failure </dev/null

  # The same suite under AddressSanitizer + UndefinedBehaviorSanitizer, with
  # leak checking. libgomp (GCC 12) reports no leaks here, so nothing is
  # suppressed; should it ever, suppress only leaks inside libgomp
  # (leak:libgomp.so in an LSAN_OPTIONS suppressions file), nothing wider.
  # It is built without CUDA (nvcc code is not sanitised anyway), so CI also
  # covers the build that lacks the backend: its stubs and error messages;
  # build/ covers the one with it (compiled, GPU tests skipped without a GPU).
  say "sanitizer build (build-asan/)"
  configure build-asan -DLLDL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLDL_CUDA=OFF \
    -DLLDL_BUILD_BENCH=OFF -DLLDL_BUILD_EXAMPLES=OFF -DLLDL_BUILD_PYTHON=OFF
  cmake --build build-asan -j"$JOBS" --target lldl_tests
  say "lldl_tests under ASan/UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build-asan/lldl_tests </dev/null

  # ---- Python tests (pytest) ---------------------------------------------
  # Runs once tests/python exists; the module cppapi is built into
  # build/python. pytest's exit code 5 means "no tests collected".
  if [ -d tests/python ]; then
    say "pytest tests/python"
    local rc=0
    "$PY" -m pytest -q tests/python </dev/null || rc=$?
    if [ "$rc" -eq 5 ]; then say "pytest: no tests collected"
    elif [ "$rc" -ne 0 ]; then die "pytest failed (exit $rc)"
    fi
  fi
  # -------------------------------------------------------------------------
  say "all tests passed"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; [ $# -eq 0 ] || die "test takes no arguments"; cmd_test ;;
  *) die "usage: ./dev.sh run [diabetes flags] | ./dev.sh test" ;;
esac
