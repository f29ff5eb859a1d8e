// Elementwise ops and activations. x, y, out and their gradients all have
// the same shape (n elements); bias_add broadcasts a (cols) vector over rows.
#include <cmath>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

int64_t numel(const KernelArgs& a) { return a.out_shape.numel(); }

template <class T>
void add_forward(const KernelArgs& a) {
  const T *x = in<T>(a, 0), *y = in<T>(a, 1);
  T* o = out<T>(a);
  pfor(numel(a), [&](int64_t i) { o[i] = x[i] + y[i]; });
}
template <class T>
void add_backward(const KernelArgs& a) {
  const T* g = gout<T>(a);
  for (int k = 0; k < 2; ++k)
    if (T* d = gin<T>(a, k)) put(d, fresh(a, k), numel(a), [&](int64_t i) { return g[i]; });
}

template <class T>
void sub_forward(const KernelArgs& a) {
  const T *x = in<T>(a, 0), *y = in<T>(a, 1);
  T* o = out<T>(a);
  pfor(numel(a), [&](int64_t i) { o[i] = x[i] - y[i]; });
}
template <class T>
void sub_backward(const KernelArgs& a) {
  const T* g = gout<T>(a);
  if (T* d = gin<T>(a, 0)) put(d, fresh(a, 0), numel(a), [&](int64_t i) { return g[i]; });
  if (T* d = gin<T>(a, 1)) put(d, fresh(a, 1), numel(a), [&](int64_t i) { return -g[i]; });
}

template <class T>
void mul_forward(const KernelArgs& a) {
  const T *x = in<T>(a, 0), *y = in<T>(a, 1);
  T* o = out<T>(a);
  pfor(numel(a), [&](int64_t i) { o[i] = x[i] * y[i]; });
}
template <class T>
void mul_backward(const KernelArgs& a) {
  const T *x = in<T>(a, 0), *y = in<T>(a, 1), *g = gout<T>(a);
  if (T* d = gin<T>(a, 0)) put(d, fresh(a, 0), numel(a), [&](int64_t i) { return g[i] * y[i]; });
  if (T* d = gin<T>(a, 1)) put(d, fresh(a, 1), numel(a), [&](int64_t i) { return g[i] * x[i]; });
}

template <class T>
void scale_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  T s = static_cast<T>(a.attr.scale.alpha);
  pfor(numel(a), [&](int64_t i) { o[i] = s * x[i]; });
}
template <class T>
void scale_backward(const KernelArgs& a) {
  const T* g = gout<T>(a);
  T s = static_cast<T>(a.attr.scale.alpha);
  if (T* d = gin<T>(a, 0)) put(d, fresh(a, 0), numel(a), [&](int64_t i) { return s * g[i]; });
}

// x is (rows, n), b is (n): out[r, j] = x[r, j] + b[j].
template <class T>
void bias_forward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T *x = in<T>(a, 0), *bias = in<T>(a, 1);
  T* o = out<T>(a);
  CVecMap<T> b(bias, n);
  // Rows in parallel: memory-bound, and a GPT step runs it on 2048 x 384.
  pfor(rows, [&](int64_t r) { VecMap<T>(o + r * n, n) = CVecMap<T>(x + r * n, n) + b; },
       rows * n);
}
// db[j] = sum over rows of g[r, j]; dx = g.
template <class T>
void bias_backward(const KernelArgs& a) {
  int64_t n = a.out_shape.last(), rows = a.out_shape.rows();
  const T* g = gout<T>(a);
  if (T* d = gin<T>(a, 0)) {
    if (fresh(a, 0))
      pchunks(rows * n, [&](int64_t b, int64_t len) { VecMap<T>(d + b, len) = CVecMap<T>(g + b, len); });
    else
      pchunks(rows * n, [&](int64_t b, int64_t len) { VecMap<T>(d + b, len) += CVecMap<T>(g + b, len); });
  }
  if (T* d = gin<T>(a, 1)) column_sums(d, fresh(a, 1), g, rows, n);
}

// Activations: the backward uses the forward output where that is cheaper.
template <class T>
void sigmoid_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  // 1 / (1 + exp(-x)) is safe in IEEE arithmetic: exp overflows to +inf for
  // very negative x and 1 / inf = 0. Eigen's exp is vectorised.
  pchunks(numel(a), [&](int64_t b, int64_t n) {
    VecMap<T>(o + b, n) = (T(1) + (-CVecMap<T>(x + b, n)).exp()).inverse();
  });
}
template <class T>
void sigmoid_backward(const KernelArgs& a) {  // dy/dx = y (1 - y)
  const T *y = out<T>(a), *g = gout<T>(a);
  if (T* d = gin<T>(a, 0))
    put(d, fresh(a, 0), numel(a), [&](int64_t i) { return g[i] * y[i] * (T(1) - y[i]); });
}

