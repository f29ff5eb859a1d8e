// Memory planning: the planner on synthetic request logs (no two live
// buffers overlap, memory is reused, the block stays near the lower bound),
// and on real training graphs (bit-identical results with planning on and
// off, a flat arena, fallback on another batch size, released tensors raise).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "autograd/planner.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/seed_api.h"

using namespace lldl;

namespace {

// ---- synthetic logs ------------------------------------------------------------

bool live_together(const AllocRequest& a, const AllocRequest& b) {
  return a.born <= b.end && b.born <= a.end;
}

// Every pair of buffers of one log that are live at the same tick occupies
// disjoint bytes; returns the number of such pairs checked.
size_t check_no_overlap(const RequestLog& log, const std::vector<size_t>& off) {
  REQUIRE(off.size() == log.size());
  size_t pairs = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    CHECK(off[i] % kArenaAlign == 0);
    for (size_t j = i + 1; j < log.size(); ++j) {
      if (!live_together(log[i], log[j])) continue;
      ++pairs;
      bool disjoint = off[i] + plan_align(log[i].bytes) <= off[j] ||
                      off[j] + plan_align(log[j].bytes) <= off[i];
      if (!disjoint)
        FAIL_CHECK("requests " << i << " and " << j << " are live together but overlap: ["
                               << off[i] << ", +" << log[i].bytes << ") and [" << off[j] << ", +"
                               << log[j].bytes << ")");
    }
  }
  return pairs;
}

AllocRequest req(size_t bytes, uint32_t born, uint32_t end, AllocKind k = AllocKind::Data) {
  return {bytes, k, born, end};
}

// The lifetimes a training step of a chain of layers has: activation i is
// born at forward tick i and read again by the backward of layers i and i+1;
// its gradient is born in layer i+1's backward and dies in layer i's. Widths
// are bytes per activation; the last activation is the loss.
RequestLog training_chain(const std::vector<size_t>& widths) {
  const uint32_t L = static_cast<uint32_t>(widths.size());
  auto bwd = [L](uint32_t i) { return 2 * L - i; };  // tick of layer i's backward
  RequestLog log;
  for (uint32_t i = 0; i < L; ++i) {
    uint32_t end = i + 1 < L ? bwd(i) : kLiveToEnd;  // read by its own backward last
    if (i == 0) end = kLiveToEnd;                     // the input: a leaf
    log.push_back(req(widths[i], i, end));
  }
  for (uint32_t i = L; i-- > 1;)  // gradient of activation i-1, written by layer i
    log.push_back(req(widths[i - 1], bwd(i), bwd(i - 1), AllocKind::Grad));
  return log;
}

}  // namespace

TEST_CASE("planner: an inference chain reuses memory, two buffers at a time") {
  RequestLog log;
  for (uint32_t i = 0; i < 10; ++i) log.push_back(req(1000, i, i + 1));
  MemoryPlan p = plan_memory({log});
  CHECK(check_no_overlap(log, p.offsets[0]) == 9);
  CHECK(max_live_bytes(log) == 2 * plan_align(1000));
  CHECK(p.size == 2 * plan_align(1000));  // optimal; bump allocation needs all ten
  CHECK(bump_bytes(log) == 10 * plan_align(1000));
  CHECK(sum_bytes(log) == 10000);
}

TEST_CASE("planner: training chains stay within 1.2x of the most bytes live at once") {
  const std::vector<std::vector<size_t>> chains = {
      {3136, 12544, 12544, 3136, 3136, 512, 512, 40, 4},           // a small CNN
      {4096, 16384, 16384, 8192, 8192, 4096, 4096, 400, 400, 4},   // an MLP
      {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 4},         // equal widths
      {64, 256, 1024, 4096, 16384, 4096, 1024, 256, 64, 4},        // widening and narrowing
  };
  for (const auto& w : chains) {
    RequestLog log = training_chain(w);
    MemoryPlan p = plan_memory({log});
    check_no_overlap(log, p.offsets[0]);
    size_t live = max_live_bytes(log);
    INFO("chain of " << w.size() << ": planned " << p.size << ", max live " << live);
    CHECK(p.size >= live);  // the lower bound holds for any placement
    CHECK(static_cast<double>(p.size) <= 1.2 * static_cast<double>(live));
    CHECK(p.size < bump_bytes(log));
  }
}

