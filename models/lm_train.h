// Training loop for the language models (GPT, LSTM): random token windows,
// AdamW with decoupled weight decay, gradient-norm clipping, cosine learning
// rate with warm-up, periodic validation loss, a progress line with loss and
// tokens/s, and atomic checkpoints (the last complete one always loads).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "autograd/optim.h"
#include "text/windows.h"

namespace lldl {

struct LMTrainConfig {
  int64_t steps = 2000, batch = 16, seq = 128;
  double lr = 1e-3, min_lr = 1e-4;
  int64_t warmup = 100;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.99, grad_clip = 1.0;
  int64_t eval_every = 100, eval_batches = 16;  // eval_every 0: only at the end
  int64_t ckpt_every = 0;                       // 0: only at the end (when out is set)
  std::string out;                              // checkpoint path, empty: none
  uint64_t seed = 1337;
  bool progress = true;                         // a progress line on stderr
  void validate() const;                        // ValueError naming the field
};

struct LMTrainLog {
  std::vector<int64_t> eval_step;        // steps (1-based) at which validation ran
  std::vector<double> val_loss;          // mean cross-entropy, nats per token
  std::vector<double> train_loss;        // every step
  double train_seconds = 0;              // forward + backward + update, no evaluation
  double tokens_per_s = 0;               // batch * seq * steps / train_seconds
};

// Mean loss of `batches` windows drawn from `val` with a fixed seed (the same
// windows at every evaluation, so the numbers are comparable).
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

void print_progress(int64_t step, int64_t steps, double loss, double lr, double tokens_per_s,
                    double val_loss, bool newline);

template <class Model>
LMTrainLog train_lm(Model& m, const std::vector<int32_t>& train, const std::vector<int32_t>& val,
                    const LMTrainConfig& c, const std::map<std::string, std::string>& extra = {}) {
  c.validate();
  OptimConfig oc;
  oc.kind = OptimKind::AdamW;
  oc.lr = static_cast<float>(c.lr);
  oc.beta1 = static_cast<float>(c.beta1);
  oc.beta2 = static_cast<float>(c.beta2);
  oc.weight_decay = static_cast<float>(c.weight_decay);
  Optimizer opt(m.graph(), oc);
  TokenWindows windows(train, c.seed);
  std::vector<int32_t> x(c.batch * c.seq), y(c.batch * c.seq);
  LMTrainLog log;
  double last_val = -1;
  using clock = std::chrono::steady_clock;
  for (int64_t s = 0; s < c.steps; ++s) {
    auto t0 = clock::now();
    windows.sample(static_cast<int>(c.batch), static_cast<int>(c.seq), x.data(), y.data());
    double lr = cosine_lr(s, c.warmup, c.steps, c.lr, c.min_lr);
    opt.cfg.lr = static_cast<float>(lr);
    double loss = m.loss(x.data(), y.data(), c.batch, c.seq);
    m.backward();
    if (c.grad_clip > 0) clip_grad_norm(m.graph(), c.grad_clip);
    opt.step();
    m.zero_grad();
    log.train_seconds += std::chrono::duration<double>(clock::now() - t0).count();
    log.train_loss.push_back(loss);
    const int64_t done = s + 1;
    bool eval = done == c.steps || (c.eval_every > 0 && done % c.eval_every == 0);
    if (eval && !val.empty()) {
      last_val = eval_lm(m, val, c.batch, c.seq, c.eval_batches, c.seed + 7919);
      log.eval_step.push_back(done);
      log.val_loss.push_back(last_val);
    }
    double tps = double(c.batch * c.seq) * double(done) / log.train_seconds;
    if (c.progress) print_progress(done, c.steps, loss, lr, tps, last_val, eval);
    bool ckpt = !c.out.empty() && (done == c.steps || (c.ckpt_every > 0 && done % c.ckpt_every == 0));
    if (ckpt) {
      std::map<std::string, std::string> meta = extra;
      meta["train.step"] = std::to_string(done);
      m.save(c.out, meta);
    }
  }
  log.tokens_per_s = double(c.batch * c.seq) * double(c.steps) / log.train_seconds;
  return log;
}

}  // namespace lldl
