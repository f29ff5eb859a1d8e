// Register-tiled products over packed panels, for kernels whose matrices are
// small and many (the LSTM's recurrent step, one attention head): there
// Eigen's GEMM costs more in packing, blocking and thread forks than in
// arithmetic. The caller packs the right-hand operand once into panels and
// reuses them; tile() keeps R x NV vector accumulators in registers across
// the whole k loop (16 of them fill half the AVX-512 register file and hide
// the FMA latency) and hands the sums back for the caller to store, add or
// transform.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace lldl::cpu {

// One SIMD register of T (GCC/Clang vector extension; without AVX-512 the
// compiler splits it into narrower registers).
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
template <class T>
struct Simd {
  typedef T type __attribute__((vector_size(kVecBytes)));
  static constexpr int64_t N = kVecBytes / static_cast<int64_t>(sizeof(T));
};

// Buffers for packed panels, aligned to cache lines (std::vector's heap
// memory is 16-byte aligned: a panel there would split vector loads across
// lines).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};
template <class T>
using PanelVec = std::vector<T, CacheLineAllocator<T>>;

// res (R rows of NV * Simd<T>::N, row-major) = sum over k < K of
// A(r, k) * P[k][v], where A(r, k) = a[r * ai + k * ak] (any strides: a
// transposed A costs nothing) and the panel P holds NV vectors per k,
// contiguous: P[k][v][j] = panel[(k * NV + v) * Simd<T>::N + j].
template <class T, int R, int NV>
inline void tile(const T* a, int64_t ai, int64_t ak, const T* panel, int64_t K, T* res) {
  using V = typename Simd<T>::type;
  constexpr int64_t L = Simd<T>::N;
  V acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  for (int64_t k = 0; k < K; ++k) {
    V bk[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&bk[v], panel + (k * NV + v) * L, sizeof(V));
    for (int r = 0; r < R; ++r) {
      const T s = a[r * ai + k * ak];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * bk[v];
    }
  }
  std::memcpy(res, acc, sizeof(acc));
}

// tile() over rows [0, M) in blocks of R (one-row tiles for the rest), k
// over [k0, k1) = krange(first row, rows) of each block (a causal product
// skips the k its rows do not reach); sink(row, sums) receives each row's
// NV * Simd<T>::N sums.
template <class T, int R, int NV, class KRange, class Sink>
inline void tile_rows_ranged(int64_t M, const T* a, int64_t ai, int64_t ak, const T* panel,
                      KRange&& krange, Sink&& sink) {
  constexpr int64_t W = NV * Simd<T>::N;
  alignas(64) T res[R * W];
  int64_t r0 = 0;
  for (; r0 + R <= M; r0 += R) {
    const auto [k0, k1] = krange(r0, int64_t(R));
    tile<T, R, NV>(a + r0 * ai + k0 * ak, ai, ak, panel + k0 * W, k1 - k0, res);
    for (int r = 0; r < R; ++r) sink(r0 + r, res + r * W);
  }
  for (; r0 < M; ++r0) {
    const auto [k0, k1] = krange(r0, int64_t(1));
    tile<T, 1, NV>(a + r0 * ai + k0 * ak, ai, ak, panel + k0 * W, k1 - k0, res);
    sink(r0, res);
  }
}

// The same with k over all of [0, K).
template <class T, int R, int NV, class Sink>
inline void tile_rows(int64_t M, const T* a, int64_t ai, int64_t ak, const T* panel, int64_t K,
                      Sink&& sink) {
  tile_rows_ranged<T, R, NV>(
      M, a, ai, ak, panel, [K](int64_t, int64_t) { return std::pair(int64_t(0), K); }, sink);
}

// Packs columns [c0, c0 + NV * Simd<T>::N) of B (K x N, B(k, j) =
// b[k * bk + j * bj]) as a panel for tile(), zero past column N.
template <class T, int NV>
inline void pack_panel(const T* b, int64_t bk, int64_t bj, int64_t K, int64_t N, int64_t c0,
                       T* panel) {
  constexpr int64_t W = NV * Simd<T>::N;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < W; ++j)
      panel[k * W + j] = c0 + j < N ? b[k * bk + (c0 + j) * bj] : T(0);
}

}  // namespace lldl::cpu
