#include "autograd/optim.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <string>

#include "backends/cuda/device.h"
#include "core/error.h"

namespace lldl {

Optimizer::Optimizer(Graph& graph, OptimConfig c) : g(&graph), cfg(c) { validate(c); }

void validate(const OptimConfig& c) {
  if (!(c.lr > 0) || !std::isfinite(c.lr))
    throw ValueError("optimizer: learning rate must be a positive finite number, got " +
                     std::to_string(c.lr));
  // Written as !(in range) so that NaN, which fails every comparison, is refused.
  if (!(c.momentum >= 0 && c.momentum < 1))
    throw ValueError("optimizer: momentum must be in [0, 1), got " + std::to_string(c.momentum));
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1))
    throw ValueError("optimizer: betas must be in [0, 1), got " + std::to_string(c.beta1) + ", " +
                     std::to_string(c.beta2));
  if (!(c.eps >= 0) || !std::isfinite(c.eps))
    throw ValueError("optimizer: eps must be a finite number >= 0, got " + std::to_string(c.eps));
  if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay))
    throw ValueError("optimizer: weight_decay must be a finite number >= 0, got " +
                     std::to_string(c.weight_decay));
}

void Optimizer::reset_state() {
  for (std::vector<Tensor>* s : {&m, &v})
    for (Tensor x : *s) g->zero_data(x);
  for (int64_t& s : steps) s = 0;
  t = 0;
}

namespace {

template <class T>
void update(const OptimConfig& c, int64_t t, int64_t n, T* p, const T* grad, T* m, T* v) {
  const T lr = c.lr, wd = c.weight_decay;
  switch (c.kind) {
    case OptimKind::SGD:
      for (int64_t i = 0; i < n; ++i) p[i] -= lr * (grad[i] + wd * p[i]);
      return;
    case OptimKind::Momentum: {  // buf = mu buf + g; p -= lr buf (PyTorch's form)
      const T mu = c.momentum;
      for (int64_t i = 0; i < n; ++i) {
        m[i] = mu * m[i] + grad[i] + wd * p[i];
        p[i] -= lr * m[i];
      }
      return;
    }
    case OptimKind::Adam:
    case OptimKind::AdamW: {
      const T b1 = c.beta1, b2 = c.beta2, eps = c.eps;
      const T bc1 = T(1) - std::pow(b1, T(t)), bc2 = T(1) - std::pow(b2, T(t));
      const bool decoupled = c.kind == OptimKind::AdamW;
      for (int64_t i = 0; i < n; ++i) {
        T gi = decoupled ? grad[i] : grad[i] + wd * p[i];
        if (decoupled) p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (T(1) - b1) * gi;
        v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
        p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
      }
      return;
    }
  }
}

// Large parameters are updated in chunks on OpenMP threads; small ones stay
// on this thread (forking costs more than the update). m and v advance with
// the chunk only where they hold per-element state.
template <class T>
void update_chunked(const OptimConfig& c, int64_t t, int64_t n, T* p, const T* grad, T* m, T* v) {
  constexpr int64_t kChunk = int64_t(1) << 15;
  if (n < 2 * kChunk) return update(c, t, n, p, grad, m, v);
  const bool per_m = c.kind != OptimKind::SGD;
  const bool per_v = c.kind == OptimKind::Adam || c.kind == OptimKind::AdamW;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    int64_t len = b + kChunk < n ? kChunk : n - b;
    update(c, t, len, p + b, grad + b, per_m ? m + b : m, per_v ? v + b : v);
  }
}

}  // namespace

void Optimizer::add_new_params() {
  std::vector<Tensor> all = g->params();
  for (size_t i = params.size(); i < all.size(); ++i) {
    Shape s = g->shape(all[i]);  // a copy: buffer() grows the table it points into
    params.push_back(all[i]);
    bool adam = cfg.kind == OptimKind::Adam || cfg.kind == OptimKind::AdamW;
    m.push_back(g->buffer(cfg.kind == OptimKind::SGD ? Shape{} : s, g->dtype()));
    v.push_back(g->buffer(adam ? s : Shape{}, g->dtype()));
    steps.push_back(0);
  }
}

