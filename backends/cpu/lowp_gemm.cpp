// y = x W^T (+ b) with bf16 or Q8 weights and float32 activations.
//
// Work is split over groups of 4 output rows (weight rows); a group runs
// through every activation row in tiles of MR x 4 outputs, so its weights
// are read from memory once per call (decode: the whole cost) and from L1
// for the other rows (prefill). Each output has its own accumulator, fed in
// the same order whatever the tile shape or thread, then summed
// horizontally in a fixed order: results depend on the values and the ISA
// path only. The paths:
//   bf16, avx512bf16: x rounded to bf16 too, vdpbf16ps (pairs of products
//        added in float32): relative error of x's rounding, 2^-9, per term;
//   bf16, avx512 / avx2: the weights widened to float32 in registers, FMA
//        with float32 x (only the weights' rounding);
//   int8, avx512vnni: x quantised per block of 32 to int8 (scale max|x|/127,
//        as llama.cpp's q8_0 dot), integer dot with vpdpbusd, scaled;
//   int8, avx512 / avx2: int8 widened to float32, block dot in float32,
//        times the block's scale;
//   scalar: the same as the widening paths, one value at a time.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/lowp_simd.h"
#include "backends/lowp.h"
#include "core/error.h"

namespace lldl {
namespace {
using namespace cpu;

constexpr int kNR = 4;  // weight rows per tile

struct Args {
  int64_t ld = 0, blocks = 0;
  const float* xf = nullptr;     // activations padded to ld (zeros)
  const uint16_t* xh = nullptr;  // the same rounded to bf16 (vdpbf16ps)
  const int8_t* xq = nullptr;    // quantised (VNNI), and their magnitudes:
  const uint8_t* xa = nullptr;
  const float* xs = nullptr;     // scale per row and block
  const uint16_t* wh = nullptr;
  const int8_t* wq = nullptr;
  const float* ws = nullptr;
};
// out[i * NR + j] = dot of activation row i0 + i and weight row n0 + j.
using TileFn = void (*)(const Args&, int64_t i0, int64_t n0, float* out);

template <int MR, int NR>
void bf16_scalar(const Args& a, int64_t i0, int64_t n0, float* out) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      const float* x = a.xf + (i0 + i) * a.ld;
      const uint16_t* w = a.wh + (n0 + j) * a.ld;
      float acc = 0;
      for (int64_t k = 0; k < a.ld; ++k) acc += x[k] * bf16_widen(w[k]);
      out[i * NR + j] = acc;
    }
}

