// The per-op profiler: off records nothing; on, every forward and backward
// kernel call is counted once with the FLOPs and bytes of its metadata row;
// the table is sorted by time and places rows under the roofline.
#include <doctest/doctest.h>

#include <string>

#include "autograd/functions.h"
#include "autograd/profiler.h"
#include "bench/peak.h"

using namespace lldl;

namespace {

// x [8,16] @ W [16,4] -> relu -> sum, and tanh(x) off the gradient path.
struct Step {
  Shape xs{8, 16}, ws{16, 4}, hs{8, 4};
};

void run_steps(Graph& g, Tensor W, int steps) {
  float xv[8 * 16];
  for (int i = 0; i < 8 * 16; ++i) xv[i] = 0.01f * float(i % 17) - 0.05f;
  for (int s = 0; s < steps; ++s) {
    Tensor x = g.input({8, 16}, xv, DType::F32);
    Tensor loss = sum(relu(matmul(x, W)));
    tanh(x);  // forward only: x needs no gradient
    g.backward(loss);
    g.reset();
  }
}

}  // namespace

TEST_CASE("profiler: off by default and off records nothing") {
  Graph g;
  Tensor W = g.param({16, 4}, "W");
  CHECK_FALSE(g.profiling());
  run_steps(g, W, 2);
  CHECK(g.profile().total_calls() == 0);
  CHECK(g.profile().total_ns() == 0);

  g.set_profiling(true);
  run_steps(g, W, 1);
  int64_t after_one = g.profile().total_calls();
  CHECK(after_one == 7);  // 4 forward, 3 backward
  g.set_profiling(false);
  run_steps(g, W, 2);
  CHECK(g.profile().total_calls() == after_one);
  g.reset_profile();
  CHECK(g.profile().total_calls() == 0);
}

TEST_CASE("profiler: calls equal the recorded ops and backward kernel calls, FLOPs and bytes "
          "are the metadata rows times the calls") {
  Graph g;
  Tensor W = g.param({16, 4}, "W");
  g.set_profiling(true);
  const int steps = 3;
  run_steps(g, W, steps);
  const Profile& p = g.profile();
  auto fwd = [&](OpKind k) { return p.at(Backend::CPU, k, Phase::Forward); };
  auto bwd = [&](OpKind k) { return p.at(Backend::CPU, k, Phase::Backward); };
  for (OpKind k : {OpKind::MatMul, OpKind::Relu, OpKind::Sum, OpKind::Tanh})
    CHECK_MESSAGE(fwd(k).calls == steps, op_name(k));
  for (OpKind k : {OpKind::MatMul, OpKind::Relu, OpKind::Sum})
    CHECK_MESSAGE(bwd(k).calls == steps, op_name(k));
  CHECK(bwd(OpKind::Tanh).calls == 0);  // not on the path to the loss
  CHECK(fwd(OpKind::Add).calls == 0);

  Step st;
  Shape mm_in[2] = {st.xs, st.ws};
  const OpMeta& mm = op_meta(OpKind::MatMul);
  OpAttr none = matmul_attr(false, false);
  double mm_flops = mm.flops(mm_in, st.hs, none), mm_bytes = mm.bytes(mm_in, st.hs, none);
  CHECK(mm_flops == 2.0 * 8 * 16 * 4);
  CHECK(fwd(OpKind::MatMul).flops == doctest::Approx(steps * mm_flops));
  CHECK(fwd(OpKind::MatMul).bytes == doctest::Approx(steps * mm_bytes));
  CHECK(bwd(OpKind::MatMul).flops == doctest::Approx(kBackwardFactor * steps * mm_flops));
  CHECK(bwd(OpKind::MatMul).bytes == doctest::Approx(kBackwardFactor * steps * mm_bytes));
  const OpMeta& rl = op_meta(OpKind::Relu);
  Shape rl_in[1] = {st.hs};
  CHECK(fwd(OpKind::Relu).flops == doctest::Approx(steps * rl.flops(rl_in, st.hs, no_attr())));
  CHECK(fwd(OpKind::Relu).bytes == doctest::Approx(steps * rl.bytes(rl_in, st.hs, no_attr())));

  CHECK(fwd(OpKind::MatMul).ns > 0);
  CHECK(bwd(OpKind::MatMul).ns > 0);
  CHECK(p.total_ns() >= fwd(OpKind::MatMul).ns + bwd(OpKind::MatMul).ns);
  CHECK(fwd(OpKind::MatMul).gflops() > 0);
}

