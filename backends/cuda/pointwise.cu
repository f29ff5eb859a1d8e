// CUDA kernels of the pointwise ops, reshape, dropout, sum / mean, mse_loss
// and the optimiser update (float32). Shapes as in backends/cpu.
//
// The per-element bodies are in bodies_pointwise.h. For pointwise ops both
// tiers run the same body, which is memory-bound either way; the tiers differ
// in the launch (one thread per element, or a capped grid-stride grid). The
// reductions differ for real: naive is one thread per output with a loop,
// fast is a warp per row (shuffles), a shared-memory tile for strided
// columns, or a two-pass block reduction for a full sum.
#include "backends/cuda/bodies_pointwise.h"
#include "backends/cuda/common.cuh"

namespace lldl::cuda {

namespace {

int64_t numel(const KernelArgs& a) { return a.out_shape.numel(); }

// ---- pointwise ------------------------------------------------------------

void add_fwd(const KernelArgs& a) {
  launch("add", numel(a), AddF<float>{in<float>(a, 0), in<float>(a, 1), out<float>(a)});
}
void add_bwd(const KernelArgs& a) {
  for (int k = 0; k < 2; ++k)
    if (float* d = gin<float>(a, k)) launch("add backward", numel(a), AccF<float>{gout<float>(a), d, 1.0f, false});
}
void sub_fwd(const KernelArgs& a) {
  launch("sub", numel(a), SubF<float>{in<float>(a, 0), in<float>(a, 1), out<float>(a)});
}
void sub_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0)) launch("sub backward", numel(a), AccF<float>{gout<float>(a), d, 1.0f, false});
  if (float* d = gin<float>(a, 1)) launch("sub backward", numel(a), AccF<float>{gout<float>(a), d, 1.0f, true});
}
void mul_fwd(const KernelArgs& a) {
  launch("mul", numel(a), MulF<float>{in<float>(a, 0), in<float>(a, 1), out<float>(a)});
}
void mul_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0)) launch("mul backward", numel(a), MulBwdF<float>{gout<float>(a), in<float>(a, 1), d});
  if (float* d = gin<float>(a, 1)) launch("mul backward", numel(a), MulBwdF<float>{gout<float>(a), in<float>(a, 0), d});
}
void scale_fwd(const KernelArgs& a) {
  launch("scale", numel(a), ScaleF<float>{in<float>(a, 0), out<float>(a), a.attr.scale.alpha});
}
void scale_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0))
    launch("scale backward", numel(a), AccF<float>{gout<float>(a), d, a.attr.scale.alpha, false});
}
// identity and reshape's backward: d += g.
void pass_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0)) launch("backward", numel(a), AccF<float>{gout<float>(a), d, 1.0f, false});
}
void identity_fwd(const KernelArgs& a) {
  launch("identity", numel(a), CopyF<float>{in<float>(a, 0), out<float>(a)});
}
void reshape_fwd(const KernelArgs&) {}  // the output is a view of x (Graph::record)

void sigmoid_fwd(const KernelArgs& a) { launch("sigmoid", numel(a), SigmoidF<float>{in<float>(a, 0), out<float>(a)}); }
void sigmoid_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0)) launch("sigmoid backward", numel(a), SigmoidBwdF<float>{out<float>(a), gout<float>(a), d});
}
void tanh_fwd(const KernelArgs& a) { launch("tanh", numel(a), TanhF<float>{in<float>(a, 0), out<float>(a)}); }
void tanh_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0)) launch("tanh backward", numel(a), TanhBwdF<float>{out<float>(a), gout<float>(a), d});
}
void relu_fwd(const KernelArgs& a) { launch("relu", numel(a), ReluF<float>{in<float>(a, 0), out<float>(a)}); }
void relu_bwd(const KernelArgs& a) {
  if (float* d = gin<float>(a, 0)) launch("relu backward", numel(a), ReluBwdF<float>{in<float>(a, 0), gout<float>(a), d});
}

// ---- bias_add: x (rows, n) + b (n) ------------------------------------------

