// Large matrix products over packed blocks and the register tiles of tile.h
// (see product() in common.h).
//
// k runs in equal blocks of at most kK; per block each thread packs B's rows
// as column panels of kNV vectors (kK x kNV vectors: 32 KiB in float, held in
// L1 while the row blocks pass over it) and, when its blocks serve more than
// two panels, A's rows, kMc at a time, as blocks of kR rows (k-major, so a
// tile's broadcasts read consecutive values); otherwise A is read in place.
// Then every (row block, panel) tile keeps kR x kNV vector sums in registers
// for the whole k block and adds them into C once. Threads split C's row
// blocks or its column panels, whichever divides more evenly; an element's
// sum runs over k in the same order whatever the split, so results do not
// depend on the thread count. Packing B also makes every transpose case read
// it in one pass.
#include <omp.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "backends/cpu/common.h"
#include "backends/cpu/tile.h"

namespace lldl::cpu {

namespace {

constexpr int kR = 4, kNV = 4;
template <class T>
constexpr int64_t kK = 32768 / (kNV * kVecBytes);  // a panel's k block: 32 KiB
constexpr int64_t kMc = 256;                        // rows of A packed at a time

// res (rows x W) from tile() into C's rows [i0, i0 + rows), columns [j0, j0 + n).
template <class T>
inline void store(const T* res, int64_t W, int rows, int64_t n, T* c, int64_t ldc, bool assign) {
  for (int r = 0; r < rows; ++r) {
    T* ci = c + r * ldc;
    const T* s = res + r * W;
    if (assign) std::copy(s, s + n, ci);
    else
      for (int64_t j = 0; j < n; ++j) ci[j] += s[j];
  }
}

// tile() for `rows` <= kR rows (the last block of M may be short).
template <class T, int NV>
inline void any_tile(int rows, const T* a, int64_t ai, int64_t ak, const T* panel, int64_t K,
                     T* res) {
  switch (rows) {
    case 1: tile<T, 1, NV>(a, ai, ak, panel, K, res); break;
    case 2: tile<T, 2, NV>(a, ai, ak, panel, K, res); break;
    case 3: tile<T, 3, NV>(a, ai, ak, panel, K, res); break;
    default: tile<T, kR, NV>(a, ai, ak, panel, K, res); break;
  }
}

// The product with B's panels written by pack_b(d, k0, kn, j0, n, w): rows
// [k0, k0 + kn) of B's columns [j0, j0 + n) into d[k][w], zero past n.
template <class T, class PackB>
void gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
          PackB&& pack_b, T* c, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  constexpr int64_t W = kNV * Simd<T>::N, KB = kK<T>;
  const int64_t groups = (N + W - 1) / W, rblocks = (M + kR - 1) / kR;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, T(0));
    return;
  }
  const bool threaded = M * N * K >= (int64_t(1) << 20) && omp_get_max_threads() > 1;
