// The CUDA backend on a GPU (test suite "gpu"): every op kind on every rung
// (naive tier; fast tier with the fused kernels off, the middle rung, and on),
// forward and backward, against the CPU backend, and whole graphs trained on
// the device against the same graphs on the CPU (an MLP, a one-block GPT, an
// LSTM language model).
//
// Criteria (issue 6): normalised mean squared error <= 1e-7, 5e-4 for
// matmul-like ops; a NaN or Inf on either side fails; cuBLAS runs with TF32
// off. Without a usable device every case here is skipped (doctest counts
// it as skipped) and "gpu: device status" prints the reason.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "cuda_cases.h"

using namespace lldl;
using namespace lldl::cudatest;

namespace {

const bool kNoGpu = !cuda_available();

// Restores the tier and the fused switch a test changed.
struct TierGuard {
  CudaTier saved = cuda_tier();
  bool fused = cuda_fused();
  ~TierGuard() { set_cuda_tier(saved), set_cuda_fused(fused); }
};

// Every case on the rung (tier, fused) against the CPU. The flash
// attention's workspace holds the logsumexp of each row, not the CPU's P,
// so only its outputs and gradients are compared there.
void check_cases(const std::vector<Case>& all, CudaTier tier, bool fused = true, double tol = 0) {
  TierGuard guard;
  uint64_t seed = 900;
  for (const Case& k : all) {
    seed += 1000;
    Result ref = run(k, cpu_side(k.kind), seed, false);
    set_cuda_tier(tier);
    set_cuda_fused(fused);
    const bool flash_ws = tier == CudaTier::Fast && fused && k.kind == OpKind::Attention;
    compare(k, run(k, cuda_side(k.kind), seed, true), ref, std::string("GPU, ") + cuda_rung_name() + " rung",
            true, !flash_ws, tol);
  }
}

// A two-layer MLP classifier on a fixed random problem, trained for `steps`
// Adam steps on `backend`; returns the loss of every step.
std::vector<double> train_mlp(Backend backend, int steps) {
  const int64_t n = 64, d = 20, h = 32, c = 5;
  Rng r(3);
  std::vector<float> x(n * d);
  for (float& v : x) v = static_cast<float>(r.uniform(-1, 1));
  std::vector<int32_t> y(n);
  for (int64_t i = 0; i < n; ++i) {  // a class from the signs of a few features
    int32_t k = (x[i * d] > 0) + 2 * (x[i * d + 1] > 0);
    y[i] = x[i * d + 2] > 0.5f ? 4 : k;
  }
  Graph g(DType::F32, backend, size_t(1) << 20);
  Tensor W1 = g.param({d, h}, "W1"), b1 = g.param({h}, "b1");
  Tensor W2 = g.param({h, c}, "W2"), b2 = g.param({c}, "b2");
  init_param(g, W1, Init::XavierUniform, 11);
  init_param(g, W2, Init::XavierUniform, 12);
  OptimConfig cfg;
  cfg.kind = OptimKind::Adam;
  cfg.lr = 0.01f;
  Optimizer opt(g, cfg);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    Tensor xt = g.input({n, d}, x.data(), DType::F32);
    Tensor yt = g.input({n}, y.data(), DType::I32);
    Tensor hid = tanh(bias_add(matmul(xt, W1), b1));
    Tensor loss = cross_entropy(linear(hid, W2, b2), yt);  // the fused op in a graph too
    g.backward(loss);
    losses.push_back(g.item(loss));
    opt.step();
    g.reset();
  }
  return losses;
}

