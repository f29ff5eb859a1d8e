// Kernel bodies of the sequence-model ops: embedding, layer_norm, gelu,
// transpose, slice, concat, causal attention and the LSTM. One call computes
// one output element, or one row / column / (batch row, unit) where the
// comment says so. Run on the GPU by for_each_kernel and on the host by
// host_launch (hd.h); the CPU kernels (backends/cpu/{embedding, layernorm,
// gelu, layout, attention, lstm}.cpp) are the reference, and the shapes and
// workspace layouts are theirs. Backward bodies ACCUMULATE.
#pragma once
#include <cstdint>

#include "backends/cuda/hd.h"
#include "ops/geometry.h"

namespace lldl::cuda {

// o[i] = v (zeroing scratch, the ones vector of a column sum).
template <class T> struct FillF {
  T* o; T v;
  LLDL_HD void operator()(int64_t i) const { o[i] = v; }
};

// ---- embedding: ids (n), table (V, C), out (n, C) -----------------------------

template <class T> struct EmbeddingF {
  const int32_t* ids; const T* table; T* o; int64_t C;
  LLDL_HD void operator()(int64_t i) const { o[i] = table[static_cast<int64_t>(ids[i / C]) * C + i % C]; }
};
// dtable[ids[i], c] += dout[i, c]: one thread per column c walks the ids in
// order, so a repeated id needs no atomics and the sum order is the CPU's.
template <class T> struct EmbeddingBwdColF {
  const int32_t* ids; const T* g; T* d; int64_t n, C;
  LLDL_HD void operator()(int64_t c) const {
    for (int64_t i = 0; i < n; ++i) d[static_cast<int64_t>(ids[i]) * C + c] += g[i * C + c];
  }
};

// ---- layer_norm: x (R, C), gamma, beta (C), ws = mean (R) then rstd (R) ------------

// One thread per row: mean and rstd = 1/sqrt(biased var + eps), in double.
template <class T> struct LnStatsF {
  const T* x; T *mean, *rstd; int64_t C; double eps;
  LLDL_HD void operator()(int64_t r) const {
    const T* xr = x + r * C;
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    const double m = s / static_cast<double>(C);
    double q = 0;
    for (int64_t c = 0; c < C; ++c) q += (xr[c] - m) * (xr[c] - m);
    mean[r] = static_cast<T>(m);
    rstd[r] = static_cast<T>(1.0 / hsqrt(q / static_cast<double>(C) + eps));
  }
};
// out = gamma xhat + beta, xhat = (x - mean) rstd.
template <class T> struct LnApplyF {
  const T *x, *gamma, *beta, *mean, *rstd; T* o; int64_t C;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t r = i / C, c = i % C;
    o[i] = gamma[c] * ((x[i] - mean[r]) * rstd[r]) + beta[c];
  }
};
// One thread per row: dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),
// dxhat = g gamma; the sums in double.
template <class T> struct LnBwdRowF {
  const T *x, *gamma, *g, *mean, *rstd; T* dx; int64_t C;
  LLDL_HD void operator()(int64_t r) const {
    const T *xr = x + r * C, *gr = g + r * C;
    const T mr = mean[r], sr = rstd[r];
    double sd = 0, sdx = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double dxh = static_cast<double>(gr[c]) * gamma[c];
      sd += dxh;
      sdx += dxh * ((xr[c] - mr) * sr);
    }
    const double md = sd / static_cast<double>(C), mdx = sdx / static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (xr[c] - mr) * sr;
      dx[r * C + c] += static_cast<T>(sr * (static_cast<double>(gr[c]) * gamma[c] - md - xhat * mdx));
    }
  }
};
// One thread per column: dbeta += sum_r g, dgamma += sum_r g xhat (either may be null).
template <class T> struct LnBwdColF {
  const T *x, *g, *mean, *rstd; T *dgamma, *dbeta; int64_t R, C;
  LLDL_HD void operator()(int64_t c) const {
    double sg = 0, sgx = 0;
    for (int64_t r = 0; r < R; ++r) {
      sg += g[r * C + c];
      sgx += static_cast<double>(g[r * C + c]) * ((x[r * C + c] - mean[r]) * rstd[r]);
    }
    if (dbeta) dbeta[c] += static_cast<T>(sg);
    if (dgamma) dgamma[c] += static_cast<T>(sgx);
  }
};

// ---- gelu (tanh approximation), through s = sigmoid(2u) as the CPU does --------

