// Training loop for the language models (GPT, LSTM): random token windows,
// AdamW with decoupled weight decay, gradient accumulation, gradient-norm
// clipping, cosine learning rate with warm-up, periodic validation loss, a
// progress line with loss and tokens/s, planned step memory, and atomic
// training checkpoints (the last complete one always loads) that resume
// exactly.
//
// A training checkpoint is one safetensors file: the parameters under their
// own names (so it loads as a model checkpoint too), the AdamW moments as
// "optim.m.<name>" / "optim.v.<name>", and in the metadata the model config,
// the steps done, the optimiser's step counts, the run's settings
// ("train.*", which fix the learning-rate schedule), the window sampler's
// random state and a hash of the training tokens. Training k steps, saving,
// loading in a new process and training on gives, bit for bit, the losses
// and weights of one uninterrupted run (same thread count: the order of
// additions inside a kernel depends on it).
//
// Data-parallel (under mpirun, dist/): `batch` is per rank, so N ranks step
// on a global batch of N*batch windows: every rank draws the global batch from
// the run's seed and trains on its slice (TokenWindows::sample_rows), rank 0's
// initial weights are broadcast, gradients are averaged in buckets during
// backward (dist::GradSync), losses are averaged, the validation batches are
// shared out, and rank 0 alone prints and writes checkpoints (atomically:
// temporary file, then rename). The checkpoint's "train.batch" is the global
// batch and "dist.world_size" the ranks that wrote it: any number of ranks
// resumes it as long as ranks x batch gives the same global batch (the run is
// then the same run, up to the order of floating-point additions); another
// global batch is refused, naming both.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/optim.h"
#include "dist/comm.h"
#include "dist/grad_sync.h"
#include "autograd/step_graph.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "text/windows.h"

namespace lldl {

struct LMTrainConfig {
  int64_t steps = 2000, batch = 16, seq = 128;
  int64_t grad_accum = 1;  // micro-batches of `batch` windows per step (their mean gradient)
  double lr = 1e-3, min_lr = 1e-4;
  int64_t warmup = 100;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.99, grad_clip = 1.0;
  int64_t eval_every = 100, eval_batches = 16;  // eval_every 0: only at the end
  int64_t ckpt_every = 0;                       // 0: only at the end (when out is set)
  std::string out;                              // checkpoint path, empty: none
  uint64_t seed = 1337;
  bool progress = true;                         // a progress line on stderr
  // Resuming and stopping (neither changes the run's numbers):
  std::string resume;     // a training checkpoint to continue from, empty: a fresh run
  int64_t stop_at = 0;    // > 0: stop (and checkpoint) after this step; the schedule still spans `steps`
  std::string loss_log;   // "step loss lr" per step, appended (losses to 17 digits), empty: none
  bool plan_memory = true;  // Graph::set_memory_planning for the run
  int64_t world = 1;        // ranks (dist::world_size()); the global batch is batch * world
  // Operands of the matrix products: "fp32", or "bf16" (mixed precision:
  // float32 weights, gradients and AdamW moments; every matmul and linear
  // rounds its operands to bf16 and accumulates in float32; no loss scaling,
  // bf16 having float32's exponent range). Graph::set_matmul_precision.
  std::string precision = "fp32";
  // Each training step through a StepGraph (autograd/step_graph.h): on a GPU
  // captured once into a CUDA graph and replayed; on the CPU the eager step.
  // Same losses and checkpoints as without it. The GPT only; needs
  // grad_accum 1 (ValueError otherwise) and turns memory planning off for
  // the run (a captured step keeps its warm-up step's arena addresses).
  // Evaluation stays eager between replays: it allocates from the held step
  // block, whose contents every replay rewrites, and never moves it.
  bool cuda_graph = false;
  void validate() const;  // ValueError naming the field

  // The settings that define the run ("train.steps", ... at full precision).
  std::map<std::string, std::string> to_metadata() const;
  // This config with the run-defining settings of a checkpoint's metadata.
  LMTrainConfig with_metadata(const std::map<std::string, std::string>& m) const;
  // ValueError naming the first setting that differs from the checkpoint's
  // (a resumed run must be the same run, or it would not resume exactly).
  void check_same_run(const std::map<std::string, std::string>& m) const;
};

struct LMTrainLog {
  std::vector<int64_t> eval_step;        // steps (1-based) at which validation ran
  std::vector<double> val_loss;          // mean cross-entropy, nats per token
  std::vector<double> train_loss;        // every step run by this call
  int64_t first_step = 0;                // steps done before this call (resume)
  double train_seconds = 0;              // forward + backward + update, no evaluation
  double tokens_per_s = 0;               // tokens of the steps run / train_seconds
  std::vector<double> step_seconds;      // each step's forward + backward + update (a
                                         // step ends with the loss's read, so on a GPU
                                         // its work is done)
  MemoryReport step_memory;              // of the last training step (autograd/planner.h)
  size_t persistent_bytes = 0;           // parameters, gradients, optimiser state
  dist::GradSyncStats comm;              // gradient all-reduce: time per step, part hidden
};

// Mean loss of `batches` windows drawn from `val` with a fixed seed (the same
// windows at every evaluation, so the numbers are comparable). eval_lm_dist:
// under N ranks of `batch` windows each, the batches of N*batch windows one
// rank at N*batch evaluates, each rank its slice; every rank gets the mean.
template <class Model>
double eval_lm(Model& m, const std::vector<int32_t>& val, int64_t batch, int64_t seq,
               int64_t batches, uint64_t seed) {
  TokenWindows w(val, seed);
  std::vector<int32_t> x(batch * seq), y(batch * seq);
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    w.sample(static_cast<int>(batch), static_cast<int>(seq), x.data(), y.data());
    total += m.loss(x.data(), y.data(), batch, seq);
  }
  return total / static_cast<double>(batches);
}

