#!/usr/bin/env bash
# On a GPU machine without the Debian -dev packages: builds cppapi for its
# Python ($PY, default python3) with the headers carried in build-gpu-pack/hdr
# (Eigen, nlohmann-json, zlib, pybind11; see bench/gpu_pack.sh) into
# build-dev/python, and runs tests/python/test_cuda.py (an MLP trained on the
# device from Python) and test_step_graph.py (a captured CUDA-graph step bit
# for bit against the eager one). Logs under $OUT.
set -u
H=build-gpu-pack/hdr
OUT=${OUT:-/tmp/out}
py=${PY:-$(command -v python3)}; echo "python: $py $($py --version 2>&1)"
inc=$($py -c 'import sysconfig; print(sysconfig.get_paths()["include"])'); echo "Python.h: $inc"; ls "$inc/Python.h" || exit 3
command -v g++ || exit 4; g++ --version | head -1
# Headers only, and only where missing: nothing installed is replaced.
put() { [ -e "$2/$(basename "$1")" ] || cp -r "$1" "$2/"; }
for f in $H/include/*; do put "$f" /usr/include; done
mkdir -p /usr/share/cmake
put $H/share/eigen3 /usr/share
put $H/share/nlohmann_json /usr/share/cmake
# pybind11: the device Python's own, else the pack's copy (headers and CMake files).
pyb=$($py -m pybind11 --cmakedir 2>/dev/null) || pyb=$PWD/$H/pybind11/share/cmake/pybind11
echo "pybind11: $pyb"
z=$(ls /usr/lib/x86_64-linux-gnu/libz.so* /lib/x86_64-linux-gnu/libz.so* 2>/dev/null | head -1); echo "zlib: $z"
t0=$SECONDS
cmake -S . -B build-dev -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLLDL_CUDA=ON \
  -DLLDL_BUILD_TESTS=OFF -DLLDL_BUILD_BENCH=OFF -DLLDL_BUILD_EXAMPLES=OFF -DLLDL_BUILD_APPS=OFF \
  -DPython_EXECUTABLE=$py -Dpybind11_DIR=$pyb -DZLIB_LIBRARY=$z -DZLIB_INCLUDE_DIR=/usr/include > $OUT/pycfg.log 2>&1 || { tail -20 $OUT/pycfg.log; exit 5; }
cmake --build build-dev -j"$(nproc)" --target cppapi > $OUT/pybuild.log 2>&1 || { grep -m5 -A3 error $OUT/pybuild.log; exit 6; }
echo "built in $((SECONDS - t0)) s"
PYTHONPATH=build-dev/python timeout 120 $py -m pytest -q -p no:cacheprovider -rs \
  tests/python/test_cuda.py tests/python/test_step_graph.py 2>&1 | tail -12
