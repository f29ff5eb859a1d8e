// Naive kernel bodies of the layers with loops inside an element: matmul,
// conv2d (direct, and the im2col / col2im copies of the fast tier), pooling
// and batch norm. One call computes one output element (one channel for the
// batch-norm statistics). Run on the GPU by for_each_kernel and on the host
// by host_launch (hd.h).
#pragma once
#include <cstdint>

#include "backends/cuda/hd.h"
#include "ops/geometry.h"

namespace lldl::cuda {

// ---- matmul -------------------------------------------------------------------
// C (M, N) = op(X) (M, K) @ op(Y) (K, N), row-major; X is stored (M, K), or
// (K, M) when tx; Y is stored (K, N), or (N, K) when ty. acc: C += instead.
// ldx, ldy, ldc: the stored matrices' row strides (0: contiguous), for
// slices of packed tensors (attention heads, LSTM time steps).
// The backward passes are GEMMs too (naive.h: matmul_bwd, linear_bwd), so
// one body serves all.
template <class T> struct GemmF {
  const T *X, *Y; T* C; int64_t M, N, K; bool tx, ty, acc;
  int64_t ldx = 0, ldy = 0, ldc = 0;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t lx = ldx ? ldx : (tx ? M : K), ly = ldy ? ldy : (ty ? K : N), lc = ldc ? ldc : N;
    int64_t r = i / N, c = i % N;
    T s = 0;
    for (int64_t k = 0; k < K; ++k) {
      T xv = tx ? X[k * lx + r] : X[r * lx + k];
      T yv = ty ? Y[c * ly + k] : Y[k * ly + c];
      s += xv * yv;
    }
    if (acc) C[r * lc + c] += s;
    else C[r * lc + c] = s;
  }
};

// ---- conv2d -------------------------------------------------------------------
// x (N, C, H, W), w (OC, C, KH, KW), b (OC), y (N, OC, OH, OW); stride S,
// zero padding P. K = C*KH*KW, L = OH*OW.