#pragma omp parallel if (threaded)
  {
    const int th = omp_get_thread_num(), nt = omp_get_num_threads();
    // This thread's row blocks and column panels: C split by row blocks or
    // by column panels, whichever divides more evenly, else along the larger
    // dimension (a thread packs only what it uses).
    auto even = [nt](int64_t n) { return double(n) / double(nt * ((n + nt - 1) / nt)); };
    const double er = even(rblocks), eg = even(groups);
    const bool by_rows = er > eg || (er == eg && M >= N);
    using Range = std::pair<int64_t, int64_t>;
    const auto [rb0, rb1] = by_rows ? share(rblocks, th, nt) : Range(0, rblocks);
    const auto [g0, g1] = by_rows ? Range(0, groups) : share(groups, th, nt);
    thread_local PanelVec<T> bp, ap;
    bp.resize(static_cast<size_t>((g1 - g0) * KB * W));
    ap.resize(static_cast<size_t>(std::min(rb1 - rb0, kMc / kR) * kR * KB));
    alignas(64) T res[kR * W];
    // A is packed when its blocks serve several panels; for one panel its
    // rows are read in place (packing would cost a quarter of the work).
    const bool pack_a = g1 - g0 > 2;
    // K in equal blocks of at most KB (no thin last block).
    const int64_t kblocks = (K + KB - 1) / KB, kstep = (K + kblocks - 1) / kblocks;
    for (int64_t k0 = 0; k0 < K && rb1 > rb0 && g1 > g0; k0 += kstep) {
      const int64_t kn = std::min(kstep, K - k0);
      const bool assign = k0 == 0 && !accumulate;
      for (int64_t g = g0; g < g1; ++g) {  // B's panels: bp[g][k][w], zero past N
        const int64_t n = std::min(W, N - g * W);
        pack_b(bp.data() + (g - g0) * KB * W, k0, kn, g * W, n, n <= W / 2 ? W / 2 : W);
      }
      for (int64_t m0 = rb0; m0 < rb1; m0 += kMc / kR) {  // kMc rows of A at a time
        const int64_t m1 = std::min(rb1, m0 + kMc / kR);
        for (int64_t rb = m0; rb < m1 && pack_a; ++rb) {  // ap[rb][k][kR], zero past M
          T* d = ap.data() + (rb - m0) * kR * KB;
          const int rows = static_cast<int>(std::min<int64_t>(kR, M - rb * kR));
          const T* src = a + rb * kR * as_i + k0 * as_k;
          if (as_i == 1 && as_k != 1) {  // A transposed: a block's rows are adjacent
            for (int64_t k = 0; k < kn; ++k)
              for (int r = 0; r < kR; ++r) d[k * kR + r] = r < rows ? src[k * as_k + r] : T(0);
          } else {
            for (int r = 0; r < kR; ++r)
              for (int64_t k = 0; k < kn; ++k)
                d[k * kR + r] = r < rows ? src[r * as_i + k * as_k] : T(0);
          }
        }
        for (int64_t g = g0; g < g1; ++g) {
          const T* panel = bp.data() + (g - g0) * KB * W;
          const int64_t n = std::min(W, N - g * W);
          for (int64_t rb = m0; rb < m1; ++rb) {
            const int rows = static_cast<int>(std::min<int64_t>(kR, M - rb * kR));
            const T* ablock = pack_a ? ap.data() + (rb - m0) * kR * KB
                                     : a + rb * kR * as_i + k0 * as_k;
            const int64_t ai = pack_a ? 1 : as_i, ak = pack_a ? kR : as_k;
            if (n <= W / 2) {  // a half-empty last panel, packed half as wide
              any_tile<T, kNV / 2>(rows, ablock, ai, ak, panel, kn, res);
              store(res, W / 2, rows, n, c + rb * kR * ldc + g * W, ldc, assign);
            } else {
              any_tile<T, kNV>(rows, ablock, ai, ak, panel, kn, res);
              store(res, W, rows, n, c + rb * kR * ldc + g * W, ldc, assign);
            }
          }
        }
      }
    }
  }
}

}  // namespace

template <class T>
void tiled_gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
                const T* b, int64_t bs_k, int64_t bs_j, T* c, int64_t ldc, bool accumulate) {
  auto pack_b = [=](T* d, int64_t k0, int64_t kn, int64_t j0, int64_t n, int64_t w) {
    const T* src = b + k0 * bs_k + j0 * bs_j;
    if (bs_j == 1 || bs_k != 1) {  // B's rows are contiguous (or neither is)
      for (int64_t k = 0; k < kn; ++k) {
        T* dk = d + k * w;
        for (int64_t j = 0; j < n; ++j) dk[j] = src[k * bs_k + j * bs_j];
        std::fill(dk + n, dk + w, T(0));
      }
    } else {  // B transposed: 16 columns at a time, each read along k
      for (int64_t c0 = 0; c0 < n; c0 += 16) {
        const int64_t cn = std::min<int64_t>(16, n - c0);
        for (int64_t k = 0; k < kn; ++k)
          for (int64_t j = 0; j < cn; ++j) d[k * w + c0 + j] = src[k + (c0 + j) * bs_j];
      }
      for (int64_t k = 0; k < kn; ++k) std::fill(d + k * w + n, d + k * w + w, T(0));
    }
  };
  gemm(M, N, K, a, as_i, as_k, pack_b, c, ldc, accumulate);
}

template <class T>
void tiled_gemm_rows(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
                     const std::function<const T*(int64_t)>& b_row, T* c, int64_t ldc,
                     bool accumulate) {
  auto pack_b = [&](T* d, int64_t k0, int64_t kn, int64_t j0, int64_t n, int64_t w) {
    for (int64_t k = 0; k < kn; ++k) {
      T* dk = d + k * w;
      if (const T* src = b_row(k0 + k)) std::copy(src + j0, src + j0 + n, dk);
      else std::fill(dk, dk + n, T(0));
      std::fill(dk + n, dk + w, T(0));
    }
  };
  gemm(M, N, K, a, as_i, as_k, pack_b, c, ldc, accumulate);
}

#define LLDL_TILED_GEMM(T)                                                                      \
  template void tiled_gemm<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t, const T*, \
                              int64_t, int64_t, T*, int64_t, bool);                            \
  template void tiled_gemm_rows<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t,       \
                                   const std::function<const T*(int64_t)>&, T*, int64_t, bool);
LLDL_TILED_GEMM(float)
LLDL_TILED_GEMM(double)
#undef LLDL_TILED_GEMM

}  // namespace lldl::cpu
