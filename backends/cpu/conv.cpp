// conv2d: y = conv(x, w) + b with zero padding; shapes in conv.h.
//
// Two algorithms compute it. The direct path (conv_direct.cpp) runs a
// register-tiled micro-kernel over the zero-padded images in place; it is the
// faster one where the output channels fill most of a SIMD vector. The im2col
// path (conv_im2col.cpp) copies each image's receptive fields into a matrix
// and calls Eigen's GEMM; it takes every geometry. The backward runs dW and
// dx each by whichever applies; db is a plain sum here.
//
//   forward   y[n,o,i,j] = b[o] + sum_{c,u,v} x[n,c,i*S-P+u, j*S-P+v] w[o,c,u,v]
//   backward  db[o]      += sum_{n,i,j} dy[n,o,i,j]
//             dw[o,c,u,v] += sum_{n,i,j} dy[n,o,i,j] x[n,c,i*S-P+u, j*S-P+v]
//             dx[n,c,h,w] += the same terms routed back to the pixel they read
// (terms that fall into the padding are zero).
#include "backends/cpu/conv.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace lldl::cpu {

namespace {

std::atomic<size_t> g_growths{0};
std::atomic<ConvAlgo> g_algo{ConvAlgo::Auto};

// One thread's scratch: 64-byte aligned, grows, never shrinks.
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes <= cap) return p;
    std::free(p);
    cap = (bytes + 4095) / 4096 * 4096;
    p = std::aligned_alloc(64, cap);
    if (!p) cap = 0;
    g_growths.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
};

// db[o] += the sum of dy over images and positions, one channel per thread.
template <class T>
void bias_grad(const conv::Geom& g, const T* dy, T* db) {
  const int64_t L = g.L();
#pragma omp parallel for if (g.N * g.OC * L >= kParallelMin) schedule(static)
  for (int64_t o = 0; o < g.OC; ++o) {
    T acc = 0;
    for (int64_t n = 0; n < g.N; ++n) acc += CVecMap<T>(dy + (n * g.OC + o) * L, L).sum();
    db[o] += acc;
  }
}

template <class T>
void conv_forward(const KernelArgs& a) {
  const conv::Geom g = conv::geom(a);
  const ConvAlgo algo = g_algo.load();
  if (algo != ConvAlgo::Im2col && conv::forward_direct<T>(a, g, algo == ConvAlgo::Direct)) return;
  conv::forward_im2col<T>(a, g);
}

template <class T>
void conv_backward(const KernelArgs& a) {
  const conv::Geom g = conv::geom(a);
  T *gx = gin<T>(a, 0), *gw = gin<T>(a, 1), *gb = gin<T>(a, 2);
  if (gb) bias_grad(g, gout<T>(a), gb);
  const ConvAlgo algo = g_algo.load();
  const bool try_direct = algo != ConvAlgo::Im2col, force = algo == ConvAlgo::Direct;
  if (gw && try_direct && conv::backward_w_direct<T>(a, g, force)) gw = nullptr;
  if (gx && try_direct && conv::backward_x_direct<T>(a, g, force)) gx = nullptr;
  if (gw || gx) conv::backward_im2col<T>(a, g, gx, gw);
}

}  // namespace

namespace conv {

Geom geom(const KernelArgs& a) {
  const Shape &x = a.in_shape[0], &w = a.in_shape[1], &y = a.out_shape;
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], a.attr.conv.stride,
          a.attr.conv.padding};
}

// Scratch belongs to an OpenMP thread number, not to an OS thread: libgomp
// ends the surplus threads when a smaller team starts (Eigen's GEMM asks for
// fewer threads on small products) and starts new ones for the next full
// team, so thread_local buffers died and grew again every step on machines
// with 8 or more threads (seen on a 16-core machine; tests/test_conv.cpp
// "conv2d scratch grows in the first step only" at OMP_NUM_THREADS=8). The
// thread numbers of one team are distinct, so no two threads share an entry;
// inside nested or inactive-nested regions, where numbers repeat, and beyond
// kPooledThreads, each OS thread keeps its own as before.
void* scratch(size_t bytes, Slot slot) {
  constexpr int kPooledThreads = 256;
  static Scratch pooled[kPooledThreads][3];
  thread_local Scratch own[3];
  const int tid = omp_get_thread_num();
  const bool flat = omp_get_level() == omp_get_active_level() && omp_get_level() <= 1;
  Scratch* s = flat && tid < kPooledThreads ? pooled[tid] : own;
  return s[static_cast<int>(slot)].get(bytes);
}

void scratch_failed(size_t bytes) {
  throw UnavailableError("conv2d: could not allocate " + std::to_string(bytes) +
                         " bytes of scratch memory");
}

}  // namespace conv

size_t scratch_growths() { return g_growths.load(); }
void set_conv_algo(ConvAlgo a) { g_algo.store(a); }
ConvAlgo conv_algo() { return g_algo.load(); }

template <class T>
void register_conv(KernelPair* t) {
  t[int(OpKind::Conv2d)] = {conv_forward<T>, conv_backward<T>};
}
template void register_conv<float>(KernelPair*);
template void register_conv<double>(KernelPair*);

}  // namespace lldl::cpu
