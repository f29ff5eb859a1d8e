// The GPT on the CUDA backend (test suite "gpu"): training, sampling,
// checkpoints, the multi-tensor clipped optimiser and the GEMM precision
// options, each against the same thing on the CPU. Skipped without a usable
// device, except the case that checks the error a missing device gives.
//
// Tolerances:
//  - float32 (TF32 off, the default): losses within 1e-3 relative of the CPU
//    over 5 AdamW steps (as the GPT-block curve of test_cuda_gpu.cpp);
//    greedy tokens identical; logits within 1e-4.
//  - TF32: losses within 1e-2 relative (10 mantissa bits on the inputs).
//  - BF16 autocast: losses within 3e-2 relative of the float32 CPU run (8
//    mantissa bits on every GEMM operand; float accumulation keeps the error
//    near one operand rounding per product, about 0.4% each, and the loss
//    averages them); the first loss must differ from the float32 GPU one,
//    so the option is seen to act.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/optim.h"
#include "backends/cuda/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/gpt.h"
#include "models/lm_train.h"

using namespace lldl;

namespace {

const bool kNoGpu = !cuda_available();

GPTConfig small_gpt() { return GPTConfig{64, 32, 2, 2, 32}; }

std::vector<int32_t> ids(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int32_t>(r.below(64));
  return v;
}

// 5 AdamW steps with clipping at 0.5 (active at initialisation) on fixed
// batches of 4 x 32; the loss of every step.
std::vector<double> train(GPT& m, int steps = 5) {
  OptimConfig c;
  c.kind = OptimKind::AdamW;
  c.lr = 3e-3f;
  c.weight_decay = 0.1f;
  Optimizer opt(m.graph(), c);
  opt.clip_max_norm = 0.5;
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    auto x = ids(4 * 32, 100 + s), y = ids(4 * 32, 200 + s);
    losses.push_back(m.loss(x.data(), y.data(), 4, 32));
    m.backward();
    opt.step();
    m.zero_grad();
  }
  return losses;
}

void check_losses(const std::vector<double>& gpu, const std::vector<double>& cpu, double rel,
                  const char* what) {
  REQUIRE(gpu.size() == cpu.size());
  for (size_t s = 0; s < cpu.size(); ++s) {
    INFO(what << ", step " << s << ": GPU loss " << gpu[s] << ", CPU loss " << cpu[s]);
    CHECK(std::isfinite(gpu[s]));
    CHECK(std::abs(gpu[s] - cpu[s]) <= rel * std::abs(cpu[s]));
  }
}

