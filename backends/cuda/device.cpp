// The CUDA runtime glue: device probe, tier switch, device memory, scratch
// and the cuBLAS handle. Host code (no kernels), compiled by the C++ compiler
// against the CUDA headers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/multi_optim.h"
#include "backends/cuda/runtime.h"
#include "backends/device.h"
#include "core/error.h"

namespace lldl {

namespace {

struct Probe {
  bool ok = false;
  std::string status;
};

// cudaGetDeviceCount is the first CUDA call: without a driver (libcuda.so
// missing or too old) it returns an error code, which becomes the reason.
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky error state
      r.status = std::string("no CUDA device: ") + cudaGetErrorString(e);
      return r;
    }
    if (n < 1) {
      r.status = "no CUDA device: cudaGetDeviceCount found none";
      return r;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      cudaGetLastError();
      r.status = "no CUDA device: cannot read the properties of device 0";
      return r;
    }
    r.ok = true;
    r.status = std::string("CUDA device 0 of ") + std::to_string(n) + ": " + prop.name +
               ", compute capability " + std::to_string(prop.major) + "." +
               std::to_string(prop.minor) + ", " +
               std::to_string(prop.totalGlobalMem >> 20) + " MiB";
    return r;
  }();
  return p;
}

void require(const char* what) {
  if (!cuda_available())
    throw UnavailableError(std::string(what) + ": CUDA is not available (" + cuda_status() + ")");
}

std::atomic<CudaTier> g_tier{CudaTier::Fast};

// Capture state. g_capturing: this thread is recording a step (begin ..
// end/abort), when allocating or freeing memory would break the capture (and
// the replays, which would point at memory that the next step does not
// have); the allocation functions refuse with a message that says so.
// g_captured: graphs made so far; from the first on, outgrown scratch is kept.
thread_local bool g_capturing = false;
std::atomic<int> g_captured{0};

void refuse_in_capture(const char* what) {
  if (g_capturing)
    throw ValueError(std::string(what) + ": called while a step is being captured into a CUDA "
                     "graph: a captured step must not allocate, free or wait (the warm-up step "
                     "sizes the memory; run the same step with the same shapes)");
}

// The slot table of a multi-tensor launch (bodies_optim.h) in device memory:
// built on the host from the ParamSlots, copied over in one transfer into a
// buffer that is then reused while the table stays the same (the kernels of
// the previous step that read it have finished: one stream, in order). With
// ParamSlot::scalars (what Optimizer gives) the bias corrections are read
// from there, so the table does not change from step to step and a step
// copies nothing. A table that a captured step (autograd/step_graph.h) read
// is frozen: its replays read it, so it is never overwritten, and another
// table gets another buffer.
using cuda::MultiSlot;
struct SlotTable {
  const MultiSlot* dev;
  int count;
  int64_t total;
};
struct TableBuf {
  MultiSlot* buf = nullptr;
  size_t cap = 0;
  std::vector<MultiSlot> held;  // what buf holds
  bool frozen = false;
};
bool same_table(const std::vector<MultiSlot>& x, const std::vector<MultiSlot>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    const MultiSlot &a = x[i], &b = y[i];
    if (!(a.p == b.p && a.grad == b.grad && a.m == b.m && a.v == b.v && a.start == b.start &&
          a.bc1 == b.bc1 && a.bc2 == b.bc2 && a.sc == b.sc))
      return false;
  }
  return true;
}
SlotTable upload_slots(const OptimConfig* c, DType t, const ParamSlot* ps, size_t count,
                       const char* what) {
  if (t != DType::F32)
    throw TypeError(std::string(what) + ": the cuda backend updates float32 parameters");
  thread_local std::vector<MultiSlot> host;
  host.clear();
  int64_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    const ParamSlot& s = ps[i];
    float bc1 = 1, bc2 = 1;  // the norm and the scaling read none
    if (c && !s.scalars) {
      bc1 = 1.0f - std::pow(c->beta1, float(s.step));
      bc2 = 1.0f - std::pow(c->beta2, float(s.step));
    }
    if (s.n == 0) continue;  // an empty parameter owns no element
    host.push_back({static_cast<float*>(s.p), static_cast<const float*>(s.grad),
                    static_cast<float*>(s.m), static_cast<float*>(s.v), total, bc1, bc2,
                    static_cast<const float*>(s.scalars)});
    total += s.n;
  }
  static std::mutex mu;
  static std::vector<TableBuf> tables;
  std::lock_guard<std::mutex> lock(mu);
  const SlotTable none{nullptr, static_cast<int>(host.size()), total};
  for (TableBuf& tb : tables)
    if (same_table(tb.held, host)) {
      if (g_capturing) tb.frozen = true;
      return {tb.buf, none.count, total};
    }
  refuse_in_capture((std::string(what) + ": a parameter table the warm-up step did not use").c_str());
  TableBuf* tb = nullptr;
  for (TableBuf& x : tables)
    if (!x.frozen) tb = &x;
  if (!tb) tb = &tables.emplace_back();
  if (host.size() > tb->cap) {
    cuda_free(tb->buf);
    tb->buf = nullptr;
    tb->cap = 0;
    tb->held.clear();
    tb->buf = static_cast<MultiSlot*>(cuda_alloc(std::max<size_t>(1, host.size()) * sizeof(MultiSlot)));
    tb->cap = host.size();
  }
  cuda_to_device(tb->buf, host.data(), host.size() * sizeof(MultiSlot));
  tb->held = host;
  return {tb->buf, none.count, total};
}

