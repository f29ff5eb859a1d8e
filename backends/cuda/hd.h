// What a kernel body needs to compile both for the GPU (nvcc) and for the
// host (any C++ compiler), and the host launcher that runs such a body on the
// CPU by walking the same grid and block indices a GPU launch would.
//
// A body is a plain struct (pointers, sizes) with an operator()(i) marked
// LLDL_HD that computes element i. On the GPU, for_each_kernel (common.cuh)
// runs run_thread for (blockIdx.x, threadIdx.x); on the host, host_launch
// runs run_thread for every (block, thread) pair in order. Both therefore
// execute the same index arithmetic and the same body, which is what the
// host-emulation tests (tests/test_cuda_host.cpp) check against the CPU
// backend. Bodies that need shared memory, warp shuffles or atomics cannot
// run this way; they live in the .cu files only.
#pragma once
#include <math.h>

#include <cstdint>

#ifdef __CUDACC__
#define LLDL_HD __host__ __device__
#else
#define LLDL_HD
#endif

namespace lldl::cuda {

constexpr int kBlock = 256;  // threads per block of an elementwise launch

inline int64_t blocks_for(int64_t n, int block = kBlock) { return (n + block - 1) / block; }

// The thread at (block b, thread t) of a grid of `grid` blocks of `block`
// threads handles i = b*block + t, then i + grid*block, ... (a grid-stride
// loop). With grid = blocks_for(n), as the naive tier launches, that is one
// element per thread.
template <class F>
LLDL_HD inline void run_thread(const F& f, int64_t n, int64_t b, int64_t t, int64_t grid,
                               int64_t block) {
  for (int64_t i = b * block + t; i < n; i += grid * block) f(i);
}

// Host emulation of `for_each_kernel<<<grid, block>>>(f, n)`.
template <class F>
void host_launch(const F& f, int64_t n, int64_t grid, int block = kBlock) {
  for (int64_t b = 0; b < grid; ++b)
    for (int t = 0; t < block; ++t) run_thread(f, n, b, t, grid, block);
}
// The naive tier's launch shape: one thread per element.
template <class F>
void host_launch(const F& f, int64_t n) {
  host_launch(f, n, blocks_for(n));
}

// Math for float and double on both sides (the C functions, which CUDA
// provides in device code; std:: overloads are host-only).
LLDL_HD inline float hexp(float x) { return expf(x); }
LLDL_HD inline double hexp(double x) { return exp(x); }
LLDL_HD inline float hlog(float x) { return logf(x); }
LLDL_HD inline double hlog(double x) { return log(x); }
LLDL_HD inline float htanh(float x) { return tanhf(x); }
LLDL_HD inline double htanh(double x) { return tanh(x); }
LLDL_HD inline double hsqrt(double x) { return sqrt(x); }
LLDL_HD inline float hsqrt(float x) { return sqrtf(x); }

}  // namespace lldl::cuda
