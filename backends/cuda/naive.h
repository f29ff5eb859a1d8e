// The naive tier of the CUDA backend, one function per kernel, written over
// a launcher `run` (of type Launcher) so that the same code runs on the GPU
// and on the host:
//
//   run(what, n, body)         run body(i) for i in [0, n)
//   run(what, n, body, true)   the same, always one thread per i (row and
//                              channel bodies, whose threads loop)
//   run.scratch(bytes)         scratch memory where the bodies run
//   run.gemm(...)              a row-major GEMM (see im2col.h)
//
// On the GPU Launcher is DeviceLauncher (common.cuh: for_each_kernel, device
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

inline bool dropout_active(const KernelArgs& a) { return a.attr.dropout.training && a.attr.dropout.p > 0.0f; }
inline DropMask dropout_mask(const KernelArgs& a) { return {mix64(a.attr.dropout.seed), a.attr.dropout.p}; }
inline float dropout_scale(const KernelArgs& a) { return 1.0f / (1.0f - a.attr.dropout.p); }

// The geometry of the other kinds is in ops/geometry.h (conv_geom,
// pool_geom, reduce_dims, matmul_dims, ...), shared with the CPU backend.
inline BnGeom bn_geom(const KernelArgs& a) {
  return {bn_dims(a.in_shape), a.attr.batch_norm.eps, a.attr.batch_norm.momentum,
          a.attr.batch_norm.training != 0};
}

namespace naive {

using f = float;  // the CUDA column is float32

// ---- pointwise (both tiers) ---------------------------------------------------

template <class Launcher> void add_fwd(const KernelArgs& a, Launcher& run) {
  run("add", numel(a), AddF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a)});
}
template <class Launcher> void add_bwd(const KernelArgs& a, Launcher& run) {
  for (int k = 0; k < 2; ++k)
    if (f* d = gin<f>(a, k)) run("add backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, false});
}
template <class Launcher> void sub_fwd(const KernelArgs& a, Launcher& run) {
  run("sub", numel(a), SubF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a)});
}
template <class Launcher> void sub_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("sub backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, false});
  if (f* d = gin<f>(a, 1)) run("sub backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, true});
}
template <class Launcher> void mul_fwd(const KernelArgs& a, Launcher& run) {
  run("mul", numel(a), MulF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a)});
}
template <class Launcher> void mul_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("mul backward", numel(a), MulBwdF<f>{gout<f>(a), in<f>(a, 1), d});
  if (f* d = gin<f>(a, 1)) run("mul backward", numel(a), MulBwdF<f>{gout<f>(a), in<f>(a, 0), d});
}
template <class Launcher> void scale_fwd(const KernelArgs& a, Launcher& run) {
  run("scale", numel(a), ScaleF<f>{in<f>(a, 0), out<f>(a), a.attr.scale.alpha});
}
template <class Launcher> void scale_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("scale backward", numel(a), AccF<f>{gout<f>(a), d, a.attr.scale.alpha, false});
}
// identity's and reshape's backward: d += g.
template <class Launcher> void pass_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("backward", numel(a), AccF<f>{gout<f>(a), d, 1.0f, false});
}
template <class Launcher> void identity_fwd(const KernelArgs& a, Launcher& run) {
  run("identity", numel(a), CopyF<f>{in<f>(a, 0), out<f>(a)});
}
template <class Launcher> void sigmoid_fwd(const KernelArgs& a, Launcher& run) {
  run("sigmoid", numel(a), SigmoidF<f>{in<f>(a, 0), out<f>(a)});
}
template <class Launcher> void sigmoid_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("sigmoid backward", numel(a), SigmoidBwdF<f>{out<f>(a), gout<f>(a), d});
}
template <class Launcher> void silu_fwd(const KernelArgs& a, Launcher& run) {
  run("silu", numel(a), SiluF<f>{in<f>(a, 0), out<f>(a)});
}
template <class Launcher> void silu_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("silu backward", numel(a), SiluBwdF<f>{in<f>(a, 0), gout<f>(a), d});
}
template <class Launcher> void tanh_fwd(const KernelArgs& a, Launcher& run) {
  run("tanh", numel(a), TanhF<f>{in<f>(a, 0), out<f>(a)});
}
template <class Launcher> void tanh_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("tanh backward", numel(a), TanhBwdF<f>{out<f>(a), gout<f>(a), d});
}
template <class Launcher> void relu_fwd(const KernelArgs& a, Launcher& run) {
  run("relu", numel(a), ReluF<f>{in<f>(a, 0), out<f>(a)});
}
template <class Launcher> void relu_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("relu backward", numel(a), ReluBwdF<f>{in<f>(a, 0), gout<f>(a), d});
}
template <class Launcher> void bias_fwd(const KernelArgs& a, Launcher& run) {
  run("bias_add", numel(a), BiasF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a), a.out_shape.last()});
}
template <class Launcher> void dropout_fwd(const KernelArgs& a, Launcher& run) {
  if (!dropout_active(a)) return identity_fwd(a, run);
  run("dropout", numel(a), DropoutF<f>{in<f>(a, 0), out<f>(a), dropout_mask(a), dropout_scale(a)});
}
template <class Launcher> void dropout_bwd(const KernelArgs& a, Launcher& run) {
  if (!dropout_active(a)) return pass_bwd(a, run);
  if (f* d = gin<f>(a, 0))
    run("dropout backward", numel(a), DropoutBwdF<f>{gout<f>(a), d, dropout_mask(a), dropout_scale(a)});
}
template <class Launcher> void reduce_bwd(const KernelArgs& a, Launcher& run) {
  f* d = gin<f>(a, 0);
  if (!d) return;
  const ReduceDims p = reduce_dims(a.in_shape, a.attr);
  const f scale = a.kind == OpKind::Mean ? 1.0f / static_cast<f>(p.n) : 1.0f;
  run("reduce backward", p.outer * p.n * p.inner, ReduceBwdF<f>{gout<f>(a), d, p, scale});
}
template <class Launcher> void mse_bwd(const KernelArgs& a, Launcher& run) {
  const int64_t n = a.in_shape[0].numel();
  const f *p = in<f>(a, 0), *t = in<f>(a, 1), *g = gout<f>(a);
  if (f* d = gin<f>(a, 0)) run("mse_loss backward", n, MseBwdF<f>{p, t, g, d, n, false});
  if (f* d = gin<f>(a, 1)) run("mse_loss backward", n, MseBwdF<f>{p, t, g, d, n, true});
}

