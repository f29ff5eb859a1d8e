// Throughput of the low-precision weight kernels (backends/lowp.h) on one
// GPT-2 124M block's matrices plus its LM head, per ISA level and format:
// decode (1 row) GB/s of weights read and prefill (32 rows) GFLOP/s.
//
//   build/bench_lowp [reps (20)]      # OMP_NUM_THREADS / LLDL_NUM_THREADS apply
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backends/lowp.h"
#include "core/rng.h"

using namespace lldl;

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
  struct Shape { int64_t n, k; };
  // 12 blocks' worth of weights (fc, proj, attn, mlp) + the head: larger than any cache.
  std::vector<Shape> shapes;
  for (int l = 0; l < 12; ++l) shapes.insert(shapes.end(), {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}});
  shapes.push_back({50257, 768});
  Rng r(1);
  std::vector<float> x(32 * 3072), y(32 * 50257);
  for (float& v : x) v = static_cast<float>(r.normal());
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Q8}) {
    std::vector<LowpMatrix> ms;
    int64_t bytes = 0, macs = 0;
    for (const Shape& s : shapes) {
      std::vector<float> w(static_cast<size_t>(s.n * s.k));
      for (float& v : w) v = static_cast<float>(r.normal()) * 0.02f;
      ms.push_back(lowp_pack(w.data(), s.n, s.k, false, f, "w"));
      bytes += static_cast<int64_t>(ms.back().bytes());
      macs += s.n * s.k;
    }
    for (int isa = static_cast<int>(cpu_isa_detected()); isa >= 1; --isa) {
      set_cpu_isa(CpuIsa(isa));
      for (int64_t rows : {1, 32}) {
        double best = 1e30;
        for (int rep = 0; rep < reps; ++rep) {
          auto t0 = std::chrono::steady_clock::now();
          for (const LowpMatrix& m : ms) lowp_matmul(x.data(), rows, m.cols, m, nullptr, y.data(), m.rows);
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::printf("%-5s %-11s rows %2lld: %7.2f ms  %6.1f GB/s of weights  %6.1f GFLOP/s\n",
                    weight_format_name(f), cpu_isa_name(CpuIsa(isa)), (long long)rows, best * 1e3,
                    bytes / best * 1e-9, 2.0 * macs * rows / best * 1e-9);
      }
    }
  }
}
