// The fast tier's causal attention and LSTM forward: GEMMs (cuBLAS on the
// GPU) with strides into the packed tensors, and small fused kernels between
// them. Written over a launcher L as in naive.h and im2col.h, with
//
//   run.gemm_ld(what, tx, ty, M, N, K, X, ldx, Y, ldy, C, ldc, acc, batch, sx, sy, sc)
//       C_b = op(X_b) @ op(Y_b) (+ C_b) for b < batch, row-major with leading
//       dimensions ldx, ldy, ldc and batch strides sx, sy, sc (elements),
//
// so that tests/test_cuda_host.cpp checks the strides and offsets on the
// host (GemmF for the GEMMs). The masked-softmax steps of attention are
// passed in: a warp per row on the GPU (attention_lstm.cu), the row bodies
// of bodies_seq.h on the host. The LSTM backward is lstm_bwd (naive_seq.h).
#pragma once
#include "backends/cuda/naive_seq.h"

namespace lldl::cuda {

// The (b, h) head slices as GEMM batches: cuBLAS's strided batches take one
// stride, so one index is a loop of calls and the other the batch (the
// larger one, fewer calls). Per call: offsets o_*; per batch entry: strides s_*.
struct HeadBatches {
  int64_t calls, batch;
  int64_t o_qkv, o_y, o_p, s_qkv, s_y, s_p;
};
inline HeadBatches head_batches(const AttnGeom& g) {
  const int64_t b_qkv = g.T * 3 * g.C, b_y = g.T * g.C, b_p = g.NH * g.T * g.T;  // next batch row
  const int64_t h_qkv = g.D, h_y = g.D, h_p = g.T * g.T;                        // next head
  if (g.B <= g.NH) return {g.B, g.NH, b_qkv, b_y, b_p, h_qkv, h_y, h_p};
  return {g.NH, g.B, h_qkv, h_y, h_p, b_qkv, b_y, b_p};
}

// Per head: S = Q K^T (T x T, into P), P = masked softmax(scale S) in place
// (softmax(P, rows, T, scale)), Y = P V. The full T x T products are
// computed; the softmax zeroes s > t, so P V sums the causal part only.
template <class Launcher, class Softmax>
void attention_gemm_fwd(const KernelArgs& a, Launcher& run, Softmax&& softmax) {
  const AttnGeom g = attn_geom(a.in_shape, a.attr);
  const int64_t rows = g.B * g.NH * g.T, ld = 3 * g.C;
  if (rows == 0) return;
  const float* qkv = in<float>(a, 0);
  float *y = out<float>(a), *P = static_cast<float*>(a.ws);
  const HeadBatches hb = head_batches(g);
  for (int64_t i = 0; i < hb.calls; ++i) {
    const float* q = qkv + i * hb.o_qkv;
    run.gemm_ld("causal_attention", false, true, g.T, g.T, g.D, q, ld, q + g.C, ld, P + i * hb.o_p, g.T, false,
              hb.batch, hb.s_qkv, hb.s_qkv, hb.s_p);
  }
  softmax(P, rows, g.T, static_cast<float>(g.scale));
  for (int64_t i = 0; i < hb.calls; ++i)
    run.gemm_ld("causal_attention", false, false, g.T, g.D, g.T, P + i * hb.o_p, g.T,
              qkv + i * hb.o_qkv + 2 * g.C, ld, y + i * hb.o_y, g.C, false, hb.batch, hb.s_p, hb.s_qkv, hb.s_y);
}

// Per head, with dS (B, NH, T, T) in scratch:
//   dV += P^T dY;  dS = dY V^T (dP), then softmax_bwd(P, dS, rows, T, scale)
//   turns it into P (dP - rowsum(dP P)) scale, zero for s > t;
//   dQ += dS K;  dK += dS^T Q.
template <class Launcher, class SoftmaxBwd>
void attention_gemm_bwd(const KernelArgs& a, Launcher& run, SoftmaxBwd&& softmax_bwd) {
  float* dqkv = gin<float>(a, 0);
  const AttnGeom g = attn_geom(a.in_shape, a.attr);
  const int64_t rows = g.B * g.NH * g.T, ld = 3 * g.C;
  if (!dqkv || rows == 0) return;
  const float *qkv = in<float>(a, 0), *dy = gout<float>(a), *P = static_cast<const float*>(a.ws);
  float* dS = static_cast<float*>(run.scratch(sizeof(float) * rows * g.T));
  const HeadBatches hb = head_batches(g);
  const char* what = "causal_attention backward";
  for (int64_t i = 0; i < hb.calls; ++i) {
    const int64_t oq = i * hb.o_qkv, op = i * hb.o_p, oy = i * hb.o_y;
    run.gemm_ld(what, true, false, g.T, g.D, g.T, P + op, g.T, dy + oy, g.C, dqkv + oq + 2 * g.C, ld, true, hb.batch,
              hb.s_p, hb.s_y, hb.s_qkv);
    run.gemm_ld(what, false, true, g.T, g.T, g.D, dy + oy, g.C, qkv + oq + 2 * g.C, ld, dS + op, g.T, false,
              hb.batch, hb.s_y, hb.s_qkv, hb.s_p);
  }
  softmax_bwd(P, dS, rows, g.T, static_cast<float>(g.scale));
  for (int64_t i = 0; i < hb.calls; ++i) {
    const int64_t oq = i * hb.o_qkv, op = i * hb.o_p;
    run.gemm_ld(what, false, false, g.T, g.D, g.T, dS + op, g.T, qkv + oq + g.C, ld, dqkv + oq, ld, true, hb.batch,
              hb.s_p, hb.s_qkv, hb.s_qkv);
    run.gemm_ld(what, true, false, g.T, g.D, g.T, dS + op, g.T, qkv + oq, ld, dqkv + oq + g.C, ld, true, hb.batch,
              hb.s_p, hb.s_qkv, hb.s_qkv);
  }
}

// gates = x W_ih^T over all B T rows (one GEMM), + b (lstm_gates: a copy of
// gx); then per step t the recurrent h_{t-1} W_hh^T added by one GEMM over
// the B rows of step t (row stride T in gates and h), and the fused cell
// (LstmCellF), one thread per (b, unit).
template <class Launcher>
void lstm_gemm_fwd(const KernelArgs& a, Launcher& run) {
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  const int64_t N = g.B * g.T, G = g.G();
  if (N == 0) return;
  float *h = out<float>(a), *gates = static_cast<float*>(a.ws), *cs = gates + N * G;
  const LstmIn p = lstm_in(a);
  if (p.wih) {
    run.gemm("lstm", false, true, N, G, g.I, p.x, p.wih, gates, false, 1, 0, 0, 0);
    run("lstm", N * G, BiasF<float>{gates, p.bias, gates, G});
  } else {
    run("lstm", N * G, CopyF<float>{p.x, gates});
  }
  for (int64_t t = 0; t < g.T; ++t) {
    if (t > 0)
      run.gemm_ld("lstm", false, true, g.B, G, g.H, h + (t - 1) * g.H, g.T * g.H, p.whh, g.H,
                gates + t * G, g.T * G, true, 1, 0, 0, 0);
    run("lstm", g.B * g.H, LstmCellF<float>{gates, cs, h, g, t});
  }
}

}  // namespace lldl::cuda