TEST_CASE("planner: random lifetimes never overlap and never beat the lower bound") {
  Rng rng(7);
  for (int trial = 0; trial < 30; ++trial) {
    RequestLog log;
    int n = 5 + static_cast<int>(rng.below(60));
    for (int i = 0; i < n; ++i) {
      uint32_t born = static_cast<uint32_t>(rng.below(40));
      uint32_t end = rng.below(10) == 0 ? kLiveToEnd : born + static_cast<uint32_t>(rng.below(15));
      log.push_back(req(1 + rng.below(5000), born, end));
    }
    for (PlanOrder o : {PlanOrder::BySize, PlanOrder::ByBirth}) {
      MemoryPlan p = plan_memory({log}, o);
      check_no_overlap(log, p.offsets[0]);
      CHECK(p.size >= max_live_bytes(log));
      CHECK(p.size <= bump_bytes(log));
      CHECK(p.peak[0] == p.size);
    }
  }
}

TEST_CASE("planner: graphs with a common beginning share its buffers") {
  // A training step and an evaluation step: the same forward requests, then
  // the training step's backward and the evaluation step's extra output.
  RequestLog train = training_chain({800, 3200, 3200, 400, 4});
  RequestLog eval(train.begin(), train.begin() + 5);
  for (AllocRequest& r : eval)
    if (r.end != kLiveToEnd) r.end = r.born + 1;  // no backward: dead at the next op
  eval.push_back(req(64, 5, kLiveToEnd));
  RequestLog other = {req(5000, 0, 3), req(5000, 1, kLiveToEnd)};  // another batch size
  std::vector<RequestLog> logs = {train, eval, other};
  MemoryPlan p = plan_memory(logs);
  REQUIRE(common_prefix(train, eval) == 5);
  CHECK(common_prefix(train, other) == 0);
  for (size_t g = 0; g < logs.size(); ++g) check_no_overlap(logs[g], p.offsets[g]);
  for (size_t k = 0; k < 5; ++k) CHECK(p.offsets[0][k] == p.offsets[1][k]);
  // The shared buffers keep what training needs (its activations live into
  // its backward), so training alone fits no smaller block than with the others.
  CHECK(p.peak[0] >= max_live_bytes(train));
  CHECK(p.size == std::max({p.peak[0], p.peak[1], p.peak[2]}));
  CHECK(signature(train) != signature(eval));
  CHECK(signature(train) == signature(training_chain({800, 3200, 3200, 400, 4})));
}

TEST_CASE("planner: bad logs are refused") {
  CHECK_THROWS_AS(plan_memory({{req(10, 5, 4)}}), ValueError);
  std::vector<RequestLog> many(kMaxPlannedGraphs + 1, RequestLog{req(10, 0, 1)});
  CHECK_THROWS_AS(plan_memory(many), ValueError);
}

// ---- real graphs -------------------------------------------------------------

