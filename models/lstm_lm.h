// A character-level LSTM language model on lldl's tape:
//   embedding [V, E] -> one LSTM layer (hidden H) -> linear head [V, H].
// When the vocabulary has no more rows than a batch has tokens, forward()
// applies the LSTM's input projection to the embedding table instead of to
// every token (linear, embedding, then lstm_gates); table_projection = false
// turns that off (the per-token lstm op always), e.g. to measure what it buys.
// It changes no parameter, so checkpoints do not record it.
//
// Parameter names follow PyTorch's nn.Embedding / nn.LSTM / nn.Linear state
// dicts: embed.weight [V, E], lstm.weight_ih_l0 [4H, E], lstm.weight_hh_l0
// [4H, H], lstm.bias [4H] (PyTorch's bias_ih_l0 + bias_hh_l0: one vector, as
// the two are only ever added), head.weight [V, H], head.bias [V]. Gate order
// i, f, g, o. Each training window starts from a zero state.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "models/lm_base.h"

namespace lldl {

struct LSTMConfig {
  int64_t vocab_size = 256, n_embd = 64, n_hidden = 256;
  bool table_projection = true;
  void validate() const;  // ValueError naming the field
  std::map<std::string, std::string> to_metadata() const;
  static LSTMConfig from_metadata(const std::map<std::string, std::string>& m);
};

class LSTMLM : public LanguageModel<LSTMLM, LSTMConfig> {
 public:
  // backend: where the parameters live and training runs (Backend::CUDA:
  // drawn on the host as on the CPU, then copied). Sampling
  // (generate, stepwise_logits) runs on the CPU only: ValueError on another.
  explicit LSTMLM(const LSTMConfig& cfg, uint64_t seed = 1337, Backend backend = Backend::CPU);

  // New step (gradients kept), forward of idx [B, T]: logits [B*T, vocab].
  Tensor forward(const int32_t* idx, int64_t B, int64_t T);
  double loss(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T);

  // Feeds the prompt through the LSTM carrying (h, c), then samples max_new
  // tokens one step at a time (no window limit).
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int64_t max_new,
                                float temperature, int64_t top_k, uint64_t seed) const;
  // Logits [T, vocab] of one sequence through the stepwise path (equals
  // forward()'s).
  std::vector<float> stepwise_logits(const std::vector<int32_t>& seq) const;

  void check_tokens(const int32_t* idx, int64_t B, int64_t T) const;

 private:
  // scratch: the step's working memory, reused across steps.
  void step(int32_t tok, float* h, float* c, float* logits, std::vector<float>& scratch) const;
  Tensor emb_, w_ih_, w_hh_, b_, head_w_, head_b_;
};

}  // namespace lldl
