// Per-element kernel bodies of the pointwise ops, reductions, losses,
// dropout and the optimiser update: one call computes one output element
// (or one row, for the row-wise ops). They run on the GPU through
// for_each_kernel and on the host through host_launch (hd.h); the CPU
// backend's kernels are the reference they are tested against.
//
// Shapes as in backends/cpu: x, y, out and gradients of pointwise ops have n
// elements; bias is (n) over (rows, n); a reduction sees its input as
// (outer, n, inner) around the reduced axis. Backward bodies ACCUMULATE.
#pragma once
#include <cstdint>

#include "backends/cuda/device.h"
#include "backends/cuda/hd.h"
#include "ops/geometry.h"

namespace lldl::cuda {

// ---- pointwise ----------------------------------------------------------

template <class T> struct AddF {
  const T *x, *y; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i] + y[i]; }
};
template <class T> struct SubF {
  const T *x, *y; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i] - y[i]; }
};
template <class T> struct MulF {
  const T *x, *y; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i] * y[i]; }
};
template <class T> struct ScaleF {
  const T* x; T* o; T s;
  LLDL_HD void operator()(int64_t i) const { o[i] = s * x[i]; }
};
template <class T> struct CopyF {
  const T* x; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i]; }
};
// d += g (add, identity, reshape), d -= g (sub's second input), d += s g (scale).
template <class T> struct AccF {
  const T* g; T* d; T s; bool negate;
  LLDL_HD void operator()(int64_t i) const {
    if (negate) d[i] -= g[i];
    else d[i] += s * g[i];
  }
};
// Mul's backward: d += g * other.
template <class T> struct MulBwdF {
  const T *g, *other; T* d;
  LLDL_HD void operator()(int64_t i) const { d[i] += g[i] * other[i]; }
};
// out[r, j] = x[r, j] + b[j], x is (rows, n).
template <class T> struct BiasF {
  const T *x, *b; T* o; int64_t n;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i] + b[i % n]; }
};
// o[r, j] = b[j]: the bias written into linear's output before the GEMM
// accumulates x @ op(w) onto it.
template <class T> struct RowBroadcastF {
  const T* b; T* o; int64_t n;
  LLDL_HD void operator()(int64_t i) const { o[i] = b[i % n]; }
};
// db[j] += sum over rows of g[r, j]: one thread per column.
template <class T> struct ColSumF {
  const T* g; T* d; int64_t rows, n;
  LLDL_HD void operator()(int64_t j) const {
    T acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += g[r * n + j];
    d[j] += acc;
  }
};

// 1 / (1 + exp(-x)): exp overflows to inf for very negative x, 1/inf = 0.
template <class T> struct SigmoidF {
  const T* x; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = T(1) / (T(1) + hexp(-x[i])); }
};
template <class T> struct SigmoidBwdF {  // dy/dx = y (1 - y)
  const T *y, *g; T* d;
  LLDL_HD void operator()(int64_t i) const { d[i] += g[i] * y[i] * (T(1) - y[i]); }
};
template <class T> struct TanhF {
  const T* x; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = htanh(x[i]); }
};
template <class T> struct TanhBwdF {  // dy/dx = 1 - y^2
  const T *y, *g; T* d;
  LLDL_HD void operator()(int64_t i) const { d[i] += g[i] * (T(1) - y[i] * y[i]); }
};
// silu: x s, s = sigmoid(x); dy/dx = s (1 + x (1 - s)), s recomputed from x.
template <class T> struct SiluF {
  const T* x; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i] / (T(1) + hexp(-x[i])); }
};
template <class T> struct SiluBwdF {
  const T *x, *g; T* d;
  LLDL_HD void operator()(int64_t i) const {
    const T s = T(1) / (T(1) + hexp(-x[i]));
    d[i] += g[i] * s * (T(1) + x[i] * (T(1) - s));
  }
};
// Written so that NaN and -0 pass through, as the CPU's max(x, 0) does.
template <class T> struct ReluF {
  const T* x; T* o;
  LLDL_HD void operator()(int64_t i) const { o[i] = x[i] < T(0) ? T(0) : x[i]; }
};
template <class T> struct ReluBwdF {  // gradient 0 at the kink
  const T *x, *g; T* d;
  LLDL_HD void operator()(int64_t i) const { d[i] += x[i] > T(0) ? g[i] : T(0); }
};

// ---- dropout ----------------------------------------------------------------
// The CPU backend's counter-based mask (backends/cpu/dropout.cpp): element i
// is kept when u(seed, i) >= p, u from splitmix64, so forward and backward,
// CPU and GPU draw the same mask from the same seed.

