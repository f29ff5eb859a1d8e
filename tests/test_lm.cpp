// The language models (GPT, char-LSTM), their sampling, training utilities
// and checkpoints. The PyTorch comparison lives in tests/python/test_lm_torch.py.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/optim.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/gpt.h"
#include "models/lm_train.h"
#include "models/lstm_lm.h"
#include "models/sampling.h"

using namespace lldl;

namespace {

GPTConfig tiny_gpt() { return GPTConfig{13, 8, 2, 2, 16}; }
LSTMConfig tiny_lstm() { return LSTMConfig{13, 8, 12}; }

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(r.below(vocab));
  return v;
}

std::string temp_file(const std::string& tag) {
  return "/tmp/lldl_test_lm_" + tag + "_" + std::to_string(::getpid()) + ".safetensors";
}

template <class Model>
std::vector<float> logits_of(Model& m, const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  Tensor l = m.forward(ids.data(), B, T);
  const float* p = m.graph().template data<float>(l);
  return std::vector<float>(p, p + m.graph().shape(l).numel());
}

template <class Model>
double overfit(Model& m, int steps) {
  // One fixed batch: a working model and optimiser drive its loss far down.
  auto x = random_ids(2 * 8, 13, 5), y = random_ids(2 * 8, 13, 6);
  OptimConfig c;
  c.kind = OptimKind::AdamW;
  c.lr = 1e-2f;
  c.weight_decay = 0.0f;
  Optimizer opt(m.graph(), c);
  double loss = 0;
  for (int i = 0; i < steps; ++i) {
    loss = m.loss(x.data(), y.data(), 2, 8);
    m.backward();
    opt.step();
    m.zero_grad();
  }
  return loss;
}

}  // namespace

TEST_CASE("gpt: parameter names and shapes follow the GPT-2 state dict") {
  GPT m(tiny_gpt());
  const auto& ps = m.named_params();
  REQUIRE(ps.size() == 2 + 12 * 2 + 2);
  CHECK(ps[0].first == "wte.weight");
  CHECK(m.graph().shape(ps[0].second) == Shape{13, 16});
  CHECK(ps[1].first == "wpe.weight");
  CHECK(m.graph().shape(ps[1].second) == Shape{8, 16});
  CHECK(ps[4].first == "h.0.attn.c_attn.weight");
  CHECK(m.graph().shape(ps[4].second) == Shape{16, 48});  // Conv1D: input x output
  CHECK(ps[10].first == "h.0.mlp.c_fc.weight");
  CHECK(m.graph().shape(ps[10].second) == Shape{16, 64});
  CHECK(ps[12].first == "h.0.mlp.c_proj.weight");
  CHECK(m.graph().shape(ps[12].second) == Shape{64, 16});
  CHECK(ps.back().first == "ln_f.bias");
  // 13*16 + 8*16 + 2 * (4*16 + 16*48 + 48 + 16*16 + 16 + 16*64 + 64 + 64*16 + 16) + 2*16
  CHECK(m.num_parameters() == 208 + 128 + 2 * 3280 + 32);
}

TEST_CASE("gpt: the loss at initialisation is close to ln(vocab)") {
  GPT m(tiny_gpt());
  auto x = random_ids(3 * 8, 13, 1), y = random_ids(3 * 8, 13, 2);
  double loss = m.loss(x.data(), y.data(), 3, 8);
  CHECK(std::abs(loss - std::log(13.0)) < 0.05);
}

TEST_CASE("gpt: logits are causal (a later token never changes an earlier position)") {
  GPT m(tiny_gpt());
  auto x = random_ids(8, 13, 3);
  std::vector<float> a = logits_of(m, x, 1, 8);
  x[5] = (x[5] + 1) % 13;
  std::vector<float> b = logits_of(m, x, 1, 8);
  for (int t = 0; t < 8; ++t) {
    double diff = 0;
    for (int v = 0; v < 13; ++v) diff = std::max(diff, double(std::abs(a[t * 13 + v] - b[t * 13 + v])));
    if (t < 5) CHECK(diff == 0.0);
    else CHECK(diff > 1e-6);
  }
}

