// A GPT in the GPT-2 layout, on lldl's tape.
//
//   token + learned position embeddings -> n_layer pre-LayerNorm blocks
//   (causal self-attention, then a 4x GELU MLP, each added to the residual
//   stream) -> final LayerNorm -> LM head tied to the token embedding.
//
// Parameter names and layouts are GPT-2's state dict (Conv1D weights stored
// input x output, so a layer is x @ W + b): wte.weight [V, C], wpe.weight
// [block, C], h.{i}.ln_1.{weight,bias} [C], h.{i}.attn.c_attn.weight [C, 3C]
// and .bias [3C], h.{i}.attn.c_proj.weight [C, C] and .bias, h.{i}.ln_2.*,
// h.{i}.mlp.c_fc.weight [C, 4C] and .bias [4C], h.{i}.mlp.c_proj.weight
// [4C, C] and .bias, ln_f.{weight,bias}. A GPT-2 safetensors checkpoint
// therefore loads as it is (its extra attn.bias mask buffers aside), and
// from_pretrained / save_pretrained read and write Hugging Face GPT-2
// directories (models/gpt_hf.cpp). The arithmetic is GPT-2's: the tanh GELU
// ("gelu_new"), LayerNorm with the config's epsilon, scores scaled by
// 1/sqrt(head size), logits with exactly vocab_size columns (no padding).
//
// One training step:  gpt.loss(x, y, B, T); gpt.backward(); clip; opt.step();
// Generation runs outside the tape with a KV cache (models/gpt_infer.cpp).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "backends/lowp.h"
#include "models/lm_base.h"

namespace lldl {

struct GPTConfig {
  int64_t vocab_size = 256, block_size = 128, n_layer = 4, n_head = 4, n_embd = 128;
  double layer_norm_epsilon = 1e-5;  // GPT-2's; applied in float32
  // Throws ValueError naming the field (sizes >= 1, n_embd divisible by
  // n_head, epsilon finite and >= 0).
  void validate() const;
  std::map<std::string, std::string> to_metadata() const;
  static GPTConfig from_metadata(const std::map<std::string, std::string>& m);
};

class GPT : public LanguageModel<GPT, GPTConfig> {
 public:
  // backend: where the parameters live and every step runs (Backend::CUDA:
  // the weights are drawn on the host, exactly as on the CPU, then copied,
  // so CPU and GPU runs of one seed start from the same model).
  explicit GPT(const GPTConfig& cfg, uint64_t seed = 1337, Backend backend = Backend::CPU);
  // Every parameter allocated and zero, for a caller about to load them all
  // (from_pretrained: skips GPT-2's random initialisation, seconds at 124M).
  struct Uninitialised {};
  GPT(const GPTConfig& cfg, Uninitialised, Backend backend = Backend::CPU);

  // Starts a new step (gradients kept) and records the forward pass of idx
  // [B, T] (row-major). Ids must be in [0, vocab_size) and T <= block_size
  // (ValueError otherwise). Returns the logits tensor [B*T, vocab_size].
  Tensor forward(const int32_t* idx, int64_t B, int64_t T);
  // forward, then the mean cross-entropy against targets [B, T]; remembers the
  // loss for backward() (models/lm_base.h). Returns its value.
  double loss(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T);
  // The same records on tensors already in the graph's step, without
  // starting one (a step captured by StepGraph, autograd/step_graph.h, whose
  // inputs are the ids, the positions and the targets): ids and pos int32
  // [B, T] (pos from positions()), targets int32 [B*T]. Remembers the loss
  // for backward() and returns it, unread.
  Tensor forward_from(Tensor ids, Tensor pos, int64_t B, int64_t T);
  Tensor loss_from(Tensor ids, Tensor pos, Tensor targets, int64_t B, int64_t T);
  // The position ids forward() uses: i % T for each of the B*T tokens.
  static void positions(int64_t B, int64_t T, int32_t* out);

