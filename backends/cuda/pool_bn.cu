// CUDA kernels of max_pool2d, avg_pool2d and batch_norm (float32). Shapes
// and formulas as in backends/cpu/pool.cpp and batchnorm.cpp.
//
// Pooling. Forward: one thread per output window in both tiers (the fast
// tier with a grid-stride launch). Backward, naive: one thread per input
// pixel gathering from every window that covers it (no atomics). Fast: one
// thread per window adding its gradient into the pixel(s) it came from with
// atomicAdd (conflict-free for the usual non-overlapping windows).
//
// Batch norm. Naive: one thread per channel computes the statistics with
// loops (to scratch), then one thread per element applies them. Fast: one
// block per channel, statistics by block reductions (warp shuffles + shared
// memory), normalisation in the same kernel.
#include "backends/cuda/common.cuh"

namespace lldl::cuda {

namespace {

__global__ void max_pool_scatter_kernel(const float* x, const float* dy, float* dx, PoolGeom g) {
  const int64_t n = g.planes * g.OH * g.OW;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t ow = idx % g.OW, oh = idx / g.OW % g.OH, p = idx / (g.OW * g.OH);
    const float* xp = x + p * g.H * g.W;
    atomicAdd(dx + p * g.H * g.W + window_argmax(xp, g, oh, ow), dy[idx]);
  }
}
__global__ void avg_pool_scatter_kernel(const float* dy, float* dx, PoolGeom g) {
  const int64_t n = g.planes * g.OH * g.OW;
  const float inv = 1.0f / static_cast<float>(g.k * g.k);
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t ow = idx % g.OW, oh = idx / g.OW % g.OH, p = idx / (g.OW * g.OH);
    float* dxp = dx + p * g.H * g.W + oh * g.S * g.W + ow * g.S;
    const float d = dy[idx] * inv;
    for (int64_t i = 0; i < g.k; ++i)
      for (int64_t j = 0; j < g.k; ++j) atomicAdd(dxp + i * g.W + j, d);
  }
}
unsigned grid_for(int64_t n) {
  int64_t b = blocks_for(n);
  return static_cast<unsigned>(b < 8 * 132 ? b : 8 * 132);
}

void pool_fwd(const KernelArgs& a) {
  DeviceLauncher run;  // both tiers: the fast one launches a grid-stride grid
  naive::pool_fwd(a, run);
}
void pool_bwd(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::pool_bwd(a, run);
  float* dx = gin<float>(a, 0);
  if (!dx) return;
  const PoolGeom g = pool_geom(a.in_shape, a.attr);
  const int64_t n = g.planes * g.OH * g.OW;
  if (n == 0) return;
  if (a.kind == OpKind::MaxPool2d) max_pool_scatter_kernel<<<grid_for(n), kBlock, 0, stream()>>>(in<float>(a, 0), gout<float>(a), dx, g);
  else avg_pool_scatter_kernel<<<grid_for(n), kBlock, 0, stream()>>>(gout<float>(a), dx, g);
  check_launch(a.kind == OpKind::MaxPool2d ? "max_pool2d backward" : "avg_pool2d backward");
}

// ---- batch norm ------------------------------------------------------------------

// Element t of channel c's M = N*S values.
__device__ inline int64_t bn_at(const BnGeom& g, int64_t c, int64_t t) {
  return (t / g.S * g.C + c) * g.S + t % g.S;
}
// Mean and 1/sqrt(var + eps) of channel blockIdx.x, in every thread: batch
// statistics (two block reductions) when training, else the running ones;
// with `update`, thread 0 moves the running buffers.
__device__ inline void bn_block_stats(const float* x, float* rm, float* rv, const BnGeom& g,
                                      bool update, double* mean, double* invstd) {
  const int64_t c = blockIdx.x, M = g.N * g.S;
  if (!g.training) {
    *mean = rm[c];
    *invstd = 1.0 / sqrt(static_cast<double>(rv[c]) + g.eps);
    return;
  }
  double s = 0;
  for (int64_t t = threadIdx.x; t < M; t += blockDim.x) s += x[bn_at(g, c, t)];
  const double m = block_sum(s) / static_cast<double>(M);
  double q = 0;
  for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
    double d = x[bn_at(g, c, t)] - m;
    q += d * d;
  }
  const double var = block_sum(q) / static_cast<double>(M);
  if (update && threadIdx.x == 0) {
    rm[c] = static_cast<float>((1 - g.momentum) * rm[c] + g.momentum * m);
    rv[c] = static_cast<float>((1 - g.momentum) * rv[c] + g.momentum * var * M / (M - 1));
  }
  *mean = m;
  *invstd = 1.0 / sqrt(var + g.eps);
}

