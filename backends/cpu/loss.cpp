// Losses, each a scalar mean over the batch.
//   mse_loss:             pred, target (any shape, n elements)
//   cross_entropy:        logits (N,C), targets (N,C) one-hot or soft
//   cross_entropy_labels: logits (N,C), labels int32 (N)
#include <cmath>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

template <class T>
void mse_forward(const KernelArgs& a) {
  int64_t n = a.in_shape[0].numel();
  const T *p = in<T>(a, 0), *t = in<T>(a, 1);
  double acc = psum(n, [&](int64_t i) {
    double e = static_cast<double>(p[i]) - static_cast<double>(t[i]);
    return e * e;
  });
  out<T>(a)[0] = static_cast<T>(acc / static_cast<double>(n));
}
// d pred = 2 (pred - target) / n * g; d target = -d pred
template <class T>
void mse_backward(const KernelArgs& a) {
  int64_t n = a.in_shape[0].numel();
  const T *p = in<T>(a, 0), *t = in<T>(a, 1);
  T f = T(2) * gout<T>(a)[0] / static_cast<T>(n);
  if (T* d = gin<T>(a, 0)) pfor(n, [&](int64_t i) { d[i] += f * (p[i] - t[i]); });
  if (T* d = gin<T>(a, 1)) pfor(n, [&](int64_t i) { d[i] -= f * (p[i] - t[i]); });
}

// loss = -1/N sum_r sum_j t_rj (x_rj - lse_r)
template <class T>
void ce_forward(const KernelArgs& a) {
  int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const T *x = in<T>(a, 0), *t = in<T>(a, 1);
  double acc = -psum(N, [&](int64_t r) {
    T lse = row_logsumexp(x + r * C, C);
    double row = 0;
    for (int64_t j = 0; j < C; ++j) row += static_cast<double>(t[r * C + j] * (x[r * C + j] - lse));
    return row;
  }, N * C);
  out<T>(a)[0] = static_cast<T>(acc / static_cast<double>(N));
}
// d x_rk = g/N (softmax_rk sum_j t_rj - t_rk); d t_rk = -g/N (x_rk - lse_r).
// Softmax is recomputed from the logits instead of being kept from forward.
template <class T>
void ce_backward(const KernelArgs& a) {
  int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const T *x = in<T>(a, 0), *t = in<T>(a, 1);
  T f = gout<T>(a)[0] / static_cast<T>(N);
  T *dx = gin<T>(a, 0), *dt = gin<T>(a, 1);
  pfor(N, [&](int64_t r) {
    const T *xr = x + r * C, *tr = t + r * C;
    T lse = row_logsumexp(xr, C);
    T tsum = 0;
    for (int64_t j = 0; j < C; ++j) tsum += tr[j];
    for (int64_t j = 0; j < C; ++j) {
      if (dx) dx[r * C + j] += f * (std::exp(xr[j] - lse) * tsum - tr[j]);
      if (dt) dt[r * C + j] -= f * (xr[j] - lse);
    }
  }, N * C);
}

// Labels were range-checked on the host when the op was recorded.
template <class T>
void ce_labels_forward(const KernelArgs& a) {
  int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const T* x = in<T>(a, 0);
  const int32_t* y = in<int32_t>(a, 1);
  double acc = -psum(N, [&](int64_t r) {
    return static_cast<double>(x[r * C + y[r]] - row_logsumexp(x + r * C, C));
  }, N * C);
  out<T>(a)[0] = static_cast<T>(acc / static_cast<double>(N));
}
// d x_rk = g/N (softmax_rk - [k == y_r])
template <class T>
void ce_labels_backward(const KernelArgs& a) {
  int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
  const T* x = in<T>(a, 0);
  const int32_t* y = in<int32_t>(a, 1);
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  T f = gout<T>(a)[0] / static_cast<T>(N);
  const bool overwrite = fresh(a, 0);
  pfor(N, [&](int64_t r) {
    const T lse = row_logsumexp(x + r * C, C);
    if (overwrite) VecMap<T>(dx + r * C, C) = f * (CVecMap<T>(x + r * C, C) - lse).exp();
    else VecMap<T>(dx + r * C, C) += f * (CVecMap<T>(x + r * C, C) - lse).exp();
    dx[r * C + y[r]] -= f;
  }, N * C);
}

}  // namespace

template <class T>
void register_loss(KernelPair* t) {
  t[int(OpKind::MseLoss)] = {mse_forward<T>, mse_backward<T>};
  t[int(OpKind::CrossEntropy)] = {ce_forward<T>, ce_backward<T>};
  t[int(OpKind::CrossEntropyLabels)] = {ce_labels_forward<T>, ce_labels_backward<T>, true};
}
template void register_loss<float>(KernelPair*);
template void register_loss<double>(KernelPair*);

}  // namespace lldl::cpu