  // Appends max_new tokens to `prompt` (non-empty, ids in range), sampling
  // with temperature / top-k / top-p (models/sampling.h), using a KV cache.
  // When the context fills block_size, the cache is rebuilt from the last
  // half block.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int64_t max_new,
                                float temperature, int64_t top_k, uint64_t seed,
                                float top_p = 1.0f) const;
  // The same for several prompts of equal length at once, one KV cache per
  // sequence: each step runs one token of every sequence through the network
  // together, so the weights are read once per step for the whole batch.
  // Sequence b samples with Rng(seed + b), so it matches generate(prompts[b],
  // ..., seed + b) up to the rounding of the batched products. sample_vocab
  // > 0 samples among the first sample_vocab ids only (a tokenizer smaller
  // than the model's vocabulary).
  std::vector<std::vector<int32_t>> generate_batch(const std::vector<std::vector<int32_t>>& prompts,
                                                   int64_t max_new, float temperature,
                                                   int64_t top_k, uint64_t seed,
                                                   float top_p = 1.0f,
                                                   int64_t sample_vocab = 0) const;
  // Logits [T, vocab] of every position of one sequence (T <= block_size),
  // computed token by token through the KV cache: equals forward()'s logits.
  std::vector<float> cached_logits(const std::vector<int32_t>& seq) const;
  // Logits [vocab] of the last token of seq (1 <= size <= block_size) through
  // one prefill of the KV cache (all positions at once, as generate() feeds a
  // prompt): equals forward()'s last row.
  std::vector<float> prefill_logits(const std::vector<int32_t>& seq) const;

  // A Hugging Face GPT-2 directory (config.json + model.safetensors, as
  // transformers' save_pretrained writes for GPT2LMHeadModel or GPT2Model;
  // F32, F16 or BF16 tensors). Every tensor must be present with the shape
  // the config implies, and nothing else (non-persistent attn.bias /
  // attn.masked_bias buffers aside); ValueError naming the key otherwise.
  // backend: where the loaded model lives (read on the host, then copied).
  static std::unique_ptr<GPT> from_pretrained(const std::string& dir, Backend backend = Backend::CPU);
  // Writes such a directory (GPT2LMHeadModel keys, lm_head tied and so not
  // stored), creating `dir` if needed; each file is written atomically.
  // precision "fp32" (F32 tensors) or "bf16" (BF16, rounded to nearest even:
  // half the bytes; from_pretrained widens them back exactly).
  void save_pretrained(const std::string& dir, const std::string& precision = "fp32") const;

  // Inference precision (issue 18). "bf16" or "int8" packs the four
  // matrices of every block and, with head = true, the LM head (the tied
  // wte; the embedding lookups stay float32) from the current float32
  // weights, once; generate, generate_batch, cached_logits and
  // prefill_logits then use them, with float32 activations, layer norms and
  // KV cache. forward(), loss() and training stay float32. "fp32" drops the
  // packed copies. They are a snapshot: weights changed afterwards (a
  // training step) are not seen until the next call. ValueError naming the
  // choices for an unknown name.
  void set_inference_precision(const std::string& name, bool head = true);
  std::string inference_precision() const;
  // LanguageModel::load, then the packed copies (if any) made again from
  // the loaded weights, in the same format.
  void load(const std::string& path);
  bool inference_head_packed() const { return lowp_ && lowp_->head; }
  // Bytes of weights one decode step reads in the current precision (every
  // parameter once, the embedding tables aside, plus the LM head): the
  // numerator of the bandwidth roofline.
  int64_t inference_weight_bytes() const;

  // The KV-cache generation that a device graph runs (generate_batch,
  // cached_logits and prefill_logits call these when the weights are not in
  // host memory): the steps recorded through the ops on the model's graph,
  // the cache in the backend's memory (models/gpt_infer_device.cpp). They
  // run on the CPU too, where tests check them against forward() and the
  // CPU's own generation. Arguments as checked by the callers above.
  std::vector<std::vector<int32_t>> generate_through_ops(std::vector<std::vector<int32_t>> seqs,
                                                         int64_t max_new, float temperature,
                                                         int64_t top_k, uint64_t seed, float top_p,
                                                         int64_t sample_vocab) const;
  // Logits through the op path's cache: [T, vocab] token by token
  // (stepwise), or [vocab] of the last token after one prefill.
  std::vector<float> logits_through_ops(const std::vector<int32_t>& seq, bool stepwise) const;

  // Checks ids and sizes before anything is recorded.
  void check_tokens(const int32_t* idx, int64_t B, int64_t T) const;

 private:
  Tensor wte_, wpe_, lnf_w_, lnf_b_;
  struct Block {
    Tensor ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, mlp_w, mlp_b;
  };
  std::vector<Block> h_;
  // The packed matrices of set_inference_precision: per block attn, proj, fc,
  // mlp as [out, in] rows.
  struct Lowp {
    WeightFormat format;
    bool head;
    std::vector<std::vector<LowpMatrix>> blocks;
    LowpMatrix lm_head;
  };
  std::shared_ptr<const Lowp> lowp_;
  std::vector<int32_t> pos_;  // forward(): the position ids, built on the host
  void init_weights(uint64_t seed);
  friend struct GptInfer;
  friend struct GptDeviceInfer;
};

}  // namespace lldl
