// GPT::set_inference_precision: bf16 / int8 copies of the matrices that a
// decode step reads, for generation (models/gpt_infer.cpp).
#include <string>

#include "core/error.h"
#include "models/gpt.h"

namespace lldl {

void GPT::set_inference_precision(const std::string& name, bool head) {
  const WeightFormat f = weight_format_from_name(name);
  if (f == WeightFormat::F32) {
    lowp_.reset();
    return;
  }
  auto lp = std::make_shared<Lowp>();
  lp->format = f;
  lp->head = head;
  const int64_t C = cfg_.n_embd;
  auto pack = [&](Tensor w, int64_t n_in, int64_t n_out, const std::string& what) {
    // Stored [n_in, n_out] (x @ W); the kernels want a row per output.
    return lowp_pack(g_.data<float>(w), n_out, n_in, true, f, what);
  };
  for (size_t l = 0; l < h_.size(); ++l) {
    const Block& b = h_[l];
    const std::string p = "h." + std::to_string(l) + ".";
    lp->blocks.push_back({pack(b.attn_w, C, 3 * C, p + "attn.c_attn.weight"),
                          pack(b.proj_w, C, C, p + "attn.c_proj.weight"),
                          pack(b.fc_w, C, 4 * C, p + "mlp.c_fc.weight"),
                          pack(b.mlp_w, 4 * C, C, p + "mlp.c_proj.weight")});
  }
  if (head) lp->lm_head = lowp_pack(g_.data<float>(wte_), cfg_.vocab_size, C, false, f, "wte.weight");
  lowp_ = std::move(lp);
}

void GPT::load(const std::string& path) {
  LanguageModel<GPT, GPTConfig>::load(path);
  if (lowp_) set_inference_precision(weight_format_name(lowp_->format), lowp_->head);
}

std::string GPT::inference_precision() const {
  return weight_format_name(lowp_ ? lowp_->format : WeightFormat::F32);
}

int64_t GPT::inference_weight_bytes() const {
  const int64_t C = cfg_.n_embd, L = cfg_.n_layer, V = cfg_.vocab_size;
  // Per block: 2 layer norms, 4 biases (float32 always) and 12 C^2 weights.
  int64_t bytes = L * (4 * C + 9 * C) * 4 + 2 * C * 4;  // + ln_f
  if (!lowp_) return bytes + (L * 12 * C * C + V * C) * 4;
  for (const auto& blk : lowp_->blocks)
    for (const LowpMatrix& w : blk) bytes += static_cast<int64_t>(w.bytes());
  return bytes + (lowp_->head ? static_cast<int64_t>(lowp_->lm_head.bytes()) : V * C * 4);
}

}  // namespace lldl
