// Internals shared by the conv2d kernels (conv.cpp dispatches, conv_direct.cpp
// and conv_im2col.cpp compute). Not part of the engine's interface.
//
// x is (N, C, H, W), w is (OC, C, KH, KW), b is (OC), y is (N, OC, OH, OW)
// with OH = (H + 2P - KH) / S + 1 and OW likewise (S stride, P padding).
// K = C*KH*KW is the length of one output's dot product, L = OH*OW the
// number of outputs per image and channel.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backends/cpu/common.h"
#include "ops/geometry.h"

namespace lldl::cpu::conv {

using Geom = ConvGeom;  // ops/geometry.h

// Scratch: a kernel gets only its inputs and outputs, so the memory it needs
// besides (padded images, im2col matrices, transposed gradients, partial
// sums) comes from buffers per OS thread (thread_local), 64-byte aligned,
// that grow to the largest request and are then reused: once a network has
// run one step, conv kernels allocate nothing. A thread has one buffer per
// slot, for what is alive at the same time: Images and Tables are taken by
// the calling thread and shared with the OpenMP threads it starts, Work by
// each thread for itself. Returns null if the system refuses the memory
// (callers inside a parallel region report it after the region; outside they
// throw at once).
enum class Slot { Images, Tables, Work };
void* scratch(size_t bytes, Slot slot = Slot::Work);
[[noreturn]] void scratch_failed(size_t bytes);
// Carves aligned pieces out of one scratch request.
struct Carver {
  size_t used = 0;
  template <class T>
  size_t take(int64_t n) {
    size_t at = used;
    used += (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64;
    return at;
  }
};

// Direct path (conv_direct.cpp): no im2col; a register-tiled micro-kernel
// over Eigen packets reads the (padded) images in place. Each returns false,
// computing nothing, when the geometry does not suit it (then the im2col
// path runs). `force` skips the suitability heuristics (tests).
template <class T>
bool forward_direct(const KernelArgs& a, const Geom& g, bool force);
template <class T>
bool backward_w_direct(const KernelArgs& a, const Geom& g, bool force);  // dW
template <class T>
bool backward_x_direct(const KernelArgs& a, const Geom& g, bool force);  // dx

// im2col + GEMM path (conv_im2col.cpp): works for every geometry.
template <class T>
void forward_im2col(const KernelArgs& a, const Geom& g);
// Accumulates dW (if gw) and dx (if gx); db is done by the caller.
template <class T>
void backward_im2col(const KernelArgs& a, const Geom& g, T* gx, T* gw);

}  // namespace lldl::cpu::conv
