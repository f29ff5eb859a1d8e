// Device-side helpers shared by the .cu kernel files: the launcher of the
// per-element bodies (hd.h, bodies_*.h), warp and block reductions, and
// KernelArgs accessors. nvcc only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/backend.h"
#include "backends/cuda/hd.h"
#include "backends/cuda/naive.h"
#include "backends/cuda/runtime.h"

namespace lldl::cuda {

// Runs body f for every i in [0, n) (grid-stride, see run_thread).
template <class F>
__global__ void for_each_kernel(F f, int64_t n) {
  run_thread(f, n, blockIdx.x, threadIdx.x, gridDim.x, blockDim.x);
}

// Launches f over n elements. The naive tier uses one thread per element;
// the fast tier caps the grid at a few waves of blocks and lets each thread
// stride, which saves block scheduling on large tensors. `always_naive`:
// one thread per element whatever the tier (bodies that are per row or per
// channel, where every thread already has a long loop).
template <class F>
void launch(const char* what, int64_t n, const F& f, bool always_naive = false) {
  if (n <= 0) return;
  int64_t grid = blocks_for(n);
  if (!always_naive && cuda_tier() == CudaTier::Fast && grid > 8 * 132) grid = 8 * 132;
  if (grid > 0x7fffffff) grid = 0x7fffffff;  // the grid-stride loop covers the rest
  for_each_kernel<<<static_cast<unsigned>(grid), kBlock, 0, stream()>>>(f, n);
  check_launch(what);
}

inline bool fast() { return cuda_tier() == CudaTier::Fast; }
// The fast tier's fused kernels (flash attention, fused cross-entropy).
inline bool fused() { return fast() && cuda_fused(); }

// Runs a cooperative tile body (hd.h: host_tiles is its host emulation) on
// a gx x gy grid with its dynamic shared memory.
template <class B>
__global__ void __launch_bounds__(B::kThreads) tiles_kernel(B body) {
  extern __shared__ __align__(16) float smem[];  // float4 reads of the tiles
  typename B::State st;
  const int64_t bx = blockIdx.x, by = blockIdx.y;
  const int tid = threadIdx.x;
  body.begin(bx, by, tid, smem, st);
  __syncthreads();
  const int n = body.steps(bx);
  for (int j = 0; j < n; ++j) {
    body.load(bx, by, j, tid, smem);
    __syncthreads();
    for (int p = 0; p < B::kPhases; ++p) {
      body.step(bx, by, j, p, tid, smem, st);
      __syncthreads();
    }
  }
  body.end(bx, by, tid, smem, st);
}
template <class B>
void launch_tiles(const char* what, const B& body, int64_t gx, int64_t gy) {
  if (gx <= 0 || gy <= 0) return;
  const size_t bytes = body.smem_floats() * sizeof(float);
  // Past 48 KB of dynamic shared memory a kernel must opt in; raising the
  // limit per launch is cheap, but once per instantiation is enough for the
  // largest size seen so far.
  static size_t opted = 48 * 1024;
  if (bytes > opted) {
    check(cudaFuncSetAttribute(tiles_kernel<B>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
          what);
    opted = bytes;
  }
  tiles_kernel<B><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), B::kThreads, bytes, stream()>>>(body);
  check_launch(what);
}

// Row-major GEMMs on the GPU, C_b = op(X_b) op(Y_b) (+ C_b): cuBLAS in the
// fast tier, GemmF (one thread per element) in the naive one (gemm.cu).
void gemm(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X,
          const float* Y, float* C, bool acc, int64_t batch, int64_t sx, int64_t sy, int64_t sc);
// The same with row strides ldx, ldy, ldc (slices of packed tensors).
void gemm_ld(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx,
             const float* Y, int64_t ldy, float* C, int64_t ldc, bool acc, int64_t batch, int64_t sx, int64_t sy,
             int64_t sc);

// The launcher of naive.h and im2col.h on the GPU.
struct DeviceLauncher {
  template <class F>
  void operator()(const char* what, int64_t n, const F& f, bool per_row = false) const {
    launch(what, n, f, per_row);
  }
  void* scratch(size_t bytes) const { return cuda::scratch(bytes); }
  void gemm(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X,
            const float* Y, float* C, bool acc, int64_t batch, int64_t sx, int64_t sy, int64_t sc) const {
    cuda::gemm(what, tx, ty, M, N, K, X, Y, C, acc, batch, sx, sy, sc);
  }
  void gemm_ld(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx,
               const float* Y, int64_t ldy, float* C, int64_t ldc, bool acc, int64_t batch, int64_t sx,
               int64_t sy, int64_t sc) const {
    cuda::gemm_ld(what, tx, ty, M, N, K, X, ldx, Y, ldy, C, ldc, acc, batch, sx, sy, sc);
  }
};

// The registered kernel for a body (naive.h, naive_seq.h) that both tiers
// share: runs it with the device launcher.
template <void (*Fn)(const KernelArgs&, DeviceLauncher&)>
void shared(const KernelArgs& a) {
  DeviceLauncher run;
  Fn(a, run);
}

// Column sums of a (outer, n, inner) tensor over n into o (outer, inner),
// times scale, added to o when accumulating: 32 x 8 blocks, a shared-memory
// tile for the partial sums (pointwise.cu). The bias gradients of bias_add
// and linear and the fast tier's strided reductions.
void col_reduce(const char* what, const float* x, float* o, int64_t outer, int64_t n, int64_t inner,
                double scale, bool accumulate);

// ---- one warp per row ----------------------------------------------------------
// Blocks of kWarpsPerBlock warps; warp w of the grid takes row w and leaves
// as a whole when w >= rows (so every shuffle sees 32 live lanes).
constexpr int kWarpsPerBlock = 8;
inline unsigned row_blocks(int64_t rows) {
  return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
}
__device__ inline int64_t warp_row() { return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; }

// ---- reductions --------------------------------------------------------------

template <class V>
__device__ inline V warp_sum(V v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return __shfl_sync(0xffffffffu, v, 0);  // every lane gets the total
}
template <class V>
__device__ inline V warp_max(V v) {
  for (int o = 16; o > 0; o >>= 1) {
    V u = __shfl_down_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return __shfl_sync(0xffffffffu, v, 0);
}
// Sum over the whole block (blockDim.x a multiple of 32, <= 1024); every
// thread gets the total. Uses 32 doubles of shared memory.
__device__ inline double block_sum(double v) {
  __shared__ double part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // part may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = lane < nw ? part[lane] : 0.0;
  return warp_sum(v);
}

// sum_i f(i) * scale over i in [0, n) into *o, on the device: blocks write
// partial sums to part (>= kMaxPartials doubles of scratch the caller
// carved), then one block adds them, in a fixed order (deterministic). f
// returns double. The fast tier's scalar losses and full reductions.
constexpr int kMaxPartials = 256;
template <class F>
__global__ void partial_sums_kernel(F f, int64_t n, double* part) {
  double acc = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    acc += f(i);
  acc = block_sum(acc);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}
template <class T>
__global__ void finish_sum_kernel(const double* part, int n, double scale, T* o) {
  double acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += part[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) o[0] = static_cast<T>(acc * scale);
}
template <class F, class T>
void device_sum(const char* what, int64_t n, const F& f, double scale, T* o, double* part) {
  const int threads = 256;
  int64_t blocks = blocks_for(n, threads);
  if (blocks > kMaxPartials) blocks = kMaxPartials;
  if (blocks < 1) blocks = 1;
  partial_sums_kernel<<<static_cast<int>(blocks), threads, 0, stream()>>>(f, n, part);
  check_launch(what);
  finish_sum_kernel<<<1, 256, 0, stream()>>>(part, static_cast<int>(blocks), scale, o);
  check_launch(what);
}

// Register the kernels of one file into the float32 column.
void register_pointwise(KernelPair* t);  // pointwise.cu
void register_rows(KernelPair* t);       // rows.cu
void register_pool_bn(KernelPair* t);    // pool_bn.cu
void register_gemm(KernelPair* t);       // gemm.cu
void register_seq(KernelPair* t);        // seq.cu
void register_attention_lstm(KernelPair* t);  // attention_lstm.cu

}  // namespace lldl::cuda