template <class Model>
double eval_lm_dist(Model& m, const std::vector<int32_t>& val, int64_t batch, int64_t seq,
                    int64_t batches, uint64_t seed) {
  const int64_t global = batch * dist::world_size();
  const dist::Shard sh = dist::my_shard(global);
  TokenWindows w(val, seed);
  std::vector<int32_t> x(batch * seq), y(batch * seq);
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    w.sample_rows(static_cast<int>(global), static_cast<int>(seq), static_cast<int>(sh.first),
                  static_cast<int>(sh.rows), x.data(), y.data());
    total += m.loss(x.data(), y.data(), batch, seq);
  }
  return dist::allreduce_scalar(total) / static_cast<double>(batches);
}

void print_progress(int64_t step, int64_t steps, double loss, double lr, double tokens_per_s,
                    double val_loss, bool newline);

// FNV-1a over the token ids: a resumed run checks it trains on the same data.
uint64_t tokens_hash(const std::vector<int32_t>& tokens);

// The training state beside the model: what a checkpoint adds to the
// parameters. `model_meta` is the model's config and tokenizer metadata.
struct TrainState {
  Graph* g;
  Optimizer* opt;
  TokenWindows* windows;
  const LMTrainConfig* cfg;
  uint64_t data_hash;
};
// Writes parameters, moments and metadata atomically, `done` steps taken.
void save_train_checkpoint(const TrainState& s, int64_t done,
                           const std::map<std::string, std::string>& model_meta);
// Restores parameters, moments, step counts and the sampler from a training
// checkpoint of the same run (ValueError naming what differs or is missing);
// returns the steps it had done.
int64_t load_train_checkpoint(const TrainState& s, const std::string& path);
// Appends "step loss lr" to the loss log (when cfg.loss_log is set).
void log_loss(const LMTrainConfig& c, int64_t step, double loss, double lr);

// Every rank checks it runs the same model and run as the others (ValueError
// naming the first rank that differs), then takes rank 0's weights.
void dist_start(Graph& g, const LMTrainConfig& c, const std::map<std::string, std::string>& model_meta,
                uint64_t data_hash, int64_t first_step);

// The StepGraph of one training step of m (inputs: ids, positions, targets)
// when c.cuda_graph is set, else null. The step is the eager loop's with
// grad_accum 1: loss, backward scaled by 1, the clipped update.
template <class Model>
std::unique_ptr<StepGraph> lm_step_graph(Model& m, Optimizer& opt, const LMTrainConfig& c) {
  if (!c.cuda_graph) return nullptr;
  if constexpr (requires(Model& mm, Tensor t) { mm.loss_from(t, t, t, int64_t(1), int64_t(1)); }) {
    const int64_t B = c.batch, T = c.seq;
    std::vector<StepInput> in{{Shape{B, T}, DType::I32}, {Shape{B, T}, DType::I32},
                              {Shape{B * T}, DType::I32}};
    return std::make_unique<StepGraph>(
        m.graph(), std::move(in), [&m, &opt, B, T](Graph&, const std::vector<Tensor>& t) {
          Tensor loss = m.loss_from(t[0], t[1], t[2], B, T);
          m.backward(1.0);
          opt.step();
          return loss;
        });
  } else {
    throw ValueError("train: cuda_graph (--cuda-graph) supports the GPT only");
  }
}

