// transpose, slice and concat: copies that move elements, no arithmetic.
// Backward moves the output gradient back the same way and adds it in.
//
// Each op sees its tensors as a few flat blocks around the dims it touches:
//   transpose(x, d0 < d1): x is (A, n0, B, n1, C), out is (A, n1, B, n0, C)
//       (A: dims before d0, B: dims between, C: dims after d1);
//       out[a, j, b, i, c] = x[a, i, b, j, c]
//   slice(x, axis, start S, length L): x is (A, D, C), out is (A, L, C);
//       out[a, l, c] = x[a, S + l, c]
//   concat(a, b, axis): a is (A, Da, C), b is (A, Db, C), out is
//       (A, Da + Db, C); out[k, :Da] = a[k], out[k, Da:] = b[k]
// Every output element comes from one input element, so any split of the
// work among threads writes each gradient element once.
#include <algorithm>
#include <utility>

#include "backends/cpu/common.h"
#include "ops/geometry.h"

namespace lldl::cpu {

namespace {

// dst (A, n1, B, n0, C) = (or +=) src (A, n0, B, n1, C) with n0 and n1 swapped.
template <class T, bool Add>
void swap_copy(const T* src, T* dst, int64_t A, int64_t n0, int64_t B, int64_t n1, int64_t C) {
  pfor(A * n1, [&](int64_t aj) {
    const int64_t a = aj / n1, j = aj % n1;
    T* d = dst + aj * B * n0 * C;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < n0; ++i, d += C) {
        const T* s = src + (((a * n0 + i) * B + b) * n1 + j) * C;
        for (int64_t c = 0; c < C; ++c) {
          if constexpr (Add) d[c] += s[c];
          else d[c] = s[c];
        }
      }
  }, A * n0 * B * n1 * C);
}

using Swap = SwapGeom;  // ops/geometry.h, as are Cut and Join

template <class T>
void transpose_forward(const KernelArgs& a) {
  const Swap s = swap_geom(a.in_shape, a.attr);
  swap_copy<T, false>(in<T>(a, 0), out<T>(a), s.A, s.n0, s.B, s.n1, s.C);
}
template <class T>
void transpose_backward(const KernelArgs& a) {
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  const Swap s = swap_geom(a.in_shape, a.attr);  // dout is (A, n1, B, n0, C): swap back
  swap_copy<T, true>(gout<T>(a), dx, s.A, s.n1, s.B, s.n0, s.C);
}

// slice: (A, D, C) around the axis.
using Cut = CutGeom;

template <class T>
void slice_forward(const KernelArgs& a) {
  const Cut s = cut_geom(a.in_shape, a.attr);
  const T* x = in<T>(a, 0);
  T* o = out<T>(a);
  pfor(s.A * s.length, [&](int64_t al) {
    const int64_t k = al / s.length, l = al % s.length;
    std::copy_n(x + (k * s.D + s.start + l) * s.C, s.C, o + al * s.C);
  }, s.A * s.length * s.C);
}
template <class T>
void slice_backward(const KernelArgs& a) {
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  const Cut s = cut_geom(a.in_shape, a.attr);
  const T* g = gout<T>(a);
  pfor(s.A * s.length, [&](int64_t al) {
    const int64_t k = al / s.length, l = al % s.length;
    T* d = dx + (k * s.D + s.start + l) * s.C;
    const T* gr = g + al * s.C;
    for (int64_t c = 0; c < s.C; ++c) d[c] += gr[c];
  }, s.A * s.length * s.C);
}

// concat: row k of the output is a's row k (Da*C values) then b's (Db*C).
using Join = JoinGeom;

template <class T>
void concat_forward(const KernelArgs& a) {
  const Join j = join_geom(a.in_shape, a.attr);
  const T *x = in<T>(a, 0), *y = in<T>(a, 1);
  T* o = out<T>(a);
  pfor(j.A, [&](int64_t k) {
    T* row = o + k * (j.na + j.nb);
    std::copy_n(x + k * j.na, j.na, row);
    std::copy_n(y + k * j.nb, j.nb, row + j.na);
  }, j.A * (j.na + j.nb));
}
// One input after the other, so concat(x, x) adds both halves into dx in turn.
template <class T>
void concat_backward(const KernelArgs& a) {
  const Join j = join_geom(a.in_shape, a.attr);
  const T* g = gout<T>(a);
  for (int side = 0; side < 2; ++side) {
    T* d = gin<T>(a, side);
    if (!d) continue;
    const int64_t n = side == 0 ? j.na : j.nb, off = side == 0 ? 0 : j.na;
    pfor(j.A, [&](int64_t k) {
      const T* gr = g + k * (j.na + j.nb) + off;
      T* dr = d + k * n;
      for (int64_t c = 0; c < n; ++c) dr[c] += gr[c];
    }, j.A * n);
  }
}

}  // namespace

template <class T>
void register_layout(KernelPair* t) {
  t[int(OpKind::Transpose)] = {transpose_forward<T>, transpose_backward<T>};
  t[int(OpKind::Slice)] = {slice_forward<T>, slice_backward<T>};
  t[int(OpKind::Concat)] = {concat_forward<T>, concat_backward<T>};
}
template void register_layout<float>(KernelPair*);
template void register_layout<double>(KernelPair*);

}  // namespace lldl::cpu