TEST_CASE("gpt: KV-cached logits equal the full forward pass") {
  GPT m(tiny_gpt());
  // Parameters away from their initial values, so every path matters.
  overfit(m, 5);
  auto x = random_ids(8, 13, 4);
  std::vector<float> full = logits_of(m, x, 1, 8);
  std::vector<float> cached = m.cached_logits(x);
  REQUIRE(cached.size() == full.size());
  double worst = 0;
  for (size_t i = 0; i < full.size(); ++i) worst = std::max(worst, double(std::abs(full[i] - cached[i])));
  CHECK(worst < 1e-4);
}

TEST_CASE("gpt: a prefill of the KV cache gives the full forward pass's last logits") {
  // generate() feeds its prompt, and the half block it keeps once the
  // context fills the block, through one prefill (matrix products over all
  // positions); every length up to the block must match forward().
  GPT m(tiny_gpt());
  overfit(m, 5);
  for (int64_t n : {1, 2, 5, 8}) {
    CAPTURE(n);
    auto x = random_ids(n, 13, static_cast<uint64_t>(10 + n));
    std::vector<float> full = logits_of(m, x, 1, n);
    std::vector<float> pre = m.prefill_logits(x);
    REQUIRE(pre.size() == 13);
    double worst = 0;
    for (size_t v = 0; v < 13; ++v)
      worst = std::max(worst, double(std::abs(full[(n - 1) * 13 + v] - pre[v])));
    CHECK(worst < 1e-4);
  }
  CHECK_THROWS_AS(m.prefill_logits(random_ids(9, 13, 1)), ValueError);  // past the block
}

TEST_CASE("gpt and lstm: a fixed batch is overfitted") {
  GPT g(tiny_gpt());
  CHECK(overfit(g, 150) < 0.1);
  LSTMLM l(tiny_lstm());
  CHECK(overfit(l, 300) < 0.1);
}