// y[n,o,i,j] = b[o] + sum_{c,u,v} x[n, c, i*S-P+u, j*S-P+v] w[o,c,u,v]
template <class T> struct ConvF {
  const T *x, *w, *b; T* y; ConvGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t j = idx % g.OW, i = idx / g.OW % g.OH, o = idx / g.L() % g.OC, n = idx / (g.L() * g.OC);
    T s = b[o];
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t u = 0; u < g.KH; ++u) {
        int64_t h = i * g.S - g.P + u;
        if (h < 0 || h >= g.H) continue;
        for (int64_t v = 0; v < g.KW; ++v) {
          int64_t ww = j * g.S - g.P + v;
          if (ww < 0 || ww >= g.W) continue;
          s += x[((n * g.C + c) * g.H + h) * g.W + ww] * w[((o * g.C + c) * g.KH + u) * g.KW + v];
        }
      }
    y[idx] = s;
  }
};
// The output position along one axis that reads input position h through
// kernel tap u, or -1: h = i*S - P + u.
LLDL_HD inline int64_t conv_out_pos(int64_t h, int64_t u, int64_t S, int64_t P, int64_t OH) {
  int64_t t = h + P - u;
  if (t < 0 || t % S) return -1;
  t /= S;
  return t < OH ? t : -1;
}
// dx[n,c,h,w] += sum over (o, u, v) whose output reads (h, w) of dy * w.
template <class T> struct ConvBwdXF {
  const T *dy, *w; T* dx; ConvGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t ww = idx % g.W, h = idx / g.W % g.H, c = idx / (g.W * g.H) % g.C,
            n = idx / (g.W * g.H * g.C);
    T s = 0;
    for (int64_t o = 0; o < g.OC; ++o)
      for (int64_t u = 0; u < g.KH; ++u) {
        int64_t i = conv_out_pos(h, u, g.S, g.P, g.OH);
        if (i < 0) continue;
        for (int64_t v = 0; v < g.KW; ++v) {
          int64_t j = conv_out_pos(ww, v, g.S, g.P, g.OW);
          if (j < 0) continue;
          s += dy[((n * g.OC + o) * g.OH + i) * g.OW + j] * w[((o * g.C + c) * g.KH + u) * g.KW + v];
        }
      }
    dx[idx] += s;
  }
};
// dw[o,c,u,v] += sum_{n,i,j} dy[n,o,i,j] x[n, c, i*S-P+u, j*S-P+v]
template <class T> struct ConvBwdWF {
  const T *dy, *x; T* dw; ConvGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t v = idx % g.KW, u = idx / g.KW % g.KH, c = idx / (g.KW * g.KH) % g.C,
            o = idx / (g.KW * g.KH * g.C);
    T s = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t i = 0; i < g.OH; ++i) {
        int64_t h = i * g.S - g.P + u;
        if (h < 0 || h >= g.H) continue;
        for (int64_t j = 0; j < g.OW; ++j) {
          int64_t ww = j * g.S - g.P + v;
          if (ww < 0 || ww >= g.W) continue;
          s += dy[((n * g.OC + o) * g.OH + i) * g.OW + j] * x[((n * g.C + c) * g.H + h) * g.W + ww];
        }
      }
    dw[idx] += s;
  }
};
// db[o] += sum_{n,i,j} dy[n,o,i,j]
template <class T> struct ConvBwdBF {
  const T* dy; T* db; ConvGeom g;
  LLDL_HD void operator()(int64_t o) const {
    T s = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t l = 0; l < g.L(); ++l) s += dy[(n * g.OC + o) * g.L() + l];
    db[o] += s;
  }
};
// Fast tier, step 1: col[m, k, l] for the `nb` images from n0 on: the input
// value that output position l reads through tap k (zero in the padding).
// Then Y_n (OC, L) = W (OC, K) @ col_n (K, L) is one GEMM per image.
template <class T> struct Im2colF {
  const T* x; T* col; ConvGeom g; int64_t n0;
  LLDL_HD void operator()(int64_t idx) const {
    const int64_t L = g.L(), K = g.K();
    int64_t l = idx % L, k = idx / L % K, m = idx / (L * K);
    int64_t v = k % g.KW, u = k / g.KW % g.KH, c = k / (g.KW * g.KH);
    int64_t h = l / g.OW * g.S - g.P + u, w = l % g.OW * g.S - g.P + v;
    bool in = h >= 0 && h < g.H && w >= 0 && w < g.W;
    col[idx] = in ? x[(((n0 + m) * g.C + c) * g.H + h) * g.W + w] : T(0);
  }
};
// The reverse: dx[n0+m, c, h, w] += every dcol entry that im2col copied
// from (h, w); a gather per input pixel, so no two threads write one place.
template <class T> struct Col2imF {
  const T* dcol; T* dx; ConvGeom g; int64_t n0;
  LLDL_HD void operator()(int64_t idx) const {
    const int64_t L = g.L(), K = g.K();
    int64_t w = idx % g.W, h = idx / g.W % g.H, c = idx / (g.W * g.H) % g.C, m = idx / (g.W * g.H * g.C);
    T s = 0;
    for (int64_t u = 0; u < g.KH; ++u) {
      int64_t i = conv_out_pos(h, u, g.S, g.P, g.OH);
      if (i < 0) continue;
      for (int64_t v = 0; v < g.KW; ++v) {
        int64_t j = conv_out_pos(w, v, g.S, g.P, g.OW);
        if (j < 0) continue;
        s += dcol[(m * K + (c * g.KH + u) * g.KW + v) * L + i * g.OW + j];
      }
    }
    dx[(((n0 + m) * g.C + c) * g.H + h) * g.W + w] += s;
  }
};
// y[n, o, l] += b[o]
template <class T> struct ChannelBiasF {
  const T* b; T* y; int64_t OC, L;
  LLDL_HD void operator()(int64_t i) const { y[i] += b[i / L % OC]; }
};

