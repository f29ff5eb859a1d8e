// The CUDA runtime glue: device probe, tier switch, device memory, scratch
// and the cuBLAS handle. Host code (no kernels), compiled by the C++ compiler
// against the CUDA headers.
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>

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

// The update of every parameter, one kernel each (float32 only: a CUDA graph
// computes in float32).
void update(const OptimConfig& c, DType t, const ParamSlot* ps, size_t count) {
  if (t != DType::F32) throw TypeError("optimizer: the cuda backend updates float32 parameters");
  for (size_t i = 0; i < count; ++i) {
    const ParamSlot& s = ps[i];
    const float b1 = c.beta1, b2 = c.beta2;
    CudaOptimArgs a{int(c.kind), c.lr, c.momentum, b1, b2, c.eps, c.weight_decay,
                    1.0f - std::pow(b1, float(s.step)), 1.0f - std::pow(b2, float(s.step))};
    cuda_optim_update(a, s.n, static_cast<float*>(s.p), static_cast<const float*>(s.grad),
                      static_cast<float*>(s.m), static_cast<float*>(s.v));
  }
}

}  // namespace

bool cuda_available() { return probe().ok; }
std::string cuda_status() { return probe().status; }

void set_cuda_tier(CudaTier t) { g_tier.store(t); }
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
                           cuda_copy,      cuda_synchronize, update, false};
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