// Every parameter in one launch, the clipping factor read on the device.
void update(const OptimConfig& c, DType t, const ParamSlot* ps, size_t count, const GradClip* clip) {
  SlotTable s = upload_slots(&c, t, ps, count, "optimizer");
  CudaOptimArgs a{int(c.kind), c.lr, c.momentum, c.beta1, c.beta2, c.eps, c.weight_decay, 1, 1};
  cuda::multi_update(a, s.dev, s.count, s.total, clip ? clip->sumsq : nullptr,
                     clip ? clip->max_norm : 0.0);
}

void grad_sumsq(DType t, const ParamSlot* ps, size_t count, double* out) {
  SlotTable s = upload_slots(nullptr, t, ps, count, "grad_sumsq");
  cuda::multi_sumsq(s.dev, s.count, s.total, out);
}

void scale_grads(DType t, const ParamSlot* ps, size_t count, const GradClip& clip) {
  SlotTable s = upload_slots(nullptr, t, ps, count, "clip_grad_norm");
  cuda::multi_scale(s.dev, s.count, s.total, clip.sumsq, clip.max_norm);
}

}  // namespace

bool cuda_available() { return probe().ok; }
std::string cuda_status() { return probe().status; }

void set_cuda_tier(CudaTier t) { g_tier.store(t); }

namespace {
std::atomic<bool> g_tf32{false}, g_bf16{false};
}
void set_cuda_tf32(bool on) {
  require("set_tf32");
  cuda::check(cublasSetMathMode(cuda::blas(), on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
              "set_tf32: cublasSetMathMode");
  g_tf32.store(on);
}
bool cuda_tf32() { return g_tf32.load(); }
void set_cuda_bf16_gemm(bool on) {
  require("set_bf16_gemm");
  g_bf16.store(on);
}
bool cuda_bf16_gemm() { return g_bf16.load(); }
CudaTier cuda_tier() { return g_tier.load(); }

void* cuda_alloc(size_t bytes) {
  require("cuda_alloc");
  refuse_in_capture("cuda_alloc");
  void* p = nullptr;
  cuda::check(cudaMalloc(&p, bytes ? bytes : 1),
              ("cuda_alloc: cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  return p;
}

void cuda_free(void* p) {
  if (!p) return;
  // Kernels queued on the stream may still use p (no wait while capturing:
  // the free then fails the capture, which reports it). At process exit the
  // driver may already be gone; nothing to report then. Never throws: it
  // runs in destructors.
  if (!g_capturing && cudaStreamSynchronize(cuda::stream()) != cudaSuccess) cudaGetLastError();
  if (cudaFree(p) != cudaSuccess) cudaGetLastError();
}

// Copies and memsets are queued on the backend's stream, in order with the
// kernels. From pageable host memory cudaMemcpyAsync returns once the source
// has been staged, so the caller may reuse it at once; into pageable host
// memory it returns when the data is there (the stream sync makes the wait
// explicit).
void cuda_to_device(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  require("cuda_to_device");
  refuse_in_capture("cuda_to_device");  // pageable memory: cannot be captured
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda::stream()),
              "cuda_to_device");
}

void cuda_to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  require("cuda_to_host");
  refuse_in_capture("cuda_to_host");
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda::stream()),
              "cuda_to_host");
  cuda::check(cudaStreamSynchronize(cuda::stream()), "cuda_to_host");
}

void cuda_copy(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  require("cuda_copy");
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda::stream()),
              "cuda_copy");
}

void cuda_memset(void* dst, int value, size_t bytes) {
  if (!bytes) return;
  require("cuda_memset");
  cuda::check(cudaMemsetAsync(dst, value, bytes, cuda::stream()), "cuda_memset");
}

void cuda_synchronize() {
  require("cuda_synchronize");
  refuse_in_capture("cuda_synchronize");
  cuda::check(cudaStreamSynchronize(cuda::stream()), "cuda_synchronize");
}

const DeviceFns& cuda_device() {
  static const DeviceFns f{cuda_available, cuda_status,    false,     cuda_alloc,
                           cuda_free,      cuda_memset,    cuda_to_device, cuda_to_host,
                           cuda_copy,      cuda_synchronize, update,
                           grad_sumsq,     scale_grads,    true};
  return f;
}

