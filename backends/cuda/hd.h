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
#include <vector>

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

// `#pragma unroll` for nvcc's device pass only (host compilers warn on it).
// Register arrays indexed by a loop counter stay in registers only when the
// loop is unrolled, so the tile bodies unroll their loops over head dims;
// LLDL_NO_UNROLL keeps a loop rolled where unrolling costs registers.
#ifdef __CUDA_ARCH__
#define LLDL_UNROLL _Pragma("unroll")
#define LLDL_NO_UNROLL _Pragma("unroll 1")
#else
#define LLDL_UNROLL
#define LLDL_NO_UNROLL
#endif

// ---- cooperative tile bodies -------------------------------------------------
// A tile body is a struct B run by a 2-D grid of blocks of B::kThreads
// threads, every block with body.smem_floats() floats of shared memory and
// every thread with its own B::State (registers), in phases separated by
// block barriers:
//   begin(bx, by, tid, smem, st);                              barrier
//   for j < steps(bx): load(bx, by, j, tid, smem);              barrier
//                      for p < B::kPhases:
//                        step(bx, by, j, p, tid, smem, st);     barrier
//   end(bx, by, tid, smem, st);
// (phases let the threads of a block exchange partial results through
// shared memory within one step: a row maximum, a probability tile).
// On the GPU tiles_kernel (common.cuh) runs this with __syncthreads() as the
// barriers; host_tiles runs each phase for every thread of a block in turn,
// which is what the barriers guarantee, so the tile indexing, the shared-
// memory layout and the per-thread arithmetic are the GPU's (flash
// attention and the fused softmax + cross-entropy, bodies_fused.h).
template <class B>
void host_tiles(const B& body, int64_t gx, int64_t gy) {
  std::vector<float> smem(body.smem_floats());
  std::vector<typename B::State> st(B::kThreads);
  for (int64_t by = 0; by < gy; ++by)
    for (int64_t bx = 0; bx < gx; ++bx) {
      // NaN-filled: reading shared memory no thread wrote shows in the results.
      for (float& v : smem) v = NAN;
      for (int t = 0; t < B::kThreads; ++t) body.begin(bx, by, t, smem.data(), st[t]);
      const int n = body.steps(bx);
      for (int j = 0; j < n; ++j) {
        for (int t = 0; t < B::kThreads; ++t) body.load(bx, by, j, t, smem.data());
        for (int p = 0; p < B::kPhases; ++p)
          for (int t = 0; t < B::kThreads; ++t) body.step(bx, by, j, p, t, smem.data(), st[t]);
      }
      for (int t = 0; t < B::kThreads; ++t) body.end(bx, by, t, smem.data(), st[t]);
    }
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
