// max_pool2d, avg_pool2d and reshape.
//
// Pooling: x is (N, C, H, W), y is (N, C, OH, OW); window (oh, ow) covers rows
// oh*S .. oh*S+k-1 and columns ow*S .. ow*S+k-1 of its plane, no padding
// (S = attr.pool.stride, 0 meaning k). Planes are independent, so threads take
// whole planes and overlapping windows (S < k) never race in backward.
//
// Max-pool's forward stores in its workspace, per window, the index of the
// element that is its maximum (the first maximum wins; a NaN is the maximum,
// so it propagates), row-major within the window, as a value of T; backward
// routes the gradient there without reading x again. (The CUDA kernels find
// the maximum again instead and leave the workspace alone.)
//
// reshape is a view: the output aliases x's data (Graph::record), so its
// forward does nothing; backward adds dy into dx element by element.
#include <algorithm>
#include <vector>

#include "backends/cpu/common.h"
#include "ops/geometry.h"

namespace lldl::cpu {

namespace {

using Pool = PoolGeom;  // ops/geometry.h

// Runs f(p) for every plane p, on threads when the input is large enough.
template <class F>
void for_planes(const Pool& g, F&& f) {
#pragma omp parallel for if (g.planes * g.H * g.W >= kParallelMin) schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) f(p);
}

// The window maximum: v replaces the running maximum m when it is larger or
// when it is the first NaN, so the first maximum wins and NaN propagates.
// Written as selects, which vectorise.
template <class T>
inline T keep_max(T v, T m) {
  return (v > m || (v != v && m == m)) ? v : m;
}
// Is v the maximum m (a NaN matches a NaN)?
template <class T>
inline bool is_max(T v, T m) {
  return v == m || (v != v && m != m);
}

// 2x2 windows with stride 2, the usual pooling, get a faster path. Their rows
// are short (7 and 14 windows in the target network): too short for a
// vectorised loop along a row, and a scalar loop full of compares stalls on
// mispredicted branches. So a plane goes through passes whose compares run
// in one flat, vectorised loop over all its windows: gather each window's
// four values into four arrays (plain copies, cheap at any row length), take
// the maximum (forward) or the first-maximum routing of the gradient
// (backward) flat, then scatter the four gradients back. The arrays are per
// thread (thread_local; they grow to the largest plane, then are reused).
template <class T>
T* plane_scratch(int64_t n) {
  thread_local std::vector<T> v;
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

// q[0..3][k] = the four values of window k, in window order, for the
// windows of planes [p0, p1) (k = (p - p0)*OH*OW + oh*OW + ow); M = their count.
template <class T>
void gather_2x2(const T* x, const Pool& g, int64_t p0, int64_t p1, T* q, int64_t M) {
  for (int64_t p = p0, k = 0; p < p1; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh, k += g.OW) {
      const T *r0 = x + (p * g.H + 2 * oh) * g.W, *r1 = r0 + g.W;
      T *q0 = q + k, *q1 = q0 + M, *q2 = q1 + M, *q3 = q2 + M;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        q0[ow] = r0[2 * ow];
        q1[ow] = r0[2 * ow + 1];
        q2[ow] = r1[2 * ow];
        q3[ow] = r1[2 * ow + 1];
      }
    }
}

// Runs f(p0, p1) over groups of consecutive planes holding about 1024
// windows each, on threads when the input is large enough.
template <class F>
void for_plane_groups(const Pool& g, F&& f) {
  const int64_t per = std::max<int64_t>(1, 1024 / std::max<int64_t>(1, g.OH * g.OW));
  const int64_t groups = (g.planes + per - 1) / per;
#pragma omp parallel for if (g.planes * g.H * g.W >= kParallelMin) schedule(static)
  for (int64_t i = 0; i < groups; ++i) f(i * per, std::min(g.planes, (i + 1) * per));
}

// Per window i of M: the maximum of its four values q0..q3[i] (window
// order) and the index of the first of them equal to it. A function of its
// own with restrict pointers: inside the kernel's lambda GCC did not
// vectorise the loop.
template <class T>
void max_index_2x2(const T* __restrict q0, const T* __restrict q1, const T* __restrict q2,
                   const T* __restrict q3, T* __restrict y, T* __restrict idx, int64_t M) {
  for (int64_t i = 0; i < M; ++i) {
    const T v0 = q0[i], v1 = q1[i], v2 = q2[i];
    const T m = keep_max(q3[i], keep_max(v2, keep_max(v1, v0)));
    y[i] = m;
    // 0 if v0 is the first maximum, else 1 if v1 is, ...: a sum of selects
    // in T (a chain of selects does not vectorise).
    const T n0 = is_max(v0, m) ? T(0) : T(1), n1 = is_max(v1, m) ? T(0) : n0,
            n2 = is_max(v2, m) ? T(0) : n1;
    idx[i] = n0 + n1 + n2;
  }
}

template <class T>
void max2x2_forward(const T* x, T* y, T* idx, const Pool& g) {
  for_plane_groups(g, [&](int64_t p0, int64_t p1) {
    const int64_t M = (p1 - p0) * g.OH * g.OW;
    T* q = plane_scratch<T>(4 * M);
    gather_2x2(x, g, p0, p1, q, M);
    max_index_2x2(q, q + M, q + 2 * M, q + 3 * M, y + p0 * g.OH * g.OW, idx + p0 * g.OH * g.OW, M);
  });
}

// Per window i of M: its gradient d[i] to the element idx[i] names, 0 to
// the others (q0..q3, window order).
template <class T>
void route_2x2(const T* __restrict d, const T* __restrict idx, T* __restrict q0,
               T* __restrict q1, T* __restrict q2, T* __restrict q3, int64_t M) {
  for (int64_t i = 0; i < M; ++i) {
    const T v = d[i], k = idx[i];
    q0[i] = k == T(0) ? v : T(0);
    q1[i] = k == T(1) ? v : T(0);
    q2[i] = k == T(2) ? v : T(0);
    q3[i] = k == T(3) ? v : T(0);
  }
}

// Windows do not overlap: each element gets its window's gradient if it is
// the first maximum, else 0 ("rest" passes on until an element takes it).
// overwrite (a stale dx, KernelArgs::gin_fresh): windows cover the planes
// except a last row or column of odd length, which is zeroed.
template <class T>
void max2x2_backward(const T* idx, const T* dy, T* dx, const Pool& g, bool overwrite) {
  for_plane_groups(g, [&](int64_t p0, int64_t p1) {
    const int64_t M = (p1 - p0) * g.OH * g.OW;
    T* q = plane_scratch<T>(4 * M);
    route_2x2(dy + p0 * g.OH * g.OW, idx + p0 * g.OH * g.OW, q, q + M, q + 2 * M, q + 3 * M, M);
    for (int64_t p = p0, k = 0; p < p1; ++p) {
      for (int64_t oh = 0; oh < g.OH; ++oh, k += g.OW) {
        T *d0 = dx + (p * g.H + 2 * oh) * g.W, *d1 = d0 + g.W;
        const T* q0 = q + k;
        if (overwrite) {
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            d0[2 * ow] = q0[ow];
            d0[2 * ow + 1] = q0[M + ow];
            d1[2 * ow] = q0[2 * M + ow];
            d1[2 * ow + 1] = q0[3 * M + ow];
          }
          if (g.W > 2 * g.OW) d0[g.W - 1] = d1[g.W - 1] = T(0);
        } else {
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            d0[2 * ow] += q0[ow];
            d0[2 * ow + 1] += q0[M + ow];
            d1[2 * ow] += q0[2 * M + ow];
            d1[2 * ow + 1] += q0[3 * M + ow];
          }
        }
      }
      if (overwrite && g.H > 2 * g.OH)
        std::fill(dx + (p * g.H + 2 * g.OH) * g.W, dx + (p + 1) * g.H * g.W, T(0));
    }
  });
}