void Optimizer::step() {
  // Parameters created since the last step join with fresh state. The list is
  // only rebuilt when that happens, so a step allocates nothing.
  if (params.size() != g->num_params()) add_new_params();
  ++t;
  for (size_t i = 0; i < params.size(); ++i) {
    const TensorDesc& d = g->desc(params[i]);
    int64_t n = d.shape.numel();
    ++steps[i];
    if (g->backend() == Backend::CUDA) {
      // The same update as update() below, on the device (float32 only).
      const float b1 = cfg.beta1, b2 = cfg.beta2;
      CudaOptimArgs c{int(cfg.kind), cfg.lr, cfg.momentum, b1, b2, cfg.eps, cfg.weight_decay,
                      1.0f - std::pow(b1, float(steps[i])), 1.0f - std::pow(b2, float(steps[i]))};
      cuda_optim_update(c, n, g->data<float>(params[i]), g->grad<float>(params[i]),
                        g->data<float>(m[i]), g->data<float>(v[i]));
    } else if (g->dtype() == DType::F32)
      update_chunked(cfg, steps[i], n, g->data<float>(params[i]), g->grad<float>(params[i]),
                     g->data<float>(m[i]), g->data<float>(v[i]));
    else
      update_chunked(cfg, steps[i], n, g->data<double>(params[i]), g->grad<double>(params[i]),
                     g->data<double>(m[i]), g->data<double>(v[i]));
  }
}

namespace {
template <class T>
double sum_squares(Graph& g, Tensor t) {
  const T* d = g.grad<T>(t);
  int64_t n = g.shape(t).numel();
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n >= (int64_t(1) << 16))
  for (int64_t i = 0; i < n; ++i) s += double(d[i]) * double(d[i]);
  return s;
}
template <class T>
void scale_grad(Graph& g, Tensor t, T f) {
  T* d = g.grad<T>(t);
  int64_t n = g.shape(t).numel();
  for (int64_t i = 0; i < n; ++i) d[i] *= f;
}
}  // namespace

double clip_grad_norm(Graph& g, double max_norm) {
  if (!(max_norm > 0) || !std::isfinite(max_norm))
    throw ValueError("clip_grad_norm: max_norm must be a positive finite number, got " +
                     std::to_string(max_norm));
  const bool f32 = g.dtype() == DType::F32;
  std::vector<Tensor> ps = g.params();
  double ss = 0;
  for (Tensor p : ps) ss += f32 ? sum_squares<float>(g, p) : sum_squares<double>(g, p);
  double norm = std::sqrt(ss);
  if (!std::isfinite(norm))
    throw ValueError("clip_grad_norm: the gradient norm is not finite (NaN or Inf in a gradient)");
  if (norm > max_norm) {
    double f = max_norm / (norm + 1e-6);
    for (Tensor p : ps) f32 ? scale_grad<float>(g, p, float(f)) : scale_grad<double>(g, p, f);
  }
  return norm;
}

double cosine_lr(int64_t step, int64_t warmup, int64_t total, double lr_max, double lr_min) {
  if (total < 1 || warmup < 0 || step < 0 || !(lr_max > 0) || !(lr_min >= 0) || lr_min > lr_max)
    throw ValueError("cosine_lr: needs total >= 1, warmup >= 0, step >= 0 and 0 <= lr_min <= "
                     "lr_max, lr_max > 0; got step " + std::to_string(step) + ", warmup " +
                     std::to_string(warmup) + ", total " + std::to_string(total) + ", lr_max " +
                     std::to_string(lr_max) + ", lr_min " + std::to_string(lr_min));
  if (step < warmup) return lr_max * double(step + 1) / double(warmup);
  if (total <= warmup + 1) return lr_max;
  double progress = std::min(1.0, double(step - warmup) / double(total - 1 - warmup));
  return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + std::cos(3.141592653589793 * progress));
}

}  // namespace lldl
