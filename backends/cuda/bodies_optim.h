// The multi-tensor optimiser: one launch updates every parameter, and one
// reduction gives the global gradient norm for clipping, with no host read
// in between (the factor is computed on the device from the reduced sum).
//
// The parameters travel as a table of MultiSlot in device memory; element i
// of the concatenation of all parameters belongs to the slot whose [start,
// start + n) holds it, found by binary search (a step has a few hundred
// parameters: eight probes, against the four arrays the update streams).
// Bodies compile for the host too (hd.h), so tests/test_cuda_host.cpp runs
// them against the CPU optimiser.
#pragma once
#include <cstdint>

#include "backends/cuda/device.h"
#include "backends/cuda/hd.h"

namespace lldl::cuda {

struct MultiSlot {
  float* p;
  const float* grad;
  float* m;
  float* v;
  int64_t start;  // offset of this parameter in the concatenation
  float bc1, bc2;  // Adam's bias corrections 1 - beta^step of this parameter
  // Null, or {lr, bc1, bc2} in device memory, read instead of c.lr, bc1, bc2
  // (ParamSlot::scalars: a captured step replays with each step's values).
  const float* sc = nullptr;
};

// The slot holding element i (slots sorted by start, slot 0 at start 0).
LLDL_HD inline int find_slot(const MultiSlot* s, int count, int64_t i) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (s[mid].start <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The clipping factor for a reduced sum of squares (device.h's clip_scale):
// 1 within max_norm, max_norm / (norm + 1e-6) above it, 0 for NaN or Inf.
LLDL_HD inline float clip_factor(const double* sumsq, double max_norm) {
  if (!sumsq) return 1.0f;
  const double norm = hsqrt(*sumsq);
  if (!(norm - norm == 0.0)) return 0.0f;
  return norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
}

// grad_i^2 in double, element i of the concatenation.
struct SumSquaresF {
  const MultiSlot* s;
  int count;
  LLDL_HD double operator()(int64_t i) const {
    const MultiSlot& d = s[find_slot(s, count, i)];
    const double g = d.grad[i - d.start];
    return g * g;
  }
};

// OptimF's rule (bodies_pointwise.h) over all parameters, each gradient read
// as g * factor; a factor of 0 (non-finite norm) leaves everything as it was.
struct MultiOptimF {
  CudaOptimArgs c;  // bc1, bc2 unused: per slot
  const MultiSlot* s;
  int count;
  const double* sumsq;  // null: no clipping
  double max_norm;
  LLDL_HD void operator()(int64_t i) const {
    const float f = clip_factor(sumsq, max_norm);
    if (f == 0.0f) return;
    const MultiSlot& d = s[find_slot(s, count, i)];
    const int64_t j = i - d.start;
    float* p = d.p;
    const float g = d.grad[j] * f, lr = d.sc ? d.sc[0] : c.lr, wd = c.weight_decay;
    const float bc1 = d.sc ? d.sc[1] : d.bc1, bc2 = d.sc ? d.sc[2] : d.bc2;
    if (c.kind == 0) {
      p[j] -= lr * (g + wd * p[j]);
    } else if (c.kind == 1) {
      d.m[j] = c.momentum * d.m[j] + g + wd * p[j];
      p[j] -= lr * d.m[j];
    } else {
      const bool decoupled = c.kind == 3;
      const float gi = decoupled ? g : g + wd * p[j];
      if (decoupled) p[j] -= lr * wd * p[j];
      d.m[j] = c.beta1 * d.m[j] + (1.0f - c.beta1) * gi;
      d.v[j] = c.beta2 * d.v[j] + (1.0f - c.beta2) * gi * gi;
      p[j] -= lr * (d.m[j] / bc1) / (hsqrt(d.v[j] / bc2) + c.eps);
    }
  }
};

// clip_grad_norm's in-place scaling of every gradient.
struct MultiScaleF {
  const MultiSlot* s;
  int count;
  const double* sumsq;
  double max_norm;
  LLDL_HD void operator()(int64_t i) const {
    const float f = clip_factor(sumsq, max_norm);
    if (f == 0.0f || f == 1.0f) return;
    const MultiSlot& d = s[find_slot(s, count, i)];
    const_cast<float*>(d.grad)[i - d.start] *= f;
  }
};

}  // namespace lldl::cuda
