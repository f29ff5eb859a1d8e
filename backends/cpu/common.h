// Shared helpers for the CPU kernels: Eigen maps over arena memory (no
// copies) and the OpenMP threshold below which a loop stays serial.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "backends/backend.h"

namespace lldl::cpu {

template <class T>
using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Map = Eigen::Map<MatR<T>>;  // unaligned: external (NumPy) memory may be
template <class T>
using CMap = Eigen::Map<const MatR<T>>;
template <class T>
using VecMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CVecMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// Row-major maps with a row stride (a column block of a wider matrix).
template <class T>
using SMap = Eigen::Map<MatR<T>, 0, Eigen::OuterStride<>>;
template <class T>
using CSMap = Eigen::Map<const MatR<T>, 0, Eigen::OuterStride<>>;

// dst (+)= l @ r. Below kSmallGemm multiply-adds the product runs on this
// thread without Eigen's GEMM, which would fork threads for it (costing far
// more than the product itself, ruinously so when the other core is busy)
// and pack both operands: small_gemm (backends/cpu/small_gemm.cpp) instead,
// register tiles over a padded copy of B. Eigen's
// coefficient-based lazyProduct, used before, read transposed operands with
// a stride: the weight gradient X^T dY of the seed's diabetes MLP (10x353 by
// 353x16) cost 70% of a training step.
constexpr int64_t kSmallGemm = 64 * 64 * 64;

// C (M x N, row stride ldc) (+)= A B, where A(i, k) = a[i * as_i + k * as_k]
// and B(k, j) = b[k * bs_k + j * bs_j]: any of the four transpose cases.
template <class T>
void small_gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
                const T* b, int64_t bs_k, int64_t bs_j, T* c, int64_t ldc, bool accumulate);

// The same product over packed blocks and register tiles (tiled_gemm.cpp),
// threaded, for products too large for small_gemm.
template <class T>
void tiled_gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
                const T* b, int64_t bs_k, int64_t bs_j, T* c, int64_t ldc, bool accumulate);
// tiled_gemm with B's row k at b_row(k) (N contiguous values; null: zeros),
// for a B that is not one strided matrix (the LSTM's h shifted one step).
template <class T>
void tiled_gemm_rows(int64_t M, int64_t N, int64_t K, const T* a, int64_t as_i, int64_t as_k,
                     const std::function<const T*(int64_t)>& b_row, T* c, int64_t ldc,
                     bool accumulate);

template <class X>
struct is_transposed : std::false_type {};
template <class X>
struct is_transposed<Eigen::Transpose<X>> : std::true_type {};

// (pointer, stride of the row index, stride of the column index) of a
// row-major map or the transpose of one.
template <class X>
auto strides_of(const X& x) {
  if constexpr (is_transposed<X>::value) {
    const auto& n = x.nestedExpression();
    return std::tuple(n.data(), int64_t(1), int64_t(n.outerStride()));
  } else {
    return std::tuple(x.data(), int64_t(x.outerStride()), int64_t(1));
  }
}

// Products of kSmallGemm multiply-adds and more go to tiled_gemm, except
// where all three dimensions reach kEigenGemm: there Eigen's GEMM, whose
// blocking shares packed operands between threads and which accumulates
// (C += A B, the backward's case) at 5-10% more FLOP/s than tiled_gemm from
// 512 up; below it tiled_gemm was faster on every shape of the models
// measured (bench/bench_gemm_shapes: 1.0-2.4x Eigen at 2 threads).
constexpr int64_t kEigenGemm = 512;

template <class D, class L, class R>
void product(D&& dst, const L& l, const R& r, bool accumulate) {
  const int64_t M = l.rows(), K = l.cols(), N = r.cols();
  if (std::min({M, N, K}) >= kEigenGemm) {
    if (accumulate) dst.noalias() += l * r;
    else dst.noalias() = l * r;
    return;
  }
  if (M == 0 || N == 0) return;
  auto [ap, ai, ak] = strides_of(l);
  auto [bp, bk, bj] = strides_of(r);
  if (M * N * K >= kSmallGemm)
    tiled_gemm(M, N, K, ap, ai, ak, bp, bk, bj, &dst.coeffRef(0, 0), int64_t(dst.outerStride()),
               accumulate);
  else
    small_gemm(M, N, K, ap, ai, ak, bp, bk, bj, &dst.coeffRef(0, 0), int64_t(dst.outerStride()),
               accumulate);
}

// [begin, end) of n items for thread th of nt (contiguous, sizes differing
// by at most one).
inline std::pair<int64_t, int64_t> share(int64_t n, int th, int nt) {
  return {n * th / nt, n * (th + 1) / nt};
}

// Forking threads costs microseconds; below this many elements a loop runs
// on the calling thread.
constexpr int64_t kParallelMin = 1 << 15;

