// Small matrix products on the calling thread (see product() in common.h).
//
// One loop order: C.row(i) += A(i, k) * B.row(k), over register tiles of
// kRows rows by one 64-byte vector of columns, accumulated in registers across
// the whole k loop and stored once. (Accumulating straight into C, as a first
// version did, chains every k step through a store and a reload of the same
// C vector and runs at the store-forwarding latency.) B is first copied into
// a thread-local buffer, dense and padded with zeros to whole vectors, so the
// tile loops have fixed trip counts and no remainders; A is read in place
// with its strides (one scalar per row and k), so a transposed A (the weight
// gradient X^T dY) costs nothing extra. A narrow output (N = 1) wastes vector
// lanes but still issues one FMA per (row, k), like a dot product would.
#include <algorithm>
#include <vector>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

template <class T>
constexpr int64_t kVec = 64 / static_cast<int64_t>(sizeof(T));  // lanes in 64 bytes
constexpr int64_t kRows = 4;

// Rows [i0, i0 + R) of C, columns [j0, j0 + kVec) of the padded B.
template <class T, int R>
inline void tile(int64_t i0, int64_t j0, int64_t jn, int64_t K, const T* a, int64_t as_i,
                 int64_t as_k, const T* B, int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  constexpr int64_t V = kVec<T>;
  T acc[R][V] = {};
  for (int64_t k = 0; k < K; ++k) {
    const T* __restrict bk = B + k * ldb + j0;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const T s = a[(i0 + r) * as_i + k * as_k];
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) acc[r][j] += s * bk[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    T* ci = c + (i0 + r) * ldc + j0;
    if (accumulate)
      for (int64_t j = 0; j < jn; ++j) ci[j] += acc[r][j];
    else
      for (int64_t j = 0; j < jn; ++j) ci[j] = acc[r][j];
  }
}

}  // namespace

template <class T>
void small_gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
                const T* b, int64_t bs_k, int64_t bs_j, T* c, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  constexpr int64_t V = kVec<T>;
  const int64_t ldb = (N + V - 1) / V * V;
  thread_local std::vector<T> buf;
  buf.assign(static_cast<size_t>(K * ldb), T(0));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) buf[k * ldb + j] = b[k * bs_k + j * bs_j];
  const T* B = buf.data();
  for (int64_t j0 = 0; j0 < N; j0 += V) {
    const int64_t jn = std::min(V, N - j0);
    int64_t i = 0;
    for (; i + kRows <= M; i += kRows)
      tile<T, kRows>(i, j0, jn, K, a, as_i, as_k, B, ldb, c, ldc, accumulate);
    for (; i < M; ++i) tile<T, 1>(i, j0, jn, K, a, as_i, as_k, B, ldb, c, ldc, accumulate);
  }
}

template void small_gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                const float*, int64_t, int64_t, float*, int64_t, bool);
template void small_gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                 const double*, int64_t, int64_t, double*, int64_t, bool);

}  // namespace lldl::cpu
