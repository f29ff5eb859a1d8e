// The geometry of the ops whose kernels index more than element i: output,
// window, block and workspace dimensions computed from input shapes and
// attributes alone. The
// shape rules (ops/meta.cpp) and the kernels of both backends use these, so
// a dimension is derived in one place. The arguments are those of a shape
// rule (in: the input shapes); the shapes are assumed valid (the rule has
// checked them before any kernel runs).
//
// Plain structs, so that a CUDA kernel body can take one by value; member
// functions are callable on the device (nvcc) and the host.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/op.h"

#if defined(__CUDACC__)
#define LLDL_GEOM_HD __host__ __device__
#else
#define LLDL_GEOM_HD
#endif

namespace lldl {

// ---- matmul and linear: C (M, N) = op(A) (M, K) @ op(B) (K, N) ----------------
// A is stored (M, K), or (K, M) when ta; B is (K, N), or (N, K) when tb.
// linear's product is x (M, K) @ op(w), ta never set.
struct MatmulDims {
  int64_t M, N, K;
  bool ta, tb;
};
inline MatmulDims matmul_dims(const Shape* in, const OpAttr& a) {
  const Shape &A = in[0], &B = in[1];
  const bool ta = a.matmul.trans_a, tb = a.matmul.trans_b;
  return {ta ? A[1] : A[0], tb ? B[0] : B[1], ta ? A[0] : A[1], ta, tb};
}

// ---- sum and mean: x seen as (outer, n, inner) around the reduced axis ---------
// The output is (outer, inner); axis -1 reduces everything (n = numel).
struct ReduceDims {
  int64_t outer = 1, n = 1, inner = 1;
};
inline ReduceDims reduce_dims(const Shape* in, const OpAttr& a) {
  const Shape& s = in[0];
  ReduceDims p;
  const int axis = a.reduce.axis;
  if (axis < 0) {
    p.n = s.numel();
    return p;
  }
  for (int i = 0; i < axis; ++i) p.outer *= s[i];
  p.n = s[axis];
  for (int i = axis + 1; i < s.ndim; ++i) p.inner *= s[i];
  return p;
}

// ---- conv2d: x (N, C, H, W), w (OC, C, KH, KW), b (OC) -> y (N, OC, OH, OW) ------
// Stride S, zero padding P: OH = (H + 2P - KH) / S + 1, OW likewise.
// K = C*KH*KW is the length of one output's dot product, L = OH*OW the
// number of outputs per image and channel.
struct ConvGeom {
  int64_t N, C, H, W, OC, KH, KW, OH, OW, S, P;
  LLDL_GEOM_HD int64_t K() const { return C * KH * KW; }
  LLDL_GEOM_HD int64_t L() const { return OH * OW; }
};
inline ConvGeom conv_geom(const Shape* in, const OpAttr& a) {
  const Shape &x = in[0], &w = in[1];
  const int64_t S = a.conv.stride, P = a.conv.padding;
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], (x[2] + 2 * P - w[2]) / S + 1,
          (x[3] + 2 * P - w[3]) / S + 1, S, P};
}

// ---- max_pool2d, avg_pool2d: x (N, C, H, W) -> y (N, C, OH, OW) ----------------
// k x k windows, stride S (attr 0: S = k), no padding; planes = N*C
// independent images. OH = (H - k) / S + 1, OW likewise.
struct PoolGeom {
  int64_t planes, H, W, OH, OW, k, S;
};
inline PoolGeom pool_geom(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  const int64_t k = a.pool.kernel, S = a.pool.stride ? a.pool.stride : k;
  return {x[0] * x[1], x[2], x[3], (x[2] - k) / S + 1, (x[3] - k) / S + 1, k, S};
}

// ---- batch_norm: x (N, C) or (N, C, H, W), S = H*W (1 for 2-D x) ---------------
struct BnDims {
  int64_t N, C, S;
  LLDL_GEOM_HD int64_t count() const { return N * S; }  // values per channel
  // Offset of element (n, c, s = 0).
  LLDL_GEOM_HD int64_t at(int64_t n, int64_t c) const { return (n * C + c) * S; }
};
inline BnDims bn_dims(const Shape* in) {
  const Shape& x = in[0];
  return {x[0], x[1], x.ndim == 4 ? x[2] * x[3] : 1};
}

