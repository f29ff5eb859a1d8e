#include "core/profiler.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/threads.h"

namespace lldl {

int64_t Profile::total_ns() const {
  int64_t t = 0;
  for (auto& b : rows)
    for (auto& k : b)
      for (const ProfileRow& r : k) t += r.ns;
  return t;
}

int64_t Profile::total_calls() const {
  int64_t n = 0;
  for (auto& b : rows)
    for (auto& k : b)
      for (const ProfileRow& r : k) n += r.calls;
  return n;
}

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

Roofline roofline(const ProfileRow& r, const Peak& peak) {
  Roofline f;
  f.intensity = r.bytes > 0 ? r.flops / r.bytes : 0.0;
  f.attainable = std::min(peak.gflops, f.intensity * peak.gbs);
  f.fraction = f.attainable > 0 ? r.gflops() / f.attainable : 0.0;
  f.memory_bound = f.intensity < peak.ridge();
  return f;
}

std::string profile_table(const Profile& p, const Peak* peak) {
  struct Item {
    Backend b;
    OpKind k;
    Phase ph;
    const ProfileRow* r;
  };
  std::vector<Item> items;
  for (int b = 0; b < kBackendCount; ++b)
    for (int k = 0; k < kOpCount; ++k)
      for (int ph = 0; ph < kPhaseCount; ++ph) {
        const ProfileRow& r = p.rows[b][k][ph];
        if (r.calls) items.push_back({Backend(b), OpKind(k), Phase(ph), &r});
      }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.r->ns > y.r->ns; });
  const double total = static_cast<double>(p.total_ns());
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %-5s %-8s %9s %11s %10s %6s %9s %8s", "op", "dev",
                "phase", "calls", "total ms", "us/call", "%", "GFLOP/s", "GB/s");
  out += line;
  if (peak) out += "  FLOP/B  bound    % roof";
  out += "\n";
  for (const Item& it : items) {
    const ProfileRow& r = *it.r;
    std::snprintf(line, sizeof line, "%-22s %-5s %-8s %9lld %11.3f %10.2f %6.1f %9.2f %8.2f",
                  op_name(it.k), backend_name(it.b), phase_name(it.ph),
                  static_cast<long long>(r.calls), r.ns * 1e-6, r.ns * 1e-3 / r.calls,
                  total > 0 ? 100.0 * r.ns / total : 0.0, r.gflops(), r.gbs());
    out += line;
    if (peak) {
      Roofline f = roofline(r, *peak);
      std::snprintf(line, sizeof line, "  %6.2f  %-7s %6.1f", f.intensity,
                    f.memory_bound ? "memory" : "compute", 100.0 * f.fraction);
      out += line;
    }
    out += "\n";
  }
  std::snprintf(line, sizeof line, "total: %lld kernel calls, %.3f ms", 
                static_cast<long long>(p.total_calls()), total * 1e-6);
  out += line;
  if (peak) {
    std::snprintf(line, sizeof line, "; peak at %d thread(s): %.1f GFLOP/s (GEMM), %.1f GB/s "
                  "(triad), ridge %.1f FLOP/B", peak->threads, peak->gflops, peak->gbs,
                  peak->ridge());
    out += line;
  }
  out += "\n";
  return out;
}

}  // namespace lldl
