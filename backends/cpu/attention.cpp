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
// The products run over blocks of kBlock rows (or columns) of the T x T
// matrices, each a plain Eigen GEMM over the blocks left of (or below) the
// diagonal: only the diagonal blocks compute masked entries, and plain GEMMs
// ran faster than Eigen's triangular products here (T = 128, D = 32). The
// (b, h) pairs are independent and write disjoint columns of y and of qkv's
// gradient, so they run on OpenMP threads, each thread with its own T x T
// scratch for dS.
#include <algorithm>
#include <cmath>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {


// Row (and column) block of the T x T matrices: products run block by block
// over the causal part only, as plain GEMMs, which Eigen runs faster than its
// triangular products; only the diagonal blocks compute masked entries.
constexpr int64_t kBlock = 32;

struct Dims {
  int64_t B, T, C, NH, D;
  // Element offsets of head h of batch row b: in qkv (q; k is +C, v +2C), in
  // y, and of its T x T block of P.
  int64_t qkv(int64_t b, int64_t h) const { return b * T * 3 * C + h * D; }
  int64_t y(int64_t b, int64_t h) const { return b * T * C + h * D; }
  int64_t p(int64_t b, int64_t h) const { return (b * NH + h) * T * T; }
};
Dims dims(const KernelArgs& a) {
  const Shape& x = a.in_shape[0];
  const int64_t C = x[2] / 3, nh = a.attr.attention.n_head;
  return {x[0], x[1], C, nh, C / nh};
}

// Runs f(b, h, scratch) for every head of every batch row, on OpenMP threads
// when the work (multiply-adds) is large; scratch is a per-thread T x T
// matrix.
template <class T, class F>
void for_each_head(const Dims& d, F&& f) {
  const int64_t n = d.B * d.NH;
  if (n == 1 || n * d.T * d.T * d.D < kParallelMin) {
    MatR<T> scratch(d.T, d.T);
    for (int64_t i = 0; i < n; ++i) f(i / d.NH, i % d.NH, scratch);
    return;
  }
#pragma omp parallel
  {
    MatR<T> scratch(d.T, d.T);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i / d.NH, i % d.NH, scratch);
  }
}

template <class T>
void attention_forward(const KernelArgs& a) {
  const Dims d = dims(a);
  if (d.B * d.T == 0) return;
  const T* qkv = in<T>(a, 0);
  T *y = out<T>(a), *ws = static_cast<T*>(a.ws);
  const T scale = T(1) / std::sqrt(static_cast<T>(d.D));
  const int64_t row = 3 * d.C;
  for_each_head<T>(d, [&](int64_t b, int64_t h, MatR<T>&) {
    const T* base = qkv + d.qkv(b, h);
    CSMap<T> Q(base, d.T, d.D, Eigen::OuterStride<>(row));
    CSMap<T> K(base + d.C, d.T, d.D, Eigen::OuterStride<>(row));
    CSMap<T> V(base + 2 * d.C, d.T, d.D, Eigen::OuterStride<>(row));
    Map<T> P(ws + d.p(b, h), d.T, d.T);
    SMap<T> Y(y + d.y(b, h), d.T, d.D, Eigen::OuterStride<>(d.C));
    for (int64_t r0 = 0; r0 < d.T; r0 += kBlock) {
      const int64_t n = std::min(kBlock, d.T - r0), cols = r0 + n;
      auto S = P.block(r0, 0, n, cols);
      S.noalias() = Q.middleRows(r0, n) * K.topRows(cols).transpose();
      for (int64_t t = r0; t < cols; ++t) {
        auto r = P.row(t).head(t + 1).array();
        const T m = r.maxCoeff();
        r = ((r - m) * scale).exp();
        r *= T(1) / r.sum();
        P.row(t).tail(d.T - t - 1).setZero();
      }
      Y.middleRows(r0, n).noalias() = S * V.topRows(cols);
    }
  });
}

template <class T>
void attention_backward(const KernelArgs& a) {
  T* dqkv = gin<T>(a, 0);
  const Dims d = dims(a);
  if (!dqkv || d.B * d.T == 0) return;
  const T *qkv = in<T>(a, 0), *dy = gout<T>(a), *ws = static_cast<const T*>(a.ws);
  const T scale = T(1) / std::sqrt(static_cast<T>(d.D));
  const int64_t row = 3 * d.C;
  const bool overwrite = fresh(a, 0);
  for_each_head<T>(d, [&](int64_t b, int64_t h, MatR<T>& dS) {
    const int64_t o = d.qkv(b, h);
    CSMap<T> Q(qkv + o, d.T, d.D, Eigen::OuterStride<>(row));
    CSMap<T> K(qkv + o + d.C, d.T, d.D, Eigen::OuterStride<>(row));
    CSMap<T> V(qkv + o + 2 * d.C, d.T, d.D, Eigen::OuterStride<>(row));
    SMap<T> dQ(dqkv + o, d.T, d.D, Eigen::OuterStride<>(row));
    SMap<T> dK(dqkv + o + d.C, d.T, d.D, Eigen::OuterStride<>(row));
    SMap<T> dV(dqkv + o + 2 * d.C, d.T, d.D, Eigen::OuterStride<>(row));
    CSMap<T> dY(dy + d.y(b, h), d.T, d.D, Eigen::OuterStride<>(d.C));
    CMap<T> P(ws + d.p(b, h), d.T, d.T);
    if (overwrite) {  // stale gradient: this head's slices start from zero
      dQ.setZero();
      dK.setZero();
      dV.setZero();
    }

    for (int64_t c0 = 0; c0 < d.T; c0 += kBlock) {  // column blocks of P
      const int64_t n = std::min(kBlock, d.T - c0);
      dV.middleRows(c0, n).noalias() +=
          P.block(c0, c0, d.T - c0, n).transpose() * dY.middleRows(c0, d.T - c0);
    }
    for (int64_t r0 = 0; r0 < d.T; r0 += kBlock) {  // row blocks of dS
      const int64_t n = std::min(kBlock, d.T - r0), cols = r0 + n;
      auto G = dS.block(r0, 0, n, cols);
      G.noalias() = dY.middleRows(r0, n) * V.topRows(cols).transpose();  // dP
      for (int64_t t = r0; t < cols; ++t) {
        auto p = P.row(t).head(t + 1).array();
        auto g = dS.row(t).head(t + 1).array();
        const T dot = (g * p).sum();
        g = p * (g - dot) * scale;
        dS.row(t).segment(t + 1, cols - t - 1).setZero();
      }
      dQ.middleRows(r0, n).noalias() += G * K.topRows(cols);
    }
    for (int64_t c0 = 0; c0 < d.T; c0 += kBlock) {  // column blocks of dS
      const int64_t n = std::min(kBlock, d.T - c0);
      dK.middleRows(c0, n).noalias() +=
          dS.block(c0, c0, d.T - c0, n).transpose() * Q.middleRows(c0, d.T - c0);
    }
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
