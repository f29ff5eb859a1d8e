// Causal multi-head self-attention over GPT-2's fused qkv projection.
//
// qkv is (B, T, 3C) as c_attn writes it: q = qkv[..., 0:C], k = [..., C:2C],
// v = [..., 2C:3C]; head h owns columns h*D..(h+1)*D of each, D = C / n_head.
// y is (B, T, C), head h in columns h*D..(h+1)*D. The workspace P is
// (B, n_head, T, T): the softmax probabilities, which backward needs; the
// forward zeroes the upper triangle (s > t) so P is a plain matrix.
//
// Per (b, h), with Q, K, V, Y the (T, D) head slices (strided views of qkv and
// y, no copies) and scale = 1/sqrt(D):
//   forward   S = Q K^T                    (causal part only)
//             P[t, s] = softmax_{s <= t}(scale S[t, s])   (max-subtracted)
//             Y = P V
//   backward  dV += P^T dY
//             dP  = dY V^T                 (causal part only)
//             dS  = P * (dP - rowsum(dP * P)) * scale
//             dQ += dS K,  dK += dS^T Q
// One head's matrices are small (T = 128, D = 32 in the char GPT), too small
// for Eigen's GEMM to pay for its packing and blocking at every product. The
// products run instead on the register tiles of tile.h over panels packed
// once per head (K^T, V, and in backward V^T, K, Q, dY), and only over the
// causal part: rows of S = Q K^T stop at the diagonal's column block, and
// every product with P or dS as an operand stops its k loop where P's zeros
// begin (P[t, s] = 0 for s > t). The (b, h) pairs are independent and write
// disjoint columns of y and of qkv's gradient, so they run on OpenMP threads,
// each with its own scratch (dS and the panels).
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "backends/cpu/common.h"
#include "backends/cpu/tile.h"
#include "ops/geometry.h"