__global__ void bn_fwd_block_kernel(const float* x, const float* gamma, const float* beta, float* rm,
                                    float* rv, float* o, BnGeom g) {
  double mean, invstd;
  bn_block_stats(x, rm, rv, g, true, &mean, &invstd);
  const int64_t c = blockIdx.x, M = g.N * g.S;
  const double scale = gamma[c] * invstd, shift = beta[c] - mean * scale;
  for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
    const int64_t i = bn_at(g, c, t);
    o[i] = static_cast<float>(scale * x[i] + shift);
  }
}
__global__ void bn_bwd_block_kernel(const float* x, const float* gamma, const float* rm, const float* rv,
                                    const float* gy, float* dx, float* dgamma, float* dbeta,
                                    float* drm, float* drv, BnGeom g) {
  double mean, invstd;
  bn_block_stats(x, const_cast<float*>(rm), const_cast<float*>(rv), g, false, &mean, &invstd);
  const int64_t c = blockIdx.x, M = g.N * g.S;
  double sg = 0, sgx = 0;
  for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
    const int64_t i = bn_at(g, c, t);
    sg += gy[i];
    sgx += gy[i] * ((x[i] - mean) * invstd);
  }
  sg = block_sum(sg);
  sgx = block_sum(sgx);
  const double gi = gamma[c] * invstd;
  if (threadIdx.x == 0) {
    if (dbeta) dbeta[c] += static_cast<float>(sg);
    if (dgamma) dgamma[c] += static_cast<float>(sgx);
    if (!g.training && drm) drm[c] += static_cast<float>(-gi * sg);
    if (!g.training && drv) drv[c] += static_cast<float>(-0.5 * gi * invstd * sgx);
  }
  if (!dx) return;
  for (int64_t t = threadIdx.x; t < M; t += blockDim.x) {
    const int64_t i = bn_at(g, c, t);
    double v = gy[i];
    if (g.training) v -= (sg + (x[i] - mean) * invstd * sgx) / static_cast<double>(M);
    dx[i] += static_cast<float>(gi * v);
  }
}

void bn_fwd(const KernelArgs& a) {
  const BnGeom g = bn_geom(a);
  const float *x = in<float>(a, 0), *gamma = in<float>(a, 1), *beta = in<float>(a, 2);
  // The running buffers, updated in place in training (as on the CPU).
  float* rm = const_cast<float*>(in<float>(a, 3));
  float* rv = const_cast<float*>(in<float>(a, 4));
  if (g.C == 0) return;
  if (fast()) {
    bn_fwd_block_kernel<<<static_cast<unsigned>(g.C), 256, 0, stream()>>>(x, gamma, beta, rm, rv, out<float>(a), g);
    return check_launch("batch_norm");
  }
  DeviceLauncher run;
  naive::bn_fwd(a, run);
}
void bn_bwd(const KernelArgs& a) {
  const BnGeom g = bn_geom(a);
  const float *x = in<float>(a, 0), *gamma = in<float>(a, 1), *gy = gout<float>(a);
  float* rm = const_cast<float*>(in<float>(a, 3));
  float* rv = const_cast<float*>(in<float>(a, 4));
  float *dx = gin<float>(a, 0), *dgamma = gin<float>(a, 1), *dbeta = gin<float>(a, 2);
  float *drm = gin<float>(a, 3), *drv = gin<float>(a, 4);
  if (g.C == 0) return;
  if (fast()) {
    bn_bwd_block_kernel<<<static_cast<unsigned>(g.C), 256, 0, stream()>>>(x, gamma, rm, rv, gy, dx, dgamma, dbeta,
                                                             drm, drv, g);
    return check_launch("batch_norm backward");
  }
  DeviceLauncher run;
  naive::bn_bwd(a, run);
}

}  // namespace

void register_pool_bn(KernelPair* t) {
  t[int(OpKind::MaxPool2d)] = {pool_fwd, pool_bwd};
  t[int(OpKind::AvgPool2d)] = {pool_fwd, pool_bwd};
  t[int(OpKind::BatchNorm)] = {bn_fwd, bn_bwd};
}

}  // namespace lldl::cuda
