// linear_gelu on the CUDA backend over a launcher (as naive.h): both tiers
// and the host emulation (tests/test_cuda_host.cpp) run these. The workspace
// holds u = x op(w) + b (M, N), then du = dy gelu'(u) (M, N).
//
// fused (the fast rung: fast tier with cuda_fused()): the GEMM writes x op(w)
// into u with beta 0, then one epilogue pass adds the bias and applies GELU
// (BiasGeluF), and backward turns dy into du in one pass (GeluGradF).
// Otherwise (naive tier, middle rung): linear's kernels into u and gelu's,
// exactly what gelu(linear(x, w, b)) runs. Either way dx, dw, db are
// linear's gradients with du as the upstream gradient.
#pragma once
#include "backends/cuda/bodies_fused.h"
#include "backends/cuda/naive.h"

namespace lldl::cuda {

template <class Launcher>
void linear_gelu_fwd(const KernelArgs& a, Launcher& run, bool fused) {
  const MatmulDims d = matmul_dims(a.in_shape, a.attr);
  float *u = static_cast<float*>(a.ws), *y = out<float>(a);
  if (fused) {
    run.gemm("linear_gelu", false, d.tb, d.M, d.N, d.K, in<float>(a, 0), in<float>(a, 1), u, false, 1, 0, 0, 0);
    run("linear_gelu", d.M * d.N, BiasGeluF{u, in<float>(a, 2), y, d.N});
    return;
  }
  KernelArgs l = a;
  l.out = u;
  naive::linear_fwd(l, run);
  run("linear_gelu", d.M * d.N, GeluF<float>{u, y});
}

// Writes du and returns linear's backward arguments with du as the upstream
// gradient (the caller runs linear's backward of its tier on them).
template <class Launcher>
KernelArgs linear_gelu_du(const KernelArgs& a, Launcher& run, bool fused) {
  const int64_t n = a.out_shape.numel();
  const float* u = static_cast<const float*>(a.ws);
  float* du = static_cast<float*>(a.ws) + n;
  if (fused) {
    run("linear_gelu backward", n, GeluGradF{u, gout<float>(a), du});
  } else {
    run("linear_gelu backward", n, FillF<float>{du, 0.0f});
    run("linear_gelu backward", n, GeluBwdF<float>{u, gout<float>(a), du});
  }
  KernelArgs l = a;
  l.kind = OpKind::Linear;
  l.gout = du;
  return l;
}

}  // namespace lldl::cuda
