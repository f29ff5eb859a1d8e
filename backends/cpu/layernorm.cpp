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
// Row loops are Eigen array expressions (vectorised) in T; the output and
// backward both use the mean and rstd as stored in ws, so they see the same
// numbers.
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
  const T *x = in<T>(a, 0);
  CVecMap<T> gamma(in<T>(a, 1), C), beta(in<T>(a, 2), C);
  T* o = out<T>(a);
  T *mean = static_cast<T*>(a.ws), *rstd = mean + R;
  const T eps = static_cast<T>(a.attr.layer_norm.eps);
  pfor(R, [&](int64_t r) {
    // Two passes over the row (mean, then squared deviations), vectorised.
    CVecMap<T> xr(x + r * C, C);
    const T m = xr.sum() / static_cast<T>(C);
    const T sr = T(1) / std::sqrt((xr - m).square().sum() / static_cast<T>(C) + eps);
    mean[r] = m;
    rstd[r] = sr;
    VecMap<T>(o + r * C, C) = gamma * ((xr - m) * sr) + beta;
  }, R * C);
}

template <class T>
void layer_norm_backward(const KernelArgs& a) {
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  const T *x = in<T>(a, 0), *g = gout<T>(a);
  CVecMap<T> gamma(in<T>(a, 1), C);
  const T *mean = static_cast<const T*>(a.ws), *rstd = mean + R;
  T *dx = gin<T>(a, 0), *dgamma = gin<T>(a, 1), *dbeta = gin<T>(a, 2);
  const bool overwrite = fresh(a, 0);
  if (dx)
    pfor(R, [&](int64_t r) {
      CVecMap<T> xr(x + r * C, C), gr(g + r * C, C);
      const T sr = rstd[r];
      const auto xhat = (xr - mean[r]) * sr;
      // dxhat is stored, not left an expression: recomputed inside the last
      // line, g * gamma - md would be contracted into one FMA and, for one
      // feature (xhat = 0), leave rounding noise where the gradient is 0.
      // Eigen-allocated, so aligned like the arena: the vectorised sum()
      // below peels to the alignment of its data, and a malloc'd buffer
      // (aligned to 16 bytes only, wherever the heap put it) would change the
      // order of additions from process to process, and with it the last bit
      // (a resumed run must repeat an uninterrupted one exactly).
      thread_local Eigen::Matrix<T, Eigen::Dynamic, 1> buf;
      buf.resize(C);
      VecMap<T> dxh(buf.data(), C);
      dxh = gr * gamma;
      const T md = dxh.sum() / static_cast<T>(C), mdx = (dxh * xhat).sum() / static_cast<T>(C);
      if (overwrite) VecMap<T>(dx + r * C, C) = sr * (dxh - md - xhat * mdx);
      else VecMap<T>(dx + r * C, C) += sr * (dxh - md - xhat * mdx);
    }, R * C);
  if (!dgamma && !dbeta) return;
  // Column sums over all rows; threads take column blocks so no two write
  // the same element.
  const int64_t blocks =
      R * C >= kParallelMin ? std::clamp<int64_t>(C / 16, 1, omp_get_max_threads()) : 1;
  pfor(blocks, [&](int64_t b) {
    const int64_t c0 = C * b / blocks, n = C * (b + 1) / blocks - c0;
    Eigen::Array<T, Eigen::Dynamic, 1> sg = Eigen::Array<T, Eigen::Dynamic, 1>::Zero(n), sgx = sg;
    for (int64_t r = 0; r < R; ++r) {
      CVecMap<T> xr(x + r * C + c0, n), gr(g + r * C + c0, n);
      sg += gr;
      sgx += gr * ((xr - mean[r]) * rstd[r]);
    }
    if (dbeta) {
      if (fresh(a, 2)) VecMap<T>(dbeta + c0, n) = sg;
      else VecMap<T>(dbeta + c0, n) += sg;
    }
    if (dgamma) {
      if (fresh(a, 1)) VecMap<T>(dgamma + c0, n) = sgx;
      else VecMap<T>(dgamma + c0, n) += sgx;
    }
  }, R * C);
}

}  // namespace

template <class T>
void register_layernorm(KernelPair* t) {
  t[int(OpKind::LayerNorm)] = {layer_norm_forward<T>, layer_norm_backward<T>, true};
}
template void register_layernorm<float>(KernelPair*);
template void register_layernorm<double>(KernelPair*);

}  // namespace lldl::cpu
