// The naive tier of the sequence-model ops (embedding, layer_norm, gelu,
// transpose, slice, concat, causal attention, LSTM), over a launcher `run` as in
// naive.h: one thread per output element, or per row / column / (batch row,
// unit) with the obvious loops. The pointwise and copy ops (embedding
// forward, gelu, transpose, slice, concat) run these same functions in the
// fast tier with a grid-stride launch (seq.cu). Shapes and workspace layouts
// are the CPU backend's (bodies_seq.h).
#pragma once
#include <cstdint>
#include <utility>

#include "backends/cuda/bodies_seq.h"
#include "backends/cuda/naive.h"

namespace lldl::cuda {

// ---- geometry from KernelArgs -----------------------------------------------------

// swap_geom, cut_geom, join_geom, attn_geom, lstm_geom: ops/geometry.h.

// lstm (x, w_ih, w_hh, b) or lstm_gates (gx, w_hh): w_ih and b null for the latter.
struct LstmIn {
  const float *x, *wih, *whh, *bias;
};
inline LstmIn lstm_in(const KernelArgs& a) {
  if (a.kind == OpKind::LstmGates) return {in<float>(a, 0), nullptr, in<float>(a, 1), nullptr};
  return {in<float>(a, 0), in<float>(a, 1), in<float>(a, 2), in<float>(a, 3)};
}

namespace naive {

// ---- pointwise and copies (both tiers) -------------------------------------------

template <class Launcher> void embedding_fwd(const KernelArgs& a, Launcher& run) {
  run("embedding", numel(a), EmbeddingF<f>{in<int32_t>(a, 0), in<f>(a, 1), out<f>(a), a.in_shape[1][1]});
}
template <class Launcher> void gelu_fwd(const KernelArgs& a, Launcher& run) {
  run("gelu", numel(a), GeluF<f>{in<f>(a, 0), out<f>(a)});
}
template <class Launcher> void gelu_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("gelu backward", numel(a), GeluBwdF<f>{in<f>(a, 0), gout<f>(a), d});
}
template <class Launcher> void transpose_fwd(const KernelArgs& a, Launcher& run) {
  run("transpose", numel(a), SwapF<f>{in<f>(a, 0), out<f>(a), swap_geom(a.in_shape, a.attr), false});
}
// dout is (A, n1, B, n0, C): swapping back is the same op with n0 and n1 exchanged.
template <class Launcher> void transpose_bwd(const KernelArgs& a, Launcher& run) {
  f* d = gin<f>(a, 0);
  if (!d) return;
  SwapGeom s = swap_geom(a.in_shape, a.attr);
  std::swap(s.n0, s.n1);
  run("transpose backward", numel(a), SwapF<f>{gout<f>(a), d, s, true});
}
template <class Launcher> void slice_fwd(const KernelArgs& a, Launcher& run) {
  run("slice", numel(a), SliceF<f>{in<f>(a, 0), out<f>(a), cut_geom(a.in_shape, a.attr)});
}
template <class Launcher> void slice_bwd(const KernelArgs& a, Launcher& run) {
  if (f* d = gin<f>(a, 0)) run("slice backward", numel(a), SliceBwdF<f>{gout<f>(a), d, cut_geom(a.in_shape, a.attr)});
}
template <class Launcher> void concat_fwd(const KernelArgs& a, Launcher& run) {
  const JoinGeom j = join_geom(a.in_shape, a.attr);
  run("concat", numel(a), ConcatF<f>{in<f>(a, 0), in<f>(a, 1), out<f>(a), j.na, j.nb});
}
// One input after the other (two launches in stream order), so concat(x, x)
// adds both halves into the one gradient.
template <class Launcher> void concat_bwd(const KernelArgs& a, Launcher& run) {
  const JoinGeom j = join_geom(a.in_shape, a.attr);
  if (f* d = gin<f>(a, 0)) run("concat backward", j.A * j.na, ConcatBwdF<f>{gout<f>(a), d, j.na, 0, j.na + j.nb});
  if (f* d = gin<f>(a, 1)) run("concat backward", j.A * j.nb, ConcatBwdF<f>{gout<f>(a), d, j.nb, j.na, j.na + j.nb});
}

// ---- naive only -------------------------------------------------------------------

template <class Launcher> void embedding_bwd(const KernelArgs& a, Launcher& run) {
  f* d = gin<f>(a, 1);
  if (!d) return;
  const int64_t C = a.in_shape[1][1];
  run("embedding backward", C, EmbeddingBwdColF<f>{in<int32_t>(a, 0), gout<f>(a), d, a.in_shape[0].numel(), C},
    true);
}

// Statistics per row (one thread each) into the workspace, then one thread
// per element.
template <class Launcher> void layer_norm_fwd(const KernelArgs& a, Launcher& run) {
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  f *mean = static_cast<f*>(a.ws), *rstd = mean + R;
  run("layer_norm", R, LnStatsF<f>{in<f>(a, 0), mean, rstd, C, a.attr.layer_norm.eps}, true);
  run("layer_norm", R * C, LnApplyF<f>{in<f>(a, 0), in<f>(a, 1), in<f>(a, 2), mean, rstd, out<f>(a), C});
}
template <class Launcher> void layer_norm_bwd(const KernelArgs& a, Launcher& run) {
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  const f *x = in<f>(a, 0), *g = gout<f>(a), *mean = static_cast<const f*>(a.ws), *rstd = mean + R;
  if (f* dx = gin<f>(a, 0)) run("layer_norm backward", R, LnBwdRowF<f>{x, in<f>(a, 1), g, mean, rstd, dx, C}, true);
  f *dgamma = gin<f>(a, 1), *dbeta = gin<f>(a, 2);
  if (dgamma || dbeta) run("layer_norm backward", C, LnBwdColF<f>{x, g, mean, rstd, dgamma, dbeta, R, C}, true);
}

// One thread per (b, h, t) row computes its scores, softmax (into the
// workspace P) and output row.
template <class Launcher> void attention_fwd(const KernelArgs& a, Launcher& run) {
  const AttnGeom g = attn_geom(a.in_shape, a.attr);
  run("causal_attention", g.B * g.NH * g.T, AttnRowF<f>{in<f>(a, 0), out<f>(a), static_cast<f*>(a.ws), g}, true);
}
// dS (B, NH, T, T) in scratch: rows (dq) first, then key positions (dk, dv).
template <class Launcher> void attention_bwd(const KernelArgs& a, Launcher& run) {
  f* dqkv = gin<f>(a, 0);
  const AttnGeom g = attn_geom(a.in_shape, a.attr);
  const int64_t rows = g.B * g.NH * g.T;
  if (!dqkv || rows == 0) return;
  const f *qkv = in<f>(a, 0), *dy = gout<f>(a), *P = static_cast<const f*>(a.ws);
  f* dS = static_cast<f*>(run.scratch(sizeof(f) * rows * g.T));
  run("causal_attention backward", rows, AttnBwdRowF<f>{qkv, dy, P, dS, dqkv, g}, true);
  run("causal_attention backward", rows, AttnBwdColF<f>{qkv, dy, P, dS, dqkv, g}, true);
}

// Per time step: one thread per (b, gate unit) for the pre-activations, then
// one per (b, unit) for the cell.
template <class Launcher> void lstm_fwd(const KernelArgs& a, Launcher& run) {
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  f *h = out<f>(a), *gates = static_cast<f*>(a.ws), *cs = gates + g.B * g.T * g.G();
  const LstmIn p = lstm_in(a);
  for (int64_t t = 0; t < g.T; ++t) {
    run("lstm", g.B * g.G(), LstmGatesF<f>{p.x, p.wih, p.whh, p.bias, h, gates, g, t});
    run("lstm", g.B * g.H, LstmCellF<f>{gates, cs, h, g, t});
  }
}

}  // namespace naive

