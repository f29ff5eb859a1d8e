// StepGraph on a GPU (test suite "gpu"): a step captured into a CUDA graph
// and replayed gives the losses and parameters of the eager step bit for bit
// (same kernels, same order, same addresses for the data, one stream), over
// 10 steps with a new batch and, from step 5, a new learning rate at every
// step. Skipped without a usable device ("gpu: device status" says why).
//
// Bit for bit holds where every kernel is deterministic: the MLP in both
// tiers; the GPT block in the naive tier. The fast tier's embedding gradient
// adds with atomics in whatever order the threads arrive, so two eager runs
// of the GPT already differ in the last bits there: it is compared within
// 1e-5 relative instead.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cuda/device.h"
#include "core/error.h"
#include "step_models.h"

using namespace lldl;
using namespace lldl::steptest;

namespace {

const bool kNoGpu = !cuda_available();

struct TierGuard {
  CudaTier saved = cuda_tier();
  ~TierGuard() { set_cuda_tier(saved); }
};

// Trains two copies of a model 10 steps, eagerly and through a StepGraph;
// tol 0: identical bits.
void compare_captured(Model (*make)(Backend), double tol, const char* what) {
  Model a = make(Backend::CUDA), b = make(Backend::CUDA);
  std::vector<double> eager = train_eager(a, 10);
  StepGraph sg(*b.g, b.inputs, step_fn(b));
  REQUIRE(sg.can_capture());
  std::vector<double> graphed = train_graph(b, sg, 10);
  CHECK(sg.captured());
  for (int s = 0; s < 10; ++s) {
    INFO(what << ", step " << s << ": eager " << eager[s] << ", captured " << graphed[s]);
    CHECK(std::isfinite(graphed[s]));
    if (tol == 0) CHECK(graphed[s] == eager[s]);
    else CHECK(std::abs(graphed[s] - eager[s]) <= tol * std::abs(eager[s]));
  }
  CHECK(eager[9] < eager[0]);
  std::vector<std::vector<float>> pa = params_of(*a.g), pb = params_of(*b.g);
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(what << ", parameter " << i);
    if (tol == 0) {
      CHECK(pa[i] == pb[i]);
    } else {
      double worst = 0;
      for (size_t j = 0; j < pa[i].size(); ++j)
        worst = std::max(worst, std::abs(double(pa[i][j]) - pb[i][j]) / (std::abs(double(pa[i][j])) + 1e-3));
      CHECK(worst <= tol);
    }
  }
  CHECK(a.opt->t == b.opt->t);
}

Model mlp_f32(Backend b) { return mlp(b); }
// Gradient-norm clipping fused into the multi-tensor update (the norm
// reduced on the device, the factor read there): a captured step replays the
// reduction, and the update reads each step's lr and bias corrections from
// memory through a slot table made at the warm-up step. A max norm this
// small clips at every step.
Model mlp_clipped(Backend b) {
  Model m = mlp(b);
  m.opt->clip_max_norm = 0.05;
  return m;
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("gpu: a captured MLP step gives the eager losses bit for bit, both tiers" *
            doctest::skip(kNoGpu)) {
    TierGuard guard;
    for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast}) {
      set_cuda_tier(tier);
      compare_captured(mlp_f32, 0, cuda_tier_name(tier));
    }
  }

  TEST_CASE("gpu: a captured step with fused gradient clipping gives the eager losses bit for bit" *
            doctest::skip(kNoGpu)) {
    TierGuard guard;
    for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast}) {
      set_cuda_tier(tier);
      compare_captured(mlp_clipped, 0, cuda_tier_name(tier));
    }
  }

  TEST_CASE("gpu: a captured GPT block step matches the eager one" * doctest::skip(kNoGpu)) {
    TierGuard guard;
    set_cuda_tier(CudaTier::Naive);
    compare_captured(gpt_block, 0, "naive");
    set_cuda_tier(CudaTier::Fast);
    compare_captured(gpt_block, 1e-5, "fast");
  }

  TEST_CASE("gpu: a captured step refuses a bad label before launching, and runs on after" *
            doctest::skip(kNoGpu)) {
    Model m = mlp(Backend::CUDA);
    StepGraph sg(*m.g, m.inputs, step_fn(m));
    train_graph(m, sg, 3);
    std::vector<std::vector<float>> before = params_of(*m.g);
    std::vector<std::vector<char>> data = m.batch(3);
    int32_t bad = 9;
    std::memcpy(data[1].data() + 4 * 2, &bad, 4);
    std::vector<const void*> p = {data[0].data(), data[1].data()};
    CHECK_THROWS_WITH_AS(sg.run(p), doctest::Contains("label 9 at row 2"), ValueError);
    CHECK(params_of(*m.g) == before);
    CHECK(m.opt->t == 3);
    std::vector<std::vector<char>> good = m.batch(3);
    double loss = sg.run({good[0].data(), good[1].data()});
    CHECK(std::isfinite(loss));
    CHECK(m.opt->t == 4);
  }

  TEST_CASE("gpu: a step that reads the loss on the host is refused at capture, by name" *
            doctest::skip(kNoGpu)) {
    Model m = mlp(Backend::CUDA);
    StepGraph sg(*m.g, m.inputs, [&](Graph& g, const std::vector<Tensor>& in) {
      Tensor loss = m.loss(in);
      g.backward(loss);
      m.opt->step();
      g.item(loss);
      return loss;
    });
    std::vector<std::vector<char>> d = m.batch(0);
    sg.run({d[0].data(), d[1].data()});  // eagerly fine
    CHECK_THROWS_WITH_AS(sg.run({d[0].data(), d[1].data()}), doctest::Contains("host read"),
                         ValueError);
    CHECK_FALSE(sg.captured());
    // The backend is usable afterwards: an eager step runs.
    Model e = mlp(Backend::CUDA);
    CHECK(std::isfinite(train_eager(e, 2)[1]));
  }
}
