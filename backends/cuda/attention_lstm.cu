// CUDA kernels of causal_attention and lstm (float32). Shapes and the
// workspaces (attention: softmax probabilities P (B, n_head, T, T), zero
// above the diagonal; lstm: activated gates (B, T, 4H), then cell states
// (B, T, H)) as in backends/cpu/attention.cpp and lstm.cpp, so either tier's
// backward reads what its forward wrote in the layout the graph allocated.
//
// Attention. Naive: one thread per (b, head, t) row with loops for the
// scores, the softmax and the output row; backward a thread per row (dS, dq)
// then per key position (dk, dv). Fast (seq_gemm.h): per head, strided-
// batched SGEMMs read Q, K, V straight out of qkv (leading dimension 3C):
// S = Q K^T, then a warp per row does the masked, scaled softmax in place,
// Y = P V; backward dV += P^T dY, dP = dY V^T, a warp per row turns dP into
// dS, dQ += dS K, dK += dS^T Q. This is the middle rung when the fused
// kernels are on (cuda_fused()): then flash attention (bodies_fused.h) runs
// instead wherever it fits (head dim <= 64), with the per-row logsumexp in
// the workspace in place of P.
// LSTM. Naive: per time step a thread per (b, gate unit) for the pre-
// activations and a thread per (b, unit) for the cell (naive_seq.h). Fast:
// one SGEMM x W_ih^T over all steps, then per step an SGEMM adding
// h_{t-1} W_hh^T and the fused cell kernel (seq_gemm.h). Backward through
// time (lstm_bwd, naive_seq.h) with per-step SGEMMs for dh and one GEMM
// each for dx, dW_ih, dW_hh and db at the end. lstm_gates (gx, w_hh) runs the
// same kernels with the input projection already done.
#include <math.h>

#include "backends/cuda/bodies_fused.h"
#include "backends/cuda/common.cuh"
#include "backends/cuda/seq_gemm.h"

namespace lldl::cuda {

namespace {

// Row r of P (T entries, unscaled scores on entry; t = r mod T):
// softmax_{s<=t}(scale S) with the maximum subtracted, zero for s > t.
__global__ void attn_softmax_warp_kernel(float* P, int64_t rows, int64_t T, float scale) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const int64_t t = r % T;
  float* p = P + r * T;
  float m = -INFINITY;
  for (int64_t s = lane; s <= t; s += 32) m = p[s] > m ? p[s] : m;
  m = warp_max(m);
  float sum = 0;
  for (int64_t s = lane; s <= t; s += 32) sum += (p[s] = expf((p[s] - m) * scale));
  const float inv = 1.0f / warp_sum(sum);
  for (int64_t s = lane; s < T; s += 32) p[s] = s <= t ? p[s] * inv : 0.0f;
}
// dS = P (dP - sum_{s<=t} dP P) scale, zero for s > t (dS holds dP on entry).
__global__ void attn_softmax_bwd_warp_kernel(const float* P, float* dS, int64_t rows, int64_t T, float scale) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const int64_t t = r % T;
  const float* p = P + r * T;
  float* d = dS + r * T;
  float dot = 0;
  for (int64_t s = lane; s <= t; s += 32) dot += d[s] * p[s];
  dot = warp_sum(dot);
  for (int64_t s = lane; s < T; s += 32) d[s] = s <= t ? p[s] * (d[s] - dot) * scale : 0.0f;
}

// The fast rung: a block per (tile, head); see bodies_fused.h.
bool flash(const KernelArgs& a) { return fused() && flash_fits(attn_geom(a.in_shape, a.attr)); }
void flash_forward(const KernelArgs& a) {
  const AttnGeom g = attn_geom(a.in_shape, a.attr);
  const FlashFwdF body{in<float>(a, 0), out<float>(a), static_cast<float*>(a.ws), g, static_cast<float>(g.scale)};
  launch_tiles("causal_attention", body, flash_tiles(g.T), g.B * g.NH);
}
void flash_backward(const KernelArgs& a) {
  float* dqkv = gin<float>(a, 0);
  const AttnGeom g = attn_geom(a.in_shape, a.attr);
  const int64_t rows = g.B * g.NH * g.T;
  if (!dqkv || rows == 0) return;
  const char* what = "causal_attention backward";
  const float *qkv = in<float>(a, 0), *dy = gout<float>(a), *lse = static_cast<const float*>(a.ws);
  float* delta = static_cast<float*>(scratch(sizeof(float) * rows));
  launch(what, rows, FlashDeltaF{out<float>(a), dy, delta, g}, true);
  const float scale = static_cast<float>(g.scale);
  launch_tiles(what, FlashBwdKVF{qkv, dy, lse, delta, dqkv, g, scale}, flash_tiles(g.T), g.B * g.NH);
  launch_tiles(what, FlashBwdQF{qkv, dy, lse, delta, dqkv, g, scale}, flash_tiles(g.T), g.B * g.NH);
}

void attention_forward(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::attention_fwd(a, run);
  if (flash(a)) return flash_forward(a);
  attention_gemm_fwd(a, run, [](float* P, int64_t rows, int64_t T, float scale) {
    attn_softmax_warp_kernel<<<row_blocks(rows), kWarpsPerBlock * 32, 0, stream()>>>(P, rows, T, scale);
    check_launch("causal_attention");
  });
}
void attention_backward(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::attention_bwd(a, run);
  if (flash(a)) return flash_backward(a);
  attention_gemm_bwd(a, run, [](const float* P, float* dS, int64_t rows, int64_t T, float scale) {
    attn_softmax_bwd_warp_kernel<<<row_blocks(rows), kWarpsPerBlock * 32, 0, stream()>>>(P, dS, rows, T, scale);
    check_launch("causal_attention backward");
  });
}

void lstm_forward(const KernelArgs& a) {
  DeviceLauncher run;
  if (!fast()) return naive::lstm_fwd(a, run);
  lstm_gemm_fwd(a, run);
}
void lstm_backward(const KernelArgs& a) {
  DeviceLauncher run;
  lstm_bwd(a, run, fast());
}

}  // namespace

void register_attention_lstm(KernelPair* t) {
  t[int(OpKind::Attention)] = {attention_forward, attention_backward};
  t[int(OpKind::Lstm)] = {lstm_forward, lstm_backward};
  t[int(OpKind::LstmGates)] = {lstm_forward, lstm_backward};
}

}  // namespace lldl::cuda