// Column sums of a (outer, n, inner) tensor over n, for every (outer, column):
// a 32 x 8 block takes 32 adjacent columns (coalesced reads), its 8 rows of
// threads stride down n, and a shared-memory tile adds the 8 partial sums.
__global__ void col_reduce_kernel(const float* x, float* o, int64_t outer, int64_t n,
                                  int64_t inner, double scale, bool accumulate) {
  __shared__ double tile[8][33];  // 33: no bank conflicts on the transposed read
  const int64_t tiles = (inner + 31) / 32;
  const int64_t r = blockIdx.x / tiles, c = blockIdx.x % tiles * 32 + threadIdx.x;
  double s = 0;
  if (c < inner)
    for (int64_t k = threadIdx.y; k < n; k += 8) s += x[(r * n + k) * inner + c];
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= inner) return;
  for (int j = 1; j < 8; ++j) s += tile[j][threadIdx.x];
  float v = static_cast<float>(s * scale);
  if (accumulate) o[r * inner + c] += v;
  else o[r * inner + c] = v;
}
void col_reduce(const char* what, const float* x, float* o, int64_t outer, int64_t n, int64_t inner,
                double scale, bool accumulate) {
  int64_t blocks = outer * ((inner + 31) / 32);
  if (blocks <= 0) return;
  col_reduce_kernel<<<static_cast<unsigned>(blocks), dim3(32, 8)>>>(x, o, outer, n, inner, scale, accumulate);
  check_launch(what);
}

// One warp per row of a (rows, n) tensor: o[r] = scale * sum_j x[r, j].
__global__ void row_sum_kernel(const float* x, float* o, int64_t rows, int64_t n, double scale) {
  const int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;  // the whole warp leaves together
  double s = 0;
  for (int64_t j = lane; j < n; j += 32) s += x[r * n + j];
  s = warp_sum(s);
  if (lane == 0) o[r] = static_cast<float>(s * scale);
}

void bias_fwd(const KernelArgs& a) {
  launch("bias_add", numel(a), BiasF<float>{in<float>(a, 0), in<float>(a, 1), out<float>(a), a.out_shape.last()});
}
void bias_bwd(const KernelArgs& a) {
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  pass_bwd(a);
  float* db = gin<float>(a, 1);
  if (!db) return;
  if (fast()) col_reduce("bias_add backward", gout<float>(a), db, 1, rows, n, 1.0, true);
  else launch("bias_add backward", n, ColSumF<float>{gout<float>(a), db, rows, n});
}

// ---- dropout ----------------------------------------------------------------

bool dropout_active(const KernelArgs& a) { return a.attr.dropout.training && a.attr.dropout.p > 0.0f; }
DropMask dropout_mask(const KernelArgs& a) { return {mix64(a.attr.dropout.seed), a.attr.dropout.p}; }
float dropout_scale(const KernelArgs& a) { return 1.0f / (1.0f - a.attr.dropout.p); }

void dropout_fwd(const KernelArgs& a) {
  if (!dropout_active(a)) return identity_fwd(a);
  launch("dropout", numel(a), DropoutF<float>{in<float>(a, 0), out<float>(a), dropout_mask(a), dropout_scale(a)});
}
void dropout_bwd(const KernelArgs& a) {
  if (!dropout_active(a)) return pass_bwd(a);
  if (float* d = gin<float>(a, 0))
    launch("dropout backward", numel(a), DropoutBwdF<float>{gout<float>(a), d, dropout_mask(a), dropout_scale(a)});
}

// ---- sum, mean ----------------------------------------------------------------