// Offset (in the plane) of window (oh, ow)'s maximum: the first element
// equal to it.
template <class T>
inline int64_t argmax(const T* x, const Pool& g, int64_t oh, int64_t ow) {
  const int64_t r0 = oh * g.S * g.W + ow * g.S;
  T m = x[r0];
  for (int64_t i = 0; i < g.k; ++i)
    for (int64_t j = 0; j < g.k; ++j) m = keep_max(x[r0 + i * g.W + j], m);
  for (int64_t i = 0; i < g.k; ++i)
    for (int64_t j = 0; j < g.k; ++j)
      if (is_max(x[r0 + i * g.W + j], m)) return r0 + i * g.W + j;
  return r0;  // not reached
}

template <class T>
void max_forward(const KernelArgs& a) {
  const Pool g = pool_geom(a.in_shape, a.attr);
  const T* x = in<T>(a, 0);
  T *y = out<T>(a), *idx = static_cast<T*>(a.ws);
  if (g.k == 2 && g.S == 2) return max2x2_forward(x, y, idx, g);
  for_planes(g, [&](int64_t p) {
    const T* xp = x + p * g.H * g.W;
    T *yp = y + p * g.OH * g.OW, *ip = idx + p * g.OH * g.OW;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t at = argmax(xp, g, oh, ow), r0 = oh * g.S * g.W + ow * g.S;
        yp[oh * g.OW + ow] = xp[at];
        ip[oh * g.OW + ow] = static_cast<T>((at - r0) / g.W * g.k + (at - r0) % g.W);
      }
  });
}

