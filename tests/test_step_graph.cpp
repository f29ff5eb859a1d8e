// StepGraph (autograd/step_graph.h) without a GPU: on the CPU every run is
// the eager step, identical to the hand-written loop; and the capture path's
// host logic (staged inputs, value checks re-run before each replay, the
// optimiser's replay hook, the refusals under capture) driven through
// host functions standing in for CUDA's capture (FakeCapture below: the
// kernels still run as they are recorded, and a "replay" runs nothing, so
// these tests check the bookkeeping, not the numbers; the GPU suite's
// test_step_graph_gpu.cpp checks the numbers).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "backends/cuda/bodies_optim.h"
#include "backends/cuda/bodies_pointwise.h"
#include "core/arena.h"
#include "core/error.h"
#include "step_models.h"

using namespace lldl;
using namespace lldl::steptest;

namespace {

struct FakeCapture {
  static inline int begins = 0, ends = 0, aborts = 0, launches = 0, destroys = 0;
  static inline int token = 0;
  static void begin() { ++begins; }
  static void* end(size_t* nodes) { return *nodes = 42, ++ends, &token; }
  static void abort() { ++aborts; }
  static void launch(void*) { ++launches; }
  static void destroy(void*) { ++destroys; }
  static void* alloc(size_t n) { return host_allocator().alloc(n ? n : 1); }
  static void free(void* p) { host_allocator().free(p); }
  static void copy(void* d, const void* s, size_t n) { std::memcpy(d, s, n); }
  static CaptureFns fns() {
    begins = ends = aborts = launches = destroys = 0;
    return {begin, end, abort, launch, destroy, alloc, free, copy, copy};
  }
};

std::vector<const void*> ptrs(const std::vector<std::vector<char>>& d) {
  std::vector<const void*> p;
  for (const auto& x : d) p.push_back(x.data());
  return p;
}

void check_message(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    FAIL("expected ValueError containing '" << part << "'");
  } catch (const ValueError& e) {
    INFO("message: " << std::string(e.what()));
    CHECK(std::string(e.what()).find(part) != std::string::npos);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("step graph: on the CPU every run is the eager step, bit for bit", T, float,
                   double) {
  const DType t = dtype_of<T>();
  Model a = mlp(Backend::CPU, t), b = mlp(Backend::CPU, t);
  std::vector<double> eager = train_eager(a, 10);
  StepGraph sg(*b.g, b.inputs, step_fn(b));
  CHECK_FALSE(sg.can_capture());
  std::vector<double> graphed = train_graph(b, sg, 10);
  CHECK(sg.runs() == 10);
  CHECK_FALSE(sg.captured());
  for (int s = 0; s < 10; ++s) {
    INFO("step " << s);
    CHECK(graphed[s] == eager[s]);
  }
  CHECK(eager[9] < eager[0]);  // it learns
  std::vector<Tensor> pa = a.g->params(), pb = b.g->params();
  for (size_t i = 0; i < pa.size(); ++i)
    CHECK(a.g->host_data<T>(pa[i]) == b.g->host_data<T>(pb[i]));
  CHECK(a.opt->t == b.opt->t);
}

TEST_CASE("step graph: the capture path warms up, captures once, then only launches") {
  Model m = mlp(Backend::CPU);
  CaptureFns fake = FakeCapture::fns();
  StepGraph sg(*m.g, m.inputs, step_fn(m), fake);
  CHECK(sg.can_capture());
  std::vector<double> losses = train_graph(m, sg, 6);
  CHECK(FakeCapture::begins == 1);
  CHECK(FakeCapture::ends == 1);
  CHECK(FakeCapture::aborts == 0);
  CHECK(FakeCapture::launches == 5);  // the capture's own run, then four replays
  CHECK(sg.nodes() == 42);
  CHECK(sg.captured());
  // The optimiser's hook advanced its count at every replay, and the
  // scalars it wrote are those of step 6 at the learning rate set then
  // (lr_at halves it from step 5).
  CHECK(m.opt->t == 6);
  const float* sc = reinterpret_cast<const float*>(m.opt->host_scalars.data());
  CHECK(sc[0] == lr_at(5, 0.01f));
  CHECK(sc[1] == 1.0f - std::pow(0.9f, 6.0f));
  CHECK(sc[2] == 1.0f - std::pow(0.999f, 6.0f));
  // The step memory that the captured graph points into is held.
  CHECK(m.g->arena().step_held());
  CHECK(m.g->num_step_tensors() == 0);  // run() ends the step
}

TEST_CASE("step graph: a label out of range in a replay raises before anything changes") {
  Model m = mlp(Backend::CPU);
  StepGraph sg(*m.g, m.inputs, step_fn(m), FakeCapture::fns());
  train_graph(m, sg, 3);
  std::vector<std::vector<char>> data = m.batch(3);
  int32_t bad = 5;  // 5 classes: labels 0..4
  std::memcpy(data[1].data() + 4 * 7, &bad, 4);
  const int64_t t = m.opt->t;
  const int launches = FakeCapture::launches;
  check_message([&] { sg.run(ptrs(data)); }, "cross_entropy: label 5 at row 7 is out of range");
  CHECK(m.opt->t == t);  // no replay hook ran
  CHECK(FakeCapture::launches == launches);
  // The next good batch runs.
  sg.run(ptrs(m.batch(4)));
  CHECK(m.opt->t == t + 1);
}

TEST_CASE("step graph: the warm-up step checks labels too") {
  Model m = mlp(Backend::CPU);
  StepGraph sg(*m.g, m.inputs, step_fn(m), FakeCapture::fns());
  std::vector<std::vector<char>> data = m.batch(0);
  int32_t bad = -1;
  std::memcpy(data[1].data(), &bad, 4);
  check_message([&] { sg.run(ptrs(data)); }, "cross_entropy: label -1 at row 0");
}

TEST_CASE("step graph: what a captured step cannot do raises ValueError naming it") {
  using Fn = std::function<Tensor(Model&, Graph&, const std::vector<Tensor>&)>;
  auto refused = [](const Fn& body, const std::string& part) {
    Model m = mlp(Backend::CPU);
    CaptureFns fake = FakeCapture::fns();
    StepGraph sg(*m.g, m.inputs, [&](Graph& g, const std::vector<Tensor>& in) {
      return body(m, g, in);
    }, fake);
    sg.run(ptrs(m.batch(0)));  // the warm-up runs eagerly: all of these are fine there
    check_message([&] { sg.run(ptrs(m.batch(1))); }, part);
    CHECK(FakeCapture::aborts == 1);
    CHECK_FALSE(sg.captured());
    CHECK(m.g->capture_state() == nullptr);
    CHECK(m.g->num_step_tensors() == 0);
  };
  SUBCASE("reading the loss on the host") {
    refused([](Model& m, Graph& g, const std::vector<Tensor>& in) {
      Tensor loss = m.loss(in);
      g.item(loss);
      return loss;
    }, "host read of graph memory");
  }
  SUBCASE("host data as a new input") {
    refused([](Model& m, Graph& g, const std::vector<Tensor>& in) {
      float one = 1;
      Tensor s = g.input(Shape{}, &one, DType::F32);
      return mul(m.loss(in), s);
    }, "input: host data given while a step is being captured");
  }
  SUBCASE("reset") {
    refused([](Model& m, Graph& g, const std::vector<Tensor>& in) {
      Tensor loss = m.loss(in);
      if (g.capture_state()) g.reset();  // eagerly it would end the step before the loss
      return loss;
    }, "reset: called while a step is being captured");
  }
  SUBCASE("dropout, whose mask would repeat") {
    refused([](Model& m, Graph&, const std::vector<Tensor>& in) {
      return m.loss({dropout(in[0], 0.1f, true, 7), in[1]});
    }, "dropout: cannot be captured");
  }
  SUBCASE("labels that are not one of the StepGraph's inputs") {
    refused([](Model& m, Graph& g, const std::vector<Tensor>& in) {
      // Labels made in the step have no host copy to check.
      return add(m.loss(in), m.loss({in[0], g.input({64}, DType::I32)}));
    }, "cross_entropy_labels: input 1 (64) is checked on the host");
  }
}

TEST_CASE("step graph: bad inputs and bad step functions raise before anything runs") {
  Model m = mlp(Backend::CPU);
  CHECK_THROWS_AS(StepGraph(*m.g, {{Shape{4}, DType::F64}}, step_fn(m)), TypeError);
  CHECK_THROWS_AS(StepGraph(*m.g, m.inputs, nullptr), ValueError);
  StepGraph sg(*m.g, m.inputs, step_fn(m), FakeCapture::fns());
  std::vector<std::vector<char>> data = m.batch(0);
  check_message([&] { sg.run({data[0].data()}); }, "expected 2 input(s), got 1");
  check_message([&] { sg.run({data[0].data(), nullptr}); }, "input 1 is null");
  CHECK(sg.runs() == 0);
  CHECK(m.opt->t == 0);
  StepGraph not_scalar(*m.g, m.inputs, [&](Graph&, const std::vector<Tensor>& in) {
    return in[0];
  }, FakeCapture::fns());
  check_message([&] { not_scalar.run(ptrs(data)); }, "must return the step's one-element loss");
  m.g->set_memory_planning(true);
  check_message([&] { StepGraph(*m.g, m.inputs, step_fn(m)); }, "memory planning is on");
  m.g->set_memory_planning(false);
  m.g->set_anomaly_mode(true);
  check_message([&] { StepGraph(*m.g, m.inputs, step_fn(m)); }, "anomaly mode");
}

TEST_CASE("arena: a held step block stays in place when a larger step overflows it") {
  Arena a(1024);
  void* first = a.alloc(Region::Step, 512);
  a.reset_step();
  a.hold_step(true);
  CHECK(a.step_held());
  a.alloc(Region::Step, 512);
  a.alloc(Region::Step, 4096);  // a second block
  CHECK(a.stats(Region::Step).blocks == 2);
  a.reset_step();
  CHECK(a.stats(Region::Step).blocks == 1);
  CHECK(a.alloc(Region::Step, 16) == first);  // not merged into a new block
  a.reset_step();
  CHECK_THROWS_AS(a.fit_step(8192), ValueError);
  a.hold_step(false);
  CHECK_FALSE(a.step_held());
  a.alloc(Region::Step, 4096);
  a.alloc(Region::Step, 4096);
  a.reset_step();  // not held: merged as before
  CHECK(a.stats(Region::Step).blocks == 1);
  CHECK(a.stats(Region::Step).reserved >= 8192);
}

// The CUDA update bodies read lr and the bias corrections from memory when
// given them (ParamSlot::scalars), so a replayed step uses each step's
// values: the same numbers as with those values in the arguments.
TEST_CASE("step graph: the CUDA update bodies read lr and bias corrections from memory") {
  const float sc[3] = {0.05f, 1.0f - std::pow(0.9f, 3.0f), 1.0f - std::pow(0.999f, 3.0f)};
  for (int kind : {0, 1, 2, 3}) {
    INFO("optimiser kind " << kind);
    CudaOptimArgs by_value{kind, sc[0], 0.9f, 0.9f, 0.999f, 1e-8f, 0.01f, sc[1], sc[2]};
    CudaOptimArgs stale{kind, 0.7f, 0.9f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.5f, 0.5f};
    auto run_single = [&](const CudaOptimArgs& c, const float* s) {
      std::vector<float> p = {1, -2, 3}, g = {0.3f, -0.1f, 0.2f}, m = {0.1f, 0.1f, 0.1f},
                         v = {0.01f, 0.02f, 0.03f};
      cuda::host_launch(cuda::OptimF{c, p.data(), g.data(), m.data(), v.data(), s}, 3);
      return p;
    };
    auto run_multi = [&](const CudaOptimArgs& c, const float* s) {
      std::vector<float> p = {1, -2, 3}, g = {0.3f, -0.1f, 0.2f}, m = {0.1f, 0.1f, 0.1f},
                         v = {0.01f, 0.02f, 0.03f};
      cuda::MultiSlot slot{p.data(), g.data(), m.data(), v.data(), 0, c.bc1, c.bc2, s};
      cuda::host_launch(cuda::MultiOptimF{c, &slot, 1, nullptr, 0.0}, 3);
      return p;
    };
    std::vector<float> want = run_single(by_value, nullptr);
    CHECK(run_single(stale, sc) == want);
    CHECK(run_multi(by_value, nullptr) == want);
    CHECK(run_multi(stale, sc) == want);
    CHECK(run_single(stale, nullptr) != want);  // the stale arguments do matter
  }
}
