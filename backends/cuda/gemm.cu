// CUDA kernels of matmul and conv2d (float32). Shapes as in
// backends/cpu/matmul.cpp and conv.cpp.
//
// Naive: one thread per output element with its dot product loop (GemmF,
// ConvF and the conv gradient bodies in bodies_layers.h). Fast: cuBLAS
// SGEMM in float (TF32 off, see runtime.h) for matmul and its gradients; for
// conv2d, im2col into scratch and one strided-batched SGEMM per chunk of
// images (forward and dx via col2im), one SGEMM per image for dW, and a
// block reduction per channel for db.
#include "backends/cuda/bodies_layers.h"
#include "backends/cuda/common.cuh"

namespace lldl::cuda {

namespace {

// C (M, N) = op(X) @ op(Y) (+ C when acc), row-major, on the GPU: X is stored
// (M, K) or (K, M) when tx, Y (K, N) or (N, K) when ty. `batch` products with
// element strides sx, sy, sc between them (sx = 0: the same X for all).
//
// cuBLAS is column-major; a row-major matrix is its transpose there, so
// C^T = op(Y)^T op(X)^T is computed: Y comes first, with the leading
// dimensions of the stored row-major matrices.
void gemm(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X,
          const float* Y, float* C, bool acc, int64_t batch = 1, int64_t sx = 0, int64_t sy = 0,
          int64_t sc = 0) {
  if (M == 0 || N == 0) return;
  const float one = 1.0f, beta = acc ? 1.0f : 0.0f;
  const int ldx = static_cast<int>(tx ? M : K), ldy = static_cast<int>(ty ? K : N);
  const cublasOperation_t opx = tx ? CUBLAS_OP_T : CUBLAS_OP_N, opy = ty ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (!fast()) {
    for (int64_t b = 0; b < batch; ++b)
      launch(what, M * N, GemmF<float>{X + b * sx, Y + b * sy, C + b * sc, M, N, K, tx, ty, acc});
    return;
  }
  if (K == 0) {  // cuBLAS with k = 0 scales C by beta: C = 0 or unchanged
    if (!acc) for (int64_t b = 0; b < batch; ++b) cuda_memset(C + b * sc, 0, sizeof(float) * M * N);
    return;
  }
  if (batch == 1)
    check(cublasSgemm(blas(), opy, opx, int(N), int(M), int(K), &one, Y, ldy, X, ldx, &beta, C, int(N)),
          what);
  else
    check(cublasSgemmStridedBatched(blas(), opy, opx, int(N), int(M), int(K), &one, Y, ldy, sy, X, ldx,
                                    sx, &beta, C, int(N), sc, int(batch)),
          what);
}

// ---- matmul ------------------------------------------------------------------

struct MatmulDims {
  int64_t M, N, K;
  bool ta, tb;
};
MatmulDims matmul_dims(const KernelArgs& a) {
  const Shape &sa = a.in_shape[0], &sb = a.in_shape[1];
  bool ta = a.attr.matmul.trans_a, tb = a.attr.matmul.trans_b;
  return {ta ? sa[1] : sa[0], tb ? sb[0] : sb[1], ta ? sa[0] : sa[1], ta, tb};
}

void matmul_fwd(const KernelArgs& a) {
  const MatmulDims d = matmul_dims(a);
  gemm("matmul", d.ta, d.tb, d.M, d.N, d.K, in<float>(a, 0), in<float>(a, 1), out<float>(a), false);
}
// With C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, each
// undone into the stored layout when that operand was transposed.
void matmul_bwd(const KernelArgs& a) {
  const MatmulDims d = matmul_dims(a);
  const float *A = in<float>(a, 0), *B = in<float>(a, 1), *dC = gout<float>(a);
  if (float* dA = gin<float>(a, 0)) {
    if (!d.ta) gemm("matmul backward", false, !d.tb, d.M, d.K, d.N, dC, B, dA, true);  // (M,N)(N,K)
    else gemm("matmul backward", d.tb, true, d.K, d.M, d.N, B, dC, dA, true);         // (K,N)(N,M)
  }
  if (float* dB = gin<float>(a, 1)) {
    if (!d.tb) gemm("matmul backward", !d.ta, false, d.K, d.N, d.M, A, dC, dB, true);  // (K,M)(M,N)
    else gemm("matmul backward", true, d.ta, d.N, d.K, d.M, dC, A, dB, true);          // (N,M)(M,K)
  }
}

// ---- conv2d --------------------------------------------------------------------

ConvGeom conv_geom(const KernelArgs& a) {
  const Shape &x = a.in_shape[0], &w = a.in_shape[1], &y = a.out_shape;
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], a.attr.conv.stride, a.attr.conv.padding};
}

