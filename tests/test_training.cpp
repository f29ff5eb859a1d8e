// Training end to end: a tiny MLP learns XOR, the arena stays flat across
// steps, each optimiser follows PyTorch's documented update rule, bad
// optimiser settings are refused, and initialisation is seeded and has the
// documented spread.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"

using namespace lldl;

namespace {

// ---- a 2 -> 8 tanh -> 2 classifier for XOR ----------------------------------

const float kXorX[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
const int32_t kXorY[4] = {0, 1, 1, 0};

struct Mlp {
  Tensor W1, b1, W2, b2;
};

Mlp make_mlp(Graph& g, uint64_t seed) {
  Mlp m{g.param({2, 8}, "W1"), g.param({8}, "b1"), g.param({8, 2}, "W2"), g.param({2}, "b2")};
  init_param(g, m.W1, Init::XavierUniform, seed);
  init_param(g, m.W2, Init::XavierUniform, seed + 1);
  return m;  // biases start at zero
}

struct StepResult {
  double loss;
  int correct;  // of the 4 XOR rows
};

// One training step: forward, loss, backward, optimiser update, reset.
StepResult train_step(Graph& g, const Mlp& m, Optimizer& opt) {
  Tensor x = g.input({4, 2}, kXorX, DType::F32);
  Tensor y = g.input({4}, kXorY, DType::I32);
  Tensor logits = bias_add(matmul(tanh(bias_add(matmul(x, m.W1), m.b1)), m.W2), m.b2);
  Tensor loss = cross_entropy(logits, y);
  StepResult r{g.item(loss), 0};
  const float* z = g.data(logits);
  for (int i = 0; i < 4; ++i) r.correct += (z[2 * i + 1] > z[2 * i]) == (kXorY[i] == 1);
  g.backward(loss);
  opt.step();
  g.reset();
  return r;
}

OptimConfig adam(float lr) {
  OptimConfig c;
  c.kind = OptimKind::Adam;
  c.lr = lr;
  return c;
}

// ---- PyTorch's update rules, one scalar at a time --------------------------
//
// An independent re-implementation of the documented algorithms of
// torch.optim.SGD, Adam and AdamW (no maximize, no nesterov, no dampening,
// no amsgrad), in double, reading the hyperparameters the engine reads.

struct RefParam {
  double p;
  double buf = 0;     // SGD momentum buffer
  double m = 0, v = 0;  // Adam moments
};

void ref_step(const OptimConfig& c, int t, RefParam& r, double grad) {
  const double lr = c.lr, wd = c.weight_decay;
  switch (c.kind) {
    case OptimKind::SGD:  // g <- g + wd p; p <- p - lr g
      r.p -= lr * (grad + wd * r.p);
      return;
    case OptimKind::Momentum: {  // b_1 = g_1, b_t = mu b_{t-1} + g_t; p <- p - lr b_t
      double g = grad + wd * r.p;
      r.buf = t == 1 ? g : c.momentum * r.buf + g;
      r.p -= lr * r.buf;
      return;
    }
    case OptimKind::Adam:
    case OptimKind::AdamW: {
      double g = grad;
      if (c.kind == OptimKind::Adam) g += wd * r.p;  // L2: into the gradient
      else r.p -= lr * wd * r.p;                     // AdamW: decay the weight itself
      double b1 = c.beta1, b2 = c.beta2;
      r.m = b1 * r.m + (1 - b1) * g;
      r.v = b2 * r.v + (1 - b2) * g * g;
      double m_hat = r.m / (1 - std::pow(b1, t));
      double v_hat = r.v / (1 - std::pow(b2, t));
      r.p -= lr * m_hat / (std::sqrt(v_hat) + c.eps);  // eps after the sqrt
      return;
    }
  }
}

const char* kind_name(OptimKind k) {
  switch (k) {
    case OptimKind::SGD: return "SGD";
    case OptimKind::Momentum: return "Momentum";
    case OptimKind::Adam: return "Adam";
    case OptimKind::AdamW: return "AdamW";
  }
  return "?";
}

// Three steps of the engine's optimiser on a 4-element parameter, with the
// gradient written straight into the parameter's gradient buffer, against
// ref_step. The gradients mix sizes on purpose: with eps = 1e-3 and |g| ~
// 1e-3 the placement of eps (inside or outside the sqrt, before or after bias
// correction) changes the update by O(1); a zero gradient exposes weight decay.
template <class T>
void check_optimizer(const OptimConfig& c, double rtol, double atol) {
  const double p0[4] = {1.0, -0.5, 0.25, 2.0};
  const double grads[3][4] = {{0.5, -0.002, 0.001, 0.0},
                              {-0.25, -0.003, 0.5, 0.0},
                              {0.1, 0.004, -0.75, 1e-4}};
  Graph g(sizeof(T) == 8 ? DType::F64 : DType::F32);
  Tensor p = g.param({4}, "p");
  RefParam ref[4] = {{p0[0]}, {p0[1]}, {p0[2]}, {p0[3]}};
  for (int i = 0; i < 4; ++i) g.data<T>(p)[i] = T(p0[i]);
  Optimizer opt(g, c);
  for (int t = 1; t <= 3; ++t) {
    for (int i = 0; i < 4; ++i) {
      g.grad<T>(p)[i] = T(grads[t - 1][i]);
      ref_step(c, t, ref[i], double(T(grads[t - 1][i])));
    }
    opt.step();
    for (int i = 0; i < 4; ++i) {
      double got = g.data<T>(p)[i], want = ref[i].p;
      INFO(kind_name(c.kind) << " weight_decay " << c.weight_decay << " eps " << c.eps << " ("
                             << (sizeof(T) == 8 ? "float64" : "float32") << "), step " << t
                             << ", element " << i << ": engine " << got << ", reference " << want);
      CHECK(std::fabs(got - want) <= atol + rtol * std::fabs(want));
    }
  }
}

}  // namespace

// ---- (a) learning --------------------------------------------------------------

TEST_CASE("training: a 2-8-2 tanh MLP learns XOR with Adam") {
  Graph g;
  Mlp m = make_mlp(g, 7);
  Optimizer opt(g, adam(0.05f));
  const int kMaxSteps = 300;  // seeds 1-13 and 99 all get there in 30-55 steps
  StepResult first = train_step(g, m, opt), last = first;
  int steps = 1;
  while (steps < kMaxSteps && !(last.loss < 0.05 && last.correct == 4)) {
    last = train_step(g, m, opt);
    ++steps;
  }
  INFO("after " << steps << " steps: loss " << last.loss << ", " << last.correct << "/4 correct");
  // Starting near chance (ln 2 = 0.69 for two balanced classes) shows the
  // loss came down by learning, not by a lucky start.
  CHECK(first.loss > 0.3);
  CHECK(last.correct == 4);
  CHECK(last.loss < 0.05);
}

// ---- (b) memory ------------------------------------------------------------------

TEST_CASE("training: arena regions stay flat across 100 steps after the first") {
  // Small blocks, so that the first step spills over several step blocks and
  // reset() has to merge them; from then on nothing may be allocated.
  Graph g(DType::F32, Backend::CPU, 512);
  Mlp m = make_mlp(g, 3);
  Optimizer opt(g, adam(0.01f));

  // Step 1 by hand, to see the spill before reset() merges it.
  Tensor x = g.input({4, 2}, kXorX, DType::F32);
  Tensor y = g.input({4}, kXorY, DType::I32);
  Tensor loss = cross_entropy(bias_add(matmul(tanh(bias_add(matmul(x, m.W1), m.b1)), m.W2), m.b2), y);
  g.backward(loss);
  opt.step();  // creates the Adam moments in the persistent region
  REQUIRE_MESSAGE(g.arena().stats(Region::Step).blocks > 1,
                  "the first step should need more than one 512-byte block; the test would not "
                  "exercise the merge in reset()");
  g.reset();

  train_step(g, m, opt);  // step 2
  const ArenaStats step2 = g.arena().stats(Region::Step);
  const ArenaStats pers2 = g.arena().stats(Region::Persistent);
  CHECK(step2.blocks == 1);
  for (int s = 3; s <= 102; ++s) {
    train_step(g, m, opt);
    ArenaStats st = g.arena().stats(Region::Step), ps = g.arena().stats(Region::Persistent);
    INFO("step " << s);
    CHECK(st.high_water == step2.high_water);
    CHECK(st.system_allocs == step2.system_allocs);
    CHECK(st.reserved == step2.reserved);
    CHECK(ps.in_use == pers2.in_use);
    CHECK(ps.high_water == pers2.high_water);
    CHECK(ps.reserved == pers2.reserved);
    CHECK(ps.system_allocs == pers2.system_allocs);
    if (st.high_water != step2.high_water || ps.in_use != pers2.in_use) break;  // one report
  }
}

// ---- (c) optimiser update rules -------------------------------------------------

TEST_CASE("optimizers: three steps match PyTorch's update rules") {
  // float64 runs the same kernels in double: only rounding differs, so the
  // match must be near exact. float32 rounds each of the ~10 operations of an
  // update at 6e-8 relative on values of order 1; three steps stay well under
  // 1e-6, while a wrong rule is off by at least ~1e-3 (lr * wd * p).
  for (OptimKind kind : {OptimKind::SGD, OptimKind::Momentum, OptimKind::Adam, OptimKind::AdamW})
    for (float wd : {0.0f, 0.1f})
      for (float eps : {1e-8f, 1e-3f}) {
        OptimConfig c;
        c.kind = kind;
        c.lr = 0.1f;
        c.momentum = 0.9f;
        c.beta1 = 0.9f;
        c.beta2 = 0.999f;
        c.eps = eps;
        c.weight_decay = wd;
        check_optimizer<double>(c, 1e-12, 1e-14);
        check_optimizer<float>(c, 1e-5, 1e-6);
      }
}

TEST_CASE("optimizers: reset_state makes the next step a first step again") {
  Graph g;
  Tensor p = g.param({1}, "p");
  OptimConfig c = adam(0.1f);
  Optimizer opt(g, c);
  g.data(p)[0] = 1.0f;
  g.grad(p)[0] = 0.5f;
  opt.step();
  float after_first = g.data(p)[0];
  g.data(p)[0] = 1.0f;
  g.grad(p)[0] = -2.0f;
  opt.step();  // a second step with other moments
  opt.reset_state();
  g.data(p)[0] = 1.0f;
  g.grad(p)[0] = 0.5f;
  opt.step();
  CHECK(opt.t == 1);
  CHECK(g.data(p)[0] == after_first);
}

TEST_CASE("optimizers: a parameter created after some steps starts with fresh Adam state") {
  // PyTorch keeps a step count per parameter: a late parameter's first update
  // is bias-corrected as a first step (~ lr * sign(g)), not as step 4.
  for (OptimKind kind : {OptimKind::Adam, OptimKind::AdamW}) {
    CAPTURE(kind_name(kind));
    Graph g;
    Tensor early = g.param({1}, "early");
    OptimConfig c = adam(0.1f);
    c.kind = kind;
    Optimizer opt(g, c);
    for (int i = 0; i < 3; ++i) {
      g.grad(early)[0] = 1.0f;
      opt.step();
    }
    Tensor late = g.param({1}, "late");
    g.data(late)[0] = 0.5f;
    g.grad(late)[0] = 0.25f;
    RefParam ref{0.5};
    ref_step(c, 1, ref, 0.25);
    opt.step();
    CHECK(g.data(late)[0] == doctest::Approx(ref.p).epsilon(1e-6));
    CHECK(opt.t == 4);
  }
}

// ---- (d) bad settings -------------------------------------------------------------

TEST_CASE("optimizers: bad settings raise ValueError") {
  Graph g;
  g.param({2}, "p");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (OptimKind kind : {OptimKind::SGD, OptimKind::Momentum, OptimKind::Adam, OptimKind::AdamW}) {
    CAPTURE(kind_name(kind));
    OptimConfig ok;
    ok.kind = kind;
    CHECK_NOTHROW(Optimizer(g, ok));
    auto bad = [&](auto change) {
      OptimConfig c = ok;
      change(c);
      return c;
    };
    CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.lr = 0; })), ValueError);
    CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.lr = -0.1f; })), ValueError);
    CHECK_THROWS_AS(Optimizer(g, bad([=](OptimConfig& c) { c.lr = nan; })), ValueError);
    CHECK_THROWS_AS(Optimizer(g, bad([=](OptimConfig& c) { c.lr = inf; })), ValueError);
    CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.weight_decay = -0.01f; })), ValueError);
    CHECK_THROWS_AS(Optimizer(g, bad([=](OptimConfig& c) { c.weight_decay = nan; })), ValueError);
    if (kind == OptimKind::Momentum) {
      CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.momentum = 1.0f; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.momentum = 1.5f; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.momentum = -0.1f; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([=](OptimConfig& c) { c.momentum = nan; })), ValueError);
      CHECK_NOTHROW(Optimizer(g, bad([](OptimConfig& c) { c.momentum = 0.0f; })));
    }
    if (kind == OptimKind::Adam || kind == OptimKind::AdamW) {
      CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.beta1 = 1.0f; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.beta2 = 1.0f; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([=](OptimConfig& c) { c.beta2 = nan; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([](OptimConfig& c) { c.eps = -1e-8f; })), ValueError);
      CHECK_THROWS_AS(Optimizer(g, bad([=](OptimConfig& c) { c.eps = nan; })), ValueError);
    }
  }
}