template <int MR, int NR>
LLDL_TARGET_AVX2 void bf16_avx2(const Args& a, int64_t i0, int64_t n0, float* out) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < a.ld; k += 8) {
    __m256 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = bf16x8_load(a.wh + (n0 + j) * a.ld + k);
    for (int i = 0; i < MR; ++i) {
      const __m256 x = _mm256_loadu_ps(a.xf + (i0 + i) * a.ld + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(x, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = hsum8(acc[i][j]);
}

template <int MR, int NR>
LLDL_TARGET_AVX512 void bf16_avx512(const Args& a, int64_t i0, int64_t n0, float* out) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < a.ld; k += 16) {
    __m512 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = bf16x16_load(a.wh + (n0 + j) * a.ld + k);
    for (int i = 0; i < MR; ++i) {
      const __m512 x = _mm512_loadu_ps(a.xf + (i0 + i) * a.ld + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(x, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = hsum16(acc[i][j]);
}

template <int MR, int NR>
LLDL_TARGET_AVX512BF16 void bf16_dp(const Args& a, int64_t i0, int64_t n0, float* out) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < a.ld; k += 32) {
    __m512bh w[NR];
    for (int j = 0; j < NR; ++j) w[j] = (__m512bh)_mm512_loadu_si512(a.wh + (n0 + j) * a.ld + k);
    for (int i = 0; i < MR; ++i) {
      const __m512bh x = (__m512bh)_mm512_loadu_si512(a.xh + (i0 + i) * a.ld + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], x, w[j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = hsum16(acc[i][j]);
}

template <int MR, int NR>
void q8_scalar(const Args& a, int64_t i0, int64_t n0, float* out) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      const float* x = a.xf + (i0 + i) * a.ld;
      const int8_t* w = a.wq + (n0 + j) * a.ld;
      float acc = 0;
      for (int64_t b = 0; b < a.blocks; ++b) {
        float t = 0;
        for (int64_t k = b * kQ8Block; k < (b + 1) * kQ8Block; ++k)
          t += x[k] * static_cast<float>(w[k]);
        acc += t * a.ws[(n0 + j) * a.blocks + b];
      }
      out[i * NR + j] = acc;
    }
}

LLDL_TARGET_AVX2 inline __m256 i8x8_load(const int8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
LLDL_TARGET_AVX512 inline __m512 i8x16_load(const int8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

template <int MR, int NR>
LLDL_TARGET_AVX2 void q8_avx2(const Args& a, int64_t i0, int64_t n0, float* out) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const int64_t k = b * kQ8Block;
    for (int j = 0; j < NR; ++j) {
      const int8_t* w = a.wq + (n0 + j) * a.ld + k;
      const __m256 w0 = i8x8_load(w), w1 = i8x8_load(w + 8), w2 = i8x8_load(w + 16),
                   w3 = i8x8_load(w + 24);
      const __m256 s = _mm256_set1_ps(a.ws[(n0 + j) * a.blocks + b]);
      for (int i = 0; i < MR; ++i) {
        const float* x = a.xf + (i0 + i) * a.ld + k;
        __m256 t = _mm256_mul_ps(_mm256_loadu_ps(x), w0);
        t = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8), w1, t);
        t = _mm256_fmadd_ps(_mm256_loadu_ps(x + 16), w2, t);
        t = _mm256_fmadd_ps(_mm256_loadu_ps(x + 24), w3, t);
        acc[i][j] = _mm256_fmadd_ps(t, s, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = hsum8(acc[i][j]);
}

template <int MR, int NR>
LLDL_TARGET_AVX512 void q8_avx512(const Args& a, int64_t i0, int64_t n0, float* out) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const int64_t k = b * kQ8Block;
    for (int j = 0; j < NR; ++j) {
      const int8_t* w = a.wq + (n0 + j) * a.ld + k;
      const __m512 w0 = i8x16_load(w), w1 = i8x16_load(w + 16);
      const __m512 s = _mm512_set1_ps(a.ws[(n0 + j) * a.blocks + b]);
      for (int i = 0; i < MR; ++i) {
        const float* x = a.xf + (i0 + i) * a.ld + k;
        __m512 t = _mm512_mul_ps(_mm512_loadu_ps(x), w0);
        t = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16), w1, t);
        acc[i][j] = _mm512_fmadd_ps(t, s, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = hsum16(acc[i][j]);
}

template <int MR, int NR>
LLDL_TARGET_AVX512VNNI void q8_vnni(const Args& a, int64_t i0, int64_t n0, float* out) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const int64_t k = b * kQ8Block;
    for (int j = 0; j < NR; ++j) {
      const __m256i w =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.wq + (n0 + j) * a.ld + k));
      const float sw = a.ws[(n0 + j) * a.blocks + b];
      for (int i = 0; i < MR; ++i) {
        const int64_t xo = (i0 + i) * a.ld + k;
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq + xo));
        const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xa + xo));
        // |x| (unsigned) times w with x's sign: x * w, as vpdpbusd wants u8 x s8.
        const __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), xa, _mm256_sign_epi8(w, xq));
        const __m256 s = _mm256_set1_ps(sw * a.xs[(i0 + i) * a.blocks + b]);
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), s, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = hsum8(acc[i][j]);
}

#define LLDL_ROW(f, m) {f<m, 1>, f<m, 2>, f<m, 3>, f<m, 4>}
#define LLDL_TILES(f) {LLDL_ROW(f, 1), LLDL_ROW(f, 2), LLDL_ROW(f, 3), LLDL_ROW(f, 4)}
using Table = TileFn[4][kNR];
const Table kBf16Scalar = LLDL_TILES(bf16_scalar), kBf16Avx2 = LLDL_TILES(bf16_avx2),
            kBf16Avx512 = LLDL_TILES(bf16_avx512), kBf16Dp = LLDL_TILES(bf16_dp),
            kQ8Scalar = LLDL_TILES(q8_scalar), kQ8Avx2 = LLDL_TILES(q8_avx2),
            kQ8Avx512 = LLDL_TILES(q8_avx512), kQ8Vnni = LLDL_TILES(q8_vnni);

