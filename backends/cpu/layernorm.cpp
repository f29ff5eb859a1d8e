// Layer normalisation over the last dimension.
//
// x is (R, C) (R = numel / C rows of the input [..., C]), gamma and beta are
// (C), out has x's shape, ws is (2R): the row means, then the row values
// rstd = 1/sqrt(var + eps), which forward writes and backward reads.
//
//   forward:  mean, var = mean and biased variance of the row (as PyTorch)
//             xhat = (x - mean) rstd,  out = gamma xhat + beta
//   backward: with dxhat = g gamma (g the output gradient), per row
//             dx = rstd (dxhat - mean_c(dxhat) - xhat mean_c(dxhat xhat))
//             and over all rows dgamma = sum g xhat, dbeta = sum g
//
// Rows are independent, so forward and dx split rows among threads. dgamma
// and dbeta sum over rows: a second pass whose threads split the columns.
// Statistics and sums accumulate in double; the output and backward both use
// the mean and rstd as stored in ws, so they see the same numbers.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

template <class T>
void layer_norm_forward(const KernelArgs& a) {
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  const T *x = in<T>(a, 0), *gamma = in<T>(a, 1), *beta = in<T>(a, 2);
  T* o = out<T>(a);
  T *mean = static_cast<T*>(a.ws), *rstd = mean + R;
  const double eps = a.attr.layer_norm.eps;
  pfor(R, [&](int64_t r) {
    const T* xr = x + r * C;
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    const double m = s / static_cast<double>(C);
    double q = 0;
    for (int64_t c = 0; c < C; ++c) q += (xr[c] - m) * (xr[c] - m);
    mean[r] = static_cast<T>(m);
    rstd[r] = static_cast<T>(1.0 / std::sqrt(q / static_cast<double>(C) + eps));
    const T mr = mean[r], sr = rstd[r];
    T* orow = o + r * C;
    for (int64_t c = 0; c < C; ++c) orow[c] = gamma[c] * ((xr[c] - mr) * sr) + beta[c];
  }, R * C);
}

template <class T>
void layer_norm_backward(const KernelArgs& a) {
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  const T *x = in<T>(a, 0), *gamma = in<T>(a, 1), *g = gout<T>(a);
  const T *mean = static_cast<const T*>(a.ws), *rstd = mean + R;
  T *dx = gin<T>(a, 0), *dgamma = gin<T>(a, 1), *dbeta = gin<T>(a, 2);
  if (dx)
    pfor(R, [&](int64_t r) {
      const T *xr = x + r * C, *gr = g + r * C;
      const T mr = mean[r], sr = rstd[r];
      double sd = 0, sdx = 0;  // sums of dxhat and dxhat xhat over the row
      for (int64_t c = 0; c < C; ++c) {
        const double dxh = static_cast<double>(gr[c]) * gamma[c];
        sd += dxh;
        sdx += dxh * ((xr[c] - mr) * sr);
      }
      // In double: dxhat - mean(dxhat) cancels (exactly, for one feature).
      const double md = sd / static_cast<double>(C), mdx = sdx / static_cast<double>(C);
      T* dr = dx + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const double xhat = (xr[c] - mr) * sr;
        dr[c] += static_cast<T>(sr * (static_cast<double>(gr[c]) * gamma[c] - md - xhat * mdx));
      }
    }, R * C);
  if (!dgamma && !dbeta) return;
  const int64_t blocks =
      R * C >= kParallelMin ? std::clamp<int64_t>(C / 16, 1, omp_get_max_threads()) : 1;
  pfor(blocks, [&](int64_t b) {
    const int64_t c0 = C * b / blocks, c1 = C * (b + 1) / blocks;
    std::vector<double> sg(static_cast<size_t>(c1 - c0)), sgx(sg.size());
    for (int64_t r = 0; r < R; ++r) {
      const T *xr = x + r * C, *gr = g + r * C;
      const T mr = mean[r], sr = rstd[r];
      for (int64_t c = c0; c < c1; ++c) {
        sg[c - c0] += gr[c];
        sgx[c - c0] += static_cast<double>(gr[c]) * ((xr[c] - mr) * sr);
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      if (dbeta) dbeta[c] += static_cast<T>(sg[c - c0]);
      if (dgamma) dgamma[c] += static_cast<T>(sgx[c - c0]);
    }
  }, R * C);
}

}  // namespace

template <class T>
void register_layernorm(KernelPair* t) {
  t[int(OpKind::LayerNorm)] = {layer_norm_forward<T>, layer_norm_backward<T>};
}
template void register_layernorm<float>(KernelPair*);
template void register_layernorm<double>(KernelPair*);

}  // namespace lldl::cpu
