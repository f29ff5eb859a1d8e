// The CUDA runtime glue: device probe, tier switch, device memory, scratch
// and the cuBLAS handle. Host code (no kernels), compiled by the C++ compiler
// against the CUDA headers.
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

// The slot table of a multi-tensor launch (bodies_optim.h) in device memory,
// built on the host from the ParamSlots. Tables are kept and found again by
// content: the Optimizer's slots carry their per-step values in device
// memory (ParamSlot::scalars), so its table is the same at every step and a
// step copies nothing; the norm and the update share it. A new table gets a
// new buffer, never an overwritten one: a captured step (StepGraph) replays
// kernels that read the table it was captured with, so a table used under
// capture is kept for good, and only tables no capture used are freed (the
// least recently used, beyond kKeepTables). Under capture a table must
// already exist (the warm-up step made it): a pageable copy or an
// allocation cannot be captured.
using cuda::MultiSlot;
struct SlotTable {
  const MultiSlot* dev;
  int count;
  int64_t total;
};
struct KeptTable {
  std::vector<MultiSlot> host;
  MultiSlot* dev = nullptr;
  int64_t total = 0;
  bool captured = false;  // read by a captured graph: never freed
  uint64_t last_use = 0;
};
constexpr size_t kKeepTables = 8;

bool same_slots(const std::vector<MultiSlot>& a, const std::vector<MultiSlot>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const MultiSlot &x = a[i], &y = b[i];
    if (x.p != y.p || x.grad != y.grad || x.m != y.m || x.v != y.v || x.start != y.start ||
        x.scalars != y.scalars || x.bc1 != y.bc1 || x.bc2 != y.bc2)
      return false;
  }
  return true;
}

// Frees the least recently used table that no capture read, if any.
bool evict_one(std::vector<KeptTable>& kept) {
  size_t victim = kept.size();
  for (size_t i = 0; i < kept.size(); ++i)
    if (!kept[i].captured && (victim == kept.size() || kept[i].last_use < kept[victim].last_use))
      victim = i;
  if (victim == kept.size()) return false;
  cuda_free(kept[victim].dev);  // waits for the stream: no kernel reads it any more
  kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(victim));
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
    if (s.n == 0) continue;  // an empty parameter owns no element
    // Bias corrections baked in only for slots without scalars (then the
    // table changes with every step); 1 otherwise, so that the update's
    // table and the norm's are one.
    float bc1 = 1, bc2 = 1;
    if (c && !s.scalars) {
      bc1 = 1.0f - std::pow(c->beta1, float(s.step));
      bc2 = 1.0f - std::pow(c->beta2, float(s.step));
    }
    host.push_back({static_cast<float*>(s.p), static_cast<const float*>(s.grad),
                    static_cast<float*>(s.m), static_cast<float*>(s.v), total,
                    static_cast<const float*>(s.scalars), bc1, bc2});
    total += s.n;
  }
  if (host.empty()) return {nullptr, 0, 0};
  static std::mutex mu;
  static std::vector<KeptTable> kept;
  static uint64_t clock = 0;
  std::lock_guard<std::mutex> lock(mu);
  ++clock;
  for (KeptTable& k : kept) {
    if (!same_slots(k.host, host)) continue;
    k.last_use = clock;
    k.captured = k.captured || g_capturing;
    return {k.dev, static_cast<int>(k.host.size()), k.total};
  }
  if (g_capturing)
    throw ValueError(std::string(what) + ": the parameters (or their buffers) differ from those "
                     "of the warm-up step while a step is being captured into a CUDA graph; their "
                     "slot table cannot be copied to the device inside a capture (run the same "
                     "step, with the same parameters, eagerly first)");
  while (kept.size() >= kKeepTables && evict_one(kept)) {
  }
  KeptTable k;
  k.dev = static_cast<MultiSlot*>(cuda_alloc(host.size() * sizeof(MultiSlot)));
  try {
    cuda_to_device(k.dev, host.data(), host.size() * sizeof(MultiSlot));
  } catch (...) {
    cuda_free(k.dev);
    throw;
  }
  k.host = host;
  k.total = total;
  k.last_use = clock;
  kept.push_back(std::move(k));
  const KeptTable& b = kept.back();
  return {b.dev, static_cast<int>(b.host.size()), b.total};
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
                           grad_sumsq,     scale_grads};
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

namespace {
struct Grown {
  std::mutex mu;
  void* p = nullptr;
  size_t cap = 0;
};
void* grown(Grown& b, size_t bytes, const char* what) {
  std::lock_guard<std::mutex> lock(b.mu);
  if (bytes > b.cap) {
    refuse_in_capture(what);
    // cuda_free waits for the kernels that still use it; a captured graph
    // may point into it for good, so once there is one it is kept.
    if (g_captured.load() == 0) cuda_free(b.p);
    b.p = nullptr;
    b.cap = 0;
    size_t want = (bytes + (size_t(1) << 20) - 1) >> 20 << 20;  // whole MiB
    b.p = cuda_alloc(want);
    b.cap = want;
  }
  return b.p;
}
}  // namespace

void* scratch(size_t bytes) {
  static Grown b;
  return grown(b, bytes, "cuda scratch (a kernel needs more scratch than in the warm-up step)");
}

void* gemm_scratch(size_t bytes) {
  static Grown b;
  return grown(b, bytes, "bf16 GEMM operands (a GEMM needs more than in the warm-up step)");
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

void* capture_end() {
  g_capturing = false;
  cudaGraph_t graph = nullptr;
  cuda::check(cudaStreamEndCapture(cuda::stream(), &graph), "capture: cudaStreamEndCapture");
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
