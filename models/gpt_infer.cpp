// GPT generation with a KV cache, outside the tape.
//
// Each new token runs the network on one position: its key and value rows
// are appended to the cache of every layer, and its query attends over the
// cached keys (all earlier positions, so no mask is needed). The layer norm
// and GELU are the backend's own forward kernels called directly, so the
// cached path computes what forward() computes, one row at a time.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/backend.h"
#include "core/error.h"
#include "models/gpt.h"
#include "models/lm_common.h"
#include "models/sampling.h"

namespace lldl {

namespace {
using RowVec = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMat = Eigen::Map<const MatR>;
using CRow = Eigen::Map<const RowVec>;
using Row = Eigen::Map<RowVec>;
}  // namespace

struct GptInfer {
  const GPTConfig& cfg;
  Graph& g;  // read only: parameters
  const GPT& m;
  int64_t C, H, D, len = 0;
  std::vector<float> k, v;  // [n_layer][block_size][C]
  std::vector<float> x, h, qkv, att, fc, scores, ln_ws;

  explicit GptInfer(const GPT& model)
      : cfg(model.cfg_), g(const_cast<Graph&>(model.g_)), m(model), C(cfg.n_embd),
        H(cfg.n_head), D(cfg.n_embd / cfg.n_head),
        k(static_cast<size_t>(cfg.n_layer * cfg.block_size * C)), v(k.size()), x(C), h(C),
        qkv(3 * C), att(C), fc(4 * C), scores(cfg.block_size), ln_ws(2) {}

  const float* P(Tensor t) { return g.data<float>(t); }

  // out[0:n] = ln(in) with weight w and bias b, through the backend kernel.
  void layer_norm_row(const float* in, Tensor w, Tensor b, float* out) {
    KernelArgs a{};
    a.kind = OpKind::LayerNorm;
    a.attr = layer_norm_attr(1e-5f);
    a.n_in = 3;
    a.in[0] = in;
    a.in_shape[0] = Shape{1, C};
    a.in[1] = P(w);
    a.in_shape[1] = Shape{C};
    a.in[2] = P(b);
    a.in_shape[2] = Shape{C};
    a.out = out;
    a.out_shape = Shape{1, C};
    a.ws = ln_ws.data();
    kernels(Backend::CPU, DType::F32, OpKind::LayerNorm).forward(a);
  }
  void gelu_inplace(float* p, int64_t n) {
    KernelArgs a{};
    a.kind = OpKind::Gelu;
    a.n_in = 1;
    a.in[0] = p;
    a.in_shape[0] = Shape{1, n};
    a.out = p;
    a.out_shape = Shape{1, n};
    kernels(Backend::CPU, DType::F32, OpKind::Gelu).forward(a);
  }
  // out = in @ W + b, W [n_in, n_out] row-major.
  void dense(const float* in, Tensor w, Tensor b, int64_t n_in, int64_t n_out, float* out) {
    Row(out, n_out).noalias() = CRow(in, n_in) * CMat(P(w), n_in, n_out);
    Row(out, n_out) += CRow(P(b), n_out);
  }

  // Runs token `tok` at position len; writes the logits (vocab_size floats).
  void step(int32_t tok, float* logits) {
    if (len >= cfg.block_size) throw ValueError("gpt: KV cache is full (block_size reached)");
    const int64_t pos = len;
    Row(x.data(), C) = CRow(P(m.wte_) + tok * C, C) + CRow(P(m.wpe_) + pos * C, C);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      const auto& b = m.h_[l];
      float* kc = k.data() + l * cfg.block_size * C;
      float* vc = v.data() + l * cfg.block_size * C;
      layer_norm_row(x.data(), b.ln1_w, b.ln1_b, h.data());
      dense(h.data(), b.attn_w, b.attn_b, C, 3 * C, qkv.data());
      std::copy(qkv.begin() + C, qkv.begin() + 2 * C, kc + pos * C);
      std::copy(qkv.begin() + 2 * C, qkv.end(), vc + pos * C);
      for (int64_t hd = 0; hd < H; ++hd) {
        const float* q = qkv.data() + hd * D;
        float mx = -INFINITY;
        for (int64_t s = 0; s <= pos; ++s) {
          float dot = 0;
          const float* ks = kc + s * C + hd * D;
          for (int64_t d = 0; d < D; ++d) dot += q[d] * ks[d];
          scores[s] = dot * scale;
          mx = std::max(mx, scores[s]);
        }
        float total = 0;
        for (int64_t s = 0; s <= pos; ++s) total += scores[s] = std::exp(scores[s] - mx);
        float* o = att.data() + hd * D;
        std::fill(o, o + D, 0.0f);
        for (int64_t s = 0; s <= pos; ++s) {
          const float w = scores[s] / total, *vs = vc + s * C + hd * D;
          for (int64_t d = 0; d < D; ++d) o[d] += w * vs[d];
        }
      }
      dense(att.data(), b.proj_w, b.proj_b, C, C, h.data());
      Row(x.data(), C) += CRow(h.data(), C);
      layer_norm_row(x.data(), b.ln2_w, b.ln2_b, h.data());
      dense(h.data(), b.fc_w, b.fc_b, C, 4 * C, fc.data());
      gelu_inplace(fc.data(), 4 * C);
      dense(fc.data(), b.mlp_w, b.mlp_b, 4 * C, C, h.data());
      Row(x.data(), C) += CRow(h.data(), C);
    }
    layer_norm_row(x.data(), m.lnf_w_, m.lnf_b_, h.data());
    Eigen::Map<Eigen::VectorXf>(logits, cfg.vocab_size).noalias() =
        CMat(P(m.wte_), cfg.vocab_size, C) * Eigen::Map<const Eigen::VectorXf>(h.data(), C);
    ++len;
  }
};

std::vector<float> GPT::cached_logits(const std::vector<int32_t>& seq) const {
  check_tokens(seq.data(), 1, static_cast<int64_t>(seq.size()));
  GptInfer inf(*this);
  std::vector<float> out(seq.size() * static_cast<size_t>(cfg_.vocab_size));
  for (size_t t = 0; t < seq.size(); ++t) inf.step(seq[t], out.data() + t * cfg_.vocab_size);
  return out;
}

std::vector<int32_t> GPT::generate(const std::vector<int32_t>& prompt, int64_t max_new,
                                   float temperature, int64_t top_k, uint64_t seed) const {
  check_generate_args("gpt", prompt, max_new, temperature, top_k, cfg_.vocab_size);
  std::vector<int32_t> seq = prompt;
  std::vector<float> logits(static_cast<size_t>(cfg_.vocab_size));
  GptInfer inf(*this);
  Rng rng(seed);
  // Feeds seq[from:] into an empty cache; the last call leaves the logits of
  // the last token. Longer than the block: only the last half block is kept.
  auto prefill = [&](size_t from) {
    inf.len = 0;
    for (size_t t = from; t < seq.size(); ++t) inf.step(seq[t], logits.data());
  };
  const size_t block = static_cast<size_t>(cfg_.block_size);
  prefill(seq.size() > block ? seq.size() - block : 0);
  for (int64_t i = 0; i < max_new; ++i) {
    int32_t next = sample_token(logits.data(), cfg_.vocab_size, temperature, top_k, rng);
    seq.push_back(next);
    if (i + 1 == max_new) break;
    if (inf.len == cfg_.block_size)
      prefill(seq.size() - std::max<size_t>(1, block / 2));
    else
      inf.step(next, logits.data());
  }
  return seq;
}

}  // namespace lldl
