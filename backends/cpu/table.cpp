// The CPU column of the backend table, in float32 (the engine) and float64
// (the same kernels, for gradient checks in double precision).
#include "backends/cpu/common.h"

namespace lldl {

namespace {
template <class T>
void fill(KernelPair* t) {
  cpu::register_matmul<T>(t);
  cpu::register_elementwise<T>(t);
  cpu::register_reduce<T>(t);
  cpu::register_softmax<T>(t);
  cpu::register_loss<T>(t);
  cpu::register_conv<T>(t);
  cpu::register_pool<T>(t);
  cpu::register_dropout<T>(t);
  cpu::register_batchnorm<T>(t);
  cpu::register_embedding<T>(t);
  cpu::register_layernorm<T>(t);
  cpu::register_gelu<T>(t);
  cpu::register_linear_gelu<T>(t);
  cpu::register_layout<T>(t);
  cpu::register_attention<T>(t);
  cpu::register_lstm<T>(t);
}
}  // namespace

void cpu_fill_table(KernelPair (&f32)[kOpCount], KernelPair (&f64)[kOpCount]) {
  fill<float>(f32);
  fill<double>(f64);
}

}  // namespace lldl
