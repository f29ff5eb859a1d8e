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
  int64_t C, H, D, B, len = 0;  // B sequences, all at position len
  std::vector<float> k, v;      // [n_layer][B][block_size][C]
  std::vector<float> scores, ln_ws;

  GptInfer(const GPT& model, int64_t batch)
      : cfg(model.cfg_), g(const_cast<Graph&>(model.g_)), m(model), C(cfg.n_embd),
        H(cfg.n_head), D(cfg.n_embd / cfg.n_head), B(batch),
        k(static_cast<size_t>(cfg.n_layer * batch * cfg.block_size * C)), v(k.size()),
        scores(cfg.block_size), ln_ws(2) {}

  const float* P(Tensor t) { return g.data<float>(t); }
  // Layer l's cache of sequence b: [block_size][C].
  float* kc(int64_t l, int64_t b) { return k.data() + (l * B + b) * cfg.block_size * C; }
  float* vc(int64_t l, int64_t b) { return v.data() + (l * B + b) * cfg.block_size * C; }

  // rows x C of out = ln(in) with weight w and bias b, through the
  // layer_norm op's kernel (one row: the step; several: a prefill).
  void layer_norm_rows(const float* in, Tensor w, Tensor b, float* out, int64_t rows) {
    if (ln_ws.size() < static_cast<size_t>(2 * rows)) ln_ws.resize(static_cast<size_t>(2 * rows));
    forward_direct(OpKind::LayerNorm, layer_norm_attr(static_cast<float>(cfg.layer_norm_epsilon)),
                   {{in, Shape{rows, C}}, {P(w), Shape{C}}, {P(b), Shape{C}}}, out, ln_ws.data());
  }
  void gelu_inplace(float* p, int64_t n) {
    forward_direct(OpKind::Gelu, no_attr(), {{p, Shape{1, n}}}, p);
  }
  // out (rows x n_out) = in (rows x n_in) @ W + b. A few rows (one token of
  // each sequence) make the product a matrix-vector one that reads all of W
  // per token, bound by memory bandwidth: the output columns are split over
  // the threads so that every core streams its own part of W.
  // With packed weights (set_inference_precision), lowp_matmul instead.
  void dense_rows(const float* in, Tensor w, Tensor b, int64_t rows, int64_t n_in, int64_t n_out,
                  float* out, const LowpMatrix* packed) {
    if (packed) return lowp_matmul(in, rows, n_in, *packed, P(b), out, n_out);
    Eigen::Map<MatR> O(out, rows, n_out);
    CMat W(P(w), n_in, n_out), X(in, rows, n_in);
    const int64_t cols = 256, parts = (n_out + cols - 1) / cols;
#pragma omp parallel for schedule(static) if (rows <= 16 && n_in * n_out >= (1 << 18))
    for (int64_t j = 0; j < parts; ++j) {
      const int64_t c0 = j * cols, w_ = std::min(cols, n_out - c0);
      O.middleCols(c0, w_).noalias() = X * W.middleCols(c0, w_);
    }
    O.rowwise() += CRow(P(b), n_out);
  }
  // logits (rows x vocab) = x (rows x C) @ wte^T, split over vocabulary rows.
  void lm_head(const float* x, int64_t rows, float* logits) {
    const int64_t V = cfg.vocab_size, part = 1024, parts = (V + part - 1) / part;
    if (m.lowp_ && m.lowp_->head) return lowp_matmul(x, rows, C, m.lowp_->lm_head, nullptr, logits, V);
    CMat E(P(m.wte_), V, C), X(x, rows, C);
    Eigen::Map<MatR> L(logits, rows, V);
#pragma omp parallel for schedule(static) if (rows <= 16 && V * C >= (1 << 18))
    for (int64_t j = 0; j < parts; ++j) {
      const int64_t v0 = j * part, n = std::min(part, V - v0);
      L.middleCols(v0, n).noalias() = X * E.middleRows(v0, n).transpose();
    }
  }
  // One head's attention output o[0:D] for query q at position pos over the
  // cached keys and values of positions 0..pos (kcache, vcache: one
  // sequence's cache in one layer).
  void attend(const float* q, const float* kcache, const float* vcache, int64_t pos, int64_t hd,
              float* o) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    float mx = -INFINITY;
    for (int64_t s = 0; s <= pos; ++s) {
      float dot = 0;
      const float* ks = kcache + s * C + hd * D;
      for (int64_t d = 0; d < D; ++d) dot += q[d] * ks[d];
      scores[s] = dot * scale;
      mx = std::max(mx, scores[s]);
    }
    float total = 0;
    for (int64_t s = 0; s <= pos; ++s) total += scores[s] = std::exp(scores[s] - mx);
    std::fill(o, o + D, 0.0f);
    for (int64_t s = 0; s <= pos; ++s) {
      const float w = scores[s] / total, *vs = vcache + s * C + hd * D;
      for (int64_t d = 0; d < D; ++d) o[d] += w * vs[d];
    }
  }

  // The network over n rows. Row r is token toks[r] of sequence seq(r) at
  // position pos(r); its key and value go to that sequence's cache before it
  // attends, so a row sees the rows of its sequence before it. Writes the
  // logits of the rows listed in `out_rows` (in that order).
  template <class Seq, class Pos>
  void run_rows(const int32_t* toks, int64_t n, Seq seq, Pos pos,
                const std::vector<int64_t>& out_rows, float* logits) {
    MatR X(n, C), Hn(n, C), QKV(n, 3 * C), ATT(n, C), FC(n, 4 * C), O(n, C);
    for (int64_t r = 0; r < n; ++r)
      X.row(r) = CRow(P(m.wte_) + toks[r] * C, C) + CRow(P(m.wpe_) + pos(r) * C, C);
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      const auto& b = m.h_[l];
      auto packed = [&](int i) { return m.lowp_ ? &m.lowp_->blocks[l][i] : nullptr; };
      layer_norm_rows(X.data(), b.ln1_w, b.ln1_b, Hn.data(), n);
      dense_rows(Hn.data(), b.attn_w, b.attn_b, n, C, 3 * C, QKV.data(), packed(0));
      for (int64_t r = 0; r < n; ++r) {
        const float* row = QKV.data() + r * 3 * C;
        std::copy(row + C, row + 2 * C, kc(l, seq(r)) + pos(r) * C);
        std::copy(row + 2 * C, row + 3 * C, vc(l, seq(r)) + pos(r) * C);
      }
      for (int64_t r = 0; r < n; ++r)
        for (int64_t hd = 0; hd < H; ++hd)
          attend(QKV.data() + r * 3 * C + hd * D, kc(l, seq(r)), vc(l, seq(r)), pos(r), hd,
                 ATT.data() + r * C + hd * D);
      dense_rows(ATT.data(), b.proj_w, b.proj_b, n, C, C, O.data(), packed(1));
      X += O;
      layer_norm_rows(X.data(), b.ln2_w, b.ln2_b, Hn.data(), n);
      dense_rows(Hn.data(), b.fc_w, b.fc_b, n, C, 4 * C, FC.data(), packed(2));
      gelu_inplace(FC.data(), n * 4 * C);
      dense_rows(FC.data(), b.mlp_w, b.mlp_b, n, 4 * C, C, O.data(), packed(3));
      X += O;
    }
    const int64_t k_out = static_cast<int64_t>(out_rows.size());
    MatR last(k_out, C), normed(k_out, C);
    for (int64_t i = 0; i < k_out; ++i) last.row(i) = X.row(out_rows[i]);
    layer_norm_rows(last.data(), m.lnf_w_, m.lnf_b_, normed.data(), k_out);
    lm_head(normed.data(), k_out, logits);
  }

  // Sequence b's tokens toks[0:n] at positions len .. len+n-1 in one pass (a
  // prefill: the weights are read once for all n rows); the logits of the
  // last token go to `logits`. len advances when every sequence is filled
  // (end_prefill). The same arithmetic as n steps, but for the order of
  // additions inside the products.
  void prefill(int64_t b, const int32_t* toks, int64_t n, float* logits) {
    if (n < 1) return;
    if (len + n > cfg.block_size) throw ValueError("gpt: KV cache is full (block_size reached)");
    run_rows(toks, n, [b](int64_t) { return b; }, [this](int64_t r) { return len + r; },
             {n - 1}, logits);
  }
  void end_prefill(int64_t n) { len += n; }

  // One token of every sequence (toks[B]) at position len; logits [B, vocab].
  void step(const int32_t* toks, float* logits) {
    if (len >= cfg.block_size) throw ValueError("gpt: KV cache is full (block_size reached)");
    std::vector<int64_t> rows(static_cast<size_t>(B));
    for (int64_t r = 0; r < B; ++r) rows[r] = r;
    run_rows(toks, B, [](int64_t r) { return r; }, [this](int64_t) { return len; }, rows, logits);
    ++len;
  }
};