// Images per im2col chunk: the column matrices of a chunk take at most
// 64 MiB of scratch (at least one image).
int64_t chunk_images(const ConvGeom& g) {
  const int64_t per = g.K() * g.L() * int64_t(sizeof(float));
  int64_t nb = per > 0 ? (int64_t(64) << 20) / per : g.N;
  return nb < 1 ? 1 : (nb > g.N ? g.N : nb);
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
  const ConvGeom g = conv_geom(a);
  const float *x = in<float>(a, 0), *w = in<float>(a, 1), *b = in<float>(a, 2);
  float* y = out<float>(a);
  const int64_t K = g.K(), L = g.L();
  if (!fast()) return launch("conv2d", g.N * g.OC * L, ConvF<float>{x, w, b, y, g});
  const int64_t nb = chunk_images(g);
  float* col = static_cast<float*>(scratch(sizeof(float) * nb * K * L));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t m = g.N - n0 < nb ? g.N - n0 : nb;
    launch("conv2d im2col", m * K * L, Im2colF<float>{x, col, g, n0});
    // Y_n (OC, L) = W (OC, K) @ col_n (K, L) for the m images at once.
    gemm("conv2d", false, false, g.OC, L, K, w, col, y + n0 * g.OC * L, false, m, 0, K * L, g.OC * L);
  }
  launch("conv2d bias", g.N * g.OC * L, ChannelBiasF<float>{b, y, g.OC, L});
}

void conv_bwd(const KernelArgs& a) {
  const ConvGeom g = conv_geom(a);
  const float *x = in<float>(a, 0), *w = in<float>(a, 1), *dy = gout<float>(a);
  float *dx = gin<float>(a, 0), *dw = gin<float>(a, 1), *db = gin<float>(a, 2);
  const int64_t K = g.K(), L = g.L();
  if (!fast()) {
    if (db) launch("conv2d backward", g.OC, ConvBwdBF<float>{dy, db, g}, true);
    if (dw) launch("conv2d backward", g.OC * K, ConvBwdWF<float>{dy, x, dw, g}, true);
    if (dx) launch("conv2d backward", g.N * g.C * g.H * g.W, ConvBwdXF<float>{dy, w, dx, g});
    return;
  }
  if (db && g.OC > 0) {
    conv_bias_grad_kernel<<<static_cast<unsigned>(g.OC), 256>>>(dy, db, g);
    check_launch("conv2d backward");
  }
  if (!dw && !dx) return;
  const int64_t nb = chunk_images(g);
  float* col = static_cast<float*>(scratch(sizeof(float) * nb * K * L));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t m = g.N - n0 < nb ? g.N - n0 : nb;
    if (dw) {
      // dW (OC, K) += dY_n (OC, L) @ col_n^T (L, K), image by image.
      launch("conv2d backward im2col", m * K * L, Im2colF<float>{x, col, g, n0});
      for (int64_t i = 0; i < m; ++i)
        gemm("conv2d backward", false, true, g.OC, K, L, dy + (n0 + i) * g.OC * L, col + i * K * L, dw, true);
    }
    if (dx) {
      // dcol_n (K, L) = W^T (K, OC) @ dY_n (OC, L), then col2im adds it into dx.
      gemm("conv2d backward", true, false, K, L, g.OC, w, dy + n0 * g.OC * L, col, false, m, 0,
           g.OC * L, K * L);
      launch("conv2d backward col2im", m * g.C * g.H * g.W, Col2imF<float>{col, dx, g, n0});
    }
  }
}

}  // namespace

void register_gemm(KernelPair* t) {
  t[int(OpKind::MatMul)] = {matmul_fwd, matmul_bwd};
  t[int(OpKind::Conv2d)] = {conv_fwd, conv_bwd};
}

}  // namespace lldl::cuda
