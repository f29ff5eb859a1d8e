// The LSTM cell outside the graph, for model code that generates one step at
// a time with carried state (no tape, no gradient).
#pragma once
#include <cstdint>

namespace lldl::cpu {

// One step of the lstm op (PyTorch conventions, gate order i, f, g, o):
//   gates = x W_ih^T + h W_hh^T + b;  i, f, o = sigmoid, g = tanh
//   c = f * c + i * g;  h = o * tanh(c)
// x is (B, I), w_ih (4H, I), w_hh (4H, H), b (4H) (PyTorch's bias_ih +
// bias_hh); h and c are (B, H), read as the previous state and overwritten
// with the new one (zeros for the first step). Running it over t = 0..T-1
// gives the lstm op's output h[:, t]. Instantiated for float and double.
template <class T>
void lstm_step(const T* x, const T* w_ih, const T* w_hh, const T* b, T* h, T* c, int64_t B,
               int64_t I, int64_t H);

}  // namespace lldl::cpu
