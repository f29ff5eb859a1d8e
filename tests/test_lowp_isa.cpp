// The CPU ISA levels (cpuid, LLDL_CPU_ISA, set_cpu_isa) and bf16 conversion:
// round to nearest even, NaN and infinities, the same bits on every level.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/lowp_isa.h"
#include "core/error.h"
#include "core/rng.h"

using namespace lldl;

namespace {
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Every level from scalar to the detected one.
std::vector<CpuIsa> levels() {
  std::vector<CpuIsa> out;
  for (int i = 0; i <= static_cast<int>(cpu_isa_detected()); ++i) out.push_back(CpuIsa(i));
  return out;
}
}  // namespace

TEST_CASE("cpu isa: names round trip, unknown names are refused, levels clamp to cpuid") {
  for (int i = 0; i < 5; ++i)
    CHECK(cpu_isa_from_name(cpu_isa_name(CpuIsa(i))) == CpuIsa(i));
  CHECK_THROWS_WITH_AS(cpu_isa_from_name("avx9"), doctest::Contains("unknown level 'avx9'"),
                       ValueError);
  const CpuIsa before = set_cpu_isa(CpuIsa::Scalar);
  CHECK(cpu_isa() == CpuIsa::Scalar);
  set_cpu_isa(CpuIsa::Avx512Bf16);
  CHECK(cpu_isa() == cpu_isa_detected());  // never above what the CPU has
  set_cpu_isa(before);
}

TEST_CASE("bf16: round to nearest even, ties to even, NaN stays NaN, infinities exact") {
  CHECK(bf16_pack(1.0f) == 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even (1.0).
  CHECK(bf16_pack(from_bits(0x3f808000u)) == 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up.
  CHECK(bf16_pack(from_bits(0x3f818000u)) == 0x3f82);
  CHECK(bf16_pack(from_bits(0x3f808001u)) == 0x3f81);  // above halfway: up
  CHECK(bf16_pack(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(bf16_pack(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(std::isnan(bf16_widen(bf16_pack(std::numeric_limits<float>::quiet_NaN()))));
  // A signalling NaN whose payload is all in the low bits must not become inf.
  CHECK(std::isnan(bf16_widen(bf16_pack(from_bits(0x7f800001u)))));
  // The largest float rounds to infinity (as RNE says), the smallest denormal to 0.
  CHECK(bf16_pack(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(bf16_pack(from_bits(1u)) == 0);
  CHECK(bf16_widen(0x4049) == from_bits(0x40490000u));
}

TEST_CASE("bf16: array conversion gives the scalar bits on every ISA level, odd lengths") {
  Rng r(7);
  std::vector<float> x(1000 + 13);
  for (float& v : x) v = static_cast<float>(r.normal()) * 100.0f;
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[17] = from_bits(0x7f800001u);
  x[18] = -std::numeric_limits<float>::infinity();
  x[19] = from_bits(0x00000123u);  // denormal: no flush to zero
  x[20] = from_bits(0x3f808000u);  // a tie
  const CpuIsa before = cpu_isa();
  for (CpuIsa isa : levels()) {
    CAPTURE(cpu_isa_name(isa));
    set_cpu_isa(isa);
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(17), int64_t(x.size())}) {
      std::vector<uint16_t> h(static_cast<size_t>(n) + 1, 0xabcd);
      bf16_pack_n(x.data(), h.data(), n);
      CHECK(h[n] == 0xabcd);  // nothing written past the end
      for (int64_t i = 0; i < n; ++i) REQUIRE(h[i] == bf16_pack(x[i]));
      std::vector<float> back(static_cast<size_t>(n));
      bf16_widen_n(h.data(), back.data(), n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(bits(back[i]) == bits(bf16_widen(h[i])));
    }
  }
  set_cpu_isa(before);
}
