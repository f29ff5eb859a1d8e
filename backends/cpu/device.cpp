// The CPU's device functions (backends/device.h): host memory, and the
// optimisers' update as one OpenMP loop over all parameters.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/device.h"
#include "core/arena.h"

namespace lldl {

namespace {

bool yes() { return true; }
std::string status() { return "cpu"; }
void* host_alloc(size_t bytes) { return host_allocator().alloc(bytes); }
void host_free(void* p) { host_allocator().free(p); }
void host_memset(void* dst, int value, size_t bytes) { std::memset(dst, value, bytes); }
void host_copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void no_sync() {}

// The loops vectorise: the pointers never alias (__restrict) and each kind
// has its own branch-free loop (one loop with the AdamW/Adam choice inside
// stayed scalar, divisions and square roots one element at a time).
// sc: null, or {lr, bc1, bc2} to use instead of c.lr and those of step t
// (ParamSlot::scalars; the same values, read from memory).
template <class T>
void update(const OptimConfig& c, int64_t t, int64_t n, T* __restrict p,
            const T* __restrict grad, T* __restrict m, T* __restrict v, const T* sc) {
  const T lr = sc ? sc[0] : T(c.lr), wd = c.weight_decay;
  switch (c.kind) {
    case OptimKind::SGD:
      for (int64_t i = 0; i < n; ++i) p[i] -= lr * (grad[i] + wd * p[i]);
      return;
    case OptimKind::Momentum: {  // buf = mu buf + g; p -= lr buf (PyTorch's form)
      const T mu = c.momentum;
      for (int64_t i = 0; i < n; ++i) {
        m[i] = mu * m[i] + grad[i] + wd * p[i];
        p[i] -= lr * m[i];
      }
      return;
    }
    case OptimKind::Adam:
    case OptimKind::AdamW: {
      const T b1 = c.beta1, b2 = c.beta2, eps = c.eps;
      const T bc1 = sc ? sc[1] : T(1) - std::pow(b1, T(t));
      const T bc2 = sc ? sc[2] : T(1) - std::pow(b2, T(t));
      if (c.kind == OptimKind::AdamW) {
        for (int64_t i = 0; i < n; ++i) {
          const T gi = grad[i];
          p[i] -= lr * wd * p[i];
          m[i] = b1 * m[i] + (T(1) - b1) * gi;
          v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
          p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const T gi = grad[i] + wd * p[i];
          m[i] = b1 * m[i] + (T(1) - b1) * gi;
          v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
          p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
        }
      }
      return;
    }
  }
}

// The update runs over chunks of all parameters at once, one OpenMP loop
// per step: a GPT layer's 128 x 384 weight alone is too small to be worth a
// thread team, but a step updates hundreds of thousands of elements in all.
// Chunks of 8192 elements; a smaller parameter is one chunk.
constexpr int64_t kUpdateChunk = 8192;

struct Chunk {
  size_t param;
  int64_t begin, count;
};

// The work list of every gradient in chunks, kept between steps so that a
// step allocates nothing. The OpenMP threads read the calling thread's list
// through the returned reference (naming the thread_local inside the loop
// would give each its own). total: elements in all.
std::vector<Chunk>& chunk_list(const ParamSlot* ps, size_t count, int64_t* total) {
  thread_local std::vector<Chunk> list;
  list.clear();
  *total = 0;
  for (size_t i = 0; i < count; ++i) {
    for (int64_t b = 0; b < ps[i].n; b += kUpdateChunk)
      list.push_back({i, b, std::min(kUpdateChunk, ps[i].n - b)});
    *total += ps[i].n;
  }
  return list;
}

void cpu_scale_grads(DType t, const ParamSlot* ps, size_t count, const GradClip& clip);

template <class T>
void update_all(const OptimConfig& c, const ParamSlot* ps, size_t count, const GradClip* clip) {
  // Clipping on the host scales the gradients in place first: the
  // arithmetic of clip_grad_norm then step(), bit for bit (reading g * f
  // inside the loops would let the compiler fuse g * f + wd * p into one
  // rounding).
  if (clip) {
    if (clip_scale(*clip->sumsq, clip->max_norm) == 0) return;  // NaN/Inf norm: the caller reports it
    cpu_scale_grads(dtype_of<T>(), ps, count, *clip);
  }
  int64_t total = 0;
  std::vector<Chunk>& chunks = chunk_list(ps, count, &total);
  const bool per_m = c.kind != OptimKind::SGD;
  const bool per_v = c.kind == OptimKind::Adam || c.kind == OptimKind::AdamW;
  const int64_t nc = static_cast<int64_t>(chunks.size());
  auto run = [&](int64_t k) {
    const Chunk& ch = chunks[static_cast<size_t>(k)];
    const ParamSlot& s = ps[ch.param];
    const int64_t b = ch.begin;
    T* m = static_cast<T*>(s.m);
    T* v = static_cast<T*>(s.v);
    update(c, s.step, ch.count, static_cast<T*>(s.p) + b, static_cast<const T*>(s.grad) + b,
           per_m ? m + b : m, per_v ? v + b : v, static_cast<const T*>(s.scalars));
  };
  if (total < 4 * kUpdateChunk) {
    for (int64_t k = 0; k < nc; ++k) run(k);
    return;
  }
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t k = 0; k < nc; ++k) run(k);
}

void cpu_update(const OptimConfig& c, DType t, const ParamSlot* ps, size_t count,
                const GradClip* clip) {
  if (t == DType::F32) update_all<float>(c, ps, count, clip);
  else update_all<double>(c, ps, count, clip);
}

// Both run over the chunks of all gradients in one OpenMP loop, like the
// update. The sum of squares is in double, each chunk's sum vectorised (its
// own order of additions, fixed for a given chunk), the chunks added in
// order: the same sum whatever the thread count.
template <class T>
double sumsq_all(const ParamSlot* ps, size_t count) {
  int64_t total = 0;
  std::vector<Chunk>& chunks = chunk_list(ps, count, &total);
  thread_local std::vector<double> partial;
  std::vector<double>& part = partial;
  const int64_t nc = static_cast<int64_t>(chunks.size());
  part.assign(static_cast<size_t>(nc), 0.0);
#pragma omp parallel for schedule(static) if (total >= 4 * kUpdateChunk)
  for (int64_t k = 0; k < nc; ++k) {
    const Chunk& ch = chunks[static_cast<size_t>(k)];
    const T* d = static_cast<const T*>(ps[ch.param].grad) + ch.begin;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < ch.count; ++i) s += double(d[i]) * double(d[i]);
    part[static_cast<size_t>(k)] = s;
  }
  double s = 0;
  for (double x : part) s += x;
  return s;
}
void cpu_grad_sumsq(DType t, const ParamSlot* ps, size_t count, double* out) {
  *out = t == DType::F32 ? sumsq_all<float>(ps, count) : sumsq_all<double>(ps, count);
}