TEST_CASE("lstm: stepwise logits equal the full forward pass") {
  // 10 tokens: forward projects each token; 20 (more than the vocabulary's
  // 13): it projects the embedding table and looks the rows up.
  LSTMLM m(tiny_lstm());
  overfit(m, 5);
  for (int64_t T : {10, 20}) {
    CAPTURE(T);
    auto x = random_ids(T, 13, 7);
    std::vector<float> full = logits_of(m, x, 1, T);
    std::vector<float> step = m.stepwise_logits(x);
    double worst = 0;
    for (size_t i = 0; i < full.size(); ++i) worst = std::max(worst, double(std::abs(full[i] - step[i])));
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("gpt and lstm: save then load gives identical logits, the file is checked") {
  std::string path = temp_file("roundtrip");
  GPT a(tiny_gpt(), 1);
  overfit(a, 3);
  a.save(path, {{"note", "x"}});
  std::map<std::string, std::string> meta;
  auto b = GPT::from_checkpoint(path, &meta);
  CHECK(meta["note"] == "x");
  CHECK(meta["n_layer"] == "2");
  auto x = random_ids(2 * 8, 13, 9);
  CHECK(logits_of(a, x, 2, 8) == logits_of(*b, x, 2, 8));

  // Another config cannot load it, and keeps its own parameters.
  GPT c(GPTConfig{13, 8, 1, 2, 16}, 2);
  std::vector<float> before = logits_of(c, x, 2, 8);
  CHECK_THROWS_AS(c.load(path), ValueError);
  CHECK(logits_of(c, x, 2, 8) == before);
  // An LSTM checkpoint is not a GPT.
  CHECK_THROWS_WITH_AS(LSTMLM::from_checkpoint(path), doctest::Contains("not an lldl lstm"),
                       ValueError);

  LSTMLM l(tiny_lstm(), 3);
  l.save(path);
  auto l2 = LSTMLM::from_checkpoint(path);
  CHECK(logits_of(l, x, 2, 8) == logits_of(*l2, x, 2, 8));

  // A truncated checkpoint is rejected and the model is unchanged.
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  std::vector<float> kept = logits_of(*l2, x, 2, 8);
  CHECK_THROWS_AS(l2->load(path), ValueError);
  CHECK(logits_of(*l2, x, 2, 8) == kept);
  std::remove(path.c_str());
}

TEST_CASE("gpt and lstm: bad input names the argument") {
  CHECK_THROWS_WITH_AS(GPT(GPTConfig{13, 8, 2, 3, 16}), doctest::Contains("n_embd (16) must be divisible by n_head (3)"), ValueError);
  CHECK_THROWS_WITH_AS(GPT(GPTConfig{0, 8, 2, 2, 16}), doctest::Contains("vocab_size"), ValueError);
  GPT m(tiny_gpt());
  auto x = random_ids(9, 13, 1);
  CHECK_THROWS_WITH_AS(m.forward(x.data(), 1, 9), doctest::Contains("longer than block_size 8"), ValueError);
  x[3] = 13;
  CHECK_THROWS_WITH_AS(m.forward(x.data(), 1, 8), doctest::Contains("token id 13 at [0, 3]"), ValueError);
  x[3] = -1;
  CHECK_THROWS_WITH_AS(m.forward(x.data(), 1, 8), doctest::Contains("token id -1"), ValueError);
  CHECK_THROWS_WITH_AS(m.forward(x.data(), 0, 8), doctest::Contains("empty batch"), ValueError);
  CHECK_THROWS_WITH_AS(m.backward(), doctest::Contains("needs a loss()"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate({}, 5, 1.0f, 5, 0), doctest::Contains("prompt is empty"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate({1}, 5, 1.0f, 0, 0), doctest::Contains("top_k must be >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate({1}, 5, -0.5f, 3, 0), doctest::Contains("temperature"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate({1}, 5, NAN, 3, 0), doctest::Contains("temperature"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate({1, 20}, 5, 1.0f, 3, 0), doctest::Contains("prompt token 20 at position 1"), ValueError);
  LSTMLM l(tiny_lstm());
  CHECK_THROWS_WITH_AS(l.generate({}, 5, 1.0f, 5, 0), doctest::Contains("prompt is empty"), ValueError);
  CHECK_THROWS_WITH_AS(LSTMLM(LSTMConfig{13, 0, 4}), doctest::Contains("n_embd"), ValueError);
}

TEST_CASE("gpt: generation is deterministic per seed, greedy at temperature 0, and runs past the block") {
  GPT m(tiny_gpt());
  overfit(m, 20);
  auto a = m.generate({1, 2, 3}, 20, 1.0f, 13, 42);
  auto b = m.generate({1, 2, 3}, 20, 1.0f, 13, 42);
  CHECK(a == b);
  REQUIRE(a.size() == 23);
  CHECK(std::vector<int32_t>(a.begin(), a.begin() + 3) == std::vector<int32_t>{1, 2, 3});
  for (int32_t t : a) CHECK((t >= 0 && t < 13));
  // Greedy: each token is the arg-max of the logits of the sequence so far.
  auto g = m.generate({4}, 6, 0.0f, 13, 0);
  for (size_t t = 1; t < g.size(); ++t) {
    std::vector<int32_t> prefix(g.begin(), g.begin() + t);
    std::vector<float> l = m.cached_logits(prefix);
    const float* last = l.data() + (t - 1) * 13;
    CHECK(g[t] == std::max_element(last, last + 13) - last);
  }
}

TEST_CASE("sampling: top-k never picks outside the k largest, temperature 0 is the arg-max") {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f, 0.7f};
  Rng r(1);
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits.data(), 5, 1.0f, 2, r)];
  CHECK(seen[0] + seen[2] + seen[4] == 0);
  // p(1) / p(3) = exp(0.5) at temperature 1.
  double ratio = double(seen[1]) / seen[3];
  CHECK(ratio == doctest::Approx(std::exp(0.5)).epsilon(0.15));
  CHECK(sample_token(logits.data(), 5, 0.0f, 1, r) == 1);
  logits[2] = NAN;
  CHECK_THROWS_AS(sample_token(logits.data(), 5, 1.0f, 5, r), ValueError);
}

TEST_CASE("clip_grad_norm and cosine_lr") {
  Graph g;
  Tensor a = g.param(Shape{2}), b = g.param(Shape{1});
  g.grad<float>(a)[0] = 3;
  g.grad<float>(a)[1] = 0;
  g.grad<float>(b)[0] = 4;
  CHECK(clip_grad_norm(g, 10.0) == doctest::Approx(5.0));
  CHECK(g.grad<float>(b)[0] == 4.0f);  // under the limit: unchanged
  CHECK(clip_grad_norm(g, 1.0) == doctest::Approx(5.0));
  CHECK(g.grad<float>(a)[0] == doctest::Approx(0.6));
  CHECK(g.grad<float>(b)[0] == doctest::Approx(0.8));
  CHECK_THROWS_AS(clip_grad_norm(g, 0.0), ValueError);
  g.grad<float>(b)[0] = NAN;
  CHECK_THROWS_WITH_AS(clip_grad_norm(g, 1.0), doctest::Contains("not finite"), ValueError);

  CHECK(cosine_lr(0, 10, 100, 1.0, 0.1) == doctest::Approx(0.1));
  CHECK(cosine_lr(9, 10, 100, 1.0, 0.1) == doctest::Approx(1.0));
  CHECK(cosine_lr(10, 10, 100, 1.0, 0.1) == doctest::Approx(1.0));
  CHECK(cosine_lr(99, 10, 100, 1.0, 0.1) == doctest::Approx(0.1));
  CHECK(cosine_lr(54, 10, 99, 1.0, 0.0) == doctest::Approx(0.5));  // halfway through the decay
  double prev = 2;
  for (int s = 10; s < 100; ++s) {
    double lr = cosine_lr(s, 10, 100, 1.0, 0.1);
    CHECK(lr <= prev);
    prev = lr;
  }
  CHECK_THROWS_AS(cosine_lr(0, 0, 0, 1.0, 0.1), ValueError);
  CHECK_THROWS_AS(cosine_lr(0, 0, 10, 1.0, 2.0), ValueError);
}

TEST_CASE("train_lm: validation loss falls and the checkpoint holds the final model") {
  // A corpus with structure a model can learn: "abcabc..." with noise.
  std::vector<int32_t> train, val;
  Rng r(3);
  for (int i = 0; i < 3000; ++i) train.push_back(i % 3 == 0 ? 1 : (i % 3 == 1 ? 2 : int32_t(r.below(2) + 3)));
  for (int i = 0; i < 600; ++i) val.push_back(i % 3 == 0 ? 1 : (i % 3 == 1 ? 2 : int32_t(r.below(2) + 3)));
  GPT m(GPTConfig{6, 8, 1, 2, 16});
  LMTrainConfig c;
  c.steps = 120;
  c.batch = 8;
  c.seq = 8;
  c.lr = 3e-3;
  c.min_lr = 3e-4;
  c.warmup = 10;
  c.eval_every = 40;
  c.eval_batches = 4;
  c.progress = false;
  c.out = temp_file("train");
  LMTrainLog log = train_lm(m, train, val, c, {{"tokenizer", "test"}});
  REQUIRE(log.val_loss.size() == 3);
  CHECK(log.eval_step == std::vector<int64_t>{40, 80, 120});
  // The entropy of this source is ln(2)/3 per token; untrained is ln(6).
  CHECK(log.val_loss.back() < 0.6);
  CHECK(log.val_loss.back() < log.val_loss.front());
  CHECK(log.tokens_per_s > 0);
  std::map<std::string, std::string> meta;
  auto back = GPT::from_checkpoint(c.out, &meta);
  CHECK(meta["train.step"] == "120");
  CHECK(meta["tokenizer"] == "test");
  CHECK(eval_lm(*back, val, 8, 8, 4, c.seed + 7919) == doctest::Approx(log.val_loss.back()).epsilon(1e-6));
  std::remove(c.out.c_str());

  LMTrainConfig bad = c;
  bad.steps = 0;
  CHECK_THROWS_WITH_AS(train_lm(m, train, val, bad), doctest::Contains("steps must be >= 1"), ValueError);
}

TEST_CASE("sampling: top-p keeps the fewest most probable tokens that reach p") {
  // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  auto counts = [&](float top_p) {
    Rng r(7);
    std::vector<int> seen(4, 0);
    for (int i = 0; i < 3000; ++i) ++seen[sample_token(logits.data(), 4, 1.0f, 4, r, top_p)];
    return seen;
  };
  std::vector<int> half = counts(0.4f);  // 0.5 alone reaches 0.4
  CHECK(half[0] == 3000);
  std::vector<int> two = counts(0.7f);   // 0.5 + 0.3 reach 0.7
  CHECK(two[2] + two[3] == 0);
  CHECK(double(two[0]) / two[1] == doctest::Approx(0.5 / 0.3).epsilon(0.15));
  std::vector<int> three = counts(0.9f);
  CHECK(three[3] == 0);
  CHECK(three[2] > 0);
  std::vector<int> all = counts(1.0f);
  CHECK(all[3] > 0);
  // With top-k the nucleus is taken over the renormalised top k: 0.5 / 0.8 < 0.7.
  Rng r(3);
  std::vector<int> seen(4, 0);
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits.data(), 4, 1.0f, 2, r, 0.7f)];
  CHECK(seen[1] > 0);
  CHECK(seen[2] + seen[3] == 0);
  for (float bad : {0.0f, -0.5f, 1.5f, NAN})
    CHECK_THROWS_WITH_AS(sample_token(logits.data(), 4, 1.0f, 4, r, bad), doctest::Contains("top_p"),
                         ValueError);
}