namespace lldl::cpu {

namespace {

template <class T>
constexpr int64_t kLanes = Simd<T>::N;
// Column blocks: S and dP rows are computed kSW columns at a time (4
// vectors), the (T, D) results kDW columns at a time (2 vectors).
template <class T>
constexpr int64_t kSW = 4 * kLanes<T>;
template <class T>
constexpr int64_t kDW = 2 * kLanes<T>;
constexpr int kSRows = 4, kDRows = 8;  // rows per tile: 16 accumulators each

using Dims = AttnGeom;  // ops/geometry.h

// A thread's scratch: up to three packed panels and a T x T matrix.
template <class T>
struct Scratch {
  std::vector<T> p[3], tt;
};

// Runs f(b, h, scratch) for every head of every batch row, on OpenMP threads
// when the work (multiply-adds) is large.
template <class T, class F>
void for_each_head(const Dims& d, F&& f) {
  const int64_t n = d.B * d.NH;
  thread_local Scratch<T> scratch;
  if (n == 1 || n * d.T * d.T * d.D < kParallelMin) {
    for (int64_t i = 0; i < n; ++i) f(i / d.NH, i % d.NH, scratch);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i / d.NH, i % d.NH, scratch);
}

// Panels of B (K x N, B(k, j) = b[k bk + j bj]) for tile(): column blocks of
// NV vectors, block c at panel + c K NV lanes.
template <class T, int NV>
T* pack(std::vector<T>& buf, const T* b, int64_t bk, int64_t bj, int64_t K, int64_t N) {
  constexpr int64_t W = NV * kLanes<T>;
  const int64_t blocks = (N + W - 1) / W;
  if (buf.size() < static_cast<size_t>(blocks * K * W)) buf.resize(static_cast<size_t>(blocks * K * W));
  for (int64_t c = 0; c < blocks; ++c) pack_panel<T, NV>(b, bk, bj, K, N, c * W, buf.data() + c * K * W);
  return buf.data();
}

// out (T x T, row stride T) gets, for every row t, columns s <= t of
// A Bt^T, where A(t, d) = a[t lda + d] and panels holds Bt^T (D x T) packed
// by kSW columns; columns s > t are left alone.
template <class T>
void causal_rows(const Dims& d, const T* a, int64_t lda, const T* panels, T* out) {
  constexpr int64_t W = kSW<T>;
  for (int64_t c0 = 0; c0 < d.T; c0 += W)  // rows before c0 have no column here
    tile_rows<T, kSRows, 4>(d.T - c0, a + c0 * lda, lda, 1, panels + c0 * d.D, d.D,
                            [&](int64_t i, const T* s) {
                              const int64_t t = c0 + i, n = std::min(W, t + 1 - c0);
                              std::copy(s, s + n, out + t * d.T + c0);
                            });
}

// dst (T x D, row stride ld) (+)= A X over the k range where A is nonzero:
// A(i, k) = a[i ai + k ak] with A(i, k) = 0 for k > i (lower, A = P or dS)
// or for k < i (upper, A = P^T or dS^T); panels holds X (T x D) packed by
// kDW columns.
template <class T>
void causal_product(const Dims& d, const T* a, int64_t ai, int64_t ak, bool lower,
                    const T* panels, T* dst, int64_t ld, bool accumulate) {
  constexpr int64_t W = kDW<T>;
  const int64_t T_ = d.T;
  for (int64_t c0 = 0; c0 < d.D; c0 += W) {
    const int64_t n = std::min(W, d.D - c0);
    tile_rows_ranged<T, kDRows, 2>(
        T_, a, ai, ak, panels + c0 * T_,
        [&](int64_t r0, int64_t rows) {
          return lower ? std::pair(int64_t(0), std::min(T_, r0 + rows)) : std::pair(r0, T_);
        },
        [&](int64_t i, const T* s) {
          T* o = dst + i * ld + c0;
          if (accumulate)
            for (int64_t j = 0; j < n; ++j) o[j] += s[j];
          else
            std::copy(s, s + n, o);
        });
  }
}

template <class T>
void attention_forward(const KernelArgs& a) {
  const Dims d = attn_geom(a.in_shape, a.attr);
  if (d.B * d.T == 0) return;
  const T* qkv = in<T>(a, 0);
  T *y = out<T>(a), *ws = static_cast<T*>(a.ws);
  const T scale = T(1) / std::sqrt(static_cast<T>(d.D));
  const int64_t row = 3 * d.C;
  for_each_head<T>(d, [&](int64_t b, int64_t h, Scratch<T>& sc) {
    const T* q = qkv + d.qkv(b, h);
    T* P = ws + d.p(b, h);
    const T* kt = pack<T, 4>(sc.p[0], q + d.C, 1, row, d.D, d.T);  // K^T (D x T)
    causal_rows(d, q, row, kt, P);                                  // S = Q K^T
    for (int64_t t = 0; t < d.T; ++t) {
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> r(P + t * d.T, t + 1);
      const T m = r.maxCoeff();
      r = ((r - m) * scale).exp();
      r *= T(1) / r.sum();
      std::fill(P + t * d.T + t + 1, P + (t + 1) * d.T, T(0));
    }
    const T* v = pack<T, 2>(sc.p[1], q + 2 * d.C, row, 1, d.T, d.D);  // V (T x D)
    causal_product(d, P, d.T, 1, true, v, y + d.y(b, h), d.C, false);  // Y = P V
  });
}

template <class T>
void attention_backward(const KernelArgs& a) {
  T* dqkv = gin<T>(a, 0);
  const Dims d = attn_geom(a.in_shape, a.attr);
  if (!dqkv || d.B * d.T == 0) return;
  const T *qkv = in<T>(a, 0), *dy = gout<T>(a), *ws = static_cast<const T*>(a.ws);
  const T scale = T(1) / std::sqrt(static_cast<T>(d.D));
  const int64_t row = 3 * d.C;
  const bool acc = !fresh(a, 0);  // a stale gradient: this head's slices are overwritten
  for_each_head<T>(d, [&](int64_t b, int64_t h, Scratch<T>& sc) {
    const int64_t o = d.qkv(b, h);
    const T *q = qkv + o, *k = q + d.C, *v = q + 2 * d.C, *dY = dy + d.y(b, h);
    const T* P = ws + d.p(b, h);
    T *dq = dqkv + o, *dk = dq + d.C, *dv = dq + 2 * d.C;
    if (sc.tt.size() < static_cast<size_t>(d.T * d.T)) sc.tt.resize(static_cast<size_t>(d.T * d.T));
    T* dS = sc.tt.data();

    // dV = P^T dY
    causal_product(d, P, 1, d.T, false, pack<T, 2>(sc.p[0], dY, d.C, 1, d.T, d.D), dv, row, acc);
    // dP = dY V^T, then dS = P (dP - rowsum(dP P)) scale, zero above the diagonal
    causal_rows(d, dY, d.C, pack<T, 4>(sc.p[1], v, 1, row, d.D, d.T), dS);
    for (int64_t t = 0; t < d.T; ++t) {
      Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> p(P + t * d.T, t + 1);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> g(dS + t * d.T, t + 1);
      const T dot = (g * p).sum();
      g = p * (g - dot) * scale;
      std::fill(dS + t * d.T + t + 1, dS + (t + 1) * d.T, T(0));
    }
    // dQ = dS K, dK = dS^T Q
    causal_product(d, dS, d.T, 1, true, pack<T, 2>(sc.p[2], k, row, 1, d.T, d.D), dq, row, acc);
    causal_product(d, dS, 1, d.T, false, pack<T, 2>(sc.p[0], q, row, 1, d.T, d.D), dk, row, acc);
  });
}

}  // namespace

template <class T>
void register_attention(KernelPair* t) {
  t[int(OpKind::Attention)] = {attention_forward<T>, attention_backward<T>, true};
}
template void register_attention<float>(KernelPair*);
template void register_attention<double>(KernelPair*);

}  // namespace lldl::cpu