// ---- causal_attention: qkv (B, T, 3C) -> y (B, T, C); workspace P (B, NH, T, T) --
// Head h of batch row b: q_t = qkv[b, t, hD : hD+D], k_t at +C, v_t at +2C;
// y_t = y[b, t, hD : hD+D]; D = C / NH.
struct AttnGeom {
  int64_t B, T, C, NH, D;
  double scale;  // 1/sqrt(D)
  // Element offsets of (b, h, t) in qkv (q; k is +C, v +2C) and in y, and of
  // head h of batch row b's T x T block of P.
  LLDL_GEOM_HD int64_t qkv(int64_t b, int64_t h, int64_t t = 0) const {
    return (b * T + t) * 3 * C + h * D;
  }
  LLDL_GEOM_HD int64_t y(int64_t b, int64_t h, int64_t t = 0) const {
    return (b * T + t) * C + h * D;
  }
  LLDL_GEOM_HD int64_t p(int64_t b, int64_t h) const { return (b * NH + h) * T * T; }
  int64_t workspace() const { return B * NH * T * T; }
};
inline AttnGeom attn_geom(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  const int64_t C = x[2] / 3, NH = a.attention.n_head, D = C / NH;
  return {x[0], x[1], C, NH, D, 1.0 / std::sqrt(static_cast<double>(D))};
}

// ---- lstm: x (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H) -> h (B, T, H) -------
// lstm_gates: gx (B, T, 4H) = x W_ih^T + b given, w_hh (4H, H); I = 4H.
// Workspace: activated gates (B, T, 4H) in the order i, f, g, o, then the
// cell states (B, T, H).
struct LstmGeom {
  int64_t B, T, I, H;
  LLDL_GEOM_HD int64_t G() const { return 4 * H; }
  int64_t workspace() const { return B * T * 5 * H; }
};
// H is w_hh's column count for both kinds (input 2 of lstm, 1 of lstm_gates).
inline LstmGeom lstm_geom(OpKind k, const Shape* in) {
  const Shape& whh = in[k == OpKind::LstmGates ? 1 : 2];
  return {in[0][0], in[0][1], in[0][2], whh[1]};
}

// ---- transpose, slice, concat: copies, each seen as a few flat blocks ---------
inline int64_t dims_product(const Shape& s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= s[i];
  return p;
}
// transpose(x, d0 < d1): x is (A, n0, B, n1, C), out is (A, n1, B, n0, C)
// (A: dims before d0, B: dims between, C: dims after d1).
struct SwapGeom {
  int64_t A, n0, B, n1, C;
};
inline SwapGeom swap_geom(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  int d0 = resolve_axis(a.transpose.dim0, x.ndim), d1 = resolve_axis(a.transpose.dim1, x.ndim);
  if (d0 > d1) {
    const int t = d0;
    d0 = d1, d1 = t;
  }
  if (d0 == d1) return {x.numel(), 1, 1, 1, 1};  // nothing moves: a plain copy
  return {dims_product(x, 0, d0), x[d0], dims_product(x, d0 + 1, d1), x[d1],
          dims_product(x, d1 + 1, x.ndim)};
}
// slice(x, axis, start, length): x is (A, D, C), out is (A, length, C).
struct CutGeom {
  int64_t A, D, C, start, length;
};
inline CutGeom cut_geom(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  const int ax = resolve_axis(a.slice.axis, x.ndim);
  return {dims_product(x, 0, ax), x[ax], dims_product(x, ax + 1, x.ndim), a.slice.start,
          a.slice.length};
}
// concat(a, b, axis): A rows; row k of the output is a's row k (na values)
// then b's (nb values).
struct JoinGeom {
  int64_t A, na, nb;
};
inline JoinGeom join_geom(const Shape* in, const OpAttr& a) {
  const Shape &x = in[0], &y = in[1];
  const int ax = resolve_axis(a.concat.axis, x.ndim);
  const int64_t C = dims_product(x, ax + 1, x.ndim);
  return {dims_product(x, 0, ax), x[ax] * C, y[ax] * C};
}

}  // namespace lldl