// ---- naive only -------------------------------------------------------------------

template <class Launcher> void bias_bwd(const KernelArgs& a, Launcher& run) {
  pass_bwd(a, run);
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  if (f* db = gin<f>(a, 1)) run("bias_add backward", n, ColSumF<f>{gout<f>(a), db, rows, n}, true);
}
template <class Launcher> void reduce_fwd(const KernelArgs& a, Launcher& run) {
  const ReduceDims p = reduce_dims(a.in_shape, a.attr);
  run("reduce", p.outer * p.inner, ReduceF<f>{in<f>(a, 0), out<f>(a), p, a.kind == OpKind::Mean}, true);
}
template <class Launcher> void mse_fwd(const KernelArgs& a, Launcher& run) {
  run("mse_loss", 1, MseF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a), a.in_shape[0].numel()}, true);
}

template <class Launcher> void softmax_fwd(const KernelArgs& a, Launcher& run) {
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  if (a.kind == OpKind::LogSoftmax) run("log_softmax", rows, LogSoftmaxRowF<f>{in<f>(a, 0), out<f>(a), n}, true);
  else run("softmax", rows, SoftmaxRowF<f>{in<f>(a, 0), out<f>(a), n}, true);
}
template <class Launcher> void softmax_bwd(const KernelArgs& a, Launcher& run) {
  f* d = gin<f>(a, 0);
  if (!d) return;
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  if (a.kind == OpKind::LogSoftmax)
    run("log_softmax backward", rows, LogSoftmaxBwdRowF<f>{out<f>(a), gout<f>(a), d, n}, true);
  else run("softmax backward", rows, SoftmaxBwdRowF<f>{out<f>(a), gout<f>(a), d, n}, true);
}

