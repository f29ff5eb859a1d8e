// softmax and log_softmax over the last dimension: x, y are (rows, n).
#include <cmath>

#include "backends/cpu/common.h"

namespace lldl::cpu {

template <class T>
T row_logsumexp(const T* x, int64_t n) {
  CVecMap<T> r(x, n);  // Eigen's exp is vectorised; std::exp in a loop is not
  const T m = r.maxCoeff();
  return m + std::log((r - m).exp().sum());
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
    CVecMap<T> xr(x + r * n, n);
    VecMap<T> yr(y + r * n, n);
    yr = (xr - xr.maxCoeff()).exp();
    yr *= T(1) / yr.sum();
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
    CVecMap<T> yr(y + r * n, n), gr(g + r * n, n);
    const T dot = (gr * yr).sum();
    VecMap<T>(d + r * n, n) += yr * (gr - dot);
  }, rows * n);
}

template <class T>
void log_softmax_forward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T* x = in<T>(a, 0);
  T* y = out<T>(a);
  pfor(rows, [&](int64_t r) {
    VecMap<T>(y + r * n, n) = CVecMap<T>(x + r * n, n) - row_logsumexp(x + r * n, n);
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
    CVecMap<T> gr(g + r * n, n), yr(y + r * n, n);
    VecMap<T>(d + r * n, n) += gr - yr.exp() * gr.sum();
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