TEST_CASE("gpt: batched generation equals one sequence at a time, past the block too") {
  GPT m(tiny_gpt());
  overfit(m, 20);
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4, 5, 6}, {7, 7, 0}};
  for (float temp : {0.0f, 1.0f}) {
    auto batch = m.generate_batch(prompts, 20, temp, 13, 42, 0.9f);  // 23 > block_size 8
    REQUIRE(batch.size() == 3);
    for (size_t b = 0; b < prompts.size(); ++b)
      CHECK(batch[b] == m.generate(prompts[b], 20, temp, 13, 42 + b, 0.9f));
  }
  // Only the first sample_vocab ids are drawn.
  auto few = m.generate_batch(prompts, 30, 1.5f, 13, 1, 1.0f, 4);
  for (const auto& row : few)
    for (size_t t = 3; t < row.size(); ++t) CHECK(row[t] < 4);
  CHECK_THROWS_WITH_AS(m.generate_batch({{1, 2}, {3}}, 2, 1.0f, 13, 0),
                       doctest::Contains("equal lengths"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate_batch({}, 2, 1.0f, 13, 0), doctest::Contains("no prompts"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate({1}, 2, 1.0f, 13, 0, 0.0f), doctest::Contains("top_p"), ValueError);
  CHECK_THROWS_WITH_AS(m.generate_batch({{1}}, 2, 1.0f, 13, 0, 1.0f, 14),
                       doctest::Contains("sample_vocab"), ValueError);
}

namespace {

// A corpus with structure; the same for every run.
std::vector<int32_t> pattern_tokens(int n, uint64_t seed) {
  std::vector<int32_t> t;
  Rng r(seed);
  for (int i = 0; i < n; ++i) t.push_back(i % 3 == 0 ? 1 : (i % 3 == 1 ? 2 : int32_t(r.below(2) + 3)));
  return t;
}

LMTrainConfig small_run() {
  LMTrainConfig c;
  c.steps = 10;
  c.batch = 4;
  c.seq = 8;
  c.lr = 3e-3;
  c.min_lr = 3e-4;
  c.warmup = 3;
  c.eval_every = 0;
  c.progress = false;
  return c;
}

std::vector<std::vector<float>> weights(const GPT& m) {
  std::vector<std::vector<float>> w;
  for (const auto& [name, t] : m.named_params()) w.push_back(m.graph().host_data<float>(t));
  return w;
}

}  // namespace

TEST_CASE("train_lm: N micro-batches of B equal one step at N*B") {
  auto train = pattern_tokens(2000, 3);
  LMTrainConfig one = small_run();
  one.steps = 4;
  one.batch = 6;
  LMTrainConfig acc = one;
  acc.batch = 2;
  acc.grad_accum = 3;
  GPT a(GPTConfig{6, 8, 1, 2, 16}), b(GPTConfig{6, 8, 1, 2, 16});
  LMTrainLog la = train_lm(a, train, {}, one), lb = train_lm(b, train, {}, acc);
  REQUIRE(la.train_loss.size() == lb.train_loss.size());
  for (size_t i = 0; i < la.train_loss.size(); ++i)
    CHECK(lb.train_loss[i] == doctest::Approx(la.train_loss[i]).epsilon(1e-5));
  auto wa = weights(a), wb = weights(b);
  double worst = 0;
  for (size_t i = 0; i < wa.size(); ++i)
    for (size_t j = 0; j < wa[i].size(); ++j) worst = std::max(worst, double(std::fabs(wa[i][j] - wb[i][j])));
  CHECK(worst < 1e-5);
  CHECK(worst > 0);  // the sums are not the same floats: the test compares two real paths
  LMTrainConfig bad = acc;
  bad.grad_accum = 0;
  CHECK_THROWS_WITH_AS(train_lm(b, train, {}, bad), doctest::Contains("grad_accum"), ValueError);
}

std::vector<char> file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::vector<char> b;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  return b;
}