// ---- (e) initialisation -----------------------------------------------------------

namespace {
struct Moments {
  double mean, std, max_abs;
};
Moments moments(const float* p, int64_t n) {
  double s = 0, s2 = 0, mx = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += p[i];
    s2 += double(p[i]) * p[i];
    mx = std::fmax(mx, std::fabs(p[i]));
  }
  double mean = s / double(n);
  return {mean, std::sqrt(s2 / double(n) - mean * mean), mx};
}
}  // namespace

TEST_CASE("init: the same seed gives the same parameters, another seed other ones") {
  for (Init how : {Init::XavierUniform, Init::XavierNormal, Init::HeUniform, Init::HeNormal}) {
    CAPTURE(int(how));
    Graph g1, g2;
    Tensor a = g1.param({16, 8}), b = g2.param({16, 8}), c = g2.param({16, 8});
    init_param(g1, a, how, 123);
    init_param(g2, b, how, 123);
    init_param(g2, c, how, 124);
    int same = 0, equal_to_other_seed = 0;
    for (int i = 0; i < 128; ++i) {
      same += g1.data(a)[i] == g2.data(b)[i];
      equal_to_other_seed += g1.data(a)[i] == g2.data(c)[i];
    }
    CHECK(same == 128);
    CHECK(equal_to_other_seed < 4);
    // A seed fixes the stream whatever ran before (no hidden global state).
    init_param(g1, a, how, 5);
    init_param(g1, a, how, 123);
    CHECK(g1.data(a)[17] == g2.data(b)[17]);
  }
}

