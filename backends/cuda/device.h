// The CUDA device: whether there is one, which kernel tier runs, device
// memory and host <-> device copies. The engine (autograd/ and above) reaches
// the memory functions through the backend's DeviceFns (backends/device.h,
// cuda_device()); the tier switch, tests and benchmarks use this header.
//
// Plain C++ (no CUDA headers). In a build
// without CUDA (LLDL_HAVE_CUDA undefined) backends/cuda_stub.cpp provides
// these functions: cuda_available() is false and every memory function
// throws UnavailableError naming the reason. In a CUDA build on a machine
// without a GPU or driver, the same happens at run time; nothing crashes.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>


namespace lldl {

// True when this build has the CUDA backend and cudaGetDeviceCount finds at
// least one device. Probed once, on first use.
bool cuda_available();
// One line: the device (name, compute capability, memory) when available,
// else why not ("built without CUDA", "no CUDA device: <CUDA's message>").
std::string cuda_status();

// Which kernels the CUDA backend runs. Naive: one thread per output element,
// the obvious loops (teaching code). Fast: cuBLAS, warp-shuffle reductions,
// fused row kernels, im2col + GEMM. Read at every kernel call, so it can be
// switched between ops.
enum class CudaTier : uint8_t { Naive, Fast };
void set_cuda_tier(CudaTier t);
CudaTier cuda_tier();
inline const char* cuda_tier_name(CudaTier t) { return t == CudaTier::Naive ? "naive" : "fast"; }

// Within the fast tier, the fused kernels of issue 16 (the top rung of the
// ladder naive / middle / fast): flash attention (no T x T matrix; the
// workspace holds the per-row logsumexp instead of P) and the block-per-row
// softmax + cross-entropy. Off: the middle rung (strided-batched GEMMs for
// attention, a warp per row for the loss). Default on. Read at every kernel
// call like the tier; do not switch it between an op's forward and its
// backward (attention's backward reads the workspace its forward wrote).
inline std::atomic<bool>& cuda_fused_flag() {
  static std::atomic<bool> on{true};
  return on;
}
inline void set_cuda_fused(bool on) { cuda_fused_flag().store(on); }
inline bool cuda_fused() { return cuda_fused_flag().load(); }
// The rung a kernel call runs: "naive", "middle" (fast tier, fused off) or "fast".
inline const char* cuda_rung_name() {
  return cuda_tier() == CudaTier::Naive ? "naive" : cuda_fused() ? "fast" : "middle";
}

// GEMM precision of the fast tier (the naive tier always computes in
// float). Default: float32 throughout, so the cross-backend tests keep their
// tolerances.
//  - TF32: cuBLAS may round the float inputs of its GEMMs to TF32 on the
//    tensor cores (CUBLAS_TF32_TENSOR_OP_MATH); accumulation in float.
//  - BF16 autocast: every GEMM rounds copies of its two operands to bfloat16
//    and multiplies them on the tensor cores with float accumulation and a
//    float result (cublasGemmEx, CUBLAS_COMPUTE_32F); weights, activations
//    and gradients stay float32 in memory.
// Both throw UnavailableError when the backend cannot run here.
void set_cuda_tf32(bool on);
bool cuda_tf32();
void set_cuda_bf16_gemm(bool on);
bool cuda_bf16_gemm();

// Device memory. Each throws UnavailableError (with cuda_status() or CUDA's
// message) when there is no device or the call fails.
void* cuda_alloc(size_t bytes);
void cuda_free(void* p);  // null is fine; errors at shutdown are ignored
void cuda_to_device(void* dst, const void* host_src, size_t bytes);
void cuda_to_host(void* host_dst, const void* src, size_t bytes);
void cuda_copy(void* dst, const void* src, size_t bytes);  // device to device
void cuda_memset(void* dst, int value, size_t bytes);
void cuda_synchronize();

// The optimiser update on device memory (cuda_device().update calls it once
// per parameter). kind: 0 SGD, 1 momentum, 2 Adam, 3 AdamW (OptimKind's order);
// bc1, bc2 the bias corrections 1 - beta^t. scalars: null, or device memory
// with {lr, bc1, bc2} read instead of a's (ParamSlot::scalars).
struct CudaOptimArgs {
  int kind;
  float lr, momentum, beta1, beta2, eps, weight_decay, bc1, bc2;
};
void cuda_optim_update(const CudaOptimArgs& a, int64_t n, float* p, const float* grad, float* m,
                       float* v, const float* scalars = nullptr);

}  // namespace lldl