// On the CPU a StepGraph runs the eager step, so the flag must change nothing
// in the numbers: the step it records (loss_from, backward, the clipped
// update) is the plain loop's, and evaluation between its runs is the same.
TEST_CASE("train_lm: cuda_graph gives the plain run's losses and checkpoint bit for bit") {
  auto train = pattern_tokens(2000, 3), val = pattern_tokens(400, 5);
  LMTrainConfig plain = small_run();
  plain.eval_every = 4;
  plain.eval_batches = 2;
  plain.out = temp_file("plain_graph");
  LMTrainConfig graph = plain;
  graph.cuda_graph = true;
  graph.out = temp_file("cuda_graph");
  GPT a(GPTConfig{6, 8, 1, 2, 16}), b(GPTConfig{6, 8, 1, 2, 16});
  LMTrainLog la = train_lm(a, train, val, plain), lb = train_lm(b, train, val, graph);
  CHECK(la.train_loss == lb.train_loss);
  CHECK(la.val_loss == lb.val_loss);
  CHECK(la.eval_step == lb.eval_step);
  CHECK(weights(a) == weights(b));
  CHECK(file_bytes(plain.out) == file_bytes(graph.out));
  CHECK(la.step_memory.peak_planned > 0);
  CHECK(lb.step_memory.peak_planned == 0);  // planning is off under the flag

  SUBCASE("a cuda_graph run resumes a plain checkpoint exactly") {
    LMTrainConfig first = plain;
    first.stop_at = 4;
    first.out = temp_file("graph_resume");
    GPT p(GPTConfig{6, 8, 1, 2, 16});
    train_lm(p, train, val, first);
    LMTrainConfig second = graph;
    second.resume = first.out;
    GPT q(GPTConfig{6, 8, 1, 2, 16}, /*seed=*/99);
    LMTrainLog l2 = train_lm(q, train, val, second);
    REQUIRE(l2.train_loss.size() == 6);
    for (size_t i = 0; i < 6; ++i) CHECK(l2.train_loss[i] == la.train_loss[i + 4]);
    CHECK(weights(q) == weights(a));
    std::remove(first.out.c_str());
  }
  SUBCASE("grad_accum > 1 and the LSTM are refused, naming the flag") {
    LMTrainConfig acc = graph;
    acc.grad_accum = 2;
    CHECK_THROWS_WITH_AS(train_lm(b, train, val, acc), doctest::Contains("cuda_graph"), ValueError);
    LSTMLM l(tiny_lstm());
    CHECK_THROWS_WITH_AS(train_lm(l, train, val, graph), doctest::Contains("cuda_graph"), ValueError);
  }
  std::remove(plain.out.c_str());
  std::remove(graph.out.c_str());
}

