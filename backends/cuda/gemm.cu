// CUDA kernels of matmul, linear and conv2d (float32); shapes as in
// backends/cpu/matmul.cpp and conv.cpp.
//
// matmul: naive.h's plumbing over gemm() below, which is GemmF (one thread
// per element of C, a loop over K) in the naive tier and cuBLAS SGEMM in
// float (TF32 off, runtime.h) in the fast one.
// linear: the bias broadcast into y, then the GEMM with beta = 1 (naive.h,
// both tiers); backward, the two GEMMs of matmul and a column sum of dy for
// the bias, one thread per column (naive) or col_reduce (fast, as bias_add).
// linear_gelu: naive_fused.h (the GEMM, then bias + GELU in one pass on the
// fast rung), its gradients as linear's from du.
// conv2d: naive, one thread per output element (and per input pixel, weight
// and bias for the gradients), naive.h; fast, im2col into scratch and a
// strided-batched SGEMM per chunk of images (im2col.h), and a block reduction
// per channel for the bias gradient.
#include "backends/cuda/common.cuh"
#include "backends/cuda/im2col.h"
#include "backends/cuda/naive_fused.h"

#include <cuda_bf16.h>

#include <mutex>

namespace lldl::cuda {

namespace {

// BF16 autocast (device.h): the operands' bfloat16 copies, in a buffer of
// their own (the shared scratch may hold the im2col matrix a GEMM reads).
__nv_bfloat16* bf16_buffer(size_t elems) {
  static std::mutex mu;
  static void* p = nullptr;
  static size_t cap = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (elems * 2 > cap) {
    // A captured step may point into the old buffer for good: kept then.
    if (!captured_any()) cuda_free(p);
    p = nullptr;
    cap = 0;
    size_t want = (elems * 2 + (size_t(1) << 20) - 1) >> 20 << 20;
    p = cuda_alloc(want);
    cap = want;
  }
  return static_cast<__nv_bfloat16*>(p);
}

__global__ void to_bf16_kernel(const float* x, __nv_bfloat16* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16(x[i]);
}

// Elements from the first to the last that a strided batch of row-major
// matrices (rows x cols, row stride ld, batch stride sb) touches: the span a
// copy must cover (and no element past it, which may lie outside the tensor).
int64_t span(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t sb) {
  return (batch - 1) * sb + (rows - 1) * ld + cols;
}

void to_bf16(const float* x, __nv_bfloat16* y, int64_t n, const char* what) {
  int64_t grid = blocks_for(n);
  if (grid > 8 * 132) grid = 8 * 132;
  to_bf16_kernel<<<static_cast<unsigned>(grid), kBlock, 0, stream()>>>(x, y, n);
  check_launch(what);
}

// The graph's matmul precision (KernelArgs::precision, mixed-precision
// training) for the matmul / linear kernel running on this thread: set by
// at_precision around those kernels, read by gemm_ld beside the global
// switch set_cuda_bf16_gemm.
thread_local bool t_bf16_call = false;

// gemm_ld's cuBLAS call in bf16 x bf16 -> float, float accumulation.
void gemm_bf16(const char* what, cublasOperation_t opx, cublasOperation_t opy, int64_t M, int64_t N,
               int64_t K, const float* X, int64_t ldx, int64_t xr, int64_t xc, const float* Y,
               int64_t ldy, int64_t yr, int64_t yc, float* C, int64_t ldc, float beta, int64_t batch,
               int64_t sx, int64_t sy, int64_t sc) {
  const int64_t nx = span(xr, xc, ldx, batch, sx), ny = span(yr, yc, ldy, batch, sy);
  __nv_bfloat16* bx = bf16_buffer(size_t(nx + ny));
  __nv_bfloat16* by = bx + nx;
  to_bf16(X, bx, nx, what);
  to_bf16(Y, by, ny, what);
  const float one = 1.0f;
  check(cublasGemmStridedBatchedEx(blas(), opy, opx, int(N), int(M), int(K), &one, by, CUDA_R_16BF,
                                   int(ldy), sy, bx, CUDA_R_16BF, int(ldx), sx, &beta, C, CUDA_R_32F,
                                   int(ldc), sc, int(batch), CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT),
        what);
}

}  // namespace

// C_b (M, N) = op(X_b) @ op(Y_b) (+ C_b when acc), row-major: X_b stored
// (M, K), or (K, M) when tx, with row stride ldx; Y_b (K, N), or (N, K) when
// ty, row stride ldy; C_b row stride ldc.
//
// cuBLAS is column-major, where a row-major matrix reads as its transpose;
// so it computes C^T = op(Y)^T op(X)^T: Y first, with the leading dimensions
// of the stored row-major matrices.
void gemm_ld(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx,
             const float* Y, int64_t ldy, float* C, int64_t ldc, bool acc, int64_t batch, int64_t sx, int64_t sy,
             int64_t sc) {
  if (M == 0 || N == 0 || batch == 0) return;
  // Naive tier, or an empty sum (C = 0, or unchanged when accumulating):
  // GemmF, one thread per element of C.
  if (!fast() || K == 0) {
    if (K == 0 && acc) return;
    for (int64_t b = 0; b < batch; ++b)
      launch(what, M * N, GemmF<float>{X + b * sx, Y + b * sy, C + b * sc, M, N, K, tx, ty, acc, ldx, ldy, ldc});
    return;
  }
  const float one = 1.0f, beta = acc ? 1.0f : 0.0f;
  const cublasOperation_t opx = tx ? CUBLAS_OP_T : CUBLAS_OP_N, opy = ty ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (cuda_bf16_gemm() || t_bf16_call)
    return gemm_bf16(what, opx, opy, M, N, K, X, ldx, tx ? K : M, tx ? M : K, Y, ldy, ty ? N : K,
                     ty ? K : N, C, ldc, beta, batch, sx, sy, sc);
  if (batch == 1)
    check(cublasSgemm(blas(), opy, opx, int(N), int(M), int(K), &one, Y, int(ldy), X, int(ldx), &beta, C,
                      int(ldc)),
          what);
  else
    check(cublasSgemmStridedBatched(blas(), opy, opx, int(N), int(M), int(K), &one, Y, int(ldy), sy, X,
                                    int(ldx), sx, &beta, C, int(ldc), sc, int(batch)),
          what);
}

// The same with contiguous matrices.
void gemm(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X,
          const float* Y, float* C, bool acc, int64_t batch, int64_t sx, int64_t sy, int64_t sc) {
  gemm_ld(what, tx, ty, M, N, K, X, tx ? M : K, Y, ty ? K : N, C, N, acc, batch, sx, sy, sc);
}

namespace {

void matmul_fwd(const KernelArgs& a) {
  DeviceLauncher run;
  naive::matmul_fwd(a, run);
}
void matmul_bwd(const KernelArgs& a) {
  DeviceLauncher run;
  naive::matmul_bwd(a, run);
}

void linear_bwd(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::linear_bwd(a, run);
  naive::matmul_grads(a, run, "linear backward");
  const MatmulDims d = matmul_dims(a.in_shape, a.attr);
  if (float* db = gin<float>(a, 2)) col_reduce("linear backward", gout<float>(a), db, 1, d.M, d.N, 1.0, true);
}

// linear_gelu (naive_fused.h): the epilogue fused after the GEMM on the fast
// rung; dx, dw, db by linear's backward of the tier from du.
void linear_gelu_forward(const KernelArgs& a) {
  DeviceLauncher run;
  linear_gelu_fwd(a, run, fused());
}
void linear_gelu_backward(const KernelArgs& a) {
  if (!gin<float>(a, 0) && !gin<float>(a, 1) && !gin<float>(a, 2)) return;
  DeviceLauncher run;
  linear_bwd(linear_gelu_du(a, run, fused()));
}

// db[o] += sum over images and positions of dy[n, o, :], a block per channel.
__global__ void conv_bias_grad_kernel(const float* dy, float* db, ConvGeom g) {
  const int64_t o = blockIdx.x, L = g.L(), M = g.N * L;
  double s = 0;
  for (int64_t t = threadIdx.x; t < M; t += blockDim.x) s += dy[(t / L * g.OC + o) * L + t % L];
  s = block_sum(s);
  if (threadIdx.x == 0) db[o] += static_cast<float>(s);
}

void conv_fwd(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::conv_fwd(a, run);
  conv_im2col_fwd(a, run);
}

void conv_bwd(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::conv_bwd(a, run);
  const ConvGeom g = conv_geom(a.in_shape, a.attr);
  if (float* db = gin<float>(a, 2); db && g.OC > 0) {
    conv_bias_grad_kernel<<<static_cast<unsigned>(g.OC), 256, 0, stream()>>>(gout<float>(a), db, g);
    check_launch("conv2d backward");
  }
  conv_im2col_bwd(a, run, gin<float>(a, 0), gin<float>(a, 1));
}

// F with the graph's matmul precision in force for its GEMMs.
template <void (*F)(const KernelArgs&)>
void at_precision(const KernelArgs& a) {
  const bool prev = t_bf16_call;
  t_bf16_call = a.precision == MatmulPrecision::BF16;
  try {
    F(a);
  } catch (...) {
    t_bf16_call = prev;
    throw;
  }
  t_bf16_call = prev;
}

}  // namespace

void register_gemm(KernelPair* t) {
  t[int(OpKind::MatMul)] = {at_precision<matmul_fwd>, at_precision<matmul_bwd>};
  t[int(OpKind::Linear)] = {at_precision<shared<naive::linear_fwd<DeviceLauncher>>>,
                            at_precision<linear_bwd>};
  t[int(OpKind::LinearGelu)] = {at_precision<linear_gelu_forward>,
                                at_precision<linear_gelu_backward>};
  t[int(OpKind::Conv2d)] = {conv_fwd, conv_bwd};
}

}  // namespace lldl::cuda
