// conv2d by im2col + GEMM (the fast tier's conv), over a launcher `run` as in
// naive.h, with one more launcher member:
//
//   run.gemm(what, tx, ty, M, N, K, X, Y, C, acc, batch, sx, sy, sc)
//       C_b = op(X_b) @ op(Y_b) (+ C_b) for b < batch, element strides
//       sx, sy, sc (sx = 0: one X for all); row-major as GemmF.
//
// On the GPU that is cuBLAS (gemm.cu); in tests/test_cuda_host.cpp a loop of
// GemmF, so the im2col / col2im index plumbing is checked on the host.
// Shapes: x (N, C, H, W), w (OC, C, KH, KW), y (N, OC, OH, OW); K = C*KH*KW,
// L = OH*OW; col holds, per image, a (K, L) matrix.
#pragma once
#include "backends/cuda/naive.h"

namespace lldl::cuda {

// Images per chunk: a chunk's column matrices take at most 64 MiB of
// scratch (at least one image).
inline int64_t im2col_chunk(const ConvGeom& g) {
  const int64_t per = g.K() * g.L() * int64_t(sizeof(float));
  int64_t nb = per > 0 ? (int64_t(64) << 20) / per : g.N;
  return nb < 1 ? 1 : (nb > g.N ? g.N : nb);
}

// y_n (OC, L) = W (OC, K) @ col_n (K, L) + b, a chunk of images per GEMM call.
template <class Launcher>
void conv_im2col_fwd(const KernelArgs& a, Launcher& run) {
  const ConvGeom g = conv_geom(a.in_shape, a.attr);
  const float *x = in<float>(a, 0), *w = in<float>(a, 1), *b = in<float>(a, 2);
  float* y = out<float>(a);
  const int64_t K = g.K(), Lp = g.L(), nb = im2col_chunk(g);
  float* col = static_cast<float*>(run.scratch(sizeof(float) * nb * K * Lp));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t m = g.N - n0 < nb ? g.N - n0 : nb;
    run("conv2d im2col", m * K * Lp, Im2colF<float>{x, col, g, n0});
    run.gemm("conv2d", false, false, g.OC, Lp, K, w, col, y + n0 * g.OC * Lp, false, m, 0, K * Lp,
           g.OC * Lp);
  }
  run("conv2d bias", g.N * g.OC * Lp, ChannelBiasF<float>{b, y, g.OC, Lp});
}

// dW (OC, K) += dy_n (OC, L) @ col_n^T (L, K), image by image; dcol_n (K, L)
// = W^T (K, OC) @ dy_n (OC, L), which col2im adds into dx. db is not here.
template <class Launcher>
void conv_im2col_bwd(const KernelArgs& a, Launcher& run, float* dx, float* dw) {
  if (!dx && !dw) return;
  const ConvGeom g = conv_geom(a.in_shape, a.attr);
  const float *x = in<float>(a, 0), *w = in<float>(a, 1), *dy = gout<float>(a);
  const int64_t K = g.K(), Lp = g.L(), nb = im2col_chunk(g);
  float* col = static_cast<float*>(run.scratch(sizeof(float) * nb * K * Lp));
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t m = g.N - n0 < nb ? g.N - n0 : nb;
    if (dw) {
      run("conv2d backward im2col", m * K * Lp, Im2colF<float>{x, col, g, n0});
      for (int64_t i = 0; i < m; ++i)
        run.gemm("conv2d backward", false, true, g.OC, K, Lp, dy + (n0 + i) * g.OC * Lp, col + i * K * Lp,
               dw, true, 1, 0, 0, 0);
    }
    if (dx) {
      run.gemm("conv2d backward", true, false, K, Lp, g.OC, w, dy + n0 * g.OC * Lp, col, false, m, 0,
             g.OC * Lp, K * Lp);
      run("conv2d backward col2im", m * g.C * g.H * g.W, Col2imF<float>{col, dx, g, n0});
    }
  }
}

}  // namespace lldl::cuda
