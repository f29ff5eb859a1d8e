#include "autograd/optim.h"

#include <cmath>
#include <cstring>
#include <algorithm>
#include <string>
#include <utility>

#include "autograd/step_graph.h"
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
  slots.resize(params.size());
  // Allocated here, with the other state, rather than at the first clipped
  // step: a step captured into a CUDA graph may not allocate.
  if (!sumsq_.valid()) sumsq_ = g->buffer(Shape{1}, DType::F64);
  const size_t n = 3 * params.size();
  scalars = g->buffer({static_cast<int64_t>(n)}, g->dtype());
  host_scalars.assign(n * dtype_size(g->dtype()), 0);
}

void Optimizer::advance() {
  ++t;
  for (int64_t& s : steps) ++s;
  const bool f32 = g->dtype() == DType::F32;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (f32) optim_scalars(cfg, steps[i], reinterpret_cast<float*>(host_scalars.data()) + 3 * i);
    else optim_scalars(cfg, steps[i], reinterpret_cast<double*>(host_scalars.data()) + 3 * i);
  }
}

void Optimizer::step() {
  if (!(clip_max_norm >= 0) || !std::isfinite(clip_max_norm))
    throw ValueError("optimizer: clip_max_norm must be a finite number >= 0 (0: no clipping), got " +
                     std::to_string(clip_max_norm));
  // Parameters created since the last step join with fresh state. The list is
  // only rebuilt when that happens, so a step allocates nothing.
  if (params.size() != g->num_params()) add_new_params();
  advance();
  void* sc = g->desc(scalars).data;
  if (StepCapture* cap = g->capture_state()) {
    // Captured: the copy re-reads a pinned buffer that the hook rewrites
    // with the next step's values before each replay.
    void* pin = cap->feed(sc, host_scalars.data(), host_scalars.size());
    cap->before_replay.push_back([this, pin] {
      advance();
      std::memcpy(pin, host_scalars.data(), host_scalars.size());
    });
  } else {
    g->from_host(scalars, host_scalars.data());
  }
  // The buffers are persistent, but desc() checks each handle: cheap next to
  // the update, and a handle gone bad fails here rather than in a kernel.
  const size_t width = 3 * dtype_size(g->dtype());
  for (size_t i = 0; i < params.size(); ++i) {
    const TensorDesc& p = g->desc(params[i]);
    slots[i] = {p.data, p.grad, g->desc(m[i]).data, g->desc(v[i]).data, p.shape.numel(), steps[i],
                static_cast<char*>(sc) + i * width};
  }
  const DeviceFns& dev = device(g->backend());
  if (clip_max_norm > 0) {
    // The norm is reduced and applied where the gradients are: the host
    // reads no gradient (grad_norm() reads the one double on demand).
    double* s = static_cast<double*>(g->desc(sumsq_).data);
    clipped_ = true;
    dev.grad_sumsq(g->dtype(), slots.data(), slots.size(), s);
    const GradClip clip{s, clip_max_norm};
    dev.update(cfg, g->dtype(), slots.data(), slots.size(), &clip);
  } else {
    dev.update(cfg, g->dtype(), slots.data(), slots.size(), nullptr);
  }
}

double Optimizer::grad_norm() const {
  if (!clipped_) throw ValueError("optimizer: grad_norm() needs a step with clip_max_norm > 0");
  return std::sqrt(g->item(sumsq_));
}

namespace {
// Every parameter with its gradient, as the device functions take them.
std::vector<ParamSlot> grad_slots(Graph& g) {
  std::vector<ParamSlot> ps;
  for (Tensor p : g.params()) {
    const TensorDesc& d = g.desc(p);
    if (!d.grad) throw ValueError("clip_grad_norm: parameter '" + d.name + "' has no gradient");
    ps.push_back({d.data, d.grad, nullptr, nullptr, d.shape.numel(), 0});
  }
  return ps;
}
}  // namespace

double clip_grad_norm(Graph& g, double max_norm) {
  if (!(max_norm > 0) || !std::isfinite(max_norm))
    throw ValueError("clip_grad_norm: max_norm must be a positive finite number, got " +
                     std::to_string(max_norm));
  const DeviceFns& dev = device(g.backend());
  std::vector<ParamSlot> ps = grad_slots(g);
  // The sum of squares is computed where the gradients are and read back as
  // one double; the scaling runs there too.
  double* sumsq = static_cast<double*>(dev.alloc(sizeof(double)));
  double s = 0;
  try {
    dev.grad_sumsq(g.dtype(), ps.data(), ps.size(), sumsq);
    dev.to_host(&s, sumsq, sizeof s);
    const double norm = std::sqrt(s);
    if (!std::isfinite(norm))
      throw ValueError("clip_grad_norm: the gradient norm is not finite (NaN or Inf in a gradient)");
    dev.scale_grads(g.dtype(), ps.data(), ps.size(), GradClip{sumsq, max_norm});
  } catch (...) {
    dev.free(sumsq);
    throw;
  }
  dev.free(sumsq);
  return std::sqrt(s);
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