// A one-block GPT (token and position embeddings, layer norm, causal
// attention, GELU MLP, residuals) or an LSTM language model learning to
// predict the next token of a fixed sequence with period 7, trained for
// `steps` Adam steps on `backend`; returns the loss of every step. Between
// them they run every sequence op but slice, concat and transpose (which
// the op cases cover).
std::vector<double> train_sequence_model(Backend backend, bool gpt, int steps) {
  const int64_t B = 4, T = 16, V = 11, C = 32, nh = 4;
  std::vector<int32_t> ids(B * T), next(B * T), pos(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      ids[b * T + t] = static_cast<int32_t>((3 * b + t) % 7);
      next[b * T + t] = static_cast<int32_t>((3 * b + t + 1) % 7);
      pos[b * T + t] = static_cast<int32_t>(t);
    }
  Graph g(DType::F32, backend, size_t(8) << 20);
  Tensor wte = g.param({V, C}, "wte"), wpe = g.param({T, C}, "wpe");
  Tensor ln_g = g.param({C}, "ln_g"), ln_b = g.param({C}, "ln_b");
  Tensor w_qkv = g.param({C, 3 * C}, "w_qkv"), w_proj = g.param({C, C}, "w_proj");
  Tensor w_fc = g.param({C, 4 * C}, "w_fc"), w_out = g.param({4 * C, C}, "w_out");
  Tensor w_ih = g.param({4 * C, C}, "w_ih"), w_hh = g.param({4 * C, C}, "w_hh"), b_l = g.param({4 * C}, "b_l");
  Tensor w_head = g.param({C, V}, "w_head");
  init_uniform(g, wte, -0.5, 0.5, 1);
  init_uniform(g, wpe, -0.1, 0.1, 2);
  init_uniform(g, ln_g, 1.0, 1.0, 3);
  init_param(g, ln_b, Init::Zeros, 0);
  init_param(g, b_l, Init::Zeros, 0);
  init_param(g, w_qkv, Init::XavierUniform, 4);
  init_param(g, w_proj, Init::XavierUniform, 5);
  init_param(g, w_fc, Init::XavierUniform, 6);
  init_param(g, w_out, Init::XavierUniform, 7);
  init_uniform(g, w_ih, -0.2, 0.2, 8);
  init_uniform(g, w_hh, -0.2, 0.2, 9);
  init_param(g, w_head, Init::XavierUniform, 10);
  OptimConfig cfg;
  cfg.kind = OptimKind::Adam;
  cfg.lr = gpt ? 0.0005f : 0.003f;  // the losses stay well above 0 (relative comparison)
  Optimizer opt(g, cfg);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    Tensor it = g.input({B, T}, ids.data(), DType::I32), pt = g.input({B, T}, pos.data(), DType::I32);
    Tensor yt = g.input({B * T}, next.data(), DType::I32);
    Tensor x = embedding(it, wte), h;  // (B, T, C)
    if (gpt) {
      x = add(x, embedding(pt, wpe));
      Tensor n = reshape(layer_norm(x, ln_g, ln_b), {B * T, C});
      Tensor a = causal_attention(reshape(matmul(n, w_qkv), {B, T, 3 * C}), nh);
      Tensor r = add(reshape(x, {B * T, C}), matmul(reshape(a, {B * T, C}), w_proj));
      h = add(r, matmul(gelu(matmul(layer_norm(r, ln_g, ln_b), w_fc)), w_out));
    } else {
      h = reshape(lstm(x, w_ih, w_hh, b_l), {B * T, C});
    }
    Tensor loss = cross_entropy(matmul(h, w_head), yt);
    g.backward(loss);
    losses.push_back(g.item(loss));
    opt.step();
    g.reset();
  }
  return losses;
}