// Activations quantised per block of 32 for the VNNI path: scale max|x|/127.
void quantise_rows(Args& a, int64_t m, std::vector<int8_t>& q, std::vector<uint8_t>& mag,
                   std::vector<float>& s) {
  q.resize(static_cast<size_t>(m * a.ld));
  mag.resize(q.size());
  s.resize(static_cast<size_t>(m * a.blocks));
  for (int64_t r = 0; r < m * a.blocks; ++r) {
    const float* x = a.xf + r * kQ8Block;
    float amax = 0;
    for (int k = 0; k < kQ8Block; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float sc = amax / 127.0f, inv = sc > 0 ? 1.0f / sc : 0.0f;
    s[r] = sc;
    for (int k = 0; k < kQ8Block; ++k) {
      const int v = static_cast<int>(std::nearbyint(x[k] * inv));
      q[r * kQ8Block + k] = static_cast<int8_t>(std::clamp(v, -127, 127));
      mag[r * kQ8Block + k] = static_cast<uint8_t>(std::abs(q[r * kQ8Block + k]));
    }
  }
  a.xq = q.data();
  a.xa = mag.data();
  a.xs = s.data();
}

}  // namespace

void lowp_matmul(const float* x, int64_t m, int64_t ldx, const LowpMatrix& W, const float* bias,
                 float* y, int64_t ldy) {
  if (W.format == WeightFormat::F32 || W.rows < 1)
    throw ValueError("lowp_matmul: W is not a packed bf16 / int8 matrix");
  if (m < 0 || ldx < W.cols || ldy < W.rows)
    throw ValueError("lowp_matmul: x rows " + std::to_string(m) + " with row stride " +
                     std::to_string(ldx) + " and y row stride " + std::to_string(ldy) +
                     " do not fit W [" + std::to_string(W.rows) + ", " + std::to_string(W.cols) +
                     "]");
  if (m == 0) return;
  thread_local std::vector<float> xf;
  thread_local std::vector<uint16_t> xh;
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<uint8_t> xa;
  thread_local std::vector<float> xs;
  Args a;
  a.ld = W.ld;
  a.blocks = W.blocks();
  xf.assign(static_cast<size_t>(m * W.ld), 0.0f);
  for (int64_t r = 0; r < m; ++r) std::copy(x + r * ldx, x + r * ldx + W.cols, &xf[r * W.ld]);
  a.xf = xf.data();
  const CpuIsa isa = cpu_isa();
  const Table* tab;
  int mr_max = 4;
  if (W.format == WeightFormat::BF16) {
    a.wh = W.bf16.data();
    if (isa >= CpuIsa::Avx512Bf16) {
      xh.resize(xf.size());
      bf16_pack_n(xf.data(), xh.data(), static_cast<int64_t>(xf.size()));
      a.xh = xh.data();
      tab = &kBf16Dp;
    } else if (isa >= CpuIsa::Avx512) {
      tab = &kBf16Avx512;
    } else if (isa >= CpuIsa::Avx2) {
      tab = &kBf16Avx2, mr_max = 2;  // 16 ymm registers
    } else {
      tab = &kBf16Scalar;
    }
  } else {
    a.wq = W.q.data();
    a.ws = W.scale.data();
    if (isa >= CpuIsa::Avx512Vnni) {
      quantise_rows(a, m, xq, xa, xs);
      tab = &kQ8Vnni;
    } else if (isa >= CpuIsa::Avx512) {
      tab = &kQ8Avx512;
    } else if (isa >= CpuIsa::Avx2) {
      tab = &kQ8Avx2, mr_max = 2;
    } else {
      tab = &kQ8Scalar;
    }
  }
  const int64_t N = W.rows, groups = (N + kNR - 1) / kNR;
  const bool parallel = m * N * W.ld >= (int64_t(1) << 16) && groups > 1;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t n0 = g * kNR, nr = std::min<int64_t>(kNR, N - n0);
    float out[4 * kNR];
    for (int64_t i0 = 0; i0 < m; i0 += mr_max) {
      const int64_t mr = std::min<int64_t>(mr_max, m - i0);
      (*tab)[mr - 1][nr - 1](a, i0, n0, out);
      for (int64_t i = 0; i < mr; ++i)
        for (int64_t j = 0; j < nr; ++j)
          y[(i0 + i) * ldy + n0 + j] = out[i * nr + j] + (bias ? bias[n0 + j] : 0.0f);
    }
  }
}

}  // namespace lldl