template <class Model>
LMTrainLog train_lm(Model& m, const std::vector<int32_t>& train, const std::vector<int32_t>& val,
                    const LMTrainConfig& cfg, const std::map<std::string, std::string>& extra = {}) {
  dist::init();
  LMTrainConfig c = cfg;
  c.world = dist::world_size();
  const bool lead = dist::rank() == 0;
  c.validate();
  OptimConfig oc;
  oc.kind = OptimKind::AdamW;
  oc.lr = static_cast<float>(c.lr);
  oc.beta1 = static_cast<float>(c.beta1);
  oc.beta2 = static_cast<float>(c.beta2);
  oc.weight_decay = static_cast<float>(c.weight_decay);
  Optimizer opt(m.graph(), oc);
  m.graph().set_matmul_precision(matmul_precision_from_name(c.precision));
  TokenWindows windows(train, c.seed);
  const TrainState state{&m.graph(), &opt, &windows, &c, tokens_hash(train)};
  LMTrainLog log;
  if (!c.resume.empty()) log.first_step = load_train_checkpoint(state, c.resume);
  std::map<std::string, std::string> model_meta = m.config().to_metadata();
  for (const auto& kv : extra) model_meta.insert(kv);
  dist_start(m.graph(), c, model_meta, state.data_hash, log.first_step);
  dist::GradSync sync(m.graph());
  const int64_t global = c.batch * c.world;
  const dist::Shard shard = dist::my_shard(global);
  if (c.cuda_graph && c.world > 1)
    throw ValueError("train: cuda_graph (--cuda-graph) runs in one process: under mpirun the gradient "
                     "all-reduce would sit outside the captured step (not supported)");
  m.graph().set_memory_planning(c.plan_memory && !c.cuda_graph);

  std::vector<int32_t> x(c.batch * c.seq), y(c.batch * c.seq);
  opt.clip_max_norm = c.grad_clip;
  std::unique_ptr<StepGraph> sg = lm_step_graph(m, opt, c);
  if (sg) sync.set_active(false);  // one process (refused above otherwise): nothing to average
  std::vector<int32_t> pos(sg ? x.size() : 0);
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i % c.seq);  // GPT::positions
  const int64_t last = c.stop_at > 0 ? std::min(c.stop_at, c.steps) : c.steps;
  double last_val = -1;
  using clock = std::chrono::steady_clock;
  for (int64_t s = log.first_step; s < last; ++s) {
    auto t0 = clock::now();
    double lr = cosine_lr(s, c.warmup, c.steps, c.lr, c.min_lr);
    opt.cfg.lr = static_cast<float>(lr);
    // N micro-batches of B windows draw the windows one batch of N*B would,
    // and each loss is scaled by 1/N: the gradient is the mean over N*B.
    double loss = 0;
    // Ranks: each trains on its slice of the global batch; the gradients of
    // the last micro-batch's backward go out bucket by bucket as it runs.
    dist::fault_point(s + 1);
    // Clipping is fused into the update, on the graph's backend (after the
    // ranks' gradients are averaged: every rank sees the same norm); the norm
    // is read back (one double, after the loss's read) only to stop on NaN/Inf.
    if (sg) {
      windows.sample_rows(static_cast<int>(global), static_cast<int>(c.seq), static_cast<int>(shard.first),
                          static_cast<int>(shard.rows), x.data(), y.data());
      loss = sg->run({x.data(), pos.data(), y.data()});  // forward, backward, update
    } else {
      for (int64_t a = 0; a < c.grad_accum; ++a) {
        windows.sample_rows(static_cast<int>(global), static_cast<int>(c.seq), static_cast<int>(shard.first),
                            static_cast<int>(shard.rows), x.data(), y.data());
        loss += m.loss(x.data(), y.data(), c.batch, c.seq);
        sync.set_active(a + 1 == c.grad_accum);
        m.backward(1.0 / static_cast<double>(c.grad_accum));
      }
      sync.finish();
      loss = dist::allreduce_scalar(loss / static_cast<double>(c.grad_accum));
      opt.step();
    }
    if (c.grad_clip > 0 && !std::isfinite(opt.grad_norm()))
      throw ValueError("train: the gradient norm is not finite at step " + std::to_string(s + 1) +
                       " (NaN or Inf in a gradient); the parameters were left unchanged");
    if (!sg) m.zero_grad();  // a StepGraph zeroes them as its step begins
    log.step_memory = m.graph().memory_report();
    const double secs = std::chrono::duration<double>(clock::now() - t0).count();
    log.train_seconds += secs;
    log.step_seconds.push_back(secs);
    log.train_loss.push_back(loss);
    if (lead) log_loss(c, s + 1, loss, lr);
    const int64_t done = s + 1;
    bool eval = done == last || (c.eval_every > 0 && done % c.eval_every == 0);
    if (eval && !val.empty()) {
      last_val = eval_lm_dist(m, val, c.batch, c.seq, c.eval_batches, c.seed + 7919);
      log.eval_step.push_back(done);
      log.val_loss.push_back(last_val);
    }
    double tps = double(global * c.seq * c.grad_accum) * double(done - log.first_step) /
                 log.train_seconds;
    if (c.progress && lead) print_progress(done, c.steps, loss, lr, tps, last_val, eval);
    bool ckpt = !c.out.empty() && (done == last || (c.ckpt_every > 0 && done % c.ckpt_every == 0));
    if (ckpt && lead) save_train_checkpoint(state, done, model_meta);
  }
  const double run = double(last - log.first_step);
  log.tokens_per_s = log.train_seconds > 0
                         ? double(global * c.seq * c.grad_accum) * run / log.train_seconds
                         : 0;
  log.persistent_bytes = m.graph().arena().stats(Region::Persistent).in_use;
  log.comm = sync.stats();
  return log;
}

}  // namespace lldl