template <class T>
const T* in(const KernelArgs& a, int i) { return static_cast<const T*>(a.in[i]); }
template <class T>
T* gin(const KernelArgs& a, int i) { return static_cast<T*>(a.gin[i]); }
template <class T>
T* out(const KernelArgs& a) { return static_cast<T*>(a.out); }
template <class T>
const T* gout(const KernelArgs& a) { return static_cast<const T*>(a.gout); }

// Runs f(i) for i in [0, n) on OpenMP threads when `work` (elements touched,
// default n) is large enough. Small loops return before reaching OpenMP at
// all: `#pragma omp parallel if(false)` still builds a one-thread team, which
// costs more than a small kernel.
template <class F>
inline void pfor(int64_t n, F&& f, int64_t work = -1) {
  if ((work < 0 ? n : work) < kParallelMin) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// d[i] = v(i) for i in [0, n) when `overwrite` (a stale gradient the
// kernel writes first, KernelArgs::gin_fresh), else d[i] += v(i); threaded
// like pfor.
template <class T, class V>
inline void put(T* d, bool overwrite, int64_t n, V&& v) {
  if (overwrite) pfor(n, [&](int64_t i) { d[i] = v(i); });
  else pfor(n, [&](int64_t i) { d[i] += v(i); });
}

// Runs f(begin, count) over [0, n) in chunks of 4096 elements (threaded like
// pfor), for kernels that hand each chunk to a vectorised Eigen expression.
template <class F>
inline void pchunks(int64_t n, F&& f) {
  constexpr int64_t kChunk = 4096;
  pfor((n + kChunk - 1) / kChunk, [&](int64_t c) {
    int64_t b = c * kChunk;
    f(b, b + kChunk < n ? kChunk : n - b);
  }, n);
}

// Sum over i in [0, n) of f(i) in double, threaded like pfor.
template <class F>
inline double psum(int64_t n, F&& f, int64_t work = -1) {
  double acc = 0;
  if ((work < 0 ? n : work) < kParallelMin) {
    for (int64_t i = 0; i < n; ++i) acc += f(i);
    return acc;
  }
#pragma omp parallel for reduction(+ : acc) schedule(static)
  for (int64_t i = 0; i < n; ++i) acc += f(i);
  return acc;
}

// d[j] = (or +=, unless `overwrite`) the sum over r of g[r * n + j]: the
// column sums of g (rows, n), the bias gradient of bias_add and linear.
// Threads take column blocks, so no two write one element.
template <class T>
inline void column_sums(T* d, bool overwrite, const T* g, int64_t rows, int64_t n) {
  const int64_t blocks = rows * n >= kParallelMin ? std::clamp<int64_t>(n / 16, 1, 8) : 1;
  pfor(blocks, [&](int64_t k) {
    const int64_t c0 = n * k / blocks, len = n * (k + 1) / blocks - c0;
    VecMap<T> db(d + c0, len);
    if (overwrite) db.setZero();
    for (int64_t r = 0; r < rows; ++r) db += CVecMap<T>(g + r * n + c0, len);
  }, rows * n);
}

// Log-sum-exp of one row with the row maximum subtracted, so exp never
// overflows: lse = m + log(sum exp(x - m)). (softmax.cpp)
template <class T>
T row_logsumexp(const T* x, int64_t n);

// Each kernel file registers its kernels for one scalar type.
template <class T> void register_matmul(KernelPair* t);  // matmul.cpp: matmul, linear
template <class T> void register_elementwise(KernelPair* t);
template <class T> void register_reduce(KernelPair* t);
template <class T> void register_softmax(KernelPair* t);
template <class T> void register_loss(KernelPair* t);
template <class T> void register_conv(KernelPair* t);  // conv.cpp
template <class T> void register_pool(KernelPair* t);  // pool.cpp: pooling, reshape

// How many times a thread's conv scratch buffer (padded images, im2col,
// partial sums) has grown since start-up; constant once a network has run one
// step (conv.cpp).
size_t scratch_growths();
// Which conv2d algorithm runs: Auto takes the direct micro-kernel where the
// channel counts suit it and im2col + GEMM elsewhere; Direct takes it wherever
// the geometry allows; Im2col never. For tests and benchmarks (conv.cpp).
enum class ConvAlgo : uint8_t { Auto, Direct, Im2col };
void set_conv_algo(ConvAlgo a);
ConvAlgo conv_algo();
template <class T> void register_dropout(KernelPair* t);
template <class T> void register_batchnorm(KernelPair* t);
template <class T> void register_embedding(KernelPair* t);  // embedding.cpp
template <class T> void register_layernorm(KernelPair* t);  // layernorm.cpp
template <class T> void register_gelu(KernelPair* t);       // gelu.cpp
template <class T> void register_linear_gelu(KernelPair* t);  // linear_gelu.cpp
template <class T> void register_layout(KernelPair* t);     // layout.cpp: transpose, slice, concat
template <class T> void register_attention(KernelPair* t);  // attention.cpp
template <class T> void register_lstm(KernelPair* t);       // lstm.cpp

}  // namespace lldl::cpu
