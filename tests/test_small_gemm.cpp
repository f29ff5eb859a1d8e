// The CPU backend's matrix products below Eigen's: small_gemm (every matmul,
// linear layer and LSTM step below 64^3 multiply-adds) and tiled_gemm (the
// larger ones): all four transpose cases, odd sizes around the register
// tiles, accumulate and overwrite, strided output, against a float64 triple
// loop; tiled_gemm also on several thread counts, bit for bit the same.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/common.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

// C with 3 spare columns after the product, or empty when a check failed.
template <class T>
std::vector<T> check_case(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool acc,
                          uint64_t seed, bool tiled = false) {
  Rng r(seed);
  // A stored as M x K or (ta) K x M; B as K x N or (tb) N x K; C with 3 spare columns.
  std::vector<T> a(static_cast<size_t>(M * K)), b(static_cast<size_t>(K * N));
  const int64_t ldc = N + 3;
  std::vector<T> c(static_cast<size_t>(M * ldc));
  for (T& v : a) v = static_cast<T>(r.uniform(-1, 1));
  for (T& v : b) v = static_cast<T>(r.uniform(-1, 1));
  for (T& v : c) v = static_cast<T>(r.uniform(-1, 1));
  std::vector<T> c0 = c;
  const int64_t as_i = ta ? 1 : K, as_k = ta ? M : 1;
  const int64_t bs_k = tb ? 1 : N, bs_j = tb ? K : 1;
  auto gemm = tiled ? cpu::tiled_gemm<T> : cpu::small_gemm<T>;
  gemm(M, N, K, a.data(), as_i, as_k, b.data(), bs_k, bs_j, c.data(), ldc, acc);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      double want = c0[i * ldc + j];
      if (j < N) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += double(a[i * as_i + k * as_k]) * double(b[k * bs_k + j * bs_j]);
        want = acc ? want + s : s;
      }
      worst = std::max(worst, std::abs(double(c[i * ldc + j]) - want));
    }
  const double tol = sizeof(T) == 4 ? 1e-5 * (K + 1) : 1e-12 * (K + 1);
  INFO("M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb << " acc=" << acc
            << " tiled=" << tiled);
  CHECK(worst <= tol);
  return worst <= tol ? c : std::vector<T>{};
}

}  // namespace

TEST_CASE("small_gemm matches a float64 triple loop in every transpose case") {
  uint64_t seed = 1;
  for (int64_t M : {1, 3, 4, 5, 17})
    for (int64_t N : {1, 7, 16, 17, 40})
      for (int64_t K : {0, 1, 10, 33})
        for (bool ta : {false, true})
          for (bool tb : {false, true})
            for (bool acc : {false, true}) {
              check_case<float>(M, N, K, ta, tb, acc, ++seed);
              check_case<double>(M, N, K, ta, tb, acc, ++seed);
            }
}

TEST_CASE("tiled_gemm matches a float64 triple loop, the same on 1, 2 and 3 threads") {
  // Sizes around its tiles (4 rows by 4 vectors, a half-width last panel),
  // its k blocks (32 KiB of panel: 128 floats or 64 doubles, split evenly),
  // its 256-row packs of A, and a single panel (A read in place); large
  // enough to run threaded (>= 2^20 multiply-adds).
  const int saved = get_num_threads();
  uint64_t seed = 1000;
  struct Dims {
    int64_t M, N, K;
  };
  for (Dims d : {Dims{1, 1, 1}, Dims{5, 17, 3}, Dims{130, 70, 129}, Dims{263, 200, 300},
                 Dims{64, 64, 300}, Dims{2, 300, 2000}, Dims{300, 40, 257}, Dims{96, 96, 260}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool acc : {false, true}) {
          ++seed;
          std::vector<float> first;
          std::vector<double> first64;
          for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            std::vector<float> c = check_case<float>(d.M, d.N, d.K, ta, tb, acc, seed, true);
            std::vector<double> c64 = check_case<double>(d.M, d.N, d.K, ta, tb, acc, seed, true);
            if (threads == 1) {
              first = c;
              first64 = c64;
            } else {
              CHECK(c == first);
              CHECK(c64 == first64);
            }
          }
        }
  set_num_threads(saved);
}

TEST_CASE("tiled_gemm_rows equals tiled_gemm on the same B, null rows read as zeros") {
  // B given row by row: every third row null (zeros), the others rows of a
  // matrix with spare columns; against tiled_gemm over that matrix with the
  // null rows zeroed, bit for bit (the same packing, tiles and k order).
  const int64_t M = 130, N = 70, K = 300, ldb = N + 5;
  Rng r(3);
  std::vector<float> a(static_cast<size_t>(M * K)), b(static_cast<size_t>(K * ldb));
  for (float& v : a) v = static_cast<float>(r.uniform(-1, 1));
  for (float& v : b) v = static_cast<float>(r.uniform(-1, 1));
  std::vector<float> zeroed = b;
  for (int64_t k = 0; k < K; k += 3)
    std::fill(zeroed.begin() + k * ldb, zeroed.begin() + (k + 1) * ldb, 0.0f);
  for (bool acc : {false, true}) {
    std::vector<float> want(static_cast<size_t>(M * N), 0.5f), got = want;
    cpu::tiled_gemm<float>(M, N, K, a.data(), K, 1, zeroed.data(), ldb, 1, want.data(), N, acc);
    cpu::tiled_gemm_rows<float>(
        M, N, K, a.data(), K, 1,
        [&](int64_t k) { return k % 3 ? b.data() + k * ldb : nullptr; }, got.data(), N, acc);
    CHECK(got == want);
  }
}
