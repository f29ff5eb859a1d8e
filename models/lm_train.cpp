#include "models/lm_train.h"

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/lm_common.h"

namespace lldl {

void LMTrainConfig::validate() const {
  auto bad = [](const std::string& what) { throw ValueError("train: " + what); };
  if (steps < 1) bad("steps must be >= 1, got " + std::to_string(steps));
  if (batch < 1) bad("batch must be >= 1, got " + std::to_string(batch));
  if (seq < 1) bad("seq (block) must be >= 1, got " + std::to_string(seq));
  if (!(lr > 0) || !std::isfinite(lr)) bad("lr must be a positive number, got " + std::to_string(lr));
  if (!(min_lr >= 0) || min_lr > lr) bad("min_lr must be in [0, lr], got " + std::to_string(min_lr));
  if (warmup < 0) bad("warmup must be >= 0, got " + std::to_string(warmup));
  if (!(grad_clip >= 0)) bad("grad_clip must be >= 0 (0: off), got " + std::to_string(grad_clip));
  if (eval_every < 0 || eval_batches < 1)
    bad("eval_every must be >= 0 and eval_batches >= 1, got " + std::to_string(eval_every) +
        " and " + std::to_string(eval_batches));
  if (ckpt_every < 0) bad("ckpt_every must be >= 0, got " + std::to_string(ckpt_every));
  if (precision != "fp32" && precision != "bf16")
    bad("precision must be fp32 or bf16, got '" + precision + "'");
  if (grad_accum < 1) bad("grad_accum must be >= 1, got " + std::to_string(grad_accum));
  if (cuda_graph && grad_accum != 1)
    bad("cuda_graph (--cuda-graph) needs grad_accum 1 (a captured step is one micro-batch), got " +
        std::to_string(grad_accum));
  if (stop_at < 0) bad("stop_at must be >= 0 (0: run every step), got " + std::to_string(stop_at));
}

namespace {

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
double meta_real(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) throw ValueError("checkpoint metadata has no '" + key + "'");
  try {
    size_t used = 0;
    double v = std::stod(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  throw ValueError("checkpoint metadata '" + key + "' is not a number: '" + it->second + "'");
}
std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}
uint64_t parse_hex64(const std::string& s, const std::string& key) {
  if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw ValueError("checkpoint metadata '" + key + "' is not 16 hexadecimal digits: '" + s + "'");
  return std::stoull(s, nullptr, 16);
}
const std::string& meta_str(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) throw ValueError("checkpoint metadata has no '" + key + "'");
  return it->second;
}

// Checkpoints from before mixed precision have no train.precision: fp32.
std::string run_precision(const std::map<std::string, std::string>& m) {
  auto it = m.find("train.precision");
  return it == m.end() ? "fp32" : it->second;
}

}  // namespace

std::map<std::string, std::string> LMTrainConfig::to_metadata() const {
  // train.batch: the global batch (ranks x per-rank batch), what defines the run.
  return {{"train.steps", std::to_string(steps)},     {"train.batch", std::to_string(batch * world)},
          {"train.seq", std::to_string(seq)},         {"train.grad_accum", std::to_string(grad_accum)},
          {"train.lr", exact(lr)},                    {"train.min_lr", exact(min_lr)},
          {"train.warmup", std::to_string(warmup)},   {"train.weight_decay", exact(weight_decay)},
          {"train.beta1", exact(beta1)},              {"train.beta2", exact(beta2)},
          {"train.grad_clip", exact(grad_clip)},      {"train.seed", std::to_string(seed)},
          {"train.precision", precision}};
}

