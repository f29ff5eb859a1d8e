// Optimisers: SGD, SGD with momentum, Adam and AdamW, updating parameters in
// place from their gradients. State (momentum, moments) lives in the graph's
// persistent arena region, created at the first step.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/graph.h"
#include "backends/device.h"

namespace lldl {

// OptimKind and OptimConfig are the update rules' (backends/device.h): each
// backend implements the update (DeviceFns::update), Optimizer drives it.

// Throws ValueError naming the setting that is out of range.
void validate(const OptimConfig& c);

struct Optimizer {
  Graph* g;
  OptimConfig cfg;
  std::vector<Tensor> params, m, v;  // m: momentum / first moment, v: second moment
  std::vector<int64_t> steps;         // per parameter: Adam's bias correction counts
                                      // from the step the parameter joined
  int64_t t = 0;                      // steps taken
  // > 0: every step clips the gradients to this global L2 norm on the way
  // (the rule of clip_grad_norm, fused into the update: the norm is reduced
  // on the graph's backend and never read by the host, so a step stays one
  // stream of device work). A NaN or Inf norm leaves the parameters as they
  // were; grad_norm() tells.
  double clip_max_norm = 0;
  // What the backend's update gets: per parameter its buffers and step
  // count (rebuilt when parameters join, refreshed at each step).
  std::vector<ParamSlot> slots;
  // Per parameter {lr, 1 - beta1^step, 1 - beta2^step} in the graph's dtype
  // (optim_scalars): computed on the host at each step and copied into
  // `scalars` (graph memory), which the update reads (ParamSlot::scalars),
  // so that a step captured into a CUDA graph (autograd/step_graph.h)
  // replays with each step's learning rate and bias corrections: a hook of
  // the capture advances the counts and rewrites them before every replay.
  std::vector<char> host_scalars;
  Tensor scalars;

  Optimizer(Graph& graph, OptimConfig c);
  // One update of every parameter of the graph (parameters created after the
  // last step join with fresh state).
  void step();
  // Forgets the state (momentum, moments, step count); parameters unchanged.
  void reset_state();
  // Gives parameters created since the last call their state (step() calls it).
  void add_new_params();
  // The gradient norm the last clipped step saw (before clipping): reads one
  // double back from the backend (not while a step is being captured).
  double grad_norm() const;

 private:
  // ++t and every parameter's step, host_scalars for this step.
  void advance();
  Tensor sumsq_;  // one double in the backend's memory, for clipped steps
  bool clipped_ = false;  // a clipped step has run: sumsq_ holds its norm
};

// Scales every parameter gradient so that their global L2 norm is at most
// max_norm (nothing changes when it already is); returns the norm before
// clipping. max_norm must be > 0. A NaN or Inf norm raises ValueError rather
// than spreading NaN into every parameter at the next step.
double clip_grad_norm(Graph& g, double max_norm);

// Learning rate at `step` (0-based) of a run of `total` steps: linear warm-up
// from lr_max/warmup to lr_max over the first `warmup` steps, then a cosine
// decay from lr_max to lr_min reached at the last step.
double cosine_lr(int64_t step, int64_t warmup, int64_t total, double lr_max, double lr_min);

}  // namespace lldl
