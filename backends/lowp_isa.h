// The CPU's vector instruction sets, chosen once at run time, and bfloat16
// conversion: the interface above the backends (models, bindings, tests).
//
// Kernels with several code paths (backends/cpu/lowp_*.cpp) are compiled
// with function-level target attributes, so a build for a baseline CPU
// (-march=x86-64-v3, LLDL_NATIVE=OFF) still holds the AVX-512 paths, and
// pick one by cpu_isa(). cpu_isa() is the best level that cpuid reports,
// lowered (never raised) by the environment variable LLDL_CPU_ISA =
// scalar | avx2 | avx512 | avx512vnni | avx512bf16, read once, so that the
// fallback paths run (and are tested) on a machine that has the newest one.
// Each level includes the ones below it:
//   scalar      plain C++;
//   avx2        AVX2 + FMA + F16C (x86-64-v3);
//   avx512      + AVX-512 F, BW, VL;
//   avx512vnni  + AVX-512 VNNI (int8 dot products);
//   avx512bf16  + AVX-512 BF16 (vdpbf16ps; Zen 4, Sapphire Rapids).
#pragma once
#include <cstdint>
#include <string>

namespace lldl {

enum class CpuIsa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Vnni = 3, Avx512Bf16 = 4 };

// "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16".
const char* cpu_isa_name(CpuIsa isa);
// The level named so; ValueError listing the names for any other string.
CpuIsa cpu_isa_from_name(const std::string& name);
// What cpuid (and the OS's saved register state) allows.
CpuIsa cpu_isa_detected();
// The level the kernels use: detected, lowered by LLDL_CPU_ISA (ValueError
// at the first call for an unknown value; a level above the detected one is
// clamped to it) or by set_cpu_isa.
CpuIsa cpu_isa();
// Sets the level for this process (clamped to the detected one; tests run
// every path this way); returns the previous level.
CpuIsa set_cpu_isa(CpuIsa isa);

// bfloat16 as its 16 bits (named apart from io/safetensors.h's loader helper
// bf16_to_f32, which this header must not collide with). Round to nearest even from float32; NaN stays a
// (quiet) NaN of the same sign, infinities and denormals convert exactly as
// the rounding says (no flush to zero: every path gives the same bits).
inline uint16_t bf16_pack(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
// n values at once, vectorised at the cpu_isa() level; bit-identical to the
// scalar functions above on every level.
void bf16_pack_n(const float* src, uint16_t* dst, int64_t n);
void bf16_widen_n(const uint16_t* src, float* dst, int64_t n);

}  // namespace lldl