// ---- pooling ------------------------------------------------------------------
// x (planes, H, W), y (planes, OH, OW); window (oh, ow) covers rows oh*S ..
// oh*S+k-1 and columns ow*S .. ow*S+k-1; no padding.
// The CPU's rule: the first maximum wins and a NaN is the maximum.
template <class T>
LLDL_HD inline T keep_max(T v, T m) { return (v > m || (v != v && m == m)) ? v : m; }
template <class T>
LLDL_HD inline bool is_max(T v, T m) { return v == m || (v != v && m != m); }
// Plane offset of window (oh, ow)'s first maximum, xp the plane.
template <class T>
LLDL_HD inline int64_t window_argmax(const T* xp, const PoolGeom& g, int64_t oh, int64_t ow) {
  const int64_t r0 = oh * g.S * g.W + ow * g.S;
  T m = xp[r0];
  for (int64_t i = 0; i < g.k; ++i)
    for (int64_t j = 0; j < g.k; ++j) m = keep_max(xp[r0 + i * g.W + j], m);
  for (int64_t i = 0; i < g.k; ++i)
    for (int64_t j = 0; j < g.k; ++j)
      if (is_max(xp[r0 + i * g.W + j], m)) return r0 + i * g.W + j;
  return r0;
}
// Also writes the op's workspace as the CPU does: per window, the index of
// its maximum within the window (row-major), as a value of T.
template <class T> struct MaxPoolF {
  const T* x; T* y; T* ws; PoolGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t ow = idx % g.OW, oh = idx / g.OW % g.OH, p = idx / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    const int64_t at = window_argmax(xp, g, oh, ow), r = at - (oh * g.S * g.W + ow * g.S);
    y[idx] = xp[at];
    ws[idx] = static_cast<T>(r / g.W * g.k + r % g.W);
  }
};
template <class T> struct AvgPoolF {
  const T* x; T* y; PoolGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t ow = idx % g.OW, oh = idx / g.OW % g.OH, p = idx / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    T s = 0;
    for (int64_t i = 0; i < g.k; ++i)
      for (int64_t j = 0; j < g.k; ++j) s += xp[(oh * g.S + i) * g.W + ow * g.S + j];
    y[idx] = s * (T(1) / static_cast<T>(g.k * g.k));
  }
};
// First and last window index along one axis whose window covers position h.
LLDL_HD inline void covering(int64_t h, int64_t k, int64_t S, int64_t O, int64_t* lo, int64_t* hi) {
  *lo = h - k + 1 <= 0 ? 0 : (h - k + 1 + S - 1) / S;
  *hi = h / S < O - 1 ? h / S : O - 1;
}
// Backward as a gather over input pixels (the naive tier): every window that
// covers the pixel and has its maximum there sends its gradient.
template <class T> struct MaxPoolBwdF {
  const T *x, *dy; T* dx; PoolGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t w = idx % g.W, h = idx / g.W % g.H, p = idx / (g.W * g.H);
    const T* xp = x + p * g.H * g.W;
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.k, g.S, g.OH, &oh0, &oh1);
    covering(w, g.k, g.S, g.OW, &ow0, &ow1);
    T s = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        if (window_argmax(xp, g, oh, ow) == h * g.W + w) s += dy[(p * g.OH + oh) * g.OW + ow];
    dx[idx] += s;
  }
};
template <class T> struct AvgPoolBwdF {
  const T* dy; T* dx; PoolGeom g;
  LLDL_HD void operator()(int64_t idx) const {
    int64_t w = idx % g.W, h = idx / g.W % g.H, p = idx / (g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.k, g.S, g.OH, &oh0, &oh1);
    covering(w, g.k, g.S, g.OW, &ow0, &ow1);
    const T inv = T(1) / static_cast<T>(g.k * g.k);
    T s = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) s += dy[(p * g.OH + oh) * g.OW + ow] * inv;
    dx[idx] += s;
  }
};

