// Naive row-wise kernel bodies: softmax, log-softmax and the cross-entropy
// losses, one thread per row with the obvious loops (the fast tier does a row
// per warp with shuffles, rows.cu). x, y are (rows, n); logits (N, C).
// Run on the GPU by for_each_kernel and on the host by host_launch (hd.h).
#pragma once
#include <cstdint>

#include "backends/cuda/hd.h"

namespace lldl::cuda {

// Log-sum-exp of one row with the maximum subtracted, so exp never overflows.
template <class T>
LLDL_HD inline T row_lse(const T* x, int64_t n) {
  T m = x[0];
  for (int64_t j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;
  T s = 0;
  for (int64_t j = 0; j < n; ++j) s += hexp(x[j] - m);
  return m + hlog(s);
}

template <class T> struct SoftmaxRowF {
  const T* x; T* y; int64_t n;
  LLDL_HD void operator()(int64_t r) const {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    T m = xr[0];
    for (int64_t j = 1; j < n; ++j) m = xr[j] > m ? xr[j] : m;
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += (yr[j] = hexp(xr[j] - m));
    T inv = T(1) / s;
    for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
  }
};
// dx = y * (dy - sum_j dy_j y_j)
template <class T> struct SoftmaxBwdRowF {
  const T *y, *g; T* d; int64_t n;
  LLDL_HD void operator()(int64_t r) const {
    const T *yr = y + r * n, *gr = g + r * n;
    T dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += gr[j] * yr[j];
    for (int64_t j = 0; j < n; ++j) d[r * n + j] += yr[j] * (gr[j] - dot);
  }
};
template <class T> struct LogSoftmaxRowF {
  const T* x; T* y; int64_t n;
  LLDL_HD void operator()(int64_t r) const {
    T lse = row_lse(x + r * n, n);
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = x[r * n + j] - lse;
  }
};
// dx = dy - softmax(x) * sum_j dy_j, with softmax(x) = exp(y)
template <class T> struct LogSoftmaxBwdRowF {
  const T *y, *g; T* d; int64_t n;
  LLDL_HD void operator()(int64_t r) const {
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += g[r * n + j];
    for (int64_t j = 0; j < n; ++j) d[r * n + j] += g[r * n + j] - hexp(y[r * n + j]) * s;
  }
};

// Per-row terms of the losses, summed afterwards (FinishSumF or a block
// reduction) into loss = -1/N sum_r row[r].
// cross_entropy: row[r] = sum_j t_rj (x_rj - lse_r)
template <class T> struct CeRowF {
  const T *x, *t; double* row; int64_t C;
  LLDL_HD void operator()(int64_t r) const {
    const T *xr = x + r * C, *tr = t + r * C;
    T lse = row_lse(xr, C);
    double acc = 0;
    for (int64_t j = 0; j < C; ++j) acc += static_cast<double>(tr[j] * (xr[j] - lse));
    row[r] = acc;
  }
};
// cross_entropy_labels: row[r] = x_r,y_r - lse_r
template <class T> struct CeLabelsRowF {
  const T* x; const int32_t* y; double* row; int64_t C;
  LLDL_HD void operator()(int64_t r) const {
    row[r] = static_cast<double>(x[r * C + y[r]] - row_lse(x + r * C, C));
  }
};
// d x_rk += g/N (softmax_rk sum_j t_rj - t_rk); d t_rk -= g/N (x_rk - lse_r)
template <class T> struct CeBwdRowF {
  const T *x, *t, *g; T *dx, *dt; int64_t N, C;
  LLDL_HD void operator()(int64_t r) const {
    const T *xr = x + r * C, *tr = t + r * C;
    T f = g[0] / static_cast<T>(N);
    T lse = row_lse(xr, C);
    T tsum = 0;
    for (int64_t j = 0; j < C; ++j) tsum += tr[j];
    for (int64_t j = 0; j < C; ++j) {
      if (dx) dx[r * C + j] += f * (hexp(xr[j] - lse) * tsum - tr[j]);
      if (dt) dt[r * C + j] -= f * (xr[j] - lse);
    }
  }
};
// d x_rk += g/N (softmax_rk - [k == y_r])
template <class T> struct CeLabelsBwdRowF {
  const T* x; const int32_t* y; const T* g; T* dx; int64_t N, C;
  LLDL_HD void operator()(int64_t r) const {
    T f = g[0] / static_cast<T>(N);
    T lse = row_lse(x + r * C, C);
    for (int64_t j = 0; j < C; ++j)
      dx[r * C + j] += f * (hexp(x[r * C + j] - lse) - (j == y[r] ? T(1) : T(0)));
  }
};

}  // namespace lldl::cuda
