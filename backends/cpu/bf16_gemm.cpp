// The bf16 GEMM (bf16_gemm.h): packed panels of bf16 pairs and a register
// tile over them, blocked like tiled_gemm.cpp.
//
// vdpbf16ps multiplies 16 pairs of bf16 values by 16 other pairs and adds
// both products of each pair into one float32 lane, so both operands are
// packed as 32-bit words holding the bf16 values of two consecutive k (even
// k in the low half). B(k, j) for a block of pairs goes into panels of
// kNV x 16 columns: panel[p][j] = (B(2p, j), B(2p+1, j)); A's rows, kR at a
// time: ap[p][r] = (A(r, 2p), A(r, 2p+1)), one word that the kernel
// broadcasts. K odd: the last pair's high half is zero. A tile keeps kR x kNV
// float32 sums in zmm registers for a whole block of pairs (24 of the 32,
// enough to hide vdpbf16ps's latency) and reads per pair kNV panel vectors
// and kR broadcast words.
//
// Per block of kKP pairs the threads first pack all of B's panels together
// (shared, so no panel is packed twice), then each packs the rows of A it
// owns, kMc at a time, and runs its tiles; C's row blocks or column panels
// are split, whichever divides more evenly. Each element's sum runs over the
// pair blocks in order, and within one in order, whatever the split: results
// do not depend on the thread count.
#include "backends/cpu/bf16_gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/common.h"
#include "backends/cpu/lowp_simd.h"
#include "backends/cpu/tile.h"
#include "backends/lowp_isa.h"

