// The naive tier of the CUDA backend, one function per kernel, written over
// a launcher L so that the same code runs on the GPU and on the host:
//
//   l(what, n, body)           run body(i) for i in [0, n)
//   l(what, n, body, true)     the same, always one thread per i (row and
//                              channel bodies, whose threads loop)
//   l.scratch(bytes)           scratch memory where the bodies run
//   l.gemm(...)                a row-major GEMM (see im2col.h)
//
// On the GPU L is DeviceLauncher (common.cuh: for_each_kernel, device
// scratch); in tests/test_cuda_host.cpp it is a host launcher that walks the
// grid and block indices (hd.h) over host memory. So these functions, with
// their geometry and argument plumbing, are checked against the CPU backend
// without a GPU. The fast tier (the .cu files) reuses the geometry helpers
// and, for the pointwise ops, these very functions with a grid-stride launch.
//
// KernelArgs pointers are device pointers on the GPU, host pointers in the
// test; these functions never dereference them, only the bodies do.
#pragma once
#include <cstdint>

#include "backends/backend.h"
#include "backends/cuda/bodies_layers.h"
#include "backends/cuda/bodies_pointwise.h"
#include "backends/cuda/bodies_rows.h"

namespace lldl::cuda {

// ---- KernelArgs accessors and geometry ------------------------------------

template <class T>
const T* in(const KernelArgs& a, int i) { return static_cast<const T*>(a.in[i]); }
template <class T>
T* gin(const KernelArgs& a, int i) { return static_cast<T*>(a.gin[i]); }
template <class T>
T* out(const KernelArgs& a) { return static_cast<T*>(a.out); }
template <class T>
const T* gout(const KernelArgs& a) { return static_cast<const T*>(a.gout); }
inline int64_t numel(const KernelArgs& a) { return a.out_shape.numel(); }

inline ReduceDims reduce_dims(const KernelArgs& a) {
  const Shape& s = a.in_shape[0];
  ReduceDims p{1, 1, 1};
  int axis = a.attr.reduce.axis;
  if (axis < 0) {
    p.n = s.numel();
    return p;
  }
  for (int i = 0; i < axis; ++i) p.outer *= s[i];
  p.n = s[axis];
  for (int i = axis + 1; i < s.ndim; ++i) p.inner *= s[i];
  return p;
}

inline bool dropout_active(const KernelArgs& a) { return a.attr.dropout.training && a.attr.dropout.p > 0.0f; }
inline DropMask dropout_mask(const KernelArgs& a) { return {mix64(a.attr.dropout.seed), a.attr.dropout.p}; }
inline float dropout_scale(const KernelArgs& a) { return 1.0f / (1.0f - a.attr.dropout.p); }

// matmul: C (M, N) = op(A) (M, K) @ op(B) (K, N); also linear's product
// (x @ op(w), trans_a never set).
struct MatmulDims {
  int64_t M, N, K;
  bool ta, tb;
};
inline MatmulDims matmul_dims(const KernelArgs& a) {
  const Shape &sa = a.in_shape[0], &sb = a.in_shape[1];
  bool ta = a.attr.matmul.trans_a, tb = a.attr.matmul.trans_b;
  return {ta ? sa[1] : sa[0], tb ? sb[0] : sb[1], ta ? sa[0] : sa[1], ta, tb};
}

inline ConvGeom conv_geom(const KernelArgs& a) {
  const Shape &x = a.in_shape[0], &w = a.in_shape[1], &y = a.out_shape;
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], a.attr.conv.stride, a.attr.conv.padding};
}

inline PoolGeom pool_geom(const KernelArgs& a) {
  const Shape &x = a.in_shape[0], &y = a.out_shape;
  const int64_t k = a.attr.pool.kernel;
  return {x[0] * x[1], x[2], x[3], y[2], y[3], k, a.attr.pool.stride ? a.attr.pool.stride : k};
}

inline BnGeom bn_geom(const KernelArgs& a) {
  const Shape& x = a.out_shape;
  return {x[0], x[1], x.ndim == 4 ? x[2] * x[3] : 1, a.attr.batch_norm.eps,
          a.attr.batch_norm.momentum, a.attr.batch_norm.training != 0};
}

