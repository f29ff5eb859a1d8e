#include "models/gpt.h"

#include <charconv>
#include <cmath>
#include <string>

#include "autograd/init.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/lm_common.h"

namespace lldl {
namespace {

// The shortest decimal that reads back as exactly v.
std::string shortest(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

double metadata_real(const std::map<std::string, std::string>& m, const std::string& key) {
  const std::string& s = m.at(key);
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size())
    throw ValueError("checkpoint metadata '" + key + "' is not a number: '" + s + "'");
  return v;
}

}  // namespace

void GPTConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v < 1) throw ValueError(std::string("GPTConfig: ") + name + " must be >= 1, got " +
                                std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("block_size", block_size);
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  positive("n_embd", n_embd);
  if (n_embd % n_head)
    throw ValueError("GPTConfig: n_embd (" + std::to_string(n_embd) +
                     ") must be divisible by n_head (" + std::to_string(n_head) + ")");
  if (!std::isfinite(layer_norm_epsilon) || layer_norm_epsilon < 0)
    throw ValueError("GPTConfig: layer_norm_epsilon must be finite and >= 0, got " +
                     std::to_string(layer_norm_epsilon));
  if (vocab_size > INT32_MAX || block_size > (int64_t(1) << 20) || n_embd > (int64_t(1) << 16))
    throw ValueError("GPTConfig: sizes too large (vocab_size " + std::to_string(vocab_size) +
                     ", block_size " + std::to_string(block_size) + ", n_embd " +
                     std::to_string(n_embd) + ")");
}

std::map<std::string, std::string> GPTConfig::to_metadata() const {
  return {{"lldl.model", "gpt"},
          {"vocab_size", std::to_string(vocab_size)},
          {"block_size", std::to_string(block_size)},
          {"n_layer", std::to_string(n_layer)},
          {"n_head", std::to_string(n_head)},
          {"n_embd", std::to_string(n_embd)},
          {"layer_norm_epsilon", shortest(layer_norm_epsilon)}};
}

GPTConfig GPTConfig::from_metadata(const std::map<std::string, std::string>& m) {
  check_model_kind(m, "gpt");
  GPTConfig c;
  c.vocab_size = metadata_int(m, "vocab_size");
  c.block_size = metadata_int(m, "block_size");
  c.n_layer = metadata_int(m, "n_layer");
  c.n_head = metadata_int(m, "n_head");
  c.n_embd = metadata_int(m, "n_embd");
  // Checkpoints written before the epsilon was configurable used GPT-2's.
  if (m.count("layer_norm_epsilon")) c.layer_norm_epsilon = metadata_real(m, "layer_norm_epsilon");
  c.validate();
  return c;
}

GPT::GPT(const GPTConfig& cfg, uint64_t seed, Backend backend) : GPT(cfg, Uninitialised{}, backend) {
  init_weights(seed);
}

GPT::GPT(const GPTConfig& cfg, Uninitialised, Backend backend) : LanguageModel(cfg, "gpt", backend) {
  const int64_t V = cfg.vocab_size, C = cfg.n_embd;
  wte_ = p("wte.weight", Shape{V, C});
  wpe_ = p("wpe.weight", Shape{cfg.block_size, C});
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    std::string h = "h." + std::to_string(i) + ".";
    Block b;
    b.ln1_w = p(h + "ln_1.weight", Shape{C});
    b.ln1_b = p(h + "ln_1.bias", Shape{C});
    b.attn_w = p(h + "attn.c_attn.weight", Shape{C, 3 * C});
    b.attn_b = p(h + "attn.c_attn.bias", Shape{3 * C});
    b.proj_w = p(h + "attn.c_proj.weight", Shape{C, C});
    b.proj_b = p(h + "attn.c_proj.bias", Shape{C});
    b.ln2_w = p(h + "ln_2.weight", Shape{C});
    b.ln2_b = p(h + "ln_2.bias", Shape{C});
    b.fc_w = p(h + "mlp.c_fc.weight", Shape{C, 4 * C});
    b.fc_b = p(h + "mlp.c_fc.bias", Shape{4 * C});
    b.mlp_w = p(h + "mlp.c_proj.weight", Shape{4 * C, C});
    b.mlp_b = p(h + "mlp.c_proj.bias", Shape{C});
    h_.push_back(b);
  }
  lnf_w_ = p("ln_f.weight", Shape{C});
  lnf_b_ = p("ln_f.bias", Shape{C});
}

