// The low-precision weight kernels (backends/lowp.h): packing error bounds,
// y = x W^T + b against a float64 reference on every ISA level up to the
// detected one, at odd sizes, the same bits on 1 and 2 threads, and the
// refusal of bad formats and Q8 parts.
//
// Tolerances, per output, with S = sum_k |x_k w_k| (w dequantised):
//   widening paths (float32 x, float32 accumulation): 1e-5 S + 1e-6;
//   vdpbf16ps (x rounded to bf16, relative 2^-9):       2^-8 S + 1e-6;
//   VNNI (x quantised per block, error <= scale_x / 2):
//     1e-5 S + sum_b scale_x,b / 2 * sum_{k in b} |w_k| + 1e-6.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backends/lowp.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

std::vector<float> randn(int64_t n, uint64_t seed, float scale = 1.0f) {
  Rng r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(r.normal()) * scale;
  return v;
}

// Runs y = x W^T + b on the current level and checks every output.
void check_matmul(const LowpMatrix& W, int64_t M, uint64_t seed) {
  const int64_t N = W.rows, K = W.cols, ldx = K + 3, ldy = N + 2;
  std::vector<float> x = randn(M * ldx, seed), b = randn(N, seed + 1);
  std::vector<float> y(static_cast<size_t>(M * ldy), 7.0f);
  lowp_matmul(x.data(), M, ldx, W, b.data(), y.data(), ldy);
  const CpuIsa isa = cpu_isa();
  const bool dp = W.format == WeightFormat::BF16 && isa >= CpuIsa::Avx512Bf16;
  const bool vnni = W.format == WeightFormat::Q8 && isa >= CpuIsa::Avx512Vnni;
  for (int64_t i = 0; i < M; ++i) {
    const float* xr = x.data() + i * ldx;
    for (int64_t n = 0; n < N; ++n) {
      double ref = b[n], S = 0, qerr = 0;
      for (int64_t k = 0; k < K; ++k) {
        ref += static_cast<double>(xr[k]) * W.at(n, k);
        S += std::fabs(static_cast<double>(xr[k]) * W.at(n, k));
      }
      if (vnni)
        for (int64_t k0 = 0; k0 < K; k0 += kQ8Block) {
          double amax = 0, wsum = 0;
          for (int64_t k = k0; k < std::min(K, k0 + kQ8Block); ++k) {
            amax = std::max(amax, static_cast<double>(std::fabs(xr[k])));
            wsum += std::fabs(W.at(n, k));
          }
          qerr += amax / 127.0 / 2 * wsum;
        }
      const double tol = (dp ? std::ldexp(1.0, -8) : 1e-5) * S + qerr + 1e-6;
      const double got = y[i * ldy + n];
      if (!(std::fabs(got - ref) <= tol)) {
        CAPTURE(i); CAPTURE(n); CAPTURE(got); CAPTURE(ref); CAPTURE(tol);
        FAIL("lowp_matmul output off");
      }
    }
    for (int64_t n = N; n < ldy; ++n) REQUIRE(y[i * ldy + n] == 7.0f);  // stride gap untouched
  }
}

std::vector<CpuIsa> levels() {
  std::vector<CpuIsa> out;
  for (int i = 0; i <= static_cast<int>(cpu_isa_detected()); ++i) out.push_back(CpuIsa(i));
  return out;
}

}  // namespace

TEST_CASE("lowp_pack: bf16 within half an ulp, Q8 within half a scale, padding is zero") {
  const int64_t N = 5, K = 37;
  std::vector<float> w = randn(N * K, 3);
  w[4] = 0.0f;
  for (bool tr : {false, true})
    for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Q8}) {
      CAPTURE(tr); CAPTURE(weight_format_name(f));
      LowpMatrix m = lowp_pack(w.data(), N, K, tr, f, "w");
      CHECK(m.ld == 64);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          const float src = tr ? w[k * N + n] : w[n * K + k];
          const double tol = f == WeightFormat::BF16
                                 ? std::ldexp(std::fabs(src), -8)
                                 : 0.5 * m.scale[n * m.blocks() + k / kQ8Block] * (1 + 1e-6);
          REQUIRE(std::fabs(m.at(n, k) - src) <= tol);
        }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = K; k < m.ld; ++k)
          REQUIRE((f == WeightFormat::BF16 ? m.bf16[n * m.ld + k] : m.q[n * m.ld + k]) == 0);
    }
}