namespace naive {

using f = float;  // the CUDA column is float32

// ---- pointwise (both tiers) ---------------------------------------------------

template <class L> void add_fwd(const KernelArgs& a, L& l) {
  l("add", numel(a), AddF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a)});
}
template <class L> void add_bwd(const KernelArgs& a, L& l) {
  for (int k = 0; k < 2; ++k)
    if (f* d = gin<f>(a, k)) l("add backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, false});
}
template <class L> void sub_fwd(const KernelArgs& a, L& l) {
  l("sub", numel(a), SubF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a)});
}
template <class L> void sub_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("sub backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, false});
  if (f* d = gin<f>(a, 1)) l("sub backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, true});
}
template <class L> void mul_fwd(const KernelArgs& a, L& l) {
  l("mul", numel(a), MulF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a)});
}
template <class L> void mul_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("mul backward", numel(a), MulBwdF<f>{gout<f>(a), in<f>(a, 1), d});
  if (f* d = gin<f>(a, 1)) l("mul backward", numel(a), MulBwdF<f>{gout<f>(a), in<f>(a, 0), d});
}
template <class L> void scale_fwd(const KernelArgs& a, L& l) {
  l("scale", numel(a), ScaleF<f>{in<f>(a, 0), out<f>(a), a.attr.scale.alpha});
}
template <class L> void scale_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("scale backward", numel(a), AccF<f>{gout<f>(a), d, a.attr.scale.alpha, false});
}
// identity's and reshape's backward: d += g.
template <class L> void pass_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, false});
}
template <class L> void identity_fwd(const KernelArgs& a, L& l) {
  l("identity", numel(a), CopyF<f>{in<f>(a, 0), out<f>(a)});
}
template <class L> void sigmoid_fwd(const KernelArgs& a, L& l) {
  l("sigmoid", numel(a), SigmoidF<f>{in<f>(a, 0), out<f>(a)});
}
template <class L> void sigmoid_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("sigmoid backward", numel(a), SigmoidBwdF<f>{out<f>(a), gout<f>(a), d});
}
template <class L> void tanh_fwd(const KernelArgs& a, L& l) {
  l("tanh", numel(a), TanhF<f>{in<f>(a, 0), out<f>(a)});
}
template <class L> void tanh_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("tanh backward", numel(a), TanhBwdF<f>{out<f>(a), gout<f>(a), d});
}
template <class L> void relu_fwd(const KernelArgs& a, L& l) {
  l("relu", numel(a), ReluF<f>{in<f>(a, 0), out<f>(a)});
}
template <class L> void relu_bwd(const KernelArgs& a, L& l) {
  if (f* d = gin<f>(a, 0)) l("relu backward", numel(a), ReluBwdF<f>{in<f>(a, 0), gout<f>(a), d});
}
template <class L> void bias_fwd(const KernelArgs& a, L& l) {
  l("bias_add", numel(a), BiasF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a), a.out_shape.last()});
}
template <class L> void dropout_fwd(const KernelArgs& a, L& l) {
  if (!dropout_active(a)) return identity_fwd(a, l);
  l("dropout", numel(a), DropoutF<f>{in<f>(a, 0), out<f>(a), dropout_mask(a), dropout_scale(a)});
}
template <class L> void dropout_bwd(const KernelArgs& a, L& l) {
  if (!dropout_active(a)) return pass_bwd(a, l);
  if (f* d = gin<f>(a, 0))
    l("dropout backward", numel(a), DropoutBwdF<f>{gout<f>(a), d, dropout_mask(a), dropout_scale(a)});
}
template <class L> void reduce_bwd(const KernelArgs& a, L& l) {
  f* d = gin<f>(a, 0);
  if (!d) return;
  const ReduceDims p = reduce_dims(a);
  const f scale = a.kind == OpKind::Mean ? 1.0f / static_cast<f>(p.n) : 1.0f;
  l("reduce backward", p.outer * p.n * p.inner, ReduceBwdF<f>{gout<f>(a), d, p, scale});
}
template <class L> void mse_bwd(const KernelArgs& a, L& l) {
  const int64_t n = a.in_shape[0].numel();
  const f *p = in<f>(a, 0), *t = in<f>(a, 1), *g = gout<f>(a);
  if (f* d = gin<f>(a, 0)) l("mse_loss backward", n, MseBwdF<f>{p, t, g, d, n, false});
  if (f* d = gin<f>(a, 1)) l("mse_loss backward", n, MseBwdF<f>{p, t, g, d, n, true});
}

// ---- naive only -------------------------------------------------------------------

template <class L> void bias_bwd(const KernelArgs& a, L& l) {
  pass_bwd(a, l);
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  if (f* db = gin<f>(a, 1)) l("bias_add backward", n, ColSumF<f>{gout<f>(a), db, rows, n}, true);
}
template <class L> void reduce_fwd(const KernelArgs& a, L& l) {
  const ReduceDims p = reduce_dims(a);
  l("reduce", p.outer * p.inner, ReduceF<f>{in<f>(a, 0), out<f>(a), p, a.kind == OpKind::Mean}, true);
}
template <class L> void mse_fwd(const KernelArgs& a, L& l) {
  l("mse_loss", 1, MseF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a), a.in_shape[0].numel()}, true);
}

