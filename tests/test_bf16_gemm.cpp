// The bf16 GEMM of mixed-precision training (backends/cpu/bf16_gemm.h), on
// every kernel this CPU runs (vdpbf16ps at avx512bf16, the widen + FMA
// fallback at avx2, plain C++ at scalar; chosen by set_cpu_isa), in all four transpose cases, at odd sizes around its tiles
// (6 rows by 64 columns), pairs (odd K) and k blocks (512 pairs), against
// float64 references:
// - exact: the float64 sum of the products of the operands rounded to bf16
//   here (round to nearest even, written independently of the kernel). The
//   kernel's only other rounding is float32 accumulation, so
//   |C - exact| <= gamma_K * sum_k |bf16(a) bf16(b)|, gamma_K = K 2^-24 / (1 - K 2^-24);
// - the float32 operands themselves: bf16 rounding adds a relative error of
//   at most u = 2^-8 per operand (an 8-bit significand, 7 bits stored), so
//   2u + u^2 per product and
//   |C - A B| <= (2^-7 + 2^-16 + gamma_K (1 + 2^-7 + 2^-16)) * sum_k |a b|.
// The kernels must agree bit for bit (they add a pair's products in the same
// order), and results must not depend on the thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/bf16_gemm.h"
#include "backends/lowp_isa.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

// The bf16 value nearest to x, ties to even: of the two bf16 neighbours
// (x's bits truncated, and one ulp further from zero) the closer one.
double bf16_ref(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
  float flo, fhi;
  std::memcpy(&flo, &lo, 4);
  std::memcpy(&fhi, &hi, 4);
  const double dlo = std::abs(double(x) - flo), dhi = std::abs(double(fhi) - x);
  if (dlo < dhi) return flo;
  if (dhi < dlo) return fhi;
  return (lo >> 16) & 1 ? fhi : flo;
}

struct Case {
  int64_t M, N, K;
  bool ta = false, tb = false, acc = false;
};

// C (with 3 spare columns) from bf16_gemm, after checking it against both
// references; empty when a check failed.
std::vector<float> run_case(const Case& t, uint64_t seed) {
  const auto [M, N, K, ta, tb, acc] = t;
  Rng r(seed);
  std::vector<float> a(static_cast<size_t>(M * K)), b(static_cast<size_t>(K * N));
  const int64_t ldc = N + 3;
  std::vector<float> c(static_cast<size_t>(M * ldc));
  for (float& v : a) v = static_cast<float>(r.uniform(-1, 1));
  for (float& v : b) v = static_cast<float>(r.uniform(-1, 1));
  for (float& v : c) v = static_cast<float>(r.uniform(-1, 1));
  const std::vector<float> c0 = c;
  const int64_t as_i = ta ? 1 : K, as_k = ta ? M : 1, bs_k = tb ? 1 : N, bs_j = tb ? K : 1;
  cpu::bf16_gemm(M, N, K, a.data(), as_i, as_k, b.data(), bs_k, bs_j, c.data(), ldc, acc);
  std::vector<double> ra(a.size()), rb(b.size());  // the operands rounded here
  for (size_t x = 0; x < a.size(); ++x) ra[x] = bf16_ref(a[x]);
  for (size_t x = 0; x < b.size(); ++x) rb[x] = bf16_ref(b[x]);
  const double g = double(K) * 0x1p-24 / (1 - double(K) * 0x1p-24);
  const double rel_ops = 0x1p-7 + 0x1p-16;
  bool ok = true;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const double got = c[i * ldc + j], before = c0[i * ldc + j];
      if (j >= N) {  // the spare columns are not written
        if (got != before) ok = false;
        continue;
      }
      double exact = 0, exact_abs = 0, plain = 0, plain_abs = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t ia = i * as_i + k * as_k, ib = k * bs_k + j * bs_j;
        const float x = a[ia], y = b[ib];
        exact += ra[ia] * rb[ib];
        exact_abs += std::abs(ra[ia] * rb[ib]);
        plain += double(x) * y;
        plain_abs += std::abs(double(x) * y);
      }
      // The float32 accumulator starts from C when accumulating: one more
      // term, and C's own value in the sums of magnitudes.
      const double base = acc ? before : 0;
      const double tol_exact = (g + 0x1p-24) * (exact_abs + std::abs(base));
      const double tol_plain = (rel_ops + g * (1 + rel_ops) + 0x1p-24) * (plain_abs + std::abs(base));
      if (std::abs(got - (base + exact)) > tol_exact || std::abs(got - (base + plain)) > tol_plain) {
        if (ok)
          MESSAGE("first bad element (" << i << ", " << j << "): got " << got << ", exact "
                  << base + exact << " +- " << tol_exact << ", float32 operands " << base + plain
                  << " +- " << tol_plain);
        ok = false;
      }
    }
  INFO("M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb << " acc=" << acc
            << " isa=" << std::string(cpu_isa_name(cpu_isa())));
  CHECK(ok);
  return ok ? c : std::vector<float>{};
}

}  // namespace