template <class T>
void scale_all(const ParamSlot* ps, size_t count, T f) {
  int64_t total = 0;
  std::vector<Chunk>& chunks = chunk_list(ps, count, &total);
  const int64_t nc = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(static) if (total >= 4 * kUpdateChunk)
  for (int64_t k = 0; k < nc; ++k) {
    const Chunk& ch = chunks[static_cast<size_t>(k)];
    T* d = static_cast<T*>(const_cast<void*>(ps[ch.param].grad)) + ch.begin;
#pragma omp simd
    for (int64_t i = 0; i < ch.count; ++i) d[i] *= f;
  }
}
void cpu_scale_grads(DType t, const ParamSlot* ps, size_t count, const GradClip& clip) {
  const double f = clip_scale(*clip.sumsq, clip.max_norm);
  if (f == 1.0 || f == 0) return;
  if (t == DType::F32) scale_all<float>(ps, count, static_cast<float>(f));
  else scale_all<double>(ps, count, f);
}

}  // namespace

const DeviceFns& cpu_device() {
  static const DeviceFns f{yes,       status,    true,      host_alloc, host_free, host_memset,
                           host_copy, host_copy, host_copy, no_sync,    cpu_update,
                           cpu_grad_sumsq, cpu_scale_grads, true};
  return f;
}

// The CPU runs each kernel as it is called: there is nothing to capture, and
// StepGraph runs the step function at every call (begin is null).
const CaptureFns& cpu_capture_fns() {
  static const CaptureFns f{nullptr,   nullptr,   nullptr,   nullptr,  nullptr,
                            host_alloc, host_free, host_copy, host_copy};
  return f;
}

}  // namespace lldl
