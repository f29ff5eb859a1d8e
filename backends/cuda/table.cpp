// The CUDA column of the backend table: float32 only (float64 exists for
// gradient checks, which run on the CPU). Every kernel reads the tier
// (cuda_tier()) when it runs.
#include "backends/backend.h"

namespace lldl {

namespace cuda {
void register_pointwise(KernelPair* t);  // pointwise.cu
void register_rows(KernelPair* t);       // rows.cu
void register_pool_bn(KernelPair* t);    // pool_bn.cu
void register_gemm(KernelPair* t);       // gemm.cu
void register_seq(KernelPair* t);        // seq.cu
void register_attention_lstm(KernelPair* t);  // attention_lstm.cu
}  // namespace cuda

void cuda_fill_table(KernelPair (&f32)[kOpCount]) {
  cuda::register_pointwise(f32);
  cuda::register_rows(f32);
  cuda::register_pool_bn(f32);
  cuda::register_gemm(f32);
  cuda::register_seq(f32);
  cuda::register_attention_lstm(f32);
}

}  // namespace lldl
