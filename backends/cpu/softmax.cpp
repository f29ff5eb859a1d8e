// softmax and log_softmax over the last dimension: x, y are (rows, n).
#include <cmath>

#include "backends/cpu/common.h"

namespace lldl::cpu {

template <class T>
T row_logsumexp(const T* x, int64_t n) {
  T m = x[0];
  for (int64_t j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;
  T s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(x[j] - m);
  return m + std::log(s);
}
template float row_logsumexp<float>(const float*, int64_t);
template double row_logsumexp<double>(const double*, int64_t);

namespace {

template <class T>
void softmax_forward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T* x = in<T>(a, 0);
  T* y = out<T>(a);
  auto row = [&](int64_t r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    T m = xr[0];
    for (int64_t j = 1; j < n; ++j) m = xr[j] > m ? xr[j] : m;
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += (yr[j] = std::exp(xr[j] - m));
    T inv = T(1) / s;
    for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
  };
  pfor(rows, row, rows * n);
}
// dx = y * (dy - sum_j dy_j y_j)
template <class T>
void softmax_backward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T *y = out<T>(a), *g = gout<T>(a);
  T* d = gin<T>(a, 0);
  if (!d) return;
  pfor(rows, [&](int64_t r) {
    const T *yr = y + r * n, *gr = g + r * n;
    T dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += gr[j] * yr[j];
    for (int64_t j = 0; j < n; ++j) d[r * n + j] += yr[j] * (gr[j] - dot);
  }, rows * n);
}

template <class T>
void log_softmax_forward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T* x = in<T>(a, 0);
  T* y = out<T>(a);
  pfor(rows, [&](int64_t r) {
    T lse = row_logsumexp(x + r * n, n);
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = x[r * n + j] - lse;
  }, rows * n);
}
// dx = dy - softmax(x) * sum_j dy_j, with softmax(x) = exp(y)
template <class T>
void log_softmax_backward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T *y = out<T>(a), *g = gout<T>(a);
  T* d = gin<T>(a, 0);
  if (!d) return;
  pfor(rows, [&](int64_t r) {
    T s = 0;
    for (int64_t j = 0; j < n; ++j) s += g[r * n + j];
    for (int64_t j = 0; j < n; ++j) d[r * n + j] += g[r * n + j] - std::exp(y[r * n + j]) * s;
  }, rows * n);
}

}  // namespace

template <class T>
void register_softmax(KernelPair* t) {
  t[int(OpKind::Softmax)] = {softmax_forward<T>, softmax_backward<T>};
  t[int(OpKind::LogSoftmax)] = {log_softmax_forward<T>, log_softmax_backward<T>};
}
template void register_softmax<float>(KernelPair*);
template void register_softmax<double>(KernelPair*);

}  // namespace lldl::cpu
