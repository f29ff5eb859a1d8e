// Batch normalisation over the channel axis.
//
// x is (N, C) or (N, C, H, W), seen as (N, C, S) with S = H*W (1 for 2-D);
// gamma, beta, running_mean, running_var are (C); out has x's shape. Each
// channel averages over its M = N*S values.
//
//   training: mean, var = batch mean and biased variance of the channel
//             out = gamma * (x - mean) / sqrt(var + eps) + beta
//             running_mean = (1 - momentum) running_mean + momentum mean
//             running_var  = (1 - momentum) running_var  + momentum var M/(M-1)
//   eval:     the same normalisation with running_mean and running_var.
//
// The running buffers are inputs that the training forward updates in place
// (as PyTorch does): they are the only inputs a kernel writes. Backward does
// not store the batch statistics; it recomputes mean and 1/sqrt(var + eps)
// from x (one extra pass over x, no per-op storage on the tape). Eval-mode
// backward reads the running buffers, so they must not be updated by a
// training forward between an eval forward and its backward.
// Statistics and per-channel sums accumulate in double for float and double.
#include <cmath>

#include "backends/cpu/common.h"
#include "ops/geometry.h"

namespace lldl::cpu {

namespace {

using Dims = BnDims;  // ops/geometry.h

// Runs f(c) for every channel, on OpenMP threads when x is large.
template <class F>
void per_channel(const Dims& d, F&& f) {
  pfor(d.C, f, d.N * d.C * d.S);
}

// Mean and 1/sqrt(var + eps) of channel c: from the batch in training (two
// passes, biased variance, which var is also returned), else from the
// running buffers.
struct Stats {
  double mean, invstd, var;
};
template <class T>
Stats channel_stats(const KernelArgs& a, const Dims& d, int64_t c) {
  const double eps = a.attr.batch_norm.eps;
  if (!a.attr.batch_norm.training) {
    double mean = in<T>(a, 3)[c], var = in<T>(a, 4)[c];
    return {mean, 1.0 / std::sqrt(var + eps), var};
  }
  const T* x = in<T>(a, 0);
  double s = 0;
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t k = 0; k < d.S; ++k) s += x[d.at(n, c) + k];
  const double mean = s / static_cast<double>(d.count());
  double q = 0;
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t k = 0; k < d.S; ++k) {
      double dx = x[d.at(n, c) + k] - mean;
      q += dx * dx;
    }
  const double var = q / static_cast<double>(d.count());
  return {mean, 1.0 / std::sqrt(var + eps), var};
}

template <class T>
void batch_norm_forward(const KernelArgs& a) {
  const Dims d = bn_dims(a.in_shape);
  const T *x = in<T>(a, 0), *gamma = in<T>(a, 1), *beta = in<T>(a, 2);
  T* o = out<T>(a);
  // The running buffers, updated in place in training (see the top).
  T* run_mean = const_cast<T*>(in<T>(a, 3));
  T* run_var = const_cast<T*>(in<T>(a, 4));
  const double momentum = a.attr.batch_norm.momentum;
  const double M = static_cast<double>(d.count());
  per_channel(d, [&](int64_t c) {
    const Stats st = channel_stats<T>(a, d, c);
    // out = scale * x + shift, with the normalisation folded in.
    const double scale = gamma[c] * st.invstd, shift = beta[c] - st.mean * scale;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t k = 0; k < d.S; ++k) {
        int64_t i = d.at(n, c) + k;
        o[i] = static_cast<T>(scale * x[i] + shift);
      }
    if (a.attr.batch_norm.training) {
      // Running variance is unbiased (M > 1 is checked by the shape rule).
      run_mean[c] = static_cast<T>((1 - momentum) * run_mean[c] + momentum * st.mean);
      run_var[c] = static_cast<T>((1 - momentum) * run_var[c] + momentum * st.var * M / (M - 1));
    }
  });
}

// With xhat = (x - mean) * invstd and g the output gradient, per channel:
//   dbeta = sum g, dgamma = sum g xhat
//   training (mean and var depend on x):
//     dx = gamma invstd (g - sum(g) / M - xhat sum(g xhat) / M)
//     (running buffers: no gradient, the output does not depend on them)
//   eval (constants mean = running_mean, var = running_var):
//     dx = gamma invstd g
//     drunning_mean = -gamma invstd sum g
//     drunning_var  = -gamma invstd^2 sum(g xhat) / 2
template <class T>
void batch_norm_backward(const KernelArgs& a) {
  const Dims d = bn_dims(a.in_shape);
  const T *x = in<T>(a, 0), *gamma = in<T>(a, 1), *g = gout<T>(a);
  T *dx = gin<T>(a, 0), *dgamma = gin<T>(a, 1), *dbeta = gin<T>(a, 2);
  T *drmean = gin<T>(a, 3), *drvar = gin<T>(a, 4);
  const bool training = a.attr.batch_norm.training;
  const double M = static_cast<double>(d.count());
  per_channel(d, [&](int64_t c) {
    const Stats st = channel_stats<T>(a, d, c);
    double sg = 0, sgx = 0;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t k = 0; k < d.S; ++k) {
        int64_t i = d.at(n, c) + k;
        sg += g[i];
        sgx += g[i] * ((x[i] - st.mean) * st.invstd);
      }
    if (dbeta) dbeta[c] += static_cast<T>(sg);
    if (dgamma) dgamma[c] += static_cast<T>(sgx);
    const double gi = gamma[c] * st.invstd;
    if (dx)
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t k = 0; k < d.S; ++k) {
          int64_t i = d.at(n, c) + k;
          double v = g[i];
          if (training) v -= (sg + (x[i] - st.mean) * st.invstd * sgx) / M;
          dx[i] += static_cast<T>(gi * v);
        }
    if (training) return;
    if (drmean) drmean[c] += static_cast<T>(-gi * sg);
    if (drvar) drvar[c] += static_cast<T>(-0.5 * gi * st.invstd * sgx);
  });
}

}  // namespace

template <class T>
void register_batchnorm(KernelPair* t) {
  t[int(OpKind::BatchNorm)] = {batch_norm_forward<T>, batch_norm_backward<T>};
}
template void register_batchnorm<float>(KernelPair*);
template void register_batchnorm<double>(KernelPair*);

}  // namespace lldl::cpu