namespace cuda {

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  throw UnavailableError(std::string(what) + ": " + cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw UnavailableError(std::string(what) + ": cuBLAS error " + cublasGetStatusString(s));
}

cudaStream_t stream() {
  // Lives for the process (never destroyed: kernels may be queued at exit).
  static cudaStream_t s = [] {
    require("cuda stream");
    cudaStream_t st = nullptr;
    check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    return st;
  }();
  return s;
}

cublasHandle_t blas() {
  // Owns the handle for the life of the process (destroyed at exit only if
  // the driver is still there; see the destructor).
  struct Handle {
    cublasHandle_t h = nullptr;
    void* workspace = nullptr;
    Handle() {
      require("cublas");
      check(cublasCreate(&h), "cublasCreate");
      // Float GEMMs in float: no TF32 tensor-core rounding, so GPU results
      // match the CPU within float error.
      check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      // The backend's stream, then a workspace of our own (setting the
      // stream resets it): cuBLAS then never allocates inside a GEMM, which
      // a captured step needs. 32 MiB is cuBLAS's advice for Hopper.
      check(cublasSetStream(h, stream()), "cublasSetStream");
      const size_t bytes = size_t(32) << 20;
      check(cudaMalloc(&workspace, bytes), "cublas workspace: cudaMalloc");
      check(cublasSetWorkspace(h, workspace, bytes), "cublasSetWorkspace");
    }
    ~Handle() {
      if (h) cublasDestroy(h);
    }
  };
  static Handle handle;
  return handle.h;
}

bool captured_any() { return g_captured.load() > 0; }

void* scratch(size_t bytes) {
  static std::mutex mu;
  static void* p = nullptr;
  static size_t cap = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (bytes > cap) {
    refuse_in_capture("cuda scratch (a kernel needs more scratch than in the warm-up step)");
    // cuda_free waits for the kernels that still use it; a captured graph
    // may point into it for good, so once there is one it is kept.
    if (!captured_any()) cuda_free(p);
    p = nullptr;
    cap = 0;
    size_t want = (bytes + (size_t(1) << 20) - 1) >> 20 << 20;  // whole MiB
    p = cuda_alloc(want);
    cap = want;
  }
  return p;
}

}  // namespace cuda

// ---- step capture (CaptureFns, backends/device.h) ---------------------------

namespace {

void capture_begin() {
  require("capture");
  if (g_capturing) throw ValueError("capture: a step is already being captured on this thread");
  cuda::stream();  // created, and cuBLAS set up, outside the capture
  if (cuda_tier() == CudaTier::Fast) cuda::blas();
  // Thread-local mode: on this thread, calls that would break the capture
  // (cudaMalloc, synchronisation) fail instead of running outside it.
  cuda::check(cudaStreamBeginCapture(cuda::stream(), cudaStreamCaptureModeThreadLocal),
              "capture: cudaStreamBeginCapture");
  g_capturing = true;
}

void* capture_end(size_t* nodes) {
  g_capturing = false;
  cudaGraph_t graph = nullptr;
  cuda::check(cudaStreamEndCapture(cuda::stream(), &graph), "capture: cudaStreamEndCapture");
  *nodes = 0;
  if (cudaGraphGetNodes(graph, nullptr, nodes) != cudaSuccess) cudaGetLastError();
  cudaGraphExec_t exec = nullptr;
  cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph is a copy
  cuda::check(e, "capture: cudaGraphInstantiate");
  g_captured.fetch_add(1);
  return exec;
}

void capture_abort() {
  if (!g_capturing) return;
  g_capturing = false;
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(cuda::stream(), &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  cudaGetLastError();  // an invalidated capture leaves an error behind
}

void capture_launch(void* exec) {
  cuda::check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), cuda::stream()),
              "replay: cudaGraphLaunch");
}

void capture_destroy(void* exec) {
  if (!exec) return;
  if (cudaStreamSynchronize(cuda::stream()) != cudaSuccess) cudaGetLastError();
  if (cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)) != cudaSuccess) cudaGetLastError();
}

void* pinned_alloc(size_t bytes) {
  require("pinned_alloc");
  refuse_in_capture("pinned_alloc");
  void* p = nullptr;
  cuda::check(cudaMallocHost(&p, bytes ? bytes : 1),
              ("pinned_alloc: cudaMallocHost of " + std::to_string(bytes) + " bytes").c_str());
  return p;
}

void pinned_free(void* p) {
  if (!p) return;
  if (cudaStreamSynchronize(cuda::stream()) != cudaSuccess) cudaGetLastError();
  if (cudaFreeHost(p) != cudaSuccess) cudaGetLastError();
}

void to_device_async(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda::stream()),
              "to_device_async");
}

void to_host_async(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda::stream()),
              "to_host_async");
}

}  // namespace

const CaptureFns& cuda_capture_fns() {
  static const CaptureFns f{capture_begin, capture_end,  capture_abort,   capture_launch,
                            capture_destroy, pinned_alloc, pinned_free, to_device_async,
                            to_host_async};
  return f;
}

}  // namespace lldl
