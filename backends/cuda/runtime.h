// Internals shared by the CUDA kernel files (needs the CUDA headers; not for
// the rest of lldl, which includes device.h).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "backends/cuda/device.h"

namespace lldl::cuda {

// Throws UnavailableError "<what>: <CUDA's message>" when e is an error.
void check(cudaError_t e, const char* what);
void check(cublasStatus_t s, const char* what);
// After a kernel launch: reports a bad launch configuration at once.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

// The cuBLAS handle (created on first use, default stream, TF32 off:
// CUBLAS_DEFAULT_MATH computes float GEMMs in float).
cublasHandle_t blas();

// Device scratch for kernels that need memory besides their inputs and
// outputs (im2col matrices, per-row losses, reduction partials, batch-norm
// statistics): one buffer that grows to the largest request and is then
// reused, so after the first step no kernel allocates. Valid until the next
// call; kernels on the default stream run in order, so reuse is safe.
void* scratch(size_t bytes);

}  // namespace lldl::cuda