template <class T>
void tanh_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  pchunks(numel(a), [&](int64_t b, int64_t n) { VecMap<T>(o + b, n) = CVecMap<T>(x + b, n).tanh(); });
}
template <class T>
void tanh_backward(const KernelArgs& a) {  // dy/dx = 1 - y^2
  const T *y = out<T>(a), *g = gout<T>(a);
  if (T* d = gin<T>(a, 0))
    put(d, fresh(a, 0), numel(a), [&](int64_t i) { return g[i] * (T(1) - y[i] * y[i]); });
}

template <class T>
void relu_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  pchunks(numel(a), [&](int64_t b, int64_t n) { VecMap<T>(o + b, n) = CVecMap<T>(x + b, n).max(T(0)); });
}
template <class T>
void relu_backward(const KernelArgs& a) {  // gradient 0 at the kink
  const T *x = in<T>(a, 0), *g = gout<T>(a);
  T* d = gin<T>(a, 0);
  if (!d) return;
  // A vectorised select: the scalar loop did not vectorise through pfor.
  const bool f = fresh(a, 0);
  pchunks(numel(a), [&](int64_t b, int64_t n) {
    auto v = (CVecMap<T>(x + b, n) > T(0)).select(CVecMap<T>(g + b, n), T(0));
    if (f) VecMap<T>(d + b, n) = v;
    else VecMap<T>(d + b, n) += v;
  });
}

// silu: y = x s, s = sigmoid(x); dy/dx = s + x s (1 - s) = s (1 + x (1 - s)).
// The backward recomputes s from x (cheaper than a workspace).
template <class T>
void silu_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  pchunks(numel(a), [&](int64_t b, int64_t n) {
    auto xs = CVecMap<T>(x + b, n);
    VecMap<T>(o + b, n) = xs / (T(1) + (-xs).exp());
  });
}
template <class T>
void silu_backward(const KernelArgs& a) {
  const T *x = in<T>(a, 0), *g = gout<T>(a);
  T* d = gin<T>(a, 0);
  if (!d) return;
  const bool f = fresh(a, 0);
  pchunks(numel(a), [&](int64_t b, int64_t n) {
    auto xs = CVecMap<T>(x + b, n);
    auto s = (T(1) + (-xs).exp()).inverse().eval();
    auto v = CVecMap<T>(g + b, n) * s * (T(1) + xs * (T(1) - s));
    if (f) VecMap<T>(d + b, n) = v;
    else VecMap<T>(d + b, n) += v;
  });
}

template <class T>
void identity_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  pfor(numel(a), [&](int64_t i) { o[i] = x[i]; });
}
template <class T>
void identity_backward(const KernelArgs& a) {
  const T* g = gout<T>(a);
  if (T* d = gin<T>(a, 0)) put(d, fresh(a, 0), numel(a), [&](int64_t i) { return g[i]; });
}

}  // namespace

template <class T>
void register_elementwise(KernelPair* t) {
  t[int(OpKind::Add)] = {add_forward<T>, add_backward<T>, true, 0b11};
  t[int(OpKind::Sub)] = {sub_forward<T>, sub_backward<T>, true};
  t[int(OpKind::Mul)] = {mul_forward<T>, mul_backward<T>, true};
  t[int(OpKind::Scale)] = {scale_forward<T>, scale_backward<T>, true};
  t[int(OpKind::BiasAdd)] = {bias_forward<T>, bias_backward<T>, true, 0b1};
  t[int(OpKind::Sigmoid)] = {sigmoid_forward<T>, sigmoid_backward<T>, true};
  t[int(OpKind::Tanh)] = {tanh_forward<T>, tanh_backward<T>, true};
  t[int(OpKind::Relu)] = {relu_forward<T>, relu_backward<T>, true};
  t[int(OpKind::Silu)] = {silu_forward<T>, silu_backward<T>, true};
  t[int(OpKind::Identity)] = {identity_forward<T>, identity_backward<T>, true, 0b1};
}
template void register_elementwise<float>(KernelPair*);
template void register_elementwise<double>(KernelPair*);

}  // namespace lldl::cpu
