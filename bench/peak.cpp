#include "bench/peak.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "core/threads.h"

namespace lldl {

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best of a few float32 GEMMs, n = 1024 (2.1 GFLOP each): large enough that
// Eigen's blocking runs at full speed, small enough to take milliseconds.
double gemm_gflops() {
  const int n = 1024;
  using Mat = Eigen::MatrixXf;
  Mat A = Mat::Random(n, n), B = Mat::Random(n, n), C(n, n);
  C.noalias() = A * B;  // warm-up: page faults, thread start-up
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    auto t0 = Clock::now();
    C.noalias() = A * B;
    best = std::min(best, seconds(t0));
  }
  volatile float sink = C(0, 0);  // keep the product
  (void)sink;
  return 2.0 * n * n * n / best * 1e-9;
}

// Best of a few triads a = b + s c over 3 x 32 MB (STREAM's byte count:
// three arrays per pass, write-allocate traffic not counted). On machines
// whose last-level cache is larger than that, the figure includes the cache.
double triad_gbs() {
  const int64_t n = int64_t(8) << 20;
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
  const float s = 0.5f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {  // first touch by the threads that use it
    a[i] = 0.0f;
    b[i] = 1.0f;
    c[i] = 2.0f;
  }
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    auto t0 = Clock::now();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    best = std::min(best, seconds(t0));
  }
  volatile float sink = a[n / 2];
  (void)sink;
  return 3.0 * 4.0 * static_cast<double>(n) / best * 1e-9;
}

}  // namespace

const Peak& measure_peak(bool refresh) {
  static std::mutex mu;
  static std::map<int, Peak> cache;  // by thread count; std::map keeps references valid
  std::lock_guard<std::mutex> lock(mu);
  int threads = get_num_threads();
  auto it = cache.find(threads);
  if (it != cache.end() && !refresh) return it->second;
  Peak p;
  p.threads = threads;
  p.gflops = gemm_gflops();
  p.gbs = triad_gbs();
  cache[threads] = p;
  return cache[threads];
}

}  // namespace lldl
