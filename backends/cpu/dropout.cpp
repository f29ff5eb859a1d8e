// Dropout. x, out and their gradients have the same shape (n elements).
//
// The mask is never stored: element i is kept when u(seed, i) >= p, with u a
// uniform number in [0, 1) hashed from the seed and the element index
// (counter-based, splitmix64), so backward recomputes exactly the mask that
// forward drew, threads need no shared generator, and the same seed gives
// the same mask on every platform. Kept elements are scaled by 1/(1-p) so
// the expected output equals the input.
#include <cstdint>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The i-th number of a splitmix64 stream started from mix64(seed): mixing
// the seed first keeps nearby seeds from giving shifted copies of one mask.
struct Mask {
  uint64_t key;
  double p;
  Mask(uint64_t seed, float prob) : key(mix64(seed)), p(prob) {}
  bool keep(int64_t i) const {
    uint64_t u = mix64(key + (static_cast<uint64_t>(i) + 1) * kGolden);
    return static_cast<double>(u >> 11) * 0x1.0p-53 >= p;
  }
};

bool active(const KernelArgs& a) { return a.attr.dropout.training && a.attr.dropout.p > 0.0f; }

// out = x * keep(i) / (1 - p); eval mode or p = 0: out = x.
template <class T>
void dropout_forward(const KernelArgs& a) {
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  int64_t n = a.out_shape.numel();
  if (!active(a)) {
    pfor(n, [&](int64_t i) { o[i] = x[i]; });
    return;
  }
  Mask m(a.attr.dropout.seed, a.attr.dropout.p);
  T scale = T(1) / (T(1) - static_cast<T>(a.attr.dropout.p));
  pfor(n, [&](int64_t i) { o[i] = m.keep(i) ? x[i] * scale : T(0); });
}

// The same mask and scale applied to the gradient: dx = g * keep(i) / (1 - p).
template <class T>
void dropout_backward(const KernelArgs& a) {
  T* d = gin<T>(a, 0);
  if (!d) return;
  const T* g = gout<T>(a);
  int64_t n = a.out_shape.numel();
  if (!active(a)) {
    pfor(n, [&](int64_t i) { d[i] += g[i]; });
    return;
  }
  Mask m(a.attr.dropout.seed, a.attr.dropout.p);
  T scale = T(1) / (T(1) - static_cast<T>(a.attr.dropout.p));
  pfor(n, [&](int64_t i) {
    if (m.keep(i)) d[i] += g[i] * scale;
  });
}

}  // namespace

template <class T>
void register_dropout(KernelPair* t) {
  t[int(OpKind::Dropout)] = {dropout_forward<T>, dropout_backward<T>};
}
template void register_dropout<float>(KernelPair*);
template void register_dropout<double>(KernelPair*);

}  // namespace lldl::cpu