constexpr double kGeluK0 = 0.7978845608028654, kGeluK1 = 0.044715;  // sqrt(2/pi), cubic
template <class T> struct GeluF {
  const T* x; T* o;
  LLDL_HD void operator()(int64_t i) const {
    const T v = x[i], k2 = static_cast<T>(-2 * kGeluK0), k1 = static_cast<T>(kGeluK1);
    o[i] = v * (T(1) / (T(1) + hexp(k2 * (v + k1 * (v * v * v)))));
  }
};
// d += g (s + 2 x s (1 - s) k0 (1 + 3 k1 x^2)), x clamped to [-20, 20] (the
// derivative is 0 or 1 past it; the clamp keeps x^2 finite).
template <class T> struct GeluBwdF {
  const T *x, *g; T* d;
  LLDL_HD void operator()(int64_t i) const {
    const T k0 = static_cast<T>(kGeluK0), k1 = static_cast<T>(kGeluK1);
    T v = x[i] < T(-20) ? T(-20) : x[i];
    v = v > T(20) ? T(20) : v;
    const T s = T(1) / (T(1) + hexp(T(-2) * k0 * (v + k1 * (v * v * v))));
    d[i] += g[i] * (s + T(2) * k0 * v * s * (T(1) - s) * (T(1) + T(3) * k1 * (v * v)));
  }
};

// ---- transpose, slice, concat (SwapGeom, CutGeom, JoinGeom: ops/geometry.h) -----

// dst (A, n1, B, n0, C) = (or +=) src (A, n0, B, n1, C): one thread per dst
// element, so accumulating needs no atomics.
template <class T> struct SwapF {
  const T* src; T* dst; SwapGeom s; bool add;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t r = idx / s.C;
    const int64_t c = idx % s.C, i = r % s.n0;
    r /= s.n0;
    const int64_t b = r % s.B;
    r /= s.B;
    const int64_t j = r % s.n1, a = r / s.n1;
    const T v = src[(((a * s.n0 + i) * s.B + b) * s.n1 + j) * s.C + c];
    if (add) dst[idx] += v;
    else dst[idx] = v;
  }
};
// slice: x (A, D, C), out (A, length, C) = x[:, start:start+length, :].
template <class T> struct SliceF {
  const T* x; T* o; CutGeom s;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t c = i % s.C, r = i / s.C;
    o[i] = x[(r / s.length * s.D + s.start + r % s.length) * s.C + c];
  }
};
template <class T> struct SliceBwdF {  // one thread per element of dout
  const T* g; T* d; CutGeom s;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t c = i % s.C, r = i / s.C;
    d[(r / s.length * s.D + s.start + r % s.length) * s.C + c] += g[i];
  }
};
// concat: row k of out (na + nb values) is row k of a (na) then of b (nb).
template <class T> struct ConcatF {
  const T *x, *y; T* o; int64_t na, nb;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t w = na + nb, k = i / w, c = i % w;
    o[i] = c < na ? x[k * na + c] : y[k * nb + c - na];
  }
};
// d (rows of n values) += the columns [off, off + n) of dout's rows (w values).
template <class T> struct ConcatBwdF {
  const T* g; T* d; int64_t n, off, w;
  LLDL_HD void operator()(int64_t i) const { d[i] += g[i / n * w + off + i % n]; }
};

// ---- causal attention: qkv (B, T, 3C), y (B, T, C), P (B, NH, T, T) --------------
// Head h of batch row b: q_t = qkv[b, t, hD : hD+D], k_t at +C, v_t at +2C;
// y_t = y[b, t, hD : hD+D]. Rows of P and dS are indexed r = (b NH + h) T + t.

// AttnGeom: ops/geometry.h.