// Row terms to scratch, then one thread adds them: loss = -1/N sum row.
template <class Launcher> void ce_fwd(const KernelArgs& a, Launcher& run) {
  const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  double* row = static_cast<double*>(run.scratch(sizeof(double) * N));
  if (a.kind == OpKind::CrossEntropyLabels)
    run("cross_entropy_labels", N, CeLabelsRowF<f>{in<f>(a, 0), in<int32_t>(a, 1), row, C}, true);
  else run("cross_entropy", N, CeRowF<f>{in<f>(a, 0), in<f>(a, 1), row, C}, true);
  run("cross_entropy", 1, FinishSumF<f>{row, out<f>(a), N, -1.0 / static_cast<double>(N)}, true);
}
template <class Launcher> void ce_bwd(const KernelArgs& a, Launcher& run) {
  const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const f *x = in<f>(a, 0), *g = gout<f>(a);
  f* dx = gin<f>(a, 0);
  if (a.kind == OpKind::CrossEntropyLabels) {
    if (dx) run("cross_entropy_labels backward", N, CeLabelsBwdRowF<f>{x, in<int32_t>(a, 1), g, dx, N, C}, true);
    return;
  }
  f* dt = gin<f>(a, 1);
  if (dx || dt) run("cross_entropy backward", N, CeBwdRowF<f>{x, in<f>(a, 1), g, dx, dt, N, C}, true);
}

// matmul goes through run.gemm (im2col.h describes it): on the GPU that is
// GemmF, one thread per element of C, in the naive tier and cuBLAS in the
// fast one, so both tiers share this argument plumbing.
template <class Launcher> void matmul_fwd(const KernelArgs& a, Launcher& run) {
  const MatmulDims d = matmul_dims(a.in_shape, a.attr);
  run.gemm("matmul", d.ta, d.tb, d.M, d.N, d.K, in<f>(a, 0), in<f>(a, 1), out<f>(a), false, 1, 0, 0, 0);
}
// With C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, each
// undone into the stored layout when that operand was transposed. Also
// linear's dx and dw (`name` labels the launches).
template <class Launcher> void matmul_grads(const KernelArgs& a, Launcher& run, const char* name) {
  const MatmulDims d = matmul_dims(a.in_shape, a.attr);
  const f *A = in<f>(a, 0), *B = in<f>(a, 1), *dC = gout<f>(a);
  if (f* dA = gin<f>(a, 0)) {
    if (!d.ta) run.gemm(name, false, !d.tb, d.M, d.K, d.N, dC, B, dA, true, 1, 0, 0, 0);  // (M,N)(N,K)
    else run.gemm(name, d.tb, true, d.K, d.M, d.N, B, dC, dA, true, 1, 0, 0, 0);  // (K,N)(N,M)
  }
  if (f* dB = gin<f>(a, 1)) {
    if (!d.tb) run.gemm(name, !d.ta, false, d.K, d.N, d.M, A, dC, dB, true, 1, 0, 0, 0);  // (K,M)(M,N)
    else run.gemm(name, true, d.ta, d.N, d.K, d.M, dC, A, dB, true, 1, 0, 0, 0);  // (N,M)(M,K)
  }
}
template <class Launcher> void matmul_bwd(const KernelArgs& a, Launcher& run) { matmul_grads(a, run, "matmul backward"); }

// linear: the bias broadcast into y, then y += x op(w) through run.gemm (a
// GEMM with beta = 1 in the fast tier), so both tiers share this.
template <class Launcher> void linear_fwd(const KernelArgs& a, Launcher& run) {
  const MatmulDims d = matmul_dims(a.in_shape, a.attr);
  run("linear", d.M * d.N, RowBroadcastF<f>{in<f>(a, 2), out<f>(a), d.N});
  run.gemm("linear", false, d.tb, d.M, d.N, d.K, in<f>(a, 0), in<f>(a, 1), out<f>(a), true, 1, 0, 0, 0);
}
// dx and dw as matmul's; the naive tier sums db by one thread per column.
template <class Launcher> void linear_bwd(const KernelArgs& a, Launcher& run) {
  matmul_grads(a, run, "linear backward");
  const MatmulDims d = matmul_dims(a.in_shape, a.attr);
  if (f* db = gin<f>(a, 2)) run("linear backward", d.N, ColSumF<f>{gout<f>(a), db, d.M, d.N}, true);
}