LLDL_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
struct DropMask {
  uint64_t key;  // mix64(seed)
  double p;
  LLDL_HD bool keep(int64_t i) const {
    uint64_t u = mix64(key + (static_cast<uint64_t>(i) + 1) * 0x9e3779b97f4a7c15ull);
    return static_cast<double>(u >> 11) * 0x1.0p-53 >= p;
  }
};
template <class T> struct DropoutF {
  const T* x; T* o; DropMask m; T scale;
  LLDL_HD void operator()(int64_t i) const { o[i] = m.keep(i) ? x[i] * scale : T(0); }
};
template <class T> struct DropoutBwdF {
  const T* g; T* d; DropMask m; T scale;
  LLDL_HD void operator()(int64_t i) const {
    if (m.keep(i)) d[i] += g[i] * scale;
  }
};

// ---- reductions -------------------------------------------------------------

// One thread per output: sums its n inputs (stride inner) in double.
template <class T> struct ReduceF {
  const T* x; T* o; ReduceDims p; bool mean;
  LLDL_HD void operator()(int64_t oi) const {
    int64_t r = oi / p.inner, c = oi % p.inner;
    const T* base = x + r * p.n * p.inner + c;
    double acc = 0;
    for (int64_t k = 0; k < p.n; ++k) acc += base[k * p.inner];
    if (mean) acc /= static_cast<double>(p.n);
    o[oi] = static_cast<T>(acc);
  }
};
// Every input element receives its output's gradient times f (1 or 1/n).
template <class T> struct ReduceBwdF {
  const T* g; T* d; ReduceDims p; T f;
  LLDL_HD void operator()(int64_t i) const {
    int64_t r = i / (p.n * p.inner), c = i % p.inner;
    d[i] += f * g[r * p.inner + c];
  }
};

// ---- losses ------------------------------------------------------------------

// mse forward, naive: the single output's thread sums all n squared errors.
template <class T> struct MseF {
  const T *p, *t; T* o; int64_t n;
  LLDL_HD void operator()(int64_t) const {
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      double e = static_cast<double>(p[i]) - static_cast<double>(t[i]);
      acc += e * e;
    }
    o[0] = static_cast<T>(acc / static_cast<double>(n));
  }
};
// d pred += 2 (pred - target) / n * g; d target -= the same. g is the output
// gradient, read on the device.
template <class T> struct MseBwdF {
  const T *p, *t, *g; T* d; int64_t n; bool negate;
  LLDL_HD void operator()(int64_t i) const {
    T f = T(2) * g[0] / static_cast<T>(n);
    if (negate) d[i] -= f * (p[i] - t[i]);
    else d[i] += f * (p[i] - t[i]);
  }
};

// o[0] = f * (v[0] + ... + v[n-1]): the naive last step of a loss, one thread.
template <class T> struct FinishSumF {
  const double* v; T* o; int64_t n; double f;
  LLDL_HD void operator()(int64_t) const {
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += v[i];
    o[0] = static_cast<T>(f * acc);
  }
};

// ---- optimiser ---------------------------------------------------------------
// The update of autograd/optim.cpp, element by element, in float.
// kind: 0 SGD, 1 momentum, 2 Adam, 3 AdamW.
// sc: null, or {lr, bc1, bc2} in memory, read instead of c's (ParamSlot::
// scalars: a captured step replays with the values of each step).
struct OptimF {
  CudaOptimArgs c; float* p; const float* grad; float* m; float* v; const float* sc = nullptr;
  LLDL_HD void operator()(int64_t i) const {
    const float lr = sc ? sc[0] : c.lr, wd = c.weight_decay;
    const float bc1 = sc ? sc[1] : c.bc1, bc2 = sc ? sc[2] : c.bc2;
    if (c.kind == 0) {
      p[i] -= lr * (grad[i] + wd * p[i]);
    } else if (c.kind == 1) {  // buf = mu buf + g; p -= lr buf
      m[i] = c.momentum * m[i] + grad[i] + wd * p[i];
      p[i] -= lr * m[i];
    } else {
      const bool decoupled = c.kind == 3;
      float gi = decoupled ? grad[i] : grad[i] + wd * p[i];
      if (decoupled) p[i] -= lr * wd * p[i];
      m[i] = c.beta1 * m[i] + (1.0f - c.beta1) * gi;
      v[i] = c.beta2 * v[i] + (1.0f - c.beta2) * gi * gi;
      p[i] -= lr * (m[i] / bc1) / (hsqrt(v[i] / bc2) + c.eps);
    }
  }
};

}  // namespace lldl::cuda