// ---- LSTM backward (both tiers) ---------------------------------------------------
// Backward through time keeps the pre-activation gate gradients dG (B T, 4H)
// in scratch, with dh, dc (B, H), h shifted one step (B T, H) and a ones
// vector (B T). Per step t the recurrent dh = dG_{t+1} W_hh: naive, one
// thread per (b, unit) (LstmDhF); fast, one SGEMM. Then the cell's backward,
// one thread per (b, unit). At the end, one GEMM each (cuBLAS in the fast
// tier, GemmF in the naive one):
//   dx += dG W_ih,  dW_ih += dG^T x,  dW_hh += dG^T h_prev,  db += dG^T 1;
// lstm_gates: dgx += dG and dW_hh.
template <class Launcher>
void lstm_bwd(const KernelArgs& a, Launcher& run, bool fast) {
  using f = float;
  const bool gates_op = a.kind == OpKind::LstmGates;
  f *dx = gin<f>(a, 0), *dwih = gates_op ? nullptr : gin<f>(a, 1), *dwhh = gin<f>(a, gates_op ? 1 : 2),
    *db = gates_op ? nullptr : gin<f>(a, 3);
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  const int64_t N = g.B * g.T, G = g.G(), H = g.H;
  if (N == 0 || !(dx || dwih || dwhh || db)) return;
  const LstmIn p = lstm_in(a);
  const f *x = p.x, *wih = p.wih, *whh = p.whh, *h = out<f>(a), *dh_out = gout<f>(a);
  const f *gates = static_cast<const f*>(a.ws), *cs = gates + N * G;
  f* dG = static_cast<f*>(run.scratch(sizeof(f) * (N * G + 2 * g.B * H + N * H + N)));
  f *dh = dG + N * G, *dc = dh + g.B * H, *hp = dc + g.B * H, *ones = hp + N * H;
  run("lstm backward", g.B * H, FillF<f>{dc, 0.0f});
  for (int64_t t = g.T - 1; t >= 0; --t) {
    if (t == g.T - 1) run("lstm backward", g.B * H, FillF<f>{dh, 0.0f});
    else if (fast)  // dh (B, H) = dG_{t+1} (B, G; row stride T G) @ W_hh (G, H)
      run.gemm_ld("lstm backward", false, false, g.B, H, G, dG + (t + 1) * G, g.T * G, whh, H, dh, H, false, 1,
                0, 0, 0);
    else run("lstm backward", g.B * H, LstmDhF<f>{dG, whh, dh, g, t});
    run("lstm backward", g.B * H, LstmCellBwdF<f>{gates, cs, dh_out, dh, dc, dG, g, t});
  }
  if (dx && gates_op) run("lstm backward", N * G, AccF<f>{dG, dx, 1.0f, false});
  else if (dx) run.gemm("lstm backward", false, false, N, g.I, G, dG, wih, dx, true, 1, 0, 0, 0);
  if (dwih) run.gemm("lstm backward", true, false, G, g.I, N, dG, x, dwih, true, 1, 0, 0, 0);
  if (dwhh && g.T > 1) {
    run("lstm backward", N * H, LstmShiftF<f>{h, hp, g.T, H});
    run.gemm("lstm backward", true, false, G, H, N, dG, hp, dwhh, true, 1, 0, 0, 0);
  }
  if (db) {
    run("lstm backward", N, FillF<f>{ones, 1.0f});
    run.gemm("lstm backward", true, false, G, 1, N, dG, ones, db, true, 1, 0, 0, 0);
  }
}

}  // namespace lldl::cuda
