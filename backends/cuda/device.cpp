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

// The slot table of a multi-tensor launch (bodies_optim.h) in device memory:
// built on the host from the ParamSlots, copied over in one transfer into a
// buffer that grows to the largest table and is then reused (the kernels of
// the previous step that read it have finished: one stream, in order).
using cuda::MultiSlot;
struct SlotTable {
  const MultiSlot* dev;
  int count;
  int64_t total;
};
SlotTable upload_slots(const OptimConfig* c, DType t, const ParamSlot* ps, size_t count,
                       const char* what) {
  if (t != DType::F32)
    throw TypeError(std::string(what) + ": the cuda backend updates float32 parameters");
  thread_local std::vector<MultiSlot> host;
  host.clear();
  int64_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    const ParamSlot& s = ps[i];
    float bc1 = 1, bc2 = 1;
    if (c) {
      bc1 = 1.0f - std::pow(c->beta1, float(s.step));
      bc2 = 1.0f - std::pow(c->beta2, float(s.step));
    }
    if (s.n == 0) continue;  // an empty parameter owns no element
    host.push_back({static_cast<float*>(s.p), static_cast<const float*>(s.grad),
                    static_cast<float*>(s.m), static_cast<float*>(s.v), total, bc1, bc2});
    total += s.n;
  }
  static std::mutex mu;
  static MultiSlot* buf = nullptr;
  static size_t cap = 0;
  static std::vector<MultiSlot> on_device;  // what buf holds
  std::lock_guard<std::mutex> lock(mu);
  // The table on the device is reused when it lists the same buffers (and,
  // for an update, the same bias corrections; the norm and the scaling read
  // no bias correction): an SGD or momentum step then copies nothing, an
  // Adam step one table (the norm reuses the previous step's).
  bool same = on_device.size() == host.size();
  for (size_t i = 0; same && i < host.size(); ++i) {
    const MultiSlot &a = host[i], &b = on_device[i];
    same = a.p == b.p && a.grad == b.grad && a.m == b.m && a.v == b.v && a.start == b.start &&
           (!c || (a.bc1 == b.bc1 && a.bc2 == b.bc2));
  }
  if (same) return {buf, static_cast<int>(host.size()), total};
  if (host.size() > cap) {
    cuda_free(buf);
    buf = nullptr;
    cap = 0;
    on_device.clear();
    buf = static_cast<MultiSlot*>(cuda_alloc(host.size() * sizeof(MultiSlot)));
    cap = host.size();
  }
  cuda_to_device(buf, host.data(), host.size() * sizeof(MultiSlot));
  on_device = host;
  return {buf, static_cast<int>(host.size()), total};
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
  void* p = nullptr;
  cuda::check(cudaMalloc(&p, bytes ? bytes : 1),
              ("cuda_alloc: cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  return p;
}

void cuda_free(void* p) {
  // At process exit the driver may already be gone; nothing to report then.
  if (p && cudaFree(p) != cudaSuccess) cudaGetLastError();
}

void cuda_to_device(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  require("cuda_to_device");
  cuda::check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cuda_to_device");
}

void cuda_to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  require("cuda_to_host");
  cuda::check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cuda_to_host");
}

void cuda_copy(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  require("cuda_copy");
  cuda::check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cuda_copy");
}

void cuda_memset(void* dst, int value, size_t bytes) {
  if (!bytes) return;
  require("cuda_memset");
  cuda::check(cudaMemset(dst, value, bytes), "cuda_memset");
}

void cuda_synchronize() {
  require("cuda_synchronize");
  cuda::check(cudaDeviceSynchronize(), "cuda_synchronize");
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

cublasHandle_t blas() {
  // Owns the handle for the life of the process (destroyed at exit only if
  // the driver is still there; see the destructor).
  struct Handle {
    cublasHandle_t h = nullptr;
    Handle() {
      require("cublas");
      check(cublasCreate(&h), "cublasCreate");
      // Float GEMMs in float: no TF32 tensor-core rounding, so GPU results
      // match the CPU within float error.
      check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    }
    ~Handle() {
      if (h) cublasDestroy(h);
    }
  };
  static Handle handle;
  return handle.h;
}

void* scratch(size_t bytes) {
  static std::mutex mu;
  static void* p = nullptr;
  static size_t cap = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (bytes > cap) {
    cuda_free(p);  // cudaFree waits for the kernels that still use it
    p = nullptr;
    cap = 0;
    size_t want = (bytes + (size_t(1) << 20) - 1) >> 20 << 20;  // whole MiB
    p = cuda_alloc(want);
    cap = want;
  }
  return p;
}

}  // namespace cuda

}  // namespace lldl
