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

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"

namespace lldl::cpu {

namespace {

std::atomic<size_t> g_growths{0};
std::atomic<ConvAlgo> g_algo{ConvAlgo::Auto};

// Buffers of threads that ended, for the threads that start after them.
// libgomp ends surplus threads when a smaller team starts (Eigen's GEMM runs
// small products on fewer threads) and starts new ones for the next full
// team; without this, every new thread allocated its scratch again and a
// training step on 8 or more threads allocated every time (seen on a
// 16-core machine: tests/test_conv.cpp, "conv2d scratch grows in the first
// step only"). Never destroyed, so threads that end during exit can still
// hand their buffers back.
struct Spares {
  std::mutex mu;
  std::vector<std::pair<void*, size_t>> bufs;
};
Spares& spares() {
  static Spares* s = new Spares;
  return *s;
}
constexpr size_t kMaxSpares = 256;

// One thread's scratch: 64-byte aligned, grows, never shrinks; handed on to
// a later thread when this one ends.
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() {
    if (!p) return;
    Spares& sp = spares();
    std::lock_guard<std::mutex> lock(sp.mu);
    if (sp.bufs.size() < kMaxSpares) sp.bufs.emplace_back(p, cap);
    else std::free(p);
  }
  void* get(size_t bytes) {
    if (bytes <= cap) return p;
    {  // the smallest spare that is big enough, if any
      Spares& sp = spares();
      std::lock_guard<std::mutex> lock(sp.mu);
      size_t best = sp.bufs.size();
      for (size_t i = 0; i < sp.bufs.size(); ++i)
        if (sp.bufs[i].second >= bytes &&
            (best == sp.bufs.size() || sp.bufs[i].second < sp.bufs[best].second))
          best = i;
      if (best < sp.bufs.size()) {
        std::free(p);
        std::tie(p, cap) = sp.bufs[best];
        sp.bufs[best] = sp.bufs.back();
        sp.bufs.pop_back();
        return p;
      }
    }
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
  const conv::Geom g = conv_geom(a.in_shape, a.attr);
  const ConvAlgo algo = g_algo.load();
  if (algo != ConvAlgo::Im2col && conv::forward_direct<T>(a, g, algo == ConvAlgo::Direct)) return;
  conv::forward_im2col<T>(a, g);
}

template <class T>
void conv_backward(const KernelArgs& a) {
  const conv::Geom g = conv_geom(a.in_shape, a.attr);
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

void* scratch(size_t bytes, Slot slot) {
  thread_local Scratch s[3];
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