LMTrainConfig LMTrainConfig::with_metadata(const std::map<std::string, std::string>& m) const {
  LMTrainConfig c = *this;
  c.steps = metadata_int(m, "train.steps");
  const int64_t global = metadata_int(m, "train.batch");
  if (global % world != 0)
    throw ValueError("resume: the checkpoint's global batch of " + std::to_string(global) +
                     " windows does not split over " + std::to_string(world) + " ranks");
  c.batch = global / world;
  c.seq = metadata_int(m, "train.seq");
  c.grad_accum = metadata_int(m, "train.grad_accum");
  c.lr = meta_real(m, "train.lr");
  c.min_lr = meta_real(m, "train.min_lr");
  c.warmup = metadata_int(m, "train.warmup");
  c.weight_decay = meta_real(m, "train.weight_decay");
  c.beta1 = meta_real(m, "train.beta1");
  c.beta2 = meta_real(m, "train.beta2");
  c.grad_clip = meta_real(m, "train.grad_clip");
  c.seed = std::stoull(meta_str(m, "train.seed"));
  c.precision = run_precision(m);
  // Evaluation does not change the run; a resumed run keeps it when it can.
  if (m.count("train.eval_every")) c.eval_every = metadata_int(m, "train.eval_every");
  if (m.count("train.eval_batches")) c.eval_batches = metadata_int(m, "train.eval_batches");
  return c;
}

void LMTrainConfig::check_same_run(const std::map<std::string, std::string>& m) const {
  for (const auto& [key, mine] : to_metadata()) {
    const std::string theirs = key == "train.precision" ? run_precision(m) : meta_str(m, key);
    if (theirs != mine && key == "train.batch")
      throw ValueError("resume: the global batch (ranks x --batch) is " + std::to_string(world) + " x " +
                       std::to_string(batch) + " = " + mine + " but the checkpoint's run has " + theirs +
                       (m.count("dist.world_size") ? " (written by " + m.at("dist.world_size") + " ranks)" : "") +
                       "; choose --batch so that ranks x batch = " + theirs);
    if (theirs != mine)
      throw ValueError("resume: " + key.substr(6) + " is " + mine + " but the checkpoint's run has " +
                       theirs + " (a resumed run keeps its settings, or it would not resume exactly)");
  }
}

