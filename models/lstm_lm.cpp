#include "models/lstm_lm.h"

#include <Eigen/Core>
#include <cmath>
#include <string>

#include "autograd/direct.h"
#include "autograd/init.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/lm_common.h"
#include "models/sampling.h"

namespace lldl {

void LSTMConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v < 1) throw ValueError(std::string("LSTMConfig: ") + name + " must be >= 1, got " +
                                std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("n_embd", n_embd);
  positive("n_hidden", n_hidden);
  if (vocab_size > INT32_MAX || n_embd > (int64_t(1) << 16) || n_hidden > (int64_t(1) << 16))
    throw ValueError("LSTMConfig: sizes too large");
}

std::map<std::string, std::string> LSTMConfig::to_metadata() const {
  return {{"lldl.model", "lstm"},
          {"vocab_size", std::to_string(vocab_size)},
          {"n_embd", std::to_string(n_embd)},
          {"n_hidden", std::to_string(n_hidden)}};
}

LSTMConfig LSTMConfig::from_metadata(const std::map<std::string, std::string>& m) {
  check_model_kind(m, "lstm");
  LSTMConfig c;
  c.vocab_size = metadata_int(m, "vocab_size");
  c.n_embd = metadata_int(m, "n_embd");
  c.n_hidden = metadata_int(m, "n_hidden");
  c.validate();
  return c;
}

LSTMLM::LSTMLM(const LSTMConfig& cfg, uint64_t seed, Backend backend)
    : LanguageModel(cfg, "lstm", backend) {
  const int64_t V = cfg.vocab_size, E = cfg.n_embd, H = cfg.n_hidden;
  // PyTorch's defaults: N(0, 1) embeddings, U(-1/sqrt(H), 1/sqrt(H)) for the
  // LSTM and the head (whose fan-in is H).
  const double a = 1.0 / std::sqrt(double(H));
  emb_ = p("embed.weight", Shape{V, E});
  w_ih_ = p("lstm.weight_ih_l0", Shape{4 * H, E});
  w_hh_ = p("lstm.weight_hh_l0", Shape{4 * H, H});
  b_ = p("lstm.bias", Shape{4 * H});
  head_w_ = p("head.weight", Shape{V, H});
  head_b_ = p("head.bias", Shape{V});
  init_normal(g_, emb_, 0.0, 1.0, seed);
  init_uniform(g_, w_ih_, -a, a, seed + 1);
  init_uniform(g_, w_hh_, -a, a, seed + 2);
  init_uniform(g_, b_, -a, a, seed + 3);
  init_uniform(g_, head_w_, -a, a, seed + 4);
  init_uniform(g_, head_b_, -a, a, seed + 5);
}

void LSTMLM::check_tokens(const int32_t* idx, int64_t B, int64_t T) const {
  check_token_ids("lstm", idx, B, T, cfg_.vocab_size, /*block_size=*/0);
}

Tensor LSTMLM::forward(const int32_t* idx, int64_t B, int64_t T) {
  check_tokens(idx, B, T);
  g_.reset(/*keep_grads=*/true);
  Tensor ids = g_.input(Shape{B, T}, idx, DType::I32);
  Tensor h;  // [B, T, H]
  if (cfg_.table_projection && cfg_.vocab_size <= B * T) {
    // The input projection of a looked-up row is that row's projection, so
    // project the V rows of the table once, E W_ih^T + b, and look the gate
    // inputs up: V instead of B T rows through the GEMM (and its two
    // backward GEMMs), the same function and gradients.
    Tensor table = linear(emb_, w_ih_, b_, /*trans_b=*/true);  // [V, 4H]
    h = lstm_gates(embedding(ids, table), w_hh_);
  } else {
    h = lstm(embedding(ids, emb_), w_ih_, w_hh_, b_);
  }
  return linear(reshape(h, Shape{B * T, cfg_.n_hidden}), head_w_, head_b_, /*trans_b=*/true);
}

double LSTMLM::loss(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T) {
  check_tokens(targets, B, T);
  Tensor logits = forward(idx, B, T);
  loss_ = cross_entropy(logits, g_.input(Shape{B * T}, targets, DType::I32));
  return g_.item(loss_);
}

// One token through embedding, the LSTM cell (state carried in h, c) and the
// head.
void LSTMLM::step(int32_t tok, float* h, float* c, float* logits, std::vector<float>& scratch) const {
  if (g_.backend() != Backend::CPU)
    throw ValueError(std::string("lstm: sampling runs on the cpu; this model lives on ") +
                     backend_name(g_.backend()) + " (load the checkpoint on the cpu to sample)");
  Graph& g = const_cast<Graph&>(g_);
  const int64_t E = cfg_.n_embd, H = cfg_.n_hidden, V = cfg_.vocab_size;
  lstm_step<float>(g.data<float>(emb_) + tok * E, g.data<float>(w_ih_), g.data<float>(w_hh_),
                   g.data<float>(b_), h, c, 1, E, H, scratch);
  using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<Eigen::VectorXf> out(logits, V);
  out.noalias() = Eigen::Map<const MatR>(g.data<float>(head_w_), V, H) *
                  Eigen::Map<const Eigen::VectorXf>(h, H);
  out += Eigen::Map<const Eigen::VectorXf>(g.data<float>(head_b_), V);
}

std::vector<float> LSTMLM::stepwise_logits(const std::vector<int32_t>& seq) const {
  check_tokens(seq.data(), 1, static_cast<int64_t>(seq.size()));
  std::vector<float> h(cfg_.n_hidden, 0.0f), c(cfg_.n_hidden, 0.0f), scratch;
  std::vector<float> out(seq.size() * static_cast<size_t>(cfg_.vocab_size));
  for (size_t t = 0; t < seq.size(); ++t)
    step(seq[t], h.data(), c.data(), out.data() + t * cfg_.vocab_size, scratch);
  return out;
}

std::vector<int32_t> LSTMLM::generate(const std::vector<int32_t>& prompt, int64_t max_new,
                                      float temperature, int64_t top_k, uint64_t seed) const {
  check_generate_args("lstm", prompt, max_new, temperature, top_k, cfg_.vocab_size);
  std::vector<float> h(cfg_.n_hidden, 0.0f), c(cfg_.n_hidden, 0.0f), scratch;
  std::vector<float> logits(static_cast<size_t>(cfg_.vocab_size));
  for (int32_t t : prompt) step(t, h.data(), c.data(), logits.data(), scratch);
  std::vector<int32_t> seq = prompt;
  Rng rng(seed);
  for (int64_t i = 0; i < max_new; ++i) {
    seq.push_back(sample_token(logits.data(), cfg_.vocab_size, temperature, top_k, rng));
    if (i + 1 < max_new) step(seq.back(), h.data(), c.data(), logits.data(), scratch);
  }
  return seq;
}

}  // namespace lldl