std::vector<float> GPT::cached_logits(const std::vector<int32_t>& seq) const {
  check_tokens(seq.data(), 1, static_cast<int64_t>(seq.size()));
  if (!device(g_.backend()).host_memory) return logits_through_ops(seq, /*stepwise=*/true);
  GptInfer inf(*this, 1);
  std::vector<float> out(seq.size() * static_cast<size_t>(cfg_.vocab_size));
  for (size_t t = 0; t < seq.size(); ++t) inf.step(&seq[t], out.data() + t * cfg_.vocab_size);
  return out;
}

std::vector<float> GPT::prefill_logits(const std::vector<int32_t>& seq) const {
  check_tokens(seq.data(), 1, static_cast<int64_t>(seq.size()));
  if (!device(g_.backend()).host_memory) return logits_through_ops(seq, /*stepwise=*/false);
  GptInfer inf(*this, 1);
  std::vector<float> out(static_cast<size_t>(cfg_.vocab_size));
  inf.prefill(0, seq.data(), static_cast<int64_t>(seq.size()), out.data());
  return out;
}

std::vector<int32_t> GPT::generate(const std::vector<int32_t>& prompt, int64_t max_new,
                                   float temperature, int64_t top_k, uint64_t seed,
                                   float top_p) const {
  return generate_batch({prompt}, max_new, temperature, top_k, seed, top_p)[0];
}

