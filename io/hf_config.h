// The config.json of a Hugging Face GPT-2 directory (what
// transformers.GPT2Config.save_pretrained writes), read and written here so
// that JSON stays inside io/. models/gpt_hf.cpp maps it onto GPTConfig and the
// tensors of model.safetensors onto the GPT's parameters.
#pragma once
#include <cstdint>
#include <string>

namespace lldl {

struct HfGpt2Config {
  int64_t vocab_size = 50257, n_positions = 1024, n_layer = 12, n_head = 12, n_embd = 768;
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";
  bool tie_word_embeddings = true;
};

// Reads and checks config.json at `path`. The five sizes are required (a
// config without them describes no particular model); layer_norm_epsilon,
// activation_function and tie_word_embeddings take GPT2Config's defaults when
// absent. Refused, with ValueError naming the file and the field: a field of
// the wrong JSON type, model_type other than "gpt2", an activation other than
// the tanh GELU ("gelu_new", "gelu_pytorch_tanh"), untied embeddings, n_inner
// other than null or 4 * n_embd, scale_attn_weights false,
// scale_attn_by_inverse_layer_idx or add_cross_attention true. Other fields
// (dropout, initializer_range, token ids, ...) are ignored.
HfGpt2Config read_hf_gpt2_config(const std::string& path);

// Writes config.json for GPT2LMHeadModel (atomically: a temporary file
// renamed over `path`). Dropout probabilities are written as 0: lldl's GPT
// has no dropout, so the exported model trains as lldl's did. bos/eos token
// ids are GPT-2's 50256 when the vocabulary holds it, null otherwise.
void write_hf_gpt2_config(const std::string& path, const HfGpt2Config& c);

}  // namespace lldl