struct PrecisionGuard {
  ~PrecisionGuard() {
    if (cuda_available()) {
      set_cuda_tf32(false);
      set_cuda_bf16_gemm(false);
    }
  }
};

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("gpu: a GPT on cuda without a device raises UnavailableError" * doctest::skip(!kNoGpu)) {
    CHECK_THROWS_AS(GPT(small_gpt(), 1, Backend::CUDA), UnavailableError);
    CHECK_THROWS_AS(set_cuda_tf32(true), UnavailableError);
    CHECK_THROWS_AS(set_cuda_bf16_gemm(true), UnavailableError);
  }

  TEST_CASE("gpu: a small GPT trains on CUDA with the CPU's losses, clipping on the device" *
            doctest::skip(kNoGpu)) {
    GPT cpu(small_gpt(), 7), gpu(small_gpt(), 7, Backend::CUDA);
    // Initialised on the host, then copied: the same parameters exactly.
    for (size_t i = 0; i < cpu.named_params().size(); ++i)
      CHECK(cpu.graph().host_data(cpu.named_params()[i].second) ==
            gpu.graph().host_data(gpu.named_params()[i].second));
    const std::vector<double> lc = train(cpu), lg = train(gpu);
    check_losses(lg, lc, 1e-3, "float32");
    CHECK(lc.back() < lc.front());  // the comparison is over a moving curve
  }

  TEST_CASE("gpu: the multi-tensor clipped AdamW equals the CPU optimiser" * doctest::skip(kNoGpu)) {
    const std::vector<int64_t> sizes = {37, 70000, 5};
    Graph a(DType::F32, Backend::CPU), b(DType::F32, Backend::CUDA);
    std::vector<Tensor> pa, pb;
    Rng r(3);
    for (int64_t n : sizes) {
      pa.push_back(a.param(Shape{n}));
      pb.push_back(b.param(Shape{n}));
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = static_cast<float>(r.uniform(-1, 1));
      a.from_host(pa.back(), v.data());
      b.from_host(pb.back(), v.data());
    }
    OptimConfig c;
    c.kind = OptimKind::AdamW;
    c.lr = 0.01f;
    c.weight_decay = 0.1f;
    Optimizer oa(a, c), ob(b, c);
    oa.clip_max_norm = ob.clip_max_norm = 1.0;
    auto set_grads = [&] {  // the same random gradients on both sides
      for (size_t i = 0; i < sizes.size(); ++i) {
        std::vector<float> gr(static_cast<size_t>(sizes[i]));
        for (float& x : gr) x = static_cast<float>(r.uniform(-0.1, 0.1));
        std::copy(gr.begin(), gr.end(), a.grad<float>(pa[i]));
        cuda_to_device(b.grad<float>(pb[i]), gr.data(), gr.size() * sizeof(float));
      }
    };
    for (int step = 0; step < 3; ++step) {
      set_grads();
      oa.step();
      ob.step();
      CHECK(ob.grad_norm() == doctest::Approx(oa.grad_norm()).epsilon(1e-9));
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<float> x = a.host_data(pa[i]), y = b.host_data(pb[i]);
      double worst = 0;
      for (size_t j = 0; j < x.size(); ++j) worst = std::max(worst, double(std::abs(x[j] - y[j])));
      CHECK_MESSAGE(worst <= 1e-6, "parameter " << i << ": largest difference " << worst);
    }
    // clip_grad_norm on device memory: the norm and the scaled gradients (the
    // CPU's clipped steps scaled its gradients in place, the GPU's did not:
    // fresh ones).
    set_grads();
    const double na = clip_grad_norm(a, 0.1), nb = clip_grad_norm(b, 0.1);
    CHECK(nb == doctest::Approx(na).epsilon(1e-9));
    std::vector<float> ga = a.host_grad(pa[1]), gb = b.host_grad(pb[1]);
    for (size_t j = 0; j < ga.size(); j += 997) CHECK(gb[j] == doctest::Approx(ga[j]).epsilon(1e-5));
  }

  TEST_CASE("gpu: sampling on CUDA gives the CPU's greedy tokens and logits" * doctest::skip(kNoGpu)) {
    // Trained on the CPU and loaded on the GPU: the same weights, so only
    // the generation paths differ.
    GPT cpu(small_gpt(), 7);
    train(cpu, 20);
    const std::string path = "/tmp/lldl_test_gpt_gpu_s" + std::to_string(::getpid()) + ".safetensors";
    cpu.save(path);
    auto loaded = GPT::from_checkpoint(path, nullptr, Backend::CUDA);
    std::remove(path.c_str());
    GPT& gpu = *loaded;
    std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4}, {9, 8, 7, 6}};
    // 40 new tokens: past the block of 32, so the cache is rebuilt once.
    auto a = cpu.generate_batch(prompts, 40, 0.0f, 64, 1), b = gpu.generate_batch(prompts, 40, 0.0f, 64, 1);
    CHECK(a == b);
    auto seq = ids(20, 5);
    std::vector<float> la = cpu.cached_logits(seq), lb = gpu.cached_logits(seq);
    REQUIRE(la.size() == lb.size());
    double worst = 0;
    for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, double(std::abs(la[i] - lb[i])));
    CHECK(worst < 1e-3);
  }

  TEST_CASE("gpu: train_lm on CUDA (memory planning on, clipping fused) follows the CPU" *
            doctest::skip(kNoGpu)) {
    std::vector<int32_t> train_ids = ids(4000, 1), val_ids = ids(600, 2);
    LMTrainConfig c;
    c.steps = 6;
    c.batch = 4;
    c.seq = 32;
    c.lr = 3e-3;
    c.warmup = 2;
    c.eval_every = 3;
    c.eval_batches = 2;
    c.progress = false;
    c.grad_clip = 0.5;
    GPT cpu(small_gpt(), 7), gpu(small_gpt(), 7, Backend::CUDA);
    LMTrainLog lc = train_lm(cpu, train_ids, val_ids, c), lg = train_lm(gpu, train_ids, val_ids, c);
    check_losses(lg.train_loss, lc.train_loss, 1e-3, "train_lm");
    check_losses(lg.val_loss, lc.val_loss, 1e-3, "train_lm validation");
    CHECK(lg.step_memory.peak_planned > 0);  // the planned step ran on the device
  }

  // 10 steps through a captured step graph (warm-up, capture, 8 replays,
  // evaluation in between) against the eager loop on the same device. Not
  // bit for bit: the embedding gradient's atomics add in any order.
  TEST_CASE("gpu: train_lm with cuda_graph replays the eager run's losses" * doctest::skip(kNoGpu)) {
    std::vector<int32_t> train_ids = ids(4000, 1), val_ids = ids(600, 2);
    LMTrainConfig c;
    c.steps = 10;
    c.batch = 4;
    c.seq = 32;
    c.lr = 3e-3;
    c.warmup = 2;
    c.eval_every = 3;
    c.eval_batches = 2;
    c.progress = false;
    c.grad_clip = 0.5;
    LMTrainConfig cg = c;
    cg.cuda_graph = true;
    GPT eager(small_gpt(), 7, Backend::CUDA), graph(small_gpt(), 7, Backend::CUDA);
    LMTrainLog le = train_lm(eager, train_ids, val_ids, c);
    LMTrainLog lg = train_lm(graph, train_ids, val_ids, cg);
    REQUIRE(lg.train_loss.size() == 10);
    check_losses(lg.train_loss, le.train_loss, 1e-5, "train_lm cuda_graph");
    check_losses(lg.val_loss, le.val_loss, 1e-5, "train_lm cuda_graph validation");
    CHECK(lg.train_loss.back() < lg.train_loss.front());
  }

  TEST_CASE("gpu: a checkpoint saved from device memory loads on either side" * doctest::skip(kNoGpu)) {
    GPT gpu(small_gpt(), 7, Backend::CUDA);
    train(gpu, 3);
    const std::string path = "/tmp/lldl_test_gpt_gpu_" + std::to_string(::getpid()) + ".safetensors";
    gpu.save(path);
    auto on_cpu = GPT::from_checkpoint(path), on_gpu = GPT::from_checkpoint(path, nullptr, Backend::CUDA);
    std::remove(path.c_str());
    for (size_t i = 0; i < gpu.named_params().size(); ++i) {
      const std::vector<float> want = gpu.graph().host_data(gpu.named_params()[i].second);
      CHECK(on_cpu->graph().host_data(on_cpu->named_params()[i].second) == want);
      CHECK(on_gpu->graph().host_data(on_gpu->named_params()[i].second) == want);
    }
  }

  TEST_CASE("gpu: a Hugging Face directory loads straight into device memory" * doctest::skip(kNoGpu)) {
    GPT cpu(small_gpt(), 7);
    const std::string dir = "/tmp/lldl_test_gpt_gpu_hf_" + std::to_string(::getpid());
    cpu.save_pretrained(dir);
    auto gpu = GPT::from_pretrained(dir, Backend::CUDA);
    std::remove((dir + "/config.json").c_str());
    std::remove((dir + "/model.safetensors").c_str());
    ::rmdir(dir.c_str());
    CHECK(gpu->backend() == Backend::CUDA);
    for (size_t i = 0; i < cpu.named_params().size(); ++i)
      CHECK(gpu->graph().host_data(gpu->named_params()[i].second) ==
            cpu.graph().host_data(cpu.named_params()[i].second));
  }

  TEST_CASE("gpu: TF32 and BF16 autocast train the GPT within their tolerances" * doctest::skip(kNoGpu)) {
    PrecisionGuard guard;
    CHECK(!cuda_tf32());
    CHECK(!cuda_bf16_gemm());
    GPT ref(small_gpt(), 7);
    const std::vector<double> cpu = train(ref);
    std::vector<double> fp32;
    {
      GPT g(small_gpt(), 7, Backend::CUDA);
      fp32 = train(g);
    }
    set_cuda_tf32(true);
    {
      GPT g(small_gpt(), 7, Backend::CUDA);
      check_losses(train(g), cpu, 1e-2, "tf32");
    }
    set_cuda_tf32(false);
    set_cuda_bf16_gemm(true);
    {
      GPT g(small_gpt(), 7, Backend::CUDA);
      const std::vector<double> bf = train(g);
      check_losses(bf, cpu, 3e-2, "bf16");
      CHECK(bf[0] != fp32[0]);
    }
  }
}