TEST_CASE("train_lm: a training checkpoint resumes bit for bit") {
  auto train = pattern_tokens(2000, 3);
  LMTrainConfig c = small_run();
  GPT whole(GPTConfig{6, 8, 1, 2, 16});
  LMTrainLog full = train_lm(whole, train, {}, c);

  LMTrainConfig first = c;
  first.stop_at = 4;
  first.out = temp_file("resume");
  GPT part(GPTConfig{6, 8, 1, 2, 16});
  LMTrainLog l1 = train_lm(part, train, {}, first);
  REQUIRE(l1.train_loss.size() == 4);
  // A different model object (other initial weights) continues the run.
  GPT next(GPTConfig{6, 8, 1, 2, 16}, /*seed=*/99);
  LMTrainConfig second = c;
  second.resume = first.out;
  LMTrainLog l2 = train_lm(next, train, {}, second);
  CHECK(l2.first_step == 4);
  REQUIRE(l2.train_loss.size() == 6);
  for (size_t i = 0; i < 10; ++i)
    CHECK(full.train_loss[i] == (i < 4 ? l1.train_loss[i] : l2.train_loss[i - 4]));
  CHECK(weights(whole) == weights(next));
  // The checkpoint loads as a model checkpoint (its optimiser state skipped).
  GPT model_only(GPTConfig{6, 8, 1, 2, 16});
  model_only.load(first.out);
  CHECK(weights(model_only) == weights(part));

  SUBCASE("another run's settings, data or a model-only file are refused") {
    LMTrainConfig other = second;
    other.lr = 1e-3;
    CHECK_THROWS_WITH_AS(train_lm(next, train, {}, other), doctest::Contains("lr is"), ValueError);
    other = second;
    other.steps = 20;
    CHECK_THROWS_WITH_AS(train_lm(next, train, {}, other), doctest::Contains("steps is 20"), ValueError);
    CHECK_THROWS_WITH_AS(train_lm(next, pattern_tokens(2000, 4), {}, second),
                         doctest::Contains("training tokens differ"), ValueError);
    std::string plain = temp_file("plain");
    part.save(plain);
    other = second;
    other.resume = plain;
    CHECK_THROWS_WITH_AS(train_lm(next, train, {}, other), doctest::Contains("not a training checkpoint"),
                         ValueError);
    std::remove(plain.c_str());
  }
  std::remove(first.out.c_str());
}

