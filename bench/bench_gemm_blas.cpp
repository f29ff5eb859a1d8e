// Eigen's GEMM (what the engine's matmul uses) against OpenBLAS sgemm on the
// same row-major float32 buffers, square n = 128 ... 2048, in one run.
// Thread counts follow OMP_NUM_THREADS (Eigen) and OPENBLAS_NUM_THREADS
// (OpenBLAS); set both to the same value:
//
//   OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 build/bench_gemm_blas
//
// This is the measurement behind the choice of the default GEMM (issue 7).
// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) identifies this workplace's
// virtualised Xeon as "Prescott" and runs its generic SSE3 kernel: about
// 20-45 GFLOP/s, 4-6x slower than Eigen. Forcing OPENBLAS_CORETYPE=SKYLAKEX
// gives roughly Eigen's speed (0.86-0.94x Eigen's time at 1 thread), but
// forcing a core type is what this workplace warns can give wrong results
// with old OpenBLAS builds, so Eigen's GEMM stays the engine's default.
#include <cblas.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class F>
double median_seconds(F&& f, int reps) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  std::printf("GEMM float32 C = A B, row-major n x n; Eigen threads %d, OPENBLAS_NUM_THREADS=%s\n",
              lldl::get_num_threads(),
              std::getenv("OPENBLAS_NUM_THREADS") ? std::getenv("OPENBLAS_NUM_THREADS") : "(unset)");
  std::printf("%6s | %12s %14s %8s\n", "n", "Eigen GF/s", "OpenBLAS GF/s", "E/O");
  lldl::Rng rng(1);
  for (int n : {128, 256, 512, 1024, 2048}) {
    Mat A(n, n), B(n, n), C(n, n);
    for (int i = 0; i < n * n; ++i) {
      A.data()[i] = float(rng.uniform(-1, 1));
      B.data()[i] = float(rng.uniform(-1, 1));
    }
    int reps = n <= 512 ? 30 : 7;
    double flops = 2.0 * n * n * double(n);
    double te = median_seconds([&] { C.noalias() = A * B; }, reps);
    double to = median_seconds([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A.data(), n, B.data(),
                  n, 0.0f, C.data(), n);
    }, reps);
    std::printf("%6d | %12.1f %14.1f %8.3f\n", n, flops / te * 1e-9, flops / to * 1e-9, to / te);
  }
  return 0;
}