void GPT::init_weights(uint64_t seed) {
  // GPT-2's initialisation: N(0, 0.02) weights, the projections into the
  // residual stream scaled by 1/sqrt(2 n_layer), zero biases, unit LN gains.
  const double std0 = 0.02, std_res = 0.02 / std::sqrt(2.0 * double(cfg_.n_layer));
  uint64_t s = seed;
  auto normal = [&](Tensor t, double sd) { init_normal(g_, t, 0.0, sd, s++); };
  auto ones = [&](Tensor t) { init_uniform(g_, t, 1.0, 1.0, 0); };
  normal(wte_, std0);
  normal(wpe_, 0.01);
  for (const Block& b : h_) {
    ones(b.ln1_w);
    ones(b.ln2_w);
    normal(b.attn_w, std0);
    normal(b.proj_w, std_res);
    normal(b.fc_w, std0);
    normal(b.mlp_w, std_res);
  }
  ones(lnf_w_);
}

void GPT::check_tokens(const int32_t* idx, int64_t B, int64_t T) const {
  check_token_ids("gpt", idx, B, T, cfg_.vocab_size, cfg_.block_size);
}

Tensor GPT::forward(const int32_t* idx, int64_t B, int64_t T) {
  check_tokens(idx, B, T);
  g_.reset(/*keep_grads=*/true);
  const int64_t BT = B * T;
  // The ids and positions are made on the host and copied to the graph's
  // memory (a copy within host memory on the CPU).
  Tensor ids = g_.input(Shape{B, T}, idx, DType::I32);
  pos_.resize(static_cast<size_t>(BT));
  positions(B, T, pos_.data());
  Tensor pos = g_.input(Shape{B, T}, pos_.data(), DType::I32);
  return forward_from(ids, pos, B, T);
}

Tensor GPT::forward_from(Tensor ids, Tensor pos, int64_t B, int64_t T) {
  const int64_t C = cfg_.n_embd, BT = B * T;
  const float eps = static_cast<float>(cfg_.layer_norm_epsilon);
  Tensor x = reshape(add(embedding(ids, wte_), embedding(pos, wpe_)), Shape{BT, C});
  for (const Block& b : h_) {
    // Attention sub-block: x + c_proj(attn(c_attn(ln_1(x)))).
    Tensor qkv = linear(layer_norm(x, b.ln1_w, b.ln1_b, eps), b.attn_w, b.attn_b);
    Tensor a = causal_attention(reshape(qkv, Shape{B, T, 3 * C}), static_cast<int>(cfg_.n_head));
    x = add(x, linear(reshape(a, Shape{BT, C}), b.proj_w, b.proj_b));
    // MLP sub-block: x + c_proj(gelu(c_fc(ln_2(x)))), gelu(c_fc) as one op
    // (linear_gelu: the bias + GELU epilogue fused after the GEMM on the GPU).
    Tensor h = linear_gelu(layer_norm(x, b.ln2_w, b.ln2_b, eps), b.fc_w, b.fc_b);
    x = add(x, linear(h, b.mlp_w, b.mlp_b));
  }
  // The LM head is the token embedding, transposed: logits = x wte^T.
  return matmul(layer_norm(x, lnf_w_, lnf_b_, eps), wte_, false, true);
}

double GPT::loss(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T) {
  check_tokens(targets, B, T);
  Tensor logits = forward(idx, B, T);
  Tensor y = g_.input(Shape{B * T}, targets, DType::I32);
  loss_ = cross_entropy(logits, y);
  return g_.item(loss_);
}

Tensor GPT::loss_from(Tensor ids, Tensor pos, Tensor targets, int64_t B, int64_t T) {
  loss_ = cross_entropy(forward_from(ids, pos, B, T), targets);
  return loss_;
}

void GPT::positions(int64_t B, int64_t T, int32_t* out) {
  for (int64_t i = 0; i < B * T; ++i) out[i] = static_cast<int32_t>(i % T);
}

}  // namespace lldl
