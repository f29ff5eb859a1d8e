#!/usr/bin/env bash
# Builds the GPU checks' binaries on a machine without a GPU (nvcc is enough)
# and gathers them, with the CUDA runtime, into build-gpu-pack/ for carrying
# to a GPU machine, where bench/gpu_check.sh build-gpu-pack runs them (and
# bench/gpu_python_check.sh builds and tests the Python module there).
# Portable CPU code (x86-64-v3: AVX2 and FMA, no -march=native) and sm_90
# (Hopper: H100, H200) by default; LLDL_CUDA_ARCH overrides (e.g. "80;90").
# Without MPI (LLDL_MPI=OFF): the GPU machine may lack libmpi, and one GPU
# needs none (dist/ runs as one rank; the NCCL tests use NCCL's single rank).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DLLDL_NATIVE=OFF \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v3" -DCMAKE_CUDA_ARCHITECTURES="${LLDL_CUDA_ARCH:-90}" \
  -DLLDL_CUDA=ON -DLLDL_MPI=OFF -DLLDL_BUILD_PYTHON=OFF -DLLDL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-gpu -j "$(nproc)" --target lldl_tests bench_cuda study bench_step_device lldl-gpt
rm -rf build-gpu-pack
mkdir -p build-gpu-pack/lib
cp build-gpu/lldl_tests build-gpu/bench_cuda build-gpu/study build-gpu/bench_step_device \
  build-gpu/lldl-gpt build-gpu-pack/
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
du -sh build-gpu-pack