TEST_CASE("profiler: a float64 graph counts eight-byte elements") {
  Graph g(DType::F64);
  Tensor W = g.param({4, 4}, "W");
  g.set_profiling(true);
  Tensor y = relu(W);
  (void)y;
  Shape in[1] = {Shape{4, 4}};
  double f32 = op_meta(OpKind::Relu).bytes(in, in[0], no_attr());
  CHECK(g.profile().at(Backend::CPU, OpKind::Relu, Phase::Forward).bytes == doctest::Approx(2 * f32));
}

TEST_CASE("roofline: intensity, attainable rate and bound follow from the peak") {
  Peak peak{1, 100.0, 10.0};  // ridge at 10 FLOP/B
  CHECK(peak.ridge() == doctest::Approx(10.0));
  ProfileRow low{1, 1000000000, 1e9, 1e9};  // 1 GFLOP/s at 1 FLOP/B
  Roofline r = roofline(low, peak);
  CHECK(r.intensity == doctest::Approx(1.0));
  CHECK(r.attainable == doctest::Approx(10.0));
  CHECK(r.fraction == doctest::Approx(0.1));
  CHECK(r.memory_bound);
  ProfileRow high{1, 1000000000, 50e9, 1e9};  // 50 GFLOP/s at 50 FLOP/B
  Roofline h = roofline(high, peak);
  CHECK(h.attainable == doctest::Approx(100.0));
  CHECK(h.fraction == doctest::Approx(0.5));
  CHECK_FALSE(h.memory_bound);
}

TEST_CASE("profile_table: sorted by time with percentages, the roofline columns need a peak") {
  Profile p;
  p.at(Backend::CPU, OpKind::Relu, Phase::Forward) = {10, 1000000, 1e6, 8e6};
  p.at(Backend::CPU, OpKind::MatMul, Phase::Forward) = {2, 3000000, 2e9, 1e7};
  p.at(Backend::CPU, OpKind::MatMul, Phase::Backward) = {2, 6000000, 4e9, 2e7};
  std::string t = profile_table(p);
  size_t mm_b = t.find("backward"), mm_f = t.find("matmul"), relu = t.find("relu");
  REQUIRE(mm_b != std::string::npos);
  REQUIRE(relu != std::string::npos);
  CHECK(mm_f < relu);                        // the matmul rows (9 ms) come before relu (1 ms)
  CHECK(t.find("60.0") != std::string::npos);  // matmul backward: 6 of 10 ms
  CHECK(t.find("10.0") != std::string::npos);  // relu: 1 of 10 ms
  CHECK(t.find("bound") == std::string::npos);
  CHECK(t.find("total: 14 kernel calls, 10.000 ms") != std::string::npos);
  Peak peak{2, 100.0, 10.0};
  std::string r = profile_table(p, &peak);
  CHECK(r.find("memory") != std::string::npos);   // relu: 0.125 FLOP/B
  CHECK(r.find("compute") != std::string::npos);  // matmul: 200 FLOP/B
  CHECK(r.find("ridge 10.0 FLOP/B") != std::string::npos);
}

TEST_CASE("measure_peak: positive figures, cached per thread count, refreshed on request") {
  const Peak& a = measure_peak();
  CHECK(a.gflops > 0.1);
  CHECK(a.gbs > 0.1);
  CHECK(a.threads >= 1);
  const Peak& b = measure_peak();
  CHECK(&a == &b);
  Peak before = a;
  const Peak& c = measure_peak(true);
  CHECK(c.threads == before.threads);
  CHECK(c.gflops > 0.1);
}