template <class T>
void max_backward(const KernelArgs& a) {
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  const Pool g = pool_geom(a.in_shape, a.attr);
  const T *idx = static_cast<const T*>(a.ws), *dy = gout<T>(a);
  const bool overwrite = fresh(a, 0);
  if (g.k == 2 && g.S == 2) return max2x2_backward(idx, dy, dx, g, overwrite);
  for_planes(g, [&](int64_t p) {
    const T *dyp = dy + p * g.OH * g.OW, *ip = idx + p * g.OH * g.OW;
    T* dxp = dx + p * g.H * g.W;
    if (overwrite) std::fill(dxp, dxp + g.H * g.W, T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t k = static_cast<int64_t>(ip[oh * g.OW + ow]);
        dxp[(oh * g.S + k / g.k) * g.W + ow * g.S + k % g.k] += dyp[oh * g.OW + ow];
      }
  });
}

template <class T>
void avg_forward(const KernelArgs& a) {
  const Pool g = pool_geom(a.in_shape, a.attr);
  const T* x = in<T>(a, 0);
  T* y = out<T>(a);
  const T inv = T(1) / static_cast<T>(g.k * g.k);
  for_planes(g, [&](int64_t p) {
    const T* xp = x + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        T s = 0;
        for (int64_t i = 0; i < g.k; ++i) {
          const T* row = xp + (oh * g.S + i) * g.W + ow * g.S;
          for (int64_t j = 0; j < g.k; ++j) s += row[j];
        }
        yp[oh * g.OW + ow] = s * inv;
      }
  });
}

// Every element of a window receives dy / k^2.
template <class T>
void avg_backward(const KernelArgs& a) {
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  const Pool g = pool_geom(a.in_shape, a.attr);
  const T* dy = gout<T>(a);
  const T inv = T(1) / static_cast<T>(g.k * g.k);
  const bool overwrite = fresh(a, 0);
  for_planes(g, [&](int64_t p) {
    const T* dyp = dy + p * g.OH * g.OW;
    T* dxp = dx + p * g.H * g.W;
    if (overwrite) std::fill(dxp, dxp + g.H * g.W, T(0));  // then windows add in
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const T d = dyp[oh * g.OW + ow] * inv;
        for (int64_t i = 0; i < g.k; ++i) {
          T* row = dxp + (oh * g.S + i) * g.W + ow * g.S;
          for (int64_t j = 0; j < g.k; ++j) row[j] += d;
        }
      }
  });
}

template <class T>
void reshape_forward(const KernelArgs&) {}  // the output is a view of x

template <class T>
void reshape_backward(const KernelArgs& a) {
  T* dx = gin<T>(a, 0);
  if (!dx) return;
  const T* dy = gout<T>(a);
  put(dx, fresh(a, 0), a.out_shape.numel(), [&](int64_t i) { return dy[i]; });
}

}  // namespace

template <class T>
void register_pool(KernelPair* t) {
  t[int(OpKind::MaxPool2d)] = {max_forward<T>, max_backward<T>, true};
  t[int(OpKind::AvgPool2d)] = {avg_forward<T>, avg_backward<T>, true};
  t[int(OpKind::Reshape)] = {reshape_forward<T>, reshape_backward<T>, true, 0b1};
}
template void register_pool<float>(KernelPair*);
template void register_pool<double>(KernelPair*);

}  // namespace lldl::cpu
