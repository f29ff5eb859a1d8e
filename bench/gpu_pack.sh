#!/usr/bin/env bash
# Builds the GPU checks' binaries on a machine without a GPU (nvcc is enough)
# and gathers them, with the CUDA runtime, into build-gpu-pack/ for carrying
# to a GPU machine, where bench/gpu_session.sh runs them (one prepared
# session: see there), bench/gpu_check.sh build-gpu-pack the longer sweep.
# Portable CPU code (x86-64-v3: AVX2 and FMA, no -march=native) and sm_90
# (Hopper: H100, H200) by default; LLDL_CUDA_ARCH overrides (e.g. "80;90").
#
#   bench/gpu_pack.sh                 # build-gpu/ -> build-gpu-pack/
#   bench/gpu_pack.sh --verify-archs  # also: the whole tree (every target)
#                                     # compiles for sm_80 and sm_90, in
#                                     # build-gpu-8090/ (nothing packed)
#
# The pack also carries what the device needs to build the Python module
# there for its own Python (bench/gpu_python_check.sh): Eigen, nlohmann-json
# and zlib headers, and pybind11's headers and CMake files (version-free).
# Carried with the `device` tool it must stay under 64 MiB: the script
# prints its size and fails above that.
# Without MPI (LLDL_MPI=OFF): the GPU machine may lack libmpi, and one GPU
# needs none (dist/ runs as one rank; the NCCL tests use NCCL's single rank).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
targets=(lldl_tests bench_cuda study bench_step_device lldl-gpt)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DLLDL_NATIVE=OFF \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v3" -DCMAKE_CUDA_ARCHITECTURES="${LLDL_CUDA_ARCH:-90}" \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache \
  -DLLDL_CUDA=ON -DLLDL_MPI=OFF -DLLDL_BUILD_PYTHON=OFF -DLLDL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-gpu -j "$(nproc)" --target "${targets[@]}"
if [[ ${1:-} == --verify-archs ]]; then
  # Everything, Python module included, for both architectures: proof that
  # the kernels compile for sm_80 too (no GPU of that kind is lent here).
  cmake -S . -B build-gpu-8090 -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="80;90" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache -DLLDL_CUDA=ON \
    -DPython_EXECUTABLE="$PY" -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" >/dev/null
  cmake --build build-gpu-8090 -j "$(nproc)"
  echo "build-gpu-8090: every target compiled for sm_80 and sm_90"
fi
rm -rf build-gpu-pack
mkdir -p build-gpu-pack/lib
for t in "${targets[@]}"; do cp "build-gpu/$t" build-gpu-pack/; done
strip build-gpu-pack/* 2>/dev/null || true
# The fortunes, for the tests and lldl-gpt runs there (bench/gpu_session.sh).
[[ -d /usr/share/games/fortunes ]] && cp -r /usr/share/games/fortunes build-gpu-pack/
cudart=$(ldd build-gpu/lldl_tests | awk '/libcudart/ {print $3}')
[[ -n $cudart ]] && cp -L "$cudart" build-gpu-pack/lib/
# Headers for bench/gpu_python_check.sh, which builds the Python module on a
# GPU machine that lacks the Debian -dev packages.
mkdir -p build-gpu-pack/hdr/include build-gpu-pack/hdr/share
cp -r /usr/include/eigen3 /usr/include/nlohmann /usr/include/zlib.h /usr/include/zconf.h \
  build-gpu-pack/hdr/include/
cp -r /usr/share/eigen3 /usr/share/cmake/nlohmann_json build-gpu-pack/hdr/share/
pyb=$($PY -c 'import pybind11, os; print(os.path.dirname(pybind11.__file__))' 2>/dev/null || true)
[[ -n $pyb ]] && cp -r "$pyb" build-gpu-pack/hdr/pybind11
du -sh build-gpu-pack
kib=$(du -sk build-gpu-pack | cut -f1)
if (( kib > 60 * 1024 )); then
  echo "build-gpu-pack is ${kib} KiB: over the device tool's 64 MiB carry limit" >&2
  exit 1
fi