void check_curves(const std::vector<double>& gpu, const std::vector<double>& cpu, const char* what) {
  REQUIRE(gpu.size() == cpu.size());
  for (size_t s = 0; s < cpu.size(); ++s) {
    INFO(what << ", step " << s << ": GPU loss " << gpu[s] << ", CPU loss " << cpu[s]);
    CHECK(std::isfinite(gpu[s]));
    CHECK(std::abs(gpu[s] - cpu[s]) <= 1e-3 * std::abs(cpu[s]) + 1e-6);
  }
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("gpu: device status") {
    // Always runs: the reason the other GPU cases ran or were skipped.
    MESSAGE("CUDA: " << std::string(cuda_available() ? "available, " : "skipping the GPU tests: ")
                     << cuda_status());
    CHECK(!cuda_status().empty());
  }

  TEST_CASE("gpu: every op, naive tier, matches the CPU backend" * doctest::skip(kNoGpu)) {
    check_cases(cases(), CudaTier::Naive);
    check_cases(large_cases(), CudaTier::Naive);
  }

  TEST_CASE("gpu: every op, fast tier, matches the CPU backend" * doctest::skip(kNoGpu)) {
    check_cases(cases(), CudaTier::Fast);
    check_cases(large_cases(), CudaTier::Fast);
  }

  TEST_CASE("gpu: every op, middle rung (fast tier, fused kernels off), matches the CPU backend" *
            doctest::skip(kNoGpu)) {
    check_cases(cases(), CudaTier::Fast, false);
    check_cases(large_cases(), CudaTier::Fast, false);
  }

  // Issue 16: flash attention against the CPU at T = 64..1024, head dim 64,
  // within normalised MSE 1e-6 on the output and all three gradients (no
  // GEMM and no TF32: float sums in another order and FMA contraction only,
  // ~1e-12 expected; the GEMM rungs keep tolerance()'s 5e-4). The middle
  // rung runs the same sweep for the ladder's comparison.
  TEST_CASE("gpu: flash attention matches the CPU at T = 64..1024, head dim 64" * doctest::skip(kNoGpu)) {
    const std::vector<Case> sweep = attention_sweep({64, 128, 256, 512, 1024}, 2, 2, 64);
    check_cases(sweep, CudaTier::Fast, true, 1e-6);
    check_cases(sweep, CudaTier::Fast, false);
    // Lengths that are not multiples of the 64-row tiles, and head dims that
    // are not whole float4s (scalar loads, zero-padded shared columns).
    check_cases(attention_sweep({1, 33, 63, 65, 100, 1000}, 1, 3, 64), CudaTier::Fast, true, 1e-6);
    check_cases(attention_sweep({70, 200}, 1, 2, 13), CudaTier::Fast, true, 1e-6);
  }

  TEST_CASE("gpu: softmax + cross-entropy over a 50257 vocabulary matches the CPU on every rung" *
            doctest::skip(kNoGpu)) {
    const std::vector<Case> ce = {ce_vocab_case(64, 50257), ce_vocab_case(5, 300)};
    check_cases(ce, CudaTier::Naive);
    check_cases(ce, CudaTier::Fast, false);
    check_cases(ce, CudaTier::Fast, true);
  }

  TEST_CASE("gpu: an MLP trained on the GPU follows the CPU loss curve" * doctest::skip(kNoGpu)) {
    TierGuard guard;
    const std::vector<double> cpu = train_mlp(Backend::CPU, 40);
    for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast}) {
      set_cuda_tier(tier);
      const std::vector<double> gpu = train_mlp(Backend::CUDA, 40);
      REQUIRE(gpu.size() == cpu.size());
      for (size_t s = 0; s < cpu.size(); ++s) {
        INFO(cuda_tier_name(tier) << " tier, step " << s << ": GPU loss " << gpu[s] << ", CPU loss " << cpu[s]);
        CHECK(std::isfinite(gpu[s]));
        CHECK(std::abs(gpu[s] - cpu[s]) <= 1e-3 * std::abs(cpu[s]) + 1e-6);
      }
    }
  }

  TEST_CASE("gpu: a GPT block and an LSTM trained on the GPU follow the CPU loss curves" *
            doctest::skip(kNoGpu)) {
    TierGuard guard;
    for (bool gpt : {true, false}) {
      const std::vector<double> cpu = train_sequence_model(Backend::CPU, gpt, 30);
      for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast}) {
        set_cuda_tier(tier);
        const std::string what = std::string(gpt ? "GPT block, " : "LSTM, ") + cuda_tier_name(tier) + " tier";
        check_curves(train_sequence_model(Backend::CUDA, gpt, 30), cpu, what.c_str());
      }
    }
  }

  TEST_CASE("gpu: the GPT block and the LSTM of the loss-curve test learn on the CPU") {
    for (bool gpt : {true, false}) {
      const std::vector<double> cpu = train_sequence_model(Backend::CPU, gpt, 30);
      INFO(std::string(gpt ? "GPT block" : "LSTM") << ": loss " << cpu.front() << " -> " << cpu.back());
      CHECK(cpu.back() < 0.5 * cpu.front());
    }
  }

  TEST_CASE("gpu: the MLP of the loss-curve test learns on the CPU") {
    // Runs everywhere: the GPU comparison is only meaningful if the curve
    // moves, so a flat curve here would make that test vacuous.
    const std::vector<double> cpu = train_mlp(Backend::CPU, 40);
    INFO("loss " << cpu.front() << " -> " << cpu.back());
    CHECK(cpu.back() < 0.7 * cpu.front());
  }

  TEST_CASE("gpu: a CUDA graph copies host data in and out" * doctest::skip(kNoGpu)) {
    Graph g(DType::F32, Backend::CUDA);
    const float xv[6] = {1, -2, 3, -4, 5, -6};
    Tensor x = g.input({2, 3}, xv, DType::F32);
    g.set_requires_grad(x);
    Tensor s = sum(relu(x));
    CHECK(g.item(s) == doctest::Approx(9.0));
    g.backward(s);
    std::vector<float> gx = g.host_grad(x);
    CHECK(gx == std::vector<float>{1, 0, 1, 0, 1, 0});
    std::vector<float> back = g.host_data(x);
    CHECK(back == std::vector<float>(xv, xv + 6));
    float host_copy[6] = {1, 2, 3, 4, 5, 6};
    Tensor e = g.external({6}, host_copy, DType::F32);  // copied to the device on CUDA
    CHECK(g.item(sum(e)) == doctest::Approx(21.0));
  }

  TEST_CASE("gpu: label range checks and anomaly mode see device data" * doctest::skip(kNoGpu)) {
    Graph g(DType::F32, Backend::CUDA);
    const float logits[6] = {0, 1, 2, 3, 4, 5};
    const int32_t bad[2] = {0, 7};
    Tensor x = g.input({2, 3}, logits, DType::F32);
    Tensor y = g.input({2}, bad, DType::I32);
    CHECK_THROWS_AS(cross_entropy(x, y), ValueError);
    g.set_anomaly_mode(true);
    const float with_nan[2] = {1.0f, NAN};
    Tensor z = g.input({2}, with_nan, DType::F32);
    CHECK_THROWS_AS(relu(z), ValueError);
  }
}
