// GELU, tanh approximation (PyTorch approximate='tanh'). x, out and their
// gradients have n elements.
//
//   out = 0.5 x (1 + tanh(u)),  u = k0 (x + k1 x^3),  k0 = sqrt(2/pi), k1 = 0.044715
//
// computed through 0.5 (1 + tanh(u)) = sigmoid(2u) = s, the same function:
//
//   forward:  out = x s,  s = 1 / (1 + exp(-2u))
//   backward: dout/dx = s + 2 x s (1 - s) k0 (1 + 3 k1 x^2)
//             (tanh'(u) = 1 - tanh^2 = 4 s (1 - s))
//
// Why not tanh: 1 + tanh(u) cancels for negative x (tanh(u) -> -1) and loses
// the left tail's relative precision in float32, while s does not; and
// Eigen's exp is vectorised for float and double (its tanh only for float).
// exp overflowing to inf for very negative x gives s = 0, out = -0, as in
// sigmoid. Backward recomputes s from x rather than storing it.
#include <algorithm>
#include <cmath>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654, kCubic = 0.044715;

template <class T>
void gelu_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  const T k2 = static_cast<T>(-2 * kSqrt2OverPi), k1 = static_cast<T>(kCubic);
  pchunks(a.out_shape.numel(), [&](int64_t b, int64_t n) {
    const auto X = CVecMap<T>(x + b, n);
    VecMap<T>(o + b, n) = X * (T(1) + (k2 * (X + k1 * X.cube())).exp()).inverse();
  });
}

template <class T>
void gelu_backward(const KernelArgs& a) {
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  const T *x = in<T>(a, 0), *g = gout<T>(a);
  const T k0 = static_cast<T>(kSqrt2OverPi), k1 = static_cast<T>(kCubic);
  const bool overwrite = fresh(a, 0);
  pchunks(a.out_shape.numel(), [&](int64_t b, int64_t n) {
    // s for a block at a time, in a stack buffer (no allocation per chunk).
    constexpr int64_t kBlock = 256;
    T sbuf[kBlock];
    for (int64_t i = b; i < b + n; i += kBlock) {
      const int64_t m = std::min(kBlock, b + n - i);
      // Past |x| = 20 the derivative is 0 or 1 to double precision; the clamp
      // keeps x^2 finite there (else 0 * inf = NaN for x near -FLT_MAX).
      const auto X = CVecMap<T>(x + i, m).max(T(-20)).min(T(20));
      auto s = VecMap<T>(sbuf, m);
      s = (T(1) + (T(-2) * k0 * (X + k1 * X.cube())).exp()).inverse();
      auto v = CVecMap<T>(g + i, m) *
               (s + T(2) * k0 * X * s * (T(1) - s) * (T(1) + T(3) * k1 * X.square()));
      if (overwrite) VecMap<T>(dx + i, m) = v;
      else VecMap<T>(dx + i, m) += v;
    }
  });
}

}  // namespace

template <class T>
void register_gelu(KernelPair* t) {
  t[int(OpKind::Gelu)] = {gelu_forward<T>, gelu_backward<T>, true};
}
template void register_gelu<float>(KernelPair*);
template void register_gelu<double>(KernelPair*);

}  // namespace lldl::cpu
