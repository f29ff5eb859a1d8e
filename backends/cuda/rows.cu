// CUDA kernels of softmax, log_softmax, cross_entropy and
// cross_entropy_labels (float32). x, y are (rows, n); logits (N, C).
//
// Naive: one thread per row with the loops of bodies_rows.h; a loss's row
// terms go to scratch and one thread adds them. Fast: one warp per row, the
// max and the sums by warp shuffles, exp computed once per element and the
// loss fused into the same pass; row terms are added by a block reduction.
// That is the middle rung of cross_entropy_labels when the fused kernels are
// on (cuda_fused()): then a block of 512 threads per row computes the
// logsumexp in one online pass (CeFusedF, bodies_fused.h), the vocabulary
// sized rows of a language model being too long for one warp.
#include <math.h>

#include "backends/cuda/bodies_fused.h"
#include "backends/cuda/common.cuh"

namespace lldl::cuda {

namespace {

// Blocks of 8 warps, one warp per row (row_blocks, warp_row: common.cuh).

// Log-sum-exp of row xr, every lane gets it.
__device__ inline float warp_lse(const float* xr, int64_t n, int lane) {
  float m = -INFINITY;
  for (int64_t j = lane; j < n; j += 32) m = xr[j] > m ? xr[j] : m;
  m = warp_max(m);
  float s = 0;
  for (int64_t j = lane; j < n; j += 32) s += expf(xr[j] - m);
  return m + logf(warp_sum(s));
}

template <bool Log>
__global__ void softmax_warp_kernel(const float* x, float* y, int64_t rows, int64_t n) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const float* xr = x + r * n;
  float* yr = y + r * n;
  float m = -INFINITY;
  for (int64_t j = lane; j < n; j += 32) m = xr[j] > m ? xr[j] : m;
  m = warp_max(m);
  float s = 0;
  for (int64_t j = lane; j < n; j += 32) s += expf(xr[j] - m);
  s = warp_sum(s);
  if (Log) {
    const float lse = m + logf(s);
    for (int64_t j = lane; j < n; j += 32) yr[j] = xr[j] - lse;
  } else {
    const float inv = 1.0f / s;
    for (int64_t j = lane; j < n; j += 32) yr[j] = expf(xr[j] - m) * inv;
  }
}
// softmax: dx += y (dy - sum dy y); log_softmax: dx += dy - exp(y) sum dy.
template <bool Log>
__global__ void softmax_bwd_warp_kernel(const float* y, const float* g, float* d, int64_t rows, int64_t n) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const float *yr = y + r * n, *gr = g + r * n;
  float* dr = d + r * n;
  float s = 0;
  for (int64_t j = lane; j < n; j += 32) s += Log ? gr[j] : gr[j] * yr[j];
  s = warp_sum(s);
  for (int64_t j = lane; j < n; j += 32) dr[j] += Log ? gr[j] - expf(yr[j]) * s : yr[j] * (gr[j] - s);
}

template <bool Log>
void softmax_fwd(const KernelArgs& a) {
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const float* x = in<float>(a, 0);
  float* y = out<float>(a);
  DeviceLauncher run;
  if (!fast()) return naive::softmax_fwd(a, run);
  if (rows == 0) return;
  softmax_warp_kernel<Log><<<row_blocks(rows), kWarpsPerBlock * 32, 0, stream()>>>(x, y, rows, n);
  check_launch(Log ? "log_softmax" : "softmax");
}
template <bool Log>
void softmax_bwd(const KernelArgs& a) {
  float* d = gin<float>(a, 0);
  if (!d) return;
  const int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const float *y = out<float>(a), *g = gout<float>(a);
  DeviceLauncher run;
  if (!fast()) return naive::softmax_bwd(a, run);
  if (rows == 0) return;
  softmax_bwd_warp_kernel<Log><<<row_blocks(rows), kWarpsPerBlock * 32, 0, stream()>>>(y, g, d, rows, n);
  check_launch(Log ? "log_softmax backward" : "softmax backward");
}

// ---- cross-entropy ---------------------------------------------------------------
// loss = -1/N sum_r row[r], row[r] = sum_j t_rj (x_rj - lse_r) (soft targets)
// or x_r,y_r - lse_r (labels).

