// Inline vector helpers for the low-precision kernels (backends/cpu only).
// Each carries its own target attribute: call them only from functions
// compiled for (at least) that target and reached when cpu_isa() allows it.
#pragma once
// GCC 12 warns of an uninitialised operand inside its own AVX-512 headers
// (`__m512 __Y = __Y;`, the "undefined" source of unmasked intrinsics) once
// they are inlined into target-attribute functions; a false positive, off
// for the files that include this header (the low-precision kernels).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#define LLDL_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LLDL_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define LLDL_TARGET_AVX512VNNI \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define LLDL_TARGET_AVX512BF16 \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))

namespace lldl::cpu {

// 8 bf16 (16 bytes at p) widened to float32: the bits shifted up 16.
LLDL_TARGET_AVX2 inline __m256 bf16x8_load(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
LLDL_TARGET_AVX512 inline __m512 bf16x16_load(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Round to nearest even of 8 / 16 floats to bf16, as bf16_pack does
// (NaN quieted, no flush of denormals; vcvtneps2bf16 would flush them).
LLDL_TARGET_AVX2 inline __m128i bf16x8_round(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  r = _mm256_srli_epi32(r, 16);
  const __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
  const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, qnan, nan);
  // 8 x 32-bit lanes, each < 2^16, packed to 8 x 16 bits in order.
  const __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
  return _mm_packus_epi32(lo, hi);
}
LLDL_TARGET_AVX512 inline __m256i bf16x16_round(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  r = _mm512_srli_epi32(r, 16);
  const __m512i mag = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(mag, _mm512_set1_epi32(0x7f800000));
  const __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  r = _mm512_mask_mov_epi32(r, nan, qnan);
  return _mm512_cvtepi32_epi16(r);
}

// Horizontal sums in a fixed order (the results must not depend on anything
// but the values).
LLDL_TARGET_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
LLDL_TARGET_AVX512 inline float hsum16(__m512 v) {
  // The upper half by a lane shuffle: GCC 12's _mm512_extractf64x4_pd warns
  // of an uninitialised operand inside its own header.
  const __m256 hi = _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xee));
  const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), hi);
  return hsum8(s);
}

}  // namespace lldl::cpu
