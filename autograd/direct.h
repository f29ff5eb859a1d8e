// Ops run directly on caller-owned host buffers, outside any graph: no
// tensors, no tape, no gradient, nothing allocated by the op. For model code
// that runs a trained network one token at a time with state carried between
// calls (the GPT's KV-cache generation, the LSTM's sampling), where recording
// a graph per token would cost more than the arithmetic. Each call checks
// the shapes with the op's shape rule and runs the forward kernel that a CPU
// graph runs for the op, so models reach kernels only through the ops.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/dtype.h"
#include "ops/op.h"

namespace lldl {

struct HostIn {
  const void* data;
  Shape shape;
};

// out = kind(in...) in dtype t, on host memory. ws: the op's workspace
// (OpMeta::workspace elements of t), null for an op without one. out may
// alias an input where the kernel reads each element before writing it
// (pointwise ops). Raises ShapeError / ValueError as Graph::record does.
void forward_direct(OpKind kind, OpAttr attr, std::initializer_list<HostIn> in, void* out,
                    void* ws = nullptr, DType t = DType::F32);

// One step of the lstm op from a carried state (PyTorch conventions, gate
// order i, f, g, o), composed of the linear, matmul, add, sigmoid, tanh and
// mul kernels:
//   gates = x W_ih^T + b + h W_hh^T;  i, f, o = sigmoid, g = tanh
//   c = f * c + i * g;  h = o * tanh(c)
// x is (B, I), w_ih (4H, I), w_hh (4H, H), b (4H) (PyTorch's bias_ih +
// bias_hh); h and c are (B, H), read as the previous state and overwritten
// with the new one (zeros for the first step). Running it over t = 0..T-1
// gives the lstm op's output h[:, t]. scratch is grown to what the step
// needs and may be reused across calls. Instantiated for float and double.
template <class T>
void lstm_step(const T* x, const T* w_ih, const T* w_hh, const T* b, T* h, T* c, int64_t B,
               int64_t I, int64_t H, std::vector<T>& scratch);

}  // namespace lldl