TEST_CASE("gpt: the op-path KV cache (the one a device graph runs) equals forward() on the CPU") {
  GPT m(tiny_gpt());
  overfit(m, 5);
  auto x = random_ids(8, 13, 4);
  std::vector<float> full = logits_of(m, x, 1, 8);
  std::vector<float> step = m.logits_through_ops(x, /*stepwise=*/true);
  REQUIRE(step.size() == full.size());
  double worst = 0;
  for (size_t i = 0; i < full.size(); ++i) worst = std::max(worst, double(std::abs(full[i] - step[i])));
  CHECK(worst < 1e-4);
  for (int64_t n : {1, 3, 8}) {
    CAPTURE(n);
    std::vector<int32_t> s(x.begin(), x.begin() + n);
    std::vector<float> f = logits_of(m, s, 1, n), pre = m.logits_through_ops(s, false);
    REQUIRE(pre.size() == 13);
    double w = 0;
    for (size_t v = 0; v < 13; ++v) w = std::max(w, double(std::abs(f[(n - 1) * 13 + v] - pre[v])));
    CHECK(w < 1e-4);
  }
  // The loss of a later step is unaffected by the generation that ran on
  // the graph in between.
  auto y = random_ids(8, 13, 7);
  const double before = m.loss(x.data(), y.data(), 1, 8);
  m.logits_through_ops(x, true);
  CHECK(m.loss(x.data(), y.data(), 1, 8) == before);
}

