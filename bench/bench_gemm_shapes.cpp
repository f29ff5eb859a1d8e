// The CPU backend's two large-product paths side by side on the shapes the
// models run (backends/cpu/common.h, product()): Eigen's GEMM and
// tiled_gemm (backends/cpu/tiled_gemm.cpp), same row-major float32 buffers,
// the best of 5 timings of 10 calls each, and the largest difference between
// the two results. The rule in product() (tiled below 768 in some
// dimension, Eigen above) comes from this table:
//
//   build/bench_gemm_shapes [threads (2)]
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "backends/cpu/common.h"
#include "core/threads.h"

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

double best_seconds(const std::function<void()>& f) {
  for (int i = 0; i < 3; ++i) f();
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) f();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    best = std::min(best, dt.count() / 10);
  }
  return best;
}

// C (m x n) = op(A) op(B), op a transpose where ta / tb.
void row(const char* what, int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  const Mat A = ta ? Mat(Mat::Random(k, m)) : Mat(Mat::Random(m, k));
  const Mat B = tb ? Mat(Mat::Random(n, k)) : Mat(Mat::Random(k, n));
  Mat ce(m, n), ct(m, n);
  const double te = best_seconds([&] {
    if (ta && tb) ce.noalias() = A.transpose() * B.transpose();
    else if (ta) ce.noalias() = A.transpose() * B;
    else if (tb) ce.noalias() = A * B.transpose();
    else ce.noalias() = A * B;
  });
  const int64_t as_i = ta ? 1 : k, as_k = ta ? m : 1, bs_k = tb ? 1 : n, bs_j = tb ? k : 1;
  const double tt = best_seconds([&] {
    lldl::cpu::tiled_gemm<float>(m, n, k, A.data(), as_i, as_k, B.data(), bs_k, bs_j, ct.data(), n,
                                 false);
  });
  const double diff = (ce - ct).cwiseAbs().maxCoeff() / (1 + ce.cwiseAbs().maxCoeff());
  const double gf = 2.0 * double(m) * double(n) * double(k) / 1e9;
  std::printf("%-24s %6lld %5lld %6lld  %c%c  %8.1f %8.1f  %5.2f  %.1e\n", what, (long long)m,
              (long long)n, (long long)k, ta ? 'T' : 'N', tb ? 'T' : 'N', gf / te, gf / tt, te / tt,
              diff);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  lldl::set_num_threads(threads);
  std::printf("threads %d; GFLOP/s of Eigen and tiled_gemm, ratio = Eigen's time / tiled's\n",
              threads);
  std::printf("%-24s %6s %5s %6s  op  %8s %8s  %5s  %s\n", "shape", "M", "N", "K", "eigen",
              "tiled", "ratio", "max rel diff");
  row("square", 256, 256, 256, false, false);
  row("square", 512, 512, 512, false, false);
  row("square", 1024, 1024, 1024, false, false);
  row("square", 2048, 2048, 2048, false, false);
  row("lstm head forward", 2048, 96, 256, false, true);
  row("lstm head dx", 2048, 256, 96, false, false);
  row("lstm head dW", 96, 256, 2048, true, false);
  row("lstm table dE", 96, 64, 1024, false, false);
  row("lstm table dW_ih", 1024, 64, 96, true, false);
  row("gpt c_attn forward", 2048, 384, 128, false, false);
  row("gpt c_attn dx", 2048, 128, 384, false, true);
  row("gpt c_attn dW", 128, 384, 2048, true, false);
  row("gpt c_fc forward", 2048, 512, 128, false, false);
  row("gpt mlp c_proj forward", 2048, 128, 512, false, false);
  row("gpt mlp c_proj dx", 2048, 512, 128, false, true);
  row("gpt mlp c_proj dW", 512, 128, 2048, true, false);
  row("gpt lm head forward", 2048, 96, 128, false, true);
  row("cnn conv2 as a GEMM", 64 * 196, 64, 288, false, false);
  row("cnn conv2 dW", 64, 288, 64 * 196, true, false);
  row("cnn conv2 dcol", 64 * 196, 288, 64, false, true);
  row("cnn fc1 forward", 64, 128, 3136, false, true);
  return 0;
}
