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

// The backend's one stream (created on first use, non-blocking): every
// kernel, cuBLAS call, copy and memset of the backend is queued on it, in
// order, so a whole step can be captured from it into a CUDA graph
// (capture_fns(), backends/device.h) and nothing waits on the legacy
// default stream.
cudaStream_t stream();

// The cuBLAS handle (created on first use, on stream(), with a workspace of
// its own so that no GEMM allocates while a step is captured; TF32 off:
// CUBLAS_DEFAULT_MATH computes float GEMMs in float).
cublasHandle_t blas();

// Device scratch for kernels that need memory besides their inputs and
// outputs (im2col matrices, per-row losses, reduction partials, batch-norm
// statistics): one buffer that grows to the largest request and is then
// reused, so after the first step no kernel allocates. Valid until the next
// call; kernels on stream() run in order, so reuse is safe. Once a step has
// been captured, a buffer that is outgrown is kept (a captured graph may
// still point into it) instead of freed.
void* scratch(size_t bytes);

// True once a step has been captured into a CUDA graph (autograd/
// step_graph.h): from then on a buffer that is outgrown (scratch, the BF16
// operand copies) is kept, not freed, since a graph may still read it.
bool captured_any();

}  // namespace lldl::cuda