template <bool Labels>
__global__ void ce_row_warp_kernel(const float* x, const float* t, const int32_t* y, double* row,
                                   int64_t N, int64_t C) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= N) return;
  const float* xr = x + r * C;
  const float lse = warp_lse(xr, C, lane);
  if (Labels) {
    if (lane == 0) row[r] = static_cast<double>(xr[y[r]] - lse);
    return;
  }
  double acc = 0;
  for (int64_t j = lane; j < C; j += 32) acc += static_cast<double>(t[r * C + j] * (xr[j] - lse));
  acc = warp_sum(acc);
  if (lane == 0) row[r] = acc;
}
struct RowTerm {
  const double* row;
  __device__ double operator()(int64_t i) const { return row[i]; }
};

template <bool Labels>
void ce_fwd(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::ce_fwd(a, run);
  const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const float* x = in<float>(a, 0);
  const float* t = Labels ? nullptr : in<float>(a, 1);
  const int32_t* y = Labels ? in<int32_t>(a, 1) : nullptr;
  const char* what = Labels ? "cross_entropy_labels" : "cross_entropy";
  // Scratch: N row terms, then the block partial sums.
  double* row = static_cast<double*>(scratch(sizeof(double) * (N + kMaxPartials)));
  double* part = row + N;
  const double f = -1.0 / static_cast<double>(N);
  if (Labels && fused())
    launch_tiles(what, CeFusedF{x, y, nullptr, row, nullptr, N, C}, N, 1);
  else
    ce_row_warp_kernel<Labels><<<row_blocks(N), kWarpsPerBlock * 32, 0, stream()>>>(x, t, y, row, N, C);
  check_launch(what);
  device_sum(what, N, RowTerm{row}, f, out<float>(a), part);
}

// d x_rk += g/N (softmax_rk tsum_r - t_rk) (labels: t one-hot, tsum 1);
// d t_rk -= g/N (x_rk - lse_r)
template <bool Labels>
__global__ void ce_bwd_warp_kernel(const float* x, const float* t, const int32_t* y, const float* g,
                                   float* dx, float* dt, int64_t N, int64_t C) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= N) return;
  const float* xr = x + r * C;
  const float f = g[0] / static_cast<float>(N);
  const float lse = warp_lse(xr, C, lane);
  float tsum = 1.0f;
  if (!Labels) {
    tsum = 0;
    for (int64_t j = lane; j < C; j += 32) tsum += t[r * C + j];
    tsum = warp_sum(tsum);
  }
  for (int64_t j = lane; j < C; j += 32) {
    const float tj = Labels ? (j == y[r] ? 1.0f : 0.0f) : t[r * C + j];
    if (dx) dx[r * C + j] += f * (expf(xr[j] - lse) * tsum - tj);
    if (!Labels && dt) dt[r * C + j] -= f * (xr[j] - lse);
  }
}

template <bool Labels>
void ce_bwd(const KernelArgs& a) {
  const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const float *x = in<float>(a, 0), *g = gout<float>(a);
  const float* t = Labels ? nullptr : in<float>(a, 1);
  const int32_t* y = Labels ? in<int32_t>(a, 1) : nullptr;
  float *dx = gin<float>(a, 0), *dt = Labels ? nullptr : gin<float>(a, 1);
  if (!dx && !dt) return;
  const char* what = Labels ? "cross_entropy_labels backward" : "cross_entropy backward";
  DeviceLauncher run;
  if (!fast()) return naive::ce_bwd(a, run);
  if (N == 0) return;
  if (Labels && fused()) {
    if (dx) launch_tiles(what, CeFusedF{x, y, g, nullptr, dx, N, C}, N, 1);
    return;
  }
  ce_bwd_warp_kernel<Labels><<<row_blocks(N), kWarpsPerBlock * 32, 0, stream()>>>(x, t, y, g, dx, dt, N, C);
  check_launch(what);
}

}  // namespace

void register_rows(KernelPair* t) {
  t[int(OpKind::Softmax)] = {softmax_fwd<false>, softmax_bwd<false>};
  t[int(OpKind::LogSoftmax)] = {softmax_fwd<true>, softmax_bwd<true>};
  t[int(OpKind::CrossEntropy)] = {ce_fwd<false>, ce_bwd<false>};
  t[int(OpKind::CrossEntropyLabels)] = {ce_fwd<true>, ce_bwd<true>};
}

}  // namespace lldl::cuda