TEST_CASE("init: Xavier-uniform stays within its bound with the theoretical spread") {
  // U(-a, a), a = sqrt(6 / (fan_in + fan_out)), has std a / sqrt(3) =
  // sqrt(2 / (fan_in + fan_out)). With n = 65536 samples the sample std of a
  // uniform has a relative standard error of sqrt(0.8 / (4 n)) ~ 0.2%, so 2%
  // is ~10 sigma; the mean's standard error is std / 256, 5 sigma allowed.
  Graph g;
  Tensor w = g.param({256, 256});
  init_param(g, w, Init::XavierUniform, 2024);
  const double a = std::sqrt(6.0 / 512.0), sd = std::sqrt(2.0 / 512.0);
  Moments mo = moments(g.data(w), 256 * 256);
  CHECK(mo.max_abs <= a);
  CHECK(mo.max_abs > 0.99 * a);  // P(all 65536 inside 0.99 a) = 0.99^65536: never
  CHECK(mo.std == doctest::Approx(sd).epsilon(0.02));
  CHECK(std::fabs(mo.mean) < 5 * sd / 256);

  // Non-square: fans from the shape (rows in, columns out) and explicit fans.
  Tensor r = g.param({64, 256});
  init_param(g, r, Init::XavierUniform, 9);
  CHECK(moments(g.data(r), 64 * 256).max_abs <= std::sqrt(6.0 / 320.0));
  CHECK(moments(g.data(r), 64 * 256).max_abs > 0.99 * std::sqrt(6.0 / 320.0));
  init_param(g, r, Init::XavierUniform, 9, 1000, 2000);
  CHECK(moments(g.data(r), 64 * 256).max_abs <= std::sqrt(6.0 / 3000.0));
}

