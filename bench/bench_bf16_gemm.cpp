// The bf16 GEMM of mixed-precision training (backends/cpu/bf16_gemm.cpp)
// against the float32 products that the float32 path runs (product() in
// backends/cpu/common.h: Eigen's GEMM at these sizes), on every matrix
// product of a GPT-2 124M training step at batch 4 x 256 (M = 1024 rows):
// the median and range of 5 timings (each the mean of `calls` calls), and
// the largest difference of the bf16 result from float32's, relative to the
// largest float32 value.
//
//   build/bench_bf16_gemm [threads (2)] [calls (3)]
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "backends/cpu/bf16_gemm.h"
#include "backends/lowp_isa.h"
#include "backends/cpu/common.h"
#include "core/threads.h"

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Timing {
  double median, lo, hi;
};

Timing time_it(const std::function<void()>& f, int calls) {
  f();
  std::vector<double> t;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) f();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    t.push_back(dt.count() / calls);
  }
  std::sort(t.begin(), t.end());
  return {t[2], t[0], t[4]};
}

double total_fp32 = 0, total_bf16 = 0;

// C (m x n) = op(A) op(B), op a transpose where ta / tb.
void row(const char* what, int64_t m, int64_t n, int64_t k, bool ta, bool tb, int calls) {
  const Mat A = ta ? Mat(Mat::Random(k, m)) : Mat(Mat::Random(m, k));
  const Mat B = tb ? Mat(Mat::Random(n, k)) : Mat(Mat::Random(k, n));
  Mat cf(m, n), cb(m, n);
  using lldl::cpu::Map;
  Map<float> CF(cf.data(), m, n);
  const Timing tf = time_it([&] {
    if (ta && tb) lldl::cpu::product(CF, A.transpose(), B.transpose(), false);
    else if (ta) lldl::cpu::product(CF, A.transpose(), B, false);
    else if (tb) lldl::cpu::product(CF, A, B.transpose(), false);
    else lldl::cpu::product(CF, A, B, false);
  }, calls);
  const int64_t as_i = ta ? 1 : k, as_k = ta ? m : 1, bs_k = tb ? 1 : n, bs_j = tb ? k : 1;
  const Timing tb16 = time_it([&] {
    lldl::cpu::bf16_gemm(m, n, k, A.data(), as_i, as_k, B.data(), bs_k, bs_j, cb.data(), n, false);
  }, calls);
  const double diff = (cf - cb).cwiseAbs().maxCoeff() / cf.cwiseAbs().maxCoeff();
  const double gf = 2.0 * double(m) * double(n) * double(k) / 1e9;
  total_fp32 += tf.median;
  total_bf16 += tb16.median;
  std::printf("%-20s %6lld %6lld %6lld  %c%c  %7.1f [%5.1f-%5.1f] %7.1f [%5.1f-%5.1f]  %5.2f  %.1e\n",
              what, (long long)m, (long long)n, (long long)k, ta ? 'T' : 'N', tb ? 'T' : 'N',
              gf / tf.median, gf / tf.hi, gf / tf.lo, gf / tb16.median, gf / tb16.hi,
              gf / tb16.lo, tf.median / tb16.median, diff);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int calls = argc > 2 ? std::atoi(argv[2]) : 3;
  lldl::set_num_threads(threads);
  std::printf("threads %d, bf16 kernel %s; GFLOP/s median [range] of 5, speed-up = fp32 time / "
              "bf16 time\n", threads, lldl::cpu_isa_name(lldl::cpu_isa()));
  std::printf("%-20s %6s %6s %6s  op  %23s %23s  %5s  %s\n", "product", "M", "N", "K", "fp32",
              "bf16", "speed", "max rel diff");
  const int64_t BT = 1024, C = 768, V = 50257;
  row("c_attn forward", BT, 3 * C, C, false, false, calls);
  row("c_attn dx", BT, C, 3 * C, false, true, calls);
  row("c_attn dW", C, 3 * C, BT, true, false, calls);
  row("attn proj forward", BT, C, C, false, false, calls);
  row("attn proj dx", BT, C, C, false, true, calls);
  row("attn proj dW", C, C, BT, true, false, calls);
  row("c_fc forward", BT, 4 * C, C, false, false, calls);
  row("c_fc dx", BT, C, 4 * C, false, true, calls);
  row("c_fc dW", C, 4 * C, BT, true, false, calls);
  row("mlp proj forward", BT, C, 4 * C, false, false, calls);
  row("mlp proj dx", BT, 4 * C, C, false, true, calls);
  row("mlp proj dW", 4 * C, C, BT, true, false, calls);
  if (!std::getenv("LLDL_BENCH_NO_HEAD")) {
    row("lm head forward", BT, V, C, false, true, 1);
    row("lm head dx", BT, C, V, false, false, 1);
    row("lm head dE", V, C, BT, true, false, 1);
  }
  std::printf("sum of medians: fp32 %.1f ms, bf16 %.1f ms, speed-up %.2f\n", total_fp32 * 1e3,
              total_bf16 * 1e3, total_fp32 / total_bf16);
  return 0;
}