// ---- batch norm -----------------------------------------------------------------
// x (N, C, S) (S = H*W, or 1); per channel M = N*S values. See
// backends/cpu/batchnorm.cpp for the formulas; statistics in double.
// BnDims (ops/geometry.h) and the attributes.
struct BnGeom : BnDims {
  double eps, momentum;
  bool training;
};
// stats[2c] = mean, stats[2c+1] = 1/sqrt(var + eps): from the batch when
// training (and then, if update, the running buffers move), else from the
// running buffers.
template <class T> struct BnStatsF {
  const T* x; T *run_mean, *run_var; double* stats; BnGeom g; bool update;
  LLDL_HD void operator()(int64_t c) const {
    double mean, var;
    if (!g.training) {
      mean = run_mean[c];
      var = run_var[c];
    } else {
      const double M = static_cast<double>(g.N * g.S);
      double s = 0, q = 0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t k = 0; k < g.S; ++k) s += x[(n * g.C + c) * g.S + k];
      mean = s / M;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t k = 0; k < g.S; ++k) {
          double d = x[(n * g.C + c) * g.S + k] - mean;
          q += d * d;
        }
      var = q / M;
      if (update) {
        run_mean[c] = static_cast<T>((1 - g.momentum) * run_mean[c] + g.momentum * mean);
        run_var[c] = static_cast<T>((1 - g.momentum) * run_var[c] + g.momentum * var * M / (M - 1));
      }
    }
    stats[2 * c] = mean;
    stats[2 * c + 1] = 1.0 / hsqrt(var + g.eps);
  }
};
// out = gamma invstd (x - mean) + beta, folded into scale * x + shift.
template <class T> struct BnApplyF {
  const T *x, *gamma, *beta; const double* stats; T* o; BnGeom g;
  LLDL_HD void operator()(int64_t i) const {
    int64_t c = i / g.S % g.C;
    double scale = gamma[c] * stats[2 * c + 1], shift = beta[c] - stats[2 * c] * scale;
    o[i] = static_cast<T>(scale * x[i] + shift);
  }
};
// sums[2c] = sum g, sums[2c+1] = sum g xhat; dbeta, dgamma and (eval) the
// running buffers' gradients accumulate here.
template <class T> struct BnBwdStatsF {
  const T *x, *g, *gamma; const double* stats; double* sums;
  T *dgamma, *dbeta, *drmean, *drvar; BnGeom geo;
  LLDL_HD void operator()(int64_t c) const {
    double mean = stats[2 * c], invstd = stats[2 * c + 1], sg = 0, sgx = 0;
    for (int64_t n = 0; n < geo.N; ++n)
      for (int64_t k = 0; k < geo.S; ++k) {
        int64_t i = (n * geo.C + c) * geo.S + k;
        sg += g[i];
        sgx += g[i] * ((x[i] - mean) * invstd);
      }
    sums[2 * c] = sg;
    sums[2 * c + 1] = sgx;
    if (dbeta) dbeta[c] += static_cast<T>(sg);
    if (dgamma) dgamma[c] += static_cast<T>(sgx);
    if (geo.training) return;
    double gi = gamma[c] * invstd;
    if (drmean) drmean[c] += static_cast<T>(-gi * sg);
    if (drvar) drvar[c] += static_cast<T>(-0.5 * gi * invstd * sgx);
  }
};
// dx = gamma invstd (g - [training] (sum g + xhat sum g xhat) / M)
template <class T> struct BnBwdXF {
  const T *x, *g, *gamma; const double *stats, *sums; T* dx; BnGeom geo;
  LLDL_HD void operator()(int64_t i) const {
    int64_t c = i / geo.S % geo.C;
    double mean = stats[2 * c], invstd = stats[2 * c + 1];
    double v = g[i];
    if (geo.training)
      v -= (sums[2 * c] + (x[i] - mean) * invstd * sums[2 * c + 1]) / static_cast<double>(geo.N * geo.S);
    dx[i] += static_cast<T>(gamma[c] * invstd * v);
  }
};

}  // namespace lldl::cuda