TEST_CASE("init: He-normal has std sqrt(2 / fan_in)") {
  // A normal's sample std has relative standard error 1 / sqrt(2 n) ~ 0.28%
  // for n = 65536: 2% is ~7 sigma.
  Graph g;
  Tensor w = g.param({256, 256});
  init_param(g, w, Init::HeNormal, 77);
  const double sd = std::sqrt(2.0 / 256.0);
  Moments mo = moments(g.data(w), 256 * 256);
  CHECK(mo.std == doctest::Approx(sd).epsilon(0.02));
  CHECK(std::fabs(mo.mean) < 5 * sd / 256);
  // Normal, not uniform: some values beyond 3 std (expected 0.27%, ~177).
  CHECK(mo.max_abs > 3 * sd);
}

// Parameters of 2^16 elements and more are updated in chunks on several
// threads; every element must still follow PyTorch's rule, including those
// in the last, partial chunk.
TEST_CASE("optimizers: large parameters updated in parallel chunks match the reference") {
  const int64_t n = 3 * (int64_t(1) << 15) + 77;
  for (OptimKind kind : {OptimKind::SGD, OptimKind::Momentum, OptimKind::Adam, OptimKind::AdamW}) {
    OptimConfig c;
    c.kind = kind;
    c.lr = 0.01f;
    c.weight_decay = 0.1f;
    Graph g(DType::F64);
    Tensor p = g.param({n}, "p");
    std::vector<RefParam> ref(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      double v = std::sin(0.001 * double(i));
      g.data<double>(p)[i] = v;
      ref[i].p = v;
    }
    Optimizer opt(g, c);
    for (int t = 1; t <= 2; ++t) {
      for (int64_t i = 0; i < n; ++i) {
        double grad = std::cos(0.003 * double(i) + t);
        g.grad<double>(p)[i] = grad;
        ref_step(c, t, ref[i], grad);
      }
      opt.step();
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i)
      bad += std::fabs(g.data<double>(p)[i] - ref[i].p) > 1e-12 + 1e-12 * std::fabs(ref[i].p);
    INFO(std::string(kind_name(kind)) << ": " << bad << " of " << n << " elements differ from the reference");
    CHECK(bad == 0);
  }
}