TEST_CASE("lowp_matmul: bf16 and int8 against float64 on every ISA level, odd sizes") {
  const CpuIsa before = cpu_isa();
  uint64_t seed = 10;
  for (CpuIsa isa : levels()) {
    set_cpu_isa(isa);
    for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Q8})
      for (int64_t K : {1, 17, 31, 33, 100})
        for (int64_t N : {1, 3, 5, 9, 37})
          for (int64_t M : {1, 2, 3, 5, 7}) {
            CAPTURE(cpu_isa_name(isa)); CAPTURE(weight_format_name(f));
            CAPTURE(M); CAPTURE(N); CAPTURE(K);
            std::vector<float> w = randn(N * K, ++seed, 0.5f);
            check_matmul(lowp_pack(w.data(), N, K, false, f, "w"), M, ++seed);
          }
  }
  set_cpu_isa(before);
}

TEST_CASE("lowp_matmul: large enough to thread, the same bits on 1 and 2 threads") {
  const CpuIsa before = cpu_isa();
  const int before_threads = get_num_threads();
  const int64_t M = 6, N = 301, K = 777;
  std::vector<float> w = randn(N * K, 5, 0.1f), x = randn(M * K, 6);
  for (CpuIsa isa : levels())
    for (WeightFormat f : {WeightFormat::BF16, WeightFormat::Q8}) {
      CAPTURE(cpu_isa_name(isa)); CAPTURE(weight_format_name(f));
      set_cpu_isa(isa);
      LowpMatrix W = lowp_pack(w.data(), N, K, true, f, "w");
      std::vector<float> y1(static_cast<size_t>(M * N)), y2(y1.size());
      set_num_threads(1);
      lowp_matmul(x.data(), M, K, W, nullptr, y1.data(), N);
      set_num_threads(2);
      lowp_matmul(x.data(), M, K, W, nullptr, y2.data(), N);
      CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0);
      check_matmul(W, M, 8);
    }
  set_num_threads(before_threads);
  set_cpu_isa(before);
}

TEST_CASE("lowp: bad precision names, non-finite weights, bad Q8 parts are refused") {
  CHECK(weight_format_from_name("bf16") == WeightFormat::BF16);
  CHECK_THROWS_WITH_AS(weight_format_from_name("fp8"), doctest::Contains("unknown name 'fp8'"),
                       ValueError);
  std::vector<float> w = randn(3 * 40, 1);
  w[7] = NAN;
  CHECK_THROWS_WITH_AS(lowp_pack(w.data(), 3, 40, false, WeightFormat::Q8, "h.0.fc"),
                       doctest::Contains("h.0.fc: non-finite weight at row 0, column 7"),
                       ValueError);
  std::vector<int8_t> q(3 * 40, 1);
  std::vector<float> s(6, 0.5f);
  CHECK(lowp_from_q8(q.data(), s.data(), 3, 40, 6, "m").at(2, 39) == 0.5f);
  CHECK_THROWS_WITH_AS(lowp_from_q8(q.data(), s.data(), 3, 40, 5, "m"),
                       doctest::Contains("need 6 scales"), ValueError);
  s[2] = -1.0f;
  CHECK_THROWS_WITH_AS(lowp_from_q8(q.data(), s.data(), 3, 40, 6, "m"),
                       doctest::Contains("scale 2 is negative or not finite"), ValueError);
  s[2] = 0.5f;
  q[5] = -128;
  CHECK_THROWS_WITH_AS(lowp_from_q8(q.data(), s.data(), 3, 40, 6, "m"),
                       doctest::Contains("-128"), ValueError);
  LowpMatrix W = lowp_pack(randn(12, 2).data(), 3, 4, false, WeightFormat::BF16, "m");
  std::vector<float> x(8), y(6);
  CHECK_THROWS_WITH_AS(lowp_matmul(x.data(), 2, 3, W, nullptr, y.data(), 3),
                       doctest::Contains("do not fit W [3, 4]"), ValueError);
}