ReduceDims reduce_dims(const KernelArgs& a) {
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

struct ValueTerm {  // f(i) = x[i], for device_sum
  const float* x;
  __device__ double operator()(int64_t i) const { return x[i]; }
};

template <bool Mean>
void reduce_fwd(const KernelArgs& a) {
  const ReduceDims p = reduce_dims(a);
  const float* x = in<float>(a, 0);
  float* o = out<float>(a);
  if (!fast()) return launch("reduce", p.outer * p.inner, ReduceF<float>{x, o, p, Mean}, true);
  const double scale = Mean ? 1.0 / static_cast<double>(p.n) : 1.0;
  if (p.inner > 1) return col_reduce("reduce", x, o, p.outer, p.n, p.inner, scale, false);
  if (p.outer == 1) {
    double* part = static_cast<double*>(scratch(sizeof(double) * kMaxPartials));
    return device_sum("reduce", p.n, ValueTerm{x}, scale, o, part);
  }
  const int64_t threads = 256, warps_per_block = threads / 32;
  row_sum_kernel<<<static_cast<unsigned>((p.outer + warps_per_block - 1) / warps_per_block), threads>>>(
      x, o, p.outer, p.n, scale);
  check_launch("reduce");
}
template <bool Mean>
void reduce_bwd(const KernelArgs& a) {
  float* d = gin<float>(a, 0);
  if (!d) return;
  const ReduceDims p = reduce_dims(a);
  const float f = Mean ? 1.0f / static_cast<float>(p.n) : 1.0f;
  launch("reduce backward", p.outer * p.n * p.inner, ReduceBwdF<float>{gout<float>(a), d, p, f});
}

// ---- mse_loss ----------------------------------------------------------------

struct SquaredErrorTerm {
  const float *p, *t;
  __device__ double operator()(int64_t i) const {
    double e = static_cast<double>(p[i]) - static_cast<double>(t[i]);
    return e * e;
  }
};

void mse_fwd(const KernelArgs& a) {
  const int64_t n = a.in_shape[0].numel();
  const float *p = in<float>(a, 0), *t = in<float>(a, 1);
  if (!fast()) return launch("mse_loss", 1, MseF<float>{p, t, out<float>(a), n}, true);
  double* part = static_cast<double*>(scratch(sizeof(double) * kMaxPartials));
  device_sum("mse_loss", n, SquaredErrorTerm{p, t}, 1.0 / static_cast<double>(n), out<float>(a), part);
}
void mse_bwd(const KernelArgs& a) {
  const int64_t n = a.in_shape[0].numel();
  const float *p = in<float>(a, 0), *t = in<float>(a, 1), *g = gout<float>(a);
  if (float* d = gin<float>(a, 0)) launch("mse_loss backward", n, MseBwdF<float>{p, t, g, d, n, false});
  if (float* d = gin<float>(a, 1)) launch("mse_loss backward", n, MseBwdF<float>{p, t, g, d, n, true});
}

}  // namespace

void register_pointwise(KernelPair* t) {
  t[int(OpKind::Add)] = {add_fwd, add_bwd};
  t[int(OpKind::Sub)] = {sub_fwd, sub_bwd};
  t[int(OpKind::Mul)] = {mul_fwd, mul_bwd};
  t[int(OpKind::Scale)] = {scale_fwd, scale_bwd};
  t[int(OpKind::BiasAdd)] = {bias_fwd, bias_bwd};
  t[int(OpKind::Sigmoid)] = {sigmoid_fwd, sigmoid_bwd};
  t[int(OpKind::Tanh)] = {tanh_fwd, tanh_bwd};
  t[int(OpKind::Relu)] = {relu_fwd, relu_bwd};
  t[int(OpKind::Identity)] = {identity_fwd, pass_bwd};
  t[int(OpKind::Reshape)] = {reshape_fwd, pass_bwd};
  t[int(OpKind::Dropout)] = {dropout_fwd, dropout_bwd};
  t[int(OpKind::Sum)] = {reduce_fwd<false>, reduce_bwd<false>};
  t[int(OpKind::Mean)] = {reduce_fwd<true>, reduce_bwd<true>};
  t[int(OpKind::MseLoss)] = {mse_fwd, mse_bwd};
}

}  // namespace lldl::cuda

namespace lldl {

void cuda_optim_update(const CudaOptimArgs& c, int64_t n, float* p, const float* grad, float* m,
                       float* v) {
  cuda::launch("optimizer", n, cuda::OptimF{c, p, grad, m, v});
}

}  // namespace lldl