template <class L> void softmax_fwd(const KernelArgs& a, L& l) {
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  if (a.kind == OpKind::LogSoftmax) l("log_softmax", rows, LogSoftmaxRowF<f>{in<f>(a, 0), out<f>(a), n}, true);
  else l("softmax", rows, SoftmaxRowF<f>{in<f>(a, 0), out<f>(a), n}, true);
}
template <class L> void softmax_bwd(const KernelArgs& a, L& l) {
  f* d = gin<f>(a, 0);
  if (!d) return;
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  if (a.kind == OpKind::LogSoftmax)
    l("log_softmax backward", rows, LogSoftmaxBwdRowF<f>{out<f>(a), gout<f>(a), d, n}, true);
  else l("softmax backward", rows, SoftmaxBwdRowF<f>{out<f>(a), gout<f>(a), d, n}, true);
}

// Row terms to scratch, then one thread adds them: loss = -1/N sum row.
template <class L> void ce_fwd(const KernelArgs& a, L& l) {
  const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  double* row = static_cast<double*>(l.scratch(sizeof(double) * N));
  if (a.kind == OpKind::CrossEntropyLabels)
    l("cross_entropy_labels", N, CeLabelsRowF<f>{in<f>(a, 0), in<int32_t>(a, 1), row, C}, true);
  else l("cross_entropy", N, CeRowF<f>{in<f>(a, 0), in<f>(a, 1), row, C}, true);
  l("cross_entropy", 1, FinishSumF<f>{row, out<f>(a), N, -1.0 / static_cast<double>(N)}, true);
}
template <class L> void ce_bwd(const KernelArgs& a, L& l) {
  const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const f *x = in<f>(a, 0), *g = gout<f>(a);
  f* dx = gin<f>(a, 0);
  if (a.kind == OpKind::CrossEntropyLabels) {
    if (dx) l("cross_entropy_labels backward", N, CeLabelsBwdRowF<f>{x, in<int32_t>(a, 1), g, dx, N, C}, true);
    return;
  }
  f* dt = gin<f>(a, 1);
  if (dx || dt) l("cross_entropy backward", N, CeBwdRowF<f>{x, in<f>(a, 1), g, dx, dt, N, C}, true);
}

// matmul goes through l.gemm (im2col.h describes it): on the GPU that is
// GemmF, one thread per element of C, in the naive tier and cuBLAS in the
// fast one, so both tiers share this argument plumbing.
template <class L> void matmul_fwd(const KernelArgs& a, L& l) {
  const MatmulDims d = matmul_dims(a);
  l.gemm("matmul", d.ta, d.tb, d.M, d.N, d.K, in<f>(a, 0), in<f>(a, 1), out<f>(a), false, 1, 0, 0, 0);
}
// With C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, each
// undone into the stored layout when that operand was transposed. Also
// linear's dx and dw (`name` labels the launches).
template <class L> void matmul_grads(const KernelArgs& a, L& l, const char* name) {
  const MatmulDims d = matmul_dims(a);
  const f *A = in<f>(a, 0), *B = in<f>(a, 1), *dC = gout<f>(a);
  if (f* dA = gin<f>(a, 0)) {
    if (!d.ta) l.gemm(name, false, !d.tb, d.M, d.K, d.N, dC, B, dA, true, 1, 0, 0, 0);  // (M,N)(N,K)
    else l.gemm(name, d.tb, true, d.K, d.M, d.N, B, dC, dA, true, 1, 0, 0, 0);  // (K,N)(N,M)
  }
  if (f* dB = gin<f>(a, 1)) {
    if (!d.tb) l.gemm(name, !d.ta, false, d.K, d.N, d.M, A, dC, dB, true, 1, 0, 0, 0);  // (K,M)(M,N)
    else l.gemm(name, true, d.ta, d.N, d.K, d.M, dC, A, dB, true, 1, 0, 0, 0);  // (N,M)(M,K)
  }
}
template <class L> void matmul_bwd(const KernelArgs& a, L& l) { matmul_grads(a, l, "matmul backward"); }

