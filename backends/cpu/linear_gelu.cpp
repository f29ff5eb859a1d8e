// linear_gelu on the CPU: linear's kernel into the workspace (u = x op(w) + b),
// then gelu's from u into y; backward gelu's gradient from u into the
// workspace's second half (du = dy gelu'(u)) and linear's gradients from du.
// The same two kernels the unfused graph runs, so the CPU results equal
// gelu(linear(...)) exactly; the fusion pays off on the GPU (one epilogue
// pass after the GEMM, backends/cuda/naive_fused.h).
#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

template <class T>
const KernelPair& pair(OpKind k) {
  return kernels(Backend::CPU, std::is_same_v<T, float> ? DType::F32 : DType::F64, k);
}

template <class T>
void linear_gelu_forward(const KernelArgs& a) {
  KernelArgs l = a;
  l.kind = OpKind::Linear;
  l.out = a.ws;
  l.ws = nullptr;
  pair<T>(OpKind::Linear).forward(l);
  KernelArgs g{};
  g.kind = OpKind::Gelu;
  g.n_in = 1;
  g.in[0] = a.ws;
  g.in_shape[0] = g.out_shape = a.out_shape;
  g.out = a.out;
  pair<T>(OpKind::Gelu).forward(g);
}

template <class T>
void linear_gelu_backward(const KernelArgs& a) {
  T* du = static_cast<T*>(a.ws) + a.out_shape.numel();
  KernelArgs g{};
  g.kind = OpKind::Gelu;
  g.n_in = 1;
  g.in[0] = a.ws;
  g.in_shape[0] = g.out_shape = a.out_shape;
  g.out = a.out;
  g.gout = a.gout;
  g.gin[0] = du;
  g.gin_fresh = 1;  // overwrite du: it holds the previous step's
  pair<T>(OpKind::Gelu).backward(g);
  KernelArgs l = a;  // gradients of x, w, b as linear's, fresh bits passed on
  l.kind = OpKind::Linear;
  l.ws = nullptr;
  l.gout = du;
  pair<T>(OpKind::Linear).backward(l);
}

}  // namespace

template <class T>
void register_linear_gelu(KernelPair* t) {
  t[int(OpKind::LinearGelu)] = {linear_gelu_forward<T>, linear_gelu_backward<T>, true};
}
template void register_linear_gelu<float>(KernelPair*);
template void register_linear_gelu<double>(KernelPair*);

}  // namespace lldl::cpu
