// GPT generation with a KV cache on a device graph (Backend::CUDA), through
// the ops.
//
// The CPU path (gpt_infer.cpp) runs its own loops on host pointers; here the
// weights are device memory, so each step is recorded on the model's own
// graph and run by the backend's kernels. The cache of layer l holds the
// qkv rows [B, block_size, 3C] of every position so far, in device memory
// owned by GptDeviceInfer: a step's new rows are copied into it (one device
// copy per sequence and layer), and the causal_attention op runs over the
// cached prefix [B, len + n, 3C] (a slice), of which only the last n rows
// are kept. The MLP, projections and LM head see only the new rows, as on
// the CPU; the attention recomputes the scores of every cached row (O(len^2)
// per token instead of O(len)): correct, and cheap next to the weight reads
// at short contexts, but a decode-attention kernel is the next step.
//
// Per token the logits [B, vocab] are copied back to the host, where
// sampling runs (models/sampling.cpp), and the next ids go back up.
// Generating resets the graph's current step (a pending loss() is lost) and
// runs with memory planning off (restored after).
#include <algorithm>
#include <vector>

#include "autograd/functions.h"
#include "backends/device.h"
#include "core/error.h"
#include "models/gpt.h"
#include "models/lm_common.h"
#include "models/sampling.h"

namespace lldl {

struct GptDeviceInfer {
  const GPT& m;
  Graph& g;
  const DeviceFns& dev;
  int64_t B, C, H, block, len = 0;
  std::vector<float*> cache;  // per layer: [B, block, 3C] qkv rows
  bool planning;
  std::vector<int32_t> pos;

  GptDeviceInfer(const GPT& model, int64_t batch)
      : m(model), g(const_cast<Graph&>(model.g_)), dev(device(model.g_.backend())), B(batch),
        C(model.cfg_.n_embd), H(model.cfg_.n_head), block(model.cfg_.block_size),
        planning(g.memory_planning()) {
    g.reset(/*keep_grads=*/true);
    g.set_memory_planning(false);
    try {
      for (int64_t l = 0; l < model.cfg_.n_layer; ++l)
        cache.push_back(static_cast<float*>(dev.alloc(sizeof(float) * B * block * 3 * C)));
    } catch (...) {
      release();
      throw;
    }
  }
  ~GptDeviceInfer() { release(); }
  void release() {
    for (float* p : cache) dev.free(p);
    cache.clear();
    g.reset(/*keep_grads=*/true);
    g.set_memory_planning(planning);
  }

  // Tokens toks [B, n] (row b: sequence b) at positions len .. len+n-1
  // through the network; the logits of each sequence's last row go to
  // logits [B, vocab] (host). Then len += n.
  void run(const int32_t* toks, int64_t n, float* logits) {
    if (len + n > block) throw ValueError("gpt: KV cache is full (block_size reached)");
    g.reset(/*keep_grads=*/true);
    const float eps = static_cast<float>(m.cfg_.layer_norm_epsilon);
    pos.resize(static_cast<size_t>(B * n));
    for (int64_t i = 0; i < B * n; ++i) pos[i] = static_cast<int32_t>(len + i % n);
    Tensor ids = g.input(Shape{B, n}, toks, DType::I32);
    Tensor ps = g.input(Shape{B, n}, pos.data(), DType::I32);
    Tensor x = reshape(add(embedding(ids, m.wte_), embedding(ps, m.wpe_)), Shape{B * n, C});
    for (size_t l = 0; l < m.h_.size(); ++l) {
      const GPT::Block& b = m.h_[l];
      Tensor qkv = linear(layer_norm(x, b.ln1_w, b.ln1_b, eps), b.attn_w, b.attn_b);
      const float* q = g.data<float>(qkv);
      for (int64_t s = 0; s < B; ++s)
        dev.copy(cache[l] + (s * block + len) * 3 * C, q + s * n * 3 * C,
                 sizeof(float) * n * 3 * C);
      Tensor all = slice(g.backend_view(Shape{B, block, 3 * C}, cache[l], DType::F32), 1, 0, len + n);
      Tensor a = slice(causal_attention(all, static_cast<int>(H)), 1, len, n);
      x = add(x, linear(reshape(a, Shape{B * n, C}), b.proj_w, b.proj_b));
      Tensor h = gelu(linear(layer_norm(x, b.ln2_w, b.ln2_b, eps), b.fc_w, b.fc_b));
      x = add(x, linear(h, b.mlp_w, b.mlp_b));
    }
    Tensor last = reshape(slice(reshape(x, Shape{B, n, C}), 1, n - 1, 1), Shape{B, C});
    Tensor lg = matmul(layer_norm(last, m.lnf_w_, m.lnf_b_, eps), m.wte_, false, true);
    g.to_host(lg, logits);
    len += n;
  }
};

std::vector<float> GPT::logits_through_ops(const std::vector<int32_t>& seq, bool stepwise) const {
  const int64_t T = static_cast<int64_t>(seq.size()), V = cfg_.vocab_size;
  GptDeviceInfer inf(*this, 1);
  if (!stepwise) {
    std::vector<float> out(static_cast<size_t>(V));
    inf.run(seq.data(), T, out.data());
    return out;
  }
  std::vector<float> out(static_cast<size_t>(T * V));
  for (int64_t t = 0; t < T; ++t) inf.run(&seq[t], 1, out.data() + t * V);
  return out;
}

std::vector<std::vector<int32_t>> GPT::generate_through_ops(std::vector<std::vector<int32_t>> seqs,
                                                       int64_t max_new, float temperature,
                                                       int64_t top_k, uint64_t seed, float top_p,
                                                       int64_t sample_vocab) const {
  const int64_t B = static_cast<int64_t>(seqs.size()), V = cfg_.vocab_size;
  const int64_t SV = sample_vocab ? sample_vocab : V;
  std::vector<float> logits(static_cast<size_t>(B * V));
  std::vector<int32_t> next(static_cast<size_t>(B)), rows;
  GptDeviceInfer inf(*this, B);
  std::vector<Rng> rngs;
  for (int64_t b = 0; b < B; ++b) rngs.emplace_back(seed + static_cast<uint64_t>(b));
  // The last `keep` tokens of every sequence into an empty cache, as one
  // batch (the prompts have equal lengths).
  auto prefill = [&](size_t keep) {
    inf.len = 0;
    rows.clear();
    for (const auto& s : seqs) rows.insert(rows.end(), s.end() - static_cast<int64_t>(keep), s.end());
    inf.run(rows.data(), static_cast<int64_t>(keep), logits.data());
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
      inf.run(next.data(), 1, logits.data());
  }
  return seqs;
}

}  // namespace lldl