template <class Launcher> void conv_fwd(const KernelArgs& a, Launcher& run) {
  const ConvGeom g = conv_geom(a.in_shape, a.attr);
  run("conv2d", g.N * g.OC * g.L(), ConvF<f>{in<f>(a, 0), in<f>(a, 1), in<f>(a, 2), out<f>(a), g});
}
template <class Launcher> void conv_bwd(const KernelArgs& a, Launcher& run) {
  const ConvGeom g = conv_geom(a.in_shape, a.attr);
  const f *x = in<f>(a, 0), *w = in<f>(a, 1), *dy = gout<f>(a);
  if (f* db = gin<f>(a, 2)) run("conv2d backward", g.OC, ConvBwdBF<f>{dy, db, g}, true);
  if (f* dw = gin<f>(a, 1)) run("conv2d backward", g.OC * g.K(), ConvBwdWF<f>{dy, x, dw, g}, true);
  if (f* dx = gin<f>(a, 0)) run("conv2d backward", g.N * g.C * g.H * g.W, ConvBwdXF<f>{dy, w, dx, g});
}

template <class Launcher> void pool_fwd(const KernelArgs& a, Launcher& run) {
  const PoolGeom g = pool_geom(a.in_shape, a.attr);
  if (a.kind == OpKind::MaxPool2d) run("max_pool2d", g.planes * g.OH * g.OW, MaxPoolF<f>{in<f>(a, 0), out<f>(a), static_cast<f*>(a.ws), g});
  else run("avg_pool2d", g.planes * g.OH * g.OW, AvgPoolF<f>{in<f>(a, 0), out<f>(a), g});
}
// A gather per input pixel: no two threads write one place.
template <class Launcher> void pool_bwd(const KernelArgs& a, Launcher& run) {
  f* dx = gin<f>(a, 0);
  if (!dx) return;
  const PoolGeom g = pool_geom(a.in_shape, a.attr);
  if (a.kind == OpKind::MaxPool2d)
    run("max_pool2d backward", g.planes * g.H * g.W, MaxPoolBwdF<f>{in<f>(a, 0), gout<f>(a), dx, g});
  else run("avg_pool2d backward", g.planes * g.H * g.W, AvgPoolBwdF<f>{gout<f>(a), dx, g});
}

// Statistics per channel (one thread each) to scratch, then one thread per
// element. The running buffers are inputs 3 and 4, updated in place when
// training (as on the CPU).
template <class Launcher> void bn_fwd(const KernelArgs& a, Launcher& run) {
  const BnGeom g = bn_geom(a);
  double* stats = static_cast<double*>(run.scratch(sizeof(double) * 2 * g.C));
  f *rm = const_cast<f*>(in<f>(a, 3)), *rv = const_cast<f*>(in<f>(a, 4));
  run("batch_norm", g.C, BnStatsF<f>{in<f>(a, 0), rm, rv, stats, g, true}, true);
  run("batch_norm", g.N * g.C * g.S, BnApplyF<f>{in<f>(a, 0), in<f>(a, 1), in<f>(a, 2), stats, out<f>(a), g});
}
template <class Launcher> void bn_bwd(const KernelArgs& a, Launcher& run) {
  const BnGeom g = bn_geom(a);
  double* stats = static_cast<double*>(run.scratch(sizeof(double) * 4 * g.C));
  double* sums = stats + 2 * g.C;
  const f *x = in<f>(a, 0), *gamma = in<f>(a, 1), *gy = gout<f>(a);
  f *rm = const_cast<f*>(in<f>(a, 3)), *rv = const_cast<f*>(in<f>(a, 4));
  run("batch_norm backward", g.C, BnStatsF<f>{x, rm, rv, stats, g, false}, true);
  run("batch_norm backward", g.C,
    BnBwdStatsF<f>{x, gy, gamma, stats, sums, gin<f>(a, 1), gin<f>(a, 2), gin<f>(a, 3), gin<f>(a, 4), g}, true);
  if (f* dx = gin<f>(a, 0))
    run("batch_norm backward", g.N * g.C * g.S, BnBwdXF<f>{x, gy, gamma, stats, sums, dx, g});
}

}  // namespace naive

}  // namespace lldl::cuda