uint64_t tokens_hash(const std::vector<int32_t>& tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = reinterpret_cast<const unsigned char*>(tokens.data());
  for (size_t i = 0; i < tokens.size() * sizeof(int32_t); ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

namespace {

// Parameters under their names, then the optimiser's moments.
NamedTensors train_tensors(const TrainState& s) {
  Optimizer& o = *s.opt;
  if (o.params.size() != s.g->num_params()) o.add_new_params();  // a fresh optimiser: zero moments
  NamedTensors ts;
  for (Tensor p : s.g->params()) ts.emplace_back(s.g->desc(p).name, p);
  for (size_t i = 0; i < o.params.size(); ++i) {
    const std::string& name = s.g->desc(o.params[i]).name;
    ts.emplace_back("optim.m." + name, o.m[i]);
    ts.emplace_back("optim.v." + name, o.v[i]);
  }
  return ts;
}

}  // namespace

void save_train_checkpoint(const TrainState& s, int64_t done,
                           const std::map<std::string, std::string>& model_meta) {
  std::map<std::string, std::string> meta = model_meta;
  for (const auto& kv : s.cfg->to_metadata()) meta[kv.first] = kv.second;
  meta["train.step"] = std::to_string(done);
  meta["dist.world_size"] = std::to_string(s.cfg->world);
  meta["train.eval_every"] = std::to_string(s.cfg->eval_every);
  meta["train.eval_batches"] = std::to_string(s.cfg->eval_batches);
  meta["train.data_hash"] = hex64(s.data_hash);
  std::string rng;
  for (uint64_t w : s.windows->rng.state()) rng += (rng.empty() ? "" : ",") + hex64(w);
  meta["train.rng"] = rng;
  NamedTensors ts = train_tensors(s);
  meta["optim.t"] = std::to_string(s.opt->t);
  std::string steps;
  for (int64_t n : s.opt->steps) steps += (steps.empty() ? "" : ",") + std::to_string(n);
  meta["optim.steps"] = steps;
  save_tensors(*s.g, s.cfg->out, ts, meta);
}

int64_t load_train_checkpoint(const TrainState& s, const std::string& path) {
  NamedTensors ts = train_tensors(s);
  std::map<std::string, std::string> meta;
  try {
    load_tensors(*s.g, path, ts, &meta);
  } catch (const ValueError& e) {
    throw ValueError("resume: " + path + " is not a training checkpoint of this model (" + e.what() + ")");
  }
  s.cfg->check_same_run(meta);
  if (meta_str(meta, "train.data_hash") != hex64(s.data_hash))
    throw ValueError("resume: the training tokens differ from those of the checkpoint's run "
                     "(another --data, split or tokenizer)");
  const int64_t done = metadata_int(meta, "train.step");
  if (done < 0 || done > s.cfg->steps)
    throw ValueError("resume: checkpoint step " + std::to_string(done) + " is outside [0, " +
                     std::to_string(s.cfg->steps) + "]");
  // The optimiser's step counts, one per parameter.
  std::vector<int64_t> steps;
  const std::string& list = meta_str(meta, "optim.steps");
  for (size_t at = 0; at < list.size();) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    steps.push_back(metadata_int({{"optim.steps", list.substr(at, comma - at)}}, "optim.steps"));
    at = comma + 1;
  }
  if (steps.size() != s.opt->params.size())
    throw ValueError("resume: 'optim.steps' has " + std::to_string(steps.size()) + " counts for " +
                     std::to_string(s.opt->params.size()) + " parameters");
  // The sampler's generator: four 64-bit words.
  const std::string& r = meta_str(meta, "train.rng");
  if (r.size() != 4 * 16 + 3) throw ValueError("resume: 'train.rng' is not four 64-bit words: '" + r + "'");
  std::array<uint64_t, 4> state{};
  for (size_t i = 0; i < 4; ++i) state[i] = parse_hex64(r.substr(i * 17, 16), "train.rng");
  s.opt->t = metadata_int(meta, "optim.t");
  s.opt->steps = steps;
  s.windows->rng.set_state(state);
  return done;
}

void dist_start(Graph& g, const LMTrainConfig& c, const std::map<std::string, std::string>& model_meta,
                uint64_t data_hash, int64_t first_step) {
  std::string run;
  for (const auto& kv : model_meta) run += kv.first + "=" + kv.second + ";";
  dist::check_same("the model's configuration and tokenizer", dist::hash_string(run));
  run.clear();
  for (const auto& kv : c.to_metadata()) run += kv.first + "=" + kv.second + ";";
  dist::check_same("the training settings (steps, batch, lr, seed...)", dist::hash_string(run));
  dist::check_same("the training tokens", data_hash);
  dist::check_same("the step resumed from", static_cast<uint64_t>(first_step));
  dist::broadcast_params(g);
}

void log_loss(const LMTrainConfig& c, int64_t step, double loss, double lr) {
  if (c.loss_log.empty()) return;
  std::FILE* f = std::fopen(c.loss_log.c_str(), "a");
  if (!f) throw IOError("train: cannot open the loss log " + c.loss_log + ": " + std::strerror(errno));
  std::fprintf(f, "%lld %.17g %.17g\n", static_cast<long long>(step), loss, lr);
  std::fclose(f);
}

void print_progress(int64_t step, int64_t steps, double loss, double lr, double tokens_per_s,
                    double val_loss, bool newline) {
  constexpr int kWidth = 24;
  int filled = static_cast<int>(kWidth * step / steps);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
  bar[kWidth] = 0;
  std::fprintf(stderr, "\rstep %6lld/%lld [%s] loss %.4f lr %.2e %8.0f tok/s", (long long)step,
               (long long)steps, bar, loss, lr, tokens_per_s);
  if (val_loss >= 0) std::fprintf(stderr, " val %.4f", val_loss);
  if (newline) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace lldl
