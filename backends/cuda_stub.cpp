// The CUDA interface (backends/cuda/device.h, and cuda_device() of
// backends/device.h) in a build without CUDA: the backend reports itself
// unavailable and every device function throws UnavailableError saying why.
#ifndef LLDL_HAVE_CUDA
#include <atomic>
#include <string>

#include "backends/cuda/device.h"
#include "backends/device.h"
#include "core/error.h"

namespace lldl {

namespace {
const char* kWhy = "built without CUDA (configure with -DLLDL_CUDA=ON and the CUDA toolkit)";
[[noreturn]] void unavailable(const char* what) {
  throw UnavailableError(std::string(what) + ": CUDA is not available (" + kWhy + ")");
}
std::atomic<CudaTier> g_tier{CudaTier::Fast};
void no_update(const OptimConfig&, DType, const ParamSlot*, size_t, const GradClip*) {
  unavailable("optimizer");
}
void no_sumsq(DType, const ParamSlot*, size_t, double*) { unavailable("grad_sumsq"); }
void no_scale(DType, const ParamSlot*, size_t, const GradClip&) { unavailable("clip_grad_norm"); }
}  // namespace

bool cuda_available() { return false; }
std::string cuda_status() { return kWhy; }
void set_cuda_tier(CudaTier t) { g_tier.store(t); }
CudaTier cuda_tier() { return g_tier.load(); }

void set_cuda_tf32(bool) { unavailable("set_tf32"); }
bool cuda_tf32() { return false; }
void set_cuda_bf16_gemm(bool) { unavailable("set_bf16_gemm"); }
bool cuda_bf16_gemm() { return false; }
void* cuda_alloc(size_t) { unavailable("cuda_alloc"); }
void cuda_free(void*) {}
void cuda_to_device(void*, const void*, size_t) { unavailable("cuda_to_device"); }
void cuda_to_host(void*, const void*, size_t) { unavailable("cuda_to_host"); }
void cuda_copy(void*, const void*, size_t) { unavailable("cuda_copy"); }
void cuda_memset(void*, int, size_t) { unavailable("cuda_memset"); }
void cuda_synchronize() { unavailable("cuda_synchronize"); }
const DeviceFns& cuda_device() {
  static const DeviceFns f{cuda_available, cuda_status,    false,     cuda_alloc,
                           cuda_free,      cuda_memset,    cuda_to_device, cuda_to_host,
                           cuda_copy,      cuda_synchronize, no_update,
                           no_sumsq,       no_scale,       false};
  return f;
}
void cuda_optim_update(const CudaOptimArgs&, int64_t, float*, const float*, float*, float*,
                       const float*) {
  unavailable("optimizer");
}
// No device: a CUDA graph cannot be made (Graph refuses the backend first).
const CaptureFns& cuda_capture_fns() {
  static const CaptureFns f{};
  return f;
}

}  // namespace lldl
#endif  // LLDL_HAVE_CUDA
