// cpu_isa(): cpuid once, LLDL_CPU_ISA once; bf16 conversion of arrays.
#include <cpuid.h>

#include <atomic>
#include <cstdlib>

#include "backends/cpu/lowp_simd.h"
#include "backends/lowp_isa.h"
#include "core/error.h"

namespace lldl {
namespace {

constexpr const char* kNames[] = {"scalar", "avx2", "avx512", "avx512vnni", "avx512bf16"};

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuIsa detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return CpuIsa::Scalar;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave) return CpuIsa::Scalar;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, nullptr) < 7) return CpuIsa::Scalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31), vnni = c & (1u << 11);
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  const bool bf16 = a1 & (1u << 5);
  if (!(ymm_os && avx2 && fma && f16c)) return CpuIsa::Scalar;
  if (!(zmm_os && avx512f && avx512bw && avx512vl)) return CpuIsa::Avx2;
  if (!vnni) return CpuIsa::Avx512;
  return bf16 ? CpuIsa::Avx512Bf16 : CpuIsa::Avx512Vnni;
}

CpuIsa lower(CpuIsa a, CpuIsa b) { return static_cast<int>(a) < static_cast<int>(b) ? a : b; }

std::atomic<int>& current() {
  static std::atomic<int> level = [] {
    CpuIsa isa = cpu_isa_detected();
    if (const char* env = std::getenv("LLDL_CPU_ISA"); env && *env)
      isa = lower(isa, cpu_isa_from_name(env));
    return static_cast<int>(isa);
  }();
  return level;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) { return kNames[static_cast<int>(isa)]; }

CpuIsa cpu_isa_from_name(const std::string& name) {
  for (int i = 0; i < 5; ++i)
    if (name == kNames[i]) return static_cast<CpuIsa>(i);
  throw ValueError("LLDL_CPU_ISA / cpu isa: unknown level '" + name +
                   "' (expected scalar, avx2, avx512, avx512vnni or avx512bf16)");
}

CpuIsa cpu_isa_detected() {
  static const CpuIsa isa = detect();
  return isa;
}

CpuIsa cpu_isa() { return static_cast<CpuIsa>(current().load(std::memory_order_relaxed)); }

CpuIsa set_cpu_isa(CpuIsa isa) {
  return static_cast<CpuIsa>(current().exchange(static_cast<int>(lower(isa, cpu_isa_detected()))));
}

namespace {

LLDL_TARGET_AVX2 void to_bf16_avx2(const float* s, uint16_t* d, int64_t n, int64_t& i) {
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), cpu::bf16x8_round(_mm256_loadu_ps(s + i)));
}
LLDL_TARGET_AVX512 void to_bf16_avx512(const float* s, uint16_t* d, int64_t n, int64_t& i) {
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                        cpu::bf16x16_round(_mm512_loadu_ps(s + i)));
}
LLDL_TARGET_AVX2 void to_f32_avx2(const uint16_t* s, float* d, int64_t n, int64_t& i) {
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, cpu::bf16x8_load(s + i));
}
LLDL_TARGET_AVX512 void to_f32_avx512(const uint16_t* s, float* d, int64_t n, int64_t& i) {
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, cpu::bf16x16_load(s + i));
}

}  // namespace

void bf16_pack_n(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  const CpuIsa isa = cpu_isa();
  if (isa >= CpuIsa::Avx512) to_bf16_avx512(src, dst, n, i);
  if (isa >= CpuIsa::Avx2) to_bf16_avx2(src, dst, n, i);
  for (; i < n; ++i) dst[i] = bf16_pack(src[i]);
}

void bf16_widen_n(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  const CpuIsa isa = cpu_isa();
  if (isa >= CpuIsa::Avx512) to_f32_avx512(src, dst, n, i);
  if (isa >= CpuIsa::Avx2) to_f32_avx2(src, dst, n, i);
  for (; i < n; ++i) dst[i] = bf16_widen(src[i]);
}

}  // namespace lldl
