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

// ---- column sums (bias gradients, strided reductions) --------------------------

namespace {
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
}  // namespace

void col_reduce(const char* what, const float* x, float* o, int64_t outer, int64_t n, int64_t inner,
                double scale, bool accumulate) {
  int64_t blocks = outer * ((inner + 31) / 32);
  if (blocks <= 0) return;
  col_reduce_kernel<<<static_cast<unsigned>(blocks), dim3(32, 8), 0, stream()>>>(x, o, outer, n, inner, scale, accumulate);
  check_launch(what);
}

namespace {

using Dev = DeviceLauncher;

void reshape_fwd(const KernelArgs&) {}  // the output is a view of x (Graph::record)

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

// ---- bias_add: x (rows, n) + b (n) ------------------------------------------

void bias_bwd(const KernelArgs& a) {
  Dev run;
  if (!fast()) return naive::bias_bwd(a, run);
  naive::pass_bwd(a, run);
  if (float* db = gin<float>(a, 1))
    col_reduce("bias_add backward", gout<float>(a), db, 1, a.out_shape.rows(), a.out_shape.last(), 1.0, true);
}

// ---- sum, mean ----------------------------------------------------------------

struct ValueTerm {  // f(i) = x[i], for device_sum
  const float* x;
  __device__ double operator()(int64_t i) const { return x[i]; }
};

void reduce_fwd(const KernelArgs& a) {
  Dev run;
  if (!fast()) return naive::reduce_fwd(a, run);
  const ReduceDims p = reduce_dims(a.in_shape, a.attr);
  const float* x = in<float>(a, 0);
  float* o = out<float>(a);
  const double scale = a.kind == OpKind::Mean ? 1.0 / static_cast<double>(p.n) : 1.0;
  if (p.inner > 1) return col_reduce("reduce", x, o, p.outer, p.n, p.inner, scale, false);
  if (p.outer == 1) {
    double* part = static_cast<double*>(scratch(sizeof(double) * kMaxPartials));
    return device_sum("reduce", p.n, ValueTerm{x}, scale, o, part);
  }
  const int64_t threads = 256, warps_per_block = threads / 32;
  row_sum_kernel<<<static_cast<unsigned>((p.outer + warps_per_block - 1) / warps_per_block), threads, 0, stream()>>>(
      x, o, p.outer, p.n, scale);
  check_launch("reduce");
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
  Dev run;
  if (!fast()) return naive::mse_fwd(a, run);
  const int64_t n = a.in_shape[0].numel();
  const float *p = in<float>(a, 0), *t = in<float>(a, 1);
  double* part = static_cast<double*>(scratch(sizeof(double) * kMaxPartials));
  device_sum("mse_loss", n, SquaredErrorTerm{p, t}, 1.0 / static_cast<double>(n), out<float>(a), part);
}
}  // namespace

void register_pointwise(KernelPair* t) {
  using namespace naive;
  t[int(OpKind::Add)] = {shared<add_fwd<Dev>>, shared<add_bwd<Dev>>};
  t[int(OpKind::Sub)] = {shared<sub_fwd<Dev>>, shared<sub_bwd<Dev>>};
  t[int(OpKind::Mul)] = {shared<mul_fwd<Dev>>, shared<mul_bwd<Dev>>};
  t[int(OpKind::Scale)] = {shared<scale_fwd<Dev>>, shared<scale_bwd<Dev>>};
  t[int(OpKind::BiasAdd)] = {shared<bias_fwd<Dev>>, cuda::bias_bwd};
  t[int(OpKind::Sigmoid)] = {shared<sigmoid_fwd<Dev>>, shared<sigmoid_bwd<Dev>>};
  t[int(OpKind::Tanh)] = {shared<tanh_fwd<Dev>>, shared<tanh_bwd<Dev>>};
  t[int(OpKind::Relu)] = {shared<relu_fwd<Dev>>, shared<relu_bwd<Dev>>};
  t[int(OpKind::Silu)] = {shared<silu_fwd<Dev>>, shared<silu_bwd<Dev>>};
  t[int(OpKind::Identity)] = {shared<identity_fwd<Dev>>, shared<pass_bwd<Dev>>};
  t[int(OpKind::Reshape)] = {cuda::reshape_fwd, shared<pass_bwd<Dev>>};
  t[int(OpKind::Dropout)] = {shared<dropout_fwd<Dev>>, shared<dropout_bwd<Dev>>};
  t[int(OpKind::Sum)] = {cuda::reduce_fwd, shared<reduce_bwd<Dev>>};
  t[int(OpKind::Mean)] = {cuda::reduce_fwd, shared<reduce_bwd<Dev>>};
  t[int(OpKind::MseLoss)] = {cuda::mse_fwd, shared<mse_bwd<Dev>>};
}

}  // namespace lldl::cuda

namespace lldl {

void cuda_optim_update(const CudaOptimArgs& c, int64_t n, float* p, const float* grad, float* m,
                       float* v, const float* scalars) {
  cuda::launch("optimizer", n, cuda::OptimF{c, p, grad, m, v, scalars});
}

}  // namespace lldl