namespace lldl::cpu {

namespace {

constexpr int kR = 6, kNV = 4;
constexpr int64_t kW = kNV * 16;  // a panel's columns
// Pairs per block: a panel is 512 x 64 words, 128 KiB, read from L2 at 256
// bytes per 24 vdpbf16ps (well within L2's bandwidth). Blocks of 128 pairs
// (a panel in L1) cost the tall products dearly: C (50257 x 768 for the
// tied head's dE) was read and written once per block, 175 GFLOP/s against
// 570 with 512 (bench_bf16_gemm).
constexpr int64_t kKP = 512;
constexpr int64_t kMc = 96;  // rows of A packed at a time (192 KiB per block, L2)

// The word of two bf16 (round to nearest even, lowp_isa.h), even k low.
inline uint32_t pair(float even, float odd) {
  return uint32_t(bf16_pack(even)) | uint32_t(bf16_pack(odd)) << 16;
}

// Panel of B's columns [j0, j0 + n) for pairs [p0, p0 + pn): d[p][kW], zero
// past n and past K.
void pack_b(const float* b, int64_t bs_k, int64_t bs_j, int64_t K, int64_t p0, int64_t pn,
            int64_t j0, int64_t n, uint32_t* d) {
  const bool odd_tail = 2 * (p0 + pn) > K;  // the last pair has no odd k
  const int64_t full = odd_tail ? pn - 1 : pn;
  if (bs_j == 1) {  // rows of B contiguous: two rows per pair, vectorised along j
    for (int64_t p = 0; p < pn; ++p) {
      const float* r0 = b + 2 * (p0 + p) * bs_k + j0;
      uint32_t* dp = d + p * kW;
      if (p < full)
        for (int64_t j = 0; j < n; ++j) dp[j] = pair(r0[j], r0[j + bs_k]);
      else
        for (int64_t j = 0; j < n; ++j) dp[j] = pair(r0[j], 0.f);
      std::fill(dp + n, dp + kW, 0u);
    }
    return;
  }
  // B transposed (or strided): each column read along k.
  for (int64_t j = 0; j < n; ++j) {
    const float* col = b + (j0 + j) * bs_j + 2 * p0 * bs_k;
    for (int64_t p = 0; p < full; ++p) d[p * kW + j] = pair(col[2 * p * bs_k], col[(2 * p + 1) * bs_k]);
    if (full < pn) d[full * kW + j] = pair(col[2 * full * bs_k], 0.f);
  }
  for (int64_t p = 0; p < pn; ++p) std::fill(d + p * kW + n, d + (p + 1) * kW, 0u);
}

// A's rows [i0, i0 + rows) (rows <= kR) for pairs [p0, p0 + pn): d[p][kR],
// zero past the rows and past K.
void pack_a(const float* a, int64_t as_i, int64_t as_k, int64_t K, int64_t i0, int rows,
            int64_t p0, int64_t pn, uint32_t* d) {
  const bool odd_tail = 2 * (p0 + pn) > K;
  const int64_t full = odd_tail ? pn - 1 : pn;
  const float* src = a + i0 * as_i + 2 * p0 * as_k;
  if (as_i == 1 && as_k != 1) {  // A transposed: a block's rows are adjacent
    for (int64_t p = 0; p < pn; ++p) {
      const float* k0 = src + 2 * p * as_k;
      for (int r = 0; r < kR; ++r)
        d[p * kR + r] = r >= rows ? 0u : pair(k0[r], p < full ? k0[r + as_k] : 0.f);
    }
    return;
  }
  for (int r = 0; r < kR; ++r) {
    const float* row = src + r * as_i;
    if (r >= rows) {
      for (int64_t p = 0; p < pn; ++p) d[p * kR + r] = 0u;
      continue;
    }
    for (int64_t p = 0; p < full; ++p) d[p * kR + r] = pair(row[2 * p * as_k], row[(2 * p + 1) * as_k]);
    if (full < pn) d[full * kR + r] = pair(row[2 * full * as_k], 0.f);
  }
}

// res[kR][kW] = the sums over pn pairs of ap[p][r] . bp[p][j], one per kernel.
LLDL_TARGET_AVX512BF16 void tile_dpbf16(const uint32_t* ap, const uint32_t* bp, int64_t pn,
                                        float* res) {
  __m512 acc[kR][kNV];
  for (int r = 0; r < kR; ++r)
    for (int v = 0; v < kNV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pn; ++p) {
    __m512bh bv[kNV];
    for (int v = 0; v < kNV; ++v) bv[v] = (__m512bh)_mm512_load_si512(bp + p * kW + v * 16);
    for (int r = 0; r < kR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[p * kR + r]));
      for (int v = 0; v < kNV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int v = 0; v < kNV; ++v) _mm512_storeu_ps(res + r * kW + v * 16, acc[r][v]);
}

// The same with each pair widened to two float32 (a bf16 is the high half
// of a float32) and two FMAs, odd k first as vdpbf16ps adds them; 8 columns
// at a time, as the 16 ymm registers allow.
LLDL_TARGET_AVX2 void tile_fma(const uint32_t* ap, const uint32_t* bp, int64_t pn, float* res) {
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int h = 0; h < kW / 8; ++h) {
    __m256 acc[kR];
    for (int r = 0; r < kR; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t p = 0; p < pn; ++p) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(bp + p * kW + h * 8));
      const __m256 be = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
      const __m256 bo = _mm256_castsi256_ps(_mm256_and_si256(w, hi));
      for (int r = 0; r < kR; ++r) {
        const uint32_t x = ap[p * kR + r];
        const __m256 ae = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(x << 16)));
        const __m256 ao = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(x & 0xffff0000u)));
        acc[r] = _mm256_fmadd_ps(ao, bo, acc[r]);
        acc[r] = _mm256_fmadd_ps(ae, be, acc[r]);
      }
    }
    for (int r = 0; r < kR; ++r) _mm256_storeu_ps(res + r * kW + h * 8, acc[r]);
  }
}

inline float widen(uint32_t bits16) { return bf16_widen(static_cast<uint16_t>(bits16)); }

void tile_scalar(const uint32_t* ap, const uint32_t* bp, int64_t pn, float* res) {
  std::fill(res, res + kR * kW, 0.f);
  for (int64_t p = 0; p < pn; ++p)
    for (int r = 0; r < kR; ++r) {
      const float ae = widen(ap[p * kR + r] & 0xffffu), ao = widen(ap[p * kR + r] >> 16);
      for (int64_t j = 0; j < kW; ++j) {
        float& s = res[r * kW + j];
        s = std::fma(ao, widen(bp[p * kW + j] >> 16), s);
        s = std::fma(ae, widen(bp[p * kW + j] & 0xffffu), s);
      }
    }
}

