// The CPU backend's small-matrix product (backends/cpu/small_gemm.cpp), which
// every matmul, linear layer and LSTM step below 64^3 multiply-adds runs
// through: all four transpose cases, odd sizes around the register tile
// (4 rows by one 64-byte vector), accumulate and overwrite, strided output,
// against a float64 triple loop.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "backends/cpu/common.h"
#include "core/rng.h"

using namespace lldl;

namespace {

template <class T>
void check_case(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool acc, uint64_t seed) {
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
  cpu::small_gemm<T>(M, N, K, a.data(), as_i, as_k, b.data(), bs_k, bs_j, c.data(), ldc, acc);
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
  INFO("M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb << " acc=" << acc);
  CHECK(worst <= tol);
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