// linear: the bias broadcast into y, then y += x op(w) through l.gemm (a
// GEMM with beta = 1 in the fast tier), so both tiers share this.
template <class L> void linear_fwd(const KernelArgs& a, L& l) {
  const MatmulDims d = matmul_dims(a);
  l("linear", d.M * d.N, RowBroadcastF<f>{in<f>(a, 2), out<f>(a), d.N});
  l.gemm("linear", false, d.tb, d.M, d.N, d.K, in<f>(a, 0), in<f>(a, 1), out<f>(a), true, 1, 0, 0, 0);
}
// dx and dw as matmul's; the naive tier sums db by one thread per column.
template <class L> void linear_bwd(const KernelArgs& a, L& l) {
  matmul_grads(a, l, "linear backward");
  const MatmulDims d = matmul_dims(a);
  if (f* db = gin<f>(a, 2)) l("linear backward", d.N, ColSumF<f>{gout<f>(a), db, d.M, d.N}, true);
}

template <class L> void conv_fwd(const KernelArgs& a, L& l) {
  const ConvGeom g = conv_geom(a);
  l("conv2d", g.N * g.OC * g.L(), ConvF<f>{in<f>(a, 0), in<f>(a, 1), in<f>(a, 2), out<f>(a), g});
}
template <class L> void conv_bwd(const KernelArgs& a, L& l) {
  const ConvGeom g = conv_geom(a);
  const f *x = in<f>(a, 0), *w = in<f>(a, 1), *dy = gout<f>(a);
  if (f* db = gin<f>(a, 2)) l("conv2d backward", g.OC, ConvBwdBF<f>{dy, db, g}, true);
  if (f* dw = gin<f>(a, 1)) l("conv2d backward", g.OC * g.K(), ConvBwdWF<f>{dy, x, dw, g}, true);
  if (f* dx = gin<f>(a, 0)) l("conv2d backward", g.N * g.C * g.H * g.W, ConvBwdXF<f>{dy, w, dx, g});
}

template <class L> void pool_fwd(const KernelArgs& a, L& l) {
  const PoolGeom g = pool_geom(a);
  if (a.kind == OpKind::MaxPool2d) l("max_pool2d", g.planes * g.OH * g.OW, MaxPoolF<f>{in<f>(a, 0), out<f>(a), static_cast<f*>(a.ws), g});
  else l("avg_pool2d", g.planes * g.OH * g.OW, AvgPoolF<f>{in<f>(a, 0), out<f>(a), g});
}
// A gather per input pixel: no two threads write one place.
template <class L> void pool_bwd(const KernelArgs& a, L& l) {
  f* dx = gin<f>(a, 0);
  if (!dx) return;
  const PoolGeom g = pool_geom(a);
  if (a.kind == OpKind::MaxPool2d)
    l("max_pool2d backward", g.planes * g.H * g.W, MaxPoolBwdF<f>{in<f>(a, 0), gout<f>(a), dx, g});
  else l("avg_pool2d backward", g.planes * g.H * g.W, AvgPoolBwdF<f>{gout<f>(a), dx, g});
}

// Statistics per channel (one thread each) to scratch, then one thread per
// element. The running buffers are inputs 3 and 4, updated in place when
// training (as on the CPU).
template <class L> void bn_fwd(const KernelArgs& a, L& l) {
  const BnGeom g = bn_geom(a);
  double* stats = static_cast<double*>(l.scratch(sizeof(double) * 2 * g.C));
  f *rm = const_cast<f*>(in<f>(a, 3)), *rv = const_cast<f*>(in<f>(a, 4));
  l("batch_norm", g.C, BnStatsF<f>{in<f>(a, 0), rm, rv, stats, g, true}, true);
  l("batch_norm", g.N * g.C * g.S, BnApplyF<f>{in<f>(a, 0), in<f>(a, 1), in<f>(a, 2), stats, out<f>(a), g});
}
template <class L> void bn_bwd(const KernelArgs& a, L& l) {
  const BnGeom g = bn_geom(a);
  double* stats = static_cast<double*>(l.scratch(sizeof(double) * 4 * g.C));
  double* sums = stats + 2 * g.C;
  const f *x = in<f>(a, 0), *gamma = in<f>(a, 1), *gy = gout<f>(a);
  f *rm = const_cast<f*>(in<f>(a, 3)), *rv = const_cast<f*>(in<f>(a, 4));
  l("batch_norm backward", g.C, BnStatsF<f>{x, rm, rv, stats, g, false}, true);
  l("batch_norm backward", g.C,
    BnBwdStatsF<f>{x, gy, gamma, stats, sums, gin<f>(a, 1), gin<f>(a, 2), gin<f>(a, 3), gin<f>(a, 4), g}, true);
  if (f* dx = gin<f>(a, 0))
    l("batch_norm backward", g.N * g.C * g.S, BnBwdXF<f>{x, gy, gamma, stats, sums, dx, g});
}

}  // namespace naive

}  // namespace lldl::cuda
