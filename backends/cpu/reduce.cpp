// sum and mean over one axis (keeping it as size 1) or over everything.
// The input is seen as (outer, n, inner) around the reduced axis; the output
// as (outer, inner) (ReduceDims, ops/geometry.h).
#include "backends/cpu/common.h"
#include "ops/geometry.h"

namespace lldl::cpu {

namespace {


// Accumulates in double for float inputs, so long sums stay accurate.
template <class T, bool Mean>
void reduce_forward(const KernelArgs& a) {
  const ReduceDims p = reduce_dims(a.in_shape, a.attr);
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  pfor(p.outer * p.inner, [&](int64_t oi) {
    int64_t r = oi / p.inner, c = oi % p.inner;
    const T* base = x + r * p.n * p.inner + c;
    double acc = 0;
    for (int64_t k = 0; k < p.n; ++k) acc += base[k * p.inner];
    if (Mean) acc /= static_cast<double>(p.n);
    o[oi] = static_cast<T>(acc);
  });
}

// Every input element receives its output's gradient (divided by n for mean).
template <class T, bool Mean>
void reduce_backward(const KernelArgs& a) {
  const ReduceDims p = reduce_dims(a.in_shape, a.attr);
  const T* g = gout<T>(a);
  T* d = gin<T>(a, 0);
  if (!d) return;
  T f = Mean ? T(1) / static_cast<T>(p.n) : T(1);
  pfor(p.outer * p.n * p.inner, [&](int64_t i) {
    int64_t r = i / (p.n * p.inner), c = i % p.inner;
    d[i] += f * g[r * p.inner + c];
  });
}

}  // namespace

template <class T>
void register_reduce(KernelPair* t) {
  t[int(OpKind::Sum)] = {reduce_forward<T, false>, reduce_backward<T, false>};
  t[int(OpKind::Mean)] = {reduce_forward<T, true>, reduce_backward<T, true>};
}
template void register_reduce<float>(KernelPair*);
template void register_reduce<double>(KernelPair*);

}  // namespace lldl::cpu