// Row t of P (unscaled scores on entry, s <= t): softmax_{s<=t}(scale S),
// max-subtracted as on the CPU; zero for s > t.
template <class T>
LLDL_HD inline void masked_softmax_row(T* p, int64_t t, int64_t n, T scale) {
  T m = p[0];
  for (int64_t s = 1; s <= t; ++s) m = p[s] > m ? p[s] : m;
  T sum = 0;
  for (int64_t s = 0; s <= t; ++s) sum += (p[s] = hexp((p[s] - m) * scale));
  const T inv = T(1) / sum;
  for (int64_t s = 0; s <= t; ++s) p[s] *= inv;
  for (int64_t s = t + 1; s < n; ++s) p[s] = T(0);
}
// Row t of dS (dP on entry): P (dP - sum_{s<=t} dP P) scale; zero for s > t.
template <class T>
LLDL_HD inline void masked_softmax_bwd_row(const T* p, T* ds, int64_t t, int64_t n, T scale) {
  T dot = 0;
  for (int64_t s = 0; s <= t; ++s) dot += ds[s] * p[s];
  for (int64_t s = 0; s <= t; ++s) ds[s] = p[s] * (ds[s] - dot) * scale;
  for (int64_t s = t + 1; s < n; ++s) ds[s] = T(0);
}
// The fast tier's softmax steps over rows of the (B NH T, T) matrices (on the
// GPU a warp per row does the same, attention_lstm.cu).
template <class T> struct AttnSoftmaxRowF {
  T* P; int64_t Tn; T scale;
  LLDL_HD void operator()(int64_t r) const { masked_softmax_row(P + r * Tn, r % Tn, Tn, scale); }
};
template <class T> struct AttnSoftmaxBwdRowF {
  const T* P; T* dS; int64_t Tn; T scale;
  LLDL_HD void operator()(int64_t r) const { masked_softmax_bwd_row(P + r * Tn, dS + r * Tn, r % Tn, Tn, scale); }
};

// Naive forward, one thread per row r = (b, h, t): scores, softmax, y_t = sum_s P_ts v_s.
template <class T> struct AttnRowF {
  const T* qkv; T *y, *P; AttnGeom g;
  LLDL_HD void operator()(int64_t r) const {
    const int64_t t = r % g.T, h = r / g.T % g.NH, b = r / (g.T * g.NH);
    const T* q = qkv + g.qkv(b, h, t);
    T* p = P + r * g.T;
    for (int64_t s = 0; s <= t; ++s) {
      const T* k = qkv + g.qkv(b, h, s) + g.C;
      T acc = 0;
      for (int64_t d = 0; d < g.D; ++d) acc += q[d] * k[d];
      p[s] = acc;
    }
    masked_softmax_row(p, t, g.T, static_cast<T>(g.scale));
    T* yr = y + g.y(b, h, t);
    for (int64_t d = 0; d < g.D; ++d) {
      T acc = 0;
      for (int64_t s = 0; s <= t; ++s) acc += p[s] * qkv[g.qkv(b, h, s) + 2 * g.C + d];
      yr[d] = acc;
    }
  }
};
// Naive backward, step 1, one thread per row r = (b, h, t): dP_ts = dy_t . v_s,
// dS row into scratch, dq_t += sum_s dS_ts k_s.
template <class T> struct AttnBwdRowF {
  const T *qkv, *dy, *P; T *dS, *dqkv; AttnGeom g;
  LLDL_HD void operator()(int64_t r) const {
    const int64_t t = r % g.T, h = r / g.T % g.NH, b = r / (g.T * g.NH);
    const T* gy = dy + g.y(b, h, t);
    T* ds = dS + r * g.T;
    for (int64_t s = 0; s <= t; ++s) {
      const T* v = qkv + g.qkv(b, h, s) + 2 * g.C;
      T acc = 0;
      for (int64_t d = 0; d < g.D; ++d) acc += gy[d] * v[d];
      ds[s] = acc;
    }
    masked_softmax_bwd_row(P + r * g.T, ds, t, g.T, static_cast<T>(g.scale));
    T* dq = dqkv + g.qkv(b, h, t);
    for (int64_t d = 0; d < g.D; ++d) {
      T acc = 0;
      for (int64_t s = 0; s <= t; ++s) acc += ds[s] * qkv[g.qkv(b, h, s) + g.C + d];
      dq[d] += acc;
    }
  }
};
// Naive backward, step 2, one thread per key position (b, h, s):
// dk_s += sum_{t>=s} dS_ts q_t,  dv_s += sum_{t>=s} P_ts dy_t.
template <class T> struct AttnBwdColF {
  const T *qkv, *dy, *P, *dS; T* dqkv; AttnGeom g;
  LLDL_HD void operator()(int64_t col) const {
    const int64_t s = col % g.T, bh = col / g.T, h = bh % g.NH, b = bh / g.NH;
    T *dk = dqkv + g.qkv(b, h, s) + g.C, *dv = dk + g.C;
    for (int64_t d = 0; d < g.D; ++d) {
      T ak = 0, av = 0;
      for (int64_t t = s; t < g.T; ++t) {
        const int64_t e = (bh * g.T + t) * g.T + s;
        ak += dS[e] * qkv[g.qkv(b, h, t) + d];
        av += P[e] * dy[g.y(b, h, t) + d];
      }
      dk[d] += ak;
      dv[d] += av;
    }
  }
};