std::vector<std::vector<int32_t>> GPT::generate_batch(
    const std::vector<std::vector<int32_t>>& prompts, int64_t max_new, float temperature,
    int64_t top_k, uint64_t seed, float top_p, int64_t sample_vocab) const {
  if (prompts.empty()) throw ValueError("gpt: generate: no prompts (batch of 0)");
  const int64_t V = cfg_.vocab_size;
  if (sample_vocab < 0 || sample_vocab > V)
    throw ValueError("gpt: generate: sample_vocab must be in [0, vocab_size " + std::to_string(V) +
                     "] (0: all), got " + std::to_string(sample_vocab));
  const int64_t SV = sample_vocab ? sample_vocab : V;
  for (size_t b = 0; b < prompts.size(); ++b) {
    check_generate_args("gpt", prompts[b], max_new, temperature, top_k, V);
    if (prompts[b].size() != prompts[0].size())
      throw ValueError("gpt: generate: prompt " + std::to_string(b) + " has " +
                       std::to_string(prompts[b].size()) + " tokens but prompt 0 has " +
                       std::to_string(prompts[0].size()) + " (a batch needs equal lengths)");
  }
  check_top_p(top_p);
  // Weights in device memory: the same loop on the device (gpt_infer_device.cpp).
  if (!device(g_.backend()).host_memory)
    return generate_through_ops(prompts, max_new, temperature, top_k, seed, top_p, sample_vocab);
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int32_t>> seqs = prompts;
  std::vector<float> logits(static_cast<size_t>(B * V));
  std::vector<int32_t> next(static_cast<size_t>(B));
  GptInfer inf(*this, B);
  std::vector<Rng> rngs;
  for (int64_t b = 0; b < B; ++b) rngs.emplace_back(seed + static_cast<uint64_t>(b));
  // Feeds seqs[b][from:] of every sequence into an empty cache, leaving the
  // logits of each last token. Longer than the block: only the last part is
  // kept (all of the prompt that fits, then half a block).
  auto prefill = [&](size_t keep) {
    inf.len = 0;
    for (int64_t b = 0; b < B; ++b) {
      const size_t from = seqs[b].size() - keep;
      inf.prefill(b, seqs[b].data() + from, static_cast<int64_t>(keep), logits.data() + b * V);
    }
    inf.end_prefill(static_cast<int64_t>(keep));
  };
  const size_t block = static_cast<size_t>(cfg_.block_size);
  prefill(std::min(seqs[0].size(), block));
  for (int64_t i = 0; i < max_new; ++i) {
    for (int64_t b = 0; b < B; ++b) {
      next[b] = sample_token(logits.data() + b * V, SV, temperature, top_k, rngs[b], top_p);
      seqs[b].push_back(next[b]);
    }
    if (i + 1 == max_new) break;
    if (inf.len == cfg_.block_size)
      prefill(std::max<size_t>(1, block / 2));
    else
      inf.step(next.data(), logits.data());
  }
  return seqs;
}

}  // namespace lldl