namespace {

enum class Model { Mlp, Cnn };

struct Net {
  Model model;
  std::vector<Tensor> p;  // weights and biases in order
};

Net make_net(Graph& g, Model m) {
  Net n{m, {}};
  if (m == Model::Mlp) {
    n.p = {g.param({12, 32}), g.param({32}), g.param({32, 16}), g.param({16}), g.param({16, 3}),
           g.param({3})};
  } else {
    n.p = {g.param({4, 1, 3, 3}), g.param({4}), g.param({6, 4, 3, 3}), g.param({6}),
           g.param({6 * 5 * 5, 3}), g.param({3})};
  }
  for (size_t i = 0; i < n.p.size(); i += 2) init_uniform(g, n.p[i], -0.4, 0.4, 11 + i);
  return n;
}

// What one step leaves for the test to look at before reset().
struct Step {
  Tensor x, hidden, logits, probs, loss;
};

// Forward of one batch (seeded data) and, when `train`, backward and an
// optimiser step. `probs` is an output no op consumes.
Step run_step(Graph& g, const Net& n, Optimizer* opt, int64_t batch, uint64_t data_seed) {
  Rng rng(data_seed);
  Step s;
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (int32_t& l : labels) l = static_cast<int32_t>(rng.below(3));
  if (n.model == Model::Mlp) {
    s.x = g.input({batch, 12});
    float* px = g.data(s.x);
    for (int64_t i = 0; i < batch * 12; ++i) px[i] = static_cast<float>(rng.uniform() * 2 - 1);
    s.hidden = relu(bias_add(matmul(s.x, n.p[0]), n.p[1]));
    Tensor h2 = tanh(bias_add(matmul(s.hidden, n.p[2]), n.p[3]));
    s.logits = bias_add(matmul(h2, n.p[4]), n.p[5]);
  } else {
    s.x = g.input({batch, 1, 10, 10});
    float* px = g.data(s.x);
    for (int64_t i = 0; i < batch * 100; ++i) px[i] = static_cast<float>(rng.uniform());
    s.hidden = relu(conv2d(s.x, n.p[0], n.p[1], 1, 1));            // [N, 4, 10, 10]
    Tensor c2 = max_pool2d(relu(conv2d(s.hidden, n.p[2], n.p[3], 1, 1)), 2);  // [N, 6, 5, 5]
    s.logits = bias_add(matmul(flatten(c2), n.p[4]), n.p[5]);
  }
  Tensor y = g.input({batch}, labels.data(), DType::I32);
  s.loss = cross_entropy(s.logits, y);
  s.probs = softmax(s.logits);
  if (opt) {
    g.backward(s.loss);
    opt->step();
  }
  return s;
}

struct Run {
  std::vector<double> losses;
  std::vector<std::vector<float>> probs;
};

// Trains (and evaluates, for batch sizes given as negative numbers) one step
// per entry of `batches`, with Adam.
Run train(Graph& g, Model m, const std::vector<int64_t>& batches,
          std::vector<MemoryReport>* reports = nullptr) {
  Net n = make_net(g, m);
  OptimConfig c;
  c.kind = OptimKind::Adam;
  c.lr = 0.01f;
  Optimizer opt(g, c);
  Run r;
  uint64_t seed = 100;
  for (int64_t b : batches) {
    Step s = run_step(g, n, b > 0 ? &opt : nullptr, b > 0 ? b : -b, seed++);
    r.losses.push_back(g.item(s.loss));
    const float* p = g.data(s.probs);
    r.probs.emplace_back(p, p + g.shape(s.probs).numel());
    g.reset();
    if (reports) reports->push_back(g.memory_report());
  }
  return r;
}

bool same_params(Graph& a, Graph& b) {
  std::vector<Tensor> pa = a.params(), pb = b.params();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i) {
    size_t bytes = static_cast<size_t>(a.shape(pa[i]).numel()) * sizeof(float);
    if (std::memcmp(a.data(pa[i]), b.data(pb[i]), bytes) != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("memory planning: training gives bit-identical losses and parameters") {
  for (Model m : {Model::Mlp, Model::Cnn}) {
    INFO((m == Model::Mlp ? "MLP" : "CNN"));
    Graph plain, planned;
    planned.set_memory_planning(true);
    CHECK(planned.memory_planning());
    CHECK_FALSE(plain.memory_planning());
    std::vector<int64_t> batches(6, 8);
    Run a = train(plain, m, batches), b = train(planned, m, batches);
    CHECK(a.losses == b.losses);
    CHECK(a.probs == b.probs);
    CHECK(same_params(plain, planned));
  }
}

TEST_CASE("memory planning: the arena is flat after the first step and smaller") {
  for (Model m : {Model::Mlp, Model::Cnn}) {
    INFO((m == Model::Mlp ? "MLP" : "CNN"));
    Graph plain, g;
    g.set_memory_planning(true);
    train(plain, m, std::vector<int64_t>(2, 8));
    Net n = make_net(g, m);
    Optimizer opt(g, OptimConfig{});
    ArenaStats after1{};
    for (int step = 1; step <= 6; ++step) {
      run_step(g, n, &opt, 8, 100 + step);
      MemoryReport before = g.memory_report();
      if (step >= 2) {
        // Served from the plan: the step holds exactly the planned block.
        CHECK(g.arena().stats(Region::Step).in_use == before.plan_bytes);
      }
      g.reset();
      ArenaStats st = g.arena().stats(Region::Step);
      if (step == 1) after1 = st;  // the plan is made at this reset
      if (step >= 2) {
        CHECK(st.system_allocs == after1.system_allocs);
        CHECK(st.reserved == after1.reserved);
        CHECK(st.blocks == 1);
        CHECK(st.high_water == after1.high_water);
      }
    }
    MemoryReport r = g.memory_report();
    INFO("unplanned " << r.peak_unplanned << ", planned " << r.peak_planned << ", max live "
                      << r.max_live_bytes << ", sum " << r.sum_all_tensors);
    CHECK(r.last_step_planned);
    CHECK(r.planned_steps == 5);
    CHECK(r.fallback_steps == 1);
    CHECK(r.graphs == 1);
    CHECK(r.peak_planned < r.peak_unplanned);
    CHECK(r.peak_unplanned >= r.sum_all_tensors);
    CHECK(r.peak_planned >= r.max_live_bytes);
    CHECK(static_cast<double>(r.peak_planned) <= 1.2 * static_cast<double>(r.max_live_bytes));
    CHECK(g.arena().stats(Region::Step).reserved == r.plan_bytes);
    CHECK(r.plan_bytes < plain.arena().stats(Region::Step).reserved);
    // With planning off the report has the bump allocator's high-water mark.
    CHECK(plain.memory_report().peak_unplanned == plain.arena().stats(Region::Step).high_water);
    CHECK(plain.memory_report().peak_planned == 0);
  }
}

TEST_CASE("memory planning: another batch size falls back and stays correct") {
  // Positive: a training step of that batch size; negative: evaluation only
  // (the same forward requests as training, then none of its backward).
  const std::vector<int64_t> batches = {8, 8, 5, 8, 5, -8, 8, -8, -3, 8, 5};
  for (Model m : {Model::Mlp, Model::Cnn}) {
    INFO((m == Model::Mlp ? "MLP" : "CNN"));
    Graph plain, planned;
    planned.set_memory_planning(true);
    std::vector<MemoryReport> reps;
    Run a = train(plain, m, batches), b = train(planned, m, batches, &reps);
    CHECK(a.losses == b.losses);
    CHECK(a.probs == b.probs);
    CHECK(same_params(plain, planned));
    // Planned: a batch size (or evaluation) seen before; fallback: a new one.
    const std::vector<bool> served = {false, true, false, true, true, true,
                                      true,  true, false, true, true};
    for (size_t i = 0; i < batches.size(); ++i) {
      INFO("step " << i << " batch " << batches[i]);
      CHECK(reps[i].last_step_planned == served[i]);
    }
  }
}

TEST_CASE("memory planning: a tensor whose memory was reused cannot be read") {
  Graph g;
  g.set_memory_planning(true);
  Net n = make_net(g, Model::Mlp);
  Optimizer opt(g, OptimConfig{});
  run_step(g, n, &opt, 8, 1);
  g.reset();
  Step s = run_step(g, n, &opt, 8, 2);  // served from the plan
  CHECK_THROWS_WITH_AS(g.data(s.hidden), doctest::Contains("released by the memory planner"),
                       ValueError);
  CHECK_THROWS_AS(g.desc(s.logits), ValueError);
  // The loss, outputs no op consumes, inputs and parameters stay valid.
  CHECK(std::isfinite(g.item(s.loss)));
  CHECK(g.data(s.probs) != nullptr);
  CHECK(g.data(s.x) != nullptr);
  CHECK(g.grad(n.p[0]) != nullptr);
  // A second backward needs what the plan released: it raises too.
  CHECK_THROWS_AS(g.backward(s.loss), ValueError);
  g.reset();

  // Without planning the same read works.
  Graph plain;
  Net n2 = make_net(plain, Model::Mlp);
  Optimizer opt2(plain, OptimConfig{});
  Step t = run_step(plain, n2, &opt2, 8, 2);
  CHECK(plain.data(t.hidden) != nullptr);
}

TEST_CASE("memory planning: a read seen in the logged step is planned for") {
  Graph g, plain;
  g.set_memory_planning(true);
  Net n = make_net(g, Model::Cnn), n2 = make_net(plain, Model::Cnn);
  Optimizer opt(g, OptimConfig{}), opt2(plain, OptimConfig{});
  for (int step = 0; step < 4; ++step) {
    Step s = run_step(g, n, &opt, 4, 7 + step), t = run_step(plain, n2, &opt2, 4, 7 + step);
    // Reading an intermediate after backward every step keeps it alive.
    size_t bytes = static_cast<size_t>(g.shape(s.hidden).numel()) * sizeof(float);
    CHECK(std::memcmp(g.data(s.hidden), plain.data(t.hidden), bytes) == 0);
    g.reset();
    plain.reset();
    if (step > 0) CHECK(g.memory_report().last_step_planned);
  }
  CHECK(same_params(g, plain));
}

TEST_CASE("memory planning: turning it on mid-step waits for reset, off drops the plan") {
  Graph g;
  Net n = make_net(g, Model::Mlp);
  Optimizer opt(g, OptimConfig{});
  Step s = run_step(g, n, &opt, 8, 1);
  g.set_memory_planning(true);  // the step already has tensors: from the next one
  CHECK(g.data(s.hidden) != nullptr);
  g.reset();
  CHECK(g.memory_report().requests == 0);
  for (int i = 0; i < 3; ++i) {
    run_step(g, n, &opt, 8, 2 + i);
    g.reset();
  }
  CHECK(g.memory_report().planned_steps == 2);
  s = run_step(g, n, &opt, 8, 9);
  g.set_memory_planning(false);  // mid-step: this step finishes planned
  CHECK_FALSE(g.memory_planning());
  CHECK_THROWS_AS(g.data(s.hidden), ValueError);
  g.reset();
  s = run_step(g, n, &opt, 8, 10);
  CHECK(g.data(s.hidden) != nullptr);
  g.reset();
  // Off on an empty step is immediate, and so is on.
  g.set_memory_planning(true);
  g.set_memory_planning(false);
  s = run_step(g, n, &opt, 8, 11);
  CHECK(g.data(s.hidden) != nullptr);
  g.reset();
}

TEST_CASE("memory planning: the seed API trains identically with planning on") {
  // 50 rows in batches of 16 (a short last batch), evaluation every epoch.
  Rng rng(3);
  std::vector<float> X(50 * 6), Xt(20 * 6);
  std::vector<int32_t> Y(50), Yt(20);
  for (float& v : X) v = static_cast<float>(rng.uniform());
  for (float& v : Xt) v = static_cast<float>(rng.uniform());
  for (int32_t& v : Y) v = static_cast<int32_t>(rng.below(3));
  for (int32_t& v : Yt) v = static_cast<int32_t>(rng.below(3));
  auto fit = [&](bool plan) {
    NeuralNetwork2 nn({{LayerType::Dense, 16, ActivationType::ReLU},
                       {LayerType::Dense, 3, ActivationType::Linear}},
                      LossType::CrossEntropy);
    nn.set_memory_planning(plan);
    CHECK(nn.memory_planning() == plan);
    Trainer t(nn, OptimiserType::Adam, 0.01f);
    History h = t.fit({X.data(), 50, 6}, {nullptr, Y.data(), 50, 1}, {Xt.data(), 20, 6},
                      {nullptr, Yt.data(), 20, 1}, 4, 1, 16);
    return std::pair{h, nn.memory_report()};
  };
  auto [a, ra] = fit(false);
  auto [b, rb] = fit(true);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].train_loss == b[i].train_loss);
    CHECK(a[i].test_loss == b[i].test_loss);
    CHECK(a[i].train_accuracy == b[i].train_accuracy);
    CHECK(a[i].test_accuracy == b[i].test_accuracy);
  }
  CHECK(ra.planned_steps == 0);
  CHECK(rb.planned_steps > rb.fallback_steps);
  CHECK(rb.graphs >= 2);  // full batches, the short one, evaluation chunks
}