// ---- LSTM: x (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H), h (B, T, H) -------------
// lstm_gates: gx (B, T, 4H) = x W_ih^T + b given, w_hh; no w_ih, no b (I = 4H).
// Workspace: activated gates (B, T, 4H) in the order i, f, g, o, then the
// cell states (B, T, H). Row r = b T + t of the (B T, .) matrices is (b, t).

// LstmGeom: ops/geometry.h.
template <class T>
LLDL_HD inline T sigm(T v) { return T(1) / (T(1) + hexp(-v)); }

// Naive step t, one thread per (b, gate unit k): the pre-activation
// x_t W_ih^T + b (+ h_{t-1} W_hh^T), summed in the CPU's order; wih null
// (lstm_gates): x is gx and holds x_t W_ih^T + b.
template <class T> struct LstmGatesF {
  const T *x, *wih, *whh, *bias, *h; T* gates; LstmGeom g; int64_t t;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t G = g.G(), b = i / G, k = i % G, r = b * g.T + t;
    T acc = 0;
    if (wih) {
      for (int64_t j = 0; j < g.I; ++j) acc += x[r * g.I + j] * wih[k * g.I + j];
      acc += bias[k];
    } else {
      acc = x[r * G + k];
    }
    if (t > 0) {
      T rec = 0;
      for (int64_t j = 0; j < g.H; ++j) rec += h[(r - 1) * g.H + j] * whh[k * g.H + j];
      acc += rec;
    }
    gates[r * G + k] = acc;
  }
};
// Step t, one thread per (b, unit j): activates its four gates in place and
// writes c_t and h_t (c_{-1} = 0). Both tiers.
template <class T> struct LstmCellF {
  T *gates, *cs, *h; LstmGeom g; int64_t t;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t b = i / g.H, j = i % g.H, r = b * g.T + t;
    T* q = gates + r * g.G();
    const T ig = sigm(q[j]), fg = sigm(q[g.H + j]), gg = htanh(q[2 * g.H + j]), og = sigm(q[3 * g.H + j]);
    q[j] = ig, q[g.H + j] = fg, q[2 * g.H + j] = gg, q[3 * g.H + j] = og;
    const T c = t > 0 ? fg * cs[(r - 1) * g.H + j] + ig * gg : ig * gg;
    cs[r * g.H + j] = c;
    h[r * g.H + j] = og * htanh(c);
  }
};
// Naive step t < T-1, one thread per (b, unit j): dh[b, j] = sum_k dG_{t+1}[b, k] W_hh[k, j].
template <class T> struct LstmDhF {
  const T *dG, *whh; T* dh; LstmGeom g; int64_t t;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t b = i / g.H, j = i % g.H, G = g.G();
    const T* row = dG + (b * g.T + t + 1) * G;
    T acc = 0;
    for (int64_t k = 0; k < G; ++k) acc += row[k] * whh[k * g.H + j];
    dh[i] = acc;
  }
};
// Step t of backward through time, one thread per (b, unit j). In: dh (the
// recurrent part dG_{t+1} W_hh), dc (from step t+1). Out: the pre-activation
// gate gradients dG_t; dc becomes the gradient of c_{t-1}.
template <class T> struct LstmCellBwdF {
  const T *gates, *cs, *dh_out, *dh; T *dc, *dG; LstmGeom g; int64_t t;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t b = i / g.H, j = i % g.H, r = b * g.T + t, H = g.H;
    const T* q = gates + r * g.G();
    const T ig = q[j], fg = q[H + j], gg = q[2 * H + j], og = q[3 * H + j];
    const T dht = dh[i] + dh_out[r * H + j], tc = htanh(cs[r * H + j]);
    const T dct = dc[i] + dht * og * (T(1) - tc * tc);  // through h = o tanh(c)
    T* dq = dG + r * g.G();
    dq[j] = dct * gg * ig * (T(1) - ig);
    dq[H + j] = t > 0 ? dct * cs[(r - 1) * H + j] * fg * (T(1) - fg) : T(0);
    dq[2 * H + j] = dct * ig * (T(1) - gg * gg);
    dq[3 * H + j] = dht * tc * og * (T(1) - og);
    dc[i] = dct * fg;
  }
};
// hp[b, t] = h[b, t-1], zero at t = 0: the inputs of W_hh's gradient GEMM.
template <class T> struct LstmShiftF {
  const T* h; T* hp; int64_t Tn, H;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t t = i / H % Tn;
    hp[i] = t > 0 ? h[i - H] : T(0);
  }
};

}  // namespace lldl::cuda