using TileFn = void (*)(const uint32_t*, const uint32_t*, int64_t, float*);

TileFn tile_fn(CpuIsa isa) {
  if (isa >= CpuIsa::Avx512Bf16) return tile_dpbf16;
  if (isa >= CpuIsa::Avx2) return tile_fma;
  return tile_scalar;
}

// res (rows x kW) into C's rows, columns [0, n).
inline void store(const float* res, int rows, int64_t n, float* c, int64_t ldc, bool assign) {
  for (int r = 0; r < rows; ++r) {
    float* ci = c + r * ldc;
    const float* s = res + r * kW;
    if (assign) std::copy(s, s + n, ci);
    else
      for (int64_t j = 0; j < n; ++j) ci[j] += s[j];
  }
}

}  // namespace

void bf16_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t as_i, int64_t as_k,
               const float* b, int64_t bs_k, int64_t bs_j, float* c, int64_t ldc,
               bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.f);
    return;
  }
  const TileFn tile = tile_fn(cpu_isa());
  const int64_t P = (K + 1) / 2, groups = (N + kW - 1) / kW, rblocks = (M + kR - 1) / kR;
  // Pairs in equal blocks of at most kKP (no thin last block).
  const int64_t pblocks = (P + kKP - 1) / kKP, pstep = (P + pblocks - 1) / pblocks;
  thread_local PanelVec<uint32_t> bp;  // the calling thread's: shared by its team
  bp.resize(static_cast<size_t>(groups * pstep * kW));
  uint32_t* const bpanels = bp.data();
  const bool threaded = M * N * K >= (int64_t(1) << 20) && omp_get_max_threads() > 1;
#pragma omp parallel if (threaded)
  {
    const int th = omp_get_thread_num(), nt = omp_get_num_threads();
    auto even = [nt](int64_t n) { return double(n) / double(nt * ((n + nt - 1) / nt)); };
    const double er = even(rblocks), eg = even(groups);
    const bool by_rows = er > eg || (er == eg && M >= N);
    using Range = std::pair<int64_t, int64_t>;
    const auto [rb0, rb1] = by_rows ? share(rblocks, th, nt) : Range(0, rblocks);
    const auto [g0, g1] = by_rows ? Range(0, groups) : share(groups, th, nt);
    thread_local PanelVec<uint32_t> ap;
    ap.resize(static_cast<size_t>(kMc / kR * kR * pstep));
    alignas(64) float res[kR * kW];
    for (int64_t p0 = 0; p0 < P; p0 += pstep) {
      const int64_t pn = std::min(pstep, P - p0);
      const bool assign = p0 == 0 && !accumulate;
#pragma omp for schedule(static)
      for (int64_t g = 0; g < groups; ++g)
        pack_b(b, bs_k, bs_j, K, p0, pn, g * kW, std::min(kW, N - g * kW), bpanels + g * pstep * kW);
      for (int64_t m0 = rb0; m0 < rb1; m0 += kMc / kR) {  // kMc rows of A at a time
        const int64_t m1 = std::min(rb1, m0 + kMc / kR);
        for (int64_t rb = m0; rb < m1; ++rb)
          pack_a(a, as_i, as_k, K, rb * kR, static_cast<int>(std::min<int64_t>(kR, M - rb * kR)),
                 p0, pn, ap.data() + (rb - m0) * kR * pstep);
        for (int64_t g = g0; g < g1; ++g) {
          const int64_t n = std::min(kW, N - g * kW);
          for (int64_t rb = m0; rb < m1; ++rb) {
            const int rows = static_cast<int>(std::min<int64_t>(kR, M - rb * kR));
            tile(ap.data() + (rb - m0) * kR * pstep, bpanels + g * pstep * kW, pn, res);
            store(res, rows, n, c + rb * kR * ldc + g * kW, ldc, assign);
          }
        }
      }
#pragma omp barrier
    }
  }
}

}  // namespace lldl::cpu
