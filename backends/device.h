// The device side of a backend: its memory, copies, synchronisation, whether
// it can run here, and the optimisers' parameter update. Graph and
// Optimizer (autograd/) reach a backend's memory only through this table,
// so they hold no CPU or CUDA code of their own; a new backend fills one
// more DeviceFns (backends/<name>/), as it fills a column of the kernel
// table (backends/backend.h).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/backend.h"

namespace lldl {

// The optimisers' update rules (autograd/optim.h drives them).
enum class OptimKind : uint8_t { SGD, Momentum, Adam, AdamW };

struct OptimConfig {
  OptimKind kind = OptimKind::SGD;
  float lr = 0.01f;
  float momentum = 0.9f;        // Momentum
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam, AdamW
  // SGD/Momentum/Adam: L2 term added to the gradient; AdamW: decoupled decay.
  float weight_decay = 0.0f;
};

// One parameter for the update, in the backend's memory: n elements of the
// graph's dtype each in p, grad, m (momentum / first moment; unused by SGD)
// and v (second moment; Adam and AdamW only). step counts the updates this
// parameter has had, this one included (Adam's bias correction).
// scalars: null, or backend memory holding three values of the graph's
// dtype, {lr, 1 - beta1^step, 1 - beta2^step} (optim_scalars()), which the
// update reads instead of c.lr and step: a step captured into a CUDA graph
// (autograd/step_graph.h) replays its kernels with the arguments frozen, so
// what changes from step to step has to come from memory written before
// each replay.
struct ParamSlot {
  void* p;
  const void* grad;
  void* m;
  void* v;
  int64_t n;
  int64_t step;
  const void* scalars = nullptr;
};

// The per-step scalars of ParamSlot::scalars for a parameter at `step`,
// computed in T exactly as the backends compute them from c and step.
template <class T>
void optim_scalars(const OptimConfig& c, int64_t step, T* out) {
  out[0] = T(c.lr);
  out[1] = T(1) - std::pow(T(c.beta1), T(step));
  out[2] = T(1) - std::pow(T(c.beta2), T(step));
}

// Gradient-norm clipping read from backend memory: sumsq points at the sum
// of squares grad_sumsq wrote. With norm = sqrt(*sumsq), every gradient is
// multiplied by scale = max_norm / (norm + 1e-6) when norm > max_norm, else
// left alone (PyTorch's clip_grad_norm_ rule, the factor rounded to the
// dtype once). A NaN or Inf norm makes update() change nothing (the caller
// reads the norm and reports it).
struct GradClip {
  const double* sumsq;
  double max_norm;
};
// The factor clipping applies for a given sum of squares (1 when the norm
// is within max_norm; 0 for a norm that is not finite: nothing changes).
inline double clip_scale(double sumsq, double max_norm) {
  const double norm = std::sqrt(sumsq);
  if (!std::isfinite(norm)) return 0;
  return norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

struct DeviceFns {
  // True when this backend can run here (built in, and a device present);
  // status says which device, or why not, in one line.
  bool (*available)();
  std::string (*status)();
  // True when the backend's memory is host memory that the host may read
  // directly (shape checks, anomaly checks read it in place).
  bool host_memory;
  // Memory: each throws UnavailableError naming the call and the reason when
  // the backend cannot run here. free(null) is fine.
  void* (*alloc)(size_t bytes);
  void (*free)(void* p);
  void (*memset)(void* dst, int value, size_t bytes);
  void (*to_device)(void* dst, const void* host_src, size_t bytes);  // host -> backend
  void (*to_host)(void* host_dst, const void* src, size_t bytes);    // backend -> host
  void (*copy)(void* dst, const void* src, size_t bytes);            // within the backend
  void (*sync)();  // waits for the backend's queued work
  // One optimiser step over every parameter (t: DType::F32 or F64), in one
  // (or few) launches. clip: null, or gradient-norm clipping applied on the
  // way (see GradClip): the CUDA kernel reads each gradient as g * scale;
  // the CPU scales the gradients in place first, which keeps its arithmetic
  // that of clip_grad_norm then step, bit for bit.
  void (*update)(const OptimConfig& c, DType t, const ParamSlot* params, size_t count,
                 const GradClip* clip);
  // sum_i grad_i^2 over every parameter's gradient, as one double written to
  // `out` (backend memory), without the host reading any gradient: the norm
  // that clipping needs stays on the device.
  void (*grad_sumsq)(DType t, const ParamSlot* params, size_t count, double* out);
  // Scales every gradient by clip's scale in place (clip_grad_norm without
  // an optimiser step).
  void (*scale_grads)(DType t, const ParamSlot* params, size_t count, const GradClip& clip);
  // True when the float32 matmul and linear kernels honour
  // MatmulPrecision::BF16 (backend.h).
  bool bf16_matmul;
};

// The functions of backend b; throws UnavailableError for an unknown one.
const DeviceFns& device(Backend b);

// Capturing a step into a replayable graph (CUDA graphs; autograd/step_graph.h
// drives it). While captured, the backend's queued work (kernels, cuBLAS,
// copies, memsets, all on its one stream) is recorded instead of run; a
// replay runs all of it with one launch and no host work per op. Arguments
// are frozen at capture: values that change between replays travel through
// page-locked host memory that a captured copy re-reads at every replay.
// A backend that cannot capture (the CPU, whose kernels run as they are
// called) has begin null: StepGraph then runs the step function each time.
struct CaptureFns {
  void (*begin)();             // start capturing this thread's work on the backend
  // Stop, instantiate; returns the executable graph and sets *nodes to the
  // number of operations (kernels, copies, memsets) it holds.
  void* (*end)(size_t* nodes);
  void (*abort)();             // stop after an error and discard what was captured
  void (*launch)(void* exec);  // queue one replay (asynchronous)
  void (*destroy)(void* exec);
  // Page-locked host memory: a copy from or to it can be captured.
  void* (*pinned_alloc)(size_t bytes);
  void (*pinned_free)(void* p);
  // Queued copies between pinned host memory and backend memory (no wait).
  void (*to_device_async)(void* dst, const void* pinned_src, size_t bytes);
  void (*to_host_async)(void* pinned_dst, const void* src, size_t bytes);
};
const CaptureFns& capture_fns(Backend b);
const CaptureFns& cpu_capture_fns();
const CaptureFns& cuda_capture_fns();

// Filled by each backend: backends/cpu/device.cpp, backends/cuda/device.cpp
// (or backends/cuda_stub.cpp in a build without CUDA, whose functions report
// the backend unavailable).
const DeviceFns& cpu_device();
const DeviceFns& cuda_device();

}  // namespace lldl