namespace {
// The levels whose kernels differ, as many as this CPU runs.
std::vector<CpuIsa> levels_here() {
  std::vector<CpuIsa> ls;
  for (CpuIsa l : {CpuIsa::Avx512Bf16, CpuIsa::Avx2, CpuIsa::Scalar})
    if (static_cast<int>(l) <= static_cast<int>(cpu_isa_detected())) ls.push_back(l);
  return ls;
}
}  // namespace

TEST_CASE("bf16_gemm is within its bounds of float64 on every kernel, the kernels bit for bit alike") {
  const CpuIsa saved = cpu_isa();
  MESSAGE("detected " << std::string(cpu_isa_name(cpu_isa_detected())) << ", in use "
          << std::string(cpu_isa_name(saved)));
  uint64_t seed = 1;
  for (Case base : {Case{1, 1, 1}, Case{1, 1, 2}, Case{5, 17, 3}, Case{7, 65, 33},
                    Case{37, 129, 130}, Case{13, 3, 1029}, Case{70, 200, 1100}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool acc : {false, true}) {
          Case t = base;
          t.ta = ta, t.tb = tb, t.acc = acc;
          ++seed;
          std::vector<float> first;
          for (CpuIsa l : levels_here()) {
            set_cpu_isa(l);
            std::vector<float> c = run_case(t, seed);
            if (first.empty()) first = c;
            else CHECK_MESSAGE(c == first, std::string(cpu_isa_name(l)) << " differs from the first level");
          }
        }
  set_cpu_isa(saved);
}

TEST_CASE("bf16_gemm gives the same bits on 1, 2 and 3 threads") {
  const int saved = get_num_threads();
  uint64_t seed = 500;
  for (Case t : {Case{130, 70, 129, false, false, false}, Case{263, 200, 301, true, false, true},
                 Case{12, 700, 260, false, true, false}, Case{64, 64, 1500, true, true, true}}) {
    ++seed;
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      std::vector<float> c = run_case(t, seed);
      if (threads == 1) first = c;
      else CHECK(c == first);
    }
  }
  set_num_threads(saved);
}

TEST_CASE("bf16_gemm: K = 0 zeroes or keeps C, NaN and Inf operands propagate") {
  std::vector<float> c(6, 2.f);
  cpu::bf16_gemm(2, 3, 0, nullptr, 0, 1, nullptr, 3, 1, c.data(), 3, true);
  CHECK(c == std::vector<float>(6, 2.f));
  cpu::bf16_gemm(2, 3, 0, nullptr, 0, 1, nullptr, 3, 1, c.data(), 3, false);
  CHECK(c == std::vector<float>(6, 0.f));
  const float a[2] = {NAN, 1.f}, b[2] = {1.f, INFINITY};
  float d[1];
  cpu::bf16_gemm(1, 1, 1, a, 1, 1, b, 1, 1, d, 1, false);
  CHECK(std::isnan(d[0]));
  cpu::bf16_gemm(1, 1, 1, a + 1, 1, 1, b + 1, 1, 1, d, 1, false);
  CHECK(std::isinf(d[0]));
}

TEST_CASE("bf16_gemm under LLDL_CPU_ISA: the level the variable names runs") {
  // ctest runs this file's cases once more with LLDL_CPU_ISA=avx2
  // (CMakeLists.txt): the fallback chosen at start-up, as on a CPU without
  // AVX-512 BF16, and the bounds above hold there too.
  const char* e = std::getenv("LLDL_CPU_ISA");
  if (e && std::string(e) == "avx2") CHECK(cpu_isa() == CpuIsa::Avx2);
  run_case(Case{37, 129, 130, true, false, true}, 7);
}
