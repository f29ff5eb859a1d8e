#include "autograd/direct.h"

#include <string>

#include "backends/backend.h"
#include "core/error.h"

namespace lldl {

void forward_direct(OpKind kind, OpAttr attr, std::initializer_list<HostIn> in, void* out,
                    void* ws, DType t) {
  const OpMeta& m = op_meta(kind);
  const int n_in = static_cast<int>(in.size());
  if (n_in != m.arity)
    throw ValueError(std::string(m.name) + ": takes " + std::to_string(m.arity) +
                     " input(s), got " + std::to_string(n_in));
  if (m.workspace && !ws)
    throw ValueError(std::string(m.name) + ": needs a workspace, none given");
  KernelArgs a{};
  a.kind = kind;
  a.attr = attr;
  a.n_in = n_in;
  int i = 0;
  for (const HostIn& x : in) {
    a.in[i] = x.data;
    a.in_shape[i++] = x.shape;
  }
  a.out_shape = m.shape(a.in_shape, attr);
  if (m.check) m.check(a.in_shape, a.in, attr);
  a.out = out;
  a.ws = ws;
  // Host buffers: the host's backend.
  kernels(Backend::CPU, t, kind).forward(a);
}

template <class T>
void lstm_step(const T* x, const T* w_ih, const T* w_hh, const T* b, T* h, T* c, int64_t B,
               int64_t I, int64_t H, std::vector<T>& scratch) {
  if (B < 0 || I < 0 || H < 1)
    throw ShapeError("lstm_step: needs B >= 0, I >= 0 and H >= 1, got B = " + std::to_string(B) +
                     ", I = " + std::to_string(I) + ", H = " + std::to_string(H));
  const int64_t G = 4 * H;
  const DType t = dtype_of<T>();
  scratch.resize(static_cast<size_t>(2 * B * G + H));
  T *gates = scratch.data(), *hw = gates + B * G, *tmp = hw + B * G;
  // The same order of operations as the op: b, + x W_ih^T, + h W_hh^T.
  forward_direct(OpKind::Linear, matmul_attr(false, true),
                 {{x, Shape{B, I}}, {w_ih, Shape{G, I}}, {b, Shape{G}}}, gates, nullptr, t);
  forward_direct(OpKind::MatMul, matmul_attr(false, true), {{h, Shape{B, H}}, {w_hh, Shape{G, H}}},
                 hw, nullptr, t);
  forward_direct(OpKind::Add, no_attr(), {{gates, Shape{B, G}}, {hw, Shape{B, G}}}, gates, nullptr, t);
  // Pointwise, in place, one row at a time (a row's gates are i, f, g, o).
  auto unary = [&](OpKind k, const T* in, int64_t n, T* out) {
    forward_direct(k, no_attr(), {{in, Shape{n}}}, out, nullptr, t);
  };
  auto binary = [&](OpKind k, const T* p, const T* q, int64_t n, T* out) {
    forward_direct(k, no_attr(), {{p, Shape{n}}, {q, Shape{n}}}, out, nullptr, t);
  };
  for (int64_t r = 0; r < B; ++r) {
    T *g = gates + r * G, *cr = c + r * H, *hr = h + r * H;
    unary(OpKind::Sigmoid, g, 2 * H, g);             // i, f
    unary(OpKind::Tanh, g + 2 * H, H, g + 2 * H);    // g
    unary(OpKind::Sigmoid, g + 3 * H, H, g + 3 * H); // o
    binary(OpKind::Mul, g + H, cr, H, cr);           // c = f c
    binary(OpKind::Mul, g, g + 2 * H, H, tmp);       //   + i g
    binary(OpKind::Add, cr, tmp, H, cr);
    unary(OpKind::Tanh, cr, H, tmp);                 // h = o tanh(c)
    binary(OpKind::Mul, g + 3 * H, tmp, H, hr);
  }
}
template void lstm_step<float>(const float*, const float*, const float*, const float*, float*,
                               float*, int64_t, int64_t, int64_t, std::vector<float>&);
template void lstm_step<double>(const double*, const double*, const double*, const double*,
                                double*, double*, int64_t, int64_t, int64_t, std::vector<double>&);

}  // namespace lldl