TEST_CASE("gpt: op-path generation gives the CPU path's tokens, batched and past the block") {
  GPT m(tiny_gpt());
  overfit(m, 20);
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4, 5, 6}};
  // Greedy: the arg-max of logits equal to ~1e-6, so the same tokens; and
  // sampled with one seed, the same draws from the same probabilities.
  for (float temp : {0.0f, 1.0f}) {
    CAPTURE(temp);
    auto cpu = m.generate_batch(prompts, 20, temp, 13, 9);  // 23 tokens: past the block of 8
    auto ops = m.generate_through_ops(prompts, 20, temp, 13, 9, 1.0f, 0);
    CHECK(cpu == ops);
  }
}

TEST_CASE("optimizer: clipping fused into the step equals clip_grad_norm then step, bit for bit") {
  for (OptimKind kind : {OptimKind::SGD, OptimKind::Momentum, OptimKind::Adam, OptimKind::AdamW}) {
    for (double max_norm : {0.5, 100.0}) {  // clipping active, then not
      CAPTURE(int(kind));
      CAPTURE(max_norm);
      OptimConfig c;
      c.kind = kind;
      c.lr = 0.05f;
      c.weight_decay = 0.01f;
      Graph a, b;
      Rng r(11);
      std::vector<Tensor> pa, pb;
      for (int64_t n : {37, 20000, 3}) {  // one parameter spans several chunks
        pa.push_back(a.param(Shape{n}));
        pb.push_back(b.param(Shape{n}));
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) x = static_cast<float>(r.uniform(-1, 1));
        a.from_host(pa.back(), v.data());
        b.from_host(pb.back(), v.data());
      }
      Optimizer oa(a, c), ob(b, c);
      ob.clip_max_norm = max_norm;
      for (int step = 0; step < 3; ++step) {
        for (size_t i = 0; i < pa.size(); ++i) {
          const int64_t n = a.shape(pa[i]).numel();
          for (int64_t j = 0; j < n; ++j)
            a.grad<float>(pa[i])[j] = b.grad<float>(pb[i])[j] = static_cast<float>(r.uniform(-0.1, 0.1));
        }
        const double norm = clip_grad_norm(a, max_norm);
        oa.step();
        ob.step();
        CHECK(ob.grad_norm() == norm);
      }
      for (size_t i = 0; i < pa.size(); ++i) CHECK(a.host_data(pa[i]) == b.host_data(pb[i]));
    }
  }
}

TEST_CASE("optimizer: a fused clipped step with a NaN gradient changes nothing and reports it") {
  Graph g;
  Tensor p = g.param(Shape{4});
  std::vector<float> v = {1, 2, 3, 4};
  g.from_host(p, v.data());
  OptimConfig c;
  c.kind = OptimKind::AdamW;
  Optimizer opt(g, c);
  CHECK_THROWS_AS(opt.grad_norm(), ValueError);  // no clipped step yet
  g.grad<float>(p)[0] = 0.5f;
  opt.step();  // unclipped: still no norm to report (not a stale 0)
  CHECK_THROWS_AS(opt.grad_norm(), ValueError);
  g.from_host(p, v.data());
  opt.reset_state();
  g.grad<float>(p)[0] = 0;
  opt.clip_max_norm = -1;
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("clip_max_norm"), ValueError);
  CHECK(g.host_data(p) == v);
  opt.clip_max_norm = 1.0;
  g.grad<float>(p)[2] = NAN;
  opt.step();
  CHECK(g.host_data(p) == v);
  CHECK(std::isnan(opt.grad_norm()));
}
