// GPT generation with a KV cache, outside the tape.
//
// Each new token runs the network on one position: its key and value rows
// are appended to the cache of every layer, and its query attends over the
// cached keys (all earlier positions, so no mask is needed). A prompt, and
// the half block kept when the context fills the block, go through the
// network together as a prefill (matrix products over their rows). The layer norm
// and GELU are the ops' own forward kernels run on these buffers
// (forward_direct, autograd/direct.h), so the cached path computes what
// forward() computes, one row at a time.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/direct.h"
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

  // rows x C of out = ln(in) with weight w and bias b, through the
  // layer_norm op's kernel (one row: the step; several: a prefill).
  void layer_norm_rows(const float* in, Tensor w, Tensor b, float* out, int64_t rows = 1) {
    if (ln_ws.size() < static_cast<size_t>(2 * rows)) ln_ws.resize(static_cast<size_t>(2 * rows));
    forward_direct(OpKind::LayerNorm, layer_norm_attr(1e-5f),
                   {{in, Shape{rows, C}}, {P(w), Shape{C}}, {P(b), Shape{C}}}, out, ln_ws.data());
  }
  void layer_norm_row(const float* in, Tensor w, Tensor b, float* out) {
    layer_norm_rows(in, w, b, out, 1);
  }
  void gelu_inplace(float* p, int64_t n) {
    forward_direct(OpKind::Gelu, no_attr(), {{p, Shape{1, n}}}, p);
  }
  // out (rows x n_out) = in (rows x n_in) @ W + b.
  void dense_rows(const float* in, Tensor w, Tensor b, int64_t rows, int64_t n_in, int64_t n_out,
                  float* out) {
    Eigen::Map<MatR> O(out, rows, n_out);
    O.noalias() = CMat(in, rows, n_in) * CMat(P(w), n_in, n_out);
    O.rowwise() += CRow(P(b), n_out);
  }
  // One head's attention output o[0:D] for query q at position pos over the
  // cached keys and values of positions 0..pos (kc, vc: the layer's cache).
  void attend(const float* q, const float* kc, const float* vc, int64_t pos, int64_t hd,
              float* o) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
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
    std::fill(o, o + D, 0.0f);
    for (int64_t s = 0; s <= pos; ++s) {
      const float w = scores[s] / total, *vs = vc + s * C + hd * D;
      for (int64_t d = 0; d < D; ++d) o[d] += w * vs[d];
    }
  }

  // Runs tokens toks[0:n] at positions len .. len+n-1 together (a prefill):
  // every product is a matrix product over the n rows, so the weights are
  // read once per layer rather than once per token. Writes the logits of the
  // last token only. The same arithmetic as n calls of step(), but for the
  // order of additions inside the products.
  void prefill(const int32_t* toks, int64_t n, float* logits) {
    if (n < 1) return;
    if (len + n > cfg.block_size) throw ValueError("gpt: KV cache is full (block_size reached)");
    MatR X(n, C), Hn(n, C), QKV(n, 3 * C), ATT(n, C), FC(n, 4 * C), O(n, C);
    for (int64_t t = 0; t < n; ++t)
      X.row(t) = CRow(P(m.wte_) + toks[t] * C, C) + CRow(P(m.wpe_) + (len + t) * C, C);
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      const auto& b = m.h_[l];
      float* kc = k.data() + l * cfg.block_size * C;
      float* vc = v.data() + l * cfg.block_size * C;
      layer_norm_rows(X.data(), b.ln1_w, b.ln1_b, Hn.data(), n);
      dense_rows(Hn.data(), b.attn_w, b.attn_b, n, C, 3 * C, QKV.data());
      for (int64_t t = 0; t < n; ++t) {
        std::copy(QKV.data() + t * 3 * C + C, QKV.data() + t * 3 * C + 2 * C, kc + (len + t) * C);
        std::copy(QKV.data() + t * 3 * C + 2 * C, QKV.data() + (t + 1) * 3 * C, vc + (len + t) * C);
      }
      for (int64_t t = 0; t < n; ++t)
        for (int64_t hd = 0; hd < H; ++hd)
          attend(QKV.data() + t * 3 * C + hd * D, kc, vc, len + t, hd, ATT.data() + t * C + hd * D);
      dense_rows(ATT.data(), b.proj_w, b.proj_b, n, C, C, O.data());
      X += O;
      layer_norm_rows(X.data(), b.ln2_w, b.ln2_b, Hn.data(), n);
      dense_rows(Hn.data(), b.fc_w, b.fc_b, n, C, 4 * C, FC.data());
      gelu_inplace(FC.data(), n * 4 * C);
      dense_rows(FC.data(), b.mlp_w, b.mlp_b, n, 4 * C, C, O.data());
      X += O;
    }
    layer_norm_row(X.data() + (n - 1) * C, m.lnf_w_, m.lnf_b_, h.data());
    Eigen::Map<Eigen::VectorXf>(logits, cfg.vocab_size).noalias() =
        CMat(P(m.wte_), cfg.vocab_size, C) * Eigen::Map<const Eigen::VectorXf>(h.data(), C);
    len += n;
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
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      const auto& b = m.h_[l];
      float* kc = k.data() + l * cfg.block_size * C;
      float* vc = v.data() + l * cfg.block_size * C;
      layer_norm_row(x.data(), b.ln1_w, b.ln1_b, h.data());
      dense(h.data(), b.attn_w, b.attn_b, C, 3 * C, qkv.data());
      std::copy(qkv.begin() + C, qkv.begin() + 2 * C, kc + pos * C);
      std::copy(qkv.begin() + 2 * C, qkv.end(), vc + pos * C);
      for (int64_t hd = 0; hd < H; ++hd) attend(qkv.data() + hd * D, kc, vc, pos, hd, att.data() + hd * D);
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

std::vector<float> GPT::prefill_logits(const std::vector<int32_t>& seq) const {
  check_tokens(seq.data(), 1, static_cast<int64_t>(seq.size()));
  GptInfer inf(*this);
  std::vector<float> out(static_cast<size_t>(cfg_.vocab_size));
  inf.prefill(seq.data(), static_cast<int64_t>(seq.size()), out.data());
  return out;
}

std::vector<int32_t> GPT::generate(const std::vector<int32_t>& prompt, int64_t max_new,
                                   float temperature, int64_t top_k, uint64_t seed) const {
  check_generate_args("gpt", prompt, max_new, temperature, top_k, cfg_.vocab_size);
  std::vector<int32_t> seq = prompt;
  std::vector<float> logits(static_cast<size_t>(cfg_.vocab_size));
  GptInfer inf(*this);
  Rng rng(seed);
  // Feeds seq[from:] into an empty cache in one prefill, which leaves the
  // logits of the last token. Longer than the block: only the last half
  // block is kept.
  auto prefill = [&](size_t from) {
    inf.len = 0;
    inf.prefill(seq.data() + from, static_cast<int64_t>(seq.size() - from), logits.data());
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
